"""Tests of dmpreserve.stats.fit: iminuit fits against pyhf, MINOS, POI scan, saturated goodness of fit, CLI, schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyhf
import pytest
from scipy import stats
from small_likelihood import signal_patch

from dmpreserve.cli import main
from dmpreserve.errors import InvalidWorkspace
from dmpreserve.files import dumps_json, read_json
from dmpreserve.schema import validate
from dmpreserve.stats.fit import FitModel, fit_all, fit_background_only, fit_signal_plus_background, rounded

BKG = [40.0, 25.0, 12.0, 6.0, 3.0, 1.5]
SIG = [0.5, 1.5, 4.0, 6.0, 4.0, 1.5]


def _toy_workspace(observed: list[float]) -> dict[str, Any]:
    """A small workspace shaped like the pipeline's: one channel, two backgrounds with normsys, POI mu."""
    bkg2 = [2.0, 2.0, 1.0, 1.0, 0.5, 0.5]
    return {
        "channels": [
            {
                "name": "ch",
                "samples": [
                    {
                        "name": "er",
                        "data": BKG,
                        "modifiers": [{"name": "norm_er", "type": "normsys", "data": {"hi": 1.1, "lo": 1 / 1.1}}],
                    },
                    {
                        "name": "nr",
                        "data": bkg2,
                        "modifiers": [{"name": "norm_nr", "type": "normsys", "data": {"hi": 1.5, "lo": 1 / 1.5}}],
                    },
                ],
            }
        ],
        "observations": [{"name": "ch", "data": observed}],
        "measurements": [
            {
                "name": "m",
                "config": {"poi": "mu", "parameters": [{"name": "mu", "bounds": [[0.0, 20.0]], "inits": [1.0]}]},
            }
        ],
        "version": "1.0.0",
    }


def _patch(mass: float = 50.0, signal=SIG) -> dict[str, Any]:
    return signal_patch(f"wimp_m{mass:g}", mass, signal)


def _patchset(patches) -> dict[str, Any]:
    return {"patches": patches}


@pytest.fixture(scope="module")
def injected() -> dict[str, Any]:
    """Asimov data of the toy workspace with mu = 2 (expected counts as observations)."""
    nr = [2.0, 2.0, 1.0, 1.0, 0.5, 0.5]
    return _toy_workspace([b + n + 2.0 * s for b, n, s in zip(BKG, nr, SIG)])


@pytest.fixture(scope="module")
def pipeline_fit(pipeline_dir: Path) -> dict[str, Any]:
    ws = read_json(pipeline_dir / "likelihood" / "BkgOnly.json")
    ps = read_json(pipeline_dir / "likelihood" / "patchset.json")
    return fit_all(ws, ps, reference_mass_gev=50.0, scan_points=11, gof_toys=10, seed=3).to_json()


def test_rounded():
    assert rounded(1.23456789) == 1.234568
    assert rounded(-1e-12, atol=1e-9) == 0.0
    assert rounded(3.0e-47) == 3.0e-47


def test_asimov_signal_fit_recovers_injection(injected):
    sb = fit_signal_plus_background(injected, _patch(), scan_points=21)
    validate({"parameters": [], "twice_nll": 0.0, "method": "x", "signal_plus_background": sb}, "fit")
    poi = sb["poi"]
    assert poi["value"] == pytest.approx(2.0, abs=2e-3)
    assert poi["minos_valid"] and poi["minos_lower"] < 0 < poi["minos_upper"]
    # MINOS is asymmetric for Poisson counts, but of the size of the HESSE error
    assert -poi["minos_lower"] == pytest.approx(poi["error"], rel=0.25)
    assert poi["minos_upper"] == pytest.approx(poi["error"], rel=0.25)
    assert poi["cross_section_cm2"] == pytest.approx(poi["value"] * 1e-46)
    # the profile scan is 0 at mu^ and crosses 1 at the MINOS edges
    mu, delta = np.array(sb["scan"]["mu"]), np.array(sb["scan"]["delta_twice_nll"])
    assert mu[0] == 0.0 and np.all(delta >= 0)
    assert np.interp(poi["value"], mu, delta) < 0.05
    lo_edge, hi_edge = poi["value"] + poi["minos_lower"], poi["value"] + poi["minos_upper"]
    assert np.interp(lo_edge, mu, delta) == pytest.approx(1.0, abs=0.08)
    assert np.interp(hi_edge, mu, delta) == pytest.approx(1.0, abs=0.08)
    # Asimov data: the saturated statistic is ~0, the nuisance parameters are not pulled
    assert sb["goodness_of_fit"]["t_sat"] < 1e-3
    assert all(abs(p["pull"]) < 1e-2 for p in sb["parameters"])
    assert sb["delta_twice_nll_mu0"] > 4.0


