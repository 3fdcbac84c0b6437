"""Spectra and their folding through hand-built responses, against analytic integrals and brute-force sums."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy.integrate import quad

from dmpreserve.artifacts.response import LineResponse, ResponseMatrix
from dmpreserve.backgrounds.folding import fold_er, fold_nr, line_weights
from dmpreserve.backgrounds.spectra import read_csv_spectrum, spectrum_from_config
from dmpreserve.config import Binning
from dmpreserve.errors import InvalidConfig, InvalidData
from dmpreserve.physics.double_beta import xe136_2vbb_shape, xe136_decays_per_t_yr

BINNING = Binning((0.0, 1.0, 2.0), (2.0, 3.0, 4.0))  # 2 x 2 = 4 analysis bins
COMMON = {"config_path": "cfg.yaml", "response_path": "resp.json", "field": "$.backgrounds.components.x.spectrum"}


def _csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spectrum.csv"
    path.write_text(text, encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------ spectra


def test_flat_spectrum_integrals() -> None:
    s = spectrum_from_config(
        {"flat": {"energy_min_kev": 2.0, "energy_max_kev": 12.0, "rate_per_t_yr_kev": 3.0}}, field="$"
    )
    assert s.absolute
    assert s.total() == pytest.approx(30.0, rel=1e-14)
    assert s.integrate(0.0, 4.0) == pytest.approx(6.0, rel=1e-14)  # clipped to the support
    assert s.integrate(5.0, 7.0, lambda e: e) == pytest.approx(3.0 * (49 - 25) / 2, rel=1e-13)
    shape = spectrum_from_config({"flat": {"energy_min_kev": 2.0, "energy_max_kev": 12.0}}, field="$")
    assert not shape.absolute


def test_csv_spectrum_is_piecewise_linear(tmp_path: Path) -> None:
    e = [1.0, 2.0, 4.0, 8.0]
    r = [0.0, 5.0, 1.0, 3.0]
    s = read_csv_spectrum(
        _csv(tmp_path, "energy_kev,rate_per_t_yr_kev\n" + "".join(f"{a},{b}\n" for a, b in zip(e, r)))
    )
    trapezoid = sum((e[i + 1] - e[i]) * (r[i] + r[i + 1]) / 2 for i in range(3))
    assert s.total() == pytest.approx(trapezoid, rel=1e-13)
    assert s.integrate(1.5, 3.0) == pytest.approx(quad(lambda x: np.interp(x, e, r), 1.5, 3.0, points=[2.0])[0])
    assert s.rate(np.array([0.5, 9.0])).tolist() == [0.0, 0.0]


@pytest.mark.parametrize(
    ("text", "field", "words"),
    [
        ("energy_kev,rate_per_t_yr_kev\n1,1\n2,nan\n", "rate_per_t_yr_kev", "finite"),
        ("energy_kev,rate_per_t_yr_kev\n1,1\n2,-1\n", "rate_per_t_yr_kev", ">= 0"),
        ("energy_kev,rate_per_t_yr_kev\n2,1\n1,1\n", "energy_kev", "increase"),
        ("energy_kev,rate_per_t_yr_kev\n1,1\n1,1\n", "energy_kev", "increase"),
        ("energy_kev,rate_per_t_yr_kev\n1,1\n", "energy_kev", "2 rows"),
        ("energy_kev,rate\n1,1\n2,1\n", "rate_per_t_yr_kev", "missing"),
        ("energy_kev,rate_per_t_yr_kev\n1,x\n2,1\n", "rate_per_t_yr_kev", "not a number"),
    ],
)
def test_bad_csv_spectrum(tmp_path: Path, text: str, field: str, words: str) -> None:
    path = _csv(tmp_path, text)
    with pytest.raises(InvalidData) as err:
        read_csv_spectrum(path)
    assert err.value.path == str(path) and err.value.field == field and words in err.value.message


def test_xe136_2vbb_against_independent_numbers() -> None:
    """The shape integrates to 1 (scipy quad) and the rate is N_136 ln2 / T_1/2 from the literal constants."""
    q = 2457.83
    assert quad(xe136_2vbb_shape, 0.0, q, limit=200)[0] == pytest.approx(1.0, rel=1e-9)
    n136 = 1e6 / 131.293 * 6.02214076e23 * 0.08857
    assert xe136_decays_per_t_yr() == pytest.approx(n136 * math.log(2) / 2.165e21, rel=1e-12)
    # Primakoff-Rosen at low energy: proportional to K (30 T0^5): ratio of two low energies ~ their ratio
    assert xe136_2vbb_shape(np.array([2.0]))[0] / xe136_2vbb_shape(np.array([1.0]))[0] == pytest.approx(2.0, rel=1e-2)
    spec = spectrum_from_config({"builtin": {"name": "xe136_2vbb"}}, field="$")
    assert spec.absolute and spec.total() == pytest.approx(xe136_decays_per_t_yr(), rel=1e-9)


def test_builtin_shapes_and_parameters() -> None:
    n = spectrum_from_config({"builtin": {"name": "radiogenic_neutrons", "e_fold_kev": 10.0}}, field="$")
    assert not n.absolute and n.total() == pytest.approx(1.0, rel=1e-9)
    with pytest.raises(InvalidConfig) as err:
        spectrum_from_config({"builtin": {"name": "xe136_2vbb", "abundance": 2.0}}, field="$.s")
    assert err.value.field == "$.s.builtin.abundance"


# ------------------------------------------------------------------------------------ folding


def _nr_response() -> ResponseMatrix:
    m = np.array([[0.1, 0.2, 0.0, 0.0], [0.0, 0.3, 0.3, 0.1], [0.0, 0.0, 0.2, 0.5]])
    return ResponseMatrix(np.array([1.0, 2.0, 4.0, 8.0]), BINNING, m, 0.1 * m)


def test_fold_nr_hand_computed() -> None:
    s = spectrum_from_config(
        {"flat": {"energy_min_kev": 1.0, "energy_max_kev": 6.0, "rate_per_t_yr_kev": 2.0}}, field="$"
    )
    resp = _nr_response()
    folded = fold_nr(s, resp, 0.5, **COMMON)
    w = 0.5 * np.array([2.0 * 1, 2.0 * 2, 2.0 * 2])  # events per energy bin: 1-2, 2-4, 4-6 keV (support ends at 6)
    np.testing.assert_allclose(folded.template, w @ resp.matrix, rtol=1e-13)
    np.testing.assert_allclose(folded.stat_err, np.sqrt((w**2) @ (resp.matrix_err**2)), rtol=1e-13)


def test_fold_nr_refuses_a_spectrum_beyond_a_live_edge() -> None:
    """Below 1 keV the first row still lands 30% in the ROI: a spectrum starting at 0 keV cannot be folded."""
    resp = _nr_response()
    s = spectrum_from_config(
        {"flat": {"energy_min_kev": 0.0, "energy_max_kev": 3.0, "rate_per_t_yr_kev": 1.0}}, field="$"
    )
    with pytest.raises(InvalidData) as err:
        fold_nr(s, ResponseMatrix(resp.energy_edges_kev, BINNING, resp.matrix[::-1], resp.matrix_err), 1.0, **COMMON)
    assert err.value.path == "cfg.yaml" and "below" in err.value.message and "resp.json" in err.value.message


def _line_response() -> LineResponse:
    m = np.array([[0.0, 0.1, 0.0, 0.0], [0.2, 0.4, 0.1, 0.0], [0.0, 0.3, 0.3, 0.2], [0.0, 0.0, 0.0, 0.0]])
    return LineResponse(np.array([1.0, 2.0, 4.0, 6.0]), BINNING, m, 0.05 * m)


def test_line_weights_match_a_brute_force_integral_of_the_interpolated_response() -> None:
    """sum_j w_j R_j = integral of rate(E) LineResponse.row(E) dE (fine midpoint sum, independent code path)."""
    resp = _line_response()
    s = spectrum_from_config(
        {"flat": {"energy_min_kev": 1.5, "energy_max_kev": 5.0, "rate_per_t_yr_kev": 1.0}}, field="$"
    )
    fine = np.linspace(1.5, 5.0, 35001)
    mid = 0.5 * (fine[1:] + fine[:-1])
    brute = sum(resp.row(e) for e in mid) * (fine[1] - fine[0])
    np.testing.assert_allclose(line_weights(s, resp.line_energies_kev) @ resp.matrix, brute, rtol=1e-6, atol=1e-12)
    folded = fold_er(s, resp, 2.0, **COMMON)
    np.testing.assert_allclose(folded.template, 2.0 * brute, rtol=1e-6, atol=1e-12)


def test_er_lines_use_the_row_interpolation() -> None:
    resp = _line_response()
    s = spectrum_from_config({"lines": {"energies_kev": [1.5, 4.0], "intensities": [3.0, 1.0]}}, field="$")
    folded = fold_er(s, resp, 1.0, **COMMON)
    np.testing.assert_allclose(folded.template, 3.0 * resp.row(1.5) + resp.row(4.0), rtol=1e-14)
    w = line_weights(s, resp.line_energies_kev)
    np.testing.assert_allclose(folded.stat_err, np.sqrt((w**2) @ resp.matrix_err**2), rtol=1e-14)


def test_line_outside_the_response_is_refused() -> None:
    s = spectrum_from_config({"lines": {"energies_kev": [2.0, 41.5], "intensities": [1.0, 1.0]}}, field="$")
    with pytest.raises(InvalidData) as err:
        fold_er(s, _line_response(), 1.0, **COMMON)
    assert err.value.path == "cfg.yaml"
    assert err.value.field == "$.backgrounds.components.x.spectrum.lines.energies_kev[1]"
    assert "41.5 keV" in err.value.message and "resp.json" in err.value.message


def test_spectrum_beyond_a_dead_edge_is_dropped() -> None:
    """Above the last line (6 keV, zero acceptance) the spectrum is dropped: same result as the clipped spectrum."""
    resp = _line_response()
    long = spectrum_from_config({"flat": {"energy_min_kev": 1.0, "energy_max_kev": 60.0}}, field="$")
    short = spectrum_from_config({"flat": {"energy_min_kev": 1.0, "energy_max_kev": 6.0}}, field="$")
    np.testing.assert_allclose(
        fold_er(long, resp, 1.0, **COMMON).template, fold_er(short, resp, 1.0, **COMMON).template
    )
