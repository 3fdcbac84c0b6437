"""Toy Monte Carlo: Neyman thresholds of t~mu, the PLR sensitivity band and the discovery p-value.

Toys are generated as pyhf's ``ToyCalculator`` does (main counts Poisson, auxiliary data Normal
around the nuisance values profiled on the observed data at the tested mu) and fitted in batches
with :func:`dmpreserve.stats.newton.minimize`.  Random streams: one ``numpy`` Generator per grid
point from ``SeedSequence([seed, mass_index]).spawn(...)``, so results do not depend on chunking.

Neyman construction (Baxter et al., EPJC 81 (2021) 907): at each mu of a grid the threshold is the
``cl`` quantile of t~mu under mu; the observed interval is {mu: t~mu(obs) <= threshold(mu)} and
the reported upper limit its upper end (thresholds linearly interpolated between grid points and
held constant beyond its ends).
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import special
from tqdm import tqdm

from dmpreserve.stats.asymptotic import BAND_SIGMAS, AsymptoticResult, ObservedSetup, illinois
from dmpreserve.stats.model import BinnedModel
from dmpreserve.stats.newton import NewtonMinimum
from dmpreserve.stats.teststat import Datasets, fit_datasets, tmu_tilde


@dataclasses.dataclass(frozen=True)
class ToySettings:
    """Toy counts and seed.

    Attributes:
        toys_per_mu: Toys at each grid mu for the Neyman threshold.
        toys_background: Background-only toys for the sensitivity band and p0.
        mu_points: Number of grid points in mu.
        seed: Master seed (combined with the mass index).
    """

    toys_per_mu: int = 1000
    toys_background: int = 500
    mu_points: int = 10
    seed: int = 0


@dataclasses.dataclass(frozen=True)
class ToyResult:
    """Toy-based results of one mass (signal strengths in units of mu).

    Attributes:
        mu_grid: Grid of tested mu.
        thresholds: The cl quantile of t~mu at each grid mu.
        threshold_errors: Their statistical errors (order statistics, 68% half-width).
        neyman: Observed (unconstrained) upper limit.
        threshold_at_limit, threshold_err_at_limit: Interpolated threshold (and error) at that limit.
        neyman_expected: Sensitivity quantiles (-2, -1, 0, +1, +2 sigma) of background-only toys.
        pcl_threshold: Sensitivity quantile at the critical power.
        p0, z0: Discovery p-value ((k + 1) / (N + 1), k toys with q0 >= q0(obs)) and Phi^-1(1 - p0) >= 0.
        n_toys: Total number of toys fitted.
    """

    mu_grid: tuple[float, ...]
    thresholds: tuple[float, ...]
    threshold_errors: tuple[float, ...]
    neyman: float
    threshold_at_limit: float
    threshold_err_at_limit: float
    neyman_expected: tuple[float, ...]
    pcl_threshold: float
    p0: float
    z0: float
    n_toys: int


def generate(model: BinnedModel, theta: np.ndarray, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` toys at parameters ``theta`` (P,): Poisson main data (n, B), Normal(alpha, 1) auxiliary data."""
    nu = model.expected(theta[None])[0]
    data = rng.poisson(nu, size=(n, nu.size)).astype(float)
    aux = rng.normal(theta[1:], 1.0, size=(n, theta.size - 1))
    return data, aux


