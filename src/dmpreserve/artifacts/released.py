"""Released data of published analyses as text tables: event lists and efficiency curves.

Collaborations release their events after all cuts and their NR signal efficiency as plain numeric text
(LZ's WS2022 and WS2024 releases: ``S1c, log10(S2c)`` rows; efficiency ``energy, value`` rows, median,
lower and upper curve in three files).  This module reads them, checks them and converts them into the
project's own files:

* :func:`import_event_table` -> a reduced-data Parquet file and its sidecar (kind ``science``); the
  sidecar's metadata (live time, nominal exposure, the cuts the collaboration applied upstream, the
  detector) come from a description file kept with the analysis configuration, because the release
  states them in its paper, not in the table;
* :func:`read_efficiency_triplet` -> an efficiency curve on the median's energy grid, written as the CSV
  that ``signal.efficiency.curve`` reads (:data:`dmpreserve.artifacts.response.EFFICIENCY_COLUMNS`).

Every refusal is an :class:`~dmpreserve.errors.InvalidData` naming the file and the row or column.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from dmpreserve.artifacts.response import check_curve
from dmpreserve.errors import InvalidData
from dmpreserve.files import read_text

#: Column names an event table may declare: the reduced-data catalogue's plus ``log10_cs2`` [log10(phd)],
#: stored as ``cs2_phd = 10 ** log10_cs2``.
DERIVED_COLUMNS = {"log10_cs2": "cs2_phd"}

#: Efficiencies down to this much below 0 are read as 0: digitisation and interpolation noise of released
#: curves (LZ's WS2022 median curve starts at -5.6e-5).  Anything lower is refused.
EFFICIENCY_NEGATIVE_TOLERANCE = 1e-4


def read_numeric_table(path: str | os.PathLike, names: Sequence[str], *, what: str) -> dict[str, np.ndarray]:
    """Read a headerless numeric text table (fields separated by commas, or by white space in a line without one).

    Blank lines and lines starting with ``#`` are skipped.

    Args:
        path: The text file.
        names: The name of each column, in file order; every row must have exactly ``len(names)`` fields.
        what: What the file is (for messages).

    Returns:
        ``{name: float64 array}``, one value per data row.

    Raises:
        InvalidData: naming the file and line: a row with more or fewer fields, a field that is not a
            number or not finite (NaN, inf), or no data rows at all.
    """
    text = read_text(path, what)
    if "\x00" in text:
        raise InvalidData(f"{what} contains a NUL byte", path=path)
    rows: list[list[float]] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        # commas (with optional spaces) or, in a line without a comma, white space; an empty field is an error
        fields = [f.strip() for f in stripped.split(",")] if "," in stripped else stripped.split()
        if any(not f for f in fields):
            raise InvalidData(f"line {lineno} has an empty field", path=path, field=f"line {lineno}")
        if len(fields) != len(names):
            raise InvalidData(
                f"line {lineno} has {len(fields)} fields, expected {len(names)} ({', '.join(names)})",
                path=path,
                field=f"line {lineno}",
            )
        values = []
        for name, field in zip(names, fields):
            try:
                value = float(field)
            except ValueError:
                raise InvalidData(f"line {lineno}: {field!r} is not a number", path=path, field=name) from None
            if not math.isfinite(value):
                raise InvalidData(f"line {lineno}: {field!r} is not finite", path=path, field=name)
            values.append(value)
        rows.append(values)
    if not rows:
        raise InvalidData(f"{what} has no data rows", path=path)
    table = np.array(rows, dtype=float)
    return {name: table[:, i] for i, name in enumerate(names)}


def event_columns(table: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Reduced-data columns of an event table: ``log10_cs2`` becomes ``cs2_phd`` (:data:`DERIVED_COLUMNS`)."""
    out = {}
    for name, values in table.items():
        if name in DERIVED_COLUMNS:
            out[DERIVED_COLUMNS[name]] = np.power(10.0, values)
        else:
            out[name] = values
    return out


def check_inside_roi(table: dict[str, np.ndarray], roi: Sequence[dict[str, Any]], *, path: str | os.PathLike) -> None:
    """Refuse events outside the analysis ROI: a released table holds events after all cuts, so an event
    outside the configured ROI means the table or the ROI is wrong (it would be dropped silently otherwise).

    Args:
        table: Columns as declared in the table (``log10_cs2`` as such).
        roi: The configuration's cuts of kind ``roi`` (``variable``, ``min``, ``max``); a cut on a variable the
            table lacks is skipped.
        path: The table (for the message).

    Raises:
        InvalidData: naming the file, the first offending line and the cut.
    """
    for cut in roi:
        var = cut["variable"]
        if var in table:
            values = table[var]
        elif var == "log10_cs2" and "cs2_phd" in table:
            values = np.log10(table["cs2_phd"])
        else:
            continue
        lo, hi = cut.get("min", -np.inf), cut.get("max", np.inf)
        bad = np.flatnonzero((values < lo) | (values > hi))
        if bad.size:
            i = int(bad[0])
            raise InvalidData(
                f"{bad.size} event(s) outside the ROI cut {cut['name']} ({lo:g} <= {var} <= {hi:g}); first: data "
                f"row {i + 1}, {var} = {values[i]:g}. A released table holds events after all cuts: check the "
                "table's columns and the configured ROI",
                path=path,
                field=var,
            )


