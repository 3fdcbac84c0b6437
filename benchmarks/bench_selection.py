"""Benchmark: the configured selection over >= 5 GB of reduced data (Parquet, many row groups).

Task: apply the default configuration's cuts (quality, fiducial, ROI; including the derived
``r_cm`` and ``log10_cs2``) to a bulk mock-data dataset and write the selected events (all
columns) to a Parquet file.  Three implementations, interleaved in one process:

* ours: ``dmpreserve.selection.stream.select_stream(..., cutflow=False)`` (cuts translated into one
  pushed-down expression, selected events written batch by batch; the cut flow is off because the
  baselines do not count it either); its peak memory is also measured alone in a fresh process;
* pyarrow: a bare ``pyarrow.dataset`` scan with the same filters pushed down, hand-written here,
  batches written with ``pyarrow.parquet.ParquetWriter`` in row groups of >= 2^17 rows, like ours
  (the floor on this machine);
* pandas: ``pandas.read_parquet`` of the whole dataset, numpy boolean masks, ``DataFrame.to_parquet``.

Sizes 0.5, 1, 2 and 5 GB (prefixes of one dataset, ``--quick``: 0.05-0.2 GB), for two layouts of the
same events (``--layout``, default both):

* ``clustered`` (the default of ``dmpreserve bulk-mdc``): each file's row groups hold contiguous cS1
  ranges, event order inside each, so the pushed-down ROI cut skips row groups by their statistics
  (pandas still reads everything): ``benchmarks/results/selection.csv`` and ``selection.png``;
* ``event``: plain event order, every row group spans the full cS1 range and nothing can be skipped:
  ``selection_event_order.csv`` and ``.png``.

Each dataset is made once with ``dmpreserve.mdc.bulk`` under ``benchmarks/data/`` (git-ignored;
``bulk`` and ``bulk_event_order``) or under ``--data``.

    .venv/bin/python benchmarks/bench_selection.py [--quick] [--data DIR] [--sizes 0.5 1 2 5] [--layout clustered event]
"""

from __future__ import annotations

import math
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import bench_args, child_peak_mb, interleave, print_ratio, write_results  # noqa: E402

from dmpreserve.config import load_config  # noqa: E402
from dmpreserve.files import read_json  # noqa: E402
from dmpreserve.mdc.bulk import SIDECAR, BulkOptions, dataset_files, generate_bulk  # noqa: E402
from dmpreserve.selection.cuts import cuts_from_config  # noqa: E402
from dmpreserve.selection.stream import select_stream  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "workflow" / "config" / "config.yaml"
GB = 1e9


#: Benchmark layouts: name -> (BulkOptions.cluster_by, dataset directory suffix, results name).
LAYOUTS = {"clustered": ("cs1_phd", "", "selection"), "event": (None, "_event_order", "selection_event_order")}


def ensure_dataset(directory: Path, size_gb: float, *, cluster_by: str | None) -> list[str]:
    """The files of a bulk dataset of at least ``size_gb`` (generated when missing, too small or of another layout)."""
    sidecar = directory / SIDECAR
    if sidecar.is_file():
        doc = read_json(sidecar)
        if (
            doc["generator"]["bytes"] >= 0.97 * size_gb * GB
            and "layout" in doc
            and doc["layout"]["clustered_by"] == cluster_by
        ):
            return dataset_files(directory)
    print(f"generating {size_gb} GB of bulk mock data in {directory} ...", flush=True)
    generate_bulk(directory, BulkOptions(target_bytes=int(size_gb * GB), cluster_by=cluster_by))
    return dataset_files(directory)


def prefix(files: list[str], size_gb: float) -> tuple[list[str], int]:
    """The first files whose sizes add up to about ``size_gb``; their total size [bytes]."""
    sizes = [Path(f).stat().st_size for f in files]
    n = min(len(files), max(1, round(size_gb * GB / (sum(sizes) / len(sizes)))))
    return files[:n], sum(sizes[:n])


