"""Tests of dmpreserve.stats.yields: prefit/postfit counts per sample and their uncertainty, against pyhf."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pyhf
import pytest
from modifier_workspaces import random_workspace

from dmpreserve.schema import validate
from dmpreserve.stats.fit import MODIFIER_SETTINGS, FitModel, fit_background_only
from dmpreserve.stats.yields import sample_yields

MC_DRAWS = 20000


@pytest.fixture(scope="module")
def workspace() -> dict[str, Any]:
    """Normsys, histosys and a free normfactor (rate_b), no staterror: pyhf's and our parameter vectors match."""
    ws, _ = random_workspace(3, staterror=False)
    return ws


@pytest.fixture(scope="module")
def fitted(workspace):
    lik = FitModel(workspace)
    result = lik.fit()
    assert result.valid
    return lik, result, sample_yields(lik, result)


def _pyhf_model(workspace, batch_size=None):
    return pyhf.Workspace(workspace).model(poi_name=None, modifier_settings=MODIFIER_SETTINGS, batch_size=batch_size)


def test_prefit_is_the_nominal_sum_of_each_sample(workspace, fitted) -> None:
    _, _, rows = fitted
    nominal: dict[str, float] = {}
    for channel in workspace["channels"]:
        for sample in channel["samples"]:
            nominal[sample["name"]] = nominal.get(sample["name"], 0.0) + float(np.sum(sample["data"]))
    assert [r["sample"] for r in rows] == ["bkg_a", "bkg_b", "bkg_c"]
    for row in rows:
        assert row["prefit_events"] == pytest.approx(nominal[row["sample"]], rel=1e-12)
    # the fit moved the counts: the postfit check below is not the prefit one again
    assert any(abs(r["postfit_events"] / r["prefit_events"] - 1) > 0.05 for r in rows)


def test_postfit_matches_pyhf_expected_data_at_pyhf_best_fit(workspace, fitted) -> None:
    lik, result, rows = fitted
    model = _pyhf_model(workspace)
    assert list(model.config.par_names) == list(lik.names)
    # exactly pyhf's per-sample expectation at our best fit ...
    at_ours = np.asarray(model.main_model.expected_data(np.asarray(result.values), return_by_sample=True)).sum(axis=1)
    np.testing.assert_allclose([r["postfit_events"] for r in rows], at_ours, rtol=1e-12)
    # ... and, independently, at pyhf's own best fit (SLSQP); MIGRAD stops at EDM ~ 2e-5 (tol 0.01), which moves
    # the counts by a few 1e-4 relative (well inside 1 % of their errors)
    best = pyhf.infer.mle.fit(pyhf.Workspace(workspace).data(model), model)
    ref = np.asarray(model.main_model.expected_data(best, return_by_sample=True)).sum(axis=1)
    for row, expected in zip(rows, ref):
        assert row["postfit_events"] == pytest.approx(expected, rel=1e-3)
        assert abs(row["postfit_events"] - expected) < 0.01 * row["postfit_error"]


def _linear_workspace() -> dict[str, Any]:
    """Two channels, symmetric 5 % normsys on two samples, a free normfactor on the third: counts nearly linear in
    the parameters within their post-fit errors, so the linear propagation must match a full Monte Carlo."""
    rng = np.random.default_rng(5)
    channels = []
    for ch in ("one", "two"):
        samples = []
        for name, mods in (
            ("er", [{"name": "norm_er", "type": "normsys", "data": {"hi": 1.05, "lo": 1 / 1.05}}]),
            ("nr", [{"name": "norm_nr", "type": "normsys", "data": {"hi": 1.05, "lo": 1 / 1.05}}]),
            ("ar", [{"name": "rate_ar", "type": "normfactor", "data": None}]),
        ):
            samples.append({"name": name, "data": rng.uniform(50.0, 200.0, 4).tolist(), "modifiers": mods})
        channels.append({"name": ch, "samples": samples})
    observed = [rng.poisson(np.sum([s["data"] for s in c["samples"]], axis=0)).astype(float).tolist() for c in channels]
    return {
        "channels": channels,
        "observations": [{"name": c["name"], "data": o} for c, o in zip(channels, observed)],
        "measurements": [
            {"name": "m", "config": {"poi": "mu", "parameters": [{"name": "rate_ar", "bounds": [[0.0, 5.0]]}]}}
        ],
        "version": "1.0.0",
    }


