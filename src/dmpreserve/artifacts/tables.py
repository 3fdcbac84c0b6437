"""The selection's tables passed between steps: ``cutflow.csv`` and ``acceptance.csv`` (``select`` step).

* ``cutflow.csv``: cut, description, events, efficiency_cumulative, efficiency_step (first row: all events).
* ``acceptance.csv``: energy_low_kev, energy_high_kev, energy_kev, acceptance, acceptance_err -- NR signal
  acceptance of all cuts versus true recoil energy [keV], relative to the fiducial volume.
* the cut flow of one part of the scattered selection (``select-part --cutflow``, JSON,
  ``schemas/select_part.schema.json``): :class:`PartCutFlow`.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from dmpreserve.errors import InvalidData
from dmpreserve.files import read_csv, read_json, write_csv, write_json
from dmpreserve.schema import validate

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


@dataclasses.dataclass(frozen=True)
class PartFile:
    """One science file of a part of the scattered selection.

    Attributes:
        path, sidecar: The Parquet file and its sidecar, as given to ``select-part``.
        n_events: Its rows.
        live_time_s: Its sidecar's live time [s].
        nominal_exposure: Its sidecar's nominal ``exposure`` object (None: not stated).
    """

    path: str
    sidecar: str
    n_events: int
    live_time_s: float
    nominal_exposure: dict[str, float] | None = None


@dataclasses.dataclass(frozen=True)
class PartCutFlow:
    """The cut flow of one part of the scattered selection (``select-part --cutflow``;
    ``schemas/select_part.schema.json``).

    Attributes:
        config_sha256: sha256 of the configuration the part was selected with.
        selected: File name of the part's selected events.
        cutflow: Exact event counts: ``all``, then every configured cut in order.
        applied_upstream: Per row of ``cutflow``: declared applied upstream (count unchanged).
        live_time_s: Summed live time of the part's files [s] (``math.fsum``).
        files: The science files, in scan order.
    """

    config_sha256: str
    selected: str
    cutflow: CutFlow
    applied_upstream: tuple[bool, ...]
    live_time_s: float
    files: tuple[PartFile, ...]

    @property
    def n_events(self) -> int:
        """Events scanned."""
        return self.cutflow.events[0]

    @property
    def n_selected(self) -> int:
        """Events passing every cut."""
        return self.cutflow.events[-1]

    def to_json(self) -> dict[str, Any]:
        """The JSON document."""
        return {
            "format": "dmpreserve-select-part",
            "format_version": 1,
            "config_sha256": self.config_sha256,
            "selected": self.selected,
            "n_events": self.n_events,
            "n_selected": self.n_selected,
            "live_time_s": self.live_time_s,
            "cuts": [
                {"name": n, "description": d, "events": e, "applied_upstream": u}
                for n, d, e, u in zip(
                    self.cutflow.cuts, self.cutflow.descriptions, self.cutflow.events, self.applied_upstream
                )
            ],
            "files": [dataclasses.asdict(f) for f in self.files],
        }

    def write(self, path: str | os.PathLike) -> None:
        """Write the JSON document atomically (sorted keys)."""
        write_json(path, self.to_json())

    @classmethod
    def read(cls, path: str | os.PathLike) -> PartCutFlow:
        """Read and check a part's cut flow: the schema, then the counts (first row ``all`` with ``n_events``,
        never increasing, ending at ``n_selected``; unchanged across a cut applied upstream) and the live time
        (the sum of the files').

        Raises:
            InvalidData: naming ``path`` and the JSON path.
        """
        doc = read_json(path, what="part cut flow")
        validate(doc, "select_part", path=path)
        rows = doc["cuts"]
        events = [r["events"] for r in rows]
        if rows[0]["name"] != "all" or events[0] != doc["n_events"]:
            raise InvalidData(
                f"first row must be 'all' with the {doc['n_events']} events", path=path, field="$.cuts[0]"
            )
        for i in range(1, len(rows)):
            if events[i] > events[i - 1] or (rows[i]["applied_upstream"] and events[i] != events[i - 1]):
                raise InvalidData(
                    f"{events[i]} events after the cut, {events[i - 1]} before it",
                    path=path,
                    field=f"$.cuts[{i}].events",
                )
        if events[-1] != doc["n_selected"]:
            raise InvalidData(
                f"the last cut leaves {events[-1]} events, not {doc['n_selected']}", path=path, field="$.n_selected"
            )
        files = tuple(PartFile(**f) for f in doc["files"])
        if doc["live_time_s"] != math.fsum(f.live_time_s for f in files) or doc["n_events"] != sum(
            f.n_events for f in files
        ):
            raise InvalidData("live time or events differ from the sum over the files", path=path, field="$.files")
        flow = CutFlow(tuple(r["name"] for r in rows), tuple(r["description"] for r in rows), tuple(events))
        return cls(
            config_sha256=doc["config_sha256"],
            selected=doc["selected"],
            cutflow=flow,
            applied_upstream=tuple(r["applied_upstream"] for r in rows),
            live_time_s=float(doc["live_time_s"]),
            files=files,
        )
