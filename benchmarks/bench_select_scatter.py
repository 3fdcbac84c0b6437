"""Benchmark: the scattered ``select`` through Snakemake vs one streaming process over the whole dataset.

Task: select a bulk science dataset of many files (default 5 GB, >= 40 files) with the default
configuration's cuts, with the cut flow and the value checks.  Two ways, interleaved:

* ours: the workflow's way -- a tiny Snakefile (in a temporary directory) with one ``select_part``
  job per group of ``--files-per-part`` files (``dmpreserve select-part``) and the ``select`` gather
  (``dmpreserve select``: parts concatenated, cut flows summed, acceptance of a small synthetic NR
  simulation, exposure), run with ``snakemake --cores 2``; its wall time includes Snakemake itself
  and every job's interpreter start;
* baseline: one fresh Python process running
  ``select_stream(all files, cuts, output=..., cutflow=True, check_values=True)``.

Each job's peak memory is its process's peak RSS (``resource.getrusage(RUSAGE_CHILDREN)`` in a small
wrapper around the job's command; the wrapper's own RSS, ~10 MB, is included).  Snakemake's fixed
start-up (a workflow without jobs, timed in the same rounds) is reported too: on a machine with
SLURM's client tools but no controller, the SLURM executor plugin's ``scontrol show config`` alone
waits ~9 s at every Snakemake start.  Goals (issue 14):
ours within 1.2x the baseline's time on 2 cores, every job's peak RSS under 1 GB.  Both select the
same events (checked).

The dataset: a prefix of ``--data`` (default ``benchmarks/data/bulk``, shared with
``bench_selection.py``) when it holds enough files of the size asked, else a bulk dataset generated
with as many files as ``--files`` under ``benchmarks/data/bulk_scatter_<size>gb``.  Each file gets its
own sidecar (from the bulk dataset's ``_dataset.json``; live time split by rows) in the temporary
directory, next to a link to the file.

    .venv/bin/python benchmarks/bench_select_scatter.py [--quick] [--size-gb 5] [--files 40] [--files-per-part 12]
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Timing, bench_args, child_peak_mb, print_ratio, write_results  # noqa: E402

from dmpreserve.artifacts.reduced import write_reduced  # noqa: E402
from dmpreserve.files import read_json  # noqa: E402
from dmpreserve.mdc.bulk import SIDECAR, BulkOptions, dataset_files, generate_bulk  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "workflow" / "config" / "config.yaml"
GB = 1e9
#: Bytes per event of a bulk file (zstd, default options; ~110 MB per 2M-row file).
BYTES_PER_ROW = 55.0
#: The goals.
MAX_TIME_RATIO, MAX_JOB_RSS_MB = 1.2, 1000.0

#: Runs a command and writes its peak RSS [MB] (ru_maxrss of the waited-for child) to a file.
PEAK_WRAPPER = textwrap.dedent(
    """\
    import resource, subprocess, sys, time
    out, cmd = sys.argv[1], sys.argv[2:]
    t0 = time.time()
    rc = subprocess.call(cmd)
    with open(out, "w") as fh:
        fh.write(f"{resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1e3} {t0} {time.time()}")
    sys.exit(rc)
    """
)

SNAKEFILE = textwrap.dedent(
    """\
    import json
    PARTS = json.load(open("parts.json"))
    PY, CONFIG = {py!r}, {config!r}
    RUN = PY + " peak_rss.py"

    wildcard_constraints:
        i=r"\\d+",

    rule all:
        input:
            "out/selected.parquet",

    rule select_part:
        input:
            lambda wc: PARTS[int(wc.i)],
        output:
            parquet="parts/part-{{i}}.parquet",
            sidecar="parts/part-{{i}}.json",
            cutflow="parts/part-{{i}}_cutflow.json",
        shell:
            RUN + " rss/part-{{wildcards.i}}.mb " + PY + " -m dmpreserve select-part --config " + CONFIG
            + " --science {{input}} --selected {{output.parquet}} --cutflow {{output.cutflow}} 2> /dev/null"

    rule select:
        input:
            parts=expand("parts/part-{{i}}.parquet", i=range(len(PARTS))),
            cutflows=expand("parts/part-{{i}}_cutflow.json", i=range(len(PARTS))),
        output:
            "out/selected.parquet",
            "out/cutflow.csv",
        shell:
            RUN + " rss/gather.mb " + PY + " -m dmpreserve select --config " + CONFIG
            + " --parts {{input.parts}} --part-cutflows {{input.cutflows}} --sim-nr sim_nr.parquet"
            + " --selected out/selected.parquet --cutflow out/cutflow.csv --acceptance out/acceptance.csv"
            + " --exposure out/exposure.json 2> /dev/null"
    """
)


def dataset(data: Path, size_gb: float, n_files: int) -> list[str]:
    """At least ``n_files`` bulk files adding up to about ``size_gb`` (see the module docstring)."""
    files = dataset_files(data) if (data / SIDECAR).is_file() else []
    if files:
        sizes = [Path(f).stat().st_size for f in files]
        n = min(len(files), max(1, round(size_gb * GB / (sum(sizes) / len(sizes)))))
        if n >= n_files and sum(sizes) >= 0.97 * size_gb * GB:
            return files[:n]
    own = data.with_name(f"bulk_scatter_{size_gb:g}gb")
    if (own / SIDECAR).is_file() and len(dataset_files(own)) >= n_files:
        return dataset_files(own)
    rows = max(10_000, int(size_gb * GB / n_files / BYTES_PER_ROW))
    print(f"generating {size_gb} GB of bulk mock data ({rows} events per file) in {own} ...", flush=True)
    generate_bulk(
        own, BulkOptions(target_bytes=int(size_gb * GB), rows_per_file=rows, row_group_rows=min(125_000, rows // 4))
    )
    return dataset_files(own)


def link_with_sidecars(files: list[str], dest: Path) -> list[str]:
    """Links to ``files`` in ``dest``, each with its own reduced-data sidecar (live time split by rows)."""
    doc = read_json(Path(files[0]).parent / SIDECAR)
    rows = [pq.ParquetFile(f).metadata.num_rows for f in files]
    live_per_row = doc["live_time_s"] / doc["n_events"]
    dest.mkdir(parents=True)
    out = []
    for f, n in zip(files, rows):
        link = dest / Path(f).name
        link.symlink_to(Path(f).resolve())
        side = {k: v for k, v in doc.items() if k not in ("exposure", "generator")}
        side |= {"n_events": n, "live_time_s": n * live_per_row, "generator": {"bulk_file": Path(f).name}}
        link.with_suffix(".json").write_text(json.dumps(side), encoding="utf-8")
        out.append(str(link))
    return out


def synthetic_sim_nr(sidecar: dict, path: Path, n: int = 20_000) -> None:
    """A small flat-energy NR 'simulation' in the bulk detector (only for the gather's acceptance step)."""
    rng = np.random.default_rng(1)
    vol = sidecar["active_volume"]
    r = vol["r_max_cm"] * np.sqrt(rng.uniform(size=n))
    phi = rng.uniform(0, 2 * np.pi, n)
    e = rng.uniform(1.0, 60.0, n)
    s1 = np.maximum(0.3 * e * rng.normal(1.0, 0.2, n), 0.0)
    s2 = 30.0 * e * rng.lognormal(0.0, 0.3, n) + 200.0
    cols = {
        "event_id": np.arange(n, dtype=np.int64),
        "s1_phd": s1,
        "s2_phd": s2,
        "cs1_phd": s1,
        "cs2_phd": s2,
        "drift_time_us": rng.uniform(vol["drift_time_min_us"], vol["drift_time_max_us"], n),
        "x_cm": r * np.cos(phi),
        "y_cm": r * np.sin(phi),
        "s1_coincidence": rng.integers(1, 20, n).astype(np.int64),
        "true_energy_kev": e,
    }
    meta = {k: sidecar[k] for k in ("format", "format_version", "detector", "active_volume")}
    write_reduced(path, cols, {**meta, "kind": "simulation_nr", "energy_range_kev": [1.0, 60.0]})


def run_scattered(files: list[str], per_part: int, work: Path, sim: Path) -> tuple[float, dict[str, float], int]:
    """Run the scattered select with Snakemake on 2 cores; (wall time [s], peak RSS per job [MB], selected)."""
    work.mkdir(parents=True)
    (work / "rss").mkdir()
    shutil.copy(sim, work / "sim_nr.parquet")
    shutil.copy(sim.with_suffix(".json"), work / "sim_nr.json")
    parts = [files[i : i + per_part] for i in range(0, len(files), per_part)]
    (work / "parts.json").write_text(json.dumps(parts), encoding="utf-8")
    (work / "peak_rss.py").write_text(PEAK_WRAPPER, encoding="utf-8")
    (work / "Snakefile").write_text(SNAKEFILE.format(py=sys.executable, config=str(CONFIG)), encoding="utf-8")
    exe = shutil.which("snakemake", path=str(Path(sys.executable).parent)) or "snakemake"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    t0, t_wall0 = time.perf_counter(), time.time()
    proc = subprocess.run(
        [exe, "--cores", "2", "--quiet", "all", "--nolock"], cwd=work, env=env, capture_output=True, text=True
    )
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"snakemake failed:\n{proc.stderr[-3000:]}")
    jobs = {p.stem: [float(v) for v in p.read_text().split()] for p in sorted((work / "rss").glob("*.mb"))}
    rss = {k: v[0] for k, v in jobs.items()}
    first, last = min(v[1] for v in jobs.values()), max(v[2] for v in jobs.values())
    busy = sum(v[2] - v[1] for v in jobs.values())
    print(
        f"  snakemake {elapsed:.2f} s: jobs ran from {first - t_wall0:.2f} s to {last - t_wall0:.2f} s, "
        f"{len(jobs)} jobs, {busy:.2f} job-seconds",
        flush=True,
    )
    return elapsed, rss, pq.ParquetFile(work / "out" / "selected.parquet").metadata.num_rows


