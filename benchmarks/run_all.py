"""Run every ``benchmarks/bench_*.py`` (what ``make bench`` runs) and summarize the results.

Each benchmark runs in its own process (``python bench_x.py [--quick]``), one after another, so
that they do not compete for the machine.  Its output is shown live and saved to
``benchmarks/results/<name>.log`` (``benchmarks/results/quick/`` with ``--quick``); every line
``NAME: ours X s, baseline Y s, ratio R`` becomes a row of ``summary.csv`` and ``summary.md`` there.

The report ``benchmarks/RESULTS.md`` is generated from the lines just measured, with the machine
(CPU model, cores, memory, load), the git commit and the UTC date.  Only a complete run (every
benchmark, no ``--quick``, no ``--only``, all succeeded) writes it; any other run writes its report
to ``RESULTS.md`` in its results directory (``benchmarks/results/quick/`` for ``--quick``), so a smoke
or partial run never replaces the published figures.

    .venv/bin/python benchmarks/run_all.py [--quick] [--only selection limits ...]
"""

from __future__ import annotations

import argparse
import csv
import datetime
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
#: The committed report; written only by a complete run (see :func:`report_path`).
REPORT = HERE / "RESULTS.md"
LINE = re.compile(
    r"^(?P<name>\S+): ours (?P<ours>[0-9.eE+-]+) s, baseline (?P<baseline>[0-9.eE+-]+) s, "
    r"ratio (?P<ratio>[0-9.eE+-]+|inf)(?P<rest>.*)$"
)
PEAK = re.compile(r"peak memory ours (?P<ours>[0-9.]+) MB, baseline (?P<baseline>[0-9.]+) MB")


def parse_lines(bench: str, text: str) -> list[dict[str, str]]:
    """Rows of the summary from one benchmark's output."""
    rows = []
    for line in text.splitlines():
        m = LINE.match(line.strip())
        if not m:
            continue
        peak = PEAK.search(m["rest"])
        rows.append(
            {
                "benchmark": bench,
                "name": m["name"],
                "ours_s": m["ours"],
                "baseline_s": m["baseline"],
                "ratio": m["ratio"],
                "ours_peak_mb": peak["ours"] if peak else "",
                "baseline_peak_mb": peak["baseline"] if peak else "",
            }
        )
    return rows


