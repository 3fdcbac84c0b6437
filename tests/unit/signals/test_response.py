"""The response step: NR response from the simulation or an external efficiency curve, upstream-cut
efficiencies, and the signal-efficiency normsys of the likelihood (issue 14)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyhf
import pytest
import yaml

from dmpreserve.artifacts.likelihood import validate_workspace
from dmpreserve.artifacts.reduced import ReducedData, UpstreamCut, read_reduced
from dmpreserve.artifacts.response import EfficiencyCurve, read_efficiency_curve, read_response, write_response
from dmpreserve.cli import main
from dmpreserve.config import config_from_dict
from dmpreserve.errors import InvalidConfig, InvalidData
from dmpreserve.files import read_json
from dmpreserve.response import (
    analysis_space_probability,
    apply_upstream_cuts,
    build_response,
    er_line_response,
    nr_response,
    response_from_curve,
    simulate_er_lines,
    simulate_er_response,
)
from dmpreserve.schema import validate
from dmpreserve.selection.cuts import apply_cuts, cuts_from_config
from dmpreserve.signals import build_signal, counts_per_energy_bin
from dmpreserve.stats.workspace import SIGNAL_EFFICIENCY, apply_patch, build_patchset

QUICK_ER = ["--er-lines", "1:3:1", "--er-events-per-line", "20", "--no-progress"]


@pytest.fixture(scope="module")
def sim(mdc_dir: Path):
    return read_reduced(mdc_dir / "sim_nr.parquet", kinds=("simulation_nr",))


def _curve(energy, eff, lo=None, hi=None) -> EfficiencyCurve:
    e = np.asarray(energy, float)
    eff = np.broadcast_to(np.asarray(eff, float), e.shape).copy()
    lo = eff if lo is None else np.broadcast_to(np.asarray(lo, float), e.shape).copy()
    hi = eff if hi is None else np.broadcast_to(np.asarray(hi, float), e.shape).copy()
    return EfficiencyCurve(e, eff, lo, hi, "<test curve>", "0" * 64)


def _write_curve(path: Path, energy, eff, lo, hi) -> Path:
    rows = "".join(",".join(repr(float(v)) for v in row) + "\n" for row in zip(energy, eff, lo, hi))
    path.write_text("energy_kev,efficiency,efficiency_lo,efficiency_hi\n" + rows, encoding="utf-8")
    return path


def _curve_config(small_config_path: Path, tmp_path: Path, curve: Path, *, includes_roi: bool = False) -> Path:
    doc = yaml.safe_load(small_config_path.read_text(encoding="utf-8"))
    doc["signal"]["efficiency"] = {"curve": str(curve), "includes_roi": includes_roi}
    out = tmp_path / "config_curve.yaml"
    out.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return out


def _fold_total(response, mass: float, config, which: str = "nominal") -> float:
    per_e = counts_per_energy_bin(
        response.energy_edges_kev, mass_gev=mass, cross_section_cm2=1e-45, halo=config.halo, exposure_t_yr=1.0
    )
    return float(response.fold(per_e, which=which).sum())


def test_default_response_is_the_simulation_with_every_cut(pipeline_dir: Path, sim, small_config) -> None:
    """The response step's default output is build_response of the NR simulation, with no efficiency block."""
    doc = read_json(pipeline_dir / "response" / "response_nr.json")
    validate(doc, "response", path="response_nr.json")
    assert "efficiency" not in doc and "matrix_lo" not in doc
    ref = build_response(sim, small_config)
    np.testing.assert_array_equal(np.asarray(doc["matrix"]), ref.matrix)
    assert nr_response(sim, small_config).matrix.tobytes() == ref.matrix.tobytes()


