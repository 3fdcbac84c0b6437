"""Interpolation and integration of tabulated user spectra (``UserSpectra``) and the grid-resolution warning."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from dmpreserve.physics.halo import StandardHalo
from dmpreserve.physics.signal_models import UserSpectra
from dmpreserve.physics.wimp import parse_energy_range, rate_si
from dmpreserve.reinterpret.engine import GRID_RESOLUTION_RTOL, grid_resolution
from dmpreserve.signals import counts_per_energy_bin

HALO = StandardHalo(rho0_gev_cm3=0.3, v0_km_s=238.0, v_esc_km_s=544.0, v_earth_km_s=250.5)
EDGES = np.linspace(0.5, 100.0, 200)  # the default configuration's true-energy bins (0.5 keV)
#: NR detection efficiency per true-energy bin of the default pipeline's response (first 20 bins; ~1 above):
#: a 6 GeV WIMP (recoils below ~4 keV) is seen only through the steep rise of the efficiency.
EFFICIENCY = np.concatenate(
    [
        [
            0,
            0,
            0.006,
            0.032,
            0.097,
            0.205,
            0.301,
            0.4,
            0.506,
            0.647,
            0.706,
            0.789,
            0.846,
            0.878,
            0.93,
            0.944,
            0.936,
            0.957,
            0.979,
            0.966,
        ],
        np.ones(len(EDGES) - 21),
    ]
)


def _spectra(mass_gev: float, step_kev: float, *, factor: float = 1.0) -> UserSpectra:
    """The SI spectrum tabulated as ``dmpreserve spectrum --energies STEP:120:STEP`` writes it, times ``factor``."""
    e = parse_energy_range(f"{step_kev}:120:{step_kev}")
    r = factor * np.asarray(rate_si(e, mass_gev=mass_gev, cross_section_cm2=1e-45, halo=HALO), float)
    return UserSpectra((mass_gev,), (e,), (r,), path="s.csv")


def _expected(rate, breakpoints=None) -> float:
    return float(counts_per_energy_bin(EDGES, rate=rate, exposure_t_yr=1.0, breakpoints_kev=breakpoints) @ EFFICIENCY)


def _analytic(mass_gev: float) -> float:
    return float(
        counts_per_energy_bin(EDGES, mass_gev=mass_gev, cross_section_cm2=1e-45, halo=HALO, exposure_t_yr=1.0)
        @ EFFICIENCY
    )


def test_6gev_on_half_kev_grid_within_one_percent() -> None:
    """The issue's case: 6 GeV SI tabulated every 0.5 keV, x2. Linear interpolation was 14 % high."""
    sp = _spectra(6.0, 0.5, factor=2.0)
    analytic = 2.0 * _analytic(6.0)
    linear = _expected(sp.rate(0, rule="linear"), sp.breakpoints_kev(0))
    assert linear / analytic > 1.10  # the old rule (the limit came out 0.437x instead of 0.5x)
    ratio = _expected(sp.rate(0), sp.breakpoints_kev(0)) / analytic
    assert ratio == pytest.approx(1.0, abs=0.01)


@pytest.mark.parametrize(("mass", "step"), [(6.0, 0.05), (8.17325, 0.5), (50.0, 0.5), (50.0, 1.0), (1000.0, 2.0)])
def test_finer_grids_and_heavier_masses(mass: float, step: float) -> None:
    sp = _spectra(mass, step)
    assert _expected(sp.rate(0), sp.breakpoints_kev(0)) / _analytic(mass) == pytest.approx(1.0, abs=0.003)


def test_log_interpolation_is_exact_for_exponentials_and_zero_outside() -> None:
    e = np.linspace(1.0, 40.0, 14)
    sp = UserSpectra((10.0,), (e,), (3.0 * np.exp(-e / 4.0),))
    x = np.linspace(1.0, 40.0, 1001)
    for rule in ("log_pchip", "log_linear"):
        np.testing.assert_allclose(sp.rate(0, rule=rule)(x), 3.0 * np.exp(-x / 4.0), rtol=1e-12)
    assert np.all(sp.rate(0)(np.array([0.5, 40.5])) == 0.0)
    assert sp.rate(0, scale=2.0)(np.array([1.0]))[0] == pytest.approx(6.0 * np.exp(-0.25))


def test_zero_nodes_interpolate_linearly_and_never_overshoot() -> None:
    e = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    r = np.array([0.0, 4.0, 2.0, 1.0, 0.0, 0.0])
    sp = UserSpectra((10.0,), (e,), (r,))
    rate = sp.rate(0)
    assert rate(np.array([1.5, 4.5, 5.5])) == pytest.approx([2.0, 0.5, 0.0])  # intervals with a zero end
    x = np.linspace(2.0, 4.0, 201)
    assert np.all(np.diff(rate(x)) <= 0) and np.all(rate(x) <= 4.0)  # monotone data: monotone interpolant


def test_coarse_grid_warns(caplog: pytest.LogCaptureFixture) -> None:
    sp = _spectra(6.0, 0.5)
    with caplog.at_level(logging.WARNING, logger="dmpreserve"):
        change = grid_resolution(sp, 0, lambda rate: _expected(rate, sp.breakpoints_kev(0)))
    assert change > GRID_RESOLUTION_RTOL
    assert "s.csv: mass 6 GeV: the energy grid does not resolve the spectrum" in caplog.text


def test_fine_grid_does_not_warn(caplog: pytest.LogCaptureFixture) -> None:
    sp = _spectra(50.0, 0.5)
    with caplog.at_level(logging.WARNING, logger="dmpreserve"):
        change = grid_resolution(sp, 0, lambda rate: _expected(rate, sp.breakpoints_kev(0)))
    assert change < GRID_RESOLUTION_RTOL and not caplog.records