def pyarrow_filter(cuts_cfg: list[dict]) -> ds.Expression:
    """The configured cuts written by hand as a pyarrow expression (r and log10 cS2 rewritten)."""
    f, expr = ds.field, None
    for c in cuts_cfg:
        lo, hi = c.get("min", -math.inf), c.get("max", math.inf)
        if c["variable"] == "r_cm":
            value, lo, hi = f("x_cm") * f("x_cm") + f("y_cm") * f("y_cm"), -math.inf, hi * hi
        elif c["variable"] == "log10_cs2":
            value, lo, hi = f("cs2_phd"), 10.0**lo, 10.0**hi
        else:
            value = f(c["variable"])
        for term in ([value >= lo] if lo > -math.inf else []) + ([value < hi] if hi < math.inf else []):
            expr = term if expr is None else expr & term
    return expr


def run_pyarrow(files: list[str], expr: ds.Expression, out: Path) -> int:
    """Bare pyarrow.dataset scan, filters pushed down; batches written in row groups of >= 2^17 rows."""
    dataset = ds.dataset(files, format="parquet")
    n, pending = 0, []
    with pq.ParquetWriter(out, dataset.schema, compression="zstd") as writer:
        for batch in dataset.scanner(filter=expr).to_batches():
            pending.append(batch)
            n += batch.num_rows
            if sum(b.num_rows for b in pending) >= 1 << 17:
                writer.write_table(pa.Table.from_batches(pending))
                pending = []
        writer.write_table(pa.Table.from_batches(pending, schema=dataset.schema))
    return n


def run_pandas(files: list[str], cuts_cfg: list[dict], out: Path) -> int:
    """pandas.read_parquet of everything, numpy boolean masks, to_parquet."""
    df = pd.read_parquet(files)
    mask = np.ones(len(df), dtype=bool)
    for c in cuts_cfg:
        if c["variable"] == "r_cm":
            values = np.hypot(df["x_cm"].to_numpy(), df["y_cm"].to_numpy())
        elif c["variable"] == "log10_cs2":
            values = np.log10(df["cs2_phd"].to_numpy())
        else:
            values = df[c["variable"]].to_numpy()
        mask &= (values >= c.get("min", -math.inf)) & (values < c.get("max", math.inf))
    selected = df[mask]
    selected.to_parquet(out, compression="zstd", index=False)
    return len(selected)


def ours_alone_peak_mb(files: list[str], out: Path) -> float:
    """Peak RSS [MB] of a fresh Python process that runs only ours (interpreter and imports included)."""
    code = (
        "from dmpreserve.config import load_config\n"
        "from dmpreserve.selection.cuts import cuts_from_config\n"
        "from dmpreserve.selection.stream import select_stream\n"
        f"cuts = cuts_from_config(load_config({str(CONFIG)!r}))\n"
        f"select_stream({files!r}, cuts, output={str(out)!r}, cutflow=False)"
    )
    return child_peak_mb(code)[0]


def main() -> None:
    """Run the benchmark."""
    default_data = ROOT / "benchmarks" / "data" / "bulk"
    args = bench_args(
        __doc__.splitlines()[0],
        extra=lambda p: (
            p.add_argument(
                "--data",
                type=Path,
                default=default_data,
                help="bulk dataset directory of the clustered layout (generated if missing; the "
                "event-order one gets the suffix _event_order)",
            ),
            p.add_argument("--sizes", type=float, nargs="+", default=None, help="dataset sizes [GB]"),
            p.add_argument("--repeat", type=int, default=None, help="timed rounds per size"),
            p.add_argument(
                "--layout",
                nargs="+",
                default=list(LAYOUTS),
                choices=list(LAYOUTS),
                help="bulk layouts to measure (default: both)",
            ),
        ),
    )
    sizes = args.sizes or ([0.05, 0.1, 0.2] if args.quick else [0.5, 1.0, 2.0, 5.0])
    repeat = args.repeat or (1 if args.quick else 3)
    data = args.data.with_name("bulk_quick") if args.quick and args.data == default_data else args.data
    for layout in args.layout:
        cluster_by, suffix, name = LAYOUTS[layout]
        files = ensure_dataset(data.with_name(data.name + suffix), max(sizes), cluster_by=cluster_by)
        rows = run_layout(files, sizes, repeat=repeat, name=name)
        path = write_results(name, rows, directory=args.results)
        print(f"wrote {path}")
        summarize_linearity(rows)
        plot(
            rows,
            args.results / f"{name}.png",
            title=" (row groups clustered by cS1)" if cluster_by else " (event order)",
        )


