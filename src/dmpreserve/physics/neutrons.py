"""Neutron-induced nuclear-recoil spectrum shapes on xenon (background and D-D calibration).

Both functions return *shapes* (probability densities in keV^-1); normalisations (event counts)
come from the analysis configuration.

**Radiogenic neutrons (background).** Neutrons from (alpha, n) reactions and spontaneous fission
in detector materials have MeV energies (fission-like spectra with mean ~2 MeV). Their
single-scatter recoil spectrum in the WIMP-search window falls roughly exponentially; we use::

    dR/dE  proportional to  exp(-E / E_fold)  on 0 <= E <= 100 keV,    E_fold = 20 keV (default)

This is an effective parametrisation, not a collaboration-published fit. E_fold is bracketed by
two limiting elastic-scattering models for a Maxwellian neutron spectrum with T = 1.3 MeV
(mean 1.95 MeV) on xenon, fitting an exponential over 5-50 keV:
isotropic centre-of-mass scattering (flat recoil spectrum up to
E_max = 4 m_n m_N / (m_n + m_N)^2 E_n for each E_n) gives E_fold ~ 27 keV; fully forward-peaked
black-disc diffraction (Stodolsky, arXiv:1009.3791; see below) gives ~ 9 keV. Real MeV-neutron
angular distributions on heavy nuclei lie in between (shape-elastic forward peak plus an
isotropic compound-elastic part), hence the default of 20 keV; treat the shape as uncertain and
vary ``e_fold_kev`` for systematic studies.

**D-D calibration neutrons.** 2.45 MeV neutrons from a D-D generator. Single-scatter recoils
extend to E_max = 4 m_n m_N / (m_n + m_N)^2 * 2.45 MeV = 74.1 keV on natural xenon
(m_N = 131.293 u). The angular distribution is approximated by strong-absorption (black-disc)
Fraunhofer diffraction off a nucleus of radius R = 1.2 A^(1/3) fm = 6.09 fm (Stodolsky 2010)::

    dsigma/dE_r  proportional to  [2 J1(q R) / (q R)]^2,    q = sqrt(2 m_N E_r) / (hbar c)

for 0 <= E_r <= E_max (E_r is linear in cos(theta_cm), so dsigma/dE_r follows dsigma/dOmega),
normalised with the closed form integral_0^X [2 J1(x)/x]^2 x dx = 2 (1 - J0(X)^2 - J1(X)^2).
The shape falls from E_r = 0 towards a diffraction minimum near 62 keV; the real spectrum also
contains isotropic compound-elastic scattering and multiple-scatter topologies, which this
approximation neglects. It is used only to populate the NR calibration band over 0-75 keV.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import j0, j1

from dmpreserve.errors import InvalidSpectrum
from dmpreserve.physics.constants import AMU_GEV, HBAR_C_GEV_FM, NEUTRON_MASS_GEV

NEUTRON_E_FOLD_KEV = 20.0
"""Default e-folding energy of the radiogenic-neutron recoil spectrum [keV] (see module docstring)."""
NEUTRON_WINDOW_KEV = 100.0
"""Upper end of the window on which :func:`neutron_spectrum_shape` is normalised [keV]."""
DD_NEUTRON_ENERGY_MEV = 2.45
"""D-D fusion neutron energy [MeV]."""
XENON_MEAN_MASS_NUMBER = 131.293
"""Standard atomic weight of xenon, used as the effective nucleus for the neutron shapes."""
BLACK_DISC_R0_FM = 1.2
"""Radius parameter of the black-disc nucleus, R = r0 A^(1/3) [fm]."""


def _energies(energy_kev: ArrayLike) -> np.ndarray:
    e = np.asarray(energy_kev, dtype=float)
    if not np.all(np.isfinite(e)):
        raise InvalidSpectrum("recoil energies must be finite", field="energy_kev")
    return e


def neutron_spectrum_shape(energy_kev: ArrayLike, *, e_fold_kev: float = NEUTRON_E_FOLD_KEV) -> np.ndarray:
    """Radiogenic-neutron single-scatter NR spectrum shape on xenon.

    Args:
        energy_kev: Nuclear-recoil energies [keV].
        e_fold_kev: Exponential slope E_fold [keV].

    Returns:
        Probability density [1/keV], integrating to 1 over 0-100 keV, zero outside.

    Raises:
        InvalidSpectrum: On non-finite energies or a non-positive ``e_fold_kev``.
    """
    e = _energies(energy_kev)
    if not (math.isfinite(e_fold_kev) and e_fold_kev > 0):
        raise InvalidSpectrum(f"e-folding energy must be > 0 keV, got {e_fold_kev!r}", field="e_fold_kev")
    norm = e_fold_kev * -math.expm1(-NEUTRON_WINDOW_KEV / e_fold_kev)
    inside = (e >= 0) & (e <= NEUTRON_WINDOW_KEV)
    return np.where(inside, np.exp(-np.where(inside, e, 0.0) / e_fold_kev) / norm, 0.0)


def dd_max_recoil_kev(
    *, neutron_energy_mev: float = DD_NEUTRON_ENERGY_MEV, mass_number: float = XENON_MEAN_MASS_NUMBER
) -> float:
    """Kinematic maximum recoil energy 4 m_n m_N / (m_n + m_N)^2 E_n [keV] (non-relativistic)."""
    m_n, m_nuc = NEUTRON_MASS_GEV, mass_number * AMU_GEV
    return 4.0 * m_n * m_nuc / (m_n + m_nuc) ** 2 * neutron_energy_mev * 1e3


def dd_calibration_spectrum_shape(
    energy_kev: ArrayLike, *, neutron_energy_mev: float = DD_NEUTRON_ENERGY_MEV
) -> np.ndarray:
    """Single-scatter NR spectrum shape of mono-energetic (D-D) neutrons on xenon (black-disc model).

    Args:
        energy_kev: Nuclear-recoil energies [keV].
        neutron_energy_mev: Neutron kinetic energy [MeV] (2.45 for D-D).

    Returns:
        Probability density [1/keV], integrating to 1 over 0 <= E <= E_max, zero outside.

    Raises:
        InvalidSpectrum: On non-finite energies or a non-positive neutron energy.
    """
    e = _energies(energy_kev)
    if not (math.isfinite(neutron_energy_mev) and neutron_energy_mev > 0):
        raise InvalidSpectrum(f"neutron energy must be > 0 MeV, got {neutron_energy_mev!r}", field="neutron_energy_mev")
    m_nuc = XENON_MEAN_MASS_NUMBER * AMU_GEV
    radius_fm = BLACK_DISC_R0_FM * XENON_MEAN_MASS_NUMBER ** (1.0 / 3.0)
    e_max = dd_max_recoil_kev(neutron_energy_mev=neutron_energy_mev)

    def qr(e_kev: np.ndarray | float) -> np.ndarray:
        return np.sqrt(2.0 * m_nuc * np.maximum(e_kev, 0.0) * 1e-6) / HBAR_C_GEV_FM * radius_fm

    x = qr(e)
    xs = np.where(x < 1e-4, 1.0, x)
    amp_sq = np.where(x < 1e-4, 1.0 - x**2 / 4.0, (2.0 * j1(xs) / xs) ** 2)
    # E = e_max x^2 / X^2 with X = qR at E_max  =>  dE = 2 e_max x dx / X^2, and
    # integral_0^X [2 J1(x)/x]^2 x dx = 2 (1 - J0(X)^2 - J1(X)^2)
    x_max = float(qr(e_max))
    norm_kev = 2.0 * (1.0 - j0(x_max) ** 2 - j1(x_max) ** 2) * 2.0 * e_max / x_max**2
    return np.where((e >= 0) & (e <= e_max), amp_sq / norm_kev, 0.0)
