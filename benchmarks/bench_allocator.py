"""Benchmark: the CLI's allocator setting (:func:`dmpreserve.cli.tune_allocator`) against glibc's defaults.

Task: the toy-heavy steps of the default analysis as Snakemake runs them, one process per job:
``dmpreserve toys-shard`` (shape 0, shard 0 of the threshold table) and, given ``--run DIR`` (the ``results/``
directory of a default run, ``make run``), ``dmpreserve limits-point`` at the middle mass with that run's
threshold table.  ours: the CLI as shipped (freed memory stays in the heap: mmap threshold 32 MiB, trim threshold
512 MiB); baseline: the same command with ``tune_allocator`` switched off, i.e. glibc's defaults (large arrays
are mmap'ed and unmapped on every free, and their pages zeroed again on first touch).  Each run is a fresh
process, interleaved ours / baseline; the outputs of both are compared byte for byte (they must be equal).
Prints wall and system time per run and the ratio; writes ``benchmarks/results/allocator.csv``.
Measured 2026-12-01 on the 2-core machine (``--quick --run`` on a default run, one round each): toys_shard 13.9 s
(0.36 s system) against 21.8 s (6.6 s system) with glibc's defaults, 1.57x; limits_point 9.6 s (0.30 s) against
14.3 s (3.1 s), 1.49x; outputs byte-identical.

    .venv/bin/python benchmarks/bench_allocator.py [--quick] [--run results]
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import bench_args, write_results  # noqa: E402
from bench_limits import default_likelihood  # noqa: E402

#: Runs the CLI in a fresh interpreter; argv[1] == "off" switches the allocator setting off (the baseline).
_LAUNCH = (
    "import sys; import dmpreserve.cli as cli\n"
    "if sys.argv[1] == 'off': cli.tune_allocator = lambda: False\n"
    "raise SystemExit(cli.main(sys.argv[2:]))"
)


def run_once(variant: str, argv: list[str], out: Path) -> tuple[float, float, bytes]:
    """Run ``dmpreserve argv -o out`` in a new process; return (wall [s], system CPU [s], output bytes)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", _LAUNCH, variant, *argv, "-o", str(out)], env=env, check=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_stime - before.ru_stime, out.read_bytes()


def main() -> None:
    args = bench_args(
        "the CLI's allocator setting against glibc's defaults (toy-heavy steps, one process per job)",
        extra=lambda p: p.add_argument("--run", type=Path, help="results/ of a default run (adds limits-point)"),
    )
    repeat = 1 if args.quick else 3
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.run:
            cfg, ws = args.run / "config.resolved.yaml", args.run / "likelihood/BkgOnly.json"
            ps = args.run / "likelihood/patchset.json"
        else:
            ws, ps = default_likelihood(tmp, masses=25)
            cfg = tmp / "config.yaml"
        cases = {"toys_shard": ["toys-shard", "--config", cfg, "--workspace", ws, "--patchset", ps]}
        cases["toys_shard"] += ["--shape", "0", "--shard", "0"]
        if args.run:
            table = args.run / "toys/threshold_table.json"
            cases["limits_point"] = ["limits-point", "--config", cfg, "--workspace", ws, "--patchset", ps]
            cases["limits_point"] += ["--table", table, "--index", "10"]
        for name, argv in cases.items():
            argv = [str(a) for a in argv]
            suffix = ".parquet" if name == "toys_shard" else ".json"
            got: dict[str, list[tuple[float, float]]] = {"ours": [], "baseline": []}
            outputs = {}
            for _ in range(repeat):
                for variant, switch in (("ours", "on"), ("baseline", "off")):
                    wall, sys_s, data = run_once(switch, argv, tmp / f"{name}_{variant}{suffix}")
                    got[variant].append((wall, sys_s))
                    outputs[variant] = data
            if outputs["ours"] != outputs["baseline"]:
                raise SystemExit(f"{name}: the outputs with and without the allocator setting differ")
            med = {v: sorted(t[0] for t in got[v])[len(got[v]) // 2] for v in got}
            sys_med = {v: sorted(t[1] for t in got[v])[len(got[v]) // 2] for v in got}
            print(
                f"allocator_{name}: ours {med['ours']:.2f} s (system {sys_med['ours']:.2f} s), glibc defaults "
                f"{med['baseline']:.2f} s (system {sys_med['baseline']:.2f} s): {med['baseline'] / med['ours']:.2f}x "
                "faster; outputs identical",
                flush=True,
            )
            rows.append(
                {
                    "case": name,
                    "ours_median_s": round(med["ours"], 3),
                    "ours_system_s": round(sys_med["ours"], 3),
                    "baseline_median_s": round(med["baseline"], 3),
                    "baseline_system_s": round(sys_med["baseline"], 3),
                    "ratio": round(med["baseline"] / med["ours"], 3),
                }
            )
    write_results("allocator", rows, directory=args.results)


if __name__ == "__main__":
    main()
