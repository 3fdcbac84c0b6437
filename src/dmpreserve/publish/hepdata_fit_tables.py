"""HEPData tables of the maximum-likelihood fits (``results/fit/fit.json``): pulls, correlations, best fits.

Used by :func:`dmpreserve.publish.hepdata.write_submission`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from dmpreserve.publish.hepdata_tables import new_table, variable


def _gof_text(gof: Mapping) -> str:
    text = (
        f"Saturated-model goodness of fit: t_sat = {gof['t_sat']:.6g} for ndof = {gof['ndof']} "
        f"({gof['n_bins']} bins - {gof['n_free_parameters']} free parameters), p-value (chi2) = "
        f"{gof['p_value_chi2']}"
    )
    if gof.get("p_value_toys") is not None:
        text += f", p-value ({gof['toys']} toys) = {gof['p_value_toys']:.3g} +- {gof['p_value_toys_error']:.2g}"
    return text + "."


def _parameter_table(hdl, title: str, description: str, rows: Sequence[Mapping], keywords):
    table = new_table(
        hdl,
        title,
        description=description,
        location="Pull figure (results/fit/fit.json)",
        keywords=keywords,
        observables=["PULL"],
    )
    table.add_variable(variable(hdl, "Parameter", values=[str(r["name"]) for r in rows], independent=True))
    var = variable(hdl, "Post-fit value", values=[float(r["value"]) for r in rows], independent=False)
    unc = hdl.Uncertainty("HESSE", is_symmetric=True)
    unc.values = [float(r["error"]) for r in rows]
    var.add_uncertainty(unc)
    table.add_variable(var)
    if rows and all(r.get("pull") is not None for r in rows):
        table.add_variable(
            variable(hdl, "Pre-fit value", values=[float(r["prefit_value"]) for r in rows], independent=False)
        )
        table.add_variable(
            variable(hdl, "Pre-fit uncertainty", values=[float(r["prefit_error"]) for r in rows], independent=False)
        )
        table.add_variable(variable(hdl, "Pull", values=[float(r["pull"]) for r in rows], independent=False))
    return table


def _valid(doc: Mapping | None) -> bool:
    """A fit with a valid MINUIT minimum (fits flagged ``valid: false`` are never published)."""
    return doc is not None and doc.get("valid") is not False


def fit_tables(hdl, fit: Mapping, keywords) -> list:
    """Tables of the fit results (``fit.json``, already schema-validated): parameters, correlations, scan, mu^.

    Only fits with a valid minimum are published: a fit flagged ``valid: false`` has no table, and the
    best-fit table leaves such masses out and names them in its description.
    """
    method = (
        "Maximum-likelihood fit of the attached HistFactory likelihood with MINUIT (iminuit: MIGRAD, HESSE"
        "{}); pull = (post-fit - pre-fit value) / pre-fit uncertainty."
    )
    tables = []
    if _valid(fit):
        tables.append(
            _parameter_table(
                hdl,
                "Background-only fit",
                "Background-only fit: post-fit values of the nuisance parameters (normsys rate "
                "modifiers, in units of their pre-fit constraint) with HESSE uncertainties and pulls. "
                + method.format("")
                + f" -2 ln L at the minimum: {fit['twice_nll']:.7g}. "
                + _gof_text(fit["goodness_of_fit"]),
                [r for r in fit["parameters"] if r.get("pull") is not None] or fit["parameters"],
                keywords,
            )
        )
        free = [r for r in fit["parameters"] if r.get("pull") is None]
        if free and len(free) < len(fit["parameters"]):  # free rate factors: no pre-fit constraint, no pull
            tables.append(
                _parameter_table(
                    hdl,
                    "Background-only fit: free parameters",
                    "Background-only fit: post-fit values of the unconstrained parameters (free normfactors) "
                    "with HESSE uncertainties. " + method.format(""),
                    free,
                    keywords,
                )
            )
    sb = fit.get("signal_plus_background")
    rows = [r for r in fit.get("best_fit_per_mass") or () if _valid(r)]
    omitted = [r["mass_gev"] for r in fit.get("best_fit_per_mass") or () if not _valid(r)]
    if not _valid(sb):
        sb = None
    if sb is None and not _valid(fit):
        return tables + _best_fit_table(hdl, rows, omitted, keywords)
    corr = (sb or fit)["correlation"]
    names = list(corr["names"])
    matrix = np.asarray(corr["matrix"], dtype=float)
    fitted = f"signal-plus-background fit at {sb['mass_gev']:.6g} GeV/c^2" if sb else "background-only fit"
    table = new_table(
        hdl,
        "Correlation matrix",
        description=f"HESSE correlation coefficients of the free parameters of the {fitted}.",
        location="Correlation figure (results/fit/fit.json)",
        keywords=keywords,
        observables=["CORR"],
    )
    ii, jj = np.meshgrid(np.arange(len(names)), np.arange(len(names)), indexing="ij")
    table.add_variable(variable(hdl, "Parameter 1", values=[names[i] for i in ii.ravel()], independent=True))
    table.add_variable(variable(hdl, "Parameter 2", values=[names[j] for j in jj.ravel()], independent=True))
    table.add_variable(variable(hdl, "Correlation", values=matrix.ravel().tolist(), independent=False))
    tables.append(table)
    if sb is None:
        return tables + _best_fit_table(hdl, rows, omitted, keywords)
    poi = sb["poi"]
    ref = sb["reference_cross_section_cm2"]
    minos = f"MINOS interval of mu: {poi['minos_lower']} / +{poi['minos_upper']}" + (
        " (lower edge at the parameter bound)" if poi["minos_at_lower_limit"] else ""
    )
    mu_row = {"name": poi["name"], "value": poi["value"], "error": poi["error"], "pull": None}
    tables.append(
        _parameter_table(
            hdl,
            "Signal-plus-background fit",
            f"Signal-plus-background fit for a {sb['mass_gev']:.6g} GeV/c^2 WIMP: signal strength mu (sigma_SI = mu x "
            f"{ref:.3g} cm^2) and nuisance parameters with HESSE uncertainties. "
            + method.format(", MINOS")
            + " "
            + minos
            + f"; -2 ln lambda(mu = 0) = {sb['delta_twice_nll_mu0']:.4g}. "
            + _gof_text(sb["goodness_of_fit"]),
            [mu_row, *sb["parameters"]],
            keywords,
        )
    )
    table = new_table(
        hdl,
        "Profile likelihood scan",
        description=f"Profile-likelihood scan of the signal strength mu for a {sb['mass_gev']:.6g} "
        f"GeV/c^2 WIMP (sigma_SI = mu x {ref:.3g} cm^2): {sb['scan']['definition']}.",
        location="POI scan figure (results/fit/fit.json)",
        keywords=keywords,
        observables=["-2 ln lambda"],
    )
    mu = np.asarray(sb["scan"]["mu"], dtype=float)
    table.add_variable(variable(hdl, "Signal strength mu", values=mu.tolist(), independent=True))
    table.add_variable(variable(hdl, "sigma_SI", units="cm$^{2}$", values=(mu * ref).tolist(), independent=False))
    table.add_variable(
        variable(hdl, "-2 ln lambda(mu)", values=[float(v) for v in sb["scan"]["delta_twice_nll"]], independent=False)
    )
    tables.append(table)
    return tables + _best_fit_table(hdl, rows, omitted, keywords)


def _best_fit_table(hdl, rows: Sequence[Mapping], omitted: Sequence[float], keywords) -> list:
    """The best-fit cross section per mass (valid fits only; ``omitted``: masses whose fit was not valid)."""
    if not rows:
        return []
    note = (
        " Masses whose fit found no valid minimum are not published: "
        + ", ".join(f"{m:.6g}" for m in omitted)
        + " GeV/c^2."
        if omitted
        else ""
    )
    table = new_table(
        hdl,
        "Best-fit cross section",
        description="Best-fit signal strength per WIMP mass (MIGRAD + HESSE, mu bounded to the "
        "workspace's POI bounds) and the corresponding best-fit cross section sigma_SI "
        "[cm^2]; -2 ln lambda(0) is the profile-likelihood ratio of the background-only "
        "hypothesis (q0 when mu^ > 0)." + note,
        location="Best-fit figure (results/fit/fit.json)",
        keywords=keywords,
        observables=["SIG"],
    )
    table.add_variable(
        variable(hdl, "WIMP mass", units="GeV", values=[float(r["mass_gev"]) for r in rows], independent=True)
    )
    var = variable(
        hdl,
        "Best-fit sigma_SI",
        units="cm$^{2}$",
        values=[float(r["cross_section_hat_cm2"]) for r in rows],
        independent=False,
    )
    unc = hdl.Uncertainty("HESSE", is_symmetric=True)
    unc.values = [float(r["cross_section_hat_error_cm2"]) for r in rows]
    var.add_uncertainty(unc)
    table.add_variable(var)
    table.add_variable(variable(hdl, "Best-fit mu", values=[float(r["mu_hat"]) for r in rows], independent=False))
    table.add_variable(
        variable(hdl, "-2 ln lambda(0)", values=[float(r["delta_twice_nll_mu0"]) for r in rows], independent=False)
    )
    return [table]