def run_one(script: Path, *, quick: bool, results: Path) -> tuple[int, float, str]:
    """Run one benchmark, teeing its output to the terminal and ``<results>/<name>.log``."""
    cmd = [sys.executable, str(script), *(["--quick"] if quick else [])]
    print(f"==> {' '.join(cmd)}", flush=True)
    t0 = time.perf_counter()
    lines = []
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=HERE.parent, env=env
    ) as proc:
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
    out = [
        "| benchmark | measurement | ours [s] | baseline [s] | ratio baseline/ours "
        "| peak memory ours / baseline [MB] |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        peak = f"{r['ours_peak_mb']} / {r['baseline_peak_mb']}" if r["ours_peak_mb"] else ""
        out.append(f"| {r['benchmark']} | {r['name']} | {r['ours_s']} | {r['baseline_s']} | {r['ratio']} | {peak} |")
    return "\n".join(out) + "\n"


#: What each benchmark's ratio line compares against: (benchmark, suffix of the line's name) -> baseline.
#: The first matching entry wins; ``""`` matches any name of that benchmark.
BASELINES: tuple[tuple[str, str, str], ...] = (
    ("selection", "_vs_pyarrow", "bare `pyarrow.dataset` scan, same filters pushed down (the floor)"),
    ("selection", "_vs_pandas", "`pandas.read_parquet` + numpy masks + `to_parquet`"),
    ("select_scatter", "", "one `select_stream` process over the whole dataset (cut flow and value checks on)"),
    (
        "limits",
        "",
        "pyhf 0.7.6 `upper_limit(data, model, scan=None, level=0.1)` (95% CL, pyhf#2563), JAX backend "
        "(jax 0.10.2) + scipy SLSQP, on 1 of the masses",
    ),
    (
        "toys",
        "_without_compile",
        'pyhf 0.7.6 `ToyCalculator(test_stat="qtilde").distributions(mu)`, JAX backend (jax 0.10.2) + scipy SLSQP, '
        "10 toys per hypothesis, JAX compile time left out",
    ),
    (
        "toys",
        "",
        'pyhf 0.7.6 `ToyCalculator(test_stat="qtilde").distributions(mu)`, JAX backend (jax 0.10.2) + scipy SLSQP, '
        "10 toys per hypothesis",
    ),
    (
        "release_fits",
        "",
        "the same likelihood in scipy (`tests/helpers/release_exact.py`: `RegularGridInterpolator` + "
        "`L-BFGS-B`), one fit per dataset",
    ),
    ("reinterpret", "", "`make run` (the whole pipeline)"),
    ("end_to_end", "", "`make run` from scratch (all jobs)"),
)

#: One sentence per benchmark: what "ours" is.
OURS = {
    "selection": "`dmpreserve.selection.select_stream(..., cutflow=False)` over bulk mock data "
    "(`selection_*`: row groups clustered by cS1; `selection_event_order_*`: plain event order)",
    "select_scatter": "the scattered `select` through Snakemake on 2 cores (`select-part` jobs + the gather; "
    "Snakemake's start-up included), over a bulk dataset of 40+ files; peak memory: the largest job's",
    "limits": "asymptotic limits + ±1σ/±2σ bands (CLs, Neyman t̃μ, PCL, p0) per mass of the default workspace",
    "toys": "q̃μ toy distributions (signal-like + background-like) at one mass",
    "release_fits": "free fits of XENONnT 2026 toy datasets (SI 6 GeV) with the release's own bilinear yield "
    "morphing, one batched Newton call",
    "reinterpret": "`dmpreserve reinterpret`, 50 SI masses from the kit (fresh process; `_inprocess`: in a running "
    "Python process)",
    "end_to_end": "rerun of the pipeline after a new signal model (only the downstream jobs)",
}


def baseline_of(bench: str, name: str) -> str:
    """The named baseline of one ratio line (``"?"`` for a benchmark not in :data:`BASELINES`)."""
    for b, suffix, what in BASELINES:
        if b == bench and name.endswith(suffix):
            return what
    return "?"


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read()
    except OSError:
        return ""


def machine_info() -> dict[str, str]:
    """CPU model, logical cores, memory, OS, Python and load average of this machine (Linux /proc)."""
    cpu = (
        next(
            (
                line.split(":", 1)[1].strip()
                for line in _read("/proc/cpuinfo").splitlines()
                if line.startswith("model name")
            ),
            "",
        )
        or platform.processor()
        or platform.machine()
    )
    mem = re.search(r"^MemTotal:\s+(\d+) kB", _read("/proc/meminfo"), re.M)
    os_name = re.search(r'^PRETTY_NAME="?([^"\n]*)"?', _read("/etc/os-release"), re.M)
    try:
        load = "{:.1f} {:.1f} {:.1f}".format(*os.getloadavg())
    except OSError:
        load = "unknown"
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count() or "unknown"),
        "memory": f"{int(mem[1]) / 2**20:.1f} GiB" if mem else "unknown",
        "os": os_name[1] if os_name else platform.platform(),
        "python": platform.python_version(),
        "load": load,
    }


def git_commit(repo: Path = HERE.parent) -> str:
    """``git rev-parse HEAD`` of the checkout, marked when tracked files have uncommitted changes."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=repo,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return f"{head} (with uncommitted changes)" if dirty else head


def report_path(*, quick: bool, only: Sequence[str] | None, failed: Sequence[str], results: Path) -> Path:
    """Where this run's report goes: ``benchmarks/RESULTS.md`` only for a complete, successful full run."""
    if quick or only or failed:
        return results / "RESULTS.md"
    return REPORT


