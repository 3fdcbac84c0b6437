"""Run every ``benchmarks/bench_*.py`` (what ``make bench`` runs) and summarize the results.

Each benchmark runs in its own process (``python bench_x.py [--quick]``), one after another, so
that they do not compete for the machine.  Its output is shown live and saved to
``benchmarks/results/<name>.log`` (``benchmarks/results/quick/`` with ``--quick``); every line ``NAME: ours X s, baseline Y s, ratio R`` becomes a
row of ``benchmarks/results/summary.csv`` and ``summary.md`` (a Markdown table for the README).

    .venv/bin/python benchmarks/run_all.py [--quick] [--only selection limits ...]
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
LINE = re.compile(r"^(?P<name>\S+): ours (?P<ours>[0-9.eE+-]+) s, baseline (?P<baseline>[0-9.eE+-]+) s, "
                  r"ratio (?P<ratio>[0-9.eE+-]+|inf)(?P<rest>.*)$")
PEAK = re.compile(r"peak memory ours (?P<ours>[0-9.]+) MB, baseline (?P<baseline>[0-9.]+) MB")


def parse_lines(bench: str, text: str) -> list[dict[str, str]]:
    """Rows of the summary from one benchmark's output."""
    rows = []
    for line in text.splitlines():
        m = LINE.match(line.strip())
        if not m:
            continue
        peak = PEAK.search(m["rest"])
        rows.append({"benchmark": bench, "name": m["name"], "ours_s": m["ours"], "baseline_s": m["baseline"],
                     "ratio": m["ratio"], "ours_peak_mb": peak["ours"] if peak else "",
                     "baseline_peak_mb": peak["baseline"] if peak else ""})
    return rows


def run_one(script: Path, *, quick: bool, results: Path) -> tuple[int, float, str]:
    """Run one benchmark, teeing its output to the terminal and ``<results>/<name>.log``."""
    cmd = [sys.executable, str(script), *(["--quick"] if quick else [])]
    print(f"==> {' '.join(cmd)}", flush=True)
    t0 = time.perf_counter()
    lines = []
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=HERE.parent,
                          env=env) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.write(line)
            lines.append(line)
    elapsed = time.perf_counter() - t0
    text = "".join(lines)
    (results / f"{script.stem.removeprefix('bench_')}.log").write_text(text, encoding="utf-8")
    return proc.returncode, elapsed, text


def markdown(rows: list[dict[str, str]]) -> str:
    """The summary as a Markdown table."""
    out = ["| benchmark | measurement | ours [s] | baseline [s] | ratio baseline/ours | peak memory ours / baseline [MB] |",
           "| --- | --- | ---: | ---: | ---: | ---: |"]
    for r in rows:
        peak = f"{r['ours_peak_mb']} / {r['baseline_peak_mb']}" if r["ours_peak_mb"] else ""
        out.append(f"| {r['benchmark']} | {r['name']} | {r['ours_s']} | {r['baseline_s']} | {r['ratio']} | {peak} |")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks; exit status 1 if any failed."""
    parser = argparse.ArgumentParser(description="Run every benchmarks/bench_*.py and summarize.")
    parser.add_argument("--quick", action="store_true", help="pass --quick to every benchmark (smoke run)")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these (bench_NAME.py)")
    args = parser.parse_args(argv)
    results = RESULTS / "quick" if args.quick else RESULTS
    results.mkdir(parents=True, exist_ok=True)
    scripts = sorted(HERE.glob("bench_*.py"))
    if args.only:
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in args.only]
    rows, failed, timing = [], [], []
    for script in scripts:
        rc, elapsed, text = run_one(script, quick=args.quick, results=results)
        timing.append((script.name, rc, elapsed))
        rows.extend(parse_lines(script.stem.removeprefix("bench_"), text))
        if rc != 0:
            failed.append(script.name)
    with open(results / "summary.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["benchmark", "name", "ours_s", "baseline_s", "ratio", "ours_peak_mb",
                                                "baseline_peak_mb"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    table = markdown(rows)
    (results / "summary.md").write_text(table, encoding="utf-8")
    print("\n" + table)
    for name, rc, elapsed in timing:
        print(f"{name}: exit {rc}, {elapsed:.1f} s")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