def test_curve_equal_to_simulated_acceptance_reproduces_the_response(sim, small_config) -> None:
    """An external curve equal to the simulation's own acceptance (all cuts, ROI included) gives back today's
    response: the same efficiency per energy bin exactly, and the same folded signal per analysis bin within
    the simulation's statistical uncertainty (quality cuts correlate a little with the analysis bin)."""
    ref = build_response(sim, small_config)
    acc = ref.matrix.sum(axis=1)
    curve = _curve(ref.energy_centres_kev, acc)
    got = response_from_curve(sim, small_config, curve, includes_roi=True)
    np.testing.assert_allclose(got.matrix.sum(axis=1), acc, rtol=1e-12, atol=1e-15)
    for mass in (10.0, 50.0, 1000.0):
        per_e = counts_per_energy_bin(
            ref.energy_edges_kev, mass_gev=mass, cross_section_cm2=1e-45, halo=small_config.halo, exposure_t_yr=1.0
        )
        a, b = ref.fold(per_e), got.fold(per_e)
        assert b.sum() == pytest.approx(a.sum(), rel=1e-12)
        err2 = (per_e[:, None] ** 2 * ref.matrix_err**2).sum(axis=0)
        big = a > 1e-3 * a.max()
        chi2_per_bin = float(np.mean((a - b)[big] ** 2 / err2[big]))
        assert chi2_per_bin < 1.5, (mass, chi2_per_bin)
        assert np.abs(a - b).sum() / a.sum() < 0.06, mass
    # without includes_roi the same curve counts the ROI acceptance twice: clearly less signal
    twice = response_from_curve(sim, small_config, curve, includes_roi=False)
    assert _fold_total(twice, 50.0, small_config) < 0.95 * _fold_total(ref, 50.0, small_config)


def test_analysis_space_probability_uses_only_roi_cuts(sim, small_config) -> None:
    """With a flat efficiency 1 and includes_roi false, each row sums to the fraction of the simulated recoils
    NEST detected (cS1 > 0 and cS2 > 0: the curve contains the threshold, includes_threshold's default) of the
    energy bin inside the ROI cuts and the binning (computed here directly from the columns)."""
    edges = small_config.signal_energy_edges_kev
    got = response_from_curve(sim, small_config, _curve([0.0, 200.0], 1.0), includes_roi=False)
    mask, _ = apply_cuts(sim, cuts_from_config(small_config, kinds=("roi",)))
    b = small_config.binning
    cs1, lcs2 = sim.columns["cs1_phd"], sim.variable("log10_cs2")
    mask &= (cs1 >= b.cs1_edges_phd[0]) & (cs1 < b.cs1_edges_phd[-1])
    mask &= (lcs2 >= b.log10_cs2_edges[0]) & (lcs2 < b.log10_cs2_edges[-1])
    e = sim.columns["true_energy_kev"]
    n_in, _ = np.histogram(e[mask], bins=edges)
    detected = (sim.columns["cs1_phd"] > 0) & (sim.columns["cs2_phd"] > 0)
    n_all, _ = np.histogram(e[detected], bins=edges)
    np.testing.assert_allclose(got.matrix.sum(axis=1), n_in / np.maximum(n_all, 1), rtol=1e-12, atol=1e-15)
    # includes_roi: rows normalised to the ROI, so every row with an event in the ROI sums to 1
    norm = response_from_curve(sim, small_config, _curve([0.0, 200.0], 1.0), includes_roi=True)
    np.testing.assert_allclose(norm.matrix.sum(axis=1)[n_in > 0], 1.0, rtol=1e-12)


def test_flat_efficiency_half_halves_the_expected_signal_exactly(sim, small_config) -> None:
    one = response_from_curve(sim, small_config, _curve([0.0, 200.0], 1.0), includes_roi=False)
    half = response_from_curve(sim, small_config, _curve([0.0, 200.0], 0.5, 0.4, 0.6), includes_roi=False)
    a = build_signal(config=small_config, response=one, exposure_t_yr=1.0)
    b = build_signal(config=small_config, response=half, exposure_t_yr=1.0)
    per_ref_a = np.asarray(a.expected_events) / np.asarray(a.reference_cross_section_cm2)
    per_ref_b = np.asarray(b.expected_events) / np.asarray(b.reference_cross_section_cm2)
    np.testing.assert_allclose(per_ref_b, 0.5 * per_ref_a, rtol=1e-13)
    assert a.efficiency_lo is not None  # a curve without a band: factors 1
    np.testing.assert_allclose(a.efficiency_lo, 1.0, rtol=1e-13)
    np.testing.assert_allclose(b.efficiency_lo, 0.8, rtol=1e-13)
    np.testing.assert_allclose(b.efficiency_hi, 1.2, rtol=1e-13)


