"""The extended unbinned likelihood of per-event densities, in the batched form of :mod:`dmpreserve.stats.model`.

For events x_i and samples s with expected counts c_s(theta) N_s and densities f_s(x) (Barlow, NIM A297 (1990)
496; the form of LZ's and XENON's likelihoods, e.g. LZ, arXiv:2207.03764, and XENON's ``blueice``)::

    -ln L(theta) = sum_s c_s(theta) N_s - sum_i ln( sum_s c_s(theta) N_s f_s(x_i) ) + constraints(theta) + const.

The densities are fine, smoothed templates (:class:`dmpreserve.artifacts.unbinned.UnbinnedTemplates`, built from
the same simulations as the binned templates); f_s(x) is constant in each fine bin k, so N_s f_s(x_i) =
n_{s,k_i} / V with the sample's expected count n_sk in bin k and the bin volume V.  The NLL is therefore the
binned Poisson NLL of the fine grid in which empty bins contribute only their expectation (whose sum over the grid
is the total): it is evaluated from the events' bins alone, per dataset, up to the constant sum_i ln V.

Modifiers: the rate part of the binned workspace carries over.  The POI and free normfactors and ``normsys``
(code4) multiply a sample as there; a ``histosys`` whose ``hi_data`` and ``lo_data`` are proportional to the
sample's data (how dmpreserve encodes a Gaussian normalisation constraint) is a rate factor
1 + kappa(alpha) with pyhf's code4p interpolation of the two ratios; a histosys that changes the shape is refused.
``staterror`` is dropped: the fine templates are smooth densities, whose Monte-Carlo statistics are not modelled.

Datasets are encoded as arrays (R, 2, E): row 0 the model bins of the events (as floats), row 1 their weights
(counts: 1 per event for toys, the expected count of every bin for Asimov data; 0 pads a shorter dataset).
Every function of :mod:`dmpreserve.stats.newton`, ``teststat``, ``toys``, ``asymptotic`` and ``neyman`` takes
this model in place of a :class:`~dmpreserve.stats.model.BinnedModel` (the threshold table does not: it is binned).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import TYPE_CHECKING, Any

import jsonpatch
import numpy as np

from dmpreserve.errors import InvalidWorkspace
from dmpreserve.stats.interpolation import code4p
from dmpreserve.stats.model import TINY, BinnedModel, build_model, without_staterror

if TYPE_CHECKING:
    from dmpreserve.artifacts.unbinned import UnbinnedTemplates

#: Datasets wider than this fraction of the model bins (Asimov data, and the observed data batched with them) are
#: evaluated as counts per model bin (the binned model's code): cheaper than gathering every entry's yields.
DENSE_FRACTION = 0.125
#: Relative tolerance of the proportionality of a rate-only histosys to its sample.
RATE_RTOL = 1e-6


@dataclasses.dataclass(frozen=True, eq=False, kw_only=True)
class UnbinnedModel(BinnedModel):
    """A :class:`BinnedModel` whose "bins" are the fine bins of per-event densities (see the module docstring).

    ``nominal`` (S, B) holds each sample's expected count per fine bin that carries any density or an observed
    event (B of the grid's bins; ``fine_bins`` (B,) their flat index k = i_cs1 * n_log10cs2 + j), ``observed`` the
    observed dataset (2, E), and there are no staterror gammas and no (shape) histosys terms.

    Attributes:
        fine_bins: Flat fine-grid index of each model bin (B,).
        rate_sample, rate_alpha: Sample and alpha index of each rate-only histosys (H,).
        rate_basis: Its code4p basis [S, A, delta_up, delta_dn] relative to the sample's yields (H, 4).
    """

    fine_bins: np.ndarray
    rate_sample: np.ndarray
    rate_alpha: np.ndarray
    rate_basis: np.ndarray

    # ---- datasets
    def broadcast_data(self, data: np.ndarray, n_rows: int) -> np.ndarray:
        """Datasets (R, 2, E) from (R, 2, E) or one dataset (2, E) broadcast."""
        data = np.asarray(data, float)
        if data.ndim == 2:
            data = data[None]
        return np.broadcast_to(data, (n_rows, *data.shape[1:]))

    def stack_data(self, rows: list[np.ndarray]) -> np.ndarray:
        """Datasets (2, E_i) as one batch (N, 2, max E_i), the shorter ones padded with weight 0."""
        width = max(r.shape[-1] for r in rows)
        out = np.zeros((len(rows), 2, width))
        for k, r in enumerate(rows):
            out[k, :, : r.shape[-1]] = r
        return out

    def as_data(self, counts: np.ndarray) -> np.ndarray:
        """Datasets (R, 2, B) with the (possibly non-integer) counts ``counts`` (R, B) in every model bin."""
        counts = np.atleast_2d(counts)
        out = np.empty((counts.shape[0], 2, counts.shape[1]))
        out[:, 0] = np.arange(counts.shape[1])
        out[:, 1] = counts
        return out

    def poisson_data(self, nu: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` datasets of events (n, 2, max count): a Poisson count with mean sum(nu) per dataset, each event in
        a bin drawn with probabilities nu / sum(nu) (the same distribution as Poisson counts per bin)."""
        nu = np.clip(np.asarray(nu, float), 0.0, None)
        cdf = np.cumsum(nu)
        counts = rng.poisson(cdf[-1], size=n)
        bins = np.minimum(np.searchsorted(cdf, rng.random(int(counts.sum())) * cdf[-1], side="right"), nu.size - 1)
        out = np.zeros((n, 2, max(int(counts.max(initial=0)), 1)))
        toy = np.repeat(np.arange(n), counts)
        slot = np.arange(bins.size) - np.repeat(np.cumsum(counts) - counts, counts)
        out[toy, 0, slot] = bins
        out[toy, 1, slot] = 1.0
        return out

    def gammas(self, theta: np.ndarray, data: np.ndarray, aux: np.ndarray) -> np.ndarray:
        """No staterror gammas: (R, 0)."""
        return np.zeros((np.atleast_2d(theta).shape[0], 0))

    # ---- the model
    @functools.cached_property
    def totals(self) -> np.ndarray:
        """Nominal expected count of each sample (S,) [events]."""
        return self.nominal.sum(axis=1)

    @functools.cached_property
    def _columns(self) -> np.ndarray:
        """The nominal yields per model bin (B, S), contiguous for gathering the events' rows."""
        return np.ascontiguousarray(self.nominal.T)

    def _factors(self, theta: np.ndarray, *, derivatives: bool = True):
        """c (R, S), dc (R, P, S), d2c (R, P, P, S): the binned model's factors times 1 + kappa(alpha) of the
        rate-only histosys."""
        c, dc, d2c = super()._factors(theta, derivatives=derivatives)
        if self.rate_sample.size == 0:
            return c, dc, d2c
        n_rows, n_f, n_p = theta.shape[0], self.n_factors, self.n_params
        v, d1, d2 = code4p(theta[:, n_f:][:, self.rate_alpha])  # (R, H, 4)
        h = np.ones_like(c)
        dh = np.zeros((n_rows, n_p, c.shape[1]))
        d2h = np.zeros((n_rows, n_p, c.shape[1]))  # diagonal: each kappa depends on one alpha
        for j, (s, k) in enumerate(zip(self.rate_sample, self.rate_alpha)):
            h[:, s] += v[:, j] @ self.rate_basis[j]
            dh[:, n_f + k, s] += d1[:, j] @ self.rate_basis[j]
            d2h[:, n_f + k, s] += d2[:, j] @ self.rate_basis[j]
        out = c * h
        if not derivatives:
            return out, None, None
        d_out = dc * h[:, None, :] + c[:, None, :] * dh
        d2_out = d2c * h[:, None, None, :] + dc[:, :, None, :] * dh[:, None, :, :] + dh[:, :, None, :] * dc[:, None]
        every = np.arange(n_p)
        d2_out[:, every, every, :] += c[:, None, :] * d2h
        return out, d_out, d2_out

    def _events(self, theta, data, aux, *, derivatives: bool):
        c, dc, d2c = self._factors(theta, derivatives=derivatives)
        dens = self._columns[data[:, 0].astype(np.intp)]  # (R, E, S)
        w = data[:, 1]
        raw = (dens @ c[:, :, None])[:, :, 0]
        nu = np.maximum(raw, TINY)
        k = len(self.alpha_names)
        nll = (
            c @ self.totals
            - np.sum(np.where(w > 0, w * np.log(nu), 0.0), axis=1)
            + 0.5 * np.sum((theta[:, self.n_factors :] - aux[:, :k]) ** 2, axis=1)
        )
        return nll, c, dc, d2c, dens, w, nu

    def _dense(self, data: np.ndarray) -> np.ndarray | None:
        """Counts per model bin (R, B) of wide datasets (see ``DENSE_FRACTION``), None for narrow ones."""
        n_rows, _, width = data.shape
        if width <= DENSE_FRACTION * self.n_bins:
            return None
        flat = (np.arange(n_rows)[:, None] * self.n_bins + data[:, 0].astype(np.intp)).ravel()
        return np.bincount(flat, weights=data[:, 1].ravel(), minlength=n_rows * self.n_bins).reshape(n_rows, -1)

    def nll(self, theta: np.ndarray, data: np.ndarray, aux: np.ndarray) -> np.ndarray:
        """NLL per row (without the constant sum_i ln V), datasets (R, 2, E)."""
        counts = self._dense(data)
        if counts is not None:
            return super().nll(theta, counts, aux)
        return self._events(theta, data, aux, derivatives=False)[0]

    def derivatives(
        self, theta: np.ndarray, data: np.ndarray, aux: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """NLL, gradient (R, P) and Hessian (R, P, P) per row (exact second derivatives)."""
        counts = self._dense(data)
        if counts is not None:
            return super().derivatives(theta, counts, aux)
        nll, c, dc, d2c, dens, w, nu = self._events(theta, data, aux, derivatives=True)
        n_rows, n_p, n_s = dc.shape
        ratio = np.where(nu > TINY, w / nu, 0.0)  # -d nll / d nu_i (the floored logarithm is flat)
        u_s = self.totals - (ratio[:, None, :] @ dens)[:, 0]  # d nll / d c_s, (R, S)
        q = (dens * (ratio / nu)[:, :, None]).transpose(0, 2, 1) @ dens  # (R, S, S)
        grad = (dc @ u_s[:, :, None])[:, :, 0]
        hess = dc @ q @ dc.transpose(0, 2, 1)
        hess += (d2c.reshape(n_rows, n_p * n_p, n_s) @ u_s[:, :, None]).reshape(n_rows, n_p, n_p)
        return nll, *self._constrain(theta, aux, grad, hess)


def _rate_basis(base: BinnedModel, names: list[str]) -> np.ndarray:
    """The histosys bases of ``base`` relative to their samples' yields (H, 4); refuses shape-changing ones."""
    out = np.zeros((base.hist_sample.size, 4))
    for j, s in enumerate(base.hist_sample):
        nom, basis = base.nominal[s], base.hist_basis[j]
        ref = int(np.argmax(nom))
        out[j] = basis[:, ref] / nom[ref] if nom[ref] > 0 else 0.0
        if not np.allclose(basis, out[j][:, None] * nom[None], rtol=RATE_RTOL, atol=RATE_RTOL * max(nom[ref], 1e-300)):
            name = base.alpha_names[base.hist_alpha[j]]
            raise InvalidWorkspace(
                f"histosys {name!r} of sample {names[s]!r} changes the sample's shape; the unbinned likelihood "
                "supports rate-only histosys (hi_data and lo_data proportional to data)",
                field="channels[0].samples",
            )
    return out


def build_unbinned_model(
    workspace: dict[str, Any], patch: dict[str, Any], templates: UnbinnedTemplates
) -> UnbinnedModel:
    """The unbinned model of one mass: the workspace's parameters and normalisations, the templates' densities.

    Each background sample's expected count is its total in the workspace, its density the fine template of the
    same name; the signal sample's (the one carrying the POI) the patch's total and the fine template of the
    patch's mass (``metadata.values[0]`` [GeV]).

    Raises:
        InvalidWorkspace: more than one channel, a shape-changing histosys, or an observed event in a fine bin
            where every sample's density is zero.
        InvalidData: a sample or mass missing from ``templates``.
    """
    spec = without_staterror(jsonpatch.apply_patch(workspace, patch["patch"]))
    if len(spec["channels"]) != 1:
        raise InvalidWorkspace("the unbinned likelihood needs a workspace with one channel", field="channels")
    base = build_model(spec, None)
    names = [s["name"] for s in spec["channels"][0]["samples"]]
    mass = float(patch["metadata"]["values"][0])
    shapes = np.array(
        [templates.signal_shape(mass) if base.signal_mask[i] else templates.shape_of(n) for i, n in enumerate(names)]
    )
    fine = shapes * base.nominal.sum(axis=1)[:, None]
    keep = fine.sum(axis=0) > 0
    empty = ~keep[templates.observed_bins]
    if empty.any():
        k = int(templates.observed_bins[np.argmax(empty)])
        n2 = templates.log10_cs2_edges.size - 1
        raise InvalidWorkspace(
            f"an observed event lies in fine bin (cs1 {k // n2}, log10_cs2 {k % n2}) where every template is zero "
            "(increase likelihood.unbinned.smoothing_bins)",
            field="likelihood.unbinned",
        )
    fine_bins = np.flatnonzero(keep)
    position = np.full(keep.size, -1)
    position[fine_bins] = np.arange(fine_bins.size)
    obs_bins, obs_counts = np.unique(position[templates.observed_bins], return_counts=True)
    fields = {f.name: getattr(base, f.name) for f in dataclasses.fields(BinnedModel)}
    n_s = fine.shape[0]
    fields.update(
        nominal=fine[:, keep],
        hist_sample=np.zeros(0, int),
        hist_alpha=np.zeros(0, int),
        hist_basis=np.zeros((0, 4, fine_bins.size)),
        stat_mask=np.zeros((n_s, fine_bins.size)),
        gamma_bins=np.zeros(0, int),
        gamma_sigma=np.zeros(0),
        gamma_names=(),
        observed=np.stack([obs_bins.astype(float), obs_counts.astype(float)]),
    )
    return UnbinnedModel(
        **fields,
        fine_bins=fine_bins,
        rate_sample=base.hist_sample.copy(),
        rate_alpha=base.hist_alpha.copy(),
        rate_basis=_rate_basis(base, names),
    )
