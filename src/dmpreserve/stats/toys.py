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
from scipy.optimize import elementwise

from dmpreserve.artifacts.thresholds import ATOM_RTOL
from dmpreserve.stats.model import BinnedModel
from dmpreserve.stats.teststat import Datasets, asimov_background, fit_datasets, tmu_tilde

#: Stream identifiers of SeedSequence([seed, stream, ...]).
STREAM_TABLE = 1
STREAM_BACKGROUND = 2
STREAM_MASS = 3
STREAM_REGRESSION = 4


@dataclasses.dataclass(frozen=True)
class ToySettings:
    """Toy settings of the Neyman construction.

    Attributes:
        mode: ``table`` (critical values from the threshold table) or ``toys`` (root-finding with
            fresh toys at each evaluated mu of each mass).
        toys_background: Background-only pseudo-datasets shared by all masses (bands, PCL, p0).
        toys_per_mu: Toys per evaluated mu in ``toys`` mode.
        seed: Master seed.
        truth: Nuisance parameters the toys are generated at: ``fit`` (the background-only fit to the
            observed data, pyhf's convention; :func:`background_theta`) or ``nominal`` (every nuisance at its
            constraint's centre, the free factors at their initial values; :func:`nominal_theta`).
        band_points: ``toys`` mode: mu values (log-spaced across the band) at which the per-mass thresholds
            are computed from ``toys_per_mu`` toys and interpolated for the background-only toys' limits
            (:class:`dmpreserve.stats.neyman.BandCritical`).  24 by default: where few events are expected the
            threshold follows the zero-count atom (c ~ 2 s) up to s ~ 1.5-2 events and then flattens, and 6 values
            missed that bend by up to 18%, which put LZ WS2022's median sensitivity at 11 GeV 31% low
            (docs/statistics.md, "The band's thresholds").
        observed: ``toys`` mode: the observed limit by root finding on c(mu) from common random numbers
            (``root``) or by a logistic regression of the toys' p-values at independent mu values
            (``regression``, :func:`dmpreserve.stats.regression.regression_limit`).
    """

    mode: str = "table"
    toys_background: int = 500
    toys_per_mu: int = 1000
    seed: int = 0
    truth: str = "fit"
    band_points: int = 24
    observed: str = "root"

    def theta(self, model: BinnedModel) -> np.ndarray:
        """The toys' full parameters (P + G,) under ``truth``."""
        if self.truth == "nominal":
            return nominal_theta(model)
        if self.truth == "fit":
            return background_theta(model)
        raise ValueError(f"unknown toy truth {self.truth!r} (fit or nominal)")


def background_theta(model: BinnedModel) -> np.ndarray:
    """Full parameters of the toys (P + G,): mu = 0 and the nuisances (profiled gammas appended) of the
    conditional mu = 0 fit to the observed data."""
    _, _, cond0 = asimov_background(model)
    return model.full(cond0.theta, model.observed[None], model.nominal_aux[None])[0]


def nominal_theta(model: BinnedModel) -> np.ndarray:
    """Full parameters (P + G,) at the nominal model: mu = 0, alphas 0, free factors at their initial
    values, staterror gammas 1 (the data-independent choice; the auxiliary data of the toys fluctuate around it)."""
    theta = np.asarray(model.init, float).copy()
    theta[0] = 0.0
    theta[model.n_factors : model.n_params] = 0.0
    return np.concatenate([theta, np.ones(model.n_gammas)])


