"""Replay every stored fuzz input (seeds and former crashes) through its target, in every ``make test``.

Each file in ``tests/robustness/fuzz/corpus/<target>/`` is passed to ``fuzz_<target>.test_one_input``, which
lets only a clean :class:`~dmpreserve.errors.DmpreserveError` through.  Files named ``crash_*`` are
inputs that crashed a parser before it was fixed (see the README's Reliability section).
"""

from __future__ import annotations

import importlib

import pytest
from harness import corpus

TARGETS = ("config", "reduced_data", "cuts", "csv", "workspace", "archive", "kit_manifest")
CASES = [(t, p) for t in TARGETS for p in corpus(t)]


def test_every_target_has_seeds() -> None:
    for target in TARGETS:
        assert corpus(target), f"no stored inputs for fuzz target {target}"


@pytest.mark.parametrize(("target", "path"), CASES, ids=[f"{t}/{p.name}" for t, p in CASES])
def test_stored_input_is_handled_cleanly(target: str, path) -> None:
    module = importlib.import_module(f"fuzz_{target}")
    module.test_one_input(path.read_bytes())


def test_crash_reproducers_are_kept() -> None:
    crashes = [p for _, p in CASES if p.name.startswith("crash_")]
    assert len(crashes) >= 10
