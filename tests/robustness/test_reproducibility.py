"""Reproducibility: two clean runs of the whole workflow, in different directories, give the same bytes.

Compared: every result file (MDC, selection, backgrounds, signal, likelihood and patchset, fit,
limits, plots, HEPData record, reinterpretation kit) except the logs; provenance.json may differ
only in the fields that say when and where the run happened (``runtime``, ``git_commit``).  The
second run is made in a network-less namespace (``unshare -rn``) where that is permitted.

Two full runs take about a minute each on 2 cores, so these tests carry the ``reliability`` marker:
deselected in ``make test``, run by ``.ci/stages/reliability.sh`` (``pytest -m reliability``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from reliability_support import (
    clean_run,
    copy_workflow,
    key_outputs,
    provenance_differences,
    result_files,
    run_snakemake,
    tree_differences,
)

pytestmark = [pytest.mark.reliability, pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory) -> tuple[Path, Path]:
    """The session's clean run, and a second clean run in a directory at another depth and name.

    The second run is made without network (``unshare -rn``) where this machine allows it, so that it
    also proves that the whole DAG needs no network.
    """
    first = clean_run(tmp_path_factory)
    second = copy_workflow(tmp_path_factory.mktemp("elsewhere") / "some" / "other_place")
    run_snakemake(second, offline=True)
    return first, second


def test_the_two_runs_are_in_different_directories(two_runs: tuple[Path, Path]) -> None:
    a, b = two_runs
    assert a.resolve() != b.resolve() and a.name != b.name
    assert len(result_files(a)) > 30


def test_key_outputs_are_byte_identical(two_runs: tuple[Path, Path]) -> None:
    a, b = two_runs
    checked = []
    for rel in key_outputs():
        fa, fb = a / "results" / rel, b / "results" / rel
        if rel.startswith("reinterpretation/") and not fa.exists() and not fb.exists():
            continue  # the kit is optional in older workflows
        assert fa.is_file() and fb.is_file(), rel
        assert fa.read_bytes() == fb.read_bytes(), f"{rel} differs between {a} and {b}"
        checked.append(rel)
    assert {
        "likelihood/BkgOnly.json",
        "likelihood/patchset.json",
        "limits/limits.csv",
        "hepdata/submission.tar.gz",
    } <= set(checked)


def test_every_result_file_is_byte_identical(two_runs: tuple[Path, Path]) -> None:
    a, b = two_runs
    assert tree_differences(a, b) == []


def test_provenance_differs_only_in_when_and_where(two_runs: tuple[Path, Path]) -> None:
    a, b = two_runs
    assert provenance_differences(a, b) == []
    assert str(a) not in (b / "results/provenance.json").read_text()