def snakemake_startup(work: Path) -> float:
    """Wall time [s] of Snakemake running a workflow without jobs: its fixed start-up on this machine."""
    work.mkdir(parents=True)
    (work / "Snakefile").write_text("rule all:\n    input: []\n", encoding="utf-8")
    exe = shutil.which("snakemake", path=str(Path(sys.executable).parent)) or "snakemake"
    t0 = time.perf_counter()
    subprocess.run([exe, "--cores", "2", "--quiet", "all", "--nolock"], cwd=work, capture_output=True, check=True)
    return time.perf_counter() - t0


def run_baseline(files: list[str], out: Path) -> tuple[float, float, int]:
    """One fresh process: select_stream over every file; (wall time [s], peak RSS [MB], selected)."""
    code = (
        "from dmpreserve.config import load_config\n"
        "from dmpreserve.selection.cuts import cuts_from_config\n"
        "from dmpreserve.selection.stream import select_stream\n"
        f"cuts = cuts_from_config(load_config({str(CONFIG)!r}))\n"
        f"res = select_stream({files!r}, cuts, output={str(out)!r}, cutflow=True, check_values=True)\n"
        "print('__selected__', res.n_selected)"
    )
    t0 = time.perf_counter()
    peak, stdout = child_peak_mb(code, cwd=ROOT)
    elapsed = time.perf_counter() - t0
    return elapsed, peak, int(stdout.split("__selected__")[1].split()[0])


