"""The fast engine with every supported modifier (normsys, histosys, free normfactor, staterror) against pyhf.

Random small workspaces of two channels (listed out of name order), three backgrounds and a signal:
histosys with asymmetric hi/lo sharing its alpha with a normsys, a free normfactor, staterror with a
zero-yield bin and a bin without uncertainty (pyhf fixes that gamma), and a normsys on the POI sample.
Compared with pyhf's numpy model: -2 ln L including every constant, expected counts (alphas beyond
+-1), the analytic gamma profile against pyhf's fit of the gammas alone, best fits, t~mu, and the
auxiliary data of toys against pyhf's own sampling.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pyhf
import pytest
from modifier_workspaces import BINS, random_workspace
from scipy import special, stats

from dmpreserve.errors import InvalidWorkspace
from dmpreserve.stats.model import build_model
from dmpreserve.stats.newton import minimize
from dmpreserve.stats.teststat import fit_datasets, tmu_tilde
from dmpreserve.stats.toys import generate


class Reference:
    """pyhf's model of the same workspace and the mapping of our vectors onto pyhf's."""

    def __init__(self, ws, patch):
        pyhf.set_backend("numpy", pyhf.optimize.scipy_optimizer())
        self.model = build_model(ws, patch)
        self.pmodel = pyhf.Workspace(ws).model(patches=[pyhf.patchset.Patch(patch)])
        self.cfg = self.pmodel.config

    def pars(self, full: np.ndarray) -> np.ndarray:
        m = self.model
        values = dict(zip(m.param_names + m.gamma_names, full))
        return np.array([values.get(n, 1.0) for n in self.cfg.par_names])  # absent: pyhf's fixed gammas

    def aux(self, aux: np.ndarray) -> np.ndarray:
        m = self.model
        values = dict(zip(m.alpha_names + m.gamma_names, aux))
        return np.array([values.get(n, 1.0) for n in self._aux_names()])

    def twice_nll(self, full, data, aux) -> float:
        return -2.0 * float(self.pmodel.logpdf(self.pars(full), np.concatenate([data, self.aux(aux)]))[0])

    def constant(self, data, aux) -> float:
        """-2 ln L(pyhf) - 2 nll(ours): ln n!, the Gaussian normalisations and the fixed gammas' constraint terms."""
        m = self.model
        ours = set(m.alpha_names + m.gamma_names)
        pyhf_aux = self.aux(aux)
        fixed_aux = np.array([a for a, n in zip(pyhf_aux, self._aux_names()) if n not in ours])
        return float(
            2 * np.sum(special.gammaln(data + 1))
            + len(pyhf_aux) * math.log(2 * math.pi)
            + 2 * np.sum(np.log(m.gamma_sigma))
            + np.sum((fixed_aux - 1.0) ** 2)
        )

    def _aux_names(self) -> list[str]:
        out = []
        for name in self.cfg.auxdata_order:
            sl = self.cfg.par_slice(name)
            out.extend(
                [name]
                if sl.stop - sl.start == 1 and "[" not in self.cfg.par_names[sl.start]
                else self.cfg.par_names[sl]
            )
        return out


@pytest.fixture(
    scope="module",
    params=[(0, True, "rows"), (1, True, "per-row"), (2, False, "rows"), (3, False, "rows")],
    ids=lambda p: f"{p[0]}-{p[1]}-{p[2]}",
)
def ref(request) -> Reference:
    """Random workspaces with histosys and without; "rows": the bin sums as pair products of the fixed yield rows,
    "per-row": histosys yields built per row of the batch (``max_rows=0``, as for large models)."""
    seed, histosys, path = request.param
    reference = Reference(*random_workspace(seed, histosys=histosys))
    if path == "per-row":
        reference.model = dataclasses.replace(reference.model, max_rows=0)
    assert (reference.model._rows is None) == (path == "per-row")
    return reference


def _point(ref: Reference, rng) -> np.ndarray:
    return _theta(ref.model, rng)


