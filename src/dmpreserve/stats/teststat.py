"""Profile-likelihood test statistics for batches of datasets (Cowan, Cranmer, Gross, Vitells 2011).

``t~mu`` (two-sided, mu_hat >= 0 through the POI's lower bound 0), ``q~mu`` (one-sided, for CLs)
and ``q0`` (discovery), computed from batched Newton fits of :mod:`dmpreserve.stats.newton`.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from dmpreserve.stats.model import BinnedModel
from dmpreserve.stats.newton import NewtonMinimum, minimize

#: Rows per block of conditional fits (limits the memory of the indexed dataset copies).
BLOCK_ROWS = 4096


@dataclasses.dataclass(frozen=True, eq=False)
class Datasets:
    """A batch of datasets with their free (unconditional) fits.

    Attributes:
        data: Main-measurement counts, shape (D, B).
        aux: Auxiliary data of the constraints, shape (D, K + G) (alphas, staterror gammas).
        free: Free fits (mu within the POI bounds), one per dataset.
    """

    data: np.ndarray
    aux: np.ndarray
    free: NewtonMinimum

    @property
    def mu_hat(self) -> np.ndarray:
        """Best-fit POI per dataset (>= the POI's lower bound)."""
        return self.free.theta[:, 0]


def fit_datasets(model: BinnedModel, data: np.ndarray, aux: np.ndarray, *, init: np.ndarray | None = None) -> Datasets:
    """Free fits of a batch of datasets (start: ``init`` rows (R, P) or :meth:`BinnedModel.start` of ``aux``)."""
    data, aux = np.atleast_2d(np.asarray(data, float)), np.atleast_2d(np.asarray(aux, float))
    if init is None:
        init = model.start(np.broadcast_to(aux, (data.shape[0], model.n_aux)))
    init = np.atleast_2d(init)[:, : model.n_params]
    return Datasets(data=data, aux=aux, free=minimize(model, data, aux, init, fix_poi=False))


def tmu_tilde(
    model: BinnedModel, sets: Datasets, mus: np.ndarray, *, which: np.ndarray | None = None
) -> tuple[np.ndarray, NewtonMinimum]:
    """t~mu for the datasets ``which`` (default: all, one mu each) at signal strengths ``mus``.

    Args:
        model: The model.
        sets: Datasets with their free fits.
        mus: POI value per row.
        which: Dataset index per row (default ``arange``).

    Returns:
        t~mu per row (clipped at 0) and the conditional fits.
    """
    mus = np.asarray(mus, float)
    which = np.arange(mus.size) if which is None else np.asarray(which)
    init = sets.free.theta[which].copy()
    init[:, 0] = mus
    parts = [NewtonMinimum(theta=np.zeros((0, model.n_params)), nll=np.zeros(0), converged=np.zeros(0, bool))]
    for i in range(0, mus.size, BLOCK_ROWS):  # bounds the copies of the datasets
        w = which[i : i + BLOCK_ROWS]
        parts.append(minimize(model, sets.data[w], sets.aux[w], init[i : i + BLOCK_ROWS], fix_poi=True))
    cond = NewtonMinimum(
        theta=np.concatenate([p.theta for p in parts]),
        nll=np.concatenate([p.nll for p in parts]),
        converged=np.concatenate([p.converged for p in parts]),
    )
    t = np.maximum(2.0 * (cond.nll - sets.free.nll[which]), 0.0)
    return t, cond


def qmu_tilde(t: np.ndarray, mu: np.ndarray, mu_hat: np.ndarray) -> np.ndarray:
    """q~mu from t~mu: zero where the best fit exceeds the tested mu."""
    return np.where(mu_hat > mu, 0.0, t)


def asimov_background(model: BinnedModel) -> tuple[np.ndarray, np.ndarray, NewtonMinimum]:
    """Background-only Asimov dataset as pyhf builds it (nuisances from the mu = 0 fit to the data).

    The auxiliary data are the fitted alphas and profiled staterror gammas (pyhf's expected auxdata).

    Returns:
        Main data (B,; :meth:`BinnedModel.as_data`), auxiliary data (K + G,) and the conditional mu = 0 fit to the
        observed data.
    """
    init = model.start(model.nominal_aux)
    init[:, 0] = 0.0
    cond0 = minimize(model, model.observed[None], model.nominal_aux[None], init, fix_poi=True)
    full0 = model.full(cond0.theta, model.observed[None], model.nominal_aux[None])
    return model.as_data(model.expected(full0))[0], model.aux_expected(full0)[0], cond0