def test_normsys_equals_the_ratio_of_folded_totals(
    pipeline_dir: Path, mdc_dir: Path, sim, small_config, small_config_path: Path, tmp_path: Path
) -> None:
    """response -> signal -> likelihood with an energy-dependent band: each patch's signal_efficiency hi/lo is
    the folded total with the upper/lower curve over the nominal one, computed here independently; the
    patched workspaces are valid pyhf models in which the nuisance at +-1 scales the signal by hi/lo."""
    energy = np.linspace(0.0, 120.0, 25)
    eff = 0.9 * (1.0 - np.exp(-energy / 6.0))
    lo, hi = eff * (0.6 + 0.3 * energy / 120.0), np.minimum(1.0, eff * (1.3 - 0.2 * energy / 120.0))
    csv = _write_curve(tmp_path / "eff.csv", energy, eff, lo, hi)
    cfg_path = _curve_config(small_config_path, tmp_path, csv)
    r, m = pipeline_dir, mdc_dir
    steps = [
        ["response", "--config", str(cfg_path), "--sim-nr", str(m / "sim_nr.parquet")],
        ["--selected-sidecar", str(r / "selection/selected.json"), "--efficiency-curve", str(csv)],
        ["--response-nr", str(tmp_path / "nr.json"), "--response-er", str(tmp_path / "er.json"), *QUICK_ER],
    ]
    assert main([a for part in steps for a in part]) == 0
    common = ["--config", str(cfg_path), "--exposure", str(r / "selection/exposure.json")]
    argv = ["signal", *common[:2], "--response-nr", str(tmp_path / "nr.json"), *common[2:]]
    argv += ["--mass-grid", str(r / "signal/mass_grid.json"), "--signal", str(tmp_path / "signal.json")]
    assert main([*argv, "--spectra", str(tmp_path / "spectra.csv")]) == 0
    argv = ["likelihood", "--config", str(cfg_path), "--templates", str(r / "backgrounds/templates.json")]
    argv += ["--signal", str(tmp_path / "signal.json"), "--workspace", str(tmp_path / "ws.json")]
    assert main([*argv, "--patchset", str(tmp_path / "ps.json")]) == 0

    doc = read_json(tmp_path / "nr.json")
    validate(doc, "response", path="nr.json")
    assert doc["efficiency"]["method"] == "curve" and doc["efficiency"]["includes_roi"] is False
    signal = read_json(tmp_path / "signal.json")
    validate(signal, "signal", path="signal.json")
    # independent: the ROI/binning fraction per energy bin from the columns, the curve at the bin centres
    edges = small_config.signal_energy_edges_kev
    centres = 0.5 * (edges[1:] + edges[:-1])
    mask, _ = apply_cuts(sim, cuts_from_config(small_config, kinds=("roi",)))
    b = small_config.binning
    cs1, lcs2 = sim.columns["cs1_phd"], sim.variable("log10_cs2")
    mask &= (cs1 >= b.cs1_edges_phd[0]) & (cs1 < b.cs1_edges_phd[-1])
    mask &= (lcs2 >= b.log10_cs2_edges[0]) & (lcs2 < b.log10_cs2_edges[-1])
    n_in, _ = np.histogram(sim.columns["true_energy_kev"][mask], bins=edges)
    detected = (sim.columns["cs1_phd"] > 0) & (sim.columns["cs2_phd"] > 0)  # includes_threshold (default)
    n_all, _ = np.histogram(sim.columns["true_energy_kev"][detected], bins=edges)
    frac = n_in / np.maximum(n_all, 1)
    ws = read_json(tmp_path / "ws.json")
    ps = read_json(tmp_path / "ps.json")
    for i, mass in enumerate(signal["masses_gev"]):
        per_e = counts_per_energy_bin(
            edges, mass_gev=mass, cross_section_cm2=1e-45, halo=small_config.halo, exposure_t_yr=1.0
        )
        nominal = float(np.sum(per_e * np.interp(centres, energy, eff) * frac))
        want_lo = float(np.sum(per_e * np.interp(centres, energy, lo) * frac)) / nominal
        want_hi = float(np.sum(per_e * np.interp(centres, energy, hi) * frac)) / nominal
        assert signal["efficiency_lo"][i] == pytest.approx(want_lo, rel=1e-10)
        assert signal["efficiency_hi"][i] == pytest.approx(want_hi, rel=1e-10)
        assert want_lo < 1.0 < want_hi
        patch = ps["patches"][i]
        sample = patch["patch"][0]["value"]
        (mod,) = [x for x in sample["modifiers"] if x["name"] == SIGNAL_EFFICIENCY]
        assert mod["type"] == "normsys"
        assert mod["data"]["hi"] == pytest.approx(want_hi, rel=1e-12)
        assert mod["data"]["lo"] == pytest.approx(want_lo, rel=1e-12)
        spec = apply_patch(ws, ps, patch["metadata"]["name"])
        validate_workspace(spec, engine="pyhf")
        model = pyhf.Workspace(spec).model()
        pars = np.asarray(model.config.suggested_init(), float)
        pars[model.config.poi_index] = 1.0
        others = sum(np.asarray(s["data"]) for s in spec["channels"][0]["samples"] if s["name"] != "signal")
        sig = np.asarray(sample["data"])
        k = model.config.par_slice(SIGNAL_EFFICIENCY).start
        for alpha, factor in ((0.0, 1.0), (1.0, want_hi), (-1.0, want_lo)):
            pars[k] = alpha
            expected = np.asarray(model.expected_actualdata(pars))
            np.testing.assert_allclose(expected, others + factor * sig, rtol=1e-9, atol=1e-12)


