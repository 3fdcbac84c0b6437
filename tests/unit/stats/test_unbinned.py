"""The unbinned likelihood (dmpreserve.stats.unbinned) against pyhf on the same fine grid, and its datasets."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import jsonpatch
import numpy as np
import pyhf
import pytest
from scipy import stats

from dmpreserve.errors import InvalidWorkspace
from dmpreserve.stats import unbinned as unbinned_module
from dmpreserve.stats.asymptotic import asymptotic_limits, observed_setup
from dmpreserve.stats.limits import limit_for_patch
from dmpreserve.stats.model import build_model
from dmpreserve.stats.teststat import fit_datasets, tmu_tilde
from dmpreserve.stats.toys import ToySettings, background_theta, generate, toy_tmu
from dmpreserve.stats.unbinned import build_unbinned_model

N1, N2 = 6, 7  # the fine grid
K = N1 * N2


def _shape(center: tuple[float, float], width: float) -> np.ndarray:
    i, j = np.meshgrid(np.arange(N1), np.arange(N2), indexing="ij")
    z = np.exp(-0.5 * (((i - center[0]) / width) ** 2 + ((j - center[1]) / width) ** 2)).ravel()
    return z / z.sum()


SHAPES = {
    "flat_er": np.full(K, 1.0 / K),
    "lines": _shape((1.0, 5.0), 1.2),
    "neutrons": _shape((3.0, 1.5), 1.5),
    "signal": _shape((1.5, 2.0), 1.0),
}
TOTALS = {"flat_er": 60.0, "lines": 12.0, "neutrons": 1.5, "signal": 10.0}


@dataclasses.dataclass(frozen=True)
class FakeTemplates:
    """The interface of dmpreserve.artifacts.unbinned.UnbinnedTemplates that the model uses."""

    observed_bins: np.ndarray
    log10_cs2_edges: np.ndarray = dataclasses.field(default_factory=lambda: np.linspace(2.8, 4.6, N2 + 1))
    masses_gev: tuple[float, ...] = (30.0,)

    def shape_of(self, sample: str) -> np.ndarray:
        return SHAPES[sample]

    def signal_shape(self, mass_gev: float) -> np.ndarray:
        assert mass_gev == 30.0
        return SHAPES["signal"]


def _events(seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    nu = sum(TOTALS[n] * SHAPES[n] for n in ("flat_er", "lines", "neutrons")) + 3.0 * SHAPES["signal"]
    return rng.choice(K, size=rng.poisson(nu.sum()), p=nu / nu.sum())


def _workspace(events: np.ndarray, *, staterror: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
    """A one-channel workspace on the fine grid: a Gaussian-constrained ER (rate-only histosys, +-15%), lines with a
    normsys (x 1.3 / 0.8), free neutrons in [0, 4]; the signal patch with mu and a normsys."""

    def sample(name: str, modifiers: list[dict[str, Any]]) -> dict[str, Any]:
        data = TOTALS[name] * SHAPES[name]
        if staterror:
            modifiers = [*modifiers, {"name": "stat", "type": "staterror", "data": list(0.05 * data)}]
        return {"name": name, "data": list(data), "modifiers": modifiers}

    er = TOTALS["flat_er"] * SHAPES["flat_er"]
    ws = {
        "version": "1.0.0",
        "channels": [
            {
                "name": "sr",
                "samples": [
                    sample(
                        "flat_er",
                        [
                            {
                                "name": "norm_er",
                                "type": "histosys",
                                "data": {"hi_data": list(1.15 * er), "lo_data": list(0.85 * er)},
                            }
                        ],
                    ),
                    sample("lines", [{"name": "lines_sys", "type": "normsys", "data": {"hi": 1.3, "lo": 0.8}}]),
                    sample("neutrons", [{"name": "rate_n", "type": "normfactor", "data": None}]),
                ],
            }
        ],
        "observations": [{"name": "sr", "data": list(np.bincount(events, minlength=K).astype(float))}],
        "measurements": [
            {
                "name": "m",
                "config": {
                    "poi": "mu",
                    "parameters": [
                        {"name": "mu", "bounds": [[0.0, 20.0]], "inits": [1.0]},
                        {"name": "rate_n", "bounds": [[0.0, 4.0]], "inits": [1.0]},
                    ],
                },
            }
        ],
    }
    signal = {
        "name": "signal",
        "data": list(TOTALS["signal"] * SHAPES["signal"]),
        "modifiers": [
            {"name": "mu", "type": "normfactor", "data": None},
            {"name": "signal_efficiency", "type": "normsys", "data": {"hi": 1.1, "lo": 0.9}},
        ],
    }
    patch = {
        "metadata": {"name": "m30", "values": [30.0], "reference_cross_section_cm2": 1e-46},
        "patch": [{"op": "add", "path": "/channels/0/samples/-", "value": signal}],
    }
    return ws, patch


@pytest.fixture(autouse=True, params=["events", "dense"])
def evaluation(request, monkeypatch):
    """Every test twice: datasets evaluated event by event, and as counts per model bin (the wide-data path)."""
    monkeypatch.setattr(unbinned_module, "DENSE_FRACTION", 1e9 if request.param == "events" else 0.0)
    return request.param


@pytest.fixture(scope="module")
def setup():
    events = _events()
    ws, patch = _workspace(events)
    binned = build_model(ws, patch)
    unbinned = build_unbinned_model(ws, patch, FakeTemplates(observed_bins=events))
    return events, ws, patch, binned, unbinned


def _thetas(model, n: int = 10) -> np.ndarray:
    rng = np.random.default_rng(5)
    th = np.column_stack(
        [rng.uniform(0.0, 4.0, n), rng.uniform(0.1, 3.0, n), rng.uniform(-2.5, 2.5, (n, model.n_params - 2))]
    )
    th[0, 2:] = 1.0  # code4 / code4p boundaries
    th[1, 2:] = -1.0
    return th


def test_nll_is_the_fine_binned_poisson_nll(setup) -> None:
    """On the fine grid, the unbinned NLL of the events equals the binned NLL of their counts (the same workspace)."""
    events, _, _, binned, unbinned = setup
    assert unbinned.param_names == binned.param_names
    th = _thetas(binned)
    counts = np.bincount(events, minlength=K).astype(float)
    aux = np.tile(binned.nominal_aux, (th.shape[0], 1))
    np.testing.assert_allclose(
        unbinned.nll(th, unbinned.broadcast_data(unbinned.observed, th.shape[0]), aux),
        binned.nll(th, np.tile(counts, (th.shape[0], 1)), aux),
        rtol=1e-12,
    )
    f_u, g_u, h_u = unbinned.derivatives(th, unbinned.broadcast_data(unbinned.observed, th.shape[0]), aux)
    f_b, g_b, h_b = binned.derivatives(th, np.tile(counts, (th.shape[0], 1)), aux)
    np.testing.assert_allclose(g_u, g_b, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(h_u, h_b, rtol=1e-9, atol=1e-9)


def test_nll_differences_match_pyhf(setup) -> None:
    """2 (NLL(a) - NLL(b)) of the unbinned model equals pyhf's -2 ln L difference on the fine-grid workspace."""
    _, ws, patch, _, unbinned = setup
    pyhf.set_backend("numpy")
    full = pyhf.Workspace(jsonpatch.apply_patch(ws, patch["patch"]))
    pmodel = full.model()
    data = full.data(pmodel)
    th = _thetas(unbinned)
    order = pmodel.config.par_order

    def to_pyhf(t):
        out = np.zeros(len(pmodel.config.suggested_init()))
        for k, name in enumerate(unbinned.param_names):
            out[pmodel.config.par_slice(name)] = t[k]
        return out

    assert set(order) == set(unbinned.param_names)
    ref = np.array([-2.0 * float(pmodel.logpdf(to_pyhf(t), data)[0]) for t in th])
    ours = 2.0 * unbinned.nll(
        th, unbinned.broadcast_data(unbinned.observed, th.shape[0]), np.zeros((th.shape[0], unbinned.n_aux))
    )
    np.testing.assert_allclose(ours - ours[0], ref - ref[0], rtol=1e-9, atol=1e-8)


