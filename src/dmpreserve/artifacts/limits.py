"""``limits.csv``: the limit curves per mass (``limits`` step, also written by ``reinterpret``).

One row per mass; cross sections in cm^2 (or the signal model's strength unit), masses in GeV/c^2.
Columns :data:`LIMIT_COLUMNS` always, :data:`TOY_COLUMNS` when toys were run.  The machine-readable
companion ``limits.json`` (schema ``schemas/limits.schema.json``) holds the same rows plus the
tested signal strengths and thresholds.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any

import numpy as np

from dmpreserve.artifacts.tables import read_numeric_csv
from dmpreserve.errors import InvalidData
from dmpreserve.files import read_csv, read_json

#: Sensitivity-band suffixes, from -2 sigma to +2 sigma ("" is the median).
BANDS = ("m2sigma", "m1sigma", "", "p1sigma", "p2sigma")
EXPECTED_COLUMNS = tuple("expected_cm2" if b == "" else f"expected_{b}_cm2" for b in BANDS)
EXPECTED_CLS_COLUMNS = tuple("expected_cls_cm2" if b == "" else f"expected_cls_{b}_cm2" for b in BANDS)
#: Columns of every ``limits.csv``.
LIMIT_COLUMNS = (
    "mass_gev",
    "limit_cm2",
    "limit_unconstrained_cm2",
    "limit_pcl_cm2",
    "limit_cls_cm2",
    EXPECTED_COLUMNS[2],
    EXPECTED_COLUMNS[0],
    EXPECTED_COLUMNS[1],
    EXPECTED_COLUMNS[3],
    EXPECTED_COLUMNS[4],
    EXPECTED_CLS_COLUMNS[2],
    EXPECTED_CLS_COLUMNS[0],
    EXPECTED_CLS_COLUMNS[1],
    EXPECTED_CLS_COLUMNS[3],
    EXPECTED_CLS_COLUMNS[4],
    "p0",
    "z0",
    "neyman_threshold",
    "neyman_threshold_err",
    "pcl_threshold_cm2",
)
#: Columns appended when toys were run.
TOY_COLUMNS = ("p0_toys", "z0_toys", "limit_unconstrained_err_cm2")


def csv_columns(rows: list[Mapping[str, float]]) -> tuple[str, ...]:
    """The ``limits.csv`` columns of these rows: :data:`LIMIT_COLUMNS`, + :data:`TOY_COLUMNS` when the first row
    has them (rows of ``MassLimit.row()``)."""
    return LIMIT_COLUMNS + (TOY_COLUMNS if rows and "p0_toys" in rows[0] else ())


@dataclasses.dataclass(frozen=True)
class LimitTable(Mapping[str, np.ndarray]):
    """Contents of ``limits.csv``: one float array per column, all of length n_mass.

    A read-only mapping column name -> array (columns documented in :data:`LIMIT_COLUMNS`).
    """

    columns: Mapping[str, np.ndarray]

    def __post_init__(self) -> None:
        object.__setattr__(self, "columns", MappingProxyType(dict(self.columns)))

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.columns)

    def __len__(self) -> int:
        return len(self.columns)

    @property
    def mass_gev(self) -> np.ndarray:
        """Masses [GeV/c^2]."""
        return self.columns["mass_gev"]


def read_limits(path: str | os.PathLike) -> LimitTable:
    """Read ``limits.csv``: every column of the file as floats, :data:`LIMIT_COLUMNS` required.

    ``mass_gev`` and the ``*_cm2`` columns must be positive and finite, all others finite.

    Raises:
        InvalidData: naming ``path`` and the offending column.
    """
    header = tuple(read_csv(path, required=LIMIT_COLUMNS, what="limits"))
    cols = read_numeric_csv(path, LIMIT_COLUMNS, header, what="limits")
    out = {}
    for c in header:
        arr = cols[c]
        positive = c == "mass_gev" or (c.endswith("_cm2") and not c.endswith("_err_cm2"))
        if not np.all(np.isfinite(arr)) or (positive and np.any(arr <= 0)):
            raise InvalidData(f"values must be {'positive and ' if positive else ''}finite", path=path, field=c)
        out[c] = arr
    return LimitTable(out)


#: Text of mock data in legends and records (the pipeline's default inputs: the NEST mock-data challenge).
MOCK_DATA_TEXT = "mock data (NEST MDC)"
#: Curves of a result by convention: limit column, band columns (-2 sigma .. +2 sigma, median in the middle).
CONVENTION_COLUMNS = MappingProxyType(
    {
        "unconstrained": ("limit_unconstrained_cm2", EXPECTED_COLUMNS),
        "pcl": ("limit_pcl_cm2", EXPECTED_COLUMNS),
        "cls": ("limit_cls_cm2", EXPECTED_CLS_COLUMNS),
    }
)
_PCL_METHOD = re.compile(r"power-constrained \(critical power ([0-9.eE+-]+)\)")


def data_record(inputs: Mapping[str, Any], exposure_t_yr: float | None) -> dict[str, Any]:
    """The ``data`` object of ``limits.json``: which science data the limits come from and its exposure.

    Args:
        inputs: :attr:`dmpreserve.config.AnalysisConfig.inputs` (``science``: ``"mdc"`` or ``{"location", ...}``).
        exposure_t_yr: Exposure of the selected science data [t yr] (``exposure.json``), or None.

    Returns:
        ``{"science": "mdc" | "inputs.science", "mock": bool, "description": str[, "exposure_t_yr": float]}``.
        The location of declared science data is NOT recorded here (it is in ``provenance.json``): results must
        not depend on how the same data were delivered (a file, a directory of parts, an XRootD URL).
    """
    mock = inputs.get("science", "mdc") == "mdc"
    doc: dict[str, Any] = {
        "science": "mdc" if mock else "inputs.science",
        "mock": mock,
        "description": MOCK_DATA_TEXT if mock else "science data (inputs.science; location in provenance.json)",
    }
    if exposure_t_yr is not None:
        doc["exposure_t_yr"] = float(exposure_t_yr)
    return doc


@dataclasses.dataclass(frozen=True, kw_only=True)
class LimitResult:
    """A ``limits.json`` of the pipeline (``limits`` step), of ``reinterpret`` (kit, release or binwise backend)
    or of a combination, with what a plot legend needs.

    Attributes:
        path: The file read.
        table: The rows' columns (every column present in all rows), masses increasing.
        cl: Confidence level.
        headline: Convention of ``limit_cm2``: ``"pcl"``, ``"unconstrained"``, ``"cls"`` or None (not recorded).
        pcl_power: Critical power of the power constraint where the headline is power-constrained.
        strength_unit: Unit of the limits (``units.limit_cm2``; ``"cm^2"`` when not recorded).
        exposure_t_yr: Exposure [t yr] where recorded (``data.exposure_t_yr`` or ``exposure_t_yr``), else None.
        mock: True where the record says the data are mock data (``data.mock``), else False.
    """

    path: str
    table: LimitTable
    cl: float
    headline: str | None
    pcl_power: float | None
    strength_unit: str
    exposure_t_yr: float | None
    mock: bool

    def curve(self, convention: str | None) -> tuple[str, np.ndarray, np.ndarray | None]:
        """The limit of one convention (None: the headline ``limit_cm2``) and its band.

        Returns:
            (convention or ``"unrecorded"``, limits of shape (n_mass,), band of shape (5, n_mass) ordered
            -2, -1, median, +1, +2 sigma, or None where the result has no band).

        Raises:
            InvalidData: the result has no curve of that convention (naming the file and column).
        """
        if convention is None:
            convention = self.headline
            column = "limit_cm2"
            bands = CONVENTION_COLUMNS[convention][1] if convention else EXPECTED_COLUMNS
        else:
            if convention not in CONVENTION_COLUMNS:
                raise InvalidData(f"unknown convention {convention!r}", path=self.path, field="--convention")
            column, bands = CONVENTION_COLUMNS[convention]
            if convention == self.headline:
                column = "limit_cm2"
            elif convention == "pcl" and self.headline is not None:
                raise InvalidData(
                    f"this result's limits are not power-constrained (headline: {self.headline})",
                    path=self.path,
                    field="limit_pcl_cm2",
                )
            if column not in self.table:
                raise InvalidData(f"no {convention} limit in this result", path=self.path, field=column)
        band = np.array([self.table[c] for c in bands]) if all(c in self.table for c in bands) else None
        return convention or "unrecorded", self.table[column], band


def _headline(doc: Mapping[str, Any]) -> tuple[str | None, float | None]:
    """Convention of ``limit_cm2``: recorded (``headline_convention``), from the statistics settings (pipeline),
    from the method text (``stats.limits.method_text``, the release backend's), or the binwise backend's."""
    stats = doc.get("statistics")
    power = stats.get("pcl_power") if isinstance(stats, Mapping) else None
    recorded = doc.get("headline_convention")
    if recorded is not None:
        return str(recorded), float(power) if recorded == "pcl" and power is not None else None
    if power is not None:
        return "pcl", float(power)
    method = doc.get("method")
    if isinstance(method, str):
        if "no power constraint" in method:
            return "unconstrained", None
        match = _PCL_METHOD.search(method)
        if match:
            return "pcl", float(match.group(1))
    if "backend" in doc:  # binwise (XENON1T release format): Neyman limit without power constraint
        return "unconstrained", None
    return None, None


def read_limit_result(path: str | os.PathLike) -> LimitResult:
    """Read a ``limits.json`` (see :class:`LimitResult`); ``limits`` rows need at least ``mass_gev`` and
    ``limit_cm2``; every ``*_cm2`` value and the masses must be positive and finite.

    Raises:
        InvalidData: naming ``path`` and the offending field.
    """
    doc = read_json(path, what="limits")
    rows = doc.get("limits") if isinstance(doc, dict) else None
    if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
        raise InvalidData("expected a non-empty list of limit rows", path=path, field="limits")
    names = [c for c in rows[0] if all(c in r for r in rows)]
    for c in ("mass_gev", "limit_cm2"):
        if c not in names:
            raise InvalidData("column missing in a row", path=path, field=f"limits[].{c}")
    cols = {}
    for c in names:
        values = [r[c] for r in rows]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            continue  # non-numeric columns (none today) are not curves
        arr = np.asarray(values, dtype=float)
        positive = c == "mass_gev" or (c.endswith("_cm2") and not c.endswith("_err_cm2"))
        if not np.all(np.isfinite(arr)) or (positive and np.any(arr <= 0)):
            raise InvalidData(f"values must be {'positive and ' if positive else ''}finite", path=path, field=c)
        cols[c] = arr
    if "limit_cm2" not in cols or "mass_gev" not in cols:
        raise InvalidData("mass_gev and limit_cm2 must be numbers", path=path, field="limits")
    order = np.argsort(cols["mass_gev"], kind="stable")
    if np.any(np.diff(cols["mass_gev"][order]) <= 0):
        raise InvalidData("repeated mass", path=path, field="limits[].mass_gev")
    cl = doc.get("cl")
    if not isinstance(cl, (int, float)) or not 0 < cl < 1:
        raise InvalidData(f"must be a number in (0, 1), got {cl!r}", path=path, field="cl")
    data = doc.get("data") if isinstance(doc.get("data"), dict) else {}
    exposure = data.get("exposure_t_yr", doc.get("exposure_t_yr"))
    if exposure is not None and not (isinstance(exposure, (int, float)) and np.isfinite(exposure) and exposure > 0):
        raise InvalidData(f"must be a positive number, got {exposure!r}", path=path, field="data.exposure_t_yr")
    mock = data.get("mock", False)
    if not isinstance(mock, bool):
        raise InvalidData(f"must be true or false, got {mock!r}", path=path, field="data.mock")
    units = doc.get("units") if isinstance(doc.get("units"), dict) else {}
    headline, power = _headline(doc)
    return LimitResult(
        path=str(path),
        table=LimitTable({k: v[order] for k, v in cols.items()}),
        cl=float(cl),
        headline=headline,
        pcl_power=power,
        strength_unit=str(units.get("limit_cm2", "cm^2")),
        exposure_t_yr=None if exposure is None else float(exposure),
        mock=mock,
    )