def _mc_errors(workspace, result, *, scale: float = 1.0) -> np.ndarray:
    """Standard deviation per sample of pyhf's counts over MC_DRAWS parameter vectors drawn from
    N(best, (scale sigma)^2 correlation), divided by ``scale``."""
    best = np.asarray(result.values)
    err = np.asarray(result.errors) * scale
    cov = np.asarray(result.correlation) * np.outer(err, err)
    draws = np.random.default_rng(11).multivariate_normal(best, cov, size=MC_DRAWS)
    model = _pyhf_model(workspace, batch_size=MC_DRAWS)
    counts = np.asarray(model.main_model.expected_data(draws, return_by_sample=True)).sum(axis=2)  # (draws, samples)
    return counts.std(axis=0, ddof=1) / scale


def test_postfit_error_agrees_with_monte_carlo_propagation() -> None:
    ws = _linear_workspace()
    lik = FitModel(ws)
    result = lik.fit()
    rows = sample_yields(lik, result)
    mc = _mc_errors(ws, result)
    for row, sd in zip(rows, mc):
        assert row["postfit_error"] > 0
        assert row["postfit_error"] == pytest.approx(sd, rel=0.05), row["sample"]


def test_postfit_error_is_the_linearised_propagation_with_every_modifier(workspace, fitted) -> None:
    """Asymmetric normsys and histosys are not linear over a whole sigma (the full MC differs by up to 10-20 %),
    but the linear propagation must match an MC of draws scaled down to 1 % of the covariance."""
    _, result, rows = fitted
    for row, sd in zip(rows, _mc_errors(workspace, result, scale=0.01)):
        assert row["postfit_error"] == pytest.approx(sd, rel=0.02), row["sample"]


def test_free_normfactor_at_its_bound_gives_finite_errors(workspace) -> None:
    ws = copy.deepcopy(workspace)
    # observe only bkg_a + bkg_c: the free rate of bkg_b goes to its lower bound 0
    for channel, obs in zip(ws["channels"], ws["observations"]):
        a, _, c = (np.asarray(s["data"]) for s in channel["samples"])
        obs["data"] = np.round(0.8 * (a + c)).tolist()
    lik = FitModel(ws)
    result = lik.fit()
    rate = lik.names.index("rate_b")
    assert result.values[rate] < 1e-3  # at (or next to) its bound
    rows = sample_yields(lik, result)
    for row in rows:
        for key in ("prefit_events", "postfit_events", "postfit_error"):
            assert np.isfinite(row[key]), (row["sample"], key)
        assert row["postfit_error"] >= 0
    by_name = {r["sample"]: r for r in rows}
    assert by_name["bkg_b"]["postfit_events"] < 0.01 * by_name["bkg_b"]["prefit_events"]
    assert by_name["bkg_a"]["postfit_error"] > 0 and by_name["bkg_c"]["postfit_error"] > 0


def test_fit_json_carries_the_yields(workspace, fitted) -> None:
    _, _, rows = fitted
    doc = fit_background_only(workspace)
    validate(doc, "fit", path="fit.json")
    assert [y["sample"] for y in doc["yields"]] == [r["sample"] for r in rows]
    for ours, row in zip(doc["yields"], rows):
        for key in ("prefit_events", "postfit_events", "postfit_error"):
            assert ours[key] == pytest.approx(row[key], rel=1e-6)
    broken = copy.deepcopy(doc)
    del broken["yields"][0]["postfit_error"]
    with pytest.raises(Exception, match="yields"):
        validate(broken, "fit", path="fit.json")


def test_prefit_with_staterror_is_nominal_and_postfit_profiles_the_gammas() -> None:
    """Staterror gammas are profiled in the fit, but the prefit count is the nominal one (gammas at 1)."""
    ws, _ = random_workspace(3, staterror=True)
    lik = FitModel(ws)
    result = lik.fit()
    rows = sample_yields(lik, result)
    nominal: dict[str, float] = {}
    for channel in ws["channels"]:
        for sample in channel["samples"]:
            nominal[sample["name"]] = nominal.get(sample["name"], 0.0) + float(np.sum(sample["data"]))
    for row in rows:
        assert row["prefit_events"] == pytest.approx(nominal[row["sample"]], rel=1e-12), row["sample"]
    # postfit: pyhf's expectation at the best fit with the profiled gammas (lik.expand)
    model = pyhf.Workspace(ws).model(poi_name=None, modifier_settings=MODIFIER_SETTINGS)
    full = lik.expand(result.values)
    ref = np.asarray(model.main_model.expected_data(full, return_by_sample=True)).sum(axis=1)
    np.testing.assert_allclose([r["postfit_events"] for r in rows], ref, rtol=1e-12)
    gammas = [i for i, n in enumerate(model.config.par_names) if n.startswith("staterror")]
    assert gammas and np.max(np.abs(full[gammas] - 1.0)) > 1e-3  # the gammas did move
