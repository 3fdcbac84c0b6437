"""Layout of a reduced-data Parquet dataset: row groups clustered by one column.

A selection that pushes its cuts down to a ``pyarrow.dataset`` scan skips every row group whose
statistics (min, max) lie outside a cut.  In event (time) order every row group spans the whole
range of cS1, so nothing can be skipped; when each file's events are ranked by cS1 and cut into
row groups, the WIMP ROI (a few % of the events) lies in about one row group per file and the
scan skips the rest.  Events keep their event order inside each row group.

:func:`cluster_dataset` rewrites an existing dataset in this layout (``dmpreserve cluster``), one
file at a time; :mod:`dmpreserve.mdc.bulk` writes it directly.
"""

from __future__ import annotations

import concurrent.futures
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from dmpreserve.artifacts.reduced import PARQUET_READ_ERRORS, unreadable_parquet, validate_sidecar
from dmpreserve.errors import InvalidData
from dmpreserve.files import atomic_write, read_json, remove_stale_temporaries, write_json

#: Name of a dataset's sidecar inside its directory ("_" prefix: pyarrow.dataset and pandas skip it).
SIDECAR = "_dataset.json"
#: Columns a dataset can be clustered by.
CLUSTER_COLUMNS = ("cs1_phd", "cs2_phd", "drift_time_us", "s2_phd")


def cluster_order(values: np.ndarray, rows_per_group: int) -> np.ndarray:
    """Row order that clusters row groups of ``rows_per_group`` by ``values`` and keeps event order inside each.

    Row group k of the reordered file holds the events of rank ``[k * rows_per_group, (k + 1) *
    rows_per_group)`` in ``values`` (ties broken by event order), in their original order.
    """
    rank = np.empty(len(values), dtype=np.int64)
    rank[np.argsort(values, kind="stable")] = np.arange(len(values))
    return np.argsort(rank // rows_per_group, kind="stable")


def layout_doc(cluster_by: str | None, row_group_rows: int) -> dict[str, Any]:
    """The sidecar's ``layout`` entry."""
    if cluster_by is None:
        desc = "event order: every row group spans the full range of every column"
    else:
        desc = (
            f"row groups clustered by {cluster_by}: each file's events ranked by {cluster_by} and cut into row "
            f"groups of {row_group_rows} events (contiguous {cluster_by} ranges, so scans with pushed-down cuts "
            f"on it skip row groups); event order inside each row group"
        )
    return {"clustered_by": cluster_by, "row_group_rows": row_group_rows, "description": desc}


def write_table(
    table: pa.Table, path: str | os.PathLike, *, cluster_by: str | None, row_group_rows: int, compression: str
) -> int:
    """Write ``table`` atomically to ``path`` in the layout; returns its number of rows."""
    if cluster_by is not None:
        table = table.take(cluster_order(table.column(cluster_by).to_numpy(), row_group_rows))
    with atomic_write(path) as tmp:
        pq.write_table(
            table,
            tmp,
            compression=compression,
            row_group_size=row_group_rows,
            use_dictionary=False,
            write_statistics=True,
        )
    return table.num_rows


def _read_for_clustering(path: Path, by: str) -> pa.Table:
    try:
        table = pq.read_table(path)
    except PARQUET_READ_ERRORS as exc:
        raise unreadable_parquet(path, exc) from None
    if by not in table.column_names:
        raise InvalidData(
            f"no column {by!r} to cluster by (columns: {', '.join(table.column_names)})", path=path, field=by
        )
    values = table.column(by)
    if not pa.types.is_floating(values.type) and not pa.types.is_integer(values.type):
        raise InvalidData(f"column to cluster by must be numeric, not {values.type}", path=path, field=by)
    arr = values.to_numpy(zero_copy_only=False)
    if values.null_count or not np.all(np.isfinite(arr)):
        raise InvalidData("null, NaN or infinite values in the column to cluster by", path=path, field=by)
    return table


def cluster_dataset(
    source: str | os.PathLike,
    outdir: str | os.PathLike,
    *,
    by: str = "cs1_phd",
    row_group_rows: int = 125_000,
    compression: str = "zstd",
    threads: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Rewrite the Parquet dataset in directory ``source`` to ``outdir`` with row groups clustered by ``by``.

    Every ``*.parquet`` file of ``source`` (sorted by name) becomes a file of the same name with the
    same rows, schema and key-value metadata, reordered (:func:`cluster_order`).  The sidecar
    ``_dataset.json``, if present, is copied with ``layout`` set.  Nothing is left in ``outdir``
    on error: files are written to a staging directory beside it, renamed into place at the end.
    Memory: about three times the largest file's uncompressed size per thread.

    Returns:
        ``{"files": n, "events": n, "bytes": n, "layout": {...}}``.

    Raises:
        InvalidData: naming the file and field (missing directory or column, NaN, unreadable file,
            ``outdir`` not empty or the same as ``source``).
    """
    src, out = Path(source), Path(outdir)
    if by not in CLUSTER_COLUMNS:
        raise InvalidData(f"cannot cluster by {by!r}; choose one of {', '.join(CLUSTER_COLUMNS)}", field="by")
    if not isinstance(row_group_rows, int) or row_group_rows < 1:
        raise InvalidData(f"must be a positive number of events, got {row_group_rows!r}", field="row_group_rows")
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise InvalidData(f"must be a positive number of threads, got {threads!r}", field="threads")
    if not src.is_dir():
        raise InvalidData("input dataset directory not found", path=src)
    files = sorted(p for p in src.glob("*.parquet") if p.is_file())
    if not files:
        raise InvalidData("no *.parquet files in the input directory", path=src)
    if out.resolve() == src.resolve():
        raise InvalidData("output directory is the input directory", path=out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InvalidData("output directory exists and is not empty (choose a new one)", path=out)
    layout = layout_doc(by, row_group_rows)
    sidecar = None
    if (src / SIDECAR).is_file():
        sidecar = read_json(src / SIDECAR, what="dataset sidecar")
        if not isinstance(sidecar, dict):
            raise InvalidData("sidecar must be a JSON object", path=src / SIDECAR)
        sidecar = {**sidecar, "layout": layout}
        try:
            file_schema = pq.read_schema(files[0])
        except PARQUET_READ_ERRORS as exc:
            raise unreadable_parquet(files[0], exc) from None
        validate_sidecar(sidecar, file_schema, path=str(src / SIDECAR))
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent))
    try:

        def one(path: Path) -> int:
            return write_table(
                _read_for_clustering(path, by),
                stage / path.name,
                cluster_by=by,
                row_group_rows=row_group_rows,
                compression=compression,
            )

        workers = threads or min(2, os.cpu_count() or 1)
        with (
            tqdm(total=len(files), desc="clustering", unit="file", disable=not progress) as bar,
            concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool,
        ):
            counts = []
            for n in pool.map(one, files):
                counts.append(n)
                bar.update(1)
        if sidecar is not None:
            write_json(stage / SIDECAR, sidecar)
        nbytes = sum((stage / p.name).stat().st_size for p in files)
        if out.exists():
            out.rmdir()  # empty (checked above)
        os.replace(stage, out)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return {"files": len(files), "events": int(sum(counts)), "bytes": int(nbytes), "layout": layout}
