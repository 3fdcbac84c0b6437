"""Expected event counts per background component before and after the background-only fit.

A collaboration's background table (e.g. LZ's arXiv:2207.03764, Table I: "Expected events" and "Fit result")
gives each component's count in the analysis region before and after its fit.  :func:`sample_yields`
computes the same two columns from a serialized likelihood: the prefit count is the sample's nominal
expectation summed over every bin of every channel; the postfit count is its expectation at the
background-only best fit (staterror gammas profiled, as in the fit itself); the postfit uncertainty is
the linear propagation of the HESSE covariance of the fitted parameters,
sigma^2 = J C J^T with J = d(count)/d(parameter) by central differences (cabinetry's yield uncertainty,
without the staterror gammas' own variance, which are profiled).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from dmpreserve.stats.fit import FitModel, MinuitMinimum

#: Relative step of the central differences (absolute for parameters at 0).
STEP = 1e-4


def _counts(lik: FitModel, pars: np.ndarray) -> np.ndarray:
    """Expected events per sample (summed over all bins of all channels) at the listed parameters ``pars``."""
    full = lik.expand(pars)
    by_sample = np.asarray(lik.model.main_model.expected_data(full, return_by_sample=True), dtype=float)
    return by_sample.sum(axis=1)


def sample_yields(lik: FitModel, result: MinuitMinimum) -> list[dict[str, Any]]:
    """Prefit and postfit expected events per sample, with the postfit uncertainty.

    Args:
        lik: The background-only model and its observed data.
        result: Its MIGRAD + HESSE minimum (values, errors, correlation in ``lik.names`` order).

    Returns:
        One ``{"sample", "prefit_events", "postfit_events", "postfit_error"}`` per sample of the model, in
        the model's sample order (counts in events in the analysis region; uncertainty: 1 sigma).
    """
    samples = list(lik.model.config.samples)
    # nominal: every parameter at its initial value, staterror gammas at 1 (not profiled on the observed data)
    prefit = np.asarray(lik.model.main_model.expected_data(lik.full_init, return_by_sample=True), float).sum(axis=1)
    best = np.asarray(result.values, float)
    post = _counts(lik, best)
    err = np.asarray(result.errors, float)
    cov = np.asarray(result.correlation, float) * np.outer(err, err)
    jac = np.zeros((len(samples), best.size))
    for i in np.flatnonzero(err > 0):
        h = STEP * max(abs(best[i]), err[i], 1e-3)
        lo, hi = lik.bounds[i]
        up, down = best.copy(), best.copy()
        up[i], down[i] = min(best[i] + h, hi), max(best[i] - h, lo)
        if up[i] > down[i]:
            jac[:, i] = (_counts(lik, up) - _counts(lik, down)) / (up[i] - down[i])
    var = np.einsum("si,ij,sj->s", jac, cov, jac)
    return [
        {
            "sample": name,
            "prefit_events": float(p),
            "postfit_events": float(q),
            "postfit_error": float(np.sqrt(max(v, 0.0))),
        }
        for name, p, q, v in zip(samples, prefit, post, var)
    ]