def test_derivatives_against_finite_differences(setup) -> None:
    """Gradient and Hessian, including the rate-only histosys beyond |alpha| = 1 (code4p's linear part)."""
    *_, unbinned = setup
    th = _thetas(unbinned, 4)
    th[2, 2:] = [1.7, -1.4, 0.3][: unbinned.n_params - 2]
    data = unbinned.broadcast_data(unbinned.observed, 1)
    aux = np.full((1, unbinned.n_aux), 0.2)
    h = 1e-6
    for t in th:
        _, g, hess = unbinned.derivatives(t[None], data, aux)
        for p in range(unbinned.n_params):
            e = np.zeros_like(t)
            e[p] = h
            num = (unbinned.nll((t + e)[None], data, aux) - unbinned.nll((t - e)[None], data, aux)) / (2 * h)
            np.testing.assert_allclose(g[0, p], num[0], rtol=1e-5, atol=1e-5)
            _, gp, _ = unbinned.derivatives((t + e)[None], data, aux)
            _, gm, _ = unbinned.derivatives((t - e)[None], data, aux)
            np.testing.assert_allclose(hess[0, p], (gp[0] - gm[0]) / (2 * h), rtol=1e-4, atol=1e-4)


def test_fits_and_limits_equal_the_fine_binned_model(setup) -> None:
    """Free and conditional fits and the asymptotic limits of both encodings agree."""
    events, _, _, binned, unbinned = setup
    a_b = asymptotic_limits(binned, cl=0.9, pcl_power=0.5, setup=observed_setup(binned))
    a_u = asymptotic_limits(unbinned, cl=0.9, pcl_power=0.5, setup=observed_setup(unbinned))
    np.testing.assert_allclose(a_u.neyman, a_b.neyman, rtol=1e-6)
    np.testing.assert_allclose(a_u.neyman_expected, a_b.neyman_expected, rtol=1e-6)
    np.testing.assert_allclose(a_u.cls, a_b.cls, rtol=1e-5)


