"""pyhf's interpolation codes, staterror widths and the analytic profile of a staterror gamma, vectorized.

* ``normsys`` code4 (pyhf default): polynomial for |alpha| < 1, exponential outside;
  :func:`code4_coefficients` gives the six coefficients of one (hi, lo) pair, :func:`code4` the factor
  and the first two derivatives of its logarithm.
* ``histosys`` code4p (pyhf's default for histosys since 0.7, ``pyhf.pdf._ModelConfig``): the additive
  delta ``alpha * delta_up`` for alpha > 1, ``alpha * delta_dn`` for alpha < -1 and
  ``alpha S + alpha^2 A (15 - 10 alpha^2 + 3 alpha^4)`` in between (S = (delta_up + delta_dn) / 2,
  A = (delta_up - delta_dn) / 16; ``pyhf.interpolators.code4p``).
* :func:`staterror_gammas`: the free gammas of the staterror modifiers and their widths, as pyhf's
  ``staterror_builder`` computes them (bins with zero width are fixed by pyhf and have no gamma here);
* :func:`profile_gamma`: the minimum over gamma of ``gamma A + R - n ln(gamma A + R) + (gamma - a)^2 / (2
  sigma^2)`` (one bin's Poisson term with its staterror constraint), the larger root of a quadratic,
  clipped to pyhf's bounds of a staterror gamma.
"""

from __future__ import annotations

import math

import numpy as np

#: Bounds of a staterror gamma (pyhf ``staterror.required_parset``).
GAMMA_BOUNDS = (1e-10, 10.0)

_CODE4_INVERSE = np.array(
    [
        [15 / 16, -15 / 16, -7 / 16, -7 / 16, 1 / 16, -1 / 16],
        [3 / 2, 3 / 2, -9 / 16, 9 / 16, 1 / 16, 1 / 16],
        [-5 / 8, 5 / 8, 5 / 8, 5 / 8, -1 / 8, 1 / 8],
        [-3 / 2, -3 / 2, 7 / 8, -7 / 8, -1 / 8, -1 / 8],
        [3 / 16, -3 / 16, -3 / 16, -3 / 16, 1 / 16, -1 / 16],
        [1 / 2, 1 / 2, -5 / 16, 5 / 16, 1 / 16, 1 / 16],
    ]
)


def code4_coefficients(hi: float, lo: float) -> np.ndarray:
    """The six polynomial coefficients of pyhf's code4 for one (hi, lo) pair (alpha0 = 1), shape (6,)."""
    lu, ld = math.log(hi), math.log(lo)
    b = np.array([hi - 1, lo - 1, lu * hi, -ld * lo, lu * lu * hi, ld * ld * lo])
    return _CODE4_INVERSE @ b