def _toy(ref: Reference, rng, theta) -> tuple[np.ndarray, np.ndarray]:
    m = ref.model
    data = rng.poisson(m.expected(theta[None])[0]).astype(float)
    aux = m.nominal_aux + rng.normal(0, 1, m.n_aux) * m.aux_sigma
    return data, aux


def test_model_structure(ref) -> None:
    m = ref.model
    assert m.factor_names == ("mu", "rate_b")
    assert set(m.alpha_names) - {"shape_c"} == {"norm_bkg_a", "norm_bkg_b", "norm_bkg_c", "signal_efficiency"}
    free = {
        n for n, fixed in zip(ref.cfg.par_names, ref.cfg.suggested_fixed()) if n.startswith("staterror") and not fixed
    }
    assert set(m.gamma_names) == free and len(free) == 2 * (BINS - 2)  # zero-yield and zero-uncertainty bins fixed
    widths = {}
    for name in ref.cfg.par_order:
        if name.startswith("staterror"):
            sl = ref.cfg.par_slice(name)
            widths.update(zip(ref.cfg.par_names[sl], ref.cfg.param_set(name).sigmas))
    np.testing.assert_allclose(m.gamma_sigma, [widths[n] for n in m.gamma_names], rtol=1e-12)
    assert m.lower[1] == 0.0 and m.upper[1] == 5.0


def test_expected_and_twice_nll_match_pyhf(ref) -> None:
    m = ref.model
    rng = np.random.default_rng(11)
    for _ in range(6):
        theta = _point(ref, rng)
        data, aux = _toy(ref, rng, theta)
        gam = rng.uniform(0.7, 1.3, m.n_gammas)
        full = np.concatenate([theta, gam])
        np.testing.assert_allclose(
            m.expected(full[None])[0], ref.pmodel.expected_actualdata(ref.pars(full)), rtol=1e-11
        )
        full_hat = m.full(theta[None], data[None], aux[None])[0]
        ours = 2 * m.nll(theta[None], data[None], aux[None])[0] + ref.constant(data, aux)
        assert ours == pytest.approx(ref.twice_nll(full_hat, data, aux), rel=1e-11, abs=1e-9)
        # the analytic profile is the minimum over the gammas: pyhf's own fit of the gammas alone agrees
        fixed = [not n.startswith("staterror") or f for n, f in zip(ref.cfg.par_names, ref.cfg.suggested_fixed())]
        _, twice = pyhf.infer.mle.fit(
            np.concatenate([data, ref.aux(aux)]),
            ref.pmodel,
            init_pars=ref.pars(full).tolist(),
            fixed_params=fixed,
            return_fitted_val=True,
        )
        assert ours <= float(twice) + 1e-7
        assert ours == pytest.approx(float(twice), abs=1e-5)
        assert ours < ref.twice_nll(full, data, aux)


def test_gradient_and_hessian_match_finite_differences(ref) -> None:
    m = ref.model
    rng = np.random.default_rng(12)
    for _ in range(3):
        theta = _point(ref, rng)[None]
        data, aux = (v[None] for v in _toy(ref, rng, theta[0]))
        _, grad, hess = m.derivatives(theta, data, aux)
        h = 1e-6
        for i in range(m.n_params):
            e = np.zeros_like(theta)
            e[0, i] = h
            fd = (m.nll(theta + e, data, aux) - m.nll(theta - e, data, aux)) / (2 * h)
            assert grad[0, i] == pytest.approx(fd[0], rel=1e-5, abs=1e-5)
            _, gp, _ = m.derivatives(theta + e, data, aux)
            _, gm, _ = m.derivatives(theta - e, data, aux)
            np.testing.assert_allclose(hess[0, i], (gp[0] - gm[0]) / (2 * h), rtol=1e-4, atol=1e-4)