def generate(model: BinnedModel, theta: np.ndarray, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` toys at parameters ``theta`` (P,: gammas 1, or full P + G,) as pyhf samples its model.

    Returns:
        Poisson main data (n, B) and Normal auxiliary data (n, K + G): N(alpha, 1) for each normsys/histosys
        alpha, N(gamma_b, sigma_b) for each free staterror gamma.
    """
    data = model.poisson_data(model.expected(theta[None])[0], n, rng)
    aux = rng.normal(model.aux_expected(theta[None])[0], model.aux_sigma, size=(n, model.n_aux))
    return data, aux


def toy_tmu_fits(
    model: BinnedModel, theta: np.ndarray, mu_test: float, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """t~mu at ``mu_test`` of ``n`` toys generated at ``theta``; also mu_hat and the fit status (both fits)."""
    data, aux = generate(model, theta, n, rng)
    sets = fit_datasets(model, data, aux, init=np.repeat(theta[None, : model.n_params], n, axis=0))
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
    return fit_datasets(model, data, aux, init=np.repeat(theta0[None, : model.n_params], n, axis=0))


def atom_pvalue(t: np.ndarray, signal_events: float) -> float:
    """Fraction of toys on or above the zero-count atom: P(T >= 2 s (1 - ATOM_RTOL)), ties counted."""
    return float(np.mean(t >= 2.0 * signal_events * (1.0 - ATOM_RTOL))) if t.size else 1.0


def exclusion_gap(mus: np.ndarray, t: np.ndarray, mu_hat: np.ndarray, critical) -> np.ndarray:
    """Positive where mu is excluded by an outcome with t~mu = ``t`` (upward through the upper limit).

    ``critical`` provides c(mu) (``critical(mus) -> (c, err)``), the atom's p-value
    (``critical.atom(mus) -> (p, err)``), ``critical.total`` (signal events per unit mu) and
    ``critical.alpha`` (1 - cl).  Ties count as at least as extreme, so:

    * on the zero-count atom (|t - 2 s| <= ATOM_RTOL x 2 s): excluded iff P(T >= 2 s) < alpha
      (gap log alpha - log p);
    * above it: excluded iff t > c (gap sqrt t - sqrt c);
    * below it: excluded iff t > c and P(T >= 2 s) < alpha (a cl quantile on the atom is never exceeded
      from below; guards against interpolating c across the atom's end);
    * below mu_hat: never (negative gap), this is the upper limit.
    """
    mus, t = np.asarray(mus, float), np.asarray(t, float)
    c, _ = critical(mus)
    p, _ = critical.atom(mus)
    atom_t = 2.0 * mus * critical.total
    g_c = np.sqrt(t) - np.sqrt(c)
    g_atom = np.log(critical.alpha) - np.log(np.clip(p, 1e-300, None))
    on = np.abs(t - atom_t) <= ATOM_RTOL * atom_t
    g = np.where(on, g_atom, np.where(t < atom_t, np.minimum(g_c, g_atom), g_c))
    return np.where(mus >= mu_hat, g, -np.sqrt(t) - np.sqrt(c) - 1.0)


def refine_crossing(func, lo, hi, g_lo, g_hi, *, rtol: float = 1e-6, max_iter: int = 80) -> np.ndarray:
    """Batched bracket refinement of g(lo) < 0 <= g(hi) to ``rtol``; returns the bracket's end where g >= 0.

    SciPy's elementwise Chandrupatla root finder (``scipy.optimize.elementwise.find_root``: inverse quadratic
    interpolation safeguarded by bisection, so a jump of g at the end of an atom is bracketed too; Chandrupatla,
    Adv. Eng. Softw. 28 (1997) 145).  It evaluates only the unconverged rows, ``func(x, rows)``; the known values
    at the bracket's ends are not evaluated again.  A NaN of g counts as not excluded (g < 0).
    """
    lo, hi, g_lo, g_hi = (np.array(a, float) for a in (lo, hi, g_lo, g_hi))
    out = hi.copy()
    todo = np.flatnonzero((g_hi > 0) & (hi - lo > rtol * np.abs(hi)))  # g(hi) = 0: hi is the crossing
    if todo.size == 0:
        return out

    def f(x: np.ndarray, rows: np.ndarray) -> np.ndarray:
        known_lo, known_hi = x == lo[rows], x == hi[rows]
        g = np.where(known_lo, g_lo[rows], g_hi[rows])
        new = ~(known_lo | known_hi)
        if new.any():
            g[new] = func(x[new], rows[new])
        return np.where(np.isnan(g), -1.0, g)

    res = elementwise.find_root(
        f, (lo[todo], hi[todo]), args=(todo,), tolerances={"xrtol": rtol, "xatol": 0.0}, maxiter=max_iter
    )
    (x_l, x_r), (f_l, f_r) = res.bracket, res.f_bracket
    out[todo] = np.where(f_r >= 0, x_r, np.where(f_l >= 0, x_l, hi[todo]))
    return out


def upper_crossing(model: BinnedModel, sets: Datasets, mus: np.ndarray, t: np.ndarray, critical) -> np.ndarray:
    """Per dataset: the largest mu where the exclusion gap crosses upwards (the Neyman upper limit).

    Args:
        model, sets: The model and the datasets with their free fits.
        mus: Grid of mu (ascending); ``t``: (D, M) t~mu values there.
        critical: Critical values and atom p-values (see :func:`exclusion_gap`).

    Each bracket is refined to 1e-6 relative with exact t~mu evaluations (:func:`refine_crossing`).
    Without an upward crossing: the grid end if not excluded there (limit beyond the grid), else
    mu_hat clipped to the grid.
    """
    mu_hat = sets.mu_hat[:, None]
    g = exclusion_gap(np.broadcast_to(mus, t.shape).ravel(), t.ravel(), np.repeat(mu_hat[:, 0], mus.size), critical)
    g = g.reshape(t.shape)
    pos = g >= 0
    up = ~pos[:, :-1] & pos[:, 1:]
    last = np.where(up.any(axis=1), mus.size - 2 - np.argmax(up[:, ::-1], axis=1), -1)
    out = np.full(g.shape[0], mus[-1])
    none = (last < 0) & pos[:, -1]
    out[none] = np.clip(mu_hat[none, 0], mus[0], mus[-1])
    rows = np.flatnonzero(last >= 0)
    j = last[rows]
    if rows.size:

        def gap(x: np.ndarray, idx: np.ndarray) -> np.ndarray:
            tx, _ = tmu_tilde(model, sets, x, which=rows[idx])
            return exclusion_gap(x, tx, mu_hat[rows[idx], 0], critical)

        out[rows] = refine_crossing(gap, mus[j], mus[j + 1], g[rows, j], g[rows, j + 1])
    return out