def test_toys_are_poisson_per_bin(setup) -> None:
    """Toy events: the count per fine bin is Poisson with the model's expectation (chi2 of the mean counts)."""
    *_, unbinned = setup
    theta = np.array([2.0, 1.0] + [0.0] * (unbinned.n_params - 2))
    n = 4000
    data, aux = generate(unbinned, theta, n, np.random.default_rng(11))
    assert data.shape[:2] == (n, 2) and aux.shape == (n, unbinned.n_aux)
    nu = unbinned.expected(theta[None])[0]
    counts = np.zeros(nu.size)
    np.add.at(counts, data[:, 0].astype(int).ravel(), data[:, 1].ravel())
    chi2 = np.sum((counts - n * nu) ** 2 / (n * nu))
    assert stats.chi2.sf(chi2, nu.size) > 1e-3
    per_toy = data[:, 1].sum(axis=1)
    assert abs(per_toy.mean() - nu.sum()) < 4 * np.sqrt(nu.sum() / n)
    assert abs(per_toy.var() / nu.sum() - 1.0) < 0.1


def test_toy_tmu_matches_binned_toys(setup) -> None:
    """t~mu of the same toys in both encodings (unbinned events and fine-grid counts) is the same."""
    *_, binned, unbinned = setup
    theta = np.array([1.0, 1.0] + [0.0] * (unbinned.n_params - 2))
    data, aux = generate(unbinned, theta, 50, np.random.default_rng(2))
    counts = np.zeros((50, unbinned.n_bins))
    np.add.at(counts, (np.repeat(np.arange(50), data.shape[2]), data[:, 0].astype(int).ravel()), data[:, 1].ravel())
    dense = np.zeros((50, K))
    dense[:, unbinned.fine_bins] = counts
    t_u, _ = tmu_tilde(unbinned, fit_datasets(unbinned, data, aux), np.full(50, 1.0))
    t_b, _ = tmu_tilde(binned, fit_datasets(binned, dense, aux), np.full(50, 1.0))
    np.testing.assert_allclose(t_u, t_b, rtol=1e-5, atol=1e-6)


def test_staterror_is_dropped_and_shape_histosys_refused(setup) -> None:
    events, _, patch, _, unbinned = setup
    ws, _ = _workspace(events, staterror=True)
    model = build_unbinned_model(ws, patch, FakeTemplates(observed_bins=events))
    assert model.n_gammas == 0 and model.param_names == unbinned.param_names
    bad = copy.deepcopy(ws)
    mod = bad["channels"][0]["samples"][0]["modifiers"][0]
    mod["data"]["hi_data"][0] *= 1.5
    with pytest.raises(InvalidWorkspace, match="changes the sample's shape"):
        build_unbinned_model(bad, patch, FakeTemplates(observed_bins=events))


