"""Spin-independent elastic WIMP-xenon recoil spectrum.

Differential rate per unit target mass for one isotope of mass number A and nuclear mass m_N::

    dR/dE = rho0 / m_chi * sigma_p * A^2 / (2 mu_p^2) * F^2(E) * eta(v_min)
    v_min = sqrt(m_N E / (2 mu_N^2))

with mu_p = m_chi m_p / (m_chi + m_p) (WIMP-proton reduced mass, isospin-conserving couplings,
so sigma_n = sigma_p), mu_N the WIMP-nucleus reduced mass, F^2 the Helm form factor and eta the
mean inverse speed of :mod:`dmpreserve.physics.halo` (Lewin & Smith 1996; Baxter et al. 2021).
Natural xenon is the mass-fraction-weighted sum over its nine stable isotopes.

Units: energies keV (nuclear-recoil energy), masses GeV/c^2, cross-sections cm^2, rates
events / (t yr keV) with t = 1000 kg of xenon and yr = 365.25 d.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from numpy.typing import ArrayLike

from dmpreserve.errors import InvalidSpectrum
from dmpreserve.physics.constants import (
    AMU_GEV,
    GEV_TO_KG,
    HBAR_C_GEV_FM,
    KEV_TO_J,
    PROTON_MASS_GEV,
    SECONDS_PER_YEAR,
    SPEED_OF_LIGHT_KM_S,
    TONNE_KG,
)
from dmpreserve.physics.halo import StandardHalo, mean_inverse_speed


@dataclasses.dataclass(frozen=True)
class Isotope:
    """A stable target isotope.

    Attributes:
        mass_number: A.
        atomic_mass_u: Atomic mass [u] (AME2020).
        abundance: Isotopic (number) abundance, dimensionless.
    """

    mass_number: int
    atomic_mass_u: float
    abundance: float

    @property
    def mass_gev(self) -> float:
        """Mass [GeV/c^2] (atomic mass; the electrons' 0.02 % is neglected)."""
        return self.atomic_mass_u * AMU_GEV


XENON_ISOTOPES: tuple[Isotope, ...] = (
    # Abundances: IUPAC CIAAW 2016 representative isotopic composition of xenon.
    # Atomic masses: AME2020 (Wang et al., Chinese Phys. C 45 (2021) 030003).
    Isotope(124, 123.905_892_0, 0.000952),
    Isotope(126, 125.904_298_3, 0.000890),
    Isotope(128, 127.903_531_0, 0.019102),
    Isotope(129, 128.904_780_9, 0.264006),
    Isotope(130, 129.903_509_4, 0.040710),
    Isotope(131, 130.905_084_1, 0.212324),
    Isotope(132, 131.904_155_1, 0.269086),
    Isotope(134, 133.905_394_7, 0.104357),
    Isotope(136, 135.907_214_5, 0.088573),
)
"""The nine stable (or quasi-stable) isotopes of natural xenon."""


def xenon_mass_fractions() -> np.ndarray:
    """Mass fractions of the natural-xenon isotopes (same order as ``XENON_ISOTOPES``), summing to 1."""
    w = np.array([iso.abundance * iso.atomic_mass_u for iso in XENON_ISOTOPES])
    return w / w.sum()


def reduced_mass_gev(m1_gev: float, m2_gev: float) -> float:
    """Reduced mass m1 m2 / (m1 + m2) [GeV/c^2]."""
    return m1_gev * m2_gev / (m1_gev + m2_gev)


def helm_form_factor_sq(
    energy_kev: ArrayLike, mass_number: float, *, nucleus_mass_gev: float | None = None
) -> np.ndarray:
    """Helm nuclear form factor squared, Lewin & Smith (1996) parametrisation.

    F(q) = 3 j1(q r_n) / (q r_n) * exp(-(q s)^2 / 2), with s = 0.9 fm, a = 0.52 fm,
    c = 1.23 A^(1/3) - 0.60 fm and r_n^2 = c^2 + 7/3 pi^2 a^2 - 5 s^2; q = sqrt(2 m_N E) / (hbar c).
    As recommended by Baxter et al., EPJC 81 (2021) 907.

    Args:
        energy_kev: Nuclear-recoil energy [keV], >= 0.
        mass_number: Nuclear mass number A (may be non-integer for an effective nucleus).
        nucleus_mass_gev: Nuclear mass [GeV/c^2]; default ``A * 1 u``.

    Returns:
        F^2 (dimensionless), same shape as ``energy_kev``; F^2(0) = 1.
    """
    e = np.asarray(energy_kev, dtype=float)
    m_n = mass_number * AMU_GEV if nucleus_mass_gev is None else nucleus_mass_gev
    s_fm, a_fm = 0.9, 0.52
    c_fm = 1.23 * mass_number ** (1.0 / 3.0) - 0.60
    r_n_fm = math.sqrt(c_fm**2 + 7.0 / 3.0 * math.pi**2 * a_fm**2 - 5.0 * s_fm**2)
    q_fm = np.sqrt(2.0 * m_n * np.maximum(e, 0.0) * 1e-6) / HBAR_C_GEV_FM  # [1/fm]; E keV -> GeV
    x = q_fm * r_n_fm
    small = x < 1e-3
    xs = np.where(small, 1.0, x)
    # 3 j1(x)/x with j1(x) = sin(x)/x^2 - cos(x)/x; series 1 - x^2/10 + x^4/280 near 0
    amp = np.where(small, 1.0 - x**2 / 10.0 + x**4 / 280.0, 3.0 * (np.sin(xs) - xs * np.cos(xs)) / xs**3)
    return amp**2 * np.exp(-((q_fm * s_fm) ** 2))


def _check_rate_args(energy_kev: ArrayLike, mass_gev: float, cross_section_cm2: float) -> np.ndarray:
    e = np.asarray(energy_kev, dtype=float)
    if not np.all(np.isfinite(e)) or np.any(e < 0):
        raise InvalidSpectrum("recoil energies must be finite and >= 0 keV", field="energy_kev")
    if not (math.isfinite(mass_gev) and mass_gev > 0):
        raise InvalidSpectrum(f"WIMP mass must be a finite positive number of GeV, got {mass_gev!r}", field="mass_gev")
    if not (math.isfinite(cross_section_cm2) and cross_section_cm2 >= 0):
        raise InvalidSpectrum(
            f"cross-section must be finite and >= 0 cm^2, got {cross_section_cm2!r}", field="cross_section_cm2"
        )
    return e


def rate_si_isotope(
    energy_kev: ArrayLike,
    *,
    mass_gev: float,
    cross_section_cm2: float,
    mass_number: float,
    nucleus_mass_gev: float,
    halo: StandardHalo | None = None,
    nucleon_mass_gev: float = PROTON_MASS_GEV,
) -> np.ndarray:
    """SI WIMP recoil spectrum on a pure target of one isotope.

    Args:
        energy_kev: Nuclear-recoil energies [keV].
        mass_gev: WIMP mass [GeV/c^2].
        cross_section_cm2: WIMP-nucleon SI cross-section sigma_p [cm^2].
        mass_number: A of the target nucleus.
        nucleus_mass_gev: Target nuclear mass m_N [GeV/c^2].
        halo: Halo model (None: :meth:`StandardHalo.baxter2021`).
        nucleon_mass_gev: Mass used in the WIMP-nucleon reduced mass [GeV/c^2] (proton mass;
            wimprates uses 1 u = 0.9315 GeV, which gives a 1.5 % higher rate at 50 GeV).

    Returns:
        dR/dE [events / (t yr keV)] per tonne of this isotope.
    """
    e = _check_rate_args(energy_kev, mass_gev, cross_section_cm2)
    halo = StandardHalo.baxter2021() if halo is None else halo
    mu_n = reduced_mass_gev(mass_gev, nucleus_mass_gev)  # GeV/c^2
    mu_p = reduced_mass_gev(mass_gev, nucleon_mass_gev)  # GeV/c^2
    # v_min / c = sqrt(m_N E / (2 mu_N^2)), all in GeV (E keV -> GeV)
    vmin_km_s = SPEED_OF_LIGHT_KM_S * np.sqrt(nucleus_mass_gev * e * 1e-6 / (2.0 * mu_n**2))
    eta_s_m = mean_inverse_speed(vmin_km_s, halo) * 1e-3  # s/km -> s/m
    n_chi_m3 = halo.rho0_gev_cm3 / mass_gev * 1e6  # number density [1/cm^3] -> [1/m^3]
    sigma_m2 = cross_section_cm2 * 1e-4  # cm^2 -> m^2
    mu_p_kg = mu_p * GEV_TO_KG
    # [1/m^3] [m^2] [s/m] / [kg^2] = s / (m^2 kg^2) = 1 / (kg s J)   (J = kg m^2 / s^2)
    per_kg_s_j = n_chi_m3 * sigma_m2 * mass_number**2 / (2.0 * mu_p_kg**2) * eta_s_m
    per_t_yr_kev = per_kg_s_j * TONNE_KG * SECONDS_PER_YEAR * KEV_TO_J
    return per_t_yr_kev * helm_form_factor_sq(e, mass_number, nucleus_mass_gev=nucleus_mass_gev)


def rate_si(
    energy_kev: ArrayLike,
    *,
    mass_gev: float,
    cross_section_cm2: float,
    halo: StandardHalo | None = None,
    nucleon_mass_gev: float = PROTON_MASS_GEV,
) -> np.ndarray:
    """Spin-independent WIMP recoil spectrum on natural xenon.

    dR/dE = sum_i w_i dR_i/dE over the nine isotopes with mass fractions w_i (see module docstring).

    Args:
        energy_kev: Nuclear-recoil energies [keV], finite and >= 0.
        mass_gev: WIMP mass [GeV/c^2].
        cross_section_cm2: WIMP-nucleon SI cross-section [cm^2].
        halo: Halo model (None: Baxter et al. 2021, :meth:`StandardHalo.baxter2021`).
        nucleon_mass_gev: Nucleon mass in the WIMP-nucleon reduced mass [GeV/c^2].

    Returns:
        dR/dE [events / (t yr keV)], same shape as ``energy_kev``; zero above the kinematic
        endpoint of the heaviest contributing isotope.

    Raises:
        InvalidSpectrum: On negative or non-finite energies, non-positive mass, or negative
            cross-section.
    """
    e = _check_rate_args(energy_kev, mass_gev, cross_section_cm2)
    halo = StandardHalo.baxter2021() if halo is None else halo
    total = np.zeros(e.shape)
    for iso, w in zip(XENON_ISOTOPES, xenon_mass_fractions(), strict=True):
        total = total + w * rate_si_isotope(
            e,
            mass_gev=mass_gev,
            cross_section_cm2=cross_section_cm2,
            mass_number=iso.mass_number,
            nucleus_mass_gev=iso.mass_gev,
            halo=halo,
            nucleon_mass_gev=nucleon_mass_gev,
        )
    return total


def max_recoil_energy_kev(*, mass_gev: float, halo: StandardHalo | None = None) -> float:
    """Largest recoil energy on natural xenon, 2 mu_N^2 v_max^2 / m_N maximised over isotopes [keV].

    Args:
        mass_gev: WIMP mass [GeV/c^2].
        halo: Halo model (None: Baxter et al. 2021).

    Returns:
        The kinematic endpoint [keV]; :func:`rate_si` vanishes above it.
    """
    halo = StandardHalo.baxter2021() if halo is None else halo
    beta_max = halo.v_max_km_s / SPEED_OF_LIGHT_KM_S
    return max(
        2.0 * reduced_mass_gev(mass_gev, iso.mass_gev) ** 2 * beta_max**2 / iso.mass_gev * 1e6 for iso in XENON_ISOTOPES
    )


@dataclasses.dataclass(frozen=True, kw_only=True)
class SpectrumTable:
    """A tabulated SI WIMP spectrum (arrays are read-only).

    Attributes:
        mass_gev: WIMP mass [GeV/c^2].
        cross_section_cm2: WIMP-nucleon cross-section [cm^2].
        halo: Halo used.
        energies_kev: Recoil energies [keV].
        dr_de_per_t_yr_kev: dR/dE [events / (t yr keV)].
    """

    mass_gev: float
    cross_section_cm2: float
    halo: StandardHalo
    energies_kev: np.ndarray
    dr_de_per_t_yr_kev: np.ndarray

    HEADER = ("energy_kev", "dr_de")
    """CSV column names (dr_de in events / (t yr keV))."""

    def rows(self) -> list[tuple[float, float]]:
        """(energy_kev, dr_de) rows as Python floats, for CSV writing."""
        return [(float(a), float(b)) for a, b in zip(self.energies_kev, self.dr_de_per_t_yr_kev, strict=True)]


def spectrum_table(
    *, mass_gev: float, cross_section_cm2: float, energies_kev: ArrayLike, halo: StandardHalo | None = None
) -> SpectrumTable:
    """Evaluate :func:`rate_si` on an energy grid and bundle the result.

    Args:
        mass_gev: WIMP mass [GeV/c^2].
        cross_section_cm2: WIMP-nucleon cross-section [cm^2].
        energies_kev: 1-D grid of recoil energies [keV] (e.g. from :func:`parse_energy_range`).
        halo: Halo model (None: Baxter et al. 2021).

    Returns:
        The table, with read-only copies of the arrays.

    Raises:
        InvalidSpectrum: If the grid is not 1-D or the parameters are invalid.
    """
    halo = StandardHalo.baxter2021() if halo is None else halo
    e = np.array(energies_kev, dtype=float)
    if e.ndim != 1:
        raise InvalidSpectrum("energy grid must be one-dimensional", field="energies")
    rate = rate_si(e, mass_gev=mass_gev, cross_section_cm2=cross_section_cm2, halo=halo)
    e.flags.writeable = False
    rate.flags.writeable = False
    return SpectrumTable(
        mass_gev=float(mass_gev),
        cross_section_cm2=float(cross_section_cm2),
        halo=halo,
        energies_kev=e,
        dr_de_per_t_yr_kev=rate,
    )


MAX_ENERGY_POINTS = 1_000_000
"""Largest grid :func:`parse_energy_range` accepts."""


def parse_energy_range(text: str) -> np.ndarray:
    """Parse ``"START:STOP:STEP"`` (keV) into an energy grid.

    The grid is ``START, START+STEP, ...`` up to and including STOP when STOP lies on the grid
    (within 1e-9 of a step), i.e. ``"1:50:0.5"`` gives 99 points 1.0, 1.5, ..., 50.0.
    Numbers are parsed with :func:`float` (no evaluation of expressions).

    Args:
        text: The range specification.

    Returns:
        1-D float array [keV].

    Raises:
        InvalidSpectrum: (field ``energies``) if the text is not three numbers separated by ``:``,
            a number is not finite, START < 0, STOP <= START, STEP <= 0, or the grid would have
            more than 1e6 points.
    """
    parts = str(text).split(":")
    if len(parts) != 3:
        raise InvalidSpectrum(f"expected START:STOP:STEP in keV, got {text!r}", field="energies")
    try:
        start, stop, step = (float(p) for p in parts)
    except ValueError:
        raise InvalidSpectrum(f"START:STOP:STEP must be numbers, got {text!r}", field="energies") from None
    if not all(math.isfinite(v) for v in (start, stop, step)):
        raise InvalidSpectrum(f"START, STOP and STEP must be finite, got {text!r}", field="energies")
    if start < 0:
        raise InvalidSpectrum(f"START must be >= 0 keV, got {start:g}", field="energies")
    if stop <= start:
        raise InvalidSpectrum(f"STOP ({stop:g}) must be greater than START ({start:g})", field="energies")
    if step <= 0:
        raise InvalidSpectrum(f"STEP must be > 0 keV, got {step:g}", field="energies")
    n_steps = (stop - start) / step
    if n_steps + 1 > MAX_ENERGY_POINTS:
        raise InvalidSpectrum(f"grid {text!r} would have more than {MAX_ENERGY_POINTS} points", field="energies")
    n = int(math.floor(n_steps + 1e-9)) + 1
    return start + step * np.arange(n, dtype=float)