def render_report(
    rows: Sequence[Mapping[str, str]],
    *,
    machine: Mapping[str, str],
    commit: str,
    date: str,
    timing: Sequence[tuple[str, int, float]],
    quick: bool = False,
    command: str = "python benchmarks/run_all.py",
) -> str:
    """``RESULTS.md``: the ratio lines of one run as a Markdown report.

    Args:
        rows: :func:`parse_lines` rows of every benchmark, in run order.
        machine: :func:`machine_info` (``load`` taken at the start of the run).
        commit: :func:`git_commit`.
        date: UTC date of the run (ISO, ``YYYY-MM-DD``).
        timing: (script, exit status, wall time [s]) per benchmark.
        quick: the run used ``--quick`` (small sizes, one repetition: a smoke test, not a measurement).
        command: how the run was started.
    """
    out = [
        "# Benchmark results",
        "",
        f"Generated by `{command}` from the measurements of that run; "
        "do not edit by hand. Rerun `make bench` to refresh it.",
        "",
    ]
    if quick:
        out += ["**Smoke run (`--quick`): small sizes, one repetition. These numbers are not measurements.**", ""]
    out += [
        "| | |",
        "| --- | --- |",
        f"| date (UTC) | {date} |",
        f"| git commit | `{commit}` |",
        f"| CPU | {machine.get('cpu', 'unknown')} |",
        f"| logical cores | {machine.get('cores', 'unknown')} |",
        f"| memory | {machine.get('memory', 'unknown')} |",
        f"| OS, Python | {machine.get('os', 'unknown')}, Python {machine.get('python', 'unknown')} |",
        f"| load average at the start (1, 5, 15 min) | {machine.get('load', 'unknown')} |",
        "",
    ]
    out += [
        "Each benchmark runs ours and its baseline interleaved in one process, so load on the machine hits "
        "both; times are medians of the repetitions, peak memory is the peak RSS above the RSS before the "
        "call. **ratio = baseline time / our time** (> 1: ours is faster).",
        "",
    ]
    out += [
        "| benchmark | measurement | ours [s] | baseline | baseline [s] | ratio | peak memory ours / baseline [MB] |",
        "| --- | --- | ---: | --- | ---: | ---: | ---: |",
    ]
    for r in rows:
        peak = f"{r['ours_peak_mb']} / {r['baseline_peak_mb']}" if r.get("ours_peak_mb") else ""
        out.append(
            f"| {r['benchmark']} | `{r['name']}` | {r['ours_s']} | {baseline_of(r['benchmark'], r['name'])} "
            f"| {r['baseline_s']} | {r['ratio']} | {peak} |"
        )
    if not rows:
        out.append("| (no ratio lines were printed) | | | | | | |")
    benches = [b for b in OURS if any(r["benchmark"] == b for r in rows)]
    if benches:
        out += ["", 'What "ours" is:', ""]
        out += [f"* **{b}**: {OURS[b]}" for b in benches]
    out += ["", "| script | exit status | wall time [s] |", "| --- | ---: | ---: |"]
    out += [f"| `{name}` | {rc} | {elapsed:.1f} |" for name, rc, elapsed in timing]
    out += [
        "",
        "Per-size and per-mass details: the CSV files and logs in `benchmarks/results/` of the run (not committed).",
    ]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks; exit status 1 if any failed."""
    parser = argparse.ArgumentParser(description="Run every benchmarks/bench_*.py and summarize.")
    parser.add_argument("--quick", action="store_true", help="pass --quick to every benchmark (smoke run)")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these (bench_NAME.py)")
    args = parser.parse_args(argv)
    results = RESULTS / "quick" if args.quick else RESULTS
    results.mkdir(parents=True, exist_ok=True)
    machine = machine_info()  # the load average before the benchmarks start
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
        writer = csv.DictWriter(
            fh,
            fieldnames=["benchmark", "name", "ours_s", "baseline_s", "ratio", "ours_peak_mb", "baseline_peak_mb"],
            lineterminator="\n",
        )
        writer.writeheader()
        writer.writerows(rows)
    table = markdown(rows)
    (results / "summary.md").write_text(table, encoding="utf-8")
    print("\n" + table)
    for name, rc, elapsed in timing:
        print(f"{name}: exit {rc}, {elapsed:.1f} s")
    report = report_path(quick=args.quick, only=args.only, failed=failed, results=results)
    command = " ".join(["python benchmarks/run_all.py", *(argv if argv is not None else sys.argv[1:])])
    text = render_report(
        rows,
        machine=machine,
        commit=git_commit(),
        date=datetime.datetime.now(datetime.UTC).date().isoformat(),
        timing=timing,
        quick=args.quick,
        command=command,
    )
    tmp = report.with_name(f".{report.name}.part")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, report)
    print(
        f"wrote {report}" + ("" if report == REPORT else " (not benchmarks/RESULTS.md: quick, partial or failed run)")
    )
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
