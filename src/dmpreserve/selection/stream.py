"""The streaming selection engine: the cuts as pyarrow compute expressions pushed down into a
``pyarrow.dataset`` scan of a Parquet dataset of any size, batch by batch with bounded memory.

It applies the same :class:`~dmpreserve.selection.cuts.Cut` definitions as the in-memory engine
(:func:`~dmpreserve.selection.cuts.apply_cuts`) and selects bit for bit the same events, in the same
order (files in the given order, rows in file order).  It is the engine of the ``select`` step
(:mod:`dmpreserve.selection.scatter`), where it also checks the values batch by batch.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from tqdm import tqdm

from dmpreserve.artifacts.reduced import (
    PARQUET_READ_ERRORS,
    check_batch_values,
    column_catalogue,
    unreadable_parquet,
)
from dmpreserve.artifacts.tables import CutFlow
from dmpreserve.errors import InvalidData
from dmpreserve.files import atomic_write, write_json
from dmpreserve.selection.cuts import ALL_EVENTS, Cut

#: Rows per scanned batch, and how many batches/files the scanner reads ahead (bounds the memory).
BATCH_ROWS = 1 << 17
BATCH_READAHEAD, FRAGMENT_READAHEAD = 2, 1
#: Rows per row group of the output file (selected batches are buffered up to this size).
OUTPUT_ROW_GROUP_ROWS = 1 << 17


def _log10_threshold(bound: float) -> float:
    """The smallest float c >= 0 with ``numpy.log10(c) >= bound`` (bisection over the bit patterns of
    the non-negative floats, whose order is their numerical order; log10 is monotonic).

    ``lo <= log10(cS2) < hi`` is then exactly ``t(lo) <= cS2 < t(hi)``, with no logarithm per event:
    the same events as the in-memory engine even at the bound itself, where ``10**bound`` may round
    to either side (and over- or underflows beyond the float range).
    """
    lo, hi = 0, 0x7FF0000000000000  # bit patterns of 0.0 and +inf; log10(+inf) = +inf >= any bound
    with np.errstate(divide="ignore"):
        while lo < hi:
            mid = (lo + hi) // 2
            if np.log10(np.uint64(mid).view(np.float64)) >= bound:
                hi = mid
            else:
                lo = mid + 1
    return float(np.uint64(lo).view(np.float64))


def cut_expression(cut: Cut) -> ds.Expression:
    """The pyarrow dataset expression that keeps the events passing ``cut``.

    ``r_cm`` is computed as
    ``sqrt(x*x + y*y)`` with the same correctly rounded IEEE operations as
    :meth:`dmpreserve.artifacts.reduced.ReducedData.variable`, so both engines agree bit for bit (squaring the
    bounds instead would underflow or overflow for extreme ones).  ``lo <= log10(cS2) < hi`` becomes
    ``t(lo) <= cS2 < t(hi)`` with exact thresholds (:func:`_log10_threshold`; no logarithm per event).
    """
    lo, hi = cut.lower, cut.upper
    x, y = ds.field("x_cm"), ds.field("y_cm")
    if cut.variable == "r_cm":
        value = pc.sqrt(pc.add(pc.multiply(x, x), pc.multiply(y, y)))
    elif cut.variable == "log10_cs2":  # log10 of a negative cS2 is NaN and fails every cut: lower bound >= 0
        value = ds.field("cs2_phd")
        lo, hi = _log10_threshold(lo), _log10_threshold(hi)
    else:
        value = ds.field(cut.variable)
    # ``value < hi`` even for hi = inf, as in Cut.mask: a derived r that overflowed to inf fails it
    cond = pc.less(value, pa.scalar(float(hi)))
    if lo > -math.inf or cut.variable == "log10_cs2":
        cond = pc.and_kleene(pc.greater_equal(value, pa.scalar(float(lo))), cond)
    return cond


def cuts_expression(cuts: Sequence[Cut]) -> ds.Expression | None:
    """The conjunction of all cuts (None when there are none)."""
    expr = None
    for cut in cuts:
        term = cut_expression(cut)
        expr = term if expr is None else pc.and_kleene(expr, term)
    return expr


def needed_columns(cuts: Sequence[Cut]) -> tuple[str, ...]:
    """Reduced-data columns the cuts read, in first-use order."""
    out: list[str] = []
    for cut in cuts:
        out.extend(c for c in cut.columns if c not in out)
    return tuple(out)


def open_dataset(source: str | os.PathLike | Sequence[str | os.PathLike]) -> ds.Dataset:
    """A Parquet dataset from a file, a directory of ``*.parquet`` files or a list of files.

    Raises:
        InvalidData: the source is missing, empty or not Parquet; a column has the wrong dtype.
    """
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_dir():
            files = sorted(str(p) for p in path.glob("*.parquet"))
        elif path.is_file():
            files = [str(path)]
        else:
            raise InvalidData("reduced-data file or directory not found", path=path)
        where = str(path)
    else:
        files, where = [str(p) for p in source], ", ".join(str(p) for p in source)[:200]
    if not files:
        raise InvalidData("no Parquet files (*.parquet) in the directory", path=where)
    try:
        dataset = ds.dataset(files, format="parquet")
    except PARQUET_READ_ERRORS as exc:
        raise unreadable_parquet(where, exc, what="dataset") from None
    catalogue = column_catalogue()
    for name in dataset.schema.names:
        expected = catalogue.get(name, {}).get("dtype")
        got = dataset.schema.field(name).type
        if expected and got != pa.from_numpy_dtype(np.dtype(expected)):
            raise InvalidData(f"column has type {got}, the reduced-data schema says {expected}", path=where, field=name)
    return dataset


@dataclasses.dataclass(frozen=True)
class StreamSelection:
    """Result of :func:`select_stream`.

    Attributes:
        n_events: Events scanned.
        n_selected: Events passing all cuts.
        cutflow: Events after each cut (None when run with ``cutflow=False``).
        n_batches: Batches streamed.
        output: The Parquet file written (None: nothing written).
        table: The selected events, when neither ``output`` nor ``collect=False`` was given.
    """

    n_events: int
    n_selected: int
    cutflow: CutFlow | None
    n_batches: int
    output: str | None = None
    table: pa.Table | None = None


def _cut_flags(n_cuts: int) -> list[str]:
    """Names of the projected per-cut boolean columns of a cut-flow scan."""
    return [f"__dmpreserve_cut_{i}" for i in range(n_cuts)]


def _batch_mask(batch: pa.RecordBatch, n_cuts: int, counts: list[int]) -> pa.Array:
    """Cumulative mask from a batch's per-cut flags; adds the events left after each cut to ``counts``."""
    mask = None
    for i, flag in enumerate(_cut_flags(n_cuts)):
        cond = batch.column(flag)
        mask = cond if mask is None else pc.and_(mask, cond)
        counts[i] += pc.sum(mask).as_py() or 0
    return mask


