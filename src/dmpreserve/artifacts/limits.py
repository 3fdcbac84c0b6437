"""``limits.csv``: the limit curves per mass (``limits`` step, also written by ``reinterpret``).

One row per mass; cross sections in cm^2 (or the signal model's strength unit), masses in GeV/c^2.
Columns :data:`LIMIT_COLUMNS` always, :data:`TOY_COLUMNS` when toys were run.  The machine-readable
companion ``limits.json`` (schema ``schemas/limits.schema.json``) holds the same rows plus the
tested signal strengths and thresholds.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Mapping
from types import MappingProxyType

import numpy as np

from dmpreserve.artifacts.tables import read_numeric_csv
from dmpreserve.errors import InvalidData
from dmpreserve.files import read_csv

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
