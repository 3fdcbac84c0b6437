"""Batched, bounded, damped Newton minimization of :class:`dmpreserve.stats.model.BinnedModel` NLLs.

Every row (dataset, auxiliary data, start point) is minimized independently but in the same numpy
operations.  The Hessian is made positive definite by taking the absolute values of its eigenvalues
(saddle-free Newton), steps are halved until the NLL decreases, and parameters at a bound whose
gradient points outwards are held there (active set).  Staterror gammas are not parameters here: the
model profiles them analytically inside every NLL evaluation (:mod:`dmpreserve.stats.model`).
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np

from dmpreserve.stats.model import BinnedModel

LOG = logging.getLogger("dmpreserve")
#: Rows per numpy batch (bounds memory: about rows x samples x bins x 8 bytes per temporary).
CHUNK_ROWS = 256


@dataclasses.dataclass(frozen=True, eq=False)
class NewtonMinimum:
    """Minimization results per row.

    Attributes:
        theta: Best-fit parameters, shape (R, P).
        nll: NLL at the minimum (without data-only constants), shape (R,).
        converged: Whether the row met the tolerance, shape (R,).
    """

    theta: np.ndarray
    nll: np.ndarray
    converged: np.ndarray


def minimize(
    model: BinnedModel,
    data: np.ndarray,
    aux: np.ndarray,
    init: np.ndarray,
    *,
    fix_poi: bool,
    max_iter: int = 60,
    tol: float = 1e-9,
) -> NewtonMinimum:
    """Minimize the NLL for every row.

    Args:
        model: The model.
        data: Main-measurement counts, shape (R, B) (or (B,), broadcast); an unbinned model's encoding
            (:meth:`dmpreserve.stats.unbinned.UnbinnedModel.broadcast_data`).
        aux: Auxiliary data of the constraints (alphas, then staterror gammas), shape (R, K + G) (or (K + G,)).
        init: Start points, shape (R, P); with ``fix_poi`` the POI stays at ``init[:, 0]``.
        fix_poi: Conditional fit (POI fixed) instead of a free fit.
        max_iter: Newton iterations at most.
        tol: Convergence when the predicted NLL decrease is below ``tol``.

    Returns:
        The fit results (rows in input order).
    """
    init = np.atleast_2d(np.asarray(init, float))
    n_rows = init.shape[0]
    data = model.broadcast_data(data, n_rows)
    aux = np.broadcast_to(np.asarray(aux, float), (n_rows, model.n_aux))
    if n_rows == 0:
        return NewtonMinimum(theta=init.reshape(0, model.n_params), nll=np.zeros(0), converged=np.zeros(0, bool))
    parts = [
        _minimize_chunk(
            model,
            data[i : i + CHUNK_ROWS],
            aux[i : i + CHUNK_ROWS],
            init[i : i + CHUNK_ROWS],
            fix_poi=fix_poi,
            max_iter=max_iter,
            tol=tol,
        )
        for i in range(0, n_rows, CHUNK_ROWS)
    ]
    result = NewtonMinimum(
        theta=np.concatenate([p.theta for p in parts]),
        nll=np.concatenate([p.nll for p in parts]),
        converged=np.concatenate([p.converged for p in parts]),
    )
    if not result.converged.all():
        LOG.warning(
            "%d of %d fits did not converge in %d Newton iterations", int(np.sum(~result.converged)), n_rows, max_iter
        )
    return result


def _minimize_chunk(
    model: BinnedModel,
    data: np.ndarray,
    aux: np.ndarray,
    init: np.ndarray,
    *,
    fix_poi: bool,
    max_iter: int,
    tol: float,
    restarts: int = 2,
) -> NewtonMinimum:
    """Newton iterations on one chunk of rows; then, for a model with grid samples, up to ``restarts`` rounds of
    :func:`_beyond_concave_kinks`: a row whose NLL falls beyond an anchor next to its minimum is minimized again
    from there, and the lower of the two minima is kept (the next round probes only the rows that moved)."""
    fit = _newton(model, data, aux, init, fix_poi=fix_poi, max_iter=max_iter, tol=tol)
    kinks = _kinks(model)
    check = np.arange(init.shape[0])  # rows whose minimum has not been probed yet
    for _ in range(restarts if kinks is not None else 0):
        found, starts = _beyond_concave_kinks(model, fit.theta[check], data[check], aux[check], kinks)
        rows = check[found]
        if rows.size == 0:
            break
        other = _newton(model, data[rows], aux[rows], starts, fix_poi=fix_poi, max_iter=max_iter, tol=tol)
        lower = other.converged & (other.nll < fit.nll[rows] - 1e-12 * np.abs(fit.nll[rows]))
        # a row may have several starts (one per grid parameter and side): keep its lowest minimum
        order = np.lexsort((np.where(lower, other.nll, np.inf), rows))
        first = order[np.r_[True, rows[order][1:] != rows[order][:-1]]]
        take = first[lower[first]]
        if take.size == 0:
            break
        fit.theta[rows[take]] = other.theta[take]
        fit.nll[rows[take]] = other.nll[take]
        fit.converged[rows[take]] = True
        check = rows[take]
    return fit


def _newton(
    model: BinnedModel, data: np.ndarray, aux: np.ndarray, init: np.ndarray, *, fix_poi: bool, max_iter: int, tol: float
) -> NewtonMinimum:
    lower, upper = model.lower, model.upper
    kinks = _kinks(model)
    theta = np.clip(init.copy(), lower, upper)
    n_rows, n_par = theta.shape
    active_rows = np.ones(n_rows, bool)
    converged = np.zeros(n_rows, bool)
    nll = model.nll(theta, data, aux)
    for _ in range(max_iter):
        rows = np.flatnonzero(active_rows)
        if rows.size == 0:
            break
        th = theta[rows]
        f0, grad, hess = model.derivatives(th, data[rows], aux[rows])
        free = np.ones((rows.size, n_par), bool)
        if fix_poi:
            free[:, 0] = False
        if kinks is not None:
            held, side, snapped = _one_sided(model, th, data[rows], aux[rows], grad, hess, kinks)
            free &= ~held
        free &= ~(((th <= lower) & (grad > 0)) | ((th >= upper) & (grad < 0)))
        grad = np.where(free, grad, 0.0)
        mask2 = free[:, :, None] & free[:, None, :]
        hess = np.where(mask2, hess, 0.0) + np.where(~free, 1.0, 0.0)[:, :, None] * np.eye(n_par)
        evals, evecs = np.linalg.eigh(hess)
        evals = np.maximum(np.abs(evals), 1e-8)
        step = -np.einsum("rij,rj->ri", evecs, np.einsum("rji,rj->ri", evecs, grad) / evals)
        step = np.where(free, step, 0.0)
        lo, hi = lower, upper
        if kinks is not None:  # stay in the cell whose derivatives were used, stop on the next anchor
            k = kinks[0]
            step[:, k] = np.where(
                side < 0, np.minimum(step[:, k], 0.0), np.where(side > 0, np.maximum(step[:, k], 0.0), step[:, k])
            )
            lo, hi = _cell_limits(snapped, step[:, k], lower, upper, kinks)
        predicted = -np.einsum("ri,ri->r", grad, step)  # > 0
        scale = np.ones(rows.size)
        new = np.clip(th + step, lo, hi)
        f_new = model.nll(new, data[rows], aux[rows])
        _halve(model, th, step, f0, data[rows], aux[rows], new, f_new, scale, lo, hi)
        bad = ~(f_new <= f0 + 1e-12 * np.abs(f0))
        new[bad], f_new[bad] = th[bad], f0[bad]
        theta[rows], nll[rows] = new, f_new
        done = (predicted < tol) | ((f0 - f_new) < 0.1 * tol) & (scale < 1) | bad
        done |= np.max(np.abs(step), axis=1) < 1e-10
        converged[rows[done]] = True
        active_rows[rows[done]] = False
    return NewtonMinimum(theta=theta, nll=nll, converged=converged)


def _halve(model, th, step, f0, data, aux, new, f_new, scale, lower, upper, *, halvings=30, batch=6) -> None:
    """Backtracking: for every row whose full step raised the NLL, the largest step 2^-j x step (j = 1 ... halvings)
    that does not, clipped to ``lower``/``upper`` ((P,) or per row (R, P)); ``new``, ``f_new`` and ``scale`` are
    updated in place (a row that finds none keeps j = halvings).

    The same result as halving one step at a time, but ``batch`` halvings of all the rows still searching are
    evaluated in one call of the NLL (rows stuck at a kink of a grid sample can need 20 halvings).
    """
    lower, upper = np.broadcast_to(lower, th.shape), np.broadcast_to(upper, th.shape)
    for first in range(1, halvings + 1, batch):
        bad = np.flatnonzero(~(f_new <= f0 + 1e-12 * np.abs(f0)))
        if bad.size == 0:
            return
        js = np.arange(first, min(first + batch, halvings + 1))
        trial_scale = 0.5**js  # (J,)
        trial = np.clip(  # (N, J, P)
            th[bad, None] + trial_scale[None, :, None] * step[bad, None], lower[bad, None], upper[bad, None]
        )
        n_bad, n_j = bad.size, js.size
        f = model.nll(
            trial.reshape(n_bad * n_j, -1), np.repeat(data[bad], n_j, axis=0), np.repeat(aux[bad], n_j, axis=0)
        ).reshape(n_bad, n_j)
        ok = f <= (f0[bad] + 1e-12 * np.abs(f0[bad]))[:, None]
        pick = np.where(ok.any(axis=1), np.argmax(ok, axis=1), n_j - 1)
        rows = np.arange(n_bad)
        new[bad] = trial[rows, pick]
        f_new[bad] = f[rows, pick]
        scale[bad] = trial_scale[pick]


#: A grid parameter this close to an interior anchor is on it (the anchors are O(1)).
KINK_ATOL = 1e-10
#: How far beside an anchor the derivatives of the cell on either side are taken.
KINK_NUDGE = 1e-9


def _kinks(model: BinnedModel) -> tuple[np.ndarray, np.ndarray] | None:
    """(parameter indices, interior anchors) of the model's grid samples (:mod:`dmpreserve.stats.grid`), whose
    counts have kinks at the interior anchors; None for a model without grid samples."""
    grid = getattr(model, "grid", None)
    if grid is None or grid.axis.size < 3:
        return None
    return np.unique(grid.alpha) + model.n_factors, grid.axis[1:-1]


def _one_sided(model, th, data, aux, grad, hess, kinks) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One-sided derivatives at kinks.

    The model's derivatives at an anchor are those of the cell on its right.  For rows with a grid parameter on
    an interior anchor (within ``KINK_ATOL``) the cell on the left is evaluated too: a parameter whose NLL rises
    on both sides is held there for this iteration (like a parameter at a bound); one whose NLL falls to the left
    moves left, and ``grad``/``hess`` are replaced (in place) by those of the cell the row moves into.  Without
    this, a minimum on an anchor is approached by ever shorter steps (dozens of iterations).

    Returns:
        held (R, P); side (R, Q) of each grid parameter: -1 moves left, +1 moves right from its anchor, 0 held
        or inside a cell; the grid parameters with those on an anchor set exactly to it (R, Q).
    """
    idx, anchors = kinks
    t = th[:, idx]
    nearest = anchors[np.argmin(np.abs(t[..., None] - anchors), axis=-1)]
    at = np.abs(t - nearest) <= KINK_ATOL
    snapped = np.where(at, nearest, t)
    held = np.zeros(th.shape, bool)
    side = np.zeros(t.shape, int)
    rows = np.flatnonzero(at.any(axis=1))
    if rows.size == 0:
        return held, side, snapped
    a = at[rows]
    left = th[rows].copy()
    left[:, idx] = np.where(a, nearest[rows] - KINK_NUDGE, left[:, idx])
    _, grad_left, hess_left = model.derivatives(left, data[rows], aux[rows])
    g_left, g_right = grad_left[:, idx], grad[rows][:, idx]
    minimum = a & (g_right >= 0) & (g_left <= 0)
    go_left = a & ~minimum & (g_left > 0) & ((g_right >= 0) | (g_left > -g_right))  # the steeper side at a maximum
    held_rows = np.zeros((rows.size, th.shape[1]), bool)
    held_rows[:, idx] = minimum
    held[rows] = held_rows
    moving = a & ~minimum
    side[rows] = np.where(go_left, -1, np.where(moving, 1, 0))
    # the derivatives of the quadrant the row moves into (a held parameter's side does not matter: the
    # derivatives with respect to the others are continuous across its anchor): those at th where each moving
    # parameter already sits on its side (the model takes an anchor's right cell), else the left evaluation's
    # where all move left, else a new evaluation
    as_now = np.all(~moving | (go_left == (t[rows] < nearest[rows])), axis=1)
    as_left = ~as_now & np.all(~moving | go_left, axis=1)
    grad[rows[as_left]], hess[rows[as_left]] = grad_left[as_left], hess_left[as_left]
    need = ~as_now & ~as_left
    if need.any():
        sub = rows[need]
        point = th[sub].copy()
        point[:, idx] = np.where(
            a[need], np.where(go_left[need], nearest[sub] - KINK_NUDGE, nearest[sub] + KINK_NUDGE), point[:, idx]
        )
        _, grad[sub], hess[sub] = model.derivatives(point, data[sub], aux[sub])
    return held, side, snapped