def code4(
    a: np.ndarray, coef: np.ndarray, log_hi: np.ndarray, log_lo: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """code4 factor I, d ln I / d alpha and d^2 ln I / d alpha^2, each shaped like ``a`` (R, T)."""
    c = coef
    poly = 1 + a * (c[:, 0] + a * (c[:, 1] + a * (c[:, 2] + a * (c[:, 3] + a * (c[:, 4] + a * c[:, 5])))))
    d1 = c[:, 0] + a * (2 * c[:, 1] + a * (3 * c[:, 2] + a * (4 * c[:, 3] + a * (5 * c[:, 4] + a * 6 * c[:, 5]))))
    d2 = 2 * c[:, 1] + a * (6 * c[:, 2] + a * (12 * c[:, 3] + a * (20 * c[:, 4] + a * 30 * c[:, 5])))
    up, dn = a >= 1.0, a <= -1.0
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        value = np.where(up, np.exp(a * log_hi), np.where(dn, np.exp(-a * log_lo), poly))
        dlog = np.where(up, log_hi, np.where(dn, -log_lo, d1 / poly))
        d2log = np.where(up | dn, 0.0, d2 / poly - (d1 / poly) ** 2)
    return value, dlog, d2log


def code4p_basis(nominal: np.ndarray, hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """The (4, B) basis [S, A, delta_up, delta_dn] of one histosys term (nominal, hi_data, lo_data: (B,))."""
    up, dn = hi - nominal, nominal - lo
    return np.stack([0.5 * (up + dn), 0.0625 * (up - dn), up, dn])


def code4p(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Coefficients of the code4p basis [S, A, delta_up, delta_dn] and their first two alpha derivatives.

    Args:
        a: alpha per row and term, (R, H).

    Returns:
        Three arrays (R, H, 4): delta = sum_k coef_k basis_k, d delta / d alpha, d^2 delta / d alpha^2.
    """
    a2 = a * a
    inner = np.abs(a) <= 1.0
    zero = np.zeros_like(a)
    value = np.stack(
        [np.where(inner, a, 0.0), np.where(inner, a2 * (15 + a2 * (-10 + 3 * a2)), 0.0), np.where(a > 1, a, 0.0)]
        + [np.where(a < -1, a, 0.0)],
        axis=-1,
    )
    d1 = np.stack(
        [
            np.where(inner, 1.0, 0.0),
            np.where(inner, a * (30 + a2 * (-40 + 18 * a2)), 0.0),
            np.where(a > 1, 1.0, 0.0),
            np.where(a < -1, 1.0, 0.0),
        ],
        axis=-1,
    )
    d2 = np.stack([zero, np.where(inner, 30 + a2 * (-120 + 90 * a2), 0.0), zero, zero], axis=-1)
    return value, d1, d2


def profile_gamma(a_part: np.ndarray, r_part: np.ndarray, n: np.ndarray, aux: np.ndarray, sigma: np.ndarray):
    """The gamma minimizing one bin's ``gamma A + R - n ln(gamma A + R) + (gamma - aux)^2 / (2 sigma^2)``.

    The stationary condition times ``sigma^2 (gamma A + R) > 0`` is the quadratic
    ``A g^2 + (R - aux A + A^2 sigma^2) g + (A R sigma^2 - n A sigma^2 - aux R) = 0``; the objective is
    convex on ``gamma A + R > 0``, its minimum is the larger root (computed without cancellation),
    clipped to :data:`GAMMA_BOUNDS`.  A bin with ``A = R = 0`` has ``gamma = aux``.

    Args:
        a_part, r_part: Expected counts multiplied by gamma (A) and not (R), (R, G) [events].
        n: Observed counts (R, G); aux: auxiliary data (R, G); sigma: constraint widths (G,).

    Returns:
        gamma (R, G) and whether it lies strictly inside the bounds (R, G).
    """
    t = a_part * (sigma * sigma)
    q1 = t - aux  # in place below: few temporaries, this runs in every NLL evaluation
    q1 *= a_part
    q1 += r_part
    q0 = r_part - n
    q0 *= t
    q0 -= aux * r_part
    disc = q1 * q1
    t *= 0.0
    t += a_part
    t *= q0
    t *= 4.0
    disc -= t
    np.maximum(disc, 0.0, out=disc)
    np.sqrt(disc, out=disc)
    pos = q1 > 0
    num = np.where(pos, 2.0 * q0, disc - q1)
    den = np.where(pos, -q1 - disc, 2.0 * a_part)
    with np.errstate(divide="ignore", invalid="ignore"):
        gamma = np.divide(num, den, out=np.array(aux, dtype=float, copy=True), where=den != 0)
    clipped = np.clip(gamma, *GAMMA_BOUNDS)
    return clipped, clipped == gamma


def staterror_gammas(
    offsets: dict[str, int], n_bins: int, rows: list
) -> tuple[np.ndarray, list[tuple[int, float, str]]]:
    """The (S, B) gamma mask and the free gammas (bin, sigma, name), as pyhf's staterror_builder computes them.

    Args:
        offsets: First bin of each channel in the concatenated bins.
        n_bins: Number of bins B.
        rows: (channel name, pyhf sample dict) per nominal row (S).

    Returns:
        The (S, B) 0/1 mask of the yields multiplied by a free gamma, and per free gamma its bin, sigma and
        pyhf name (``<modifier>[<index within the modifier's bins>]``).
    """
    mask = np.zeros((len(rows), n_bins))
    gammas = []
    names = sorted({m["name"] for _, s in rows for m in s["modifiers"] if m["type"] == "staterror"})
    for name in names:
        carriers = {
            s["name"] for _, s in rows for m in s["modifiers"] if m["type"] == "staterror" and m["name"] == name
        }
        in_mod = np.zeros(n_bins, bool)
        nomsall, uncrt = np.zeros(n_bins), []
        for i, (ch, sample) in enumerate(rows):
            sl = slice(offsets[ch], offsets[ch] + len(sample["data"]))
            if sample["name"] in carriers:
                nomsall[sl] += np.asarray(sample["data"], float)
            for mod in sample["modifiers"]:
                if mod["type"] == "staterror" and mod["name"] == name:
                    in_mod[sl] = True
                    mask[i, sl] = 1.0
                    u = np.zeros(n_bins)
                    u[sl] = np.asarray(mod["data"], float)
                    uncrt.append(u)
        with np.errstate(divide="ignore", invalid="ignore"):
            rel2 = np.sum(
                [np.where(nomsall > 0, (u / np.where(nomsall > 0, nomsall, 1.0)) ** 2, 0.0) for u in uncrt], 0
            )
        sigma = np.sqrt(rel2)
        for j, b in enumerate(np.flatnonzero(in_mod)):
            if sigma[b] > 0:
                gammas.append((int(b), float(sigma[b]), f"{name}[{j}]"))
            else:  # pyhf fixes this gamma at 1
                mask[:, b] = 0.0
    return mask, gammas
