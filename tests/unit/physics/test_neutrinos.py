"""Tests of the 8B CEvNS spectrum (dmpreserve.physics.neutrinos) and neutron shapes (.neutrons)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import scipy.constants as sc
from scipy.integrate import quad, trapezoid
from scipy.special import j1, roots_legendre

from dmpreserve.errors import InvalidSpectrum
from dmpreserve.physics.neutrinos import (
    B8_ENDPOINT_CENTRE_MEV,
    B8_ENDPOINT_WIDTH_MEV,
    B8_FLUX_CM2_S,
    b8_cevns_kernel,
    b8_mean_energy_mev,
    b8_spectrum,
    rate_cevns_8b,
    weak_charge,
)
from dmpreserve.physics.neutrons import (
    NEUTRON_E_FOLD_KEV,
    dd_calibration_spectrum_shape,
    dd_max_recoil_kev,
    neutron_spectrum_shape,
)
from dmpreserve.physics.wimp import XENON_ISOTOPES, helm_form_factor_sq, xenon_mass_fractions

REFERENCE_DIR = Path(__file__).resolve().parents[3].parent / "shared" / "reference"
B8_TABLE = REFERENCE_DIR / "solar_neutrinos" / "8B.txt"
needs_b8_table = pytest.mark.skipif(
    not B8_TABLE.exists(),
    reason=f"8B reference table not found at {B8_TABLE} (public NeutrinoFog "
    "data/neutrinos/normalised/8B.txt; see shared/reference/README.md)",
)

G_F = sc.physical_constants["Fermi coupling constant"][0]  # GeV^-2
HBARC_GEV_CM = sc.hbar * sc.c / (sc.e * 1e9) * 100.0
GEV_KG = sc.e * 1e9 / sc.c**2
SECONDS_PER_YEAR = 365.25 * 86400.0
E_MAX_TABLE_MEV = 16.4


def _load_table() -> tuple[np.ndarray, np.ndarray]:
    data = np.loadtxt(B8_TABLE, delimiter=",")
    e, p = data[:, 0], data[:, 1]
    return e, p / trapezoid(p, e)


def _targets_per_tonne() -> np.ndarray:
    return np.array(
        [
            w * 1000.0 / (iso.atomic_mass_u * sc.atomic_mass)
            for iso, w in zip(XENON_ISOTOPES, xenon_mass_fractions(), strict=True)
        ]
    )


def _fine_enu_grid_mev(lo: float, hi: float, n: int = 200_001) -> np.ndarray:
    """Dense E_nu grid on [lo, hi] that also contains the kinks of the 8B mixture (its endpoints)."""
    t, lam = roots_legendre(32)
    kinks = B8_ENDPOINT_CENTRE_MEV + B8_ENDPOINT_WIDTH_MEV * 8.0 * t
    grid = np.concatenate([np.linspace(lo, hi, n), kinks[(kinks > lo) & (kinks < hi)]])
    return np.unique(grid)


def _rate_by_integration(
    e_kev: float, enu_mev: np.ndarray, pdf_per_mev: np.ndarray, flux: float = B8_FLUX_CM2_S
) -> float:
    """Independent CEvNS rate: trapezoid over E_nu of flux * phi(E_nu) * dsigma/dE_r, isotope by isotope.

    ``enu_mev``/``pdf_per_mev`` tabulate the normalised spectrum on a dense grid.
    """
    total = 0.0
    for iso, n_t in zip(XENON_ISOTOPES, _targets_per_tonne(), strict=True):
        m_gev = iso.atomic_mass_u * sc.atomic_mass / GEV_KG
        qw = (iso.mass_number - 54) - (1 - 4 * 0.2387) * 54
        e_gev = e_kev * 1e-6
        ff = float(helm_form_factor_sq(e_kev, iso.mass_number, nucleus_mass_gev=m_gev))
        lo_mev = max(math.sqrt(m_gev * e_gev / 2) * 1e3, float(enu_mev[0]))
        if lo_mev >= enu_mev[-1]:
            continue
        keep = enu_mev > lo_mev
        enu = np.concatenate([[lo_mev], enu_mev[keep]])
        pdf = np.concatenate([[np.interp(lo_mev, enu_mev, pdf_per_mev)], pdf_per_mev[keep]])
        enu_gev = enu * 1e-3
        dsig_cm2_kev = (
            G_F**2 * m_gev * qw**2 / (4 * math.pi) * (1 - m_gev * e_gev / (2 * enu_gev**2)) * HBARC_GEV_CM**2 * 1e-6
        )
        total += n_t * flux * ff * trapezoid(pdf * dsig_cm2_kev, enu)
    return total * SECONDS_PER_YEAR


def test_b8_spectrum_normalised_and_mean():
    pieces = [(0, 12.9), (12.9, 14.6), (14.6, 16.4)]
    norm = sum(quad(b8_spectrum, a, b, limit=400, epsrel=1e-12)[0] for a, b in pieces)
    assert norm == pytest.approx(1, abs=1e-9)
    mean = sum(quad(lambda e: e * b8_spectrum(e), a, b, limit=400, epsrel=1e-12)[0] for a, b in pieces)
    assert b8_mean_energy_mev() == pytest.approx(mean, rel=1e-9)
    assert np.all(b8_spectrum(np.linspace(-1, 20, 500)) >= 0)
    assert b8_spectrum(16.5) == 0.0 and b8_spectrum(0.0) == 0.0


def test_b8_kernel_closed_form_matches_numerical_integral():
    grid = _fine_enu_grid_mev(1e-6, E_MAX_TABLE_MEV, 400_001)
    pdf = b8_spectrum(grid)
    for x in (0.0, 3.0, 8.0, 12.0, 14.0, 15.0, 16.0):
        keep = grid > x
        enu = np.concatenate([[x], grid[keep]]) if x > 0 else grid
        phi = np.concatenate([[float(b8_spectrum(x))], pdf[keep]]) if x > 0 else pdf
        num = trapezoid(phi * (1 - x * x / enu**2), enu)
        assert float(b8_cevns_kernel(x)) == pytest.approx(num, rel=1e-6, abs=1e-12), x
    assert float(b8_cevns_kernel(0.0)) == pytest.approx(1.0, abs=1e-12)


@needs_b8_table
def test_b8_parametrisation_against_reference_table():
    """Shape agreement with the Winter et al./Bahcall spectrum (NeutrinoFog table).

    Achieved: integrated absolute difference 0.064 %, mean energy -0.015 %, CEvNS kernel within
    1 % up to E_nu,min = 12.75 MeV (E_r = 2.7 keV) and within 8 % up to 15.5 MeV (E_r = 3.9 keV).
    """
    e, p = _load_table()
    fit = b8_spectrum(e)
    assert trapezoid(np.abs(fit - p), e) < 1.5e-3
    assert b8_mean_energy_mev() == pytest.approx(trapezoid(e * p, e), rel=1e-3)
    xs = np.arange(0.5, 15.51, 0.25)
    k_tab = np.array([trapezoid(p[e >= x] * (1 - x * x / e[e >= x] ** 2), e[e >= x]) for x in xs])
    ratio = b8_cevns_kernel(xs) / k_tab
    assert np.all(np.abs(ratio[xs <= 12.75] - 1) < 0.01)
    assert np.all(np.abs(ratio - 1) < 0.10)


@needs_b8_table
def test_cevns_rate_against_rate_from_reference_table():
    e, p = _load_table()
    fine = np.linspace(e[0], e[-1], 200_001)
    for e_r, tol in ((0.1, 1e-3), (1.0, 1e-3), (2.0, 2e-3), (2.5, 0.01), (3.0, 0.06), (3.5, 0.06)):
        ref = _rate_by_integration(e_r, fine, np.interp(fine, e, p))
        assert float(rate_cevns_8b(e_r)) == pytest.approx(ref, rel=tol), e_r


def test_cevns_rate_matches_independent_integration():
    grid = _fine_enu_grid_mev(1e-6, E_MAX_TABLE_MEV, 400_001)
    pdf = b8_spectrum(grid)
    for e_r in (0.0, 0.3, 1.0, 2.5, 3.5, 4.2):
        ref = _rate_by_integration(e_r, grid, pdf)
        assert float(rate_cevns_8b(e_r)) == pytest.approx(ref, rel=1e-6), e_r


def test_cevns_literature_and_scaling():
    """Flux-weighted CEvNS cross-section on Xe vs. XENONnT's measurement, and scaling checks.

    XENONnT (PRL 133 (2024) 191002, arXiv:2408.02877) measured a flux-weighted 8B CEvNS cross-section
    on Xe of (1.1 +0.8 -0.5) x 1e-39 cm^2, consistent with the Standard Model. Without form factor the
    SM value is G_F^2 Q_W^2 <E_nu^2> / (4 pi); the form factor lowers it by ~1 %.
    """
    e = np.linspace(0.0, 5.0, 5001)
    rate = rate_cevns_8b(e)
    total_t_yr = trapezoid(rate, e)
    n_t = _targets_per_tonne()
    sigma_bar = total_t_yr / SECONDS_PER_YEAR / B8_FLUX_CM2_S / n_t.sum()
    assert 0.6e-39 < sigma_bar < 1.9e-39
    e2 = quad(lambda x: x * x * b8_spectrum(x), 0, E_MAX_TABLE_MEV, points=[12.9, 14.6], limit=400)[0] * 1e-6
    qw2 = np.array([weak_charge(mass_number=i.mass_number) ** 2 for i in XENON_ISOTOPES])
    sigma_no_ff = float(np.sum(n_t * qw2) / n_t.sum()) * G_F**2 * e2 / (4 * math.pi) * HBARC_GEV_CM**2
    assert 0.97 < sigma_bar / sigma_no_ff < 1.0
    # ~ 900 events / (t yr) above 0 keV, ~ 90 above 1 keV (this implementation: 913 and 90.7)
    assert 850 < total_t_yr < 980
    assert 80 < trapezoid(rate[e >= 1.0], e[e >= 1.0]) < 100
    assert np.all(np.diff(rate) <= 1e-12 * rate[0])  # monotone up to 1e-18 roundoff at the endpoint
    assert np.all(rate[e > 4.7] == 0.0) and rate[e < 4.5][-1] > 0
    assert np.allclose(rate_cevns_8b(e, flux_cm2_s=2 * B8_FLUX_CM2_S), 2 * rate, rtol=1e-12, atol=0)


def test_weak_charge_and_bad_input():
    assert weak_charge(mass_number=132) == pytest.approx(78 - (1 - 4 * 0.2387) * 54)
    with pytest.raises(InvalidSpectrum):
        rate_cevns_8b(-1.0)
    with pytest.raises(InvalidSpectrum):
        rate_cevns_8b(1.0, flux_cm2_s=0.0)


# ---------------------------------------------------------------- neutrons


def test_neutron_shape():
    assert quad(neutron_spectrum_shape, 0, 100, epsrel=1e-12)[0] == pytest.approx(1.0, abs=1e-10)
    e = np.linspace(0, 100, 1001)
    s = neutron_spectrum_shape(e)
    assert np.all(np.diff(s) < 0)
    assert s[0] / s[200] == pytest.approx(math.exp(20 / NEUTRON_E_FOLD_KEV))
    assert neutron_spectrum_shape(100.5) == 0.0 and neutron_spectrum_shape(-0.1) == 0.0
    assert quad(lambda x: neutron_spectrum_shape(x, e_fold_kev=7.0), 0, 100)[0] == pytest.approx(1.0)
    with pytest.raises(InvalidSpectrum):
        neutron_spectrum_shape(e, e_fold_kev=0.0)
    with pytest.raises(InvalidSpectrum):
        neutron_spectrum_shape(float("nan"))


def _fitted_e_fold(recoil_pdf) -> float:
    """E-fold of an exponential fitted over 5-50 keV to a Maxwellian(T = 1.3 MeV)-averaged recoil pdf.

    ``recoil_pdf(e_kev_array, e_n_mev)`` is the recoil-energy pdf of one neutron energy.
    """
    e = np.linspace(5, 50, 91)
    en = np.linspace(0.02, 12.0, 1200)
    weight = np.sqrt(en) * np.exp(-en / 1.3)
    spec = trapezoid(weight[:, None] * np.array([recoil_pdf(e, v) for v in en]), en, axis=0)
    return -1.0 / np.polyfit(e, np.log(spec), 1)[0]


def test_neutron_e_fold_is_bracketed_by_limiting_models():
    """The docstring's bracketing claim: isotropic c.m. scattering ~27 keV, black disc ~9 keV."""
    kappa = dd_max_recoil_kev(neutron_energy_mev=1.0)  # keV of E_max per MeV of E_n

    def isotropic(e: np.ndarray, en: float) -> np.ndarray:
        return np.where(e <= kappa * en, 1.0 / (kappa * en), 0.0)

    def black_disc(e: np.ndarray, en: float) -> np.ndarray:
        return dd_calibration_spectrum_shape(e, neutron_energy_mev=en)

    iso, bd = _fitted_e_fold(isotropic), _fitted_e_fold(black_disc)
    assert 25.0 < iso < 29.0
    assert 7.0 < bd < 11.0
    assert bd < NEUTRON_E_FOLD_KEV < iso


