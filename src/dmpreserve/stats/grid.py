"""Samples interpolated bilinearly on a grid of two nuisance parameters (a template release's own morphing).

A template release such as XENONnT's 2026 light-DM release gives some components on a grid of two
nuisance parameters (t_ly, t_qy in {-3, ..., 3}) and its likelihood (alea ``TemplateSource`` in a blueice
``BinnedLogLikelihood``) interpolates their expected counts per bin *linearly* between the anchors
(blueice's ``GridInterpolator``).  pyhf has no such modifier; :class:`GridTerms` lets the fast engine
(:class:`dmpreserve.stats.model.BinnedModel`) evaluate it exactly, with the same Gaussian constraints on the
two parameters.  Within a grid cell the counts are bilinear in the two parameters, so the second
derivative along either one is 0 and only the mixed one is not; across cell edges the first derivative
jumps (the Newton minimizer's step halving handles the kink).  Outside the grid the edge cell is extrapolated
linearly.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np

from dmpreserve.errors import InvalidWorkspace


@dataclasses.dataclass(frozen=True)
class SampleGrid:
    """One sample's expected counts on a grid of two parameters.

    Attributes:
        parameters: The two parameter names (first and second grid axis), e.g. ``("t_ly", "t_qy")``.
        axis: Anchor values of both parameters (strictly increasing), shape (n,).
        values: Expected counts per bin at the anchors [events], shape (n, n, bins of the channel).
    """

    parameters: tuple[str, str]
    axis: np.ndarray
    values: np.ndarray


@dataclasses.dataclass(frozen=True, eq=False)
class GridTerms:
    """The grid samples of a model: sample index (Q,), parameter indices into the alphas (Q, 2), the common
    anchor axis (n,), each sample's bins in the model (Q, C: the bins of its channel, padded to the largest
    channel), which of them are real (Q, C) and, per grid cell, the bilinear coefficients of those bins
    (Q, n - 1, n - 1, 4, C): v00, v10 - v00, v01 - v00 and the cross term v11 - v10 - v01 + v00 of the cell's
    corner counts (0 in padding)."""

    sample: np.ndarray
    alpha: np.ndarray
    axis: np.ndarray
    bins: np.ndarray
    valid: np.ndarray
    cells: np.ndarray

    def bins_of(self, q: int) -> np.ndarray:
        """The model's bins of grid sample ``q`` (C_q,)."""
        return self.bins[q][self.valid[q]]

    def scatter(self, m: np.ndarray, values: np.ndarray) -> None:
        """Write the grid samples' counts ``values`` (R, Q, C) into the model's yields ``m`` (R, S, B)."""
        if self.valid.all():
            m[:, self.sample[:, None], self.bins] = values
        else:
            sample = np.broadcast_to(self.sample[:, None], self.bins.shape)
            m[:, sample[self.valid], self.bins[self.valid]] = values[:, self.valid]

    def evaluate(self, alphas: np.ndarray, *, derivatives: bool = True) -> tuple[np.ndarray, ...]:
        """Counts (and derivatives) in the samples' bins at the rows' alphas (R, K).

        Returns:
            m (R, Q, C); with ``derivatives`` also dm/dt1, dm/dt2 and d2m/dt1dt2, each (R, Q, C).
        """
        ax = self.axis
        t = alphas[:, self.alpha]  # (R, Q, 2)
        cell = np.clip(np.searchsorted(ax, t, side="right") - 1, 0, ax.size - 2)  # (R, Q, 2)
        width = ax[cell + 1] - ax[cell]
        u = (t - ax[cell]) / width  # linear extrapolation beyond the edge cells
        q = np.arange(self.sample.size)[None, :]
        k = self.cells[q, cell[..., 0], cell[..., 1]]  # (R, Q, 4, C)
        v00, d10, d01, cross = k[:, :, 0], k[:, :, 1], k[:, :, 2], k[:, :, 3]
        u1, u2 = u[..., 0, None], u[..., 1, None]
        m = v00 + u1 * d10 + u2 * (d01 + u1 * cross)
        if not derivatives:
            return (m,)
        d1 = (d10 + u2 * cross) / width[..., 0, None]
        d2 = (d01 + u1 * cross) / width[..., 1, None]
        d12 = cross / (width[..., 0, None] * width[..., 1, None])
        return m, d1, d2, d12


def grid_terms(
    rows: list[tuple[str, dict]],
    offsets: Mapping[str, int],
    n_bins: int,
    grids: Mapping[tuple[str, str], SampleGrid],
    alpha_index: Mapping[str, int],
) -> GridTerms | None:
    """The :class:`GridTerms` of the model's (channel, sample) rows that ``grids`` names.

    Raises:
        InvalidWorkspace: grids on different axes, a grid whose shape does not fit its channel, or a grid
            naming a (channel, sample) the model does not have.
    """
    if not grids:
        return None
    known = {(ch, s["name"]) for ch, s in rows}
    missing = sorted(set(grids) - known)
    if missing:
        raise InvalidWorkspace(f"grid for a sample the model does not have: {missing[0]}", field="grids")
    axis = next(iter(grids.values())).axis
    sample, alpha, sizes, bins, cells = [], [], [], [], []
    width = max(len(s["data"]) for ch, s in rows if (ch, s["name"]) in grids)
    for i, (ch, s) in enumerate(rows):
        g = grids.get((ch, s["name"]))
        if g is None:
            continue
        n = len(s["data"])
        if g.axis.shape != axis.shape or not np.allclose(g.axis, axis) or g.values.shape != (axis.size, axis.size, n):
            raise InvalidWorkspace(f"grid of {ch}/{s['name']} does not fit (axis or shape)", field="grids")
        v = np.asarray(g.values, float)
        v00, v10, v01, v11 = v[:-1, :-1], v[1:, :-1], v[:-1, 1:], v[1:, 1:]
        sample.append(i)
        sizes.append(n)
        alpha.append([alpha_index[p] for p in g.parameters])
        bins.append(offsets[ch] + np.minimum(np.arange(width), n - 1))  # padding repeats the last bin
        coef = np.zeros((axis.size - 1, axis.size - 1, 4, width))
        coef[..., :n] = np.stack([v00, v10 - v00, v01 - v00, v11 - v10 - v01 + v00], axis=2)
        cells.append(coef)
    return GridTerms(
        sample=np.array(sample, int),
        alpha=np.array(alpha, int).reshape(-1, 2),
        axis=np.asarray(axis, float),
        bins=np.array(bins, int),
        valid=np.arange(width)[None, :] < np.array(sizes)[:, None],
        cells=np.array(cells),
    )