def _where(source: Any) -> str:
    """The source named in an error: a path, or the first files of a list or dataset."""
    if isinstance(source, ds.FileSystemDataset):
        source = source.files
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    return ", ".join(str(p) for p in source)[:200]


def select_stream(
    source: str | os.PathLike | Sequence[str | os.PathLike] | ds.Dataset,
    cuts: Sequence[Cut],
    *,
    columns: Sequence[str] | None = None,
    output: str | os.PathLike | None = None,
    sidecar_meta: dict[str, Any] | None = None,
    cutflow: bool = True,
    collect: bool = True,
    batch_rows: int = BATCH_ROWS,
    use_threads: bool = True,
    progress: bool = False,
    compression: str = "zstd",
    check_values: bool = False,
) -> StreamSelection:
    """Apply ``cuts`` to a Parquet dataset, streaming batch by batch with bounded memory.

    With ``cutflow=False`` the conjunction of the cuts is pushed down into the ``pyarrow.dataset``
    scan (row groups whose statistics exclude it are skipped, the rest filtered in Arrow's threads);
    with ``cutflow=True`` the scan projects one boolean flag per cut (evaluated in Arrow's scan
    threads) and each batch is filtered here by the cumulative flags, counting the events left
    after each cut.  Memory is bounded by the read-ahead (:data:`BATCH_READAHEAD` batches of
    ``batch_rows``, :data:`FRAGMENT_READAHEAD` files) and one output row group, whatever the size.  The
    selected events are written to ``output`` (Parquet,
    atomically, batch by batch) or, without ``output``, collected into a table (``collect``).

    Args:
        source: A Parquet file, a directory of them, a list of files or an open dataset.
        cuts: The cuts, applied in order.
        columns: Columns of the selected events (default: all).
        output: Parquet file for the selected events.
        sidecar_meta: With ``output``: sidecar fields (the reduced-data format); ``n_events`` and
            ``columns`` are filled in and the sidecar is written beside ``output``.
        cutflow: Count the events after each cut.
        collect: Without ``output``: keep the selected events in memory (False: count only).
        batch_rows: Rows per scanned batch.
        use_threads: Let Arrow decode in parallel.
        progress: Show a progress bar (events).
        compression: Parquet codec of ``output``.
        check_values: Check the values of every scanned batch (no nulls, finite floats, non-negative
            areas and times: :func:`~dmpreserve.artifacts.reduced.check_batch_values`, naming the batch's
            file) and that the selected events' ``event_id`` are unique.  With ``cutflow=True`` every event
            of the output columns is checked; with ``cutflow=False`` only the events the pushed-down
            filter lets through.

    Returns:
        A :class:`StreamSelection`.

    Raises:
        InvalidData: a column is missing or has the wrong dtype; with ``check_values`` a bad value (naming
            the file and column) or a duplicate selected event id.  Nothing is left at ``output``.
    """
    dataset = source if isinstance(source, ds.Dataset) else open_dataset(source)
    names = dataset.schema.names
    out_cols = list(columns) if columns is not None else list(names)
    for name in [*out_cols, *needed_columns(cuts)]:
        if name not in names:
            raise InvalidData(
                "column needed by the selection is missing from the dataset",
                field=name,
                path=_where(source),
            )
    scan_cols: list[str] | dict[str, ds.Expression] = out_cols
    if cutflow:  # each cut's flag is computed in Arrow's scan threads, the cumulative masks here
        scan_cols = {
            **{c: ds.field(c) for c in out_cols},
            **{flag: cut_expression(cut) for flag, cut in zip(_cut_flags(len(cuts)), cuts)},
        }
    scanner = dataset.scanner(
        columns=scan_cols,
        filter=None if cutflow else cuts_expression(cuts),
        batch_size=batch_rows,
        batch_readahead=BATCH_READAHEAD,
        fragment_readahead=FRAGMENT_READAHEAD,
        use_threads=use_threads,
    )
    total = dataset.count_rows() if (progress or not cutflow) else 0
    counts = [0] * len(cuts)
    n_events = n_selected = n_batches = 0
    kept: list[pa.RecordBatch] = []
    ids: list[np.ndarray] = []  # selected event ids (check_values)
    pending: list[pa.RecordBatch] = []  # selected batches not yet written (one output row group)
    schema = pa.schema([dataset.schema.field(c) for c in out_cols])
    with contextlib.ExitStack() as stack:
        writer = None
        if output is not None:
            tmp = stack.enter_context(atomic_write(output))
            writer = stack.enter_context(pq.ParquetWriter(tmp, schema, compression=compression))
        bar = stack.enter_context(
            tqdm(total=total or None, desc="select", unit="evt", unit_scale=True, mininterval=1.0, disable=not progress)
        )
        for tagged in scanner.scan_batches():
            batch = tagged.record_batch
            n_batches += 1
            if check_values:
                check_batch_values(batch.select(out_cols), path=tagged.fragment.path)
            if cutflow:
                n_events += batch.num_rows
                if cuts:
                    batch = batch.filter(_batch_mask(batch, len(cuts), counts))
                batch = batch.select(out_cols)
            if check_values and "event_id" in out_cols:
                ids.append(batch.column("event_id").to_numpy())
            n_selected += batch.num_rows
            if writer is not None:
                pending.append(batch)
                if sum(b.num_rows for b in pending) >= OUTPUT_ROW_GROUP_ROWS:
                    writer.write_table(pa.Table.from_batches(pending, schema=schema))
                    pending = []
            elif collect:
                kept.append(batch)
            bar.update(batch.num_rows if not cutflow else 0)
        if ids:
            sel = np.concatenate(ids)
            if len(np.unique(sel)) != len(sel):
                raise InvalidData(
                    "duplicate event ids among the selected events", path=_where(source), field="event_id"
                )
        if writer is not None:
            if pending or n_selected == 0:
                writer.write_table(pa.Table.from_batches(pending, schema=schema))
            writer.close()
    if not cutflow:
        n_events = total
    flow = None
    if cutflow:
        flow = CutFlow(
            ("all", *(c.name for c in cuts)),
            (ALL_EVENTS, *(c.label for c in cuts)),
            (n_events, *counts),
        )
    if output is not None and sidecar_meta is not None:
        catalogue = column_catalogue()
        doc = {k: v for k, v in sidecar_meta.items() if k not in ("columns", "n_events")}
        doc["n_events"] = n_selected
        doc["columns"] = {
            c: {"unit": catalogue[c]["unit"], "description": catalogue[c]["description"]}
            for c in out_cols
            if c in catalogue
        }
        write_json(Path(output).with_suffix(".json"), doc)
    table = pa.Table.from_batches(kept, schema=schema) if output is None and collect else None
    return StreamSelection(
        n_events=n_events,
        n_selected=n_selected,
        cutflow=flow,
        n_batches=n_batches,
        output=None if output is None else str(output),
        table=table,
    )
