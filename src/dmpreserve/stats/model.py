"""A vectorized binned-Poisson model read from a pyhf workspace plus one signal patch.

Supported modifiers are the ones this project's likelihood uses: ``normsys`` (pyhf's code4
polynomial interpolation / exponential extrapolation, Gaussian constraint with unit width) and
the ``normfactor`` that is the POI; the shared validation
:func:`dmpreserve.artifacts.likelihood.check_model` refuses anything else, for every reader alike.
The negative log-likelihood and its derivatives are computed
in numpy for a *batch* of rows (each row: a dataset, auxiliary data and parameter point), and
:func:`minimize` runs a bounded, damped Newton iteration on all rows at once.  This reproduces
pyhf's numpy backend (``-2 log L`` up to a data-dependent constant) at a fraction of the cost.

Parameter vector per row: ``theta = [mu, alpha_0, ..., alpha_{K-1}]`` (POI first, then the
``normsys`` parameters in sorted name order).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import math
from typing import Any

import jsonpatch
import numpy as np

from dmpreserve.artifacts.likelihood import check_model
from dmpreserve.errors import InvalidWorkspace

#: Floor of the expected counts per bin (an empty bin with data has likelihood zero).
TINY = 1e-300
#: Bounds of a ``normsys`` parameter (pyhf's default).
ALPHA_BOUNDS = (-5.0, 5.0)


def _code4_coefficients(hi: float, lo: float) -> np.ndarray:
    """The six polynomial coefficients of pyhf's code4 for one (hi, lo) pair (alpha0 = 1)."""
    a_inv = np.array(
        [
            [15 / 16, -15 / 16, -7 / 16, -7 / 16, 1 / 16, -1 / 16],
            [3 / 2, 3 / 2, -9 / 16, 9 / 16, 1 / 16, 1 / 16],
            [-5 / 8, 5 / 8, 5 / 8, 5 / 8, -1 / 8, 1 / 8],
            [-3 / 2, -3 / 2, 7 / 8, -7 / 8, -1 / 8, -1 / 8],
            [3 / 16, -3 / 16, -3 / 16, -3 / 16, 1 / 16, -1 / 16],
            [1 / 2, 1 / 2, -5 / 16, 5 / 16, 1 / 16, 1 / 16],
        ]
    )
    lu, ld = math.log(hi), math.log(lo)
    b = np.array([hi - 1, lo - 1, lu * hi, -ld * lo, lu * lu * hi, ld * ld * lo])
    return a_inv @ b


