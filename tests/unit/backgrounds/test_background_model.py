"""The configured background model on the session's mock data: every normalisation against an independent
recomputation, the templates artifact, and the pyhf workspace evaluated by pyhf itself."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pyhf
import pytest
import yaml
from front_steps import response_and_backgrounds, select_steps
from scipy.integrate import quad

from conftest import ER_EVENTS_PER_LINE, ER_LINES
from dmpreserve.artifacts.exposure import read_exposure
from dmpreserve.artifacts.reduced import read_dataset, read_reduced
from dmpreserve.artifacts.response import read_line_response, read_response
from dmpreserve.artifacts.templates import read_templates
from dmpreserve.backgrounds import BackgroundInputs, estimate_backgrounds, histogram, science_run
from dmpreserve.backgrounds.quality import poorly_sampled_fraction
from dmpreserve.cli import main
from dmpreserve.config import config_from_dict
from dmpreserve.errors import InvalidConfig, InvalidData
from dmpreserve.files import read_json
from dmpreserve.physics.neutrinos import rate_cevns_8b
from dmpreserve.physics.neutrons import neutron_spectrum_shape
from dmpreserve.schema import validate
from dmpreserve.selection.cuts import Cut, apply_cuts, cuts_from_config
from dmpreserve.stats.workspace import STATERROR, build_workspace


@pytest.fixture(scope="module")
def bg_dir(tmp_path_factory, mdc_dir: Path, small_config_path: Path) -> Path:
    """select, signal (NR and ER responses) and backgrounds of the small configuration."""
    r = tmp_path_factory.mktemp("bg")
    m, c = mdc_dir, str(small_config_path)
    er = ["--er-lines", ER_LINES, "--er-events-per-line", str(ER_EVENTS_PER_LINE)]
    signal = ["signal", "--config", c, "--response-nr", f"{r}/response_nr.json", "--exposure", f"{r}/exposure.json"]
    signal += ["--mass-grid", f"{r}/mass_grid.json", "--signal", f"{r}/signal.json", "--spectra", f"{r}/spectra.csv"]
    front, back = select_steps(m, c, r), response_and_backgrounds(m, c, r, r, er)
    steps = [*front, ["mass-grid", "--config", c, "-o", f"{r}/mass_grid.json"], back[0], signal, back[1]]
    for argv in steps:
        assert main(argv) == 0, argv[0]
    return r


@pytest.fixture(scope="module")
def doc(bg_dir: Path) -> dict[str, Any]:
    return read_json(bg_dir / "templates.json")


def _inputs(bg_dir: Path, mdc_dir: Path) -> BackgroundInputs:
    return BackgroundInputs(
        science=science_run([mdc_dir / "science.parquet"]),
        selected=read_reduced(bg_dir / "selected.parquet"),
        exposure=read_exposure(bg_dir / "exposure.json"),
        calib_er=read_dataset([mdc_dir / "calib_er.parquet"]),
        isolated_s1=read_dataset([mdc_dir / "isolated_s1.parquet"]),
        isolated_s2=read_dataset([mdc_dir / "isolated_s2.parquet"]),
        response_nr=read_response(bg_dir / "response_nr.json"),
        response_er=read_line_response(bg_dir / "response_er.json"),
    )


def _with_components(small_config, components: dict[str, Any]):
    raw = copy.deepcopy(small_config.raw)
    raw["backgrounds"]["components"] = components
    return config_from_dict(raw, path="modified.yaml")


# ------------------------------------------------------------------------------------ the artifact


def test_templates_artifact(doc, small_config) -> None:
    validate(doc, "templates", path="templates.json")
    n1, n2 = small_config.binning.shape
    assert sorted(doc["components"]) == sorted(small_config["backgrounds"]["components"])
    want = {
        "er": "lognormal",
        "neutron": "lognormal",
        "cevns_8b": "gaussian",
        "accidental": "lognormal",
        "wall": "lognormal",
    }
    for name, comp in doc["components"].items():
        t = np.asarray(comp["template"])
        assert t.shape == (n1, n2) and np.all(t >= 0)
        assert t.sum() == pytest.approx(comp["expected_events"], rel=1e-12) and comp["expected_events"] > 0
        assert comp["constraint"] == {"type": want[name]}
        err = np.asarray(comp["stat_err"])  # every default shape comes from a finite simulation or sample
        assert err.shape == (n1, n2) and np.all(err >= 0) and np.all(err[t == 0] == 0)


def test_observed_is_the_histogram_of_the_selected_events(bg_dir: Path, doc, small_config) -> None:
    selected = read_reduced(bg_dir / "selected.parquet")
    want = histogram(selected.columns["cs1_phd"], selected.variable("log10_cs2"), small_config.binning)
    np.testing.assert_array_equal(np.asarray(doc["observed"]), want)


def test_no_bin_with_data_but_no_expectation(doc) -> None:
    total = sum(np.asarray(c["template"]) for c in doc["components"].values())
    assert not np.any((total <= 0) & (np.asarray(doc["observed"]) > 0))


# ------------------------------------------------------------------------------------ normalisations


def test_er_sideband_normalisation(mdc_dir: Path, doc, small_config) -> None:
    """expected ER = science sideband x calibration ROI / calibration sideband, counted in memory here."""
    science, calib = read_reduced(mdc_dir / "science.parquet"), read_reduced(mdc_dir / "calib_er.parquet")
    pre = cuts_from_config(small_config, kinds=("quality", "fiducial"))
    sb = small_config["backgrounds"]["components"]["er"]["normalisation"]["sideband"]["cs1_phd"]
    side = Cut("sideband", "roi", "cs1_phd", lower=sb["min"], upper=sb["max"])
    n_sci = int(apply_cuts(science, (*pre, side))[0].sum())
    n_cal_sb = int(apply_cuts(calib, (*pre, side))[0].sum())
    n_cal_roi = int(apply_cuts(calib, cuts_from_config(small_config))[0].sum())
    er = doc["components"]["er"]
    assert er["expected_events"] == pytest.approx(n_sci * n_cal_roi / n_cal_sb, rel=1e-12)
    rel = np.hypot(0.05, np.sqrt(1 / n_sci + 1 / n_cal_sb + 1 / n_cal_roi))
    assert er["uncertainty_events"] == pytest.approx(er["expected_events"] * rel, rel=1e-12)


def _folded_nr(bg_dir: Path, rate, exposure: float) -> float:
    """exposure x sum_e (quad of the rate over energy bin e) x P(analysis region | e): independent integration."""
    resp = read_response(bg_dir / "response_nr.json")
    e = resp.energy_edges_kev
    per_bin = np.array([quad(rate, a, b)[0] for a, b in zip(e[:-1], e[1:])])
    return float(exposure * per_bin @ resp.matrix.sum(axis=1))


def test_neutron_rate_normalisation(bg_dir: Path, doc, small_config) -> None:
    rate = small_config["backgrounds"]["components"]["neutron"]["normalisation"]["rate_per_t_yr"]
    want = _folded_nr(bg_dir, lambda x: rate * neutron_spectrum_shape(np.array([x]))[0], doc["exposure_t_yr"])
    assert doc["components"]["neutron"]["expected_events"] == pytest.approx(want, rel=1e-6)


def test_cevns_absolute_spectrum(bg_dir: Path, doc) -> None:
    want = _folded_nr(bg_dir, lambda x: rate_cevns_8b(np.array([x]), flux_cm2_s=5.16e6)[0], doc["exposure_t_yr"])
    assert doc["components"]["cevns_8b"]["expected_events"] == pytest.approx(want, rel=1e-6)


def test_wall_matches_an_in_memory_recomputation(mdc_dir: Path, doc, small_config) -> None:
    """The streamed radial sideband selects the same events as the in-memory engine; sum of leakage weights."""
    from scipy.special import ndtr

    science = read_reduced(mdc_dir / "science.parquet")
    cuts = [c for c in cuts_from_config(small_config) if not (c.kind == "fiducial" and c.variable == "r_cm")]
    r_min = small_config["backgrounds"]["components"]["wall"]["shape"]["radial_sideband"]["r_min_cm"]
    mask = apply_cuts(science, (*cuts, Cut("side", "fiducial", "r_cm", lower=r_min)))[0]
    det = science.meta["detector"]
    res = det["position_resolution_cm"]
    sigma = res["a_cm"] * np.sqrt(1000.0 / np.maximum(science.columns["s2_phd"][mask], 1.0)) + res["b_cm"]
    w = ndtr((68.8 - det["wall_radius_cm"]) / sigma) / np.maximum(ndtr((det["wall_radius_cm"] - r_min) / sigma), 1e-12)
    assert doc["components"]["wall"]["expected_events"] == pytest.approx(w.sum(), rel=1e-9)
    assert np.sqrt((np.asarray(doc["components"]["wall"]["stat_err"]) ** 2).sum()) == pytest.approx(
        np.sqrt((w**2).sum()), rel=1e-9
    )


def test_expected_events_and_free_constraint(bg_dir: Path, mdc_dir: Path, small_config) -> None:
    comps = copy.deepcopy(small_config["backgrounds"]["components"])
    comps["ar37"] = {
        "kind": "ER",
        "spectrum": {"lines": {"energies_kev": [2.82], "intensities": [1.0]}},
        "shape": "nest",
        "normalisation": {"expected_events": 12.5, "constraint": {"free": {"bounds": [0.0, 20.0]}}},
    }
    cfg = _with_components(small_config, comps)
    t = estimate_backgrounds(cfg, _inputs(bg_dir, mdc_dir))
    ar = t.components["ar37"]
    assert ar.expected_events == pytest.approx(12.5, rel=1e-12)
    assert ar.constraint == "free" and ar.bounds == (0.0, 20.0) and ar.uncertainty_events == 0.0
    ws = build_workspace(t, poi_bounds=(0.0, 50.0))
    model = pyhf.Workspace(ws).model(poi_name=None)
    i = model.config.par_slice("rate_ar37").start
    assert model.config.suggested_bounds()[i] == [0.0, 20.0]
    pars = np.array(model.config.suggested_init(), float)
    base = model.expected_actualdata(pars)
    pars[i] = 2.0
    np.testing.assert_allclose(model.expected_actualdata(pars) - base, np.ravel(ar.template), atol=1e-9)


def test_uncovered_bins_are_refused(bg_dir: Path, mdc_dir: Path, small_config) -> None:
    cfg = _with_components(small_config, {"neutron": small_config["backgrounds"]["components"]["neutron"]})
    with pytest.raises(InvalidData) as err:
        estimate_backgrounds(cfg, _inputs(bg_dir, mdc_dir))
    assert err.value.field == "$.backgrounds.components" and "no background component expects any" in err.value.message


def test_missing_input_is_named(bg_dir: Path, mdc_dir: Path, small_config) -> None:
    inputs = _inputs(bg_dir, mdc_dir)
    inputs = BackgroundInputs(**{**inputs.__dict__, "response_er": None})
    with pytest.raises(InvalidConfig) as err:
        estimate_backgrounds(small_config, inputs)
    assert "--response-er" in err.value.message and err.value.field == "$.backgrounds.components.er"


# ------------------------------------------------------------------------------------ the workspace, by pyhf


def test_workspace_modifiers_evaluated_by_pyhf(bg_dir: Path) -> None:
    t = read_templates(bg_dir / "templates.json")
    ws = build_workspace(t, poi_bounds=(0.0, 50.0))
    model = pyhf.Workspace(ws).model(poi_name=None)
    init = np.array(model.config.suggested_init(), float)
    nominal = sum(np.ravel(c.template) for c in t.components.values())
    np.testing.assert_allclose(model.expected_actualdata(init), nominal, rtol=1e-12)
    for name, c in t.components.items():
        mods = {
            m["type"]: m["name"]
            for m in next(s for s in ws["channels"][0]["samples"] if s["name"] == name)["modifiers"]
        }
        rel = c.uncertainty_events / c.expected_events
        pars = init.copy()
        pars[model.config.par_slice(f"norm_{name}").start] = 1.0  # +1 sigma of the rate constraint
        shift = model.expected_actualdata(pars) - nominal
        np.testing.assert_allclose(shift, rel * np.ravel(c.template), rtol=1e-9, atol=1e-12)
        assert mods[{"gaussian": "histosys", "lognormal": "normsys"}[c.constraint]] == f"norm_{name}"
        assert mods["staterror"] == STATERROR
    # staterror: pyhf's per-bin widths are sqrt(sum of sigma^2) / sum of nominal over the samples
    err = np.sqrt(sum(np.ravel(c.stat_err) ** 2 for c in t.components.values()))
    live = nominal > 0
    sigmas = np.asarray(model.config.param_set(STATERROR).width())
    np.testing.assert_allclose(sigmas[live], err[live] / nominal[live], rtol=1e-9)
    assert np.all(np.asarray(model.config.suggested_fixed())[model.config.par_slice(STATERROR)][~live])


# ------------------------------------------------------------------------------------ shape statistics


def test_poorly_sampled_fraction_can_fail(bg_dir: Path) -> None:
    """The criterion is computed from (template / stat_err)^2 = effective simulated events per bin."""
    t = np.array([10.0, 1.0, 0.5, 0.0])
    err = np.array([1.0, 0.5, 0.5, 0.0])  # 100, 4 and 1 effective events
    assert poorly_sampled_fraction(t, err, min_events=10) == pytest.approx(1.5 / 11.5)
    assert poorly_sampled_fraction(t, err, min_events=2) == pytest.approx(0.5 / 11.5)
    assert poorly_sampled_fraction(t, None, min_events=10) == 0.0


def test_config_file_round_trip(small_config_path: Path) -> None:
    """The YAML of the test configuration declares the five default components."""
    doc = yaml.safe_load(small_config_path.read_text(encoding="utf-8"))
    assert sorted(doc["backgrounds"]["components"]) == ["accidental", "cevns_8b", "er", "neutron", "wall"]


def test_external_and_builtin_components(bg_dir: Path, mdc_dir: Path, small_config, tmp_path: Path) -> None:
    """A CSV template in events/(t yr) (normalisation template), an HDF5 template (expected_events) and the
    136Xe 2vbb spectrum through the ER lines, each against an independent number."""
    import multihist
    from inference_interface import multihist_to_template

    from dmpreserve.physics.double_beta import rate_xe136_2vbb

    b = small_config.binning
    e1, e2 = b.cs1_edges_phd, b.log10_cs2_edges
    n1, n2 = b.shape
    values = np.arange(n1 * n2, dtype=float).reshape(n1, n2) / 100.0 + 0.01
    rows = "".join(
        f"{e1[i]!r},{e1[i + 1]!r},{e2[j]!r},{e2[j + 1]!r},{float(values[i, j])!r},{float(values[i, j]) / 10!r}\n"
        for i in range(n1)
        for j in range(n2)
    )
    (tmp_path / "t.csv").write_text(
        "cs1_min_phd,cs1_max_phd,log10_cs2_min,log10_cs2_max,events,events_err\n" + rows, encoding="utf-8"
    )
    hist = multihist.Histdd(bins=[list(e1), list(e2)], axis_names=["cs1", "log10_cs2"])
    hist.histogram = values
    multihist_to_template([hist], str(tmp_path / "t.h5"), histogram_names=["radon"])
    comps = copy.deepcopy(small_config["backgrounds"]["components"])
    comps["csv_template"] = {
        "shape": {"template": {"csv": str(tmp_path / "t.csv")}},
        "normalisation": {"template": True, "constraint": {"lognormal": 0.1}},
    }
    comps["h5_template"] = {
        "shape": {"template": {"hdf5": {"path": str(tmp_path / "t.h5"), "histogram": "radon"}}},
        "normalisation": {"expected_events": 3.0, "constraint": {"gaussian": 0.2}},
    }
    comps["xe136"] = {
        "kind": "ER",
        "spectrum": {"builtin": {"name": "xe136_2vbb"}},
        "shape": "nest",
        "normalisation": {"spectrum": True, "constraint": {"lognormal": 0.1}},
    }
    t = estimate_backgrounds(_with_components(small_config, comps), _inputs(bg_dir, mdc_dir))
    exposure = t.exposure_t_yr
    np.testing.assert_allclose(t.components["csv_template"].template, exposure * values, rtol=1e-12)
    np.testing.assert_allclose(t.components["csv_template"].stat_err, exposure * values / 10, rtol=1e-12)
    h5 = t.components["h5_template"]
    np.testing.assert_allclose(h5.template, 3.0 * values / values.sum(), rtol=1e-12)
    assert h5.stat_err is None and h5.constraint == "gaussian"
    resp = read_line_response(bg_dir / "response_er.json")
    fine = np.linspace(resp.line_energies_kev[0], resp.line_energies_kev[-1], 59001)
    mid = 0.5 * (fine[1:] + fine[:-1])
    acc = np.array([resp.row(e).sum() for e in mid])
    want = exposure * float(np.sum(rate_xe136_2vbb(mid) * acc) * (fine[1] - fine[0]))
    assert t.components["xe136"].expected_events == pytest.approx(want, rel=1e-4)
    build_workspace(t, poi_bounds=(0.0, 50.0))  # valid for pyhf


def test_accidentals_rate_and_counting_errors(mdc_dir: Path, doc, small_config) -> None:
    """rate per pairing = r_S1 r_S2 window live time / pairs (from the sidecars); each bin holds a whole number of
    pairings and its uncertainty is sqrt(pairings) x rate per pairing."""
    iso1, iso2 = read_reduced(mdc_dir / "isolated_s1.parquet"), read_reduced(mdc_dir / "isolated_s2.parquet")
    science = read_json(mdc_dir / "science.json")
    pairs = small_config["backgrounds"]["components"]["accidental"]["shape"]["isolated_pairs"]["pairs"]
    total = (
        len(iso1)
        / iso1.meta["live_time_s"]
        * len(iso2)
        / iso2.meta["live_time_s"]
        * science["active_volume"]["drift_time_max_us"]
        * 1e-6
        * science["live_time_s"]
    )
    acc = doc["components"]["accidental"]
    counts = np.asarray(acc["template"]) / (total / pairs)
    np.testing.assert_allclose(counts, np.round(counts), atol=1e-6)
    assert 0.3 * pairs < counts.sum() <= pairs
    np.testing.assert_allclose(np.asarray(acc["stat_err"]), np.sqrt(np.round(counts)) * total / pairs, rtol=1e-9)
    rel = np.hypot(0.2, np.sqrt(1 / len(iso1) + 1 / len(iso2)))
    assert acc["uncertainty_events"] == pytest.approx(acc["expected_events"] * rel, rel=1e-12)
