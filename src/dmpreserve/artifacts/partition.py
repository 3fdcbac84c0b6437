"""Split one reduced-data file into a dataset of several (``dmpreserve partition``).

Used to serve the mock science run as a directory of Parquet files (the XRootD CI stage, the
directory-input tests), and for a data provider who wants to ship a large file in parts.  The parts
are contiguous slices of the events in file order (so a dataset read of the parts in order gives the
original events in the original order), each with its own sidecar: ``n_events`` and ``live_time_s``
are the part's, the live times summing exactly (:func:`math.fsum`) to the original's.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import pyarrow.parquet as pq

from dmpreserve.artifacts.reduced import read_reduced, sidecar_path
from dmpreserve.errors import InvalidData
from dmpreserve.files import atomic_write, write_json

SECONDS_PER_DAY = 86400.0
#: The Julian year [s] (as the exposure of dmpreserve.selection).
SECONDS_PER_YEAR = 365.25 * SECONDS_PER_DAY


def split_live_time(total_s: float, counts: list[int]) -> list[float]:
    """Live times [s] of parts with ``counts`` events each, proportional to the counts, summing exactly
    (``math.fsum``) to ``total_s``: all but the last rounded to 1 ms, the last the remainder, nudged by
    ulps until the sum is exact."""
    n = sum(counts)
    parts = [round(total_s * c / n, 3) if n else round(total_s / len(counts), 3) for c in counts[:-1]]
    last = total_s - math.fsum(parts)
    for _ in range(64):
        s = math.fsum([*parts, last])
        if s == total_s:
            return [*parts, last]
        last = math.nextafter(last, math.inf if s < total_s else -math.inf)
    raise ArithmeticError(f"cannot split live time {total_s} s exactly")  # pragma: no cover


def partition_reduced(source: str | os.PathLike, n_parts: int, outdir: str | os.PathLike) -> list[Path]:
    """Write ``outdir/part-000.parquet`` ... (+ ``.json`` sidecars): ``source`` in ``n_parts`` contiguous slices.

    Args:
        source: A reduced-data Parquet file (validated with :func:`read_reduced`; its sidecar beside it).
        n_parts: Number of parts, 1 <= n_parts <= number of events.
        outdir: Output directory (created).

    Returns:
        The Parquet files written, in order.

    Raises:
        InvalidData: the source is invalid, or has fewer events than parts (naming the file).
    """
    data = read_reduced(source)
    n = len(data)
    if not 1 <= n_parts <= max(n, 1):
        raise InvalidData(f"cannot split {n} events into {n_parts} parts", path=source, field="--parts")
    bounds = [round(i * n / n_parts) for i in range(n_parts + 1)]
    counts = [hi - lo for lo, hi in zip(bounds, bounds[1:])]
    live = split_live_time(float(data.meta["live_time_s"]), counts) if "live_time_s" in data.meta else None
    table = pq.read_table(source)
    out = Path(outdir)
    written = []
    for i, (lo, count) in enumerate(zip(bounds, counts)):
        path = out / f"part-{i:03d}.parquet"
        with atomic_write(path) as tmp:
            pq.write_table(table.slice(lo, count), tmp, compression="zstd")
        meta = dict(data.meta)
        meta["n_events"] = count
        if live is not None:
            meta["live_time_s"] = live[i]
            if isinstance(meta.get("exposure"), dict) and "fiducial_mass_t" in meta["exposure"]:
                mass = float(meta["exposure"]["fiducial_mass_t"])
                meta["exposure"] = {
                    **meta["exposure"],
                    "live_time_days": live[i] / SECONDS_PER_DAY,
                    "exposure_t_yr": mass * live[i] / SECONDS_PER_YEAR,
                }
        write_json(sidecar_path(path), meta)
        written.append(path)
    return written
