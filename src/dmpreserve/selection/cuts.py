"""Selections declared as data: each cut keeps ``min <= variable < max`` on a known variable.

Cuts are never evaluated as code: the variable must be a reduced-data column or one of the fixed
derived quantities (``r_cm``, ``log10_cs2``), and the bounds are numbers.

Two engines share the cut definitions: :func:`apply_cuts` on an in-memory :class:`ReducedData`
(the ``select`` step), and :func:`dmpreserve.selection.stream.select_stream`, which translates the
cuts into pyarrow compute expressions pushed down into a ``pyarrow.dataset`` scan.  This module also
computes what the cuts imply: the exposure (:func:`exposure_of`) and the NR signal acceptance.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from dmpreserve.artifacts.exposure import Exposure
from dmpreserve.artifacts.reduced import ReducedData
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


def exposure_of(science: ReducedData, cuts: Sequence[Cut]) -> Exposure:
    """The science run's exposure: fiducial mass of the cuts x the sidecar's live time.

    Raises:
        InvalidData: naming the science file when its sidecar lacks the detector or live time.
    """
    try:
        detector, live_time_s = science.meta["detector"], float(science.meta["live_time_s"])
        mass = fiducial_mass_from_cuts(detector, cuts)
    except (KeyError, TypeError) as exc:
        raise InvalidData(
            f"sidecar lacks what the exposure needs ({exc})", path=science.path, field="detector/live_time_s"
        ) from None
    return Exposure(fiducial_mass_t=mass, live_time_s=live_time_s, exposure_t_yr=mass * live_time_s / SECONDS_PER_YEAR)


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
