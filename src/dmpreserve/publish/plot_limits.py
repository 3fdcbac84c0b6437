"""The field's plot: limit curves of results against published curves (``dmpreserve plot-limits``).

:func:`plot_limits` takes :class:`LimitCurve` objects (plain arrays) and returns a
:class:`matplotlib.figure.Figure` (object-oriented API, no ``pyplot`` state, no files written; save it with
:func:`dmpreserve.publish.plots.save_figure` for byte-identical files).  Every legend entry states the
experiment or label, the exposure [t yr] and the statistical convention; mock data are labelled as such
(:data:`dmpreserve.artifacts.limits.MOCK_DATA_TEXT`).  Conventions (Baxter et al., EPJC 81 (2021) 907):
unconstrained Neyman (PLR) limit, power-constrained limit (PCL) at a critical power π_crit, or CLs.

Styles differ in line style, width and marker as well as colour, so the plot reads in grayscale too.  A published
curve of a known experiment has that experiment's colour in every figure
(:data:`dmpreserve.publish.plots.EXPERIMENT_COLORS`).
Masses in GeV/c², cross sections in cm² (or the result's strength unit).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from dmpreserve.arrays import as_finite_array
from dmpreserve.artifacts.limits import MOCK_DATA_TEXT
from dmpreserve.errors import InvalidData
from dmpreserve.publish.plots import (
    BAND_1SIGMA_COLOR,
    BAND_2SIGMA_COLOR,
    MASS_LABEL,
    REFERENCE_COLORS,
    XSEC_LABEL,
    clip_to_range,
    experiment_color,
    same_length,
    set_mass_axis,
)

#: Legend text of the convention keys (other convention strings are shown as given).
CONVENTION_TEXT = {
    "unconstrained": "unconstrained",
    "pcl": "power-constrained",
    "cls": "CLs",
    "unrecorded": "convention not recorded",
}
#: Result styles (colour, line style, width, marker): dark colours, solid/dashed, distinct markers.
RESULT_STYLES = (
    ("black", "-", 2.2, None),
    ("#0072b2", "--", 2.0, "o"),
    ("#d55e00", "-.", 2.0, "s"),
    ("#009e73", ":", 2.2, "^"),
)
#: Published-curve styles (colour, dash pattern, width, marker); the colour gives way to the experiment's
#: (:data:`dmpreserve.publish.plots.EXPERIMENT_COLORS`) when the label names one.
REFERENCE_STYLES = tuple(
    zip(
        REFERENCE_COLORS,
        ((0, (6, 2)), (0, (2, 1.5)), (0, (6, 2, 1, 2)), (0, (1, 1)), (0, (8, 2, 1, 2, 1, 2))),
        (1.6, 1.8, 1.6, 1.8, 1.6),
        ("v", "D", "P", "X", "*"),
    )
)
DEFAULT_TITLE = "SI WIMP–nucleon, 90% CL upper limits"


@dataclasses.dataclass(frozen=True, kw_only=True)
class LimitCurve:
    """One limit curve and what its legend entry states.

    Attributes:
        label: Experiment or result label (e.g. "LZ WS2022", "this work").
        masses_gev: WIMP masses [GeV/c²], shape (n,), any order (drawn in mass order).
        limits: Upper limits, shape (n,) [cm² or the result's strength unit].
        convention: ``"unconstrained"``, ``"pcl"``, ``"cls"``, ``"unrecorded"`` or free text (shown as given).
        band: Sensitivity band, shape (5, n): -2σ, -1σ, median, +1σ, +2σ; None for none.
        exposure_t_yr: Exposure [t yr]; None: not stated.
        mock: True for mock data (legend: "mock data (NEST MDC)").
        pcl_power: Critical power π_crit of a ``"pcl"`` curve (stated in the legend).
        cl: Confidence level (stated in the legend when not 90%).
    """

    label: str
    masses_gev: Sequence[float] | np.ndarray
    limits: Sequence[float] | np.ndarray
    convention: str
    band: Sequence[Sequence[float]] | np.ndarray | None = None
    exposure_t_yr: float | None = None
    mock: bool = False
    pcl_power: float | None = None
    cl: float = 0.9

    def legend(self) -> str:
        """The legend entry: label, exposure, convention (and CL when not 90%), mock-data note."""
        conv = CONVENTION_TEXT.get(self.convention, self.convention)
        if self.convention == "pcl" and self.pcl_power is not None:
            conv = f"{conv} (π_crit = {self.pcl_power:g})"
        parts = [self.label]
        if self.mock:
            parts.append(MOCK_DATA_TEXT)
        parts.append("exposure not stated" if self.exposure_t_yr is None else f"{self.exposure_t_yr:.3g} t yr")
        parts.append(conv if abs(self.cl - 0.9) < 1e-12 else f"{conv}, {self.cl:.0%} CL")
        return ", ".join(parts)

    def arrays(self, what: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Masses, limits and band (5, n) checked (finite, positive, same length) and sorted by mass.

        Raises:
            InvalidData: naming ``what`` and the offending array.
        """
        m = as_finite_array(f"{what}.masses_gev", self.masses_gev, positive=True)
        v = as_finite_array(f"{what}.limits", self.limits, positive=True)
        same_length(**{f"{what}.masses_gev": m, f"{what}.limits": v})
        order = np.argsort(m, kind="stable")
        if np.any(np.diff(m[order]) <= 0):
            raise InvalidData("repeated mass", field=f"{what}.masses_gev")
        band = None
        if self.band is not None:
            band = np.asarray(self.band, dtype=float)
            if band.shape != (5, len(m)) or not np.all(np.isfinite(band)) or np.any(band <= 0):
                raise InvalidData(f"must be 5 x {len(m)} positive finite values", field=f"{what}.band")
            band = band[:, order]
        return m[order], v[order], band


def plot_limits(
    curves: Sequence[LimitCurve],
    references: Sequence[LimitCurve] = (),
    *,
    ylabel: str = XSEC_LABEL,
    title: str | None = None,
    mass_range: tuple[float, float] | None = None,
) -> Figure:
    """Draw results (with their sensitivity bands) against published curves, log-log.

    Args:
        curves: Results, drawn first in the legend; a band is drawn as ±1σ/±2σ (Brazil) fill with its median.
        references: Published or user curves, drawn over the mass range of the results.
        ylabel: y-axis label (default: σ_SI [cm²]).
        title: Axes title (default :data:`DEFAULT_TITLE`).
        mass_range: (low, high) [GeV] of the x axis; default: the results' masses (all curves' without results).
            Every curve is clipped to it (interpolated at the ends, never extrapolated).

    Returns:
        The figure.

    Raises:
        InvalidData: no curve, bad arrays (naming ``curves[i]``/``references[i]``), bad mass range, or no curve
            inside the mass range.
    """
    if not curves and not references:
        raise InvalidData("nothing to draw: give at least one result or reference curve", field="curves")
    res = [c.arrays(f"curves[{i}]") for i, c in enumerate(curves)]
    refs = [c.arrays(f"references[{i}]") for i, c in enumerate(references)]
    if mass_range is None:
        span = res or refs
        lo, hi = min(a[0][0] for a in span), max(a[0][-1] for a in span)
    else:
        lo, hi = (float(x) for x in mass_range)
        if not (np.isfinite(lo) and np.isfinite(hi) and 0 < lo < hi):
            raise InvalidData(f"need 0 < low < high (finite), got {mass_range!r}", field="mass_range")

    fig = Figure(figsize=(7.0, 6.0), layout="constrained")
    ax = fig.add_subplot()
    handles = []
    n_bands = 0
    for i, (curve, (m, v, band)) in enumerate(zip(curves, res)):
        color, style, width, marker = RESULT_STYLES[i % len(RESULT_STYLES)]
        cm, cv = clip_to_range(m, v, lo, hi)
        if cm.size == 0:
            raise InvalidData(f"no mass inside {lo:g}-{hi:g} GeV", field=f"curves[{i}].masses_gev")
        (line,) = ax.plot(cm, cv, color=color, linestyle=style, linewidth=width, marker=marker, markersize=4, zorder=4)
        line.set_label(curve.legend())
        handles.append(line)
        keep = (m >= lo * (1 - 1e-9)) & (m <= hi * (1 + 1e-9))
        if band is not None and keep.sum() >= 2:
            alpha = 1.0 if n_bands == 0 else 0.45  # later bands see-through over the first
            b2 = ax.fill_between(m[keep], band[0][keep], band[4][keep], color=BAND_2SIGMA_COLOR, lw=0, alpha=alpha)
            b1 = ax.fill_between(m[keep], band[1][keep], band[3][keep], color=BAND_1SIGMA_COLOR, lw=0, alpha=alpha)
            (med,) = ax.plot(m[keep], band[2][keep], color=color, linestyle=(0, (3, 2)), linewidth=1.0)
            med.set_label(f"{curve.label}: median expected")
            b1.set_label(f"{curve.label}: expected ±1σ")
            b2.set_label(f"{curve.label}: expected ±2σ")
            handles += [med, b1, b2]
            n_bands += 1
    n_drawn = 0
    for i, (curve, (m, v, _)) in enumerate(zip(references, refs)):
        color, style, width, marker = REFERENCE_STYLES[i % len(REFERENCE_STYLES)]
        color = experiment_color(curve.label) or color
        cm, cv = clip_to_range(m, v, lo, hi)
        if cm.size == 0:
            continue  # outside the plotted masses (e.g. a light-DM curve on a high-mass plot): legend says so
        (line,) = ax.plot(
            cm,
            cv,
            color=color,
            linestyle=style,
            linewidth=width,
            marker=marker,
            markersize=4,
            markevery=max(1, len(cm) // 8),
            zorder=3,
        )
        line.set_label(curve.legend())
        handles.append(line)
        n_drawn += 1
    if not res and not n_drawn:
        raise InvalidData(f"no reference curve inside {lo:g}-{hi:g} GeV", field="references")
    skipped = [c.label for c, (m, v, _) in zip(references, refs) if clip_to_range(m, v, lo, hi)[0].size == 0]
    if skipped:
        handles.append(Patch(fill=False, edgecolor="none", label=f"outside {lo:g}-{hi:g} GeV: {', '.join(skipped)}"))

    set_mass_axis(ax, lo, hi)
    ax.set_yscale("log")
    ax.set_xlabel(MASS_LABEL)
    ax.set_ylabel(ylabel)
    ax.grid(True, which="major", alpha=0.4)
    ax.grid(True, which="minor", alpha=0.15)
    ax.set_title(title or DEFAULT_TITLE)
    fig.legend(handles=handles, loc="outside upper center", ncols=1, fontsize="small", frameon=False)
    return fig
