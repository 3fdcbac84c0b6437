"""iminuit fits (dmpreserve.stats.fit) of a workspace with staterror: gammas profiled, same minimum as pyhf."""

from __future__ import annotations

import numpy as np
import pyhf
import pytest
from modifier_workspaces import random_workspace

from dmpreserve.stats.fit import FitModel, fit_background_only, fit_signal_plus_background


@pytest.fixture(scope="module")
def likelihood():
    return random_workspace(7)


def test_profiled_fit_reaches_pyhf_minimum(likelihood) -> None:
    ws, patch = likelihood
    lik = FitModel(ws, patch)
    assert not any(n.startswith("staterror") for n in lik.names) and "rate_b" in lik.names
    best = lik.fit()
    assert best.valid
    pyhf.set_backend("numpy", pyhf.optimize.scipy_optimizer())
    pars, twice = pyhf.infer.mle.fit(lik.data, lik.model, return_fitted_val=True)
    assert best.twice_nll == pytest.approx(float(twice), abs=2e-3)
    assert best.twice_nll <= float(twice) + 1e-3
    full = lik.expand(best.values)
    np.testing.assert_allclose(full, pars, atol=2e-2)


def test_fit_documents_have_no_gamma_rows(likelihood) -> None:
    ws, patch = likelihood
    bkg = fit_background_only(ws)
    names = [p["name"] for p in bkg["parameters"]]
    assert names and not any(n.startswith("staterror") for n in names)
    assert bkg["goodness_of_fit"]["n_free_parameters"] == len(names)
    sb = fit_signal_plus_background(ws, patch, scan_points=5)
    assert sb["poi"]["name"] == "mu" and sb["valid"]
    assert all(d >= 0 for d in sb["scan"]["delta_twice_nll"])


def test_hepdata_tables_keep_pulls_with_a_free_normfactor(likelihood) -> None:
    import hepdata_lib

    from dmpreserve.publish.hepdata_fit_tables import fit_tables
    from dmpreserve.stats.fit import fit_all

    ws, patch = likelihood
    doc = fit_all(ws, {"patches": [patch]}, scan_points=3, gof_toys=0).to_json()
    tables = {t.name: t for t in fit_tables(hepdata_lib, doc, {})}
    pulls = {v.name: v.values for v in tables["Background-only fit"].variables}
    assert "Pull" in pulls and "rate_b" not in pulls["Parameter"] and len(pulls["Pull"]) == len(pulls["Parameter"])
    free = {v.name: v.values for v in tables["Background-only fit: free parameters"].variables}
    assert free["Parameter"] == ["rate_b"]