def main() -> None:
    """Run the benchmark."""
    args = bench_args(
        __doc__.splitlines()[0],
        extra=lambda p: (
            p.add_argument("--size-gb", type=float, default=None, help="dataset size [GB] (default 5; --quick 0.3)"),
            p.add_argument("--files", type=int, default=40, help="at least this many files"),
            p.add_argument(
                "--files-per-part", type=int, default=12, help="science files per select-part job (46 files: 4 jobs)"
            ),
            p.add_argument("--repeat", type=int, default=None, help="timed rounds (default 3; --quick 1)"),
            p.add_argument("--data", type=Path, default=ROOT / "benchmarks" / "data" / "bulk", help="bulk dataset"),
        ),
    )
    size = args.size_gb or (0.3 if args.quick else 5.0)
    repeat = args.repeat or (1 if args.quick else 3)
    files = dataset(args.data, size, args.files)
    nbytes = sum(Path(f).stat().st_size for f in files)
    tmp = Path(tempfile.mkdtemp(prefix="bench_select_scatter_"))
    try:
        linked = link_with_sidecars(files, tmp / "science")
        synthetic_sim_nr(read_json(Path(files[0]).parent / SIDECAR), tmp / "sim_nr.parquet")
        for f in files:  # read once untimed: both ways then start from the page cache
            with open(f, "rb") as fh:
                while fh.read(1 << 24):
                    pass
        ours_t, base_t, base_peak, job_rss, start_t = [], [], 0.0, {}, []
        for i in range(repeat):  # interleaved: ours, baseline, ours, baseline, ...
            t, rss, n_ours = run_scattered(linked, args.files_per_part, tmp / f"wf{i}", tmp / "sim_nr.parquet")
            ours_t.append(t)
            job_rss = {k: max(v, job_rss.get(k, 0.0)) for k, v in rss.items()}
            start_t.append(snakemake_startup(tmp / f"startup{i}"))
            t, peak, n_base = run_baseline(linked, tmp / "baseline.parquet")
            base_t.append(t)
            base_peak = max(base_peak, peak)
            if n_ours != n_base:
                raise SystemExit(f"selected event counts differ: scattered {n_ours}, single process {n_base}")
            print(
                f"round {i}: scattered {ours_t[-1]:.2f} s (Snakemake start-up alone {start_t[-1]:.2f} s), "
                f"single process {base_t[-1]:.2f} s",
                flush=True,
            )
        ours = Timing(tuple(ours_t), max(job_rss.values()), n_ours)
        base = Timing(tuple(base_t), base_peak, n_base)
        n_parts = -(-len(files) // args.files_per_part)
        label = f"select_scatter_{nbytes / GB:.2f}gb_{len(files)}files_{n_parts}parts"
        ratio = print_ratio(label, ours, base)
        worst = max(job_rss, key=job_rss.get)
        slow = ours.median_s / base.median_s
        startup = float(np.median(start_t))
        slow_jobs = (ours.median_s - startup) / base.median_s
        print(
            f"{label}: scattered/single-process time {slow:.3f} (goal <= {MAX_TIME_RATIO}: "
            f"{'met' if slow <= MAX_TIME_RATIO else 'NOT met'}); largest job peak RSS {job_rss[worst]:.0f} MB "
            f"({worst}; goal < {MAX_JOB_RSS_MB:.0f} MB: {'met' if job_rss[worst] < MAX_JOB_RSS_MB else 'NOT met'})",
            flush=True,
        )
        print(
            f"{label}: without Snakemake's fixed start-up ({startup:.2f} s, a workflow without jobs on this machine) "
            f"the scattered select takes {slow_jobs:.3f} x the single process",
            flush=True,
        )
        row = {
            "size_gb": round(nbytes / GB, 3),
            "files": len(files),
            "parts": n_parts,
            "files_per_part": args.files_per_part,
            "selected": n_ours,
            **ours.row("scattered"),
            **base.row("single_process"),
            "scattered_over_single": round(slow, 3),
            "snakemake_startup_s": round(startup, 3),
            "scattered_minus_startup_over_single": round(slow_jobs, 3),
            "single_over_scattered": round(ratio, 3),
            "max_part_job_peak_rss_mb": round(max(v for k, v in job_rss.items() if k != "gather"), 1),
            "gather_job_peak_rss_mb": round(job_rss.get("gather", 0.0), 1),
        }
        path = write_results("select_scatter", [row], directory=args.results)
        print(f"wrote {path}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