@dataclasses.dataclass(frozen=True)
class EfficiencyTriplet:
    """A released efficiency curve (median, lower and upper edge) on one energy grid.

    Attributes:
        energy_kev: True NR energies [keV], strictly increasing: the median's grid points inside the range
            that all three curves cover.  Shape (n,).
        efficiency, efficiency_lo, efficiency_hi: Median and band edges at those energies, in [0, 1], with
            ``lo <= median <= hi`` (the band is widened to contain the median where the released curves
            cross: see :func:`read_efficiency_triplet`).  Shape (n,).
        widened: Number of energies where the band had to be widened to contain the median.
    """

    energy_kev: np.ndarray
    efficiency: np.ndarray
    efficiency_lo: np.ndarray
    efficiency_hi: np.ndarray
    widened: int

    def rows(self) -> list[tuple[float, float, float, float]]:
        """CSV rows ``energy_kev, efficiency, efficiency_lo, efficiency_hi``."""
        return [
            (float(e), float(m), float(lo), float(hi))
            for e, m, lo, hi in zip(self.energy_kev, self.efficiency, self.efficiency_lo, self.efficiency_hi)
        ]


def _read_curve(path: str | os.PathLike, which: str) -> tuple[np.ndarray, np.ndarray]:
    t = read_numeric_table(path, ("energy_kev", "efficiency"), what=f"{which} efficiency curve")
    e, v = t["energy_kev"], t["efficiency"]
    check_curve(path, e, {"efficiency": v}, negative_tolerance=EFFICIENCY_NEGATIVE_TOLERANCE)
    return e, np.clip(v, 0.0, 1.0)


def read_efficiency_triplet(
    median: str | os.PathLike,
    lower: str | os.PathLike,
    upper: str | os.PathLike,
    *,
    extend_flat_to_kev: float | None = None,
) -> EfficiencyTriplet:
    """Read a released NR efficiency curve given as three two-column files (energy [keV], efficiency).

    The lower and upper curves are interpolated linearly onto the median's energies (those inside the range
    all three cover; nothing is extrapolated).  Where digitised or extrapolated curves cross (LZ WS2022 below
    ~2 keV, where its README says the curves overlap), the band is widened to contain the median:
    ``lo = min(lo, median)``, ``hi = max(hi, median)``; the count is kept in ``widened``.  With
    ``extend_flat_to_kev`` (configured explicitly, for a curve that stops on its plateau) one point at that
    energy [keV] repeats the last values.

    Raises:
        InvalidData: naming the file: a row without exactly two numbers, NaN/inf, energies not strictly
            increasing, an efficiency outside [0, 1] (beyond :data:`EFFICIENCY_NEGATIVE_TOLERANCE` below 0),
            curves whose energy ranges do not overlap in at least two median points.
    """
    e, m = _read_curve(median, "median")
    el, lo = _read_curve(lower, "lower")
    eu, hi = _read_curve(upper, "upper")
    start, stop = max(e[0], el[0], eu[0]), min(e[-1], el[-1], eu[-1])
    keep = (e >= start) & (e <= stop)
    if keep.sum() < 2:
        raise InvalidData(
            f"the lower and upper curves cover {start:g}-{stop:g} keV: fewer than two median points inside",
            path=median,
            field="energy_kev",
        )
    e, m = e[keep], m[keep]
    lo_i, hi_i = np.interp(e, el, lo), np.interp(e, eu, hi)
    widened = int(np.count_nonzero((lo_i > m) | (hi_i < m)))
    lo_i, hi_i = np.minimum(lo_i, m), np.maximum(hi_i, m)
    if extend_flat_to_kev is not None and extend_flat_to_kev <= e[-1]:
        raise InvalidData(
            f"extend_flat_to_kev = {extend_flat_to_kev:g} keV does not extend the curve, which reaches {e[-1]:g} keV",
            path=median,
            field="extend_flat_to_kev",
        )
    if extend_flat_to_kev is not None:
        e = np.append(e, float(extend_flat_to_kev))
        m, lo_i, hi_i = (np.append(a, a[-1]) for a in (m, lo_i, hi_i))
    return EfficiencyTriplet(e, m, lo_i, hi_i, widened)


#: Keys of an event table's description file (``inputs.NAME.table.description``): the reduced-data sidecar's
#: metadata, with ``detector`` given as a nestpy detector name (its NEST parameters are filled in).
DESCRIPTION_KEYS = ("kind", "live_time_s", "exposure", "detector", "active_volume", "upstream_cuts", "source")


