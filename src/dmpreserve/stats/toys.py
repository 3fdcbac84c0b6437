"""Toy Monte Carlo building blocks: generation, t~mu of toys, quantiles, batched per-toy upper limits.

Toys are generated as pyhf's ``ToyCalculator`` does (main counts Poisson, auxiliary data Normal
around the nuisance values) and fitted in batches with :func:`dmpreserve.stats.newton.minimize`.
The nuisance values of every toy are those of the background-only (mu = 0) fit to the observed data
(:func:`background_theta`): they do not depend on the signal, so background-only pseudo-datasets are
the same for every mass, and the Neyman thresholds depend on the signal only through the tested
hypothesis (:mod:`dmpreserve.stats.thresholds`).

Random streams are ``numpy`` Generators seeded with ``SeedSequence([seed, stream, ...])``; results do
not depend on chunking or on which process runs them.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from dmpreserve.stats.asymptotic import illinois
from dmpreserve.stats.model import BinnedModel
from dmpreserve.stats.teststat import Datasets, asimov_background, fit_datasets, tmu_tilde

#: Stream identifiers of SeedSequence([seed, stream, ...]).
STREAM_TABLE = 1
STREAM_BACKGROUND = 2
STREAM_MASS = 3


@dataclasses.dataclass(frozen=True)
class ToySettings:
    """Toy settings of the Neyman construction.

    Attributes:
        mode: ``table`` (critical values from the threshold table) or ``toys`` (root-finding with
            fresh toys at each evaluated mu of each mass).
        toys_background: Background-only pseudo-datasets shared by all masses (bands, PCL, p0).
        toys_per_mu: Toys per evaluated mu in ``toys`` mode.
        seed: Master seed.
    """

    mode: str = "table"
    toys_background: int = 500
    toys_per_mu: int = 1000
    seed: int = 0


def background_theta(model: BinnedModel) -> np.ndarray:
    """Parameters of the toys: mu = 0 and the nuisances of the conditional mu = 0 fit to the observed data."""
    _, aux0, _ = asimov_background(model)
    return np.concatenate([[0.0], aux0])


def generate(model: BinnedModel, theta: np.ndarray, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` toys at parameters ``theta`` (P,): Poisson main data (n, B), Normal(alpha, 1) auxiliary data."""
    nu = model.expected(theta[None])[0]
    data = rng.poisson(nu, size=(n, nu.size)).astype(float)
    aux = rng.normal(theta[1:], 1.0, size=(n, theta.size - 1))
    return data, aux


def toy_tmu_fits(
    model: BinnedModel, theta: np.ndarray, mu_test: float, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """t~mu at ``mu_test`` of ``n`` toys generated at ``theta``; also mu_hat and the fit status (both fits)."""
    data, aux = generate(model, theta, n, rng)
    sets = fit_datasets(model, data, aux, init=np.repeat(theta[None], n, axis=0))
    t, cond = tmu_tilde(model, sets, np.full(n, mu_test))
    ok = sets.free.converged & cond.converged & np.isfinite(t)
    return t, sets.mu_hat, ok


def toy_tmu(model: BinnedModel, theta: np.ndarray, mu_test: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """t~mu at ``mu_test`` for ``n`` toys generated at ``theta``."""
    return toy_tmu_fits(model, theta, mu_test, n, rng)[0]


def quantile_with_error(t: np.ndarray, q: float) -> tuple[float, float]:
    """The ``q`` quantile of a sample and its statistical error (order-statistic 68% half-width)."""
    s = np.sort(t)
    n = s.size
    d = np.sqrt(n * q * (1 - q))
    lo, hi = int(np.clip(np.floor(n * q - d), 0, n - 1)), int(np.clip(np.ceil(n * q + d), 0, n - 1))
    return float(np.quantile(s, q)), float(0.5 * (s[hi] - s[lo]))


def background_datasets(model: BinnedModel, theta0: np.ndarray, n: int, seed: int) -> Datasets:
    """The shared background-only pseudo-datasets (identical for every mass), with this model's free fits."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, STREAM_BACKGROUND]))
    data, aux = generate(model, theta0, n, rng)
    return fit_datasets(model, data, aux, init=np.repeat(theta0[None], n, axis=0))


def _signed_gap(mus: np.ndarray, t: np.ndarray, c: np.ndarray, mu_hat: np.ndarray) -> np.ndarray:
    """sign(mu - mu_hat) sqrt(t~mu) - sqrt(threshold): nearly linear in mu, increasing through the limit."""
    return np.where(mus >= mu_hat, 1.0, -1.0) * np.sqrt(t) - np.sqrt(c)


def upper_crossing(
    model: BinnedModel, sets: Datasets, mus: np.ndarray, t: np.ndarray, threshold, *, iterations: int = 6
) -> np.ndarray:
    """Per dataset: the largest mu where t~mu crosses the threshold upwards (the Neyman upper limit).

    Args:
        model, sets: The model and the datasets with their free fits.
        mus: Grid of mu (ascending); ``t``: (D, M) t~mu values there.
        threshold: Callable mu (array) -> critical value (array).
        iterations: Batched Illinois steps refining each bracket with exact t~mu evaluations.

    Without an upward crossing: the grid end if t is below the threshold there (limit beyond the
    grid), else mu_hat clipped to the grid.
    """
    mu_hat = sets.mu_hat[:, None]
    g = _signed_gap(mus, t, threshold(mus), mu_hat)
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
            return _signed_gap(x, tx, threshold(x), mu_hat[rows, 0])

        out[rows] = illinois(gap, mus[j], mus[j + 1], g[rows, j], g[rows, j + 1], rtol=1e-6, max_iter=iterations)
    return out