def test_fit_matches_pyhf_and_profile(injected):
    """Our -2 ln L minimum and profile values agree with pyhf's own fits."""
    lik = FitModel(injected, _patch())
    best = lik.fit()
    pyhf.set_backend("numpy", pyhf.optimize.minuit_optimizer(tolerance=1e-4))
    try:
        pars, twice_nll = pyhf.infer.mle.fit(lik.data, lik.model, return_fitted_val=True)
        _, fixed_nll = pyhf.infer.mle.fixed_poi_fit(1.0, lik.data, lik.model, return_fitted_val=True)
    finally:
        pyhf.set_backend("numpy", pyhf.optimize.scipy_optimizer())
    assert best.twice_nll == pytest.approx(float(twice_nll), abs=1e-4)
    np.testing.assert_allclose(best.values, np.asarray(pars), atol=2e-3)
    at_one = lik.fit(fix={lik.poi_index: 1.0}, hesse=False)
    assert at_one.twice_nll == pytest.approx(float(fixed_nll), abs=1e-4)
    corr = np.array(best.correlation)
    np.testing.assert_allclose(corr, corr.T, atol=1e-12)
    np.testing.assert_allclose(np.diag(corr), 1.0)


def test_saturated_statistic_matches_formula():
    observed = [45.0, 20.0, 15.0, 4.0, 0.0, 2.0]
    ws = _toy_workspace(observed)
    lik = FitModel(ws)
    best = lik.fit()
    nu = np.asarray(lik.model.expected_actualdata(np.array(best.values)))
    n = np.array(observed)
    main = 2 * np.sum(nu - n + np.where(n > 0, n * np.log(np.where(n > 0, n, 1) / nu), 0))
    constraint = sum(v**2 for v in best.values)  # unit Gaussian constraints around 0
    assert lik.saturated_statistic(best.values) == pytest.approx(main + constraint, rel=1e-9)
    doc = fit_background_only(ws, gof_toys=40, seed=1)
    gof = doc["goodness_of_fit"]
    assert gof["n_bins"] == 6 and gof["n_free_parameters"] == 2 and gof["ndof"] == 4
    assert gof["p_value_chi2"] == pytest.approx(stats.chi2.sf(gof["t_sat"], 4), rel=1e-5)
    assert 0.0 <= gof["p_value_toys"] <= 1.0 and gof["p_value_toys_error"] > 0
    again = fit_background_only(ws, gof_toys=40, seed=1)
    assert again == doc  # seeded toys


