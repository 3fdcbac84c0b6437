"""The selection's tables passed between steps: ``cutflow.csv`` and ``acceptance.csv`` (``select`` step).

* ``cutflow.csv``: cut, description, events, efficiency_cumulative, efficiency_step (first row: all events).
* ``acceptance.csv``: energy_low_kev, energy_high_kev, energy_kev, acceptance, acceptance_err -- NR signal
  acceptance of all cuts versus true recoil energy [keV], relative to the fiducial volume.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from dmpreserve.errors import InvalidData
from dmpreserve.files import read_csv, write_csv

CUTFLOW_COLUMNS = ("cut", "description", "events", "efficiency_cumulative", "efficiency_step")
ACCEPTANCE_COLUMNS = ("energy_low_kev", "energy_high_kev", "energy_kev", "acceptance", "acceptance_err")


def read_numeric_csv(
    path: str | os.PathLike, required: Sequence[str], numeric: Sequence[str], *, what: str = "CSV"
) -> dict[str, Any]:
    """Read a CSV with ``required`` columns; the ``numeric`` ones as float arrays, the rest as strings.

    Raises:
        InvalidData: naming ``path`` and the column of a missing or non-numeric value.
    """
    cols = read_csv(path, required=required, what=what)
    out: dict[str, Any] = dict(cols)
    for c in numeric:
        try:
            out[c] = np.array([float(v) for v in cols[c]])
        except ValueError:
            raise InvalidData("non-numeric value", path=path, field=c) from None
    return out


@dataclasses.dataclass(frozen=True)
class CutFlow:
    """Events remaining after each cut."""

    cuts: tuple[str, ...]
    descriptions: tuple[str, ...]
    events: tuple[int, ...]

    @property
    def efficiency_cumulative(self) -> tuple[float, ...]:
        """Fraction of all events remaining after each cut."""
        total = self.events[0]
        return tuple(n / total if total else 0.0 for n in self.events)

    @property
    def efficiency_step(self) -> tuple[float, ...]:
        """Fraction of the events before each cut that pass it."""
        out, prev = [], self.events[0]
        for n in self.events:
            out.append(n / prev if prev else 0.0)
            prev = n
        return tuple(out)

    @classmethod
    def read(cls, path: str | os.PathLike) -> CutFlow:
        """Read ``cutflow.csv``.

        Raises:
            InvalidData: naming ``path`` and the offending column.
        """
        cols = read_numeric_csv(path, ("cut", "events", "efficiency_cumulative"), ("events",), what="cut flow")
        if not np.all(np.isfinite(cols["events"])) or np.any(cols["events"] < 0):
            raise InvalidData("event counts must be finite and non-negative", path=path, field="events")
        descriptions = cols.get("description", [""] * len(cols["cut"]))
        return cls(tuple(cols["cut"]), tuple(descriptions), tuple(int(n) for n in cols["events"]))

    def write(self, path: str | os.PathLike) -> None:
        """Write ``cutflow.csv`` atomically."""
        write_csv(path, CUTFLOW_COLUMNS, self.rows())

    def rows(self) -> list[tuple[Any, ...]]:
        """Rows of ``cutflow.csv``: cut, description, events, efficiency_cumulative, efficiency_step."""
        return list(zip(self.cuts, self.descriptions, self.events, self.efficiency_cumulative, self.efficiency_step))


@dataclasses.dataclass(frozen=True)
class Acceptance:
    """Signal acceptance versus true NR energy (all cuts, relative to the fiducial volume)."""

    energy_low_kev: np.ndarray
    energy_high_kev: np.ndarray
    acceptance: np.ndarray
    acceptance_err: np.ndarray

    @property
    def energy_kev(self) -> np.ndarray:
        """Bin centres [keV]."""
        return 0.5 * (self.energy_low_kev + self.energy_high_kev)

    @classmethod
    def read(cls, path: str | os.PathLike) -> Acceptance:
        """Read ``acceptance.csv``.

        Raises:
            InvalidData: naming ``path`` and the offending column.
        """
        cols = read_numeric_csv(path, ACCEPTANCE_COLUMNS, ACCEPTANCE_COLUMNS, what="acceptance")
        return cls(cols["energy_low_kev"], cols["energy_high_kev"], cols["acceptance"], cols["acceptance_err"])

    def write(self, path: str | os.PathLike) -> None:
        """Write ``acceptance.csv`` atomically."""
        write_csv(path, ACCEPTANCE_COLUMNS, self.rows())

    def rows(self) -> list[tuple[float, ...]]:
        """Rows of ``acceptance.csv``."""
        return [
            tuple(float(v) for v in r)
            for r in zip(
                self.energy_low_kev, self.energy_high_kev, self.energy_kev, self.acceptance, self.acceptance_err
            )
        ]