def read_description(path: str | os.PathLike) -> dict[str, Any]:
    """Read an event table's description (YAML): the metadata its release states in the paper, not the table.

    Keys: ``kind`` (a reduced-data kind), ``live_time_s`` [s], optional ``exposure`` (nominal:
    ``fiducial_mass_t``, ``live_time_days``, ``exposure_t_yr``), ``detector`` (a nestpy detector name),
    ``active_volume`` (``r_max_cm``, ``drift_time_min_us``, ``drift_time_max_us``), optional ``upstream_cuts``
    (as in a sidecar) and ``source`` (free-form: release, citation, licence).

    Raises:
        InvalidData: naming the file and the key: not a mapping, an unknown or missing key, a detector that is
            not one of the nestpy detectors ``mdc.detector`` accepts.
    """
    from dmpreserve.files import load_yaml
    from dmpreserve.schema import load_schema

    doc = load_yaml(read_text(path, "event-table description"), path=path, what="event-table description")
    if not isinstance(doc, dict):
        raise InvalidData("must be a mapping of keys to values", path=path)
    unknown = sorted(set(doc) - set(DESCRIPTION_KEYS))
    if unknown:
        raise InvalidData(f"unknown key (known: {', '.join(DESCRIPTION_KEYS)})", path=path, field=unknown[0])
    for key in ("kind", "live_time_s", "detector", "active_volume"):
        if key not in doc:
            raise InvalidData("required key is missing", path=path, field=key)
    if not isinstance(doc["detector"], str):
        raise InvalidData("a nestpy detector name (e.g. LZ_WS2022) is expected", path=path, field="detector")
    # the detectors mdc.detector accepts: a name is looked up as an attribute of nestpy.detectors, where
    # other attributes (base classes, dunder names) exist too and must not be instantiated
    known = load_schema("config")["properties"]["mdc"]["properties"]["detector"]["enum"]
    if doc["detector"] not in known:
        raise InvalidData(
            f"no nestpy detector {doc['detector']!r} (known: {', '.join(known)})", path=path, field="detector"
        )
    return doc


def import_event_table(
    table_path: str | os.PathLike,
    columns: Sequence[str],
    description_path: str | os.PathLike,
    parquet_path: str | os.PathLike,
    *,
    roi: Sequence[dict[str, Any]] = (),
    sha256: str | None = None,
) -> int:
    """Convert a released event table into a reduced-data file with its sidecar.

    Args:
        table_path: The released table (headerless text, one event per row).
        columns: The name of each column of the table (reduced-data catalogue names, or ``log10_cs2``).
        description_path: Its description (:func:`read_description`).
        parquet_path: The Parquet file to write (its sidecar ``.json`` beside it).
        roi: The configuration's ROI cuts; every event must lie inside (:func:`check_inside_roi`).
        sha256: The table's sha256, recorded in the sidecar's ``generator``.

    Returns:
        The number of events written.

    Raises:
        InvalidData: naming the table (rows, values, ROI), the description (keys, schema) or an unknown column
            name; nothing is written then.
    """
    from dmpreserve.artifacts.reduced import column_catalogue, write_reduced
    from dmpreserve.detector import NestDetector

    catalogue = column_catalogue()
    for name in columns:
        if name not in catalogue and name not in DERIVED_COLUMNS:
            known = ", ".join([*catalogue, *DERIVED_COLUMNS])
            raise InvalidData(f"unknown column name {name!r} (known: {known})", path=table_path, field="columns")
    if len(set(columns)) != len(columns):
        raise InvalidData("a column is named twice", path=table_path, field="columns")
    table = read_numeric_table(table_path, columns, what="event table")
    check_inside_roi(table, roi, path=table_path)
    desc = read_description(description_path)
    try:
        detector = NestDetector(desc["detector"]).params
    except AttributeError:
        raise InvalidData(f"no nestpy detector {desc['detector']!r}", path=description_path, field="detector") from None
    meta = {k: v for k, v in desc.items() if k not in ("detector", "source")}
    meta.update(
        format="dmpreserve-reduced-data",
        format_version=1,
        detector=detector.sidecar(),
        generator={
            "imported_from": os.path.basename(str(table_path)),
            "table_sha256": sha256,
            "table_columns": list(columns),
            "source": desc.get("source", {}),
        },
    )
    cols = event_columns(table)
    if "event_id" not in cols and "event_id" in catalogue:
        cols = {"event_id": np.arange(len(next(iter(cols.values()))), dtype=np.int64), **cols}
    try:
        write_reduced(parquet_path, cols, meta)
    except InvalidData as exc:  # the description's metadata failed the sidecar schema: name the description
        raise InvalidData(exc.message, path=description_path, field=exc.field) from None
    return len(next(iter(cols.values())))
