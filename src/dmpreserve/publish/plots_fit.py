"""Plots of the maximum-likelihood fits: pulls, correlation matrix, POI profile-likelihood scan, μ̂ per mass.

Like :mod:`dmpreserve.publish.plots` (whose :func:`~dmpreserve.publish.plots.save_figure` writes them), every function
takes plain arrays as keyword-only arguments and returns a :class:`matplotlib.figure.Figure`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from dmpreserve.arrays import as_finite_array
from dmpreserve.errors import InvalidData
from dmpreserve.publish.plots import (
    BAND_1SIGMA_COLOR,
    BAND_2SIGMA_COLOR,
    MASS_LABEL,
    PULL_LABEL,
    XSEC_LABEL,
    same_length,
)

#: -2 ln λ thresholds drawn on the scan: (value, label) — 68.3% and 95.4% two-sided (1 dof), 90% CL.
SCAN_THRESHOLDS = ((1.0, r"$1\sigma$ (1.00)"), (2.706, "90% CL, $\\chi^2_1$ (2.71)"), (4.0, r"$2\sigma$ (4.00)"))


def plot_pulls(*, names: Sequence[str], pulls: Sequence[float], errors: Sequence[float]) -> Figure:
    """Standard pull plot of nuisance parameters with ±1σ (green) and ±2σ (yellow) bands.

    Args:
        names: Parameter names.
        pulls: Pulls (θ̂ − θ0)/Δθ, with θ0 and Δθ the pre-fit value and uncertainty.
        errors: Post-fit uncertainties in the same normalised units (σ̂_θ/Δθ).

    Returns:
        The figure.

    Raises:
        InvalidData: Lengths differ, non-finite values or negative errors.
    """
    labels = [str(n) for n in names]
    p = as_finite_array("pulls", pulls)
    e = as_finite_array("errors", errors, nonnegative=True)
    n = same_length(names=np.asarray(labels, dtype=object), pulls=p, errors=e)

    fig = Figure(figsize=(6.4, max(2.5, 0.35 * n + 1.2)), layout="constrained")
    ax = fig.add_subplot()
    ax.axvspan(-2.0, 2.0, color=BAND_2SIGMA_COLOR, linewidth=0, label=r"$\pm 2\sigma$")
    ax.axvspan(-1.0, 1.0, color=BAND_1SIGMA_COLOR, linewidth=0, label=r"$\pm 1\sigma$")
    ax.axvline(0.0, color="black", linestyle="--", linewidth=0.8)
    ypos = np.arange(n)[::-1]
    ax.errorbar(p, ypos, xerr=e, fmt="o", color="black", markersize=4, capsize=2, elinewidth=1.2, label="Post-fit")
    ax.set_yticks(ypos)
    ax.set_yticklabels(labels)
    reach = float(np.max(np.abs(p) + e)) if n else 0.0
    lim = max(3.0, 1.1 * reach)
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-0.7, n - 0.3)
    ax.set_xlabel(PULL_LABEL)
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles[::-1], labels[::-1], loc="outside upper center", ncols=3, fontsize="small", frameon=False)
    return fig


def plot_correlation(*, names: Sequence[str], matrix) -> Figure:
    """Correlation matrix of the fitted parameters (diverging colour map, values annotated).

    Args:
        names: Parameter names (rows and columns).
        matrix: Square correlation matrix with entries in [-1, 1].

    Returns:
        The figure.

    Raises:
        InvalidData: Not square, size different from ``names``, non-finite or outside [-1, 1].
    """
    labels = [str(n) for n in names]
    corr = as_finite_array("matrix", matrix, ndim=2)
    n = len(labels)
    if n == 0 or corr.shape != (n, n):
        raise InvalidData(f"shape {corr.shape} does not match {n} parameter names", field="matrix")
    if np.any(np.abs(corr) > 1.0 + 1e-6):
        raise InvalidData("correlations must lie in [-1, 1]", field="matrix")
    size = max(4.0, 0.55 * n + 2.5)
    fig = Figure(figsize=(size + 1.0, size), layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(corr, cmap="RdBu_r", vmin=-1.0, vmax=1.0, interpolation="nearest")
    cbar = fig.colorbar(image, ax=ax)
    cbar.set_label("correlation coefficient")
    if n <= 30:
        for i in range(n):
            for j in range(n):
                ax.text(
                    j,
                    i,
                    f"{round(float(corr[i, j]), 2) + 0.0:.2f}",
                    ha="center",
                    va="center",
                    fontsize="x-small",
                    color="white" if abs(corr[i, j]) > 0.6 else "black",
                )
    ax.set_xticks(np.arange(n))
    ax.set_yticks(np.arange(n))
    ax.set_xticklabels(labels, rotation=45, ha="right")
    ax.set_yticklabels(labels)
    return fig


def plot_poi_scan(
    *,
    mu: Sequence[float],
    delta_twice_nll: Sequence[float],
    mu_hat: float | None = None,
    poi_label: str = r"signal strength $\mu$",
    title: str | None = None,
) -> Figure:
    """Profile-likelihood scan of the parameter of interest: −2 ln λ(μ) with 1σ, 90% CL and 2σ lines.

    Args:
        mu: Scanned POI values (dimensionless signal strength).
        delta_twice_nll: −2 ln λ(μ) = −2 ln L(μ, profiled θ) + 2 ln L(best fit) at each value (≥ 0).
        mu_hat: Optional best-fit value, marked with a vertical line.
        poi_label: x-axis label.
        title: Optional axes title.

    Returns:
        The figure.

    Raises:
        InvalidData: Lengths differ, non-finite or negative −2 ln λ.
    """
    x = as_finite_array("mu", mu)
    y = as_finite_array("delta_twice_nll", delta_twice_nll, nonnegative=True)
    same_length(mu=x, delta_twice_nll=y)
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    fig = Figure(figsize=(6.4, 4.4), layout="constrained")
    ax = fig.add_subplot()
    ax.plot(x, y, color="black", marker="o", markersize=3, linewidth=1.5, label=r"$-2\ln\lambda(\mu)$ (profiled)")
    for (level, text), style in zip(SCAN_THRESHOLDS, (":", "--", "-.")):
        ax.axhline(level, color="tab:gray", linestyle=style, linewidth=1.0, label=text)
    if mu_hat is not None:
        ax.axvline(float(mu_hat), color="tab:blue", linewidth=1.0, label=rf"$\hat{{\mu}}$ = {float(mu_hat):.3g}")
    ax.set_xlabel(poi_label)
    ax.set_ylabel(r"$-2\,\Delta\ln L = -2\ln\lambda(\mu)$")
    ax.set_ylim(0.0, max(5.0, 1.05 * float(y.max())))
    if len(x) > 1:
        ax.set_xlim(x[0], x[-1])
    ax.grid(True, alpha=0.3)
    if title:
        ax.set_title(title)
    ax.legend(loc="upper left", fontsize="small")
    return fig


def plot_best_fit_per_mass(
    *, mass_gev: Sequence[float], cross_section_hat_cm2: Sequence[float], cross_section_hat_error_cm2: Sequence[float]
) -> Figure:
    """Best-fit SI cross section σ̂ = μ̂ × reference σ [cm²] with its HESSE error versus WIMP mass, log-log.

    Masses where μ̂ sits at its lower bound 0 are drawn as σ̂ + 1σ markers.

    Args:
        mass_gev: WIMP masses [GeV/c²].
        cross_section_hat_cm2: Best-fit σ_SI [cm²] (0 where μ̂ sits at its lower bound).
        cross_section_hat_error_cm2: HESSE 1σ error of σ̂ [cm²].

    Returns:
        The figure.

    Raises:
        InvalidData: Lengths differ, non-finite values, non-positive masses, nothing positive to draw.
    """
    m = as_finite_array("mass_gev", mass_gev, positive=True)
    s = as_finite_array("cross_section_hat_cm2", cross_section_hat_cm2)
    e = as_finite_array("cross_section_hat_error_cm2", cross_section_hat_error_cm2, nonnegative=True)
    same_length(mass_gev=m, cross_section_hat_cm2=s, cross_section_hat_error_cm2=e)
    order = np.argsort(m, kind="stable")
    m, s, e = m[order], s[order], e[order]
    fig = Figure(figsize=(6.4, 4.4), layout="constrained")
    ax = fig.add_subplot()
    upper = s + e
    if not np.any(upper > 0):
        raise InvalidData("no mass has a positive best fit or error", field="cross_section_hat_cm2")
    floor = float(np.min(upper[upper > 0])) * 1e-2
    ax.vlines(
        m,
        np.clip(s - e, floor, None),
        np.clip(upper, floor, None),
        color="black",
        linewidth=1.2,
        label=r"$\hat{\sigma} \pm 1\sigma$ (HESSE, clipped at the axis)",
    )
    pos = s > 0
    if np.any(pos):
        ax.plot(m[pos], s[pos], "o", color="black", markersize=4, label=r"best fit $\hat{\sigma}_\mathrm{SI} > 0$")
    if np.any(~pos):
        ax.plot(
            m[~pos],
            upper[~pos],
            "v",
            color="tab:blue",
            markersize=5,
            label=r"$\hat{\sigma} = 0$ (at the bound): $\hat{\sigma} + 1\sigma$",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylim(bottom=floor)
    ax.set_xlabel(MASS_LABEL)
    ax.set_ylabel("best-fit " + XSEC_LABEL)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper right", fontsize="small")
    return fig
