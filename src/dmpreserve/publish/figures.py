"""What to draw from which step's output: the pipeline's result figures (``plots`` step).

The drawing functions (:mod:`dmpreserve.publish.plots`, :mod:`dmpreserve.publish.plots_fit`) take
arrays and return a Figure; this module decides which arrays go into which figure and where it is saved.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from dmpreserve.artifacts.fit import FitResults
from dmpreserve.artifacts.limits import MOCK_DATA_TEXT, LimitResult, LimitTable
from dmpreserve.artifacts.reduced import ReducedData
from dmpreserve.artifacts.signal_templates import SignalTemplates
from dmpreserve.artifacts.tables import Acceptance, CutFlow
from dmpreserve.artifacts.templates import BackgroundTemplates
from dmpreserve.publish import plots, plots_fit

LOG = logging.getLogger("dmpreserve")

#: Mass [GeV/c^2] whose signal template is drawn over the analysis space.
ANALYSIS_SPACE_MASS_GEV = 50.0


def limit_plot_labels(result: LimitResult | None) -> tuple[str, str]:
    """Legend entry of the headline limit and the title suffix, from the result's ``limits.json`` record:
    the critical power of the power constraint, the exposure [t yr] and, for mock data, "mock data (NEST MDC)"."""
    if result is None:
        return "Power-constrained limit (PCL, headline)", ""
    power = f" at π_crit = {result.pcl_power:g}" if result.pcl_power is not None else ""
    parts = [f"Power-constrained limit (PCL{power}, headline)"]
    if result.mock:
        parts.append(MOCK_DATA_TEXT)
    if result.exposure_t_yr is not None:
        parts.append(f"{result.exposure_t_yr:.3g} t yr")
    return ", ".join(parts), f" — {MOCK_DATA_TEXT}" if result.mock else ""


def write_limit_plot(
    limits: LimitTable, outdir: Path, references: Sequence[tuple] = (), result: LimitResult | None = None
) -> None:
    """``limits.png`` and ``limits.pdf``: PCL headline, unconstrained PLR and CLs over the PLR sensitivity band,
    with ``references`` (``(label, mass_gev, limit_cm2)``, e.g. the collaboration's published curves) drawn over;
    ``result`` (the same step's ``limits.json``) adds its critical power, exposure and mock-data note to the legend."""
    both = "limit_unconstrained_cm2" in limits and "limit_cls_cm2" in limits
    kwargs = {k: limits[k] for k in plots.LIMIT_CURVE_COLUMNS if k in limits}
    kwargs["references"] = list(references)
    headline, note = limit_plot_labels(result)
    if both:
        fig = plots.plot_limit_curve(
            **kwargs,
            label=headline,
            band_label="PLR sensitivity",
            title=f"SI WIMP-nucleon, 90% CL{note}",
        )
    else:
        fig = plots.plot_limit_curve(**kwargs, title=f"SI WIMP-nucleon, 90% CL (asymptotic CLs){note}")
    plots.save_figure(fig, outdir / "limits.png")
    plots.save_figure(fig, outdir / "limits.pdf")


def write_fit_plots(fit: FitResults, outdir: Path) -> None:
    """``pulls.png``, ``correlation.png``; with a signal-plus-background fit also ``poi_scan.png``, ``best_fit.png``.

    Fits flagged ``valid: false`` (no valid MINUIT minimum) are not published as values: the scan of
    an invalid signal-plus-background fit is titled as such, and the best-fit plot leaves invalid
    fits out (their masses are logged).
    """
    pars = fit.pulled_parameters()
    plots.save_figure(
        plots_fit.plot_pulls(
            names=[p["name"] for p in pars],
            pulls=[p["pull"] for p in pars],
            errors=[p["error"] / p["prefit_error"] for p in pars],
        ),
        outdir / "pulls.png",
    )
    sb = fit.signal_plus_background
    corr = sb["correlation"] if sb is not None else fit.correlation
    plots.save_figure(
        plots_fit.plot_correlation(names=corr["names"], matrix=corr["matrix"]), outdir / "correlation.png"
    )
    if sb is not None:
        invalid = " (NOT VALID: no MINUIT minimum)" if sb.get("valid") is False else ""
        plots.save_figure(
            plots_fit.plot_poi_scan(
                mu=sb["scan"]["mu"],
                delta_twice_nll=sb["scan"]["delta_twice_nll"],
                mu_hat=sb["poi"]["value"],
                title=f"Profile likelihood, {sb['mass_gev']:.4g} GeV/c² WIMP "
                f"(σ = μ × {sb['reference_cross_section_cm2']:.0e} cm²){invalid}",
            ),
            outdir / "poi_scan.png",
        )
        rows = [r for r in fit.best_fit_per_mass or () if r.get("valid") is not False]
        omitted = [f"{r['mass_gev']:.4g}" for r in fit.best_fit_per_mass or () if r.get("valid") is False]
        if omitted:
            LOG.warning("best fits without a valid minimum are not drawn: %s GeV", ", ".join(omitted))
        plots.save_figure(
            plots_fit.plot_best_fit_per_mass(
                mass_gev=[r["mass_gev"] for r in rows],
                cross_section_hat_cm2=[r["cross_section_hat_cm2"] for r in rows],
                cross_section_hat_error_cm2=[r["cross_section_hat_error_cm2"] for r in rows],
            ),
            outdir / "best_fit.png",
        )


def write_result_plots(
    outdir: Path,
    *,
    limits: LimitTable,
    templates: BackgroundTemplates,
    signal: SignalTemplates,
    selected: ReducedData,
    cutflow: CutFlow,
    acceptance: Acceptance,
    fit: FitResults,
    references: Sequence[tuple] = (),
    result: LimitResult | None = None,
) -> None:
    """Every figure of the ``plots`` step into ``outdir`` (see ``dmpreserve plots --help``); ``references``:
    published curves ``(label, mass_gev, limit_cm2)`` for the limit plot; ``result``: the ``limits.json`` record
    (critical power, exposure, mock data) for its legend."""
    write_limit_plot(limits, outdir, references, result)
    i_mass = int(np.argmin(np.abs(np.log(np.asarray(signal.masses_gev) / ANALYSIS_SPACE_MASS_GEV))))
    fig = plots.plot_analysis_space(
        cs1_edges_phd=templates.cs1_edges_phd,
        log10_cs2_edges=templates.log10_cs2_edges,
        background_expected=templates.total_background(),
        observed_cs1_phd=selected.columns["cs1_phd"],
        observed_log10_cs2=selected.variable("log10_cs2"),
        signal_expected=np.asarray(signal.templates[i_mass]).reshape(templates.shape),
        signal_label=f"{signal.masses_gev[i_mass]:.3g} GeV WIMP",
    )
    plots.save_figure(fig, outdir / "analysis_space.png")
    plots.save_figure(fig, outdir / "analysis_space.pdf")
    plots.save_figure(
        plots.plot_cutflow(
            cuts=list(cutflow.cuts),
            events=np.asarray(cutflow.events, float),
            efficiency=np.asarray(cutflow.efficiency_cumulative),
        ),
        outdir / "cutflow.png",
    )
    plots.save_figure(
        plots.plot_acceptance(
            energy_kev=acceptance.energy_kev, acceptance=acceptance.acceptance, acceptance_err=acceptance.acceptance_err
        ),
        outdir / "acceptance.png",
    )
    write_fit_plots(fit, outdir)