@dataclasses.dataclass(frozen=True, eq=False)
class BinnedModel:
    """Expected counts ``nu = sum_s g_s(mu) prod_t I_t(alpha) N_s`` and the constrained Poisson NLL.

    Attributes:
        nominal: Nominal sample yields, shape (S, B) [events].
        signal_mask: Which samples scale with the POI, shape (S,).
        term_sample, term_alpha: For each normsys term t, its sample and parameter index, shape (T,).
        term_coef: code4 polynomial coefficients, shape (T, 6).
        term_log_hi, term_log_lo: log of the hi / lo factors, shape (T,).
        alpha_names: The normsys parameter names (constraint N(0, 1) each).
        observed: Observed counts, shape (B,).
        poi_bounds: (low, high) bounds of the POI.
    """

    nominal: np.ndarray
    signal_mask: np.ndarray
    term_sample: np.ndarray
    term_alpha: np.ndarray
    term_coef: np.ndarray
    term_log_hi: np.ndarray
    term_log_lo: np.ndarray
    alpha_names: tuple[str, ...]
    observed: np.ndarray
    poi_bounds: tuple[float, float]

    @functools.cached_property
    def _sample_onehot(self) -> np.ndarray:
        """(T, S) matrix: term t belongs to sample s."""
        out = np.zeros((self.term_sample.size, self.nominal.shape[0]))
        out[np.arange(self.term_sample.size), self.term_sample] = 1.0
        return out

    @functools.cached_property
    def _param_sample_onehot(self) -> np.ndarray:
        """(T, P*S) matrix: term t acts on (parameter 1 + alpha_t, sample s_t)."""
        n_s = self.nominal.shape[0]
        out = np.zeros((self.term_sample.size, self.n_params * n_s))
        out[np.arange(self.term_sample.size), (1 + self.term_alpha) * n_s + self.term_sample] = 1.0
        return out

    @functools.cached_property
    def _sample_totals(self) -> np.ndarray:
        """Total nominal yield per sample, (S,)."""
        return self.nominal.sum(axis=1)

    @functools.cached_property
    def _pair_products(self) -> np.ndarray:
        """(S(S+1)/2, B) products N_s N_t of the upper-triangle sample pairs."""
        iu = np.triu_indices(self.nominal.shape[0])
        return self.nominal[iu[0]] * self.nominal[iu[1]]

    @property
    def n_params(self) -> int:
        """Number of parameters (POI + normsys)."""
        return 1 + len(self.alpha_names)

    @property
    def n_bins(self) -> int:
        """Number of bins."""
        return int(self.nominal.shape[1])

    @property
    def lower(self) -> np.ndarray:
        """Lower parameter bounds."""
        return np.array([self.poi_bounds[0], *[ALPHA_BOUNDS[0]] * len(self.alpha_names)])

    @property
    def upper(self) -> np.ndarray:
        """Upper parameter bounds."""
        return np.array([self.poi_bounds[1], *[ALPHA_BOUNDS[1]] * len(self.alpha_names)])

    def _interp(self, alpha: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """code4 factor I, d ln I/d alpha and d2 ln I/d alpha2 per term, each (R, T)."""
        a = alpha[:, self.term_alpha]
        c = self.term_coef
        poly = 1 + a * (c[:, 0] + a * (c[:, 1] + a * (c[:, 2] + a * (c[:, 3] + a * (c[:, 4] + a * c[:, 5])))))
        d1 = c[:, 0] + a * (2 * c[:, 1] + a * (3 * c[:, 2] + a * (4 * c[:, 3] + a * (5 * c[:, 4] + a * 6 * c[:, 5]))))
        d2 = 2 * c[:, 1] + a * (6 * c[:, 2] + a * (12 * c[:, 3] + a * (20 * c[:, 4] + a * 30 * c[:, 5])))
        up, dn = a >= 1.0, a <= -1.0
        with np.errstate(over="ignore", invalid="ignore"):
            value = np.where(up, np.exp(a * self.term_log_hi), np.where(dn, np.exp(-a * self.term_log_lo), poly))
            dlog = np.where(up, self.term_log_hi, np.where(dn, -self.term_log_lo, d1 / poly))
            d2log = np.where(up | dn, 0.0, d2 / poly - (d1 / poly) ** 2)
        return value, dlog, d2log

    def _factors(self, value: np.ndarray) -> np.ndarray:
        """prod_t I_t per sample, shape (R, S)."""
        return np.exp(np.log(value) @ self._sample_onehot)

    def scales(self, theta: np.ndarray) -> np.ndarray:
        """Per-sample scale factors c_s(theta) = g_s(mu) f_s(alpha), shape (R, S)."""
        value, _, _ = self._interp(theta[:, 1:])
        return np.where(self.signal_mask, theta[:, :1], 1.0) * self._factors(value)

    def expected(self, theta: np.ndarray) -> np.ndarray:
        """Expected counts per bin, shape (R, B)."""
        return self.scales(np.atleast_2d(theta)) @ self.nominal

    def nll(self, theta: np.ndarray, data: np.ndarray, aux: np.ndarray) -> np.ndarray:
        """Negative log-likelihood per row, without the data-only constants (log n!, log 2 pi)."""
        c = self.scales(theta)
        nu = np.maximum(c @ self.nominal, TINY)
        return (
            c @ self._sample_totals
            - np.einsum("rb,rb->r", data, np.log(nu))
            + 0.5 * np.sum((theta[:, 1:] - aux) ** 2, axis=1)
        )

    def derivatives(
        self, theta: np.ndarray, data: np.ndarray, aux: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """NLL, gradient (R, P) and Hessian (R, P, P) per row (exact second derivatives)."""
        n_rows, n_par = theta.shape
        value, dlog, d2log = self._interp(theta[:, 1:])
        f = self._factors(value)
        g = np.where(self.signal_mask, theta[:, :1], 1.0)
        c = g * f  # (R, S)
        nu = np.maximum(c @ self.nominal, TINY)
        ratio = data / nu
        u = self._sample_totals - ratio @ self.nominal.T  # (R, S): d NLL / d c_s
        w = ratio / nu  # data / nu^2
        n_s = c.shape[1]
        iu = np.triu_indices(n_s)
        q = np.empty((n_rows, n_s, n_s))
        q[:, iu[0], iu[1]] = w @ self._pair_products.T  # sum_b w_b N_sb N_tb, (R, S, S)
        q[:, iu[1], iu[0]] = q[:, iu[0], iu[1]]
        # dc/dtheta (R, P, S) and d2c/dtheta2 (R, P, P, S); ln f_s = sum of ln I_t over the terms of s
        lp = (dlog @ self._param_sample_onehot).reshape(n_rows, n_par, n_s)
        lpp = (d2log @ self._param_sample_onehot).reshape(n_rows, n_par, n_s)
        d1 = c[:, None, :] * lp
        d1[:, 0, :] = np.where(self.signal_mask, f, 0.0)
        d2 = c[:, None, None, :] * lp[:, :, None, :] * lp[:, None, :, :]
        idx = np.arange(1, n_par)
        d2[:, idx, idx, :] += c[:, None, :] * lpp[:, 1:, :]
        cross = d1[:, 0, None, :] * lp[:, 1:, :]  # d2 c / d mu d alpha = f_s L'_k (signal samples)
        d2[:, 0, 1:, :] = cross
        d2[:, 1:, 0, :] = cross
        grad = (d1 @ u[:, :, None])[:, :, 0]
        hess = (d1 @ q) @ d1.transpose(0, 2, 1) + (d2.reshape(n_rows, n_par * n_par, n_s) @ u[:, :, None]).reshape(
            n_rows, n_par, n_par
        )
        grad[:, 1:] += theta[:, 1:] - aux
        hess[:, idx, idx] += 1.0
        nll = c @ self._sample_totals - np.einsum("rb,rb->r", data, np.log(nu))
        nll += 0.5 * np.sum((theta[:, 1:] - aux) ** 2, axis=1)
        return nll, grad, hess


def build_model(workspace: dict[str, Any], patch: dict[str, Any] | None) -> BinnedModel:
    """The model of a pyhf workspace with one patch of a patchset applied (``None``: as is).

    Raises:
        InvalidWorkspace: what the shared likelihood validation refuses
            (:func:`dmpreserve.artifacts.likelihood.check_model`: unsupported or invalid modifiers, fixed
            parameters, no signal), or a missing POI.
    """
    # apply_patch works on a copy (in_place=False), so the caller's workspace is never changed
    spec = copy.deepcopy(workspace) if patch is None else jsonpatch.apply_patch(workspace, patch["patch"])
    check_model(spec, signal=patch is not None)
    measurement = spec["measurements"][0]["config"]
    poi = measurement["poi"]
    bounds = (0.0, 10.0)
    for par in measurement.get("parameters", []):
        if par["name"] == poi and "bounds" in par:
            bounds = (float(par["bounds"][0][0]), float(par["bounds"][0][1]))
    channels = sorted(spec["channels"], key=lambda ch: ch["name"])  # pyhf orders channels by name
    obs = {o["name"]: np.asarray(o["data"], float) for o in spec["observations"]}
    offsets, n_bins = {}, 0
    for ch in channels:
        offsets[ch["name"]] = n_bins
        n_bins += len(ch["samples"][0]["data"])
    nominal, signal_mask, terms, alphas = [], [], [], set()
    for ch in channels:
        for sample in ch["samples"]:
            row = np.zeros(n_bins)
            row[offsets[ch["name"]] : offsets[ch["name"]] + len(sample["data"])] = sample["data"]
            is_signal = False
            for mod in sample["modifiers"]:  # check_model: the POI normfactor or a valid normsys
                if mod["type"] == "normfactor":
                    is_signal = True
                else:
                    hi, lo = float(mod["data"]["hi"]), float(mod["data"]["lo"])
                    terms.append((len(nominal), mod["name"], hi, lo))
                    alphas.add(mod["name"])
            nominal.append(row)
            signal_mask.append(is_signal)
    if not any(signal_mask):
        raise InvalidWorkspace(f"no sample carries the POI normfactor {poi!r}", field="channels")
    names = tuple(sorted(alphas))
    index = {n: i for i, n in enumerate(names)}
    observed = np.concatenate([obs[ch["name"]] for ch in channels])
    return BinnedModel(
        nominal=np.asarray(nominal),
        signal_mask=np.asarray(signal_mask),
        term_sample=np.array([t[0] for t in terms], int),
        term_alpha=np.array([index[t[1]] for t in terms], int),
        term_coef=np.array([_code4_coefficients(t[2], t[3]) for t in terms]).reshape(-1, 6),
        term_log_hi=np.log([t[2] for t in terms]),
        term_log_lo=np.log([t[3] for t in terms]),
        alpha_names=names,
        observed=observed,
        poi_bounds=bounds,
    )