def toy_tmu(model: BinnedModel, theta: np.ndarray, mu_test: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """t~mu at ``mu_test`` for ``n`` toys generated at ``theta``."""
    data, aux = generate(model, theta, n, rng)
    sets = fit_datasets(model, data, aux, init=np.repeat(theta[None], n, axis=0))
    t, _ = tmu_tilde(model, sets, np.full(n, mu_test))
    return t


def quantile_with_error(t: np.ndarray, q: float) -> tuple[float, float]:
    """The ``q`` quantile of a sample and its statistical error (order-statistic 68% half-width)."""
    s = np.sort(t)
    n = s.size
    d = np.sqrt(n * q * (1 - q))
    lo, hi = int(np.clip(np.floor(n * q - d), 0, n - 1)), int(np.clip(np.ceil(n * q + d), 0, n - 1))
    return float(np.quantile(s, q)), float(0.5 * (s[hi] - s[lo]))


def _signed_gap(mus: np.ndarray, t: np.ndarray, c: np.ndarray, mu_hat: np.ndarray) -> np.ndarray:
    """sign(mu - mu_hat) sqrt(t~mu) - sqrt(threshold): nearly linear in mu, increasing through the limit."""
    return np.where(mus >= mu_hat, 1.0, -1.0) * np.sqrt(t) - np.sqrt(c)


def upper_crossing(
    model: BinnedModel, sets: Datasets, mus: np.ndarray, t: np.ndarray, thresholds: np.ndarray, *, iterations: int = 4
) -> np.ndarray:
    """Per dataset: the largest mu where t~mu crosses the threshold upwards (the Neyman upper limit).

    The crossing is bracketed on the grid ``mus`` (``t``: (D, M) values there; ``thresholds`` per
    grid mu, interpolated linearly in between and held beyond the ends), then refined by batched
    Illinois steps with exact t~mu evaluations.  Without an upward crossing: the grid end if t is
    below the threshold there (limit beyond the grid), else mu_hat clipped to the grid.
    """
    mu_hat = sets.mu_hat[:, None]
    g = _signed_gap(mus, t, thresholds, mu_hat)
    pos = g >= 0
    up = ~pos[:, :-1] & pos[:, 1:]
    last = np.where(up.any(axis=1), mus.size - 2 - np.argmax(up[:, ::-1], axis=1), -1)
    out = np.full(g.shape[0], mus[-1])
    none = (last < 0) & pos[:, -1]
    out[none] = np.clip(mu_hat[none, 0], mus[0], mus[-1])
    rows = np.flatnonzero(last >= 0)
    j = last[rows]
    if rows.size:

        def gap(x: np.ndarray) -> np.ndarray:
            tx, _ = tmu_tilde(model, sets, x, which=rows)
            return _signed_gap(x, tx, np.interp(x, mus, thresholds), mu_hat[rows, 0])

        x = illinois(gap, mus[j], mus[j + 1], g[rows, j], g[rows, j + 1], rtol=1e-6, max_iter=iterations)
        out[rows] = x
    return out


def _first(fit: NewtonMinimum) -> NewtonMinimum:
    return NewtonMinimum(theta=fit.theta[:1], nll=fit.nll[:1], converged=fit.converged[:1])


def run_toys(
    model: BinnedModel,
    setup: ObservedSetup,
    asym: AsymptoticResult,
    *,
    settings: ToySettings,
    mass_index: int,
    cl: float = 0.9,
    pcl_power: float = 0.16,
    progress: bool = True,
) -> ToyResult:
    """Neyman thresholds, observed limit, sensitivity band and p0 from toys for one mass."""
    hi_bound = model.poi_bounds[1]
    mu_a = 0.3 * asym.neyman_expected[0]
    mu_b = min(hi_bound, 2.0 * max(asym.neyman_expected[4], asym.neyman))
    mus = np.linspace(mu_a, mu_b, settings.mu_points)
    streams = np.random.SeedSequence([settings.seed, mass_index]).spawn(settings.mu_points + 1)
    obs = setup.sets
    _, cond = tmu_tilde(model, obs, mus, which=np.zeros(mus.size, int))
    thresholds, errors = [], []
    bar = tqdm(total=settings.mu_points + 1, desc="toys", unit="mu", disable=not progress, mininterval=1.0)
    with bar:
        for j, mu in enumerate(mus):
            t = toy_tmu(model, cond.theta[j], float(mu), settings.toys_per_mu, np.random.default_rng(streams[j]))
            c, err = quantile_with_error(t, cl)
            thresholds.append(c)
            errors.append(err)
            bar.update()
        c_grid, e_grid = np.array(thresholds), np.array(errors)
        # observed limit on a fine grid (threshold interpolated)
        fine = np.concatenate([np.linspace(0.01 * mu_a, mu_b, 60), np.geomspace(mu_b, hi_bound, 21)[1:]])
        t_obs, _ = tmu_tilde(model, obs, fine, which=np.zeros(fine.size, int))
        data_only = Datasets(data=obs.data[:1], aux=obs.aux[:1], free=_first(obs.free))
        limit = float(upper_crossing(model, data_only, fine, t_obs[None], np.interp(fine, mus, c_grid))[0])
        # background-only toys: t~mu on [0, grid] for the sensitivity; t~0 = q0 for discovery
        theta0 = np.concatenate([[0.0], obs.aux[1]])  # nuisances of the mu = 0 fit (the Asimov auxiliaries)
        n_b = settings.toys_background
        data, aux = generate(model, theta0, n_b, np.random.default_rng(streams[-1]))
        sets = fit_datasets(model, data, aux, init=np.repeat(theta0[None], n_b, axis=0))
        grid0 = np.concatenate([[0.0], mus])
        t_b, _ = tmu_tilde(model, sets, np.tile(grid0, n_b), which=np.repeat(np.arange(n_b), grid0.size))
        t_b = t_b.reshape(n_b, grid0.size)
        bar.update()
        uls = upper_crossing(model, sets, grid0, t_b, np.concatenate([[c_grid[0]], c_grid]))
    q0_toys = np.where(sets.mu_hat > 0, t_b[:, 0], 0.0)
    k = int(np.sum(q0_toys >= setup.q0 - 1e-9)) if setup.q0 > 0 else n_b
    p0 = (k + 1) / (n_b + 1)
    expected = np.quantile(uls, special.ndtr(np.array(BAND_SIGMAS)))
    return ToyResult(
        mu_grid=tuple(float(m) for m in mus),
        thresholds=tuple(float(c) for c in c_grid),
        threshold_errors=tuple(float(e) for e in e_grid),
        neyman=limit,
        threshold_at_limit=float(np.interp(limit, mus, c_grid)),
        threshold_err_at_limit=float(np.interp(limit, mus, e_grid)),
        neyman_expected=tuple(float(e) for e in expected),
        pcl_threshold=float(np.quantile(uls, pcl_power)),
        p0=float(p0),
        z0=float(max(0.0, special.ndtri(1.0 - p0))) if p0 < 1 else 0.0,
        n_toys=int(settings.toys_per_mu * settings.mu_points + n_b),
    )