def test_event_where_every_density_is_zero_is_refused(setup) -> None:
    events, ws, patch, *_ = setup
    zero = dict(SHAPES)
    zero["flat_er"] = np.r_[np.zeros(1), np.full(K - 1, 1.0 / (K - 1))]

    @dataclasses.dataclass(frozen=True)
    class Sparse(FakeTemplates):
        def shape_of(self, sample: str) -> np.ndarray:
            return zero[sample] if sample == "flat_er" else np.r_[0.0, SHAPES[sample][1:] / SHAPES[sample][1:].sum()]

        def signal_shape(self, mass_gev: float) -> np.ndarray:
            s = SHAPES["signal"]
            return np.r_[0.0, s[1:] / s[1:].sum()]

    with pytest.raises(InvalidWorkspace, match="every template is zero"):
        build_unbinned_model(ws, patch, Sparse(observed_bins=np.r_[events, 0]))


def test_pvalue_at_the_reported_limit(setup) -> None:
    """Neyman limit with per-mass toys of the unbinned model: fresh, independent toys at the reported limit give
    P(t~mu >= t~mu(data)) = 1 - CL within their and the construction's toy errors."""
    events, ws, patch, *_ = setup
    settings = ToySettings(mode="toys", toys_background=40, toys_per_mu=400, seed=7)
    templates = FakeTemplates(observed_bins=events)
    result = limit_for_patch(ws, patch, cl=0.9, pcl_power=0.5, toys=settings, unbinned=templates)
    model = build_unbinned_model(ws, patch, templates)
    mu = result.mu_unconstrained
    t_obs, _ = tmu_tilde(model, observed_setup(model).sets, np.array([mu]), which=np.zeros(1, int))
    theta = background_theta(model)
    theta[0] = mu
    n = 3000
    t = toy_tmu(model, theta, mu, n, np.random.default_rng(99))
    p = float(np.mean(t >= t_obs[0] * (1 - 1e-9)))
    assert abs(p - 0.10) < 3 * np.sqrt(0.09 / n + 0.09 / settings.toys_per_mu), p
    assert result.mu_unconstrained_err > 0 and np.all(np.diff(result.mu_expected) > 0)


def test_regression_limit_agrees_with_root_finding_and_has_the_right_pvalue(setup) -> None:
    """The observed limit from the logistic regression of independent toys' p-values (ToySettings.observed) and
    from root finding on c(mu) estimate the same limit; fresh toys at the regression limit give p = 1 - CL."""
    events, ws, patch, *_ = setup
    templates = FakeTemplates(observed_bins=events)
    root = limit_for_patch(
        ws,
        patch,
        cl=0.9,
        pcl_power=0.5,
        toys=ToySettings(mode="toys", toys_background=40, toys_per_mu=1500, seed=3),
        unbinned=templates,
    )
    settings = ToySettings(mode="toys", toys_background=40, toys_per_mu=400, seed=7, observed="regression")
    reg = limit_for_patch(ws, patch, cl=0.9, pcl_power=0.5, toys=settings, unbinned=templates)
    assert len(reg.mu_grid) >= 8 and reg.mu_unconstrained_err > 0
    assert reg.n_toys >= len(reg.mu_grid) * settings.toys_per_mu + settings.toys_background
    scatter = np.hypot(reg.mu_unconstrained_err, 0.05 * root.mu_unconstrained)
    assert abs(reg.mu_unconstrained - root.mu_unconstrained) < 3 * scatter, (
        reg.mu_unconstrained,
        root.mu_unconstrained,
    )
    model = build_unbinned_model(ws, patch, templates)
    mu = reg.mu_unconstrained
    t_obs, _ = tmu_tilde(model, observed_setup(model).sets, np.array([mu]), which=np.zeros(1, int))
    assert reg.neyman_threshold == pytest.approx(float(t_obs[0]), rel=1e-6)
    theta = background_theta(model)
    theta[0] = mu
    t = toy_tmu(model, theta, mu, 3000, np.random.default_rng(98))
    p = float(np.mean(t >= t_obs[0] * (1 - 1e-9)))
    assert abs(p - 0.10) < 3 * np.hypot(np.sqrt(0.09 / 3000), 0.02), p
