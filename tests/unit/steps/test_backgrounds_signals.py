"""Tests of dmpreserve.signals (and the exposure the backgrounds carry) on the session's mock-data pipeline outputs.

The background model's tests are in tests/unit/backgrounds/."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy.integrate import quad

from dmpreserve.artifacts.reduced import read_reduced
from dmpreserve.config import Binning
from dmpreserve.files import read_json
from dmpreserve.physics.constants import SPEED_OF_LIGHT_KM_S
from dmpreserve.physics.wimp import XENON_ISOTOPES, rate_si, reduced_mass_gev
from dmpreserve.schema import validate
from dmpreserve.signals import (
    ResponseMatrix,
    counts_per_energy_bin,
    reference_cross_section,
)


@pytest.fixture(scope="module")
def templates(pipeline_dir: Path) -> dict[str, Any]:
    return read_json(pipeline_dir / "backgrounds" / "templates.json")


@pytest.fixture(scope="module")
def signal_doc(pipeline_dir: Path) -> dict[str, Any]:
    return read_json(pipeline_dir / "signal" / "signal.json")


@pytest.fixture(scope="module")
def response(pipeline_dir: Path) -> ResponseMatrix:
    doc = read_json(pipeline_dir / "response" / "response_nr.json")
    b = doc["binning"]
    return ResponseMatrix(
        np.asarray(doc["energy_edges_kev"]),
        Binning(tuple(b["cs1_edges_phd"]), tuple(b["log10_cs2_edges"])),
        np.asarray(doc["matrix"]),
        np.asarray(doc["matrix_err"]),
    )


def test_outputs_match_their_schemas(pipeline_dir: Path, templates, signal_doc) -> None:
    validate(templates, "templates", path="templates.json")
    validate(signal_doc, "signal", path="signal.json")
    validate(read_json(pipeline_dir / "response" / "response_nr.json"), "response", path="response_nr.json")


# ------------------------------------------------------------------------------- backgrounds


def test_exposure_from_fiducial_cuts(mdc_dir: Path, templates) -> None:
    science = read_reduced(mdc_dir / "science.parquet")
    # 60 days of a 5.46 t fiducial volume (see test_selection.test_fiducial_mass_hand_computed)
    nominal = science.meta["exposure"]["exposure_t_yr"]
    assert templates["exposure_t_yr"] == pytest.approx(nominal, rel=0.05)
    assert templates["exposure_t_yr"] == pytest.approx(5.4637 * 60 / 365.25, rel=0.02)


# ------------------------------------------------------------------------------------ signal


def test_response_rows_are_probabilities(response: ResponseMatrix) -> None:
    """Each true-energy row is P(pass all cuts and land in bin k | fiducial NR).

    The denominator is the *expected* number of fiducial events (N_generated x volume fraction),
    so a row sum can exceed 1 by a statistical fluctuation; it must not exceed it by more than
    4 standard errors, and the plateau must average at most 1.
    """
    m, err = response.matrix, response.matrix_err
    assert m.shape == (len(response.energy_edges_kev) - 1, response.binning.n_bins)
    assert np.all(m >= 0) and np.all(m <= 1)
    row = m.sum(axis=1)
    row_err = np.sqrt((err**2).sum(axis=1))
    assert np.all(row <= 1 + 4 * row_err + 1e-12), row.max()
    centres = 0.5 * (response.energy_edges_kev[1:] + response.energy_edges_kev[:-1])
    plateau = (centres > 10) & (centres < 40)
    assert 0.85 < row[plateau].mean() < 1.03
    high = (centres > 20) & (centres < 40)
    assert np.all(row[high] > 0.5)
    assert row[centres < 1.0].max() < 0.1  # far below threshold nothing passes
    assert row[centres > 90].max() < 0.1  # cS1 above the ROI


def test_acceptance_plausible_at_high_energy(pipeline_dir: Path) -> None:
    from dmpreserve.files import read_csv

    acc = read_csv(pipeline_dir / "selection" / "acceptance.csv", required=("energy_kev", "acceptance"))
    e = np.array([float(v) for v in acc["energy_kev"]])
    a = np.array([float(v) for v in acc["acceptance"]])
    sel = (e > 20) & (e < 40)
    assert sel.sum() > 10
    assert np.all(a[sel] > 0.5)
    assert np.mean(a[sel]) < 1.05


def test_signal_templates_fold_the_spectrum_and_scale_linearly(signal_doc, response, small_config, templates) -> None:
    halo = small_config.halo
    exposure = signal_doc["exposure_t_yr"]
    assert exposure == templates["exposure_t_yr"]
    assert signal_doc["masses_gev"] == list(small_config.masses_gev)
    for m, ref, tmpl, n in zip(
        signal_doc["masses_gev"],
        signal_doc["reference_cross_section_cm2"],
        signal_doc["templates"],
        signal_doc["expected_events"],
    ):
        tmpl = np.asarray(tmpl)
        assert tmpl.shape == (response.binning.n_bins,)
        assert np.all(tmpl >= 0)
        assert tmpl.sum() == pytest.approx(n, rel=1e-12)
        per_e = counts_per_energy_bin(
            response.energy_edges_kev, mass_gev=m, cross_section_cm2=ref, halo=halo, exposure_t_yr=exposure
        )
        np.testing.assert_allclose(response.fold(per_e), tmpl, rtol=1e-9, atol=1e-15 * n)
        triple = counts_per_energy_bin(
            response.energy_edges_kev, mass_gev=m, cross_section_cm2=3 * ref, halo=halo, exposure_t_yr=exposure
        )
        np.testing.assert_allclose(response.fold(triple), 3 * tmpl, rtol=1e-9, atol=1e-15 * n)
        double_exposure = counts_per_energy_bin(
            response.energy_edges_kev, mass_gev=m, cross_section_cm2=ref, halo=halo, exposure_t_yr=2 * exposure
        )
        np.testing.assert_allclose(double_exposure, 2 * per_e, rtol=1e-12)


def test_reference_cross_section_is_a_power_of_ten(signal_doc, small_config) -> None:
    target = small_config["signal"]["target_events_at_reference"]
    for ref, n in zip(signal_doc["reference_cross_section_cm2"], signal_doc["expected_events"]):
        exponent = math.log10(ref)
        assert exponent == pytest.approx(round(exponent), abs=1e-12)
        assert -50 < exponent < -40
        # nearest power of ten in log: the events at reference lie within a factor sqrt(10) of the target
        assert target / math.sqrt(10) <= n <= target * math.sqrt(10)


@pytest.mark.parametrize(
    ("events_at_1e45", "target", "expected"),
    [
        (10.0, 10.0, 1e-45),
        (1.0, 10.0, 1e-44),
        (2.9, 10.0, 1e-44),
        (3.3, 10.0, 1e-45),
        (1000.0, 10.0, 1e-47),
        (0.0, 10.0, 1e-40),
    ],
)
def test_reference_cross_section_rounding(events_at_1e45: float, target: float, expected: float) -> None:
    # 10 x 1e-45 / 2.9 = 3.4e-45 lies above 10**-44.5 = 3.16e-45 (rounds up); 10 x 1e-45 / 3.3 = 3.0e-45 below
    assert reference_cross_section(events_at_1e45, target) == expected


def _isotope_endpoints_kev(mass_gev: float, halo) -> np.ndarray:
    beta = halo.v_max_km_s / SPEED_OF_LIGHT_KM_S
    return np.array(
        [2.0 * reduced_mass_gev(mass_gev, iso.mass_gev) ** 2 * beta**2 / iso.mass_gev * 1e6 for iso in XENON_ISOTOPES]
    )


def _quad_counts(edges: np.ndarray, idx: np.ndarray, *, mass_gev: float, halo, exposure: float) -> np.ndarray:
    def f(e: float) -> float:
        return float(rate_si(np.array([e]), mass_gev=mass_gev, cross_section_cm2=1e-45, halo=halo)[0])

    ends = _isotope_endpoints_kev(mass_gev, halo)
    out = []
    for i in idx:
        lo, hi = edges[i], edges[i + 1]
        pts = [x for x in ends if lo < x < hi] or None
        out.append(exposure * quad(f, lo, hi, points=pts, epsabs=0.0, epsrel=1e-10, limit=200)[0])
    return np.array(out)


@pytest.mark.parametrize("mass_gev", [10.0, 46.4159, 1000.0])
def test_counts_per_energy_bin_matches_quad(small_config, mass_gev: float) -> None:
    """Gauss-Legendre bin integrals agree with adaptive quadrature to 1e-6 in every bin where the spectrum is smooth."""
    halo = small_config.halo
    edges = small_config.signal_energy_edges_kev
    exposure = 0.9
    counts = counts_per_energy_bin(edges, mass_gev=mass_gev, cross_section_cm2=1e-45, halo=halo, exposure_t_yr=exposure)
    assert counts.shape == (len(edges) - 1,)
    ends = _isotope_endpoints_kev(mass_gev, halo)
    kink = (edges[1:] > ends.min()) & (edges[:-1] < ends.max())
    idx = np.array([i for i in range(0, len(edges) - 1, 9) if not kink[i]] + [len(edges) - 2])
    idx = np.unique(idx[~kink[idx]])
    ref = _quad_counts(edges, idx, mass_gev=mass_gev, halo=halo, exposure=exposure)
    nonzero = ref > 0
    np.testing.assert_allclose(counts[idx][nonzero], ref[nonzero], rtol=1e-6)
    np.testing.assert_array_equal(counts[idx][~nonzero], 0.0)
    # above every isotope's kinematic endpoint there is no signal
    assert np.all(counts[edges[:-1] >= ends.max()] == 0.0)
    # the total over all bins (kink bins included) matches the integral of the whole range
    total, _ = quad(
        lambda e: float(rate_si(np.array([e]), mass_gev=mass_gev, cross_section_cm2=1e-45, halo=halo)[0]),
        edges[0],
        min(edges[-1], ends.max()),
        points=[x for x in ends if edges[0] < x < edges[-1]] or None,
        epsabs=0.0,
        epsrel=1e-10,
        limit=400,
    )
    assert counts.sum() == pytest.approx(exposure * total, rel=1e-6)


def test_counts_per_energy_bin_in_endpoint_bins(small_config) -> None:
    """Bins that contain the isotopes' kinematic endpoints (kinks of dR/dE) are split there: 1e-6 like the rest."""
    halo = small_config.halo
    edges = small_config.signal_energy_edges_kev
    ends = _isotope_endpoints_kev(10.0, halo)
    kink = np.flatnonzero((edges[1:] > ends.min()) & (edges[:-1] < ends.max()))
    counts = counts_per_energy_bin(edges, mass_gev=10.0, cross_section_cm2=1e-45, halo=halo, exposure_t_yr=1.0)
    ref = _quad_counts(edges, kink, mass_gev=10.0, halo=halo, exposure=1.0)
    np.testing.assert_allclose(counts[kink], ref, rtol=1e-6)


