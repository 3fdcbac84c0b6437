"""Selections declared as data: each cut keeps ``min <= variable < max`` on a known variable.

Cuts are never evaluated as code: the variable must be a reduced-data column or one of the fixed
derived quantities (``r_cm``, ``log10_cs2``), and the bounds are numbers.

Two engines share the cut definitions: :func:`apply_cuts` on an in-memory :class:`ReducedData`
(control samples and the NR simulation), and :func:`dmpreserve.selection.stream.select_stream`,
which translates the cuts into pyarrow compute expressions pushed down into a ``pyarrow.dataset``
scan (the science run: the ``select`` step, :mod:`dmpreserve.selection.scatter`).  Both decide once,
with :func:`cuts_for`, which configured cuts apply to a file: a cut its sidecar declares applied
upstream is not applied again, and a cut on a column the file lacks is refused otherwise.  This
module also computes what the cuts imply: the exposure (:func:`exposure_of`) and the NR signal
acceptance.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from dmpreserve.artifacts.exposure import Exposure
from dmpreserve.artifacts.reduced import ReducedData, UpstreamCut, upstream_cuts
from dmpreserve.artifacts.tables import Acceptance, CutFlow
from dmpreserve.config import AnalysisConfig
from dmpreserve.detector import fiducial_mass_t
from dmpreserve.errors import InvalidConfig, InvalidData
from dmpreserve.physics.constants import SECONDS_PER_YEAR

#: Variables a cut may act on.
VARIABLES = (
    "s1_phd",
    "s2_phd",
    "cs1_phd",
    "cs2_phd",
    "log10_cs2",
    "drift_time_us",
    "x_cm",
    "y_cm",
    "r_cm",
    "s1_coincidence",
)
#: Description of the first cut-flow row (kept as in the single-file select, so that cut flows of a run split
#: into several files and of the same run in one file are identical).
ALL_EVENTS = "all events in the file"
#: Columns each derived variable is computed from (every other variable is a column itself).
SOURCE_COLUMNS = {"r_cm": ("x_cm", "y_cm"), "log10_cs2": ("cs2_phd",)}


@dataclasses.dataclass(frozen=True)
class Cut:
    """One cut: keep ``lower <= variable < upper``."""

    name: str
    kind: str
    variable: str
    lower: float = -math.inf
    upper: float = math.inf
    description: str = ""

    def __post_init__(self) -> None:
        if self.variable not in VARIABLES:
            raise InvalidConfig(
                f"cut {self.name!r} acts on unknown variable {self.variable!r}; allowed: {', '.join(VARIABLES)}",
                field="variable",
            )
        for bound in (self.lower, self.upper):
            if not isinstance(bound, (int, float)) or isinstance(bound, bool) or math.isnan(bound):
                raise InvalidConfig(f"cut {self.name!r} has a non-numeric bound {bound!r}", field="min/max")

    @property
    def columns(self) -> tuple[str, ...]:
        """The reduced-data columns the cut reads."""
        return SOURCE_COLUMNS.get(self.variable, (self.variable,))

    @property
    def label(self) -> str:
        """The cut-flow description: the configured one, else ``lower <= variable < upper``."""
        return self.description or f"{self.lower} <= {self.variable} < {self.upper}"

    def mask(self, data: ReducedData) -> np.ndarray:
        """Boolean mask of the events passing this cut."""
        values = data.variable(self.variable)
        with np.errstate(invalid="ignore"):
            return (values >= self.lower) & (values < self.upper)


def cuts_from_config(
    config: AnalysisConfig, *, kinds: Sequence[str] = ("quality", "fiducial", "roi")
) -> tuple[Cut, ...]:
    """The configured cuts of the given kinds, in order."""
    return tuple(
        Cut(
            name=c["name"],
            kind=c["kind"],
            variable=c["variable"],
            lower=float(c.get("min", -math.inf)),
            upper=float(c.get("max", math.inf)),
            description=c.get("description", ""),
        )
        for c in config.cuts(kinds=tuple(kinds))
    )


@dataclasses.dataclass(frozen=True)
class EffectiveCuts:
    """The configured cuts as they apply to one file or dataset (:func:`cuts_for`).

    Attributes:
        cuts: Every configured cut, in order.
        upstream: The sidecar's declarations of those configured cuts that the data provider applied
            upstream (matched by name): they are not applied again to this data.
    """

    cuts: tuple[Cut, ...]
    upstream: tuple[UpstreamCut, ...] = ()

    @property
    def upstream_names(self) -> tuple[str, ...]:
        """Names of the configured cuts applied upstream."""
        return tuple(u.name for u in self.upstream)

    @property
    def applied(self) -> tuple[Cut, ...]:
        """The cuts to apply here, in order (the configured ones not applied upstream)."""
        return tuple(c for c in self.cuts if c.name not in self.upstream_names)

    def cutflow(self, n_all: int, applied_counts: Sequence[int], *, all_description: str) -> CutFlow:
        """The cut flow over every configured cut from the counts after each applied cut.

        A cut applied upstream keeps a row, with the count unchanged and the description
        ``applied upstream (<definition>)``.
        """
        if len(applied_counts) != len(self.applied):
            raise ValueError(f"{len(applied_counts)} counts for {len(self.applied)} applied cuts")
        declared = {u.name: u for u in self.upstream}
        counts = iter(applied_counts)
        names, descs, events = ["all"], [all_description], [int(n_all)]
        for cut in self.cuts:
            names.append(cut.name)
            if cut.name in declared:
                descs.append(f"applied upstream ({declared[cut.name].definition})")
                events.append(events[-1])
            else:
                descs.append(cut.label)
                events.append(int(next(counts)))
        return CutFlow(tuple(names), tuple(descs), tuple(events))


def cuts_for(
    cuts: Sequence[Cut], meta: dict[str, Any], columns: Sequence[str], path: str | os.PathLike
) -> EffectiveCuts:
    """The configured ``cuts`` as they apply to a file (or dataset) with sidecar ``meta`` and ``columns``.

    A configured cut that the sidecar's ``upstream_cuts`` declares applied (same name) is not applied
    again; every other cut must find its columns (those of a derived variable: :data:`SOURCE_COLUMNS`).

    Raises:
        InvalidData: a configured cut reads a column the file lacks and the sidecar does not declare the
            cut applied upstream (naming ``path``, the cut and the column).
    """
    declared = {u.name: u for u in upstream_cuts(meta, path=path)}
    have = set(columns)
    for cut in cuts:
        missing = [c for c in cut.columns if c not in have]
        if missing and cut.name not in declared:
            raise InvalidData(
                f"configured cut {cut.name!r} needs this column, which the file lacks, and the sidecar does not "
                "declare the cut applied upstream (upstream_cuts)",
                path=path,
                field=missing[0],
            )
    return EffectiveCuts(tuple(cuts), tuple(declared[c.name] for c in cuts if c.name in declared))


def apply_cuts(data: ReducedData, cuts: Sequence[Cut]) -> tuple[np.ndarray, CutFlow]:
    """Apply cuts in order to in-memory data; the cuts its sidecar declares applied upstream are skipped.

    Returns:
        The mask of events passing all cuts, and the cut flow over every cut (first row: all events).

    Raises:
        InvalidData: a cut needs a column the data lacks (:func:`cuts_for`).
    """
    effective = cuts_for(cuts, data.meta, list(data.columns), data.path)
    mask = np.ones(len(data), dtype=bool)
    counts = []
    for cut in effective.applied:
        mask &= cut.mask(data)
        counts.append(int(mask.sum()))
    return mask, effective.cutflow(len(data), counts, all_description=ALL_EVENTS)


def fiducial_window(cuts: Sequence[Cut]) -> dict[str, float]:
    """Radius and drift-time bounds of the fiducial cuts."""
    r_max, dt_lo, dt_hi = math.inf, -math.inf, math.inf
    for c in cuts:
        if c.kind != "fiducial":
            continue
        if c.variable == "r_cm":
            r_max = min(r_max, c.upper)
        elif c.variable == "drift_time_us":
            dt_lo, dt_hi = max(dt_lo, c.lower), min(dt_hi, c.upper)
    return {"r_max_cm": r_max, "drift_time_min_us": dt_lo, "drift_time_max_us": dt_hi}


def fiducial_mass_from_cuts(detector: dict[str, Any], cuts: Sequence[Cut]) -> float:
    """Fiducial mass [t] from the fiducial cuts and the detector section of a sidecar."""
    w = fiducial_window(cuts)
    return fiducial_mass_t(
        density_g_cm3=detector["lxe_density_g_cm3"],
        drift_velocity_mm_per_us=detector["drift_velocity_mm_per_us"],
        r_max_cm=w["r_max_cm"],
        drift_time_min_us=w["drift_time_min_us"],
        drift_time_max_us=w["drift_time_max_us"],
    )


def exposure_of(
    cuts: Sequence[Cut],
    *,
    detector: dict[str, Any],
    live_time_s: float,
    nominal_masses: Sequence[tuple[str, float | None]],
) -> Exposure:
    """The science data's exposure: fiducial mass x summed live time / (365.25 x 86400 s/yr).

    The fiducial mass is that of the configured fiducial cuts (also when they were applied upstream: the
    configuration still gives their bounds) in the detector of the sidecars; when the configuration has no
    fiducial cut, it is the sidecars' nominal ``exposure.fiducial_mass_t``, which every file must state alike.

    Args:
        cuts: The configured cuts.
        detector: The sidecars' ``detector`` section.
        live_time_s: Summed live time of the science files [s].
        nominal_masses: (sidecar path, its ``exposure.fiducial_mass_t`` or None) of every science file.

    Raises:
        InvalidData: no fiducial cut and a sidecar without a nominal fiducial mass, or two that differ.
    """
    if any(c.kind == "fiducial" for c in cuts):
        mass = fiducial_mass_from_cuts(detector, cuts)
    else:
        if not nominal_masses:
            raise InvalidData("no science file", path="<empty dataset>")
        for path, m in nominal_masses:
            if m is None:
                raise InvalidData(
                    "the configuration has no fiducial cut, and the sidecar states no nominal fiducial mass",
                    path=path,
                    field="$.exposure.fiducial_mass_t",
                )
            if m != nominal_masses[0][1]:
                raise InvalidData(
                    f"nominal fiducial mass {m} t differs from {nominal_masses[0][1]} t of {nominal_masses[0][0]}",
                    path=path,
                    field="$.exposure.fiducial_mass_t",
                )
        mass = float(nominal_masses[0][1])
    live = float(live_time_s)
    return Exposure(fiducial_mass_t=mass, live_time_s=live, exposure_t_yr=mass * live / SECONDS_PER_YEAR)


def fiducial_volume_fraction(active_volume: dict[str, float], cuts: Sequence[Cut]) -> float:
    """Fraction of a sample generated uniformly in ``active_volume`` whose true position is fiducial."""
    w = fiducial_window(cuts)
    r_frac = min(1.0, (w["r_max_cm"] / active_volume["r_max_cm"]) ** 2)
    lo = max(w["drift_time_min_us"], active_volume["drift_time_min_us"])
    hi = min(w["drift_time_max_us"], active_volume["drift_time_max_us"])
    span = active_volume["drift_time_max_us"] - active_volume["drift_time_min_us"]
    return r_frac * max(0.0, hi - lo) / span


def nr_acceptance(sim: ReducedData, cuts: Sequence[Cut], edges_kev: np.ndarray) -> Acceptance:
    """Acceptance of NR events (all cuts) from a flat-energy NR simulation.

    The simulation is drawn uniformly in its ``active_volume``; the denominator is the number of
    simulated events whose true position is fiducial (volume fraction x events per energy bin).
    Because reconstructed positions migrate across the fiducial boundary, the ratio can fluctuate
    above 1 where the true acceptance is close to 1; the reported acceptance is capped at 1 (the
    response matrix used for the signal keeps the uncapped estimate, which is unbiased).
    """
    mask, _ = apply_cuts(sim, cuts)
    e = sim.columns["true_energy_kev"]
    f_vol = fiducial_volume_fraction(sim.meta["active_volume"], cuts)
    n_gen, _ = np.histogram(e, bins=edges_kev)
    n_pass, _ = np.histogram(e[mask], bins=edges_kev)
    denom = np.where(n_gen > 0, np.maximum(n_gen * f_vol, 1e-300), 1.0)  # 1.0 in empty bins: no overflow
    acc = np.where(n_gen > 0, np.minimum(n_pass / denom, 1.0), 0.0)
    # binomial error, floored at the one-event level so that bins with acceptance 0 or 1 are not exact
    err = np.where(n_gen > 0, np.sqrt(np.maximum(acc * (1 - acc), 1.0 / denom) / denom), 0.0)
    return Acceptance(np.asarray(edges_kev[:-1], float), np.asarray(edges_kev[1:], float), acc, err)
