"""The vectorized model, Newton fits and test statistics of dmpreserve.stats against pyhf itself."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pyhf
import pytest
from pyhf_reference import without_staterror_fixtures

from dmpreserve.errors import InvalidWorkspace
from dmpreserve.stats.model import build_model
from dmpreserve.stats.newton import minimize
from dmpreserve.stats.reference import pyhf_model_and_data
from dmpreserve.stats.teststat import fit_datasets, qmu_tilde, tmu_tilde

# the pipeline's likelihood without staterror, on both sides of the comparisons with pyhf's own fits
workspace, patchset = without_staterror_fixtures()


MASS_GEV = 46.4159


@pytest.fixture(scope="module")
def patch(patchset) -> dict[str, Any]:
    (p,) = [p for p in patchset["patches"] if np.isclose(p["metadata"]["values"][0], MASS_GEV, rtol=1e-4)]
    return p


@pytest.fixture(scope="module")
def pyhf_model(workspace, patch):
    pyhf.set_backend("numpy", pyhf.optimize.scipy_optimizer())
    return pyhf_model_and_data(workspace, patch)


def _to_pyhf(model, pmodel, theta: np.ndarray) -> np.ndarray:
    """Our parameter vector [mu, alphas (sorted)] in pyhf's order."""
    out = np.zeros(len(pmodel.config.suggested_init()))
    out[pmodel.config.par_slice("mu")] = theta[0]
    for k, name in enumerate(model.alpha_names):
        out[pmodel.config.par_slice(name)] = theta[1 + k]
    return out


@pytest.fixture(scope="module")
def model(workspace, patch):
    return build_model(workspace, patch)


def test_expected_counts_match_pyhf(model, pyhf_model) -> None:
    pmodel, _ = pyhf_model
    rng = np.random.default_rng(1)
    thetas = np.column_stack([rng.uniform(0, 3, 12), rng.uniform(-2.5, 2.5, (12, model.n_params - 1))])
    thetas[0, 1:] = [1.0, -1.0, 0.999, -0.4, 1.7][: model.n_params - 1]  # the code4 boundaries
    ours = model.expected(thetas)
    for th, row in zip(thetas, ours):
        ref = pmodel.expected_actualdata(_to_pyhf(model, pmodel, th))
        np.testing.assert_allclose(row, ref, rtol=1e-10, atol=1e-14)


def test_nll_differences_match_pyhf(model, pyhf_model) -> None:
    pmodel, data = pyhf_model
    rng = np.random.default_rng(2)
    thetas = np.column_stack([rng.uniform(0, 2, 6), rng.uniform(-1.5, 1.5, (6, model.n_params - 1))])
    aux = np.zeros(model.n_params - 1)
    ours = model.nll(thetas, model.observed[None], aux[None])
    ref = np.array([-float(pmodel.logpdf(_to_pyhf(model, pmodel, th), data)[0]) for th in thetas])
    np.testing.assert_allclose(ours - ours[0], ref - ref[0], atol=1e-8)


def test_derivatives_match_finite_differences(model) -> None:
    rng = np.random.default_rng(3)
    theta = np.array([[0.7, 0.3, -1.4, 0.9, 1.2, -0.2][: model.n_params]])
    data = rng.poisson(model.expected(theta)[0]).astype(float)[None]
    aux = rng.normal(size=(1, model.n_params - 1))
    _, grad, hess = model.derivatives(theta, data, aux)
    h = 1e-5
    for i in range(model.n_params):
        e = np.zeros_like(theta)
        e[0, i] = h
        fd = (model.nll(theta + e, data, aux) - model.nll(theta - e, data, aux)) / (2 * h)
        assert grad[0, i] == pytest.approx(fd[0], rel=1e-5, abs=1e-6)
        _, gp, _ = model.derivatives(theta + e, data, aux)
        _, gm, _ = model.derivatives(theta - e, data, aux)
        np.testing.assert_allclose(hess[0, i], (gp[0] - gm[0]) / (2 * h), rtol=1e-4, atol=1e-5)


def test_free_fit_matches_pyhf(model, pyhf_model) -> None:
    pmodel, data = pyhf_model
    fit = minimize(
        model,
        model.observed[None],
        np.zeros((1, model.n_params - 1)),
        np.array([[1.0] + [0.0] * (model.n_params - 1)]),
        fix_poi=False,
    )
    assert fit.converged.all()
    best, twice_nll = pyhf.infer.mle.fit(data, pmodel, return_fitted_val=True)
    ours = -2 * float(pmodel.logpdf(_to_pyhf(model, pmodel, fit.theta[0]), data)[0])
    assert ours <= float(twice_nll) + 1e-6  # at least as good a minimum as pyhf's
    assert ours == pytest.approx(float(twice_nll), abs=1e-4)
    np.testing.assert_allclose(_to_pyhf(model, pmodel, fit.theta[0]), best, atol=2e-3)