def test_patchset_without_band_has_no_efficiency_nuisance(workspace, pipeline_dir: Path) -> None:
    from dmpreserve.artifacts.signal_templates import read_signal

    ps = build_patchset(workspace, read_signal(pipeline_dir / "signal/signal.json"), inspire_id="ins0000000")
    for patch in ps["patches"]:
        assert [m["name"] for m in patch["patch"][0]["value"]["modifiers"]] == ["mu"]


def test_upstream_cuts_multiply_the_rows(
    pipeline_dir: Path, mdc_dir: Path, small_config_path: Path, tmp_path: Path
) -> None:
    """A hand-written selected-events sidecar with upstream cuts: the configured one (s2_threshold) and the one
    without an efficiency change nothing; a constant 0.8 and a curve multiply every row at its bin centre."""
    meta = read_json(pipeline_dir / "selection/selected.json")
    meta["upstream_cuts"] = [
        {"name": "s2_threshold", "definition": "raw S2 >= 600 phd (configured too)", "efficiency": 0.5},
        {"name": "hotspot_veto", "definition": "no hot PMT", "efficiency": 0.8},
        {
            "name": "pulse_shape",
            "definition": "S1 pulse shape",
            "efficiency": {"energy_kev": [0, 100], "efficiency": [0.5, 1.0]},
        },
        {"name": "livetime_veto", "definition": "no efficiency stated"},
    ]
    sidecar = tmp_path / "selected.json"
    sidecar.write_text(json.dumps(meta), encoding="utf-8")
    argv = ["response", "--config", str(small_config_path), "--sim-nr", str(mdc_dir / "sim_nr.parquet")]
    argv += ["--selected-sidecar", str(sidecar), "--response-nr", str(tmp_path / "nr.json")]
    assert main([*argv, "--response-er", str(tmp_path / "er.json"), *QUICK_ER]) == 0
    base = read_response(pipeline_dir / "response/response_nr.json")
    got = read_response(tmp_path / "nr.json")
    factor = 0.8 * np.interp(base.energy_centres_kev, [0, 100], [0.5, 1.0])
    np.testing.assert_allclose(got.matrix, base.matrix * factor[:, None], rtol=1e-13, atol=0)
    np.testing.assert_allclose(got.matrix_err, base.matrix_err * factor[:, None], rtol=1e-13, atol=0)
    assert [c["name"] for c in got.efficiency["upstream_cuts"]] == ["hotspot_veto", "pulse_shape"]
    assert got.efficiency["method"] == "simulation"
    validate(read_json(tmp_path / "nr.json"), "response", path="nr.json")