def test_pipeline_fit_schema_and_content(pipeline_fit, pipeline_dir):
    validate(pipeline_fit, "fit", path="fit.json")
    ws = read_json(pipeline_dir / "likelihood" / "BkgOnly.json")
    n_bins = len(ws["observations"][0]["data"])
    names = sorted(p["name"] for p in pipeline_fit["parameters"])
    assert names == sorted(f"norm_{c}" for c in ("er", "neutron", "cevns_8b", "accidental", "wall"))
    assert pipeline_fit["valid"]
    assert pipeline_fit["correlation"]["names"] == [p["name"] for p in pipeline_fit["parameters"]]
    gof = pipeline_fit["goodness_of_fit"]
    assert gof["ndof"] == n_bins - 5 and gof["toys"] == 10
    sb = pipeline_fit["signal_plus_background"]
    assert "mu" in sb["correlation"]["names"] and len(sb["scan"]["mu"]) == 11  # pyhf's parameter order
    assert sb["poi"]["value"] >= 0 and sb["poi"]["minos_upper"] > 0
    masses = [r["mass_gev"] for r in pipeline_fit["best_fit_per_mass"]]
    assert masses == sorted(masses) and len(masses) == 4
    assert min(masses, key=lambda m: abs(np.log(m / 50.0))) == sb["mass_gev"]
    for row in pipeline_fit["best_fit_per_mass"]:
        assert row["cross_section_hat_cm2"] == pytest.approx(row["mu_hat"] * row["reference_cross_section_cm2"])


def test_pipeline_fit_is_deterministic(pipeline_fit, pipeline_dir):
    ws = read_json(pipeline_dir / "likelihood" / "BkgOnly.json")
    ps = read_json(pipeline_dir / "likelihood" / "patchset.json")
    again = fit_all(ws, ps, reference_mass_gev=50.0, scan_points=11, gof_toys=10, seed=3).to_json()
    assert dumps_json(again) == dumps_json(pipeline_fit)


def test_fit_cli(tmp_path: Path, pipeline_dir: Path, capsys):
    lik = pipeline_dir / "likelihood"
    out = tmp_path / "fit" / "fit.json"
    args = [
        "fit",
        "--workspace",
        str(lik / "BkgOnly.json"),
        "--patchset",
        str(lik / "patchset.json"),
        "--scan-points",
        "5",
        "--gof-toys",
        "0",
        "--no-progress",
        "-o",
        str(out),
    ]
    assert main(args) == 0
    doc = json.loads(out.read_text())
    assert doc["goodness_of_fit"]["p_value_toys"] is None and len(doc["signal_plus_background"]["scan"]["mu"]) == 5
    capsys.readouterr()
    bad = tmp_path / "bad.json"
    assert (
        main(
            [
                "fit",
                "--workspace",
                str(lik / "BkgOnly.json"),
                "--patchset",
                str(lik / "patchset.json"),
                "--scan-points",
                "2",
                "-o",
                str(bad),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--scan-points" in err[0] and not bad.exists()
    tampered = json.loads((lik / "patchset.json").read_text())
    tampered["metadata"]["digests"]["sha256"] = "0" * 64
    (tmp_path / "ps.json").write_text(json.dumps(tampered))
    assert (
        main(["fit", "--workspace", str(lik / "BkgOnly.json"), "--patchset", str(tmp_path / "ps.json"), "-o", str(bad)])
        == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "ps.json" in err[0] and "$.metadata.digests" in err[0] and not bad.exists()


def test_reference_mass_picks_nearest_patch(injected):
    ps = _patchset([_patch(10.0), _patch(40.0), _patch(1000.0)])
    doc = fit_all(injected, ps, reference_mass_gev=60.0, scan_points=5, gof_toys=0).to_json()
    assert doc["signal_plus_background"]["mass_gev"] == 40.0
    assert [r["mass_gev"] for r in doc["best_fit_per_mass"]] == [10.0, 40.0, 1000.0]
    validate(doc, "fit")


def test_best_fits_only_at_the_listed_masses(injected):
    """--masses (limits.masses_gev in the pipeline): the per-mass best fits at those patches only."""
    ps = _patchset([_patch(10.0), _patch(40.0), _patch(1000.0)])
    doc = fit_all(injected, ps, reference_mass_gev=60.0, scan_points=5, gof_toys=0, masses_gev=[1000.0, 10.0]).to_json()
    assert [r["mass_gev"] for r in doc["best_fit_per_mass"]] == [10.0, 1000.0]
    with pytest.raises(InvalidWorkspace, match="no patch"):
        fit_all(injected, ps, scan_points=5, gof_toys=0, masses_gev=[77.0])
