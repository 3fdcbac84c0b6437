"""Asymptotic limits from the Asimov dataset (Cowan et al., EPJC 71 (2011) 1554).

With sigma_A(mu)^2 = mu^2 / q~mu(Asimov, mu' = 0) every expected quantity is a root of
``s(mu) = sqrt(q~mu,A) = const``, and the observed ones are roots of functions of t~mu(obs) and
s(mu).  All roots of one mass are found together: the functions are evaluated on a log-spaced
grid of mu in one batched fit, then refined by batched Illinois (regula falsi) steps.

* CLs (q~mu, as pyhf's ``AsymptoticCalculator``): observed CLs = 1 - cl and the expected band
  CLs_exp(n) = Phi(-(n + s)) / Phi(-n) = 1 - cl, n = 2, 1, 0, -1, -2.
* Neyman / PLR (t~mu): observed upper limit = largest mu with t~mu(obs) = c (c = chi2_1 quantile,
  2.706 at 90%); sensitivity for a background-only outcome mu_hat = N sigma:
  t~mu = (s - N)^2 for N >= 0 and s^2 - 2 N s for N < 0 (mu_hat < 0 clipped to the boundary).
* Discovery: q0 = t~0(obs) when mu_hat > 0, p0 = 1 - Phi(sqrt(q0)).
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import special, stats

from dmpreserve.errors import InvalidWorkspace
from dmpreserve.stats.model import BinnedModel
from dmpreserve.stats.teststat import Datasets, asimov_background, fit_datasets, qmu_tilde, tmu_tilde

#: Band order used everywhere: -2, -1, 0 (median), +1, +2 sigma.
BAND_SIGMAS = (-2.0, -1.0, 0.0, 1.0, 2.0)
GRID_POINTS = 40


@dataclasses.dataclass(frozen=True)
class AsymptoticResult:
    """Asymptotic results of one mass, in units of the POI mu.

    Attributes:
        mu_hat: Best-fit mu (>= 0).
        q0, p0, z0: Discovery test statistic, local p-value and significance.
        cls: Observed CLs upper limit.
        cls_expected: Expected CLs limits (-2, -1, 0, +1, +2 sigma).
        neyman: Observed t~mu upper limit with the asymptotic threshold.
        neyman_expected: PLR sensitivity (-2, -1, 0, +1, +2 sigma).
        pcl_threshold: Sensitivity quantile at the critical power.
        threshold: The asymptotic t~mu threshold chi2_1 quantile.
    """

    mu_hat: float
    q0: float
    p0: float
    z0: float
    cls: float
    cls_expected: tuple[float, ...]
    neyman: float
    neyman_expected: tuple[float, ...]
    pcl_threshold: float
    threshold: float


@dataclasses.dataclass(frozen=True)
class ObservedSetup:
    """The observed dataset and the background-only Asimov dataset of a model, with their free fits."""

    sets: Datasets  # row 0: observed, row 1: Asimov
    q0: float


def observed_setup(model: BinnedModel) -> ObservedSetup:
    """Free fits of the observed data and of the background-only Asimov data; q0 of the data."""
    asimov, asimov_aux, cond0 = asimov_background(model)
    data = model.stack_data([model.observed, asimov])
    aux = np.stack([model.nominal_aux, asimov_aux])
    sets = fit_datasets(model, data, aux)
    q0 = float(max(2.0 * (cond0.nll[0] - sets.free.nll[0]), 0.0)) if sets.mu_hat[0] > 0 else 0.0
    return ObservedSetup(sets=sets, q0=q0)


def _evaluate(model: BinnedModel, setup: ObservedSetup, mus: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """t~mu of the data and s = sqrt(q~mu) of the Asimov data at each mu."""
    n = mus.size
    t, _ = tmu_tilde(model, setup.sets, np.concatenate([mus, mus]), which=np.repeat([0, 1], n))
    q_asimov = qmu_tilde(t[n:], mus, setup.sets.mu_hat[1])
    return t[:n], np.sqrt(q_asimov)


def _cls(t_obs: np.ndarray, s: np.ndarray, mus: np.ndarray, mu_hat: float) -> np.ndarray:
    """Observed asymptotic CLs with q~mu (pyhf's formula)."""
    q = qmu_tilde(t_obs, mus, mu_hat)
    sq = np.sqrt(q)
    safe_s = np.where(s > 0, s, 1e-300)
    stat = np.where(sq <= s, sq - s, (q - s * s) / (2 * safe_s))
    num, den = special.ndtr(-(stat + s)), special.ndtr(-stat)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def s_targets(*, cl: float, pcl_power: float) -> dict[str, float]:
    """Values of s = mu / sigma_A that define the expected limits."""
    alpha = 1.0 - cl
    c = float(stats.chi2.ppf(cl, 1))
    out = {}
    for i, n in enumerate(BAND_SIGMAS):  # CLs band i <-> test statistic at -n sigma
        out[f"cls_{i}"] = float(-special.ndtri(alpha * special.ndtr(n)) + n)
    for i, n in enumerate(BAND_SIGMAS):
        out[f"neyman_{i}"] = n + float(np.sqrt(c + (n * n if n < 0 else 0.0)))
    npcl = float(special.ndtri(pcl_power))
    out["pcl"] = npcl + float(np.sqrt(c + (npcl * npcl if npcl < 0 else 0.0)))
    return out


def asymptotic_limits(
    model: BinnedModel,
    *,
    cl: float = 0.9,
    pcl_power: float = 0.16,
    setup: ObservedSetup | None = None,
    rtol: float = 1e-6,
) -> AsymptoticResult:
    """All asymptotic limits, bands and the discovery significance of one model.

    Raises:
        InvalidWorkspace: if a limit lies outside the POI bounds.
    """
    setup = setup or observed_setup(model)
    mu_hat = float(setup.sets.mu_hat[0])
    c = float(stats.chi2.ppf(cl, 1))
    targets = s_targets(cl=cl, pcl_power=pcl_power)
    names = ["cls_obs", "neyman_obs", *targets]

    def g(t_obs: np.ndarray, s: np.ndarray, mus: np.ndarray) -> np.ndarray:
        """Each target's function (rows: targets), increasing through its root."""
        rows = [(1.0 - cl) - _cls(t_obs, s, mus, mu_hat), t_obs - c]
        rows += [s - v for v in targets.values()]
        return np.array(rows)

    lo_b, hi_b = model.poi_bounds
    grid = np.geomspace(hi_b * 1e-6, hi_b, GRID_POINTS)
    gv = g(*_evaluate(model, setup, grid), grid)
    lo, hi = np.empty(len(names)), np.empty(len(names))
    g_lo, g_hi = np.empty(len(names)), np.empty(len(names))
    for i, name in enumerate(names):
        pos = gv[i] >= 0
        crossings = np.flatnonzero(~pos[:-1] & pos[1:])
        if pos[-1] and not pos.all() and crossings.size:
            j = crossings[-1]  # the largest root (upper end of the interval)
        else:
            raise InvalidWorkspace(
                f"limit not bracketed by the POI bounds [{lo_b}, {hi_b}] ({name}); widen likelihood.poi_bounds",
                field="measurements.parameters[mu].bounds",
            )
        lo[i], hi[i], g_lo[i], g_hi[i] = grid[j], grid[j + 1], gv[i, j], gv[i, j + 1]
    root = illinois(lambda mus: _diag(g, model, setup, mus), lo, hi, g_lo, g_hi, rtol=rtol)
    r = {n: float(v) for n, v in zip(names, root)}
    p0 = float(special.ndtr(-np.sqrt(setup.q0)))
    return AsymptoticResult(
        mu_hat=mu_hat,
        q0=setup.q0,
        p0=p0,
        z0=float(np.sqrt(setup.q0)),
        cls=r["cls_obs"],
        cls_expected=tuple(r[f"cls_{i}"] for i in range(5)),
        neyman=r["neyman_obs"],
        neyman_expected=tuple(r[f"neyman_{i}"] for i in range(5)),
        pcl_threshold=r["pcl"],
        threshold=c,
    )


def _diag(g, model: BinnedModel, setup: ObservedSetup, mus: np.ndarray) -> np.ndarray:
    """g_i(mu_i): each target's function at its own candidate root."""
    values = g(*_evaluate(model, setup, mus), mus)
    return values[np.arange(mus.size), np.arange(mus.size)] if values.shape[0] == mus.size else values


def illinois(
    func, lo: np.ndarray, hi: np.ndarray, g_lo: np.ndarray, g_hi: np.ndarray, *, rtol: float, max_iter: int = 60
) -> np.ndarray:
    """Batched Illinois regula falsi for brackets with g(lo) < 0 <= g(hi); ``func`` maps all x at once."""
    lo, hi, g_lo, g_hi = (np.array(a, float) for a in (lo, hi, g_lo, g_hi))
    side = np.zeros(lo.size, int)

    def secant() -> np.ndarray:
        x = np.where(g_hi != g_lo, hi - g_hi * (hi - lo) / np.where(g_hi != g_lo, g_hi - g_lo, 1.0), 0.5 * (lo + hi))
        return np.clip(x, lo, hi)

    for _ in range(max_iter):
        x = secant()
        if np.all(hi - lo <= rtol * hi):
            return x
        gx = func(x)
        if np.all(np.abs(gx) < 1e-10):
            return x
        right = gx >= 0
        hi, g_hi = np.where(right, x, hi), np.where(right, gx, g_hi)
        lo, g_lo = np.where(right, lo, x), np.where(right, g_lo, gx)
        g_lo = np.where(right & (side == 1), 0.5 * g_lo, g_lo)
        g_hi = np.where(~right & (side == -1), 0.5 * g_hi, g_hi)
        side = np.where(right, 1, -1)
    return secant()
