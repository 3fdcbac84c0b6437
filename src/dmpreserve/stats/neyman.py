"""Neyman construction of t~mu with toy thresholds: observed limit by root finding, shared-toy bands.

* Observed (unconstrained) limit: the largest upward root of the exclusion gap
  (:func:`dmpreserve.stats.toys.exclusion_gap`: t~mu(obs) > c(mu), or, on the zero-count atom
  t~mu = 2 s, the atom's p-value P(T >= 2 s) < 1 - cl -- ties count as at least as extreme), with c and
  the atom p-value at mu from the threshold table at s = mu x S (:class:`TableCritical`) or from fresh
  toys of this mass at mu (:class:`ToyCritical`).  The root is bracketed (scan from mu_hat for the
  table; around the asymptotic limit for per-mass toys) and found with :func:`scipy.optimize.brentq`
  (which also converges to the jump at the end of an atom).  The toy error of c (of the atom p-value on
  the atom) gives the limit's uncertainty sigma_mu = sigma / |d(gap quantity)/d mu| at the root.
* Sensitivity band, PCL floor and toy p0: from ONE set of background-only pseudo-datasets shared by
  all masses (:func:`dmpreserve.stats.toys.background_datasets`), each with its own upper limit
  (batched crossing of the same critical values).
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import optimize, special

from dmpreserve.artifacts.thresholds import ATOM_RTOL, ThresholdTable
from dmpreserve.errors import InvalidWorkspace
from dmpreserve.stats.asymptotic import BAND_SIGMAS, AsymptoticResult, ObservedSetup
from dmpreserve.stats.model import BinnedModel
from dmpreserve.stats.teststat import tmu_tilde
from dmpreserve.stats.thresholds import atom_stats, shape_stats
from dmpreserve.stats.toys import (
    STREAM_MASS,
    ToySettings,
    atom_pvalue,
    background_datasets,
    exclusion_gap,
    quantile_with_error,
    toy_tmu,
    upper_crossing,
)

#: Grid points of the scan that brackets the observed limit (table thresholds).
SCAN_POINTS = 32
#: Grid points of the background-only toys' t~mu before the batched refinement.
BAND_POINTS = 16
#: Relative tolerance of the observed limit's root with per-mass toy thresholds (far below their toy error).
TOY_ROOT_RTOL = 1e-4


class TableCritical:
    """Critical values of one mass from the threshold table: c(mu) = table(mu x S, b_eff), and the atom's p-value."""

    def __init__(self, table: ThresholdTable, total_signal: float, b_eff: float, atom: tuple[float, float]):
        self.table, self.total, self.b_eff, self.atom_shape = table, total_signal, b_eff, atom
        self.alpha = 1.0 - table.cl

    def __call__(self, mus: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.table.critical_value(np.asarray(mus, float) * self.total, self.b_eff)

    def atom(self, mus: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """P(T >= 2 s) at s = mu x S and its toy error."""
        return self.table.atom_pvalue(np.asarray(mus, float) * self.total, self.b_eff, self.atom_shape)


class ToyCritical:
    """Critical values of one mass from fresh toys at each requested mu (cached; common random numbers).

    Every mu uses the same stream ``SeedSequence([seed, STREAM_MASS, mass_index])``, so c(mu) is a
    deterministic function that a root finder can bracket.
    """

    def __init__(self, model: BinnedModel, theta0: np.ndarray, settings: ToySettings, *, mass_index: int, cl: float):
        self.model, self.theta0, self.settings, self.cl = model, theta0, settings, cl
        self.mass_index = mass_index
        self.total, _ = shape_stats(model, theta0)
        self.alpha = 1.0 - cl
        self.cache: dict[float, tuple[float, float]] = {}
        self.atoms: dict[float, float] = {}

    def one(self, mu: float) -> tuple[float, float]:
        """c and its error at one mu (also records the atom p-value there)."""
        mu = float(mu)
        if mu not in self.cache:
            theta = self.theta0.copy()
            theta[0] = mu
            rng = np.random.default_rng(np.random.SeedSequence([self.settings.seed, STREAM_MASS, self.mass_index]))
            t = toy_tmu(self.model, theta, mu, self.settings.toys_per_mu, rng)
            t = t[np.isfinite(t)]
            self.cache[mu] = quantile_with_error(t, self.cl)
            self.atoms[mu] = atom_pvalue(t, mu * self.total)
        return self.cache[mu]

    def __call__(self, mus: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        vals = [self.one(m) for m in np.atleast_1d(mus)]
        return np.array([v[0] for v in vals]), np.array([v[1] for v in vals])

    def atom(self, mus: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Atom p-value P(T >= 2 mu S) of the toys at each mu and its binomial error."""
        mus = np.atleast_1d(mus)
        for m in mus:
            self.one(m)
        p = np.array([self.atoms[float(m)] for m in mus])
        n = self.settings.toys_per_mu
        return p, np.sqrt(np.clip(p * (1 - p), 0.25 / n, None) / n)

    @property
    def n_toys(self) -> int:
        """Toys fitted so far."""
        return len(self.cache) * self.settings.toys_per_mu


@dataclasses.dataclass(frozen=True)
class NeymanLimit:
    """Observed Neyman limit with the threshold there.

    Attributes:
        mu: The limit (upper end of {mu: t~mu(obs) <= c(mu)}).
        threshold, threshold_err: c(mu) and its toy error at the limit.
        mu_err: Uncertainty of the limit from the threshold's toy error.
    """

    mu: float
    threshold: float
    threshold_err: float
    mu_err: float


def _t_obs(model: BinnedModel, setup: ObservedSetup, mus: np.ndarray) -> np.ndarray:
    mus = np.atleast_1d(np.asarray(mus, float))
    t, _ = tmu_tilde(model, setup.sets, mus, which=np.zeros(mus.size, int))
    return t


def observed_limit(
    model: BinnedModel, setup: ObservedSetup, asym: AsymptoticResult, critical, *, scan: bool = True
) -> NeymanLimit:
    """The observed limit solving t~mu(obs) = c(mu) (largest root; brentq).

    Args:
        critical: Callable mu (array) -> (c, err).
        scan: Bracket by a scan from mu_hat (cheap ``critical``); else by steps around the asymptotic limit.

    Raises:
        InvalidWorkspace: if the limit is not bracketed by the POI bounds.
    """
    mu_hat = float(setup.sets.mu_hat[0])
    top = model.poi_bounds[1]

    def gap(mus: np.ndarray) -> np.ndarray:
        mus = np.atleast_1d(np.asarray(mus, float))
        return exclusion_gap(mus, _t_obs(model, setup, mus), np.full(mus.size, mu_hat), critical)

    if scan:
        hi = min(top, 2.5 * max(asym.neyman, asym.neyman_expected[2]))
        while True:
            grid = np.linspace(max(mu_hat, 0.0), hi, SCAN_POINTS)[1:]
            g = gap(grid)
            if g[-1] >= 0 or hi >= top:
                break
            hi = min(top, 2 * hi)
        up = np.flatnonzero((g[:-1] < 0) & (g[1:] >= 0))
        if g[-1] < 0 or (up.size == 0 and g[0] < 0):
            raise _not_bracketed(model)
        lo_b, hi_b = (grid[up[-1]], grid[up[-1] + 1]) if up.size else (max(mu_hat, 0.0), grid[0])
    else:
        lo_b, hi_b = max(mu_hat, 0.8 * asym.neyman), min(top, 1.25 * asym.neyman)
        while gap(hi_b)[0] < 0:
            if hi_b >= top:
                raise _not_bracketed(model)
            lo_b, hi_b = hi_b, min(top, 1.5 * hi_b)
        while lo_b > mu_hat and gap(lo_b)[0] >= 0:
            lo_b, hi_b = max(mu_hat, lo_b / 1.5), lo_b
    if lo_b == hi_b or gap(lo_b)[0] >= 0:
        root = float(lo_b)
    else:
        # per-mass toys: every evaluation costs toys_per_mu fits and c(mu) carries a toy error of percents
        xtol, rtol = (1e-10, 1e-8) if scan else (TOY_ROOT_RTOL * hi_b, TOY_ROOT_RTOL)
        root = float(optimize.brentq(lambda x: float(gap(x)[0]), lo_b, hi_b, xtol=xtol, rtol=rtol))
    return _with_error(model, setup, critical, root)


def _with_error(model: BinnedModel, setup: ObservedSetup, critical, root: float) -> NeymanLimit:
    """The limit with c there and its toy uncertainty (via the atom p-value when the observation is on the atom)."""
    c, err = (float(v[0]) for v in critical(np.array([root])))
    h = 1e-4 * max(root, 1e-12)
    pts = np.array([root - h, root + h])
    t_lo, t_hi = _t_obs(model, setup, pts)
    if (
        abs(float(_t_obs(model, setup, np.array([root]))[0]) - 2 * root * critical.total)
        <= ATOM_RTOL * 2 * root * critical.total
    ):
        p, p_err = critical.atom(np.array([root]))
        p_lo, p_hi = critical.atom(pts)[0]
        slope = abs((np.log(p_hi) - np.log(p_lo)) / (2 * h))
        rel = float(p_err[0] / max(p[0], 1e-300))
        return NeymanLimit(mu=root, threshold=c, threshold_err=err, mu_err=rel / slope if slope > 0 else 0.0)
    c_lo, c_hi = critical(pts)[0]
    slope = abs(((t_hi - t_lo) - (c_hi - c_lo)) / (2 * h))
    return NeymanLimit(mu=root, threshold=c, threshold_err=err, mu_err=float(err / slope) if slope > 0 else 0.0)


def _not_bracketed(model: BinnedModel) -> InvalidWorkspace:
    lo_b, hi_b = model.poi_bounds
    return InvalidWorkspace(
        f"limit not bracketed by the POI bounds [{lo_b}, {hi_b}] (neyman_obs); widen likelihood.poi_bounds",
        field="measurements.parameters[mu].bounds",
    )


@dataclasses.dataclass(frozen=True)
class Sensitivity:
    """Band, PCL floor and toy p0 from the shared background-only pseudo-datasets."""

    expected: tuple[float, ...]
    pcl_threshold: float
    p0: float
    z0: float
    upper_limits: np.ndarray


def sensitivity(
    model: BinnedModel,
    setup: ObservedSetup,
    asym: AsymptoticResult,
    critical,
    theta0: np.ndarray,
    settings: ToySettings,
    *,
    pcl_power: float,
) -> Sensitivity:
    """Per-toy upper limits of the shared background-only pseudo-datasets, their quantiles and p0.

    Args:
        critical: Critical values and atom p-values (see :func:`dmpreserve.stats.toys.exclusion_gap`).
    """
    n_b = settings.toys_background
    sets = background_datasets(model, theta0, n_b, settings.seed)
    top = model.poi_bounds[1]
    grid = np.concatenate(
        [[0.0], np.geomspace(0.1 * asym.neyman_expected[0], min(top, 3.0 * asym.neyman_expected[4]), BAND_POINTS)]
    )
    t_b, _ = tmu_tilde(model, sets, np.tile(grid, n_b), which=np.repeat(np.arange(n_b), grid.size))
    t_b = t_b.reshape(n_b, grid.size)
    uls = upper_crossing(model, sets, grid, t_b, critical)
    q0_toys = np.where(sets.mu_hat > 0, t_b[:, 0], 0.0)
    k = int(np.sum(q0_toys >= setup.q0 - 1e-9)) if setup.q0 > 0 else n_b
    p0 = (k + 1) / (n_b + 1)
    return Sensitivity(
        expected=tuple(float(e) for e in np.quantile(uls, special.ndtr(np.array(BAND_SIGMAS)))),
        pcl_threshold=float(np.quantile(uls, pcl_power)),
        p0=float(p0),
        z0=float(max(0.0, special.ndtri(1.0 - p0))) if p0 < 1 else 0.0,
        upper_limits=uls,
    )


class BandCritical:
    """Per-mass toy thresholds on a few mu across the band (``toys`` mode): log c linear in log mu, log p in mu."""

    def __init__(self, critical: ToyCritical, asym: AsymptoticResult, top: float, points: int = 6):
        lo = 0.5 * min(asym.neyman_expected[0], 1.0 / critical.total)
        self.knots = np.geomspace(lo, min(top, 1.5 * asym.neyman_expected[4]), points)
        c, _ = critical(self.knots)
        p, _ = critical.atom(self.knots)
        self.logc, self.logp = np.log(np.clip(c, 1e-300, None)), np.log(np.clip(p, 1e-300, None))
        self.total, self.alpha, self.n = critical.total, critical.alpha, critical.settings.toys_per_mu

    def __call__(self, mus: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        c = np.exp(np.interp(np.log(np.clip(mus, 1e-300, None)), np.log(self.knots), self.logc))
        return c, np.zeros_like(c)

    def atom(self, mus: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p = np.exp(np.interp(mus, self.knots, self.logp))
        return p, np.sqrt(np.clip(p * (1 - p), 0.25 / self.n, None) / self.n)


def mass_shape(model: BinnedModel, theta0: np.ndarray) -> tuple[float, float, tuple[float, float]]:
    """(S, b_eff, (F, B)) of this mass's signal (:func:`~dmpreserve.stats.thresholds.shape_stats`, ``atom_stats``)."""
    return (*shape_stats(model, theta0), atom_stats(model, theta0))
