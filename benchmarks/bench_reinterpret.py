"""Benchmark: a 50-mass reinterpretation from the kit versus the full ``make run`` that produced it.

In a temporary copy of the repository (its ``.venv`` a link to this one), ``make run`` once to build
the reinterpretation kit (warm-up), then interleaved in this process:

* ours: ``dmpreserve reinterpret --kit results/reinterpretation --model <SI, 50 masses 6 GeV - 10 TeV>``
  as a fresh process (what a user types: imports, checksums, templates, 50 asymptotic limits,
  limits.csv/json, plot, HEPData table); also the same reinterpretation in this process (imports
  already done) as ``ours_inprocess``;
* baseline: ``make run`` from an empty ``results/`` (the whole DAG: NEST mock data to HEPData).

Prints ``reinterpret_50_masses: ours X s, baseline Y s, ratio Y/X`` with peak memory and writes
``benchmarks/results/reinterpret.csv``.  Peak memory: of the ``dmpreserve reinterpret`` process its own peak
RSS (wait4); of ``make run`` the largest step's peak RSS (wait4 of make: the largest of its waited-for
descendants; until 2026-12-01 RUSAGE_CHILDREN of this process, which also counted the reinterpret processes);
in-process the RSS increase.  ``--quick`` uses the test configuration for the baseline (and 50 masses still).

    .venv/bin/python benchmarks/bench_reinterpret.py [--quick]
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Timing, bench_args, measure, print_ratio, write_results  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
IGNORE = shutil.ignore_patterns(
    ".venv", "results", ".snakemake", ".git", "__pycache__", "*.egg-info", ".pytest_cache", ".hypothesis"
)
MODEL = "model: si\nmasses_gev: {min: 6.0, max: 10000.0, count: 50}\n"


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "PATH": f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        "MPLBACKEND": "Agg",
    }


def _run_one(cmd: list[str], cwd: Path) -> tuple[float, float]:
    """Run one process; return (wall time [s], its own peak RSS [MB], from wait4)."""
    with tempfile.TemporaryFile() as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=_env(), stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            out.seek(0)
            raise SystemExit(f"{' '.join(cmd)} failed (exit {proc.returncode}):\n{out.read()[-3000:].decode()}")
    return elapsed, usage.ru_maxrss / 1e3


def main() -> None:
    """Run the benchmark."""
    args = bench_args(__doc__.splitlines()[0])
    config = "tests/data/test_config.yaml" if args.quick else "workflow/config/config.yaml"
    repeat = 1 if args.quick else 2
    base = Path(tempfile.mkdtemp(prefix="bench_reinterpret_"))
    work = base / "repo"
    try:
        shutil.copytree(ROOT, work, ignore=IGNORE, symlinks=True)
        (work / ".venv").symlink_to(ROOT / ".venv")
        make = ["make", "run", f"CONFIG={config}", "-o", ".venv/.stamp", "-o", ".venv/.stamp-pkg"]
        print(f"warm-up make run ({config}) ...", flush=True)
        warm_s = _run_one(make, work)[0]
        kit = base / "kit"
        shutil.copytree(work / "results" / "reinterpretation", kit)
        model = base / "si50.yaml"
        model.write_text(MODEL, encoding="utf-8")
        cli = [
            str(ROOT / ".venv" / "bin" / "dmpreserve"),
            "reinterpret",
            "--kit",
            str(kit),
            "--model",
            str(model),
            "-o",
            str(base / "out"),
            "--no-progress",
        ]

        from dmpreserve.physics.signal_models import load_model
        from dmpreserve.reinterpret.engine import model_signal, reinterpret
        from dmpreserve.reinterpret.kit import load_kit
        from dmpreserve.reinterpret.outputs import write_outputs

        def inprocess() -> int:
            k = load_kit(kit)
            res = reinterpret(
                k, model_signal(k, load_model(model)), strength_unit="cm^2", source={"model": "si"}, progress=False
            )
            write_outputs(base / "out_inprocess", res, cl=0.9, method=res.method)
            return len(res.limits)

        def baseline() -> tuple[float, float]:
            shutil.rmtree(work / "results", ignore_errors=True)
            shutil.rmtree(work / ".snakemake", ignore_errors=True)
            return _run_one(make, work)

        times: dict[str, list[float]] = {"ours": [], "ours_inprocess": [], "baseline": []}
        peaks = {"ours": 0.0, "ours_inprocess": 0.0, "baseline": 0.0}
        inprocess()  # imports
        for _ in range(repeat):
            t, p = _run_one(cli, base)
            times["ours"].append(t)
            peaks["ours"] = max(peaks["ours"], p)
            t, p, n = measure(inprocess)
            assert n == 50
            times["ours_inprocess"].append(t)
            peaks["ours_inprocess"] = max(peaks["ours_inprocess"], p)
            t, p = baseline()
            times["baseline"].append(t)
            peaks["baseline"] = max(peaks["baseline"], p)
        res = {k: Timing(tuple(v), peaks[k]) for k, v in times.items()}
        print(f"warm-up make run: {warm_s:.1f} s; {os.cpu_count()} CPUs", flush=True)
        ratio = print_ratio("reinterpret_50_masses", res["ours"], res["baseline"])
        ratio_in = print_ratio("reinterpret_50_masses_inprocess", res["ours_inprocess"], res["baseline"])
        write_results(
            "reinterpret",
            [
                {
                    "case": "50_masses_si",
                    "baseline": f"make run CONFIG={config}",
                    **res["ours"].row("ours"),
                    **res["ours_inprocess"].row("ours_inprocess"),
                    **res["baseline"].row("baseline"),
                    "ratio": round(ratio, 2),
                    "ratio_inprocess": round(ratio_in, 2),
                    "cpus": os.cpu_count(),
                }
            ],
            directory=args.results,
        )
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
