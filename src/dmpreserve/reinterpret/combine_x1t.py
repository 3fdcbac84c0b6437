"""XENON1T's binwise likelihood as an effective Poisson channel, so that it joins a pyhf combination.

The XENON1T 2018 release (:mod:`dmpreserve.reinterpret.xenon1t`) gives, per reconstructed-energy bin r, the
profile likelihood lambda_r(s) = -2 ln L_r(s) on a grid of signal expectations s (0-3 events per bin), not a
Poisson model.  A counting bin with n observed events and b expected background has

    lambda(s) - lambda(0) = 2 [s - n ln(1 + s / b)],

and the binwise lambda_r, already profiled over XENON1T's nuisance parameters, is well described by that form
with the signal scaled by a factor k_r (the profiling flattens it).  Each bin is replaced by the effective
Poisson channel (n_r, b_r, k_r) whose lambda 2 [k s - n ln(1 + k s / b)] best matches the tabulated lambda_r(s)
(least squares over the tabulated s, with a free constant: only differences of lambda enter a likelihood
ratio); the bin's signal expectation in the channel is k_r s_r.  Then XENON1T is an ordinary pyhf channel
(one bin per sensitive reconstructed bin, a ``background`` sample without modifiers -- the binwise
likelihood is already profiled over XENON1T's own nuisance parameters -- and the observations n_r, not
integers in general); toys and every export work.

Approximation and its limits (docs/combination.md, measured by :func:`fit_report`):

* bins whose lambda_r is flat (no sensitivity) are dropped;
* a bin with lambda_r(s) = 2 k s (nothing observed) fixes n_r = 0 but not b_r, which only the toys
  see: b_r = :data:`ZERO_COUNT_BACKGROUND` is assumed there;
* beyond the tabulated s (3 events per bin) the Poisson form extrapolates, where the release's own method
  (:meth:`~dmpreserve.reinterpret.xenon1t.BinwiseLikelihood.llr`) returns infinity;
* toys of the effective channel are Poisson toys of (n_r, b_r), not XENON1T's own toys (the release gives
  only its observed likelihood and a Neyman threshold of its own).
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import numpy as np
from scipy.optimize import least_squares

from dmpreserve.reinterpret.xenon1t import BinwiseLikelihood

#: Assumed background [events] of a bin with lambda_r(s) = 2 s (n_r = 0): not identified by the likelihood.
ZERO_COUNT_BACKGROUND = 0.1
#: A bin whose lambda_r varies by less than this over the tabulated range has no sensitivity (dropped).
FLAT_TOLERANCE = 1e-9
CHANNEL = "binwise_nr"
BACKGROUND = "background"


def poisson_lambda(s: np.ndarray, n: float, b: float, k: float = 1.0) -> np.ndarray:
    """2 [k s - n ln(1 + k s / b)]: -2 ln L(s) + 2 ln L(0) of a Poisson bin (n observed, b background, signal k s)."""
    s = np.asarray(s, float)
    return 2.0 * (k * s - n * np.log1p(k * s / b)) if n > 0 else 2.0 * k * s


@dataclasses.dataclass(frozen=True)
class EffectiveBinwise:
    """The effective Poisson channel of a binwise likelihood.

    Attributes:
        bins: Indices of the kept reconstructed bins (K,).
        observed: Effective observed counts n_r (K,).
        background: Effective background b_r [events] (K,).
        signal_scale: Effective signal factor k_r (K,): the bin's signal expectation is k_r s_r.
        max_abs_delta: Per kept bin, max over the tabulated s of |lambda_r(s) - c_r - 2[s - n_r ln(1 + s/b_r)]| (K,).
        dropped: Indices of the flat (insensitive) bins.
    """

    bins: np.ndarray
    observed: np.ndarray
    background: np.ndarray
    signal_scale: np.ndarray
    max_abs_delta: np.ndarray
    dropped: tuple[int, ...]

    def workspace(self, *, poi_bounds: tuple[float, float] = (0.0, 50.0)) -> dict[str, Any]:
        """A background-only pyhf workspace of the channel (POI ``mu`` declared with ``poi_bounds``)."""
        return {
            "channels": [
                {
                    "name": CHANNEL,
                    "samples": [{"name": BACKGROUND, "data": self.background.tolist(), "modifiers": []}],
                }
            ],
            "observations": [{"name": CHANNEL, "data": self.observed.tolist()}],
            "measurements": [
                {
                    "name": "binwise_effective_poisson",
                    "config": {
                        "poi": "mu",
                        "parameters": [{"name": "mu", "bounds": [[float(poi_bounds[0]), float(poi_bounds[1])]]}],
                    },
                }
            ],
            "version": "1.0.0",
        }

    def signal(self, s_reco: np.ndarray) -> np.ndarray:
        """The signal of the kept bins, from the signal per reconstructed bin of the release's binning."""
        return np.asarray(s_reco, float)[self.bins] * self.signal_scale


