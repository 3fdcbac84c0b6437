"""The binned-Poisson model of :func:`dmpreserve.stats.model.build_model`: expected counts, NLL, derivatives.

Staterror gammas are **profiled analytically**, not fitted: for fixed other parameters theta each
bin's NLL ``gamma A_b + R_b - n_b ln(gamma A_b + R_b) + (gamma - a_b)^2 / (2 sigma_b^2)`` (A: the yields
gamma multiplies, R: the rest) is convex in gamma and its minimum is the root of a quadratic
(:func:`dmpreserve.stats.interpolation.profile_gamma`).  The Newton iteration therefore only sees the
few parameters theta: the gradient of the profiled NLL is the partial derivative at gamma_hat
(envelope theorem) and its Hessian is the Schur complement H_tt - sum_b H_tb H_bt / H_bb (the gamma
block is diagonal), exact for the profiled function.  The cost per row is O(P^2 B), as without
staterror, instead of O((P + B)^3) for a dense Newton step over P + B parameters, and no iteration
is spent on hundreds of gammas; the minimum is the same as pyhf's joint fit.  Gammas at their bounds
(1e-10, 10) are held there (no Schur term).

The negative log-likelihood and its derivatives are computed for a *batch* of rows (each row: a
dataset, auxiliary data and parameter point); :func:`dmpreserve.stats.newton.minimize` runs a
bounded, damped Newton iteration on all rows at once.  Up to constants (ln n!, the Gaussian
normalisations ln(sigma sqrt(2 pi)) and the constraint terms of pyhf's fixed gammas, which do not
depend on the parameters) ``2 nll`` is pyhf's ``-2 logpdf``.

Parameter vector per row: ``theta = [mu, nf_1.., alpha_1..]`` (POI, the other normfactors in sorted
name order, then the normsys/histosys alphas in sorted name order; :attr:`BinnedModel.param_names`).
Auxiliary data per row: ``[alpha aux (K), gamma aux (G)]`` (observed: 0 and 1).  A *full* parameter
vector appends the G gammas (toys are generated at one).
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from dmpreserve.stats.grid import GridTerms
from dmpreserve.stats.interpolation import code4, code4p, profile_gamma
from dmpreserve.stats.rows import FixedRows, histosys_weights

#: Floor of the expected counts per bin (an empty bin with data has likelihood zero).
TINY = 1e-300
#: Most fixed yield rows E (samples + 4 per histosys term) for which the bin sums are taken as products with
#: precomputed sums over pairs of rows (cost per batch row ~ B E^2 / 2, in BLAS); a histosys model with more builds
#: its yields per batch row (~ B E P).  Measured on the default workspace (440 bins) with added histosys terms, 256
#: rows, derivatives with rows vs per row: 11 vs 23 ms at E = 10, 29 vs 38 ms at E = 34, 42 vs 47 ms at E = 42,
#: 59 vs 55 ms at E = 50; the NLL alone is cheaper with rows at every E (4.2 vs 8.6 ms at E = 50).
MAX_ROWS = 48


def _basis_product(coef: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """sum_k coef[r, h, k] basis[h, k, b] -> (R, H, B), as one batched matrix product (numpy's einsum does not
    use BLAS here and was 2-4x slower)."""
    return np.matmul(coef.transpose(1, 0, 2), basis).transpose(1, 0, 2)


@dataclasses.dataclass(frozen=True, eq=False)
class BinnedModel:
    """Expected counts ``nu_b = sum_s G_sb c_s(theta) (N_sb + sum_h Delta_hb(alpha))`` and the constrained NLL.

    ``c_s`` is the product of the sample's normfactors and code4 normsys factors, ``Delta_h`` the
    code4p histosys deltas of the sample, ``G_sb`` the bin's staterror gamma for samples carrying it.

    Attributes:
        nominal: Nominal sample yields, shape (S, B) [events].
        signal_mask: Which samples carry the POI, shape (S,).
        factor_names: Normfactor names, POI first (F,); factor_incidence (S, F) 0/1.
        alpha_names: normsys/histosys parameter names (K,), constraint N(0, 1) each.
        term_sample, term_alpha, term_coef, term_log_hi, term_log_lo: normsys terms (T,), code4.
        hist_sample, hist_alpha: histosys terms (H,); hist_basis: code4p basis (H, 4, B).
        stat_mask: (S, B) 1 where the sample's yield is multiplied by a free gamma.
        grid: Samples interpolated bilinearly on a grid of two alphas (:mod:`dmpreserve.stats.grid`), or None.
        gamma_bins: Bin of each free gamma (G,); gamma_sigma: its constraint width (G,);
            gamma_names: pyhf's names, e.g. ``staterror_ch[3]``.
        observed: Observed counts, shape (B,).
        lower, upper, init: Bounds and start values of theta (P,).
        max_rows: Most fixed yield rows for the pair-product bin sums (:attr:`_rows`, :data:`MAX_ROWS`).
    """

    nominal: np.ndarray
    signal_mask: np.ndarray
    factor_names: tuple[str, ...]
    factor_incidence: np.ndarray
    alpha_names: tuple[str, ...]
    term_sample: np.ndarray
    term_alpha: np.ndarray
    term_coef: np.ndarray
    term_log_hi: np.ndarray
    term_log_lo: np.ndarray
    hist_sample: np.ndarray
    hist_alpha: np.ndarray
    hist_basis: np.ndarray
    stat_mask: np.ndarray
    gamma_bins: np.ndarray
    gamma_sigma: np.ndarray
    gamma_names: tuple[str, ...]
    observed: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    init: np.ndarray
    grid: GridTerms | None = None
    max_rows: int = MAX_ROWS

    # ---- sizes and names
    @property
    def n_factors(self) -> int:
        """Number of normfactors F (the POI included)."""
        return len(self.factor_names)

    @property
    def n_params(self) -> int:
        """Number of fitted parameters P = F + K (gammas are profiled)."""
        return self.n_factors + len(self.alpha_names)

    @property
    def n_gammas(self) -> int:
        """Number of free staterror gammas G."""
        return int(self.gamma_bins.size)

    @property
    def n_aux(self) -> int:
        """Number of auxiliary data K + G."""
        return len(self.alpha_names) + self.n_gammas

    @property
    def n_bins(self) -> int:
        """Number of bins."""
        return int(self.nominal.shape[1])

    @property
    def param_names(self) -> tuple[str, ...]:
        """Names of theta: factor names, then alpha names."""
        return self.factor_names + self.alpha_names

    @property
    def poi_bounds(self) -> tuple[float, float]:
        """(low, high) bounds of the POI."""
        return float(self.lower[0]), float(self.upper[0])

    @functools.cached_property
    def aux_sigma(self) -> np.ndarray:
        """Widths of the auxiliary Gaussians (K + G,): 1 for alphas, sigma_b for gammas."""
        return np.concatenate([np.ones(len(self.alpha_names)), self.gamma_sigma])

    @functools.cached_property
    def nominal_aux(self) -> np.ndarray:
        """The observed auxiliary data (K + G,): 0 for alphas, 1 for gammas."""
        return np.concatenate([np.zeros(len(self.alpha_names)), np.ones(self.n_gammas)])

    def aux_expected(self, full: np.ndarray) -> np.ndarray:
        """Means of the auxiliary data at full parameters (R, P [+ G]): alphas and gammas (R, K + G)."""
        full = np.atleast_2d(full)
        return np.concatenate([full[:, self.n_factors : self.n_params], self._gammas_of(full)], axis=1)

    def start(self, aux: np.ndarray) -> np.ndarray:
        """Start points of fits (R, P): factors at their inits, alphas at their auxiliary data (clipped)."""
        aux = np.atleast_2d(aux)
        out = np.repeat(self.init[None], aux.shape[0], axis=0)
        out[:, self.n_factors :] = aux[:, : len(self.alpha_names)]
        return np.clip(out, self.lower, self.upper)

    # ---- datasets (the unbinned model, :mod:`dmpreserve.stats.unbinned`, encodes them differently)
    def broadcast_data(self, data: np.ndarray, n_rows: int) -> np.ndarray:
        """Main data of ``n_rows`` rows (R, B): ``data`` (R, B) or (B,) broadcast."""
        return np.broadcast_to(np.asarray(data, float), (n_rows, self.n_bins))

    def stack_data(self, rows: list[np.ndarray]) -> np.ndarray:
        """Several datasets (each (B,)) as one batch (N, B)."""
        return np.stack(rows)

    def as_data(self, counts: np.ndarray) -> np.ndarray:
        """Datasets (R, B) holding the (possibly non-integer) counts per bin ``counts`` (R, B): Asimov data."""
        return np.atleast_2d(counts)

    def poisson_data(self, nu: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` datasets (n, B) of Poisson counts with means ``nu`` (B,) (pyhf's sampling of the main data)."""
        return rng.poisson(nu, size=(n, nu.size)).astype(float)

    def _gammas_of(self, full: np.ndarray) -> np.ndarray:
        if full.shape[1] == self.n_params + self.n_gammas and self.n_gammas:
            return full[:, self.n_params :]
        return np.ones((full.shape[0], self.n_gammas))

    # ---- the model
    @functools.cached_property
    def _rows(self) -> FixedRows | None:
        """The expected counts as weighted sums of fixed yield rows (:mod:`dmpreserve.stats.rows`), or None for a
        model with grid samples, or with histosys and more than ``max_rows`` rows (the yields are then built per
        row of the batch, :meth:`_shapes`)."""
        n_rows = self.nominal.shape[0] + 4 * self.hist_sample.size
        if self.grid is not None or (self.hist_sample.size and n_rows > self.max_rows):
            return None
        return FixedRows.of(self.nominal, self.hist_basis, self.hist_sample, self.stat_mask)

    def _factors(self, theta: np.ndarray, *, derivatives: bool = True):
        """c (R, S), dc (R, P, S), d2c (R, P, P, S) of the per-sample scale factors (only c without ``derivatives``)."""
        n_rows, n_f = theta.shape[0], self.n_factors
        inc = self.factor_incidence  # (S, F)
        nf = theta[:, :n_f]
        per = np.where(inc[None] > 0, nf[:, None, :], 1.0)  # (R, S, F)
        value, dlog, d2log = code4(
            theta[:, n_f:][:, self.term_alpha], self.term_coef, self.term_log_hi, self.term_log_lo
        )
        n_s, n_k = self.nominal.shape[0], len(self.alpha_names)
        lp = np.zeros((n_rows, n_k, n_s))
        lpp = np.zeros((n_rows, n_k, n_s))
        log_i = np.zeros((n_rows, n_s))
        for t in range(self.term_sample.size):  # few terms; a Python loop keeps it readable
            s, k = self.term_sample[t], self.term_alpha[t]
            log_i[:, s] += np.log(value[:, t])
            lp[:, k, s] += dlog[:, t]
            lpp[:, k, s] += d2log[:, t]
        isys = np.exp(log_i)
        c = np.prod(per, axis=2) * isys
        if not derivatives:
            return c, None, None
        n_p = self.n_params
        dc = np.zeros((n_rows, n_p, n_s))
        d2c = np.zeros((n_rows, n_p, n_p, n_s))
        for f in range(n_f):
            others = np.prod(np.where(np.arange(n_f) == f, 1.0, per), axis=2)
            dnf = inc[:, f] * others * isys  # (R, S)
            dc[:, f] = dnf
            d2c[:, f, n_f:] = dnf[:, None, :] * lp
            d2c[:, n_f:, f] = d2c[:, f, n_f:]
            for g in range(f + 1, n_f):
                both = np.prod(np.where((np.arange(n_f) == f) | (np.arange(n_f) == g), 1.0, per), axis=2)
                d2c[:, f, g] = d2c[:, g, f] = inc[:, f] * inc[:, g] * both * isys
        dc[:, n_f:] = c[:, None, :] * lp
        d2c[:, n_f:, n_f:] = c[:, None, None, :] * lp[:, :, None, :] * lp[:, None, :, :]
        idx = np.arange(n_f, n_p)
        d2c[:, idx, idx] += c[:, None, :] * lpp
        return c, dc, d2c

    def _shapes(self, theta: np.ndarray, *, derivatives: bool = True):
        """Sample yields before scaling m (R, S, B) with histosys or grid samples (None without both), the code4p
        coefficients (None without histosys) and the grid samples' values and derivatives in their bins (None
        without; only the values unless ``derivatives``)."""
        if self.hist_sample.size == 0 and self.grid is None:
            return None, None, None
        m = np.repeat(self.nominal[None], theta.shape[0], axis=0)
        coef = grid = None
        if self.hist_sample.size:
            coef = code4p(theta[:, self.n_factors :][:, self.hist_alpha])
            delta = _basis_product(coef[0], self.hist_basis)
            for h, s in enumerate(self.hist_sample):  # each delta into its sample
                m[:, s] += delta[:, h]
        if self.grid is not None:
            grid = self.grid.evaluate(theta[:, self.n_factors :], derivatives=derivatives)
            self.grid.scatter(m, grid[0])
        return m, coef, grid

    def _parts(self, c: np.ndarray, m: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """A (yields multiplied by gamma) and R (the rest), each (R, B), from the weights of the fixed rows (R, E) or
        the sample scale factors (R, S) and yields ``m`` (R, S, B)."""
        if m is None:  # c: the weights of the fixed rows
            if not self.n_gammas:
                return np.zeros((c.shape[0], 1)), c @ self._rows.r_rows  # A = 0 broadcasts over the bins
            return c @ self._rows.a_rows, c @ self._rows.r_rows
        c_row = c[:, None, :]  # (R, 1, S) @ (R, S, B): the sums over samples as batched products
        a_part = (c_row @ (m * self.stat_mask))[:, 0]
        return a_part, (c_row @ m)[:, 0] - a_part

    def _yields(self, theta: np.ndarray, *, derivatives: bool = True):
        """Weights (R, S or E) with derivatives, yields m (R, S, B; None with fixed rows), code4p coefficients and
        grid terms (see :meth:`_shapes`; None with fixed rows), A and R (each (R, B))."""
        c, dc, d2c = self._factors(theta, derivatives=derivatives)
        if self._rows is not None:
            if self.hist_sample.size:
                alpha = theta[:, self.n_factors :][:, self.hist_alpha]
                c, dc, d2c = histosys_weights(c, dc, d2c, alpha, self.hist_sample, self.n_factors + self.hist_alpha)
            return c, dc, d2c, None, None, None, *self._parts(c, None)
        m, coef, grid = self._shapes(theta, derivatives=derivatives)
        return c, dc, d2c, m, coef, grid, *self._parts(c, m)

    def _profile(self, a_part, r_part, data, aux) -> tuple[np.ndarray, np.ndarray]:
        """Profiled gammas (R, G) at the gamma bins and whether each is inside its bounds."""
        gb = self.gamma_bins
        k = len(self.alpha_names)
        # np.take keeps rows contiguous (x[:, gb] is column-major: mixed layouts made profile_gamma 3x slower)
        a_g, r_g, n_g = (np.take(x, gb, axis=1) for x in (a_part, r_part, data))
        return profile_gamma(a_g, r_g, n_g, aux[:, k:], self.gamma_sigma)

    def scales(self, theta: np.ndarray) -> np.ndarray:
        """Per-sample scale factors c_s(theta) (normfactors x normsys), shape (R, S)."""
        return self._factors(np.atleast_2d(theta)[:, : self.n_params], derivatives=False)[0]

    def expected(self, full: np.ndarray) -> np.ndarray:
        """Expected counts per bin (R, B) at theta (R, P; gammas 1) or full parameters (R, P + G)."""
        full = np.atleast_2d(np.asarray(full, float))
        a_part, r_part = self._yields(full[:, : self.n_params], derivatives=False)[-2:]
        if not self.n_gammas:
            return r_part + a_part
        gam = np.ones_like(a_part)
        gam[:, self.gamma_bins] = self._gammas_of(full)
        return r_part + gam * a_part

    def gammas(self, theta: np.ndarray, data: np.ndarray, aux: np.ndarray) -> np.ndarray:
        """Profiled staterror gammas (R, G) at theta (R, P) for the rows' data and auxiliary data."""
        theta = np.atleast_2d(theta)
        data = np.broadcast_to(data, (theta.shape[0], self.n_bins))
        aux = np.broadcast_to(aux, (theta.shape[0], self.n_aux))
        a_part, r_part = self._yields(theta, derivatives=False)[-2:]
        return self._profile(a_part, r_part, data, aux)[0]

    def full(self, theta: np.ndarray, data: np.ndarray, aux: np.ndarray) -> np.ndarray:
        """theta with the profiled gammas appended (R, P + G)."""
        theta = np.atleast_2d(theta)
        return np.concatenate([theta, self.gammas(theta, data, aux)], axis=1)

    def _terms(self, theta, data, aux, *, derivatives: bool = True):
        c, dc, d2c, m, coef, grid, a_part, r_part = self._yields(theta, derivatives=derivatives)
        if self.n_gammas:
            gam, inside = self._profile(a_part, r_part, data, aux)
            big = np.ones_like(a_part)
            big[:, self.gamma_bins] = gam
            raw = r_part + big * a_part
        else:
            gam, inside, big = np.ones((theta.shape[0], 0)), np.ones((theta.shape[0], 0), bool), 1.0
            raw = r_part + a_part
        # pyhf's Poisson term nu - n ln nu: a negative nu (histosys beyond its range) counts as such in
        # an empty bin; only the logarithm is floored (pyhf: NaN there)
        nu = np.maximum(raw, TINY)
        k = len(self.alpha_names)
        alphas = theta[:, self.n_factors :]
        nll = (
            np.sum(raw, axis=1)
            - np.einsum("rb,rb->r", data, np.log(nu))
            + 0.5 * np.sum((alphas - aux[:, :k]) ** 2, axis=1)
            + 0.5 * np.sum(((gam - aux[:, k:]) / self.gamma_sigma) ** 2, axis=1)
        )
        return nll, (c, dc, d2c, m, coef, grid, a_part, gam, inside, big, nu)

    def nll(self, theta: np.ndarray, data: np.ndarray, aux: np.ndarray) -> np.ndarray:
        """Profiled NLL per row (gammas at their minimum), without the constants (see the module docstring)."""
        return self._terms(theta, data, aux, derivatives=False)[0]

    def derivatives(
        self, theta: np.ndarray, data: np.ndarray, aux: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Profiled NLL, gradient (R, P) and Hessian (R, P, P) per row (exact second derivatives)."""
        nll, (c, dc, d2c, m, coef, grid, a_part, gam, inside, big, nu) = self._terms(theta, data, aux)
        n_f, n_p = self.n_factors, self.n_params
        n_rows = theta.shape[0]
        # where nu sits on its floor the floored logarithm is constant: d nll / d nu = 1 there and the curvature 0
        # (data / TINY would overflow the Hessian, e.g. an Asimov bin fed only by a component fitted to 0)
        ratio = np.where(nu > TINY, data / nu, 0.0)
        u = 1.0 - ratio  # d nll / d nu
        w = ratio / nu  # d2 nll / d nu2 (nu * nu would underflow at the floor TINY)
        x = self.stat_mask
        if m is None:
            return nll, *self._fast_derivatives(theta, data, aux, dc, d2c, a_part, big, inside, u, w)
        g_sb = np.where(x[None] > 0, np.broadcast_to(big, nu.shape)[:, None, :], 1.0)  # (R, S, B) gamma per yield
        jac = dc @ (g_sb * m)  # d nu / d theta, (R, P, B)
        jac_a = dc @ (x * m)  # d A / d theta
        gw = g_sb * u[:, None, :]
        u_s = np.sum(gw * m, axis=2)
        hess2 = (d2c.reshape(n_rows, n_p * n_p, -1) @ u_s[:, :, None]).reshape(n_rows, n_p, n_p)
        # shape terms: (sample, its bins (slice or indices), parameter, d m / d parameter in those bins,
        # d2 m / d parameter^2 or None, partner, d2 m mixed)
        shape_terms = []
        every = slice(None)
        if coef is not None:
            d_delta = _basis_product(coef[1], self.hist_basis)  # histosys terms
            d2_delta = _basis_product(coef[2], self.hist_basis)
            for h, (s, k) in enumerate(zip(self.hist_sample, self.hist_alpha)):
                shape_terms.append((s, every, n_f + k, d_delta[:, h], d2_delta[:, h], None, None))
        if grid is not None:
            for q, (s, (k1, k2)) in enumerate(zip(self.grid.sample, self.grid.alpha)):
                b, real = self.grid.bins_of(q), self.grid.valid[q]
                d1, d2, d12 = (g[:, q] if real.all() else g[:, q][:, real] for g in grid[1:])
                shape_terms.append((s, b, n_f + k1, d1, None, n_f + k2, d12))
                shape_terms.append((s, b, n_f + k2, d2, None, None, None))
        for s, b, p, dm, d2m, partner, d2mixed in shape_terms:
            cs = c[:, s]
            gw_s = gw[:, s, b]
            v = np.sum(gw_s * dm, axis=1)
            jac[:, p, b] += cs[:, None] * g_sb[:, s, b] * dm
            jac_a[:, p, b] += cs[:, None] * x[s, b] * dm
            hess2[:, :, p] += dc[:, :, s] * v[:, None]
            hess2[:, p, :] += dc[:, :, s] * v[:, None]
            if d2m is not None:
                hess2[:, p, p] += cs * np.sum(gw_s * d2m, axis=1)
            if partner is not None:
                mixed = cs * np.sum(gw_s * d2mixed, axis=1)
                hess2[:, p, partner] += mixed
                hess2[:, partner, p] += mixed
        grad = (jac @ u[:, :, None])[:, :, 0]
        hess = (jac * w[:, None, :]) @ jac.transpose(0, 2, 1) + hess2
        if self.n_gammas:  # Schur complement of the (diagonal) gamma block
            # over all bins (contiguous; cheaper than gathering the gamma bins), weight 0 outside them
            gb = self.gamma_bins
            kk = jac * (w * a_part)[:, None, :] + jac_a * u[:, None, :]
            h_gg = np.take(w, gb, axis=1) * np.take(a_part, gb, axis=1) ** 2 + 1.0 / self.gamma_sigma**2
            inv = np.zeros_like(w)
            inv[:, gb] = np.where(inside, 1.0 / h_gg, 0.0)
            hess -= (kk * inv[:, None, :]) @ kk.transpose(0, 2, 1)
        return nll, *self._constrain(theta, aux, grad, hess)

    def _constrain(self, theta, aux, grad, hess):
        """Add the alphas' N(aux | alpha, 1) constraint terms to gradient and Hessian."""
        n_f = self.n_factors
        idx = np.arange(n_f, self.n_params)
        grad[:, n_f:] += theta[:, n_f:] - aux[:, : len(self.alpha_names)]
        hess[:, idx, idx] += 1.0
        return grad, hess

    def _fast_derivatives(self, theta, data, aux, dc, d2c, a_part, big, inside, u, w):
        """Gradient and Hessian from the fixed rows (:meth:`dmpreserve.stats.rows.FixedRows.derivatives`; dc, d2c:
        the derivatives of the rows' weights)."""
        h_inv = None
        if self.n_gammas:
            gb = self.gamma_bins
            h_inv = np.zeros_like(w)
            h_gg = np.take(w, gb, axis=1) * np.take(a_part, gb, axis=1) ** 2 + 1.0 / self.gamma_sigma**2
            h_inv[:, gb] = np.where(inside, 1.0 / h_gg, 0.0)
        return self._constrain(theta, aux, *self._rows.derivatives(dc, d2c, a_part, big, h_inv, u, w))
