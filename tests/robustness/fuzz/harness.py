"""Shared harness of the atheris fuzz targets (one ``fuzz_<parser>.py`` per parser of user files).

Each target defines ``test_one_input(data: bytes)``: it feeds the bytes to one parser and lets
only :class:`dmpreserve.errors.DmpreserveError` through -- any other exception is a crash (a
traceback where the user should get one clear message).  Run a target for a bounded time with
``python tests/robustness/fuzz/fuzz_config.py -max_total_time=20`` (libFuzzer options; ``.ci/stages/reliability.sh``
does this for every target).  Inputs that once crashed are kept in ``tests/robustness/fuzz/corpus/<target>/``
and replayed by ``tests/robustness/fuzz/test_fuzz_regressions.py`` in every ``make test``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
#: Largest input a target accepts (bytes); libFuzzer is told the same with -max_len.
MAX_LEN = 64 * 1024


def instrumented(fuzzing: bool):
    """Context for the target's imports: atheris coverage instrumentation when fuzzing, else nothing."""
    if not fuzzing:
        return contextlib.nullcontext()
    import atheris

    return atheris.instrument_imports(include=["dmpreserve"])


def scratch_dir() -> Path:
    """A fresh, empty scratch directory for one input (removed by :func:`clean`)."""
    return Path(tempfile.mkdtemp(prefix="dmpreserve-fuzz-"))


def clean(path: Path) -> None:
    """Remove a scratch directory."""
    shutil.rmtree(path, ignore_errors=True)


def expect_clean_failure(fn: Callable[[], object]) -> None:
    """Run ``fn``; a DmpreserveError (bad input, reported cleanly) is fine, anything else propagates."""
    from dmpreserve.errors import DmpreserveError

    try:
        fn()
    except DmpreserveError as exc:
        text = str(exc)
        assert "\n" not in text, f"multi-line error message: {text!r}"


def corpus(name: str) -> list[Path]:
    """The stored inputs of target ``name`` (seeds and former crashes)."""
    folder = HERE / "corpus" / name
    return sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []


def main(test_one_input: Callable[[bytes], None], name: str) -> None:
    """Fuzz ``test_one_input`` with atheris (libFuzzer arguments from the command line)."""
    import atheris

    argv = list(sys.argv)
    if not any(a.startswith("-max_len=") for a in argv):
        argv.append(f"-max_len={MAX_LEN}")
    out = Path(os.environ.get("DMP_FUZZ_ARTIFACTS", Path(tempfile.gettempdir()) / "dmpreserve-fuzz-artifacts")) / name
    out.mkdir(parents=True, exist_ok=True)
    if not any(a.startswith("-artifact_prefix=") for a in argv):
        argv.append(f"-artifact_prefix={out}/")
    seeds = HERE / "corpus" / name
    work = out / "corpus"  # a working copy: libFuzzer adds what it finds; the stored corpus stays as it is
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    if seeds.is_dir():
        for p in seeds.iterdir():
            shutil.copy(p, work / p.name)
    atheris.Setup([*argv, str(work)], test_one_input)
    atheris.Fuzz()