def test_dd_shape_kinematics_and_normalisation():
    e_max = dd_max_recoil_kev()
    assert e_max == pytest.approx(74.1, abs=0.1)
    total = quad(dd_calibration_spectrum_shape, 0, e_max, limit=200, epsrel=1e-12)[0]
    assert total == pytest.approx(1.0, abs=1e-8)
    assert dd_calibration_spectrum_shape(e_max + 0.01) == 0.0
    assert dd_calibration_spectrum_shape(-0.01) == 0.0
    s = dd_calibration_spectrum_shape(np.linspace(0, 60, 601))
    assert np.all(np.diff(s) < 0)


def test_dd_shape_equals_black_disc_angular_distribution():
    """Independent derivation: dsigma/dOmega ~ [2 J1(qR)/(qR)]^2 with q = 2 k sin(theta/2)."""
    m_n = sc.physical_constants["neutron mass energy equivalent in MeV"][0] * 1e-3
    m_xe = 131.293 * sc.physical_constants["atomic mass constant energy equivalent in MeV"][0] * 1e-3
    hbarc_gev_fm = sc.hbar * sc.c / (sc.e * 1e9) * 1e15
    p_cm = math.sqrt(2 * m_n * 2.45e-3) * m_xe / (m_n + m_xe)  # GeV
    k = p_cm / hbarc_gev_fm
    radius = 1.2 * 131.293 ** (1 / 3)

    def dsig_domega(c: float) -> float:
        x = 2 * k * math.sqrt((1 - c) / 2) * radius
        return 1.0 if x == 0 else (2 * j1(x) / x) ** 2

    norm = quad(dsig_domega, -1, 1, epsrel=1e-12)[0]
    e_max = 2 * p_cm**2 / m_xe * 1e6  # keV
    assert dd_max_recoil_kev() == pytest.approx(e_max, rel=1e-3)
    for e_r in (0.5, 10.0, 30.0, 50.0, 70.0):
        c = 1 - 2 * e_r / e_max
        expected = dsig_domega(c) / norm * 2 / e_max
        assert float(dd_calibration_spectrum_shape(e_r * dd_max_recoil_kev() / e_max)) == pytest.approx(
            expected * e_max / dd_max_recoil_kev(), rel=1e-6
        ), e_r