def test_upstream_cuts_scale_the_band_too(sim, small_config) -> None:
    resp = response_from_curve(sim, small_config, _curve([0.0, 200.0], 0.5, 0.4, 0.6), includes_roi=False)
    out = apply_upstream_cuts(resp, [UpstreamCut("veto", "v", 0.5)], configured=())
    for which in ("matrix", "matrix_lo", "matrix_hi", "matrix_err"):
        np.testing.assert_allclose(getattr(out, which), 0.5 * getattr(resp, which), rtol=1e-15)
    assert apply_upstream_cuts(resp, [UpstreamCut("veto", "v", 0.5)], configured=("veto",)) is resp


def test_response_with_band_round_trips(sim, small_config, tmp_path: Path) -> None:
    resp = response_from_curve(sim, small_config, _curve([0.0, 200.0], 0.5, 0.4, 0.6), includes_roi=True)
    write_response(tmp_path / "r.json", resp)
    validate(read_json(tmp_path / "r.json"), "response", path="r.json")
    back = read_response(tmp_path / "r.json")
    for which in ("matrix", "matrix_err", "matrix_lo", "matrix_hi"):
        np.testing.assert_array_equal(getattr(back, which), getattr(resp, which))
    assert dict(back.efficiency) == dict(resp.efficiency)


def test_curve_configuration_and_option_must_agree(small_config, sim, small_config_path: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidConfig) as err:
        nr_response(sim, small_config, curve=_curve([0.0, 200.0], 1.0))
    assert err.value.field == "$.signal.efficiency"
    doc = dict(small_config.raw)
    doc["signal"] = {**doc["signal"], "efficiency": {"curve": "eff.csv"}}
    cfg = config_from_dict(doc, path="c.yaml")
    with pytest.raises(InvalidConfig, match="--efficiency-curve"):
        nr_response(sim, cfg)


def test_curve_not_covering_the_energy_range_is_refused(sim, small_config) -> None:
    with pytest.raises(InvalidData) as err:
        response_from_curve(sim, small_config, _curve([1.0, 200.0], 1.0), includes_roi=False)
    assert err.value.field == "energy_kev" and "not extrapolated" in err.value.message


def test_curve_reader_ignores_extra_columns(tmp_path: Path) -> None:
    p = tmp_path / "c.csv"
    p.write_text("# a comment\nenergy_kev,efficiency,note,efficiency_lo,efficiency_hi\n0,0,a,0,0\n10,0.5,b,0.5,0.5\n")
    c = read_efficiency_curve(p)
    np.testing.assert_array_equal(c.efficiency, [0.0, 0.5])
    assert c.at(np.array([5.0])) == pytest.approx(0.25)
    with pytest.raises(InvalidData) as err:
        _write_curve(p, [0, 1], [0.5, 0.5], [0.5, 0.5], [0.5, 0.4])
        read_efficiency_curve(p)
    assert err.value.field == "efficiency_hi"