def run_layout(files: list[str], sizes: list[float], *, repeat: int, name: str) -> list[dict]:
    """Time the three implementations on prefixes of ``files``; one results row per size."""
    config = load_config(CONFIG)
    cuts, cuts_cfg = cuts_from_config(config), config.cuts()
    expr = pyarrow_filter(cuts_cfg)
    tmp = Path(tempfile.mkdtemp(prefix="bench_selection_"))
    rows = []
    try:
        for size in sizes:
            part, nbytes = prefix(files, size)
            res = interleave(
                {
                    "ours": lambda part=part: (
                        select_stream(part, cuts, output=tmp / "ours.parquet", cutflow=False).n_selected
                    ),
                    "pyarrow": lambda part=part: run_pyarrow(part, expr, tmp / "pyarrow.parquet"),
                    "pandas": lambda part=part: run_pandas(part, cuts_cfg, tmp / "pandas.parquet"),
                },
                repeat=repeat,
            )
            counts = {k: v.result for k, v in res.items()}
            if len(set(counts.values())) != 1:
                raise SystemExit(f"selected event counts differ: {counts}")
            label = f"{name}_{nbytes / GB:.2f}gb"
            r_pa = print_ratio(f"{label}_vs_pyarrow", res["ours"], res["pyarrow"])
            r_pd = print_ratio(f"{label}_vs_pandas", res["ours"], res["pandas"])
            n_events = sum(pq.ParquetFile(f).metadata.num_rows for f in part)
            alone_mb = ours_alone_peak_mb(part, tmp / "alone.parquet")
            print(f"{label}: ours alone in a fresh process: peak RSS {alone_mb:.0f} MB (limit 2000 MB)", flush=True)
            rows.append(
                {
                    "size_gb": round(nbytes / GB, 3),
                    "files": len(part),
                    "events": n_events,
                    "selected": counts["ours"],
                    **res["ours"].row("ours"),
                    **res["pyarrow"].row("pyarrow"),
                    **res["pandas"].row("pandas"),
                    "ours_over_pyarrow": round(1 / r_pa, 3),
                    "pandas_over_ours": round(r_pd, 3),
                    "ours_fresh_process_peak_rss_mb": round(alone_mb, 1),
                    "ours_gb_per_s": round(nbytes / GB / res["ours"].median_s, 3),
                }
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return rows


def summarize_linearity(rows: list[dict]) -> None:
    """Fit time = a + b * size for ours; print the slope and the largest relative residual."""
    if len(rows) < 2:
        return
    x = np.array([r["size_gb"] for r in rows])
    for name in ("ours", "pyarrow", "pandas"):
        y = np.array([r[f"{name}_median_s"] for r in rows])
        b, a = np.polyfit(x, y, 1)
        resid = np.max(np.abs(y - (a + b * x)) / y)
        print(f"linearity {name}: time = {a:.2f} s + {b:.2f} s/GB x size, largest relative residual {resid:.1%}")


def plot(rows: list[dict], path: Path, *, title: str = "") -> None:
    """Time versus size for the three implementations, with ours' peak memory."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.4), layout="constrained")
    ax = fig.add_subplot()
    x = [r["size_gb"] for r in rows]
    for name, label in (
        ("ours", "dmpreserve select_stream"),
        ("pyarrow", "bare pyarrow.dataset scan"),
        ("pandas", "pandas.read_parquet + masks"),
    ):
        ax.plot(x, [r[f"{name}_median_s"] for r in rows], "o-", label=label)
    ax.set_xlabel("reduced data [GB of Parquet]")
    ax.set_ylabel("wall time [s] (median)")
    ax.set_title("Selection over bulk mock data: time vs size" + title, fontsize=10)
    ax.legend()
    ax.grid(alpha=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, metadata={"Software": None})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
