"""Benchmark: ``make run`` wall time, and the incremental rerun after changing only the signal model.

In a temporary copy of the repository (its ``.venv`` a link to this one, so nothing is
installed), run ``make run`` (the whole DAG; the baseline), then rerun with another signal model
(``--config signal_model=...``, issue 4's RECAST-style rerun: ``workflow/config/models/sd_neutron.yaml``
without its own mass grid) and record which rules Snakemake reran: only the signal rule and what
is downstream of it may run again (not mdc, select, backgrounds).  Prints

    end_to_end_signal_model_rerun: ours <rerun> s, baseline <make run> s, ratio <make run / rerun>

with the peak memory of the largest single step (RUSAGE_CHILDREN), and writes
``benchmarks/results/end_to_end.csv``.  ``--quick`` uses the test configuration.

    .venv/bin/python benchmarks/bench_end_to_end.py [--quick] [--keep DIR]
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import bench_args, write_results  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
_IGNORE = shutil.ignore_patterns(
    ".venv", "results", ".snakemake", ".git", "__pycache__", "*.egg-info", ".pytest_cache", ".hypothesis", "build"
)


def ignore(directory: str, names: list[str]) -> set[str]:
    """What not to copy: environments, results, caches, and the benchmark data (benchmarks/data)."""
    skip = set(_IGNORE(directory, names))
    if Path(directory).resolve() == ROOT / "benchmarks":
        skip |= {"data", "results"} & set(names)
    return skip


#: Rules that must not rerun when only the signal model changes.
UPSTREAM = ("mdc", "select", "backgrounds", "response")
RULE_LINE = re.compile(r"^\s*(?:local)?rule (\w+):", re.M)


def prepare(work: Path) -> None:
    """Copy the repository (sources and workflow only) and link its virtual environment."""
    shutil.copytree(ROOT, work, ignore=ignore, symlinks=True)
    (work / ".venv").symlink_to(ROOT / ".venv")


def signal_model_copy(work: Path) -> Path | None:
    """Another signal model (SD neutron) on the configuration's own mass grid, written into ``work``.

    The model file's ``masses_gev`` line is dropped so that only the physics changes, not the number
    of per-mass jobs.  None when issue 4's model files are absent.
    """
    source = work / "workflow" / "config" / "models" / "sd_neutron.yaml"
    if not source.is_file():
        return None
    lines = source.read_text(encoding="utf-8").splitlines(keepends=True)
    target = source.with_name("bench_sd_neutron.yaml")
    target.write_text("".join(line for line in lines if not line.startswith("masses_gev:")), encoding="utf-8")
    return target


def timed(cmd: list[str], cwd: Path, log: Path) -> tuple[float, float, str]:
    """Run ``cmd``; return (wall time [s], peak RSS of the largest child so far [MB], output)."""
    env = {**os.environ, "PATH": f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    out = proc.stdout + proc.stderr
    log.write_text(out, encoding="utf-8")
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed (exit {proc.returncode}); see {log}\n{out[-3000:]}")
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1e3  # kB -> MB
    return elapsed, peak_mb, out


def main() -> None:
    """Run the benchmark."""
    args = bench_args(
        __doc__.splitlines()[0],
        extra=lambda p: p.add_argument(
            "--keep", type=Path, default=None, help="run in this directory and keep it (default: a temporary one)"
        ),
    )
    config = "tests/data/test_config.yaml" if args.quick else "workflow/config/config.yaml"
    base = args.keep or Path(tempfile.mkdtemp(prefix="bench_e2e_"))
    work = base / "repo"
    try:
        prepare(work)
        # -o: treat the venv stamps as up to date (the linked venv is not rebuilt or reinstalled)
        make = ["make", "run", f"CONFIG={config}", "-o", ".venv/.stamp", "-o", ".venv/.stamp-pkg"]
        full_s, full_peak, full_out = timed(make, work, base / "make_run.log")
        full_rules = RULE_LINE.findall(full_out)
        print(
            f"make run ({config}): {full_s:.1f} s, {len(full_rules)} jobs, peak step memory {full_peak:.0f} MB",
            flush=True,
        )
        model = signal_model_copy(work)
        if "signal_model" in (work / "Snakefile").read_text(encoding="utf-8") and model is not None:
            how = f"--config signal_model={model.relative_to(work)}"
            extra = ["--config", f"signal_model={model.relative_to(work)}"]
        else:  # before issue 4's --config signal_model: touch the signal rule's own input instead
            how = "touched the signal rule's inputs"
            extra = ["--forcerun", "signal"]
        rerun = [str(ROOT / ".venv" / "bin" / "snakemake"), "all", "--cores", "2", "--configfile", config, *extra]
        inc_s, inc_peak, inc_out = timed(rerun, work, base / "rerun.log")
        reran = RULE_LINE.findall(inc_out)
        bad = sorted(set(reran) & set(UPSTREAM))
        print(
            f"rerun after changing the signal model ({how}): {inc_s:.1f} s; reran {len(reran)} jobs: "
            f"{', '.join(sorted(set(reran)))}",
            flush=True,
        )
        if bad:
            raise SystemExit(f"upstream rules reran although only the signal model changed: {bad}")
        print(
            f"end_to_end_signal_model_rerun: ours {inc_s:.3f} s, baseline {full_s:.3f} s, ratio {full_s / inc_s:.2f} "
            f"(peak memory ours {inc_peak:.0f} MB, baseline {full_peak:.0f} MB)",
            flush=True,
        )
        write_results(
            "end_to_end",
            [
                {
                    "config": config,
                    "make_run_s": round(full_s, 2),
                    "make_run_jobs": len(full_rules),
                    "rerun_s": round(inc_s, 2),
                    "rerun_jobs": len(reran),
                    "rerun_rules": " ".join(sorted(set(reran))),
                    "rerun_trigger": how,
                    "peak_step_mb": round(max(full_peak, inc_peak), 1),
                    "cpus": os.cpu_count(),
                }
            ],
            directory=args.results,
        )
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
