"""136Xe two-neutrino double-beta decay: the summed-electron energy spectrum on natural xenon (an ER background).

The summed kinetic energy K of the two electrons follows the Primakoff-Rosen approximation
(H. Primakoff and S. P. Rosen, Rep. Prog. Phys. 22 (1959) 121; the form quoted e.g. by
F. T. Avignone, S. R. Elliott and J. Engel, Rev. Mod. Phys. 80 (2008) 481, for the Coulomb-corrected
non-relativistic limit)::

    dN/dK  proportional to  K (K^4 + 10 K^3 + 40 K^2 + 60 K + 30) (T0 - K)^5,     0 <= K <= T0

with K and the Q value T0 in units of the electron mass.  The shape is a polynomial, so its
normalisation is exact (numpy polynomial integration).  The decay rate per tonne of natural
xenon is N_136 ln 2 / T_1/2 with N_136 = (10^6 g / 131.293 g/mol) N_A x abundance.

Defaults: Q = 2457.83 keV (M. Redshaw et al., PRL 98 (2007) 053003), T_1/2 = 2.165e21 yr
(EXO-200, J. B. Albert et al., PRC 89 (2014) 015502), isotopic abundance 8.857% (natural xenon,
IUPAC 2013).  The spectrum is flat-ish at keV energies (~K): a small ER component in a WIMP ROI.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.polynomial import Polynomial
from numpy.typing import ArrayLike

from dmpreserve.errors import InvalidSpectrum
from dmpreserve.physics.constants import AVOGADRO_PER_MOL

#: Q value of 136Xe double-beta decay [keV] (Redshaw et al. 2007).
XE136_Q_KEV = 2457.83
#: 2vbb half-life of 136Xe [yr] (EXO-200, Albert et al. 2014).
XE136_2VBB_HALF_LIFE_YR = 2.165e21
#: Isotopic abundance of 136Xe in natural xenon (IUPAC 2013).
XE136_ABUNDANCE = 0.08857
#: Electron mass [keV].
ELECTRON_MASS_KEV = 510.998_950
#: Standard atomic weight of xenon [g/mol].
XENON_MOLAR_MASS_G = 131.293


def _shape_polynomial(q_me: float) -> Polynomial:
    """K (K^4 + 10 K^3 + 40 K^2 + 60 K + 30) (T0 - K)^5 as a polynomial in K (units of m_e)."""
    return Polynomial([0.0, 30.0, 60.0, 40.0, 10.0, 1.0]) * Polynomial([q_me, -1.0]) ** 5


def xe136_2vbb_shape(energy_kev: ArrayLike, *, q_kev: float = XE136_Q_KEV) -> np.ndarray:
    """Normalised summed-electron energy spectrum of 136Xe 2vbb decay.

    Args:
        energy_kev: Summed kinetic energy of the two electrons [keV].
        q_kev: Q value [keV].

    Returns:
        Probability density [1/keV], integrating to 1 over 0 <= E <= Q, zero outside.

    Raises:
        InvalidSpectrum: non-finite energies or a non-positive Q value.
    """
    e = np.asarray(energy_kev, dtype=float)
    if not np.all(np.isfinite(e)):
        raise InvalidSpectrum("energies must be finite", field="energy_kev")
    if not (math.isfinite(q_kev) and q_kev > 0):
        raise InvalidSpectrum(f"Q value must be > 0 keV, got {q_kev!r}", field="q_kev")
    q = q_kev / ELECTRON_MASS_KEV
    poly = _shape_polynomial(q)
    integral = poly.integ()(q) - poly.integ()(0.0)  # in units of m_e
    k = np.clip(e / ELECTRON_MASS_KEV, 0.0, q)
    inside = (e >= 0) & (e <= q_kev)
    return np.where(inside, poly(k) / (integral * ELECTRON_MASS_KEV), 0.0)


def xe136_decays_per_t_yr(
    *, half_life_yr: float = XE136_2VBB_HALF_LIFE_YR, abundance: float = XE136_ABUNDANCE
) -> float:
    """136Xe 2vbb decays per tonne of xenon per year: N_136 ln 2 / T_1/2.

    Raises:
        InvalidSpectrum: a non-positive half-life or an abundance outside (0, 1].
    """
    if not (math.isfinite(half_life_yr) and half_life_yr > 0):
        raise InvalidSpectrum(f"half-life must be > 0 yr, got {half_life_yr!r}", field="half_life_yr")
    if not (math.isfinite(abundance) and 0 < abundance <= 1):
        raise InvalidSpectrum(f"abundance must lie in (0, 1], got {abundance!r}", field="abundance")
    n136 = 1e6 / XENON_MOLAR_MASS_G * AVOGADRO_PER_MOL * abundance
    return n136 * math.log(2.0) / half_life_yr


def rate_xe136_2vbb(
    energy_kev: ArrayLike,
    *,
    half_life_yr: float = XE136_2VBB_HALF_LIFE_YR,
    abundance: float = XE136_ABUNDANCE,
    q_kev: float = XE136_Q_KEV,
) -> np.ndarray:
    """136Xe 2vbb ER spectrum dR/dE [events / (t yr keV)] in xenon with the given 136Xe abundance.

    Raises:
        InvalidSpectrum: see :func:`xe136_2vbb_shape` and :func:`xe136_decays_per_t_yr`.
    """
    return xe136_decays_per_t_yr(half_life_yr=half_life_yr, abundance=abundance) * xe136_2vbb_shape(
        energy_kev, q_kev=q_kev
    )
