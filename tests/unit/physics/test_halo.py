"""Tests of the Standard Halo Model (dmpreserve.physics.halo)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from scipy.integrate import dblquad, quad
from scipy.special import erf

from dmpreserve.errors import InvalidConfig
from dmpreserve.physics.halo import StandardHalo, mean_inverse_speed, speed_distribution

HALOS = [StandardHalo.baxter2021(), StandardHalo.shm_2018()]


def _integrate_speed(func, halo: StandardHalo, lo: float = 0.0) -> float:
    """Integrate func(v) over [lo, v_max] with a break point at the kink v_esc - v_E."""
    kink = halo.v_esc_km_s - halo.v_earth_km_s
    pieces = [(lo, kink), (kink, halo.v_max_km_s)] if lo < kink else [(lo, halo.v_max_km_s)]
    return sum(quad(func, a, b, epsabs=0, epsrel=1e-12, limit=200)[0] for a, b in pieces)


def _eta_galactic_frame(vmin: float, halo: StandardHalo) -> float:
    """eta(v_min) by brute-force integration in the galactic frame (independent of halo.py).

    The galactic-frame velocity u is Maxwellian, truncated at |u| < v_esc, normalised numerically;
    the detector-frame speed is |u - v_E| = sqrt(u^2 + v_E^2 - 2 u v_E c).
    """
    v0, ve, vesc = halo.v0_km_s, halo.v_earth_km_s, halo.v_esc_km_s
    norm = quad(lambda u: 4 * math.pi * u * u * math.exp(-((u / v0) ** 2)), 0, vesc, epsrel=1e-13)[0]

    def inner(u: float) -> float:
        # integral over c of 1/|u - v_E| for |u - v_E| > v_min, done analytically:
        # int dc / sqrt(A - B c) = (2/B) [sqrt(A + B) - sqrt(A - B c_max)], sqrt(A + B) = u + v_E
        lower_speed = max(vmin, abs(u - ve))
        if lower_speed >= u + ve:
            return 0.0
        return 2 * math.pi * u * u * math.exp(-((u / v0) ** 2)) * (u + ve - lower_speed) / (u * ve)

    pts = sorted({p for p in (ve, abs(vmin - ve), vmin + ve) if 0 < p < vesc})
    return quad(inner, 0, vesc, points=pts, epsabs=0, epsrel=1e-12, limit=400)[0] / norm


def _wimprates_speed_dist(v: np.ndarray, halo: StandardHalo) -> np.ndarray:
    """wimprates 0.5.0 ``observed_speed_dist`` transcribed: k *multiplies* (the normalisation bug)."""
    v0, ve, vesc = halo.v0_km_s, halo.v_earth_km_s, halo.v_esc_km_s
    w = vesc / v0
    k = erf(w) - 2 / np.pi**0.5 * w * np.exp(-(w**2))
    xmax = np.minimum(1, (vesc**2 - ve**2 - v**2) / (2 * ve * v))
    y = (
        k
        * v
        / (np.pi**0.5 * v0 * ve)
        * (np.exp(-(((v - ve) / v0) ** 2)) - np.exp(-1 / v0**2 * (v**2 + ve**2 + 2 * v * ve * xmax)))
    )
    return np.where(v > vesc + ve, 0.0, y)


@pytest.mark.parametrize("halo", HALOS, ids=["baxter2021", "shm2018"])
def test_speed_distribution_is_normalised(halo):
    total = _integrate_speed(lambda v: float(speed_distribution(v, halo)), halo)
    assert total == pytest.approx(1.0, abs=1e-6)
    assert speed_distribution(-1.0, halo) == 0.0
    assert speed_distribution(halo.v_max_km_s + 1e-6, halo) == 0.0
    assert np.all(speed_distribution(np.linspace(0, halo.v_max_km_s, 1001), halo) >= 0)


@pytest.mark.parametrize("halo", HALOS, ids=["baxter2021", "shm2018"])
def test_eta_closed_form_equals_integral_of_f_over_v(halo):
    kink = halo.v_esc_km_s - halo.v_earth_km_s
    vmins = [0.0, 50.0, 200.0, kink - 1.0, kink, kink + 1.0, 650.0, halo.v_max_km_s - 20.0, halo.v_max_km_s - 1.0]
    for vmin in vmins:
        numeric = _integrate_speed(lambda v: float(speed_distribution(v, halo)) / v if v > 0 else 0.0, halo, lo=vmin)
        closed = float(mean_inverse_speed(vmin, halo))
        assert closed == pytest.approx(numeric, rel=1e-6, abs=1e-15), vmin


@pytest.mark.parametrize("halo", HALOS, ids=["baxter2021", "shm2018"])
def test_eta_matches_galactic_frame_integration(halo):
    for vmin in (0.0, 120.0, 400.0, 700.0, 780.0):
        assert float(mean_inverse_speed(vmin, halo)) == pytest.approx(
            _eta_galactic_frame(vmin, halo), rel=1e-6, abs=1e-15
        ), vmin


def test_eta_shape():
    halo = StandardHalo.baxter2021()
    v = np.linspace(0, 1000, 2001)
    eta = mean_inverse_speed(v, halo)
    assert np.all(np.diff(eta) <= 1e-18)
    assert np.all(eta[v >= halo.v_max_km_s] == 0.0)
    assert eta[v < halo.v_max_km_s - 1].min() > 0
    # eta(0) = <1/v>, of order 1/v_E
    assert 0.5 / halo.v_earth_km_s < eta[0] < 1.5 / halo.v_earth_km_s


def test_eta_by_double_integral_in_detector_frame():
    """Brute force in 2-D (speed, direction) in the detector frame, indicator-free limits."""
    halo = StandardHalo.baxter2021()
    v0, ve, vesc = halo.v0_km_s, halo.v_earth_km_s, halo.v_esc_km_s
    norm = (math.pi * v0 * v0) ** 1.5 * halo.n_esc

    def f3(c: float, v: float) -> float:  # 2 pi v^2 f_gal(v + v_E) / v
        return 2 * math.pi * v * math.exp(-(v * v + ve * ve + 2 * v * ve * c) / v0**2) / norm

    def cmax(v: float) -> float:
        return min(1.0, (vesc**2 - v * v - ve * ve) / (2 * v * ve)) if v > 0 else 1.0

    vmin = 300.0
    val = dblquad(f3, vmin, vesc + ve, lambda v: -1.0, cmax, epsabs=0, epsrel=1e-10)[0]
    assert float(mean_inverse_speed(vmin, halo)) == pytest.approx(val, rel=1e-6)


def test_wimprates_normalisation_factor():
    """wimprates 0.5.0 multiplies by N_esc instead of dividing: its f integrates to N_esc^2.

    Baxter halo: z = 544/238, N_esc = 0.98489, N_esc^2 = 0.97001, so ours/wimprates = 1/N_esc^2
    = 1.0309 (3.1 % higher). 2018 halo: 1/N_esc^2 = 1.0134.
    """
    halo = StandardHalo.baxter2021()
    z = halo.v_esc_km_s / halo.v0_km_s
    n_esc = math.erf(z) - 2 * z * math.exp(-z * z) / math.sqrt(math.pi)
    assert halo.n_esc == pytest.approx(n_esc, rel=1e-14)
    assert n_esc == pytest.approx(0.984889, abs=2e-6)
    v = np.linspace(1.0, halo.v_max_km_s - 1.0, 20001)
    ours = speed_distribution(v, halo)
    wrong = _wimprates_speed_dist(v, halo)
    ratio = ours / wrong
    assert np.allclose(ratio, 1 / n_esc**2, rtol=1e-9)
    assert ratio[0] - 1 == pytest.approx(0.031, abs=0.001)
    wrong_total = _integrate_speed(lambda x: float(_wimprates_speed_dist(np.array(x), halo)), halo)
    assert wrong_total == pytest.approx(n_esc**2, rel=1e-6)
    assert 1 / StandardHalo.shm_2018().n_esc ** 2 == pytest.approx(1.0134, abs=1e-4)


def test_halo_presets_and_baxter_earth_speed():
    b = StandardHalo.baxter2021()
    assert (b.rho0_gev_cm3, b.v0_km_s, b.v_esc_km_s, b.v_earth_km_s) == (0.3, 238.0, 544.0, 250.5)
    assert StandardHalo() == b
    # mean Earth velocity = Sun's velocity v_LSR + v_pec (orbital motion averages out)
    v_sun = math.hypot(11.1, 238.0 + 12.2, 7.3)
    assert v_sun == pytest.approx(b.v_earth_km_s, abs=0.1)
    s = StandardHalo.shm_2018()
    assert (s.rho0_gev_cm3, s.v0_km_s, s.v_esc_km_s, s.v_earth_km_s) == (0.3, 220.0, 544.0, 232.0)
    assert s.as_dict() == {"rho0_gev_cm3": 0.3, "v0_km_s": 220.0, "v_esc_km_s": 544.0, "v_earth_km_s": 232.0}
    with pytest.raises(dataclasses.FrozenInstanceError):
        b.v0_km_s = 1.0  # type: ignore[misc]


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"v0_km_s": -1.0}, "v0_km_s"),
        ({"rho0_gev_cm3": float("nan")}, "rho0_gev_cm3"),
        ({"v_esc_km_s": float("inf")}, "v_esc_km_s"),
        ({"v_earth_km_s": 600.0}, "v_earth_km_s"),
        ({"v0_km_s": "fast"}, "v0_km_s"),
    ],
)
def test_invalid_halo(kwargs, field):
    with pytest.raises(InvalidConfig) as err:
        StandardHalo(**kwargs)
    assert err.value.field == field
