"""Grid samples of the fast engine (:mod:`dmpreserve.stats.grid`): bilinear counts against scipy's
``RegularGridInterpolator``, exact derivatives against finite differences, and the refusals."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.interpolate import RegularGridInterpolator

from dmpreserve.errors import InvalidWorkspace
from dmpreserve.stats import newton
from dmpreserve.stats.grid import SampleGrid
from dmpreserve.stats.model import BinnedModel, build_model
from dmpreserve.stats.newton import minimize

AXIS = np.array([-2.0, -1.0, 0.0, 1.0, 2.0])


def _grid(seed: int = 3) -> np.ndarray:
    """Counts (5, 5, 3) that change non-linearly and non-separably with both parameters."""
    rng = np.random.default_rng(seed)
    a, b = np.meshgrid(AXIS, AXIS, indexing="ij")
    base = np.array([4.0, 9.0, 2.5])
    return (
        base
        * np.exp(0.3 * a[..., None] - 0.2 * b[..., None] + 0.05 * (a * b)[..., None])
        * rng.uniform(0.9, 1.1, (5, 5, 3))
    )


def _workspace(grid: np.ndarray) -> dict:
    centre = grid[2, 2].tolist()
    return {
        "channels": [
            {
                "name": "sr",
                "samples": [
                    {
                        "name": "signal",
                        "data": [0.5, 2.0, 1.0],
                        "modifiers": [
                            {"name": "mu", "type": "normfactor", "data": None},
                            {"name": "a", "type": "normsys", "data": {"hi": 1.2, "lo": 0.8}},
                        ],
                    },
                    {
                        "name": "bkg",
                        "data": centre,
                        "modifiers": [
                            {"name": "rate", "type": "normsys", "data": {"hi": 1.1, "lo": 0.9}},
                            # replaced by the grid:
                            {"name": "a", "type": "normsys", "data": {"hi": 5.0, "lo": 0.2}},
                            {"name": "b", "type": "histosys", "data": {"hi_data": [9, 9, 9], "lo_data": [0, 0, 0]}},
                        ],
                    },
                ],
            }
        ],
        "observations": [{"name": "sr", "data": [6.0, 12.0, 3.0]}],
        "measurements": [{"name": "m", "config": {"poi": "mu", "parameters": []}}],
        "version": "1.0.0",
    }


@pytest.fixture
def model():
    grid = _grid()
    return build_model(_workspace(grid), None, grids={("sr", "bkg"): SampleGrid(("a", "b"), AXIS, grid)}), grid


def _theta(model, **values) -> np.ndarray:
    th = np.array(model.init, float)
    th[model.param_names.index("mu")] = 1.0
    for name, v in values.items():
        th[model.param_names.index(name)] = v
    return th


def test_counts_are_scipy_bilinear_interpolation(model) -> None:
    m, grid = model
    interp = RegularGridInterpolator((AXIS, AXIS), grid, method="linear", bounds_error=False, fill_value=None)
    for a, b, rate in ((0.3, -1.7, 0.0), (-1.25, 0.5, 0.4), (2.0, 2.0, -1.0), (0.0, 0.0, 0.0), (-2.4, 2.6, 0.0)):
        th = _theta(m, a=a, b=b, rate=rate)
        scales = m.scales(th[None])[0]  # normfactor x code4 normsys (the rate factors, tested elsewhere)
        np.testing.assert_allclose(
            m.expected(th[None])[0], scales[0] * np.array([0.5, 2.0, 1.0]) + scales[1] * interp([[a, b]])[0], rtol=1e-12
        )  # (-2.4, 2.6): linear extrapolation of the edge cell, as scipy's fill_value=None


def test_grid_replaces_the_samples_modifiers_of_its_parameters(model) -> None:
    m, _ = model
    assert set(m.param_names) == {"mu", "a", "b", "rate"}
    # only the signal's normsys on "a" and the background's "rate" remain as normsys terms
    assert sorted(m.param_names[m.n_factors + k] for k in m.term_alpha) == ["a", "rate"]
    assert m.hist_sample.size == 0


@pytest.mark.parametrize("point", [(0.3, -1.7, 0.2), (-0.6, 0.45, -1.3), (1.5, 1.2, 0.7)])
def test_gradient_and_hessian_are_exact_inside_a_cell(model, point) -> None:
    m, _ = model
    a, b, rate = point
    th = _theta(m, a=a, b=b, rate=rate, mu=0.8)
    data, aux = m.observed[None], np.array([[0.1, -0.2, 0.3]])
    _, grad, hess = m.derivatives(th[None], data, aux)
    eps = 1e-6
    for i in range(th.size):
        d = np.zeros_like(th)
        d[i] = eps
        num = (m.nll((th + d)[None], data, aux)[0] - m.nll((th - d)[None], data, aux)[0]) / (2 * eps)
        assert grad[0, i] == pytest.approx(num, rel=1e-6, abs=1e-7)
        num_h = (m.derivatives((th + d)[None], data, aux)[1][0] - m.derivatives((th - d)[None], data, aux)[1][0]) / (
            2 * eps
        )
        np.testing.assert_allclose(hess[0, i], num_h, rtol=1e-5, atol=1e-6)


def test_fit_finds_the_minimum_of_the_kinked_likelihood(model) -> None:
    """Newton with step halving on a likelihood with kinks at the anchors: the minimum is not beaten by a scan."""
    m, _ = model
    fit = minimize(m, m.observed, m.nominal_aux, m.start(m.nominal_aux[None]), fix_poi=False)
    assert fit.converged.all()
    best = fit.theta[0]
    ia, ib = m.param_names.index("a"), m.param_names.index("b")
    for da in np.linspace(-0.3, 0.3, 13):
        for db in np.linspace(-0.3, 0.3, 13):
            th = best.copy()
            th[ia] += da
            th[ib] += db
            sub = minimize(m, m.observed, m.nominal_aux, th[None], fix_poi=False)  # other parameters re-fitted
            assert sub.nll[0] >= fit.nll[0] - 1e-6


def test_grid_sample_in_a_later_channel_fills_only_its_bins() -> None:
    """Grid samples in channels of different sizes (bins 0-1 and 2-4 of 5): counts in their bins, derivatives
    exact."""
    grid = _grid()
    ws = _workspace(grid)
    ws["channels"].insert(
        0,
        {
            "name": "cr",  # pyhf orders channels by name: cr's two bins come first
            "samples": [
                {
                    "name": "bkg",
                    "data": [20.0, 30.0],
                    "modifiers": [{"name": "rate", "type": "normsys", "data": {"hi": 1.1, "lo": 0.9}}],
                }
            ],
        },
    )
    ws["observations"].insert(0, {"name": "cr", "data": [22.0, 27.0]})
    cr_grid = _grid(seed=8)[:, :, :2] * 5.0  # a grid sample in a channel of another size
    ws["channels"][0]["samples"][0]["data"] = cr_grid[2, 2].tolist()
    grids = {("sr", "bkg"): SampleGrid(("a", "b"), AXIS, grid), ("cr", "bkg"): SampleGrid(("a", "b"), AXIS, cr_grid)}
    m = build_model(ws, None, grids=grids)
    interp = RegularGridInterpolator((AXIS, AXIS), grid, method="linear", bounds_error=False, fill_value=None)
    cr_interp = RegularGridInterpolator((AXIS, AXIS), cr_grid, method="linear", bounds_error=False, fill_value=None)
    th = _theta(m, a=-0.7, b=1.3, rate=0.4)
    c = m.scales(th[None])[0]  # rows: cr/bkg, sr/signal, sr/bkg
    expected = m.expected(th[None])[0]
    np.testing.assert_allclose(expected[:2], c[0] * cr_interp([[-0.7, 1.3]])[0], rtol=1e-12)
    sr = expected[2:]
    np.testing.assert_allclose(sr, c[1] * np.array([0.5, 2.0, 1.0]) + c[2] * interp([[-0.7, 1.3]])[0], rtol=1e-12)
    data, aux = m.observed[None], np.array([[0.1, -0.2, 0.3]])
    _, grad, _ = m.derivatives(th[None], data, aux)
    for i in range(th.size):
        d = np.zeros_like(th)
        d[i] = 1e-6
        num = (m.nll((th + d)[None], data, aux)[0] - m.nll((th - d)[None], data, aux)[0]) / 2e-6
        assert grad[0, i] == pytest.approx(num, rel=1e-6, abs=1e-7)


def test_bad_grids_are_refused() -> None:
    grid = _grid()
    ws = _workspace(grid)
    with pytest.raises(InvalidWorkspace, match="does not fit"):
        build_model(ws, None, grids={("sr", "bkg"): SampleGrid(("a", "b"), AXIS, grid[:, :, :2])})
    with pytest.raises(InvalidWorkspace, match="does not have"):
        build_model(ws, None, grids={("sr", "nope"): SampleGrid(("a", "b"), AXIS, grid)})


def _kink_model(corner: bool = False) -> BinnedModel:
    """One bin: counts 10 + 10 |a - 1| on the grid (no effect of b), 8 observed: the minimum of
    nu - n ln nu + a^2 / 2 lies exactly on the anchor a = 1 (left derivative -1, right +3).  With ``corner``
    the counts are 10 + 10 |a - 1| + 8 |b + 1| + 3 |a - 1| |b + 1|: the minimum is the corner (1, -1)."""
    a, b = np.meshgrid(AXIS, AXIS, indexing="ij")
    grid = (10.0 + 10.0 * np.abs(a - 1.0) + corner * (8.0 * np.abs(b + 1.0) + 3.0 * np.abs(a - 1) * np.abs(b + 1)))[
        ..., None
    ]
    ws = _workspace(grid[..., [0, 0, 0]])
    ws["channels"][0]["samples"][0]["data"] = [1e-3] * 3
    ws["observations"][0]["data"] = [8.0, 8.0, 8.0]
    return build_model(ws, None, grids={("sr", "bkg"): SampleGrid(("a", "b"), AXIS, grid[..., [0, 0, 0]])})


@pytest.mark.parametrize("start", [-2.5, -0.3, 0.0, 0.7, 1.0, 1.6, 2.9])
def test_a_minimum_on_an_anchor_is_reached_exactly(start) -> None:
    """The minimiser stops a step on a kink and holds a parameter whose NLL rises on both sides of it (else it
    creeps towards the anchor by ever shorter steps and may not converge in max_iter)."""
    m = _kink_model()
    th = _theta(m, a=start, b=0.4, rate=0.0, mu=0.0)
    fit = minimize(m, m.observed, m.nominal_aux, th[None], fix_poi=True, max_iter=25)
    assert fit.converged.all()
    assert fit.theta[0, m.param_names.index("a")] == pytest.approx(1.0, abs=1e-12)
    scan = np.linspace(0.9, 1.1, 2001)
    rows = np.repeat(fit.theta, scan.size, axis=0)
    rows[:, m.param_names.index("a")] = scan
    n = scan.size
    assert fit.nll[0] <= m.nll(rows, np.tile(m.observed, (n, 1)), np.tile(m.nominal_aux, (n, 1))).min() + 1e-12


def test_a_minimum_on_a_corner_of_the_grid_is_reached_from_anchors_and_cells() -> None:
    """Both grid parameters on kinks at the minimum, starts on anchors, edges and inside cells.  (The corner case
    that failed on the release, a step into another quadrant than the derivatives', is not reproduced by this
    model: test_toy_fits_with_the_release_morphing_all_converge catches it.)"""
    m = _kink_model(corner=True)
    starts = [(x, y) for x in (-2.0, -1.0, 0.0, 0.5, 1.0, 2.0, 2.6) for y in (-2.4, -2.0, -1.0, -0.5, 0.0, 1.0, 2.0)]
    th = np.array([_theta(m, a=x, b=y, rate=0.0, mu=0.0) for x, y in starts])
    fit = minimize(m, m.observed, m.nominal_aux, th, fix_poi=True, max_iter=25)
    assert fit.converged.all()
    np.testing.assert_allclose(fit.theta[:, m.param_names.index("a")], 1.0, atol=1e-12)
    np.testing.assert_allclose(fit.theta[:, m.param_names.index("b")], -1.0, atol=1e-12)


def _concave_model() -> BinnedModel:
    """Counts along a through the anchors (-2 ... 2) 150, 100, 10, 60, 100 (no effect of b), 20 observed in each
    of three bins: the NLL falls on both sides of a = 0 (a *concave* kink) to a minimum near a = -0.11 and a
    higher one near a = +0.2."""
    along_a = np.array([150.0, 100.0, 10.0, 60.0, 100.0])
    grid = np.repeat(np.repeat(along_a[:, None, None], AXIS.size, axis=1), 3, axis=2)
    ws = _workspace(grid)
    ws["channels"][0]["samples"][0]["data"] = [1e-3] * 3
    ws["observations"][0]["data"] = [20.0, 20.0, 20.0]
    return build_model(ws, None, grids={("sr", "bkg"): SampleGrid(("a", "b"), AXIS, grid)})


def test_a_minimum_behind_a_concave_kink_is_found() -> None:
    """Started in the cell of the higher minimum, a descent method stays there; the minimiser probes the NLL
    beyond the anchors next to its minimum and restarts there, keeping the lower minimum (found by a scan)."""
    m = _concave_model()
    ia = m.param_names.index("a")
    starts = np.array([_theta(m, a=x, b=0.2, rate=0.0, mu=0.0) for x in (0.05, 0.15, 0.2, 0.3, 0.6, -0.5, -1.5)])
    n = starts.shape[0]
    data, aux = np.tile(m.observed, (n, 1)), np.tile(m.nominal_aux, (n, 1))
    plain = newton._newton(m, data, aux, starts, fix_poi=True, max_iter=60, tol=1e-9)
    assert (plain.theta[:4, ia] > 0.1).all(), "the model no longer has a second minimum: the test would not fail"
    fit = minimize(m, m.observed, m.nominal_aux, starts, fix_poi=True)
    assert fit.converged.all()
    assert (fit.theta[:, ia] < -0.05).all()
    np.testing.assert_allclose(fit.nll, fit.nll.min(), atol=1e-9)
    assert (fit.nll[:4] < plain.nll[:4] - 0.005).all()
    # no lower point along a (the other parameters at the fit's values)
    scan = np.linspace(-2.0, 2.0, 401)
    rows = np.repeat(fit.theta[:1], scan.size, axis=0)
    rows[:, ia] = scan
    nll_scan = m.nll(rows, np.tile(m.observed, (scan.size, 1)), np.tile(m.nominal_aux, (scan.size, 1)))
    assert fit.nll[0] <= nll_scan.min() + 1e-9
