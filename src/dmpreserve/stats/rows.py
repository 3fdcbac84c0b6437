"""The binned model as weighted sums of fixed yield rows, and its bin sums as products over pairs of rows.

Without grid samples every expected count of :class:`dmpreserve.stats.model.BinnedModel` is a weighted sum of
fixed rows: the nominal yields of the S samples (weights c_s, the normfactor and normsys factors) and the four
code4p basis rows of each histosys term h of sample s (weights c_s coef_hk(alpha_h), pyhf's code4p;
:func:`histosys_weights`).  With the staterror gammas the rows split into A (multiplied by the bin's gamma) and R
(not):

    nu_b = sum_e W_e(theta) (gamma_b A_eb + R_eb).

Every bin sum that the gradient and the exact Hessian of the profiled NLL need is then a product of per-bin
weights with sums over pairs of rows computed once per model (:attr:`FixedRows.pairs`): e.g.
sum_b w_b (d nu_b / d theta) (d nu_b / d theta)^T = dW Q dW^T with Q_ef = sum_b w_b N'_eb N'_fb
(N' = gamma A + R); the cost per batch row is O(B E^2) in BLAS instead of O(B E P) elementwise operations.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from dmpreserve.stats.interpolation import code4p


@dataclasses.dataclass(frozen=True, eq=False)
class FixedRows:
    """The fixed yield rows of a model, split into A (multiplied by a staterror gamma) and R (not).

    Attributes:
        a_rows, r_rows: (E, B) [events]; E = S samples + 4 per histosys term.
    """

    a_rows: np.ndarray
    r_rows: np.ndarray

    @classmethod
    def of(cls, nominal: np.ndarray, hist_basis: np.ndarray, hist_sample: np.ndarray, stat_mask: np.ndarray):
        """The rows of nominal yields (S, B) and code4p bases (H, 4, B) of the samples ``hist_sample`` (H,);
        ``stat_mask`` (S, B): 1 where the sample's yield is multiplied by a free gamma."""
        rows = np.concatenate([nominal, hist_basis.reshape(-1, nominal.shape[1])])
        mask = stat_mask[np.concatenate([np.arange(nominal.shape[0]), np.repeat(hist_sample, 4)])]
        return cls(rows * mask, rows * (1.0 - mask))

    @functools.cached_property
    def pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(B, E(E+1)/2) products A_eb A_fb, A_eb R_fb + R_eb A_fb and R_eb R_fb for e <= f (the sums over bins are
        symmetric in e, f: half the matrix products)."""
        a_n, r_n = self.a_rows, self.r_rows
        e, f = np.triu_indices(a_n.shape[0])
        return (a_n[e] * a_n[f]).T.copy(), (a_n[e] * r_n[f] + r_n[e] * a_n[f]).T.copy(), (r_n[e] * r_n[f]).T.copy()

    def _square(self, upper: np.ndarray) -> np.ndarray:
        """(R, E, E) symmetric matrices from their upper triangles (R, E(E+1)/2)."""
        n_e = self.a_rows.shape[0]
        e, f = np.triu_indices(n_e)
        out = np.empty((upper.shape[0], n_e, n_e))
        out[:, e, f] = upper
        out[:, f, e] = upper
        return out

    def derivatives(self, dw, d2w, a_part, big, h_inv, u, w) -> tuple[np.ndarray, np.ndarray]:
        """Gradient (R, P) and Hessian (R, P, P) of the profiled NLL without the alphas' constraint terms.

        Args:
            dw, d2w: Derivatives of the rows' weights (R, P, E), (R, P, P, E).
            a_part: A per bin (R, B); big: each bin's gamma (R, B; 1 without one).
            h_inv: 1 / (d2 nll / d gamma_b^2) of the free gammas inside their bounds, else 0 (R, B); None: no gammas.
            u, w: d nll / d nu_b and d2 nll / d nu_b^2 (R, B).

        The gammas' Schur term uses K_eb = alpha_b A_eb + beta_b R_eb (alpha = w A gamma + u, beta = w A;
        d2 nll / d theta d gamma_b = dW K_b).
        """
        n_rows, n_p, n_e = dw.shape
        a_n, r_n = self.a_rows, self.r_rows
        aa, ar, rr = self.pairs
        if h_inv is not None:
            u_e = (u * big) @ a_n.T + u @ r_n.T  # d nll / d W_e, (R, E)
            al, be = w * a_part * big + u, w * a_part
            q = (w * big * big - h_inv * al * al) @ aa + (w * big - h_inv * al * be) @ ar + (w - h_inv * be * be) @ rr
        else:  # A = 0: the yields are all R
            u_e = u @ r_n.T
            q = w @ rr
        q = self._square(q)
        grad = (dw @ u_e[:, :, None])[:, :, 0]
        hess = dw @ q @ dw.transpose(0, 2, 1)
        hess += (d2w.reshape(n_rows, n_p * n_p, n_e) @ u_e[:, :, None]).reshape(n_rows, n_p, n_p)
        return grad, hess


def histosys_weights(
    c: np.ndarray,
    dc: np.ndarray | None,
    d2c: np.ndarray | None,
    alpha: np.ndarray,
    sample: np.ndarray,
    param: np.ndarray,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Weights of the fixed yield rows [nominal (S), code4p basis (4 per histosys term)] and their derivatives.

    A sample's yields with code4p histosys terms h are ``c_s (N_s + sum_h sum_k coef_hk(alpha_h) basis_hk)``
    (:func:`~dmpreserve.stats.interpolation.code4p`, :func:`~dmpreserve.stats.interpolation.code4p_basis`): a sum
    of fixed rows with the weights ``c_s`` and ``c_s coef_hk(alpha_h)``.

    Args:
        c, dc, d2c: Per-sample scale factors (R, S) and their derivatives (R, P, S), (R, P, P, S) (None: values only).
        alpha: Each term's alpha per row (R, H); sample: its sample (H,); param: its parameter index in theta (H,).

    Returns:
        W (R, S + 4H), dW (R, P, S + 4H) and d2W (R, P, P, S + 4H) (the last two None without ``dc``).
    """
    n_rows, n_h = alpha.shape
    value, d1, d2 = code4p(alpha)  # (R, H, 4)
    c_h = c[:, sample]  # (R, H)
    weights = np.concatenate([c, (c_h[:, :, None] * value).reshape(n_rows, 4 * n_h)], axis=1)
    if dc is None or d2c is None:
        return weights, None, None
    n_p = dc.shape[1]
    dc_h = dc[:, :, sample]  # (R, P, H)
    dw = dc_h[..., None] * value[:, None]  # (R, P, H, 4): d c_s / d theta_p coef
    d2w = d2c[:, :, :, sample][..., None] * value[:, None, None]  # (R, P, P, H, 4)
    for h in range(n_h):  # few terms
        p = param[h]
        dw[:, p, h] += c_h[:, h, None] * d1[:, h]
        cross = dc_h[:, :, h, None] * d1[:, None, h]  # (R, P, 4): d c_s / d theta_q  d coef / d alpha
        d2w[:, :, p, h] += cross
        d2w[:, p, :, h] += cross
        d2w[:, p, p, h] += c_h[:, h, None] * d2[:, h]
    return (
        weights,
        np.concatenate([dc, dw.reshape(n_rows, n_p, 4 * n_h)], axis=2),
        np.concatenate([d2c, d2w.reshape(n_rows, n_p, n_p, 4 * n_h)], axis=3),
    )