@pytest.mark.parametrize("mass_gev", [6.0, 10.0, 100.0])
def test_kinematic_breakpoints(small_config, mass_gev: float) -> None:
    """Elastic: one endpoint per isotope at v_esc + v_E, one kink at v_esc - v_E; v_min there equals the speed."""
    from dmpreserve.physics.nr_models import _vmin_km_s, kinematic_breakpoints_kev

    halo = small_config.halo
    bp = kinematic_breakpoints_kev(mass_gev, halo)
    assert len(bp) == 2 * len(XENON_ISOTOPES) and np.all(np.diff(bp) > 0)
    np.testing.assert_allclose(bp[len(XENON_ISOTOPES) :], np.sort(_isotope_endpoints_kev(mass_gev, halo)), rtol=1e-12)
    # inelastic: two energies per isotope and speed where v_min(E) = v; none when delta is too large
    delta = 20.0
    bp_in = kinematic_breakpoints_kev(mass_gev * 10, halo, delta_kev=delta)
    speeds = (halo.v_esc_km_s + halo.v_earth_km_s, halo.v_esc_km_s - halo.v_earth_km_s)
    for e in bp_in:
        v = [_vmin_km_s(np.array([e]), mass_gev * 10, iso.mass_gev, delta)[0] for iso in XENON_ISOTOPES]
        assert min(abs(x - s) for x in v for s in speeds) < 1e-6 * speeds[0]
    assert len(kinematic_breakpoints_kev(mass_gev, halo, delta_kev=1e4)) == 0
    # zero rate above the highest breakpoint, non-zero just below it
    assert rate_si(np.array([bp.max() * 1.0001]), mass_gev=mass_gev, cross_section_cm2=1e-45, halo=halo)[0] == 0.0
    assert rate_si(np.array([bp.max() * 0.999]), mass_gev=mass_gev, cross_section_cm2=1e-45, halo=halo)[0] > 0.0