@pytest.mark.parametrize("mu", [0.05, 0.3, 1.0])
def test_test_statistics_match_pyhf(model, pyhf_model, mu: float) -> None:
    pmodel, data = pyhf_model
    sets = fit_datasets(model, model.observed[None], np.zeros((1, model.n_params - 1)))
    t, _ = tmu_tilde(model, sets, np.array([mu]))
    cfg = pmodel.config
    init, bounds, fixed = cfg.suggested_init(), cfg.suggested_bounds(), cfg.suggested_fixed()
    ref_t = float(pyhf.infer.test_statistics.tmu_tilde(mu, data, pmodel, init, bounds, fixed))
    ref_q = float(pyhf.infer.test_statistics.qmu_tilde(mu, data, pmodel, init, bounds, fixed))
    assert t[0] == pytest.approx(ref_t, rel=1e-3, abs=1e-4)
    assert qmu_tilde(t, np.array([mu]), sets.mu_hat)[0] == pytest.approx(ref_q, rel=1e-3, abs=1e-4)


def test_batched_fits_equal_single_fits(model) -> None:
    rng = np.random.default_rng(4)
    theta = np.array([0.5] + [0.0] * (model.n_params - 1))
    data = rng.poisson(model.expected(theta[None])[0], size=(5, model.n_bins)).astype(float)
    aux = rng.normal(size=(5, model.n_params - 1))
    init = np.repeat(theta[None], 5, axis=0)
    batch = minimize(model, data, aux, init, fix_poi=False)
    for i in range(5):
        single = minimize(model, data[i : i + 1], aux[i : i + 1], init[i : i + 1], fix_poi=False)
        assert single.nll[0] == pytest.approx(batch.nll[i], abs=1e-9)


def test_unsupported_modifier_is_refused(workspace, patch) -> None:
    bad = copy.deepcopy(workspace)
    bad["channels"][0]["samples"][0]["modifiers"].append(
        {"name": "shape", "type": "shapesys", "data": [1.0] * len(bad["observations"][0]["data"])}
    )
    with pytest.raises(InvalidWorkspace, match="not supported") as info:
        build_model(bad, patch)
    assert "shapesys" in str(info.value) and info.value.field.startswith("$.channels[")
    with pytest.raises(InvalidWorkspace, match="POI"):
        build_model(workspace, None)


def test_derivatives_stay_finite_where_a_bin_sits_on_the_floor() -> None:
    """A bin fed only by a component fitted to 0 (e.g. detector neutrons at the lower bound of their free rate)
    has its expectation on the floor; with data there (an Asimov dataset made at the nominal rate) the Hessian
    must stay finite and the gradient match the NLL's finite differences (the floored log is flat)."""
    ws = {
        "version": "1.0.0",
        "channels": [
            {
                "name": "c",
                "samples": [
                    {
                        "name": "signal",
                        "data": [1.0, 2.0, 0.0],
                        "modifiers": [{"name": "mu", "type": "normfactor", "data": None}],
                    },
                    {
                        "name": "bkg",
                        "data": [5.0, 4.0, 0.0],
                        "modifiers": [{"name": "bkg_norm", "type": "normsys", "data": {"hi": 1.1, "lo": 0.9}}],
                    },
                    {
                        "name": "neutrons",
                        "data": [0.0, 0.1, 0.5],
                        "modifiers": [{"name": "rate_n", "type": "normfactor", "data": None}],
                    },
                ],
            }
        ],
        "observations": [{"name": "c", "data": [5, 6, 0]}],
        "measurements": [
            {
                "name": "m",
                "config": {"poi": "mu", "parameters": [{"name": "rate_n", "bounds": [[0.0, 10.0]], "inits": [1.0]}]},
            }
        ],
    }
    m = build_model(ws, None)
    theta = m.init[None].copy()
    names = list(m.param_names)
    theta[0, names.index("rate_n")] = 0.0  # the third bin's expectation is now exactly 0 (on the floor)
    data = np.array([[5.0, 6.0, 0.3]])  # an Asimov-like non-zero count in that bin
    aux = m.nominal_aux[None]
    f, g, h = m.derivatives(theta, data, aux)
    assert np.all(np.isfinite(f)) and np.all(np.isfinite(g)) and np.all(np.isfinite(h))
    i = names.index("mu")
    step = 1e-6
    up, down = theta.copy(), theta.copy()
    up[0, i] += step
    down[0, i] -= step
    numeric = (m.nll(up, data, aux) - m.nll(down, data, aux)) / (2 * step)
    assert g[0, i] == pytest.approx(numeric[0], rel=1e-5, abs=1e-6)
