"""Tests of dmpreserve.selection.cuts: cut semantics, cut flow, fiducial mass and NR acceptance."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest

from dmpreserve.artifacts.reduced import ReducedData, read_reduced
from dmpreserve.errors import InvalidConfig
from dmpreserve.files import read_csv
from dmpreserve.selection.cuts import (
    Cut,
    apply_cuts,
    cuts_from_config,
    fiducial_mass_from_cuts,
    fiducial_volume_fraction,
    fiducial_window,
    nr_acceptance,
)


def _data(**columns) -> ReducedData:
    cols = {k: np.asarray(v) for k, v in columns.items()}
    n = len(next(iter(cols.values())))
    cols.setdefault("event_id", np.arange(n, dtype=np.int64))
    return ReducedData(columns=cols, meta={"n_events": n, "kind": "science"}, path="<hand-made>")


# -------------------------------------------------------------------------------------- Cut


def test_cut_mask_is_half_open_min_max() -> None:
    data = _data(cs1_phd=[2.999, 3.0, 50.0, 79.999, 80.0, 100.0])
    mask = Cut("roi_cs1", "roi", "cs1_phd", lower=3.0, upper=80.0).mask(data)
    assert mask.dtype == bool
    assert mask.tolist() == [False, True, True, True, False, False]


def test_cut_one_sided() -> None:
    data = _data(s2_phd=[599.0, 600.0, 1e6])
    assert Cut("s2", "quality", "s2_phd", lower=600.0).mask(data).tolist() == [False, True, True]
    assert Cut("s2", "quality", "s2_phd", upper=600.0).mask(data).tolist() == [True, False, False]


def test_cut_on_derived_variables() -> None:
    data = _data(x_cm=[3.0, 60.0, 0.0], y_cm=[4.0, 60.0, 0.0], cs2_phd=[1000.0, 10.0**4.6, 0.0])
    assert Cut("r", "fiducial", "r_cm", upper=5.0).mask(data).tolist() == [False, False, True]
    assert Cut("r", "fiducial", "r_cm", upper=5.0 + 1e-12).mask(data).tolist() == [True, False, True]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # log10(0) must not warn
        mask = Cut("roi_cs2", "roi", "log10_cs2", lower=2.6, upper=4.6).mask(data)
    assert mask.tolist() == [True, False, False]


def test_cut_rejects_nan_values() -> None:
    data = _data(cs1_phd=[np.nan, 10.0])
    assert Cut("c", "roi", "cs1_phd", lower=3.0, upper=80.0).mask(data).tolist() == [False, True]
    assert Cut("c", "roi", "cs1_phd", upper=80.0).mask(data).tolist() == [False, True]


@pytest.mark.parametrize(
    "variable", ["energy_kev", "true_energy_kev", "__import__('os').system('true')", "cs1_phd + 1", ""]
)
def test_cut_unknown_variable_rejected(variable: str) -> None:
    with pytest.raises(InvalidConfig) as info:
        Cut("bad", "quality", variable, lower=0.0)
    assert info.value.field == "variable"
    assert repr(variable) in str(info.value)


@pytest.mark.parametrize("bound", [math.nan, "3", True, None], ids=["nan", "str", "bool", "none"])
def test_cut_non_numeric_bound_rejected(bound) -> None:
    with pytest.raises(InvalidConfig, match="non-numeric bound"):
        Cut("bad", "quality", "s1_phd", lower=bound)


def test_cuts_from_config(small_config) -> None:
    cuts = cuts_from_config(small_config)
    assert [c.name for c in cuts] == [c["name"] for c in small_config["selection"]["cuts"]]
    by_name = {c.name: c for c in cuts}
    assert (by_name["roi_cs1"].lower, by_name["roi_cs1"].upper) == (3.0, 80.0)
    assert by_name["fiducial_radius"].lower == -math.inf and by_name["fiducial_radius"].upper == 68.8
    assert by_name["s2_threshold"].upper == math.inf
    assert [c.name for c in cuts_from_config(small_config, kinds=("roi",))] == ["roi_cs1", "roi_cs2"]
    assert all(c.kind == "fiducial" for c in cuts_from_config(small_config, kinds=("fiducial",)))


# ---------------------------------------------------------------------------------- cut flow


def test_cutflow_counts_and_efficiencies() -> None:
    data = _data(
        s1_coincidence=np.array([1, 3, 3, 3, 3, 5, 5, 5, 2, 4], dtype=np.int64),
        cs1_phd=[10.0, 10.0, 90.0, 2.0, 40.0, 79.9, 80.0, 3.0, 50.0, 5.0],
        drift_time_us=[100.0, 50.0, 100.0, 100.0, 100.0, 100.0, 100.0, 900.0, 100.0, 950.0],
    )
    cuts = [
        Cut("s1_coincidence", "quality", "s1_coincidence", lower=3),
        Cut("drift", "fiducial", "drift_time_us", lower=86.0, upper=936.5, description="drift 86-936.5 us"),
        Cut("roi_cs1", "roi", "cs1_phd", lower=3.0, upper=80.0),
    ]
    mask, flow = apply_cuts(data, cuts)
    # s1_coincidence >= 3: events 1-7 and 9 (8 events); drift: drops 1 (50 us) and 9 (950 us) -> 2..7 (6);
    # roi: 2 (90), 3 (2.0), 6 (80.0) fail -> 4, 5, 7
    assert np.flatnonzero(mask).tolist() == [4, 5, 7]
    assert flow.cuts == ("all", "s1_coincidence", "drift", "roi_cs1")
    assert flow.events == (10, 8, 6, 3)
    assert flow.efficiency_cumulative == pytest.approx((1.0, 0.8, 0.6, 0.3))
    assert flow.efficiency_step == pytest.approx((1.0, 0.8, 0.75, 0.5))
    rows = flow.rows()
    assert rows[2] == ("drift", "drift 86-936.5 us", 6, pytest.approx(0.6), pytest.approx(0.75))
    assert "3 <= s1_coincidence < inf" in rows[1][1]  # default description names the cut


def test_cutflow_empty_sample() -> None:
    data = _data(cs1_phd=np.zeros(0))
    mask, flow = apply_cuts(data, [Cut("c", "roi", "cs1_phd", lower=3.0)])
    assert mask.size == 0
    assert flow.events == (0, 0)
    assert flow.efficiency_cumulative == (0.0, 0.0)
    assert flow.efficiency_step == (0.0, 0.0)


# --------------------------------------------------------------------------- fiducial volume

DETECTOR = {"drift_velocity_mm_per_us": 1.5, "lxe_density_g_cm3": 2.88}
FIDUCIAL = (
    Cut("fiducial_drift", "fiducial", "drift_time_us", lower=86.0, upper=936.5),
    Cut("fiducial_radius", "fiducial", "r_cm", upper=68.8),
    Cut("roi_cs1", "roi", "cs1_phd", lower=3.0, upper=80.0),
)


def test_fiducial_window_ignores_other_kinds() -> None:
    extra = Cut("tighter_r", "fiducial", "r_cm", upper=60.0)
    not_fid = Cut("r_quality", "quality", "r_cm", upper=10.0)
    assert fiducial_window(FIDUCIAL) == {"r_max_cm": 68.8, "drift_time_min_us": 86.0, "drift_time_max_us": 936.5}
    assert fiducial_window((*FIDUCIAL, extra, not_fid))["r_max_cm"] == 60.0


def test_fiducial_mass_hand_computed() -> None:
    # height = (936.5 - 86) us x 0.15 cm/us = 127.575 cm; V = pi x 68.8^2 x 127.575 = 1.897109e6 cm^3;
    # m = 2.88 g/cm^3 x V = 5.463674 t
    assert fiducial_mass_from_cuts(DETECTOR, FIDUCIAL) == pytest.approx(5.463674, rel=1e-6)
    # scales with r^2 and with the drift-time span
    half_r = (FIDUCIAL[0], Cut("r", "fiducial", "r_cm", upper=34.4))
    assert fiducial_mass_from_cuts(DETECTOR, half_r) == pytest.approx(5.463674 / 4, rel=1e-6)


def test_fiducial_volume_fraction() -> None:
    active = {"r_max_cm": 72.8, "drift_time_min_us": 0.0, "drift_time_max_us": 960.0}
    assert fiducial_volume_fraction(active, FIDUCIAL) == pytest.approx((68.8 / 72.8) ** 2 * 850.5 / 960.0)
    # a fiducial volume larger than the active volume is clipped to it
    big = (Cut("d", "fiducial", "drift_time_us", lower=-10.0, upper=2000.0), Cut("r", "fiducial", "r_cm", upper=80.0))
    assert fiducial_volume_fraction(active, big) == pytest.approx(1.0)
    # and one outside it has no volume
    outside = (Cut("d", "fiducial", "drift_time_us", lower=1000.0, upper=2000.0), FIDUCIAL[1])
    assert fiducial_volume_fraction(active, outside) == 0.0


# ------------------------------------------------------------------------------ NR acceptance


def _synthetic_simulation(accept_per_bin: list[int], *, per_bin: int = 80) -> ReducedData:
    """Flat NR simulation over 0-10 keV in an active volume r < 2 cm, 0 <= dt < 100 us.

    With fiducial r < 1 cm (1/4 of the area) and 0 <= dt < 50 us (1/2 of the height) the fiducial
    fraction is 1/8: exactly per_bin/8 events per energy bin are placed inside it, of which
    ``accept_per_bin[i]`` get a cS1 inside the ROI; everything else fails.
    """
    e, x, dt, cs1 = [], [], [], []
    n_fid = per_bin // 8
    for i, k in enumerate(accept_per_bin):
        energies = i + (np.arange(per_bin) + 0.5) / per_bin
        inside = np.arange(per_bin) < n_fid
        e.append(energies)
        x.append(np.where(inside, 0.5, 1.5))
        dt.append(np.where(inside, 25.0, 75.0))
        passing = np.arange(per_bin) < k
        cs1.append(np.where(inside & passing, 10.0, 0.0))
    n = per_bin * len(accept_per_bin)
    cols = {
        "event_id": np.arange(n, dtype=np.int64),
        "true_energy_kev": np.concatenate(e),
        "x_cm": np.concatenate(x),
        "y_cm": np.zeros(n),
        "drift_time_us": np.concatenate(dt),
        "cs1_phd": np.concatenate(cs1),
    }
    meta = {
        "n_events": n,
        "kind": "simulation_nr",
        "active_volume": {"r_max_cm": 2.0, "drift_time_min_us": 0.0, "drift_time_max_us": 100.0},
    }
    return ReducedData(columns=cols, meta=meta, path="<synthetic simulation>")


def test_nr_acceptance_known_values() -> None:
    accepted = [0, 1, 2, 5, 8, 10, 10, 10, 10, 10]  # of 10 fiducial events per bin
    sim = _synthetic_simulation(accepted)
    cuts = (
        Cut("d", "fiducial", "drift_time_us", lower=0.0, upper=50.0),
        Cut("r", "fiducial", "r_cm", upper=1.0),
        Cut("roi", "roi", "cs1_phd", lower=3.0, upper=80.0),
    )
    assert fiducial_volume_fraction(sim.meta["active_volume"], cuts) == pytest.approx(1 / 8)
    acc = nr_acceptance(sim, cuts, np.linspace(0.0, 10.0, 11))
    np.testing.assert_allclose(acc.acceptance, np.array(accepted) / 10.0, rtol=1e-12)
    np.testing.assert_allclose(acc.energy_kev, np.arange(10) + 0.5)
    np.testing.assert_array_equal(acc.energy_low_kev, np.arange(10.0))
    np.testing.assert_array_equal(acc.energy_high_kev, np.arange(1.0, 11.0))
    # binomial error sqrt(a (1 - a) / n_fiducial), floored at the one-event level sqrt(1 / n) / n so that
    # acceptances of exactly 0 or 1 are not reported as exact
    a = acc.acceptance
    n_fid = 10.0
    np.testing.assert_allclose(acc.acceptance_err, np.sqrt(np.maximum(a * (1 - a), 1 / n_fid) / n_fid))
    assert acc.acceptance_err[4] == pytest.approx(math.sqrt(0.8 * 0.2 / 10))  # binomial where it is larger
    assert acc.acceptance_err[0] == pytest.approx(0.1) and acc.acceptance_err[-1] == pytest.approx(0.1)
    assert np.all(acc.acceptance_err > 0)
    rows = acc.rows()
    assert len(rows) == 10 and rows[4] == pytest.approx((4.0, 5.0, 4.5, 0.8, math.sqrt(0.8 * 0.2 / 10)))


def test_nr_acceptance_is_capped_at_one() -> None:
    """Migration into the fiducial volume can make passing events outnumber the expected fiducial events."""
    sim = _synthetic_simulation([10, 10, 5])
    x = sim.columns["x_cm"].copy()
    x[10:14] = 0.5  # four events of the first energy bin "reconstructed" inside the fiducial radius
    cols = dict(
        sim.columns,
        x_cm=x,
        drift_time_us=np.where(np.arange(len(x)) < 14, 25.0, sim.columns["drift_time_us"]),
        cs1_phd=np.where(np.arange(len(x)) < 14, 10.0, sim.columns["cs1_phd"]),
    )
    sim = ReducedData(columns=cols, meta=sim.meta, path=sim.path)
    cuts = (
        Cut("d", "fiducial", "drift_time_us", lower=0.0, upper=50.0),
        Cut("r", "fiducial", "r_cm", upper=1.0),
        Cut("roi", "roi", "cs1_phd", lower=3.0, upper=80.0),
    )
    acc = nr_acceptance(sim, cuts, np.array([0.0, 1.0, 2.0, 3.0]))
    np.testing.assert_allclose(acc.acceptance, [1.0, 1.0, 0.5])  # 14 / 10 is reported as 1


def test_nr_acceptance_bins_without_simulation_are_zero() -> None:
    sim = _synthetic_simulation([10, 10])
    cuts = (Cut("d", "fiducial", "drift_time_us", lower=0.0, upper=50.0), Cut("r", "fiducial", "r_cm", upper=1.0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # empty bins must not overflow 1 / denominator
        acc = nr_acceptance(sim, cuts, np.array([0.0, 1.0, 2.0, 3.0, 4.0]))
    np.testing.assert_allclose(acc.acceptance, [1.0, 1.0, 0.0, 0.0])
    np.testing.assert_array_equal(acc.acceptance_err[2:], [0.0, 0.0])


# ------------------------------------------------------------------- the select step's outputs


def test_select_outputs_match_the_cuts(pipeline_dir: Path, mdc_dir: Path, small_config) -> None:
    science = read_reduced(mdc_dir / "science.parquet")
    mask, flow = apply_cuts(science, cuts_from_config(small_config))
    selected = read_reduced(pipeline_dir / "selection" / "selected.parquet", kinds=("science",))
    assert len(selected) == int(mask.sum()) == flow.events[-1] > 0
    np.testing.assert_array_equal(selected.columns["event_id"], science.columns["event_id"][mask])
    assert selected.meta["selection"]["config_sha256"] == small_config.sha256
    cutflow = read_csv(
        pipeline_dir / "selection" / "cutflow.csv",
        required=("cut", "description", "events", "efficiency_cumulative", "efficiency_step"),
    )
    assert cutflow["cut"] == list(flow.cuts)
    assert [int(v) for v in cutflow["events"]] == list(flow.events)
    assert [int(v) for v in cutflow["events"]] == sorted((int(v) for v in cutflow["events"]), reverse=True)
    acc = read_csv(pipeline_dir / "selection" / "acceptance.csv", required=("energy_kev", "acceptance"))
    a = np.array([float(v) for v in acc["acceptance"]])
    assert len(a) == small_config["selection"]["acceptance_energy_bins"]["bins"]
    assert np.all((a >= 0) & (a <= 1.0))  # capped at 1 (the ratio estimator can fluctuate above it)
