"""Nuclear-recoil spectra beyond SI contact scattering: spin-dependent, light mediator, inelastic.

All three generalise the SI rate of :mod:`dmpreserve.physics.wimp` for one isotope::

    dR/dE = rho0 / m_chi * C(q) / (2 mu_n^2) * P(q) * eta(v_min)

* **SI** (Lewin & Smith 1996): C = sigma_n A^2 F_Helm^2(q).
* **Spin-dependent**, neutron-only or proton-only (Engel, Pittel & Vogel 1992; Klos et al.,
  PRD 88 (2013) 083516): C = sigma_{n,p} 4 pi S_{n,p}(q) / (3 (2J + 1)), summed over Xe-129
  (J = 1/2) and Xe-131 (J = 3/2) with their mass fractions (:mod:`dmpreserve.physics.sd_structure`).
* **Light mediator** of mass m_phi (e.g. Fornengo, Panci & Regis, PRD 84 (2011) 115002;
  XENON1T/PandaX light-mediator analyses): P(q) = (m_phi^2 + q_ref^2)^2 / (m_phi^2 + q^2)^2, so that
  sigma is the cross section at momentum transfer q_ref (q_ref = 0: the contact cross section;
  m_phi -> infinity recovers the contact interaction).  Without a mediator P = 1.
* **Inelastic** scattering to a state heavier by delta (Tucker-Smith & Weiner, PRD 64 (2001) 043502):
  v_min = (m_N E / mu_N + delta) / sqrt(2 m_N E); delta = 0 is elastic scattering.

mu_n is the WIMP-nucleon reduced mass with the proton mass (as for SI), q = sqrt(2 m_N E).
Units: energies keV, masses GeV/c^2, delta keV, m_phi and q_ref MeV/c, cross sections cm^2,
rates events / (t yr keV).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from numpy.typing import ArrayLike

from dmpreserve.errors import InvalidSpectrum
from dmpreserve.physics.constants import (
    GEV_TO_KG,
    KEV_TO_J,
    PROTON_MASS_GEV,
    SECONDS_PER_YEAR,
    SPEED_OF_LIGHT_KM_S,
    TONNE_KG,
)
from dmpreserve.physics.halo import StandardHalo, mean_inverse_speed
from dmpreserve.physics.sd_structure import NUCLEAR_SPIN, structure_function
from dmpreserve.physics.wimp import XENON_ISOTOPES, helm_form_factor_sq, reduced_mass_gev, xenon_mass_fractions

#: Couplings understood by :func:`rate_nr`.
COUPLINGS = ("si", "sd_n", "sd_p")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Interaction:
    """A WIMP-nucleus interaction.

    Attributes:
        coupling: ``si`` (spin-independent, isospin-conserving), ``sd_n`` (spin-dependent neutron-only)
            or ``sd_p`` (spin-dependent proton-only).
        mediator_mass_mev: Mediator mass m_phi [MeV/c^2]; None: contact interaction.
        reference_momentum_mev: q_ref [MeV/c] at which the cross section is defined (light mediator).
        delta_kev: Inelastic mass splitting delta [keV]; 0: elastic.
    """

    coupling: str = "si"
    mediator_mass_mev: float | None = None
    reference_momentum_mev: float = 0.0
    delta_kev: float = 0.0

    def __post_init__(self) -> None:
        """Validate the parameters."""
        if self.coupling not in COUPLINGS:
            raise InvalidSpectrum(f"unknown coupling {self.coupling!r}; expected one of {COUPLINGS}", field="coupling")
        if self.mediator_mass_mev is not None and not (
            math.isfinite(self.mediator_mass_mev) and self.mediator_mass_mev > 0
        ):
            raise InvalidSpectrum("must be a finite positive number of MeV", field="mediator_mass_mev")
        for name in ("reference_momentum_mev", "delta_kev"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise InvalidSpectrum("must be a finite number >= 0", field=name)


def _propagator(q_mev: np.ndarray, interaction: Interaction) -> np.ndarray:
    if interaction.mediator_mass_mev is None:
        return np.ones_like(q_mev)
    m2 = interaction.mediator_mass_mev**2
    return ((m2 + interaction.reference_momentum_mev**2) / (m2 + q_mev**2)) ** 2


def _vmin_km_s(e_kev: np.ndarray, mass_gev: float, m_n_gev: float, delta_kev: float) -> np.ndarray:
    mu_n = reduced_mass_gev(mass_gev, m_n_gev)
    e_gev = np.maximum(e_kev, 1e-12) * 1e-6
    beta = (m_n_gev * e_gev / mu_n + delta_kev * 1e-6) / np.sqrt(2.0 * m_n_gev * e_gev)
    return SPEED_OF_LIGHT_KM_S * beta


def kinematic_breakpoints_kev(mass_gev: float, halo: StandardHalo, *, delta_kev: float = 0.0) -> np.ndarray:
    """Recoil energies where dR/dE has a kink: v_min(E) = v_esc + v_E or |v_esc - v_E|, for every isotope.

    Above v_esc + v_E no dark matter is fast enough (the kinematic endpoint, per isotope); at
    |v_esc - v_E| the truncated halo's mean inverse speed changes form.  For inelastic scattering
    (``delta_kev`` > 0) each speed gives up to two energies.  Quadrature rules over energy bins
    should split bins there (:func:`dmpreserve.signals.counts_per_energy_bin`).

    Returns:
        Sorted, unique energies [keV] (empty where no recoil is kinematically allowed).
    """
    out = []
    delta_gev = delta_kev * 1e-6
    for v in (halo.v_esc_km_s + halo.v_earth_km_s, abs(halo.v_esc_km_s - halo.v_earth_km_s)):
        beta = v / SPEED_OF_LIGHT_KM_S
        for iso in XENON_ISOTOPES:
            m_n = iso.mass_gev
            a = m_n / reduced_mass_gev(mass_gev, m_n)
            # v_min(E) = v  <=>  a u^2 - sqrt(2 m_N) beta u + delta = 0,  u = sqrt(E [GeV])
            b = math.sqrt(2.0 * m_n) * beta
            disc = b * b - 4.0 * a * delta_gev
            if disc < 0:
                continue
            for u in ((b - math.sqrt(disc)) / (2.0 * a), (b + math.sqrt(disc)) / (2.0 * a)):
                if u > 0:
                    out.append(u * u * 1e6)
    return np.unique(np.array(out, dtype=float))


def _coupling_factor(e_kev: np.ndarray, *, mass_number: int, m_n_gev: float, coupling: str) -> np.ndarray:
    if coupling == "si":
        return mass_number**2 * helm_form_factor_sq(e_kev, mass_number, nucleus_mass_gev=m_n_gev)
    spin = NUCLEAR_SPIN.get(mass_number)
    if spin is None:
        return np.zeros_like(e_kev)
    s = structure_function(e_kev, isotope=mass_number, coupling=coupling[-1], nucleus_mass_gev=m_n_gev)
    return 4.0 * math.pi * s / (3.0 * (2.0 * spin + 1.0))


def rate_nr(
    energy_kev: ArrayLike, *, mass_gev: float, cross_section_cm2: float, halo: StandardHalo, interaction: Interaction
) -> np.ndarray:
    """Recoil spectrum on natural xenon for a general :class:`Interaction`.

    With ``Interaction()`` (SI, contact, elastic) this equals :func:`dmpreserve.physics.wimp.rate_si`.

    Args:
        energy_kev: Nuclear-recoil energies [keV], finite and >= 0.
        mass_gev: WIMP mass [GeV/c^2], > 0.
        cross_section_cm2: WIMP-nucleon cross section (SI, or SD neutron/proton) [cm^2], >= 0.
        halo: Halo model.
        interaction: Coupling, mediator and mass splitting.

    Returns:
        dR/dE [events / (t yr keV)].

    Raises:
        InvalidSpectrum: On bad arguments.
    """
    e = np.asarray(energy_kev, dtype=float)
    if not np.all(np.isfinite(e)) or np.any(e < 0):
        raise InvalidSpectrum("recoil energies must be finite and >= 0 keV", field="energy_kev")
    if not (math.isfinite(mass_gev) and mass_gev > 0):
        raise InvalidSpectrum(f"mass must be a finite positive number of GeV, got {mass_gev!r}", field="mass_gev")
    if not (math.isfinite(cross_section_cm2) and cross_section_cm2 >= 0):
        raise InvalidSpectrum("cross section must be finite and >= 0 cm^2", field="cross_section_cm2")
    mu_p_kg = reduced_mass_gev(mass_gev, PROTON_MASS_GEV) * GEV_TO_KG
    n_chi_m3 = halo.rho0_gev_cm3 / mass_gev * 1e6
    # same unit chain as rate_si_isotope: 1/(kg s J) -> events/(t yr keV)
    norm = n_chi_m3 * cross_section_cm2 * 1e-4 / (2.0 * mu_p_kg**2) * TONNE_KG * SECONDS_PER_YEAR * KEV_TO_J
    total = np.zeros(e.shape)
    for iso, w in zip(XENON_ISOTOPES, xenon_mass_fractions(), strict=True):
        m_n = iso.mass_gev
        eta_s_m = mean_inverse_speed(_vmin_km_s(e, mass_gev, m_n, interaction.delta_kev), halo) * 1e-3
        q_mev = np.sqrt(2.0 * m_n * e * 1e-6) * 1e3
        c = _coupling_factor(e, mass_number=iso.mass_number, m_n_gev=m_n, coupling=interaction.coupling)
        total = total + w * norm * c * _propagator(q_mev, interaction) * eta_s_m
    return total
