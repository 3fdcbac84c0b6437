"""Selections declared as data: each cut keeps ``min <= variable < max`` on a known variable.

Cuts are never evaluated as code: the variable must be a reduced-data column or one of the fixed
derived quantities (``r_cm``, ``log10_cs2``), and the bounds are numbers.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from dmpreserve.config import AnalysisConfig
from dmpreserve.data import ReducedData
from dmpreserve.errors import InvalidConfig

#: Variables a cut may act on.
VARIABLES = ("s1_phd", "s2_phd", "cs1_phd", "cs2_phd", "log10_cs2", "drift_time_us", "x_cm", "y_cm", "r_cm",
             "s1_coincidence")


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
            raise InvalidConfig(f"cut {self.name!r} acts on unknown variable {self.variable!r}; "
                                f"allowed: {', '.join(VARIABLES)}", field="variable")
        for bound in (self.lower, self.upper):
            if not isinstance(bound, (int, float)) or isinstance(bound, bool) or math.isnan(bound):
                raise InvalidConfig(f"cut {self.name!r} has a non-numeric bound {bound!r}", field="min/max")

    def mask(self, data: ReducedData) -> np.ndarray:
        """Boolean mask of the events passing this cut."""
        values = data.variable(self.variable)
        with np.errstate(invalid="ignore"):
            return (values >= self.lower) & (values < self.upper)


def cuts_from_config(config: AnalysisConfig, *, kinds: Sequence[str] = ("quality", "fiducial", "roi")) -> tuple[Cut, ...]:
    """The configured cuts of the given kinds, in order."""
    return tuple(Cut(name=c["name"], kind=c["kind"], variable=c["variable"], lower=float(c.get("min", -math.inf)),
                     upper=float(c.get("max", math.inf)), description=c.get("description", ""))
                 for c in config.cuts(kinds=tuple(kinds)))


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

    def rows(self) -> list[tuple[Any, ...]]:
        """Rows of ``cutflow.csv``: cut, description, events, efficiency_cumulative, efficiency_step."""
        return list(zip(self.cuts, self.descriptions, self.events, self.efficiency_cumulative, self.efficiency_step))


def apply_cuts(data: ReducedData, cuts: Sequence[Cut]) -> tuple[np.ndarray, CutFlow]:
    """Apply cuts in order.

    Returns:
        The mask of events passing all cuts, and the cut flow (first row: all events).
    """
    mask = np.ones(len(data), dtype=bool)
    names, descs, events = ["all"], ["all events in the file"], [int(mask.sum())]
    for cut in cuts:
        mask &= cut.mask(data)
        names.append(cut.name)
        descs.append(cut.description or f"{cut.lower} <= {cut.variable} < {cut.upper}")
        events.append(int(mask.sum()))
    return mask, CutFlow(tuple(names), tuple(descs), tuple(events))


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


def fiducial_mass_t(detector: dict[str, Any], cuts: Sequence[Cut]) -> float:
    """Fiducial mass [t] from the fiducial cuts and the detector section of a sidecar."""
    w = fiducial_window(cuts)
    height_cm = (w["drift_time_max_us"] - w["drift_time_min_us"]) * detector["drift_velocity_mm_per_us"] / 10.0
    return detector["lxe_density_g_cm3"] * math.pi * w["r_max_cm"] ** 2 * height_cm / 1e6


def fiducial_volume_fraction(active_volume: dict[str, float], cuts: Sequence[Cut]) -> float:
    """Fraction of a sample generated uniformly in ``active_volume`` whose true position is fiducial."""
    w = fiducial_window(cuts)
    r_frac = min(1.0, (w["r_max_cm"] / active_volume["r_max_cm"]) ** 2)
    lo = max(w["drift_time_min_us"], active_volume["drift_time_min_us"])
    hi = min(w["drift_time_max_us"], active_volume["drift_time_max_us"])
    span = active_volume["drift_time_max_us"] - active_volume["drift_time_min_us"]
    return r_frac * max(0.0, hi - lo) / span


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

    def rows(self) -> list[tuple[float, ...]]:
        """Rows of ``acceptance.csv``."""
        return [tuple(float(v) for v in r) for r in zip(self.energy_low_kev, self.energy_high_kev, self.energy_kev,
                                                         self.acceptance, self.acceptance_err)]


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