#: Search grid of the fit: ln b and ln k (then refined by least squares).
_LN_B = np.linspace(-8.0, 8.0, 81)
_LN_K = np.linspace(-3.0, 1.0, 41)


def _fit_bin(s: np.ndarray, lam: np.ndarray) -> tuple[float, float, float, float]:
    """(n, b, k, max |delta|) of one bin; n and the constant offset are solved linearly on a (b, k) grid, then
    all three refined by least squares."""
    d = lam - lam[0]

    def resid(p: np.ndarray) -> np.ndarray:
        r = d - poisson_lambda(s, p[0], np.exp(p[1]), np.exp(p[2]))
        return r - r.mean()

    b, k = np.exp(_LN_B)[:, None, None], np.exp(_LN_K)[None, :, None]
    f = np.log1p(k * s / b)  # (B, K, S)
    y = d - 2.0 * k * s
    fc, yc = f - f.mean(axis=2, keepdims=True), y - y.mean(axis=2, keepdims=True)
    n = np.clip(-np.sum(yc * fc, axis=2) / (2.0 * np.maximum(np.sum(fc * fc, axis=2), 1e-300)), 0.0, None)
    cost = np.sum((yc + 2.0 * n[..., None] * fc) ** 2, axis=2)
    i, j = np.unravel_index(int(np.argmin(cost)), cost.shape)
    x0 = np.array([n[i, j], _LN_B[i], _LN_K[j]])
    fit = least_squares(resid, x0=x0, bounds=([0.0, -12.0, -3.0], [1e5, 12.0, 1.0]), xtol=1e-13, ftol=1e-13)
    x = fit.x if fit.cost <= 0.5 * np.sum(resid(x0) ** 2) else x0
    if x[0] < 1e-6:  # lambda = 2 k s: nothing observed, b not identified
        slope = float(np.sum(d * s) / np.sum(s * s)) / 2.0
        x = np.array([0.0, np.log(ZERO_COUNT_BACKGROUND), np.log(max(slope, 1e-12))])
    return float(x[0]), float(np.exp(x[1])), float(np.exp(x[2])), float(np.max(np.abs(resid(x))))


def effective_poisson(bw: BinwiseLikelihood) -> EffectiveBinwise:
    """Fit the effective Poisson channel to every bin of ``bw`` (deterministic: fixed start points)."""
    s = np.asarray(bw.signal_grid, float)
    keep, obs, bkg, eff, delta, dropped = [], [], [], [], [], []
    for r in range(bw.ll.shape[0]):
        lam = np.asarray(bw.ll[r], float)
        if np.ptp(lam) < FLAT_TOLERANCE:
            dropped.append(r)
            continue
        n, b, k, err = _fit_bin(s, lam)
        keep.append(r)
        obs.append(n)
        bkg.append(b)
        eff.append(k)
        delta.append(err)
    return EffectiveBinwise(
        bins=np.array(keep, int),
        observed=np.array(obs),
        background=np.array(bkg),
        signal_scale=np.array(eff),
        max_abs_delta=np.array(delta),
        dropped=tuple(dropped),
    )


def binwise_digest(bw: BinwiseLikelihood) -> str:
    """sha256 of the release's tabulated likelihood (its 'observed data'), for the same-data refusal."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(np.round(bw.ll, 12)).tobytes())
    h.update(np.ascontiguousarray(bw.signal_grid).tobytes())
    return h.hexdigest()


def fit_report(eff: EffectiveBinwise) -> dict[str, Any]:
    """The measured approximation error: per kept bin (n_r, b_r, max |delta lambda|) and the maximum."""
    return {
        "bins": [
            {
                "bin": int(r),
                "observed": float(n),
                "background": float(b),
                "signal_scale": float(k),
                "max_abs_delta_lambda": float(d),
            }
            for r, n, b, k, d in zip(eff.bins, eff.observed, eff.background, eff.signal_scale, eff.max_abs_delta)
        ],
        "dropped_flat_bins": list(eff.dropped),
        "max_abs_delta_lambda": float(np.max(eff.max_abs_delta)) if eff.max_abs_delta.size else 0.0,
        "zero_count_background": ZERO_COUNT_BACKGROUND,
    }
