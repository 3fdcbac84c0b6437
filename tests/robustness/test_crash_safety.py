"""Crash safety: SIGKILL the workflow in the middle of a step, rerun with --rerun-incomplete, same bytes.

The workflow is killed twice, the whole process group at once with SIGKILL (no chance to clean
up): first while ``mdc`` is writing its outputs (some written, some not), then, in the resumed run,
while a ``limits_point`` job is computing.  After ``snakemake --unlock`` and a rerun with
``--rerun-incomplete`` the results must be byte-identical to an uninterrupted run, with no
temporary ``*.part`` file anywhere.

Carries the ``reliability`` marker (full workflow runs): run by ``.ci/stages/reliability.sh``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from reliability_support import clean_run, copy_workflow, env, run_snakemake, snakemake_argv, tree_differences

pytestmark = [pytest.mark.reliability, pytest.mark.integration, pytest.mark.slow]

#: Outputs of the mdc rule (a partial set of them means the step was killed in its middle).
MDC_OUTPUTS = 13


def _mdc_partly_written(work: Path) -> bool:
    files = [p for p in (work / "results/mdc").glob("*") if p.is_file()]
    done = [p for p in files if not p.name.endswith(".part")]
    return 0 < len(done) < MDC_OUTPUTS


def _limits_point_running(work: Path) -> bool:
    """A limits_point job has started (its log exists) and has not written its point file yet."""
    logs = work / "results/logs/limits_point"
    points = work / "results/limits/points"
    return logs.is_dir() and any(not (points / f"{log.stem}.json").exists() for log in logs.glob("*.log"))


def _kill_when(
    work: Path, condition: Callable[[Path], bool], *, args: tuple[str, ...] = (), timeout: float = 600.0
) -> None:
    """Start the workflow, SIGKILL its whole process group as soon as ``condition(work)`` holds."""
    log = open(work / f"killed_run_{len(list(work.glob('killed_run_*')))}.log", "w")  # noqa: SIM115
    with log:
        proc = subprocess.Popen(
            snakemake_argv(*args), cwd=work, env=env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        try:
            while not condition(work):
                if proc.poll() is not None:
                    raise AssertionError(f"the workflow ended (status {proc.returncode}) before the kill point")
                if time.monotonic() > deadline:
                    raise AssertionError("kill point not reached in time")
                time.sleep(0.02)
        finally:
            with_group = proc.poll() is None
            if with_group:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=60)
    assert with_group, "nothing was running to kill"


@pytest.fixture(scope="module")
def resumed_run(tmp_path_factory) -> dict[str, object]:
    """A run killed twice mid-step and resumed; returns its directory and what the kills left behind."""
    work = copy_workflow(tmp_path_factory.mktemp("crash") / "wf")
    _kill_when(work, _mdc_partly_written)
    mdc_left = sorted(p.name for p in (work / "results/mdc").iterdir())
    run_snakemake(work, "--unlock")
    _kill_when(work, _limits_point_running, args=("--rerun-incomplete",))
    run_snakemake(work, "--unlock")
    proc = run_snakemake(work, "--rerun-incomplete")
    return {"work": work, "mdc_left": mdc_left, "rerun_log": proc.stderr}


def test_first_kill_hit_the_middle_of_a_step(resumed_run: dict[str, object]) -> None:
    left = resumed_run["mdc_left"]
    assert 0 < len([n for n in left if not n.endswith(".part")]) < MDC_OUTPUTS, left


def test_rerun_incomplete_gives_byte_identical_results(resumed_run: dict[str, object], tmp_path_factory) -> None:
    reference = clean_run(tmp_path_factory)
    assert tree_differences(reference, resumed_run["work"]) == []


def test_no_temporary_files_left(resumed_run: dict[str, object]) -> None:
    work = resumed_run["work"]
    assert not list((work / "results").rglob("*.part"))
    assert not list((work / "results").rglob(".*.part"))


def test_nothing_left_to_do(resumed_run: dict[str, object]) -> None:
    proc = run_snakemake(resumed_run["work"], "-n")
    assert "Nothing to be done" in proc.stdout + proc.stderr
