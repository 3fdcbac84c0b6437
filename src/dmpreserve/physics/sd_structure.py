"""Spin-dependent structure functions of Xe-129 and Xe-131 (Klos et al. 2013).

The structure functions S_n(u) (neutron-only coupling, a_p = 0) and S_p(u) (proton-only, a_n = 0)
of Klos, Menendez, Gazit & Schwenk, "Large-scale nuclear structure calculations for spin-dependent
WIMP scattering with chiral effective field theory currents", PRD 88 (2013) 083516, arXiv:1304.7684,
figure 6 (one- plus two-body currents).  u = q^2 b^2 / 2 with the harmonic-oscillator length
b = 2.2853 fm (Xe-129) and 2.2905 fm (Xe-131).

The table below is the geometric mean of the upper and lower edges of the theory band, on the grid
u = 0, 0.25, ..., 10, computed from the digitisation of figure 6 shipped with wimprates
(J. Aalbers et al., github.com/JelleAalbers/wimprates, ``data/sd/klos_et_al_figure_6``, MIT licence).
Between grid points S is interpolated linearly in log S; beyond u = 10 (recoils above ~ 200 keV at
Xe masses) it is set to zero.  The band half-width is about +-15 % near u = 0.

Normalisation: with these S(q), sigma_0 F^2(q) of the SI rate is replaced by
4 pi mu_N^2 sigma_n S(q) / (3 (2J + 1) mu_n^2), where sigma_n (sigma_p) is the WIMP-neutron (-proton)
SD cross section and S(0) = (2J + 1)(J + 1) <S_n>^2 / (pi J) (Engel, Pittel & Vogel 1992; the same
convention as wimprates and the XENON1T SD analysis, PRL 122 (2019) 141301).
"""

from __future__ import annotations

from types import MappingProxyType

import numpy as np
from numpy.typing import ArrayLike

from dmpreserve.errors import InvalidSpectrum
from dmpreserve.physics.constants import HBAR_C_GEV_FM

#: Oscillator lengths b [fm] used by Klos et al.
OSCILLATOR_LENGTH_FM = MappingProxyType({129: 2.2853, 131: 2.2905})
#: Nuclear spins J of the odd isotopes.
NUCLEAR_SPIN = MappingProxyType({129: 0.5, 131: 1.5})
#: Grid of u = q^2 b^2 / 2 of the table (0, 0.25, ..., 10).
U_GRID = tuple(0.25 * i for i in range(41))

_TABLE = MappingProxyType(
    {
        (129, "n"): (
            0.1606,
            0.06222,
            0.02296,
            0.009296,
            0.004269,
            0.002598,
            0.002071,
            0.002032,
            0.002235,
            0.002528,
            0.002805,
            0.003012,
            0.003083,
            0.003057,
            0.002905,
            0.002646,
            0.002375,
            0.002068,
            0.001782,
            0.001519,
            0.001279,
            0.001076,
            0.0009128,
            0.0007805,
            0.0006783,
            0.0006004,
            0.0005416,
            0.0005027,
            0.0004751,
            0.0004615,
            0.0004567,
            0.0004559,
            0.0004593,
            0.000471,
            0.0004849,
            0.0005,
            0.000517,
            0.000537,
            0.0005524,
            0.000564,
            0.0005765,
        ),
        (129, "p"): (
            0.003762,
            0.002037,
            0.00102,
            0.0004987,
            0.0002738,
            0.000183,
            0.000163,
            0.0001722,
            0.0002049,
            0.0002472,
            0.0002942,
            0.0003361,
            0.0003669,
            0.0003854,
            0.0003841,
            0.0003711,
            0.0003491,
            0.0003211,
            0.0002889,
            0.000253,
            0.0002193,
            0.00019,
            0.0001647,
            0.0001436,
            0.0001269,
            0.0001139,
            0.000106,
            0.0001011,
            9.902e-05,
            0.0001007,
            0.000104,
            0.0001104,
            0.0001191,
            0.0001299,
            0.0001431,
            0.0001587,
            0.000176,
            0.0001941,
            0.0002136,
            0.0002349,
            0.0002561,
        ),
        (131, "n"): (
            0.126,
            0.05129,
            0.02604,
            0.01885,
            0.01642,
            0.01525,
            0.01435,
            0.01339,
            0.01229,
            0.01101,
            0.009667,
            0.008287,
            0.006909,
            0.005567,
            0.00439,
            0.003343,
            0.002501,
            0.00189,
            0.001457,
            0.001186,
            0.001032,
            0.0009678,
            0.0009507,
            0.0009781,
            0.001012,
            0.001055,
            0.001099,
            0.001126,
            0.001153,
            0.001166,
            0.001177,
            0.001187,
            0.001197,
            0.001214,
            0.001234,
            0.001257,
            0.001284,
            0.001316,
            0.001353,
            0.001389,
            0.001418,
        ),
        (131, "p"): (
            0.002922,
            0.001844,
            0.001273,
            0.00103,
            0.0009755,
            0.0009869,
            0.001013,
            0.001022,
            0.001002,
            0.0009546,
            0.0008926,
            0.0008118,
            0.00072,
            0.0006176,
            0.0005087,
            0.0004036,
            0.0003166,
            0.0002435,
            0.0001875,
            0.0001535,
            0.0001377,
            0.0001385,
            0.0001528,
            0.0001737,
            0.000197,
            0.0002239,
            0.0002508,
            0.0002765,
            0.0003008,
            0.0003208,
            0.000341,
            0.000358,
            0.0003751,
            0.0003905,
            0.0004038,
            0.0004179,
            0.0004329,
            0.0004496,
            0.0004671,
            0.0004869,
            0.0005075,
        ),
    }
)


def structure_function(energy_kev: ArrayLike, *, isotope: int, coupling: str, nucleus_mass_gev: float) -> np.ndarray:
    """S(q) of one odd xenon isotope for neutron-only (``"n"``) or proton-only (``"p"``) coupling.

    Args:
        energy_kev: Nuclear-recoil energies [keV].
        isotope: 129 or 131.
        coupling: ``"n"`` or ``"p"``.
        nucleus_mass_gev: Nuclear mass [GeV/c^2] (gives q = sqrt(2 m_N E_R)).

    Returns:
        S (dimensionless), zero beyond the table (u > 10).

    Raises:
        InvalidSpectrum: For an unknown isotope or coupling.
    """
    key = (int(isotope), str(coupling))
    if key not in _TABLE:
        raise InvalidSpectrum(f"no SD structure function for Xe-{isotope}, coupling {coupling!r}", field="coupling")
    e = np.maximum(np.asarray(energy_kev, dtype=float), 0.0)
    q_fm = np.sqrt(2.0 * nucleus_mass_gev * e * 1e-6) / HBAR_C_GEV_FM
    u = 0.5 * (q_fm * OSCILLATOR_LENGTH_FM[key[0]]) ** 2
    log_s = np.interp(u, U_GRID, np.log(np.asarray(_TABLE[key])))
    return np.where(u <= U_GRID[-1], np.exp(log_s), 0.0)