#: How far beyond an anchor the NLL is probed for a concave kink (the anchors are 1 apart).
KINK_PROBE = 1e-3
#: Only anchors this close to a minimum are probed: on the release's toys every lower minimum found by probing
#: both anchors of the cell was also found within this reach, with about a quarter of the probes.
KINK_REACH = 0.25


def _beyond_concave_kinks(model, theta, data, aux, kinks) -> tuple[np.ndarray, np.ndarray]:
    """Rows whose NLL falls on the far side of an anchor next to their minimum, and start points there.

    Inside a cell of the bilinear grid the expected counts are linear in each grid parameter, so the NLL along
    one of them is convex there and has at most one minimum per cell; but at an anchor where the counts bend the
    other way the NLL can have a *concave* kink, with a second, possibly lower, minimum in the next cell that a
    descent method started on the near side never sees.  For each grid parameter and each interior anchor
    bounding its cell within ``KINK_REACH`` of the minimum (the other parameters at the minimum), the NLL at the
    anchor and ``KINK_PROBE`` beyond it are compared; where it falls, the point beyond is a new start.  (Measured
    on 12,000 fits of release toys at 3, 6 and 10 GeV: 1.8% of them found a lower minimum this way, by up to
    0.03 in -ln L; L-BFGS-B on the same likelihood misses them too.)

    Returns:
        (row indices (N,), start points (N, P)): one entry per row, grid parameter and side that needs one.
    """
    idx, anchors = kinks
    rows, starts, anchor_pts = [], [], []
    for p in idx:
        t = theta[:, p]
        near = np.abs(t[:, None] - anchors[None]) <= KINK_ATOL
        for side in (1.0, -1.0):
            beyond = anchors[None] * side > t[:, None] * side
            cand = beyond & ~near
            has = cand.any(axis=1)
            # the first interior anchor strictly beyond t on this side
            pos = np.where(side > 0, np.argmax(cand, axis=1), cand.shape[1] - 1 - np.argmax(cand[:, ::-1], axis=1))
            a = anchors[pos]
            ok = has & (np.abs(a - t) <= KINK_REACH)
            ok &= (a + side * KINK_PROBE >= model.lower[p]) & (a + side * KINK_PROBE <= model.upper[p])
            r = np.flatnonzero(ok)
            at, past = theta[r].copy(), theta[r].copy()
            at[:, p], past[:, p] = a[r], a[r] + side * KINK_PROBE
            rows.append(r)
            anchor_pts.append(at)
            starts.append(past)
    rows = np.concatenate(rows)
    if rows.size == 0:
        return rows, np.zeros((0, theta.shape[1]))
    at, past = np.concatenate(anchor_pts), np.concatenate(starts)
    f = model.nll(np.concatenate([at, past]), np.tile(data[rows], (2, 1)), np.tile(aux[rows], (2, 1)))
    f_at, f_past = f[: rows.size], f[rows.size :]
    falls = f_past < f_at - 1e-12 * np.abs(f_at)
    return rows[falls], past[falls]


def _cell_limits(t, step, lower, upper, kinks) -> tuple[np.ndarray, np.ndarray]:
    """Per-row bounds (R, P) of a step: the parameters' bounds, and for the grid parameters at ``t`` (R, Q) the
    next interior anchor in the direction of their ``step`` (R, Q): a step stops on a kink, and the next
    iteration sees the derivatives beyond it."""
    idx, anchors = kinks
    lo = np.repeat(lower[None], t.shape[0], axis=0)
    hi = np.repeat(upper[None], t.shape[0], axis=0)
    ext = np.concatenate([[-np.inf], anchors, [np.inf]])
    above = ext[np.searchsorted(anchors, t, side="right") + 1]
    below = ext[np.searchsorted(anchors, t, side="left")]
    hi[:, idx] = np.where(step > 0, np.minimum(hi[:, idx], above), hi[:, idx])
    lo[:, idx] = np.where(step < 0, np.maximum(lo[:, idx], below), lo[:, idx])
    return lo, hi
