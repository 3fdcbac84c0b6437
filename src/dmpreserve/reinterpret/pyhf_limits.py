"""Asymptotic limits computed with pyhf itself, for likelihoods the fast engine cannot evaluate (histosys).

:mod:`dmpreserve.stats.model` supports normsys and normfactor only; the imported XENONnT release uses
histosys for its yield nuisances, so its limits come from pyhf's model and fits (numpy backend, scipy
optimiser, this project's interpolation codes: normsys code4, histosys code4p).  Conventions as the
pipeline's asymptotic limits (Baxter et al., EPJC 81 (2021) 907; Cowan et al., EPJC 71 (2011) 1554):

* observed: the two-sided profile-likelihood ratio t~mu (mu_hat >= 0) with the asymptotic chi2_1
  threshold c (2.706 at 90% CL); the limit is the largest mu with t~mu(obs) = c (Neyman, unconstrained);
* sensitivity band: s(mu) = sqrt(t~mu(Asimov, mu' = 0)); for a background-only outcome mu_hat = N sigma
  the limit solves s = N + sqrt(c) (N >= 0) or s = N + sqrt(N^2 + c) (N < 0);
* CLs (q~mu, as pyhf's ``AsymptoticCalculator``): observed and expected, from the same t~mu and s(mu);
* p0, z0 from t~0 (observed) when mu_hat > 0.

No power constraint is applied (``limit_cm2`` = unconstrained Neyman limit; see docs/reinterpretation.md).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyhf
from scipy import stats
from scipy.optimize import brentq

from dmpreserve.errors import InvalidWorkspace
from dmpreserve.stats.limits import MassLimit
from dmpreserve.stats.reference import modifier_settings

BAND_SIGMAS = (-2.0, -1.0, 0.0, 1.0, 2.0)
GRID_POINTS = 24
MU_START = 1e-3
MAX_DOUBLINGS = 40


class _Profile:
    """t~mu on the observed data and on the background-only Asimov data of one patched workspace."""

    def __init__(self, workspace: dict[str, Any], patch: dict[str, Any]):
        pyhf.set_backend("numpy", pyhf.optimize.scipy_optimizer())
        ws = pyhf.Workspace(workspace)
        self.model = ws.model(patches=[pyhf.patchset.Patch(patch)], modifier_settings=modifier_settings())
        self.data = np.asarray(ws.data(self.model), float)
        cfg = self.model.config
        self.init, self.bounds, self.fixed = cfg.suggested_init(), cfg.suggested_bounds(), cfg.suggested_fixed()
        self.poi = cfg.poi_index
        self.mu_max = float(self.bounds[self.poi][1])
        self.asimov = np.asarray(
            pyhf.infer.calculators.generate_asimov_data(0.0, self.data, self.model, self.init, self.bounds, self.fixed),
            float,
        )
        self.best = {"obs": self._free(self.data), "asimov": self._free(self.asimov)}

    def _free(self, data: np.ndarray) -> tuple[float, float]:
        pars, nll2 = pyhf.infer.mle.fit(data, self.model, self.init, self.bounds, self.fixed, return_fitted_val=True)
        return float(pars[self.poi]), float(nll2)

    def t(self, mu: float, which: str) -> float:
        """t~mu = -2 ln L(mu, theta_hathat) / L(mu_hat, theta_hat) (mu_hat >= 0) on ``obs`` or ``asimov``."""
        data = self.data if which == "obs" else self.asimov
        _, nll2 = pyhf.infer.mle.fixed_poi_fit(
            mu, data, self.model, self.init, self.bounds, self.fixed, return_fitted_val=True
        )
        return max(float(nll2) - self.best[which][1], 0.0)


def _root(f, lo: float, hi: float) -> float:
    return float(brentq(f, lo, hi, rtol=1e-5, xtol=1e-9))


def _cls(t_obs: float, s: float, mu: float, mu_hat: float) -> float:
    q = 0.0 if mu_hat > mu else t_obs
    sq = math.sqrt(q)
    if s <= 0:
        return 1.0
    if q <= s * s:
        num, den = stats.norm.sf(sq), stats.norm.cdf(s - sq)
    else:
        num, den = stats.norm.sf((q + s * s) / (2 * s)), stats.norm.sf((q - s * s) / (2 * s))
    return float(num / den) if den > 0 else 1.0


def _crossing(values: np.ndarray, log_mu: np.ndarray, level: float) -> float:
    """mu where decreasing ``values`` first fall below ``level`` (log-linear interpolation); NaN if never."""
    k = np.nonzero(values < level)[0]
    if not len(k) or k[0] == 0:
        return math.nan
    i = int(k[0])
    return float(np.exp(np.interp(level, values[i - 1 : i + 1][::-1], log_mu[i - 1 : i + 1][::-1])))


def patch_limit(workspace: dict[str, Any], patch: dict[str, Any], *, reference: float, cl: float = 0.9) -> MassLimit:
    """Asymptotic limits of one signal patch (see the module docstring), in units of mu.

    Args:
        workspace: Background-only pyhf workspace (POI ``mu`` bounded below by 0).
        patch: Patch adding the signal (``metadata.values[0]`` = mass [GeV]).
        reference: Signal strength at mu = 1 (e.g. cross section [cm^2]).
        cl: Confidence level.

    Returns:
        A :class:`dmpreserve.stats.limits.MassLimit` (``mu_limit`` = ``mu_unconstrained``, no power constraint;
        ``mu_pcl`` = max(unconstrained, -1 sigma band), the PCL at critical power 0.16, for comparison).

    Raises:
        InvalidWorkspace: the limit lies beyond the POI's upper bound.
    """
    p = _Profile(workspace, patch)
    c = float(stats.chi2.ppf(cl, 1))
    mu_hat = p.best["obs"][0]
    targets = [n + math.sqrt(c) if n >= 0 else n + math.sqrt(n * n + c) for n in BAND_SIGMAS]
    # bracket: double mu until the observed t~mu and the +2 sigma Asimov target are exceeded
    hi = max(MU_START, 2 * mu_hat)
    for _ in range(MAX_DOUBLINGS):
        if p.t(hi, "obs") > c and math.sqrt(p.t(hi, "asimov")) > max(targets) + 0.5:
            break
        hi *= 2
        if hi > p.mu_max:
            raise InvalidWorkspace(
                f"the limit lies beyond the POI bound {p.mu_max:g}", field=f"patch {patch['metadata']['name']}"
            )
    grid = np.geomspace(MU_START * hi, hi, GRID_POINTS)
    s_grid = np.sqrt([p.t(m, "asimov") for m in grid])
    t_grid = np.array([p.t(m, "obs") for m in grid])
    # observed Neyman limit: refine the last upward crossing of t~mu(obs) = c with brentq on pyhf's t~mu
    above = np.nonzero((t_grid[1:] > c) & (t_grid[:-1] <= c) & (grid[1:] > mu_hat))[0]
    j = int(above[-1]) if len(above) else -1
    neyman = _root(lambda m: p.t(m, "obs") - c, grid[j], grid[j + 1]) if j >= 0 else float(grid[0])
    # bands and CLs from the grid (s(mu) is smooth and monotonic): log-linear interpolation
    lg = np.log(grid)
    expected = tuple(float(np.exp(np.interp(tg, s_grid, lg))) for tg in targets)
    cls_obs = _crossing(np.array([_cls(t, s, m, mu_hat) for t, s, m in zip(t_grid, s_grid, grid)]), lg, 1 - cl)
    cls_exp = []
    for n in (2.0, 1.0, 0.0, -1.0, -2.0):
        vals = stats.norm.sf(n + s_grid) / stats.norm.sf(n)
        cls_exp.append(float(np.exp(np.interp(-(1 - cl), -vals, lg))))
    t0 = p.t(0.0, "obs") if mu_hat > 0 else 0.0
    p0 = float(stats.norm.sf(math.sqrt(t0)))
    return MassLimit(
        mass_gev=float(patch["metadata"]["values"][0]),
        reference_cross_section_cm2=float(reference),
        mu_limit=neyman,
        mu_expected=expected,
        mu_unconstrained=neyman,
        mu_pcl=max(neyman, expected[1]),
        mu_cls=cls_obs,
        mu_cls_expected=tuple(cls_exp),
        mu_pcl_threshold=expected[1],
        p0=p0,
        z0=float(math.sqrt(t0)),
        neyman_threshold=c,
        mu_hat=mu_hat,
    )