def test_fixed_rows_and_per_row_yields_agree() -> None:
    """The two evaluations of a histosys model (pair products of fixed rows; yields per row) give the same NLL,
    gradient and Hessian, alphas beyond +-1 included."""
    fast = build_model(*random_workspace(5, histosys=True))
    slow = dataclasses.replace(fast, max_rows=0)
    assert fast._rows is not None and slow._rows is None
    rng = np.random.default_rng(5)
    theta = np.stack([_theta(fast, rng) for _ in range(40)])
    data = rng.poisson(fast.expected(theta)).astype(float)
    aux = fast.nominal_aux + rng.normal(0, 1, (40, fast.n_aux)) * fast.aux_sigma
    for ours, theirs in zip(fast.derivatives(theta, data, aux), slow.derivatives(theta, data, aux)):
        np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(fast.expected(theta), slow.expected(theta), rtol=1e-12)


def _theta(m, rng) -> np.ndarray:
    theta = rng.uniform(m.lower, m.upper)
    theta[m.n_factors :] = rng.uniform(-2.5, 2.5, len(m.alpha_names))  # beyond +-1 too
    theta[: m.n_factors] = rng.uniform(0.2, 2.0, m.n_factors)
    return theta


def test_fits_and_tmu_match_pyhf(ref) -> None:
    m = ref.model
    data, aux = m.observed, m.nominal_aux
    pdata = np.concatenate([data, ref.aux(aux)])
    init, bounds, fixed = ref.cfg.suggested_init(), ref.cfg.suggested_bounds(), ref.cfg.suggested_fixed()
    best, twice = pyhf.infer.mle.fit(pdata, ref.pmodel, return_fitted_val=True)
    fit = minimize(m, data[None], aux[None], m.start(aux), fix_poi=False)
    assert fit.converged.all()
    ours = 2 * fit.nll[0] + ref.constant(data, aux)
    assert ours <= float(twice) + 1e-6 and ours == pytest.approx(float(twice), abs=1e-4)
    full = m.full(fit.theta, data[None], aux[None])[0]
    np.testing.assert_allclose(ref.pars(full), best, atol=5e-3)
    sets = fit_datasets(m, data[None], aux[None])
    for mu in (0.0, 0.5, 2.0):
        t, cond = tmu_tilde(m, sets, np.array([mu]))
        _, twice_mu = pyhf.infer.mle.fixed_poi_fit(mu, pdata, ref.pmodel, init, bounds, fixed, return_fitted_val=True)
        assert 2 * cond.nll[0] + ref.constant(data, aux) == pytest.approx(float(twice_mu), abs=1e-4)
        ref_t = float(pyhf.infer.test_statistics.tmu_tilde(mu, pdata, ref.pmodel, init, bounds, fixed))
        assert t[0] == pytest.approx(ref_t, rel=1e-3, abs=2e-4)


def test_toy_auxiliary_data_follow_pyhf_sampling(ref) -> None:
    m = ref.model
    rng = np.random.default_rng(13)
    theta = _point(ref, rng)
    full = np.concatenate([theta, rng.uniform(0.8, 1.2, m.n_gammas)])
    _, aux = generate(m, full, 4000, np.random.default_rng(14))
    np.random.seed(15)  # pyhf's numpy backend samples from numpy's global generator (scipy.stats)
    sample = np.asarray(ref.pmodel.make_pdf(ref.pars(full)).sample((4000,)))[:, ref.cfg.nmaindata :]
    names = ref._aux_names()
    for k, name in enumerate(m.alpha_names + m.gamma_names):
        theirs = sample[:, names.index(name)]
        assert stats.ks_2samp(aux[:, k], theirs).pvalue > 1e-3, name
        assert np.mean(aux[:, k]) == pytest.approx(full[m.n_factors + k], abs=5 * m.aux_sigma[k] / np.sqrt(4000))


def test_no_staterror_no_histosys_is_unchanged_normsys_model() -> None:
    ws, patch = random_workspace(5, staterror=False, histosys=False, free_factor=False)
    m = build_model(ws, patch)
    assert m.n_gammas == 0 and m.n_params == 1 + len(m.alpha_names) and m.n_aux == len(m.alpha_names)


def test_two_staterror_names_on_one_channel_are_refused() -> None:
    ws, patch = random_workspace(6)
    ws["channels"][0]["samples"][1]["modifiers"][1]["name"] = "other"
    with pytest.raises(InvalidWorkspace, match="one staterror name per channel"):
        build_model(ws, patch)