def test_reinterpretation_carries_the_efficiency_band(
    pipeline_dir: Path, mdc_dir: Path, small_config, small_config_path: Path, tmp_path: Path
) -> None:
    """A kit whose NR response has an efficiency band: reinterpreting the default SI model gives the pipeline's
    signal_efficiency hi/lo per mass (the signal step's numbers), and the patches carry the normsys."""
    import shutil

    from dmpreserve.physics.signal_models import SignalModel
    from dmpreserve.reinterpret.engine import model_signal, split_visible
    from dmpreserve.reinterpret.kit import Kit

    energy = np.linspace(0.0, 120.0, 13)
    eff = 0.85 * (1.0 - np.exp(-energy / 5.0))
    csv = _write_curve(tmp_path / "eff.csv", energy, eff, 0.7 * eff, np.minimum(1.0, 1.2 * eff))
    cfg_path = _curve_config(small_config_path, tmp_path, csv)
    r = pipeline_dir
    argv = ["response", "--config", str(cfg_path), "--sim-nr", str(mdc_dir / "sim_nr.parquet")]
    argv += ["--selected-sidecar", str(r / "selection/selected.json"), "--efficiency-curve", str(csv)]
    argv += ["--response-nr", str(tmp_path / "nr.json"), "--response-er", str(tmp_path / "er.json"), *QUICK_ER]
    assert main(argv) == 0
    argv = ["signal", "--config", str(cfg_path), "--response-nr", str(tmp_path / "nr.json")]
    argv += ["--exposure", str(r / "selection/exposure.json"), "--mass-grid", str(r / "signal/mass_grid.json")]
    assert main([*argv, "--signal", str(tmp_path / "signal.json"), "--spectra", str(tmp_path / "sp.csv")]) == 0
    pipeline = read_json(tmp_path / "signal.json")

    kit_dir = tmp_path / "kit"
    kit_dir.mkdir()
    shutil.copy(tmp_path / "nr.json", kit_dir / "response_nr.json")
    manifest = {
        "exposure_t_yr": read_json(r / "selection/exposure.json")["exposure_t_yr"],
        "target_events_at_reference": small_config["signal"]["target_events_at_reference"],
        "halo": small_config.halo.as_dict(),
        "masses_gev": pipeline["masses_gev"],
    }
    kit = Kit(path=str(kit_dir), manifest=manifest, workspace={})
    signal, _ = split_visible(model_signal(kit, SignalModel(model="si")))
    assert signal.masses_gev == tuple(pipeline["masses_gev"])
    np.testing.assert_allclose(signal.efficiency_lo, pipeline["efficiency_lo"], rtol=1e-10)
    np.testing.assert_allclose(signal.efficiency_hi, pipeline["efficiency_hi"], rtol=1e-10)
    ws = read_json(r / "likelihood/BkgOnly.json")
    ps = build_patchset(ws, signal, inspire_id="ins0000000")
    for patch, lo, hi in zip(ps["patches"], pipeline["efficiency_lo"], pipeline["efficiency_hi"]):
        (mod,) = [x for x in patch["patch"][0]["value"]["modifiers"] if x["name"] == SIGNAL_EFFICIENCY]
        assert mod["data"] == pytest.approx({"hi": hi, "lo": lo}, rel=1e-10)


def _threshold_sim(config) -> tuple[ReducedData, list[int]]:
    """100 recoils at the centre of two energy bins: 25 undetected (no S1, no S2), 25 with an S1 in the ROI but no
    S2 (not detected either), 30 detected inside the ROI (one analysis bin), 20 detected above the ROI in cS1."""
    edges = config.signal_energy_edges_kev
    chosen = [10, 20]
    e, s1, s2 = [], [], []
    for b in chosen:
        centre = 0.5 * (edges[b] + edges[b + 1])
        e += [centre] * 100
        s1 += [0.0] * 25 + [20.0] * 25 + [20.0] * 30 + [1000.0] * 20
        s2 += [0.0] * 25 + [0.0] * 25 + [10**3.3] * 30 + [10**3.3] * 20
    cols = {"true_energy_kev": np.array(e), "cs1_phd": np.array(s1), "cs2_phd": np.array(s2)}
    meta = {"n_events": len(e), "kind": "simulation_nr"}
    return ReducedData(columns=cols, meta=meta, path="<synthetic threshold simulation>"), chosen


def test_threshold_normalisation_counts_only_detected_recoils(small_config) -> None:
    sim, chosen = _threshold_sim(small_config)
    with_threshold, err = analysis_space_probability(sim, small_config, includes_roi=False, includes_threshold=True)
    without, _ = analysis_space_probability(sim, small_config, includes_roi=False, includes_threshold=False)
    in_roi, _ = analysis_space_probability(sim, small_config, includes_roi=True, includes_threshold=True)
    others = [i for i in range(with_threshold.shape[0]) if i not in chosen]
    for b in chosen:
        assert with_threshold[b].sum() == pytest.approx(30 / 50)  # in the ROI among the 50 detected
        assert without[b].sum() == pytest.approx(30 / 100)  # ... among all 100 simulated
        assert in_roi[b].sum() == pytest.approx(1.0)
        assert np.count_nonzero(with_threshold[b]) == 1  # one analysis bin: cS1 20 phd, log10 cS2 3.3
        assert err[b].max() == pytest.approx(np.sqrt(30) / 50)
    assert not with_threshold[others].any() and not without[others].any()  # rows without events are zero


def test_includes_threshold_is_read_from_the_configuration(small_config_path: Path, tmp_path: Path) -> None:
    curve = _write_curve(tmp_path / "eff.csv", [0.0, 200.0], [1.0, 1.0], [0.9, 0.9], [1.0, 1.0])
    doc = yaml.safe_load(small_config_path.read_text(encoding="utf-8"))
    sums = {}
    for setting in (None, True, False):
        doc["signal"]["efficiency"] = {"curve": str(curve), "includes_roi": False}
        if setting is not None:
            doc["signal"]["efficiency"]["includes_threshold"] = setting
        config = config_from_dict(doc, path="<config>")
        sim, chosen = _threshold_sim(config)
        resp = nr_response(sim, config, curve=read_efficiency_curve(curve))
        assert resp.efficiency["includes_threshold"] is (setting is not False)
        sums[setting] = resp.matrix[chosen[0]].sum()
    assert sums[None] == pytest.approx(0.6) and sums[True] == pytest.approx(0.6)  # default: true
    assert sums[False] == pytest.approx(0.3)
    doc["signal"]["efficiency"]["includes_threshold"] = "yes"
    with pytest.raises(InvalidConfig, match="includes_threshold"):
        config_from_dict(doc, path="<config>")


def test_er_line_response_shift_moves_log10_cs2_before_the_binning(small_config) -> None:
    """Unshifted, the split simulation + fold is the response step's ER response; shifted by exactly one
    log10 cS2 bin, every interior bin of the cS1-summed response holds what its lower neighbour held (the raw-S2
    quality cut does not move), the first bin what came up from below the ROI."""
    lines = np.array([3.0, 8.0])
    sim = simulate_er_lines(small_config, line_energies_kev=lines, events_per_line=400, progress=False)
    nominal = er_line_response(sim, small_config, lines)
    step = simulate_er_response(small_config, line_energies_kev=lines, events_per_line=400, progress=False)
    np.testing.assert_array_equal(nominal.matrix, step.matrix)
    edges = np.asarray(small_config.binning.log10_cs2_edges)
    width = float(edges[1] - edges[0])
    shifted = er_line_response(sim, small_config, lines, log10_cs2_shift=width)
    n1, n2 = small_config.binning.shape
    before = nominal.matrix.reshape(len(lines), n1, n2).sum(axis=1)
    after = shifted.matrix.reshape(len(lines), n1, n2).sum(axis=1)
    assert np.any(before[:, :-1] > 0) and not np.allclose(after, before)
    np.testing.assert_allclose(after[:, 1:], before[:, :-1], rtol=1e-12, atol=0)
    # independently (numpy): per line, the cS1-summed shifted response is proportional to the histogram of
    # log10(cS2) + width of the events passing every cut but the log10 cS2 ROI, inside the cS1 ROI
    mask, _ = apply_cuts(sim, [c for c in cuts_from_config(small_config) if c.variable != "log10_cs2"])
    with np.errstate(divide="ignore"):
        x = np.log10(np.asarray(sim.columns["cs2_phd"])) + width
    cs1, cs1_edges = np.asarray(sim.columns["cs1_phd"]), np.asarray(small_config.binning.cs1_edges_phd)
    keep = mask & (cs1 >= cs1_edges[0]) & (cs1 < cs1_edges[-1])
    line = np.asarray(sim.columns["true_energy_kev"]).astype(int)
    for j in range(len(lines)):
        hist, _ = np.histogram(x[keep & (line == j)], bins=edges)
        np.testing.assert_allclose(after[j] / after[j].sum(), hist / hist.sum(), rtol=1e-12)
