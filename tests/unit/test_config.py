"""Tests of dmpreserve.config: shipped configurations validate; bad ones are refused naming the file and key."""

from __future__ import annotations

import ast
import copy
import math
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from dmpreserve.config import (
    INPUT_NAMES,
    STORAGE_PLUGINS,
    AnalysisConfig,
    canonical_hash,
    config_from_dict,
    load_config,
)
from dmpreserve.errors import DmpreserveError, InvalidConfig
from dmpreserve.schema import load_schema

REPO = Path(__file__).resolve().parents[2]
TEST_CONFIG = REPO / "tests" / "data" / "test_config.yaml"
DEFAULT_CONFIG = REPO / "workflow" / "config" / "config.yaml"
SCHEMA_FILE = REPO / "schemas" / "config.schema.json"


@pytest.mark.parametrize("path", [DEFAULT_CONFIG, TEST_CONFIG], ids=["default", "test"])
def test_shipped_configs_validate(path: Path) -> None:
    cfg = load_config(path)
    assert isinstance(cfg, AnalysisConfig)
    assert cfg.path == str(path)
    assert cfg.sha256 == canonical_hash(yaml.safe_load(path.read_text(encoding="utf-8")))
    assert len(cfg.sha256) == 64
    n1, n2 = cfg.binning.shape
    assert cfg.binning.n_bins == n1 * n2 > 1
    assert cfg.binning.cs1_edges_phd[0] == cfg["analysis"]["binning"]["cs1_phd"]["min"]
    assert cfg.binning.log10_cs2_edges[-1] == cfg["analysis"]["binning"]["log10_cs2"]["max"]
    masses = cfg.masses_gev
    assert len(masses) == cfg["signal"]["masses_gev"]["count"]
    assert masses[0] == pytest.approx(cfg["signal"]["masses_gev"]["min"])
    assert masses[-1] == pytest.approx(cfg["signal"]["masses_gev"]["max"])
    assert np.all(np.diff(np.log(masses)) > 0)


@pytest.mark.parametrize("analysis", ["lz_ws2022", "lz_ws2024"])
def test_lz_configs_validate_with_their_nest_parameters(analysis: str, test_config_doc: dict[str, Any]) -> None:
    path = REPO / "workflow" / "analyses" / analysis / "config.yaml"
    params = load_config(path)["mdc"]["nest_parameters"]
    # WS2024: LZ's tuned NR and ER yields; WS2022: the ER vector only (docs/analyses.md)
    assert len(params["er_yields"]) == 10 and params["source"]
    assert ("nr_yields" in params) == (analysis == "lz_ws2024")
    assert len(params.get("nr_yields", [0.0] * 12)) == 12
    # the same block in the test configuration validates too (the schema, not the LZ file's other settings)
    doc = copy.deepcopy(test_config_doc)
    doc["mdc"]["nest_parameters"] = {**params, "nr_er_widths": [0.4] * 11}
    assert (
        config_from_dict(doc, path="<test config + LZ NEST vectors>")["mdc"]["nest_parameters"]
        == doc["mdc"]["nest_parameters"]
    )


@pytest.mark.parametrize("path", [DEFAULT_CONFIG, TEST_CONFIG], ids=["default", "test"])
def test_shipped_configs_pass_snakemake_validate(path: Path) -> None:
    from snakemake.utils import validate

    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    validate(copy.deepcopy(doc), str(SCHEMA_FILE))


def test_snakemake_validate_rejects_bad_config(test_config_doc: dict[str, Any]) -> None:
    """The schema file Snakemake reads is the same one that refuses bad input (not a permissive copy)."""
    from snakemake.utils import validate

    doc = copy.deepcopy(test_config_doc)
    doc["seed"] = "not a number"
    with pytest.raises(Exception, match="seed"):
        validate(doc, str(SCHEMA_FILE))


def test_packaged_schema_is_the_repository_schema() -> None:
    import json

    assert load_schema("config") == json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))


def test_config_hash_is_content_based(test_config_doc: dict[str, Any]) -> None:
    a = config_from_dict(copy.deepcopy(test_config_doc))
    b = config_from_dict(copy.deepcopy(test_config_doc), path="elsewhere.yaml")
    assert a.sha256 == b.sha256
    changed = copy.deepcopy(test_config_doc)
    changed["seed"] += 1
    assert config_from_dict(changed).sha256 != a.sha256


def test_cut_range_and_cuts_by_kind(test_config_doc: dict[str, Any]) -> None:
    cfg = config_from_dict(copy.deepcopy(test_config_doc))
    assert cfg.cut_range("cs1_phd", "roi") == (3.0, 80.0)
    lo, hi = cfg.cut_range("r_cm", "fiducial")
    assert lo == -math.inf and hi == 68.8
    assert [c["name"] for c in cfg.cuts(kinds=("roi",))] == ["roi_cs1", "roi_cs2"]
    assert [c["kind"] for c in cfg.cuts()] == ["quality", "quality", "fiducial", "fiducial", "roi", "roi"]


# ---------------------------------------------------------------------------------------------
# Bad configurations: (id, mutation of the document, JSON path expected in the message, extra text)


def _set(*keys: Any, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(doc: dict[str, Any]) -> None:
        node = doc
        for k in keys[:-1]:
            node = node[k]
        node[keys[-1]] = value

    return mutate


BAD_DOCS = [
    ("unknown_key", _set("analysis", "extra_key", value=1), "$.analysis", "extra_key"),
    ("unknown_top_level_key", _set("sigma_cm2", value=1e-45), "$", "sigma_cm2"),
    (  # a typo gets the allowed key it is closest to
        "typo_key",
        _set("statistics", "band_pionts", value=24),
        "$.statistics",
        "'band_pionts': did you mean 'band_points'?",
    ),
    ("wrong_type", _set("seed", value="twenty"), "$.seed", "integer"),
    ("bool_for_integer", _set("mdc", "calibration", "er_events", value=True), "$.mdc.calibration.er_events", "integer"),
    ("empty_mass_grid", _set("signal", "masses_gev", "count", value=0), "$.signal.masses_gev.count", "minimum"),
    ("inverted_roi", _set("selection", "cuts", 4, "min", value=90.0), "$.selection.cuts[4]", "inverted"),
    (
        "binning_leaves_roi",
        _set("analysis", "binning", "cs1_phd", "max", value=90.0),
        "$.analysis.binning.cs1_phd",
        "leaves the ROI",
    ),
    (
        "binning_leaves_roi_below",
        _set("analysis", "binning", "log10_cs2", "min", value=2.0),
        "$.analysis.binning.log10_cs2",
        "leaves the ROI",
    ),
    (
        "duplicate_cut_name",
        _set("selection", "cuts", 5, "name", value="roi_cs1"),
        "$.selection.cuts[5].name",
        "duplicate",
    ),
    (
        "cut_unknown_variable",
        _set("selection", "cuts", 0, "variable", value="true_energy_kev"),
        "$.selection.cuts[0].variable",
        "true_energy_kev",
    ),
    ("cut_without_bounds", lambda d: d["selection"]["cuts"][1].pop("min"), "$.selection.cuts[1]", ""),
    (
        "fiducial_cut_on_other_variable",
        _set("selection", "cuts", 3, "variable", value="x_cm"),
        "$.selection.cuts",
        "fiducial",
    ),
    (
        "er_sideband_overlaps_roi",
        _set("backgrounds", "components", "er", "normalisation", "sideband", "cs1_phd", "min", value=50.0),
        "$.backgrounds.components.er.normalisation.sideband.cs1_phd.min",
        "above the cS1 ROI",
    ),
    (
        "wall_sideband_inside_fiducial",
        _set("backgrounds", "components", "wall", "shape", "radial_sideband", "r_min_cm", value=60.0),
        "$.backgrounds.components.wall.shape.radial_sideband.r_min_cm",
        "fiducial",
    ),
    (
        "background_two_normalisations",
        _set("backgrounds", "components", "neutron", "normalisation", "expected_events", value=1.0),
        "$.backgrounds.components.neutron.normalisation",
        "exactly one",
    ),
    (
        "background_no_normalisation",
        lambda d: d["backgrounds"]["components"]["neutron"]["normalisation"].pop("rate_per_t_yr"),
        "$.backgrounds.components.neutron.normalisation",
        "exactly one",
    ),
    (
        "background_shape_normalisation_mismatch",
        _set(
            "backgrounds",
            "components",
            "wall",
            "normalisation",
            value={"rate_per_t_yr": 1.0, "constraint": {"lognormal": 0.1}},
        ),
        "$.backgrounds.components.wall.normalisation.rate_per_t_yr",
        "radial_sideband",
    ),
    (
        "background_nest_without_kind",
        lambda d: d["backgrounds"]["components"]["neutron"].pop("kind"),
        "$.backgrounds.components.neutron.kind",
        "nest",
    ),
    (
        "background_data_driven_with_spectrum",
        _set(
            "backgrounds",
            "components",
            "wall",
            "spectrum",
            value={"flat": {"energy_min_kev": 1.0, "energy_max_kev": 2.0}},
        ),
        "$.backgrounds.components.wall.spectrum",
        "no spectrum",
    ),
    (
        "background_shape_as_absolute_rate",
        _set(
            "backgrounds",
            "components",
            "neutron",
            "normalisation",
            value={"spectrum": True, "constraint": {"lognormal": 0.5}},
        ),
        "$.backgrounds.components.neutron.spectrum.builtin.name",
        "shape",
    ),
    (
        "background_flat_without_rate",
        _set(
            "backgrounds",
            "components",
            "er",
            "normalisation",
            value={"spectrum": True, "constraint": {"lognormal": 0.1}},
        ),
        "$.backgrounds.components.er.spectrum.flat.rate_per_t_yr_kev",
        "rate_per_t_yr_kev",
    ),
    (
        "background_flat_inverted",
        _set("backgrounds", "components", "er", "spectrum", "flat", "energy_min_kev", value=70.0),
        "$.backgrounds.components.er.spectrum.flat",
        "inverted",
    ),
    (
        "background_lines_lengths",
        _set(
            "backgrounds",
            "components",
            "er",
            "spectrum",
            value={"lines": {"energies_kev": [1.0, 2.0], "intensities": [1.0]}},
        ),
        "$.backgrounds.components.er.spectrum.lines.intensities",
        "2 energies",
    ),
    (
        "background_builtin_foreign_parameter",
        _set("backgrounds", "components", "cevns_8b", "spectrum", "builtin", "e_fold_kev", value=10.0),
        "$.backgrounds.components.cevns_8b.spectrum.builtin.e_fold_kev",
        "cevns_8b",
    ),
    (
        "background_sideband_for_nr",
        _set(
            "backgrounds",
            "components",
            "neutron",
            "normalisation",
            value={"sideband": {"cs1_phd": {"min": 80.0, "max": 160.0}}, "constraint": {"lognormal": 0.1}},
        ),
        "$.backgrounds.components.neutron.kind",
        "ER",
    ),
    (
        "background_free_bounds_inverted",
        _set("backgrounds", "components", "er", "normalisation", "constraint", value={"free": {"bounds": [5.0, 1.0]}}),
        "$.backgrounds.components.er.normalisation.constraint.free.bounds",
        "inverted",
    ),
    (
        "background_gaussian_width_one",
        _set("backgrounds", "components", "cevns_8b", "normalisation", "constraint", value={"gaussian": 1.0}),
        "$.backgrounds.components.cevns_8b.normalisation.constraint.gaussian",
        "",
    ),
    (
        "background_two_constraints",
        _set(
            "backgrounds",
            "components",
            "cevns_8b",
            "normalisation",
            "constraint",
            value={"gaussian": 0.1, "lognormal": 0.1},
        ),
        "$.backgrounds.components.cevns_8b.normalisation.constraint",
        "",
    ),
    (
        "background_bad_name",
        _set("backgrounds", "components", "Bad-Name", value={"shape": "nest"}),
        "$.backgrounds.components",
        "",
    ),
    ("poi_bounds_inverted", _set("likelihood", "poi_bounds", value=[50.0, 0.0]), "$.likelihood.poi_bounds", "inverted"),
    (
        "poi_bounds_negative",
        _set("likelihood", "poi_bounds", value=[-1.0, 50.0]),
        "$.likelihood.poi_bounds[0]",
        "minimum",
    ),
    (
        "limits_mass_not_on_grid",
        _set("limits", "masses_gev", value=[10.0, 33.0]),
        "$.limits.masses_gev[1]",
        "not on the signal mass grid",
    ),
    (
        "signal_energy_outside_simulation",
        _set("signal", "energy_bins_kev", "max", value=150.0),
        "$.signal.energy_bins_kev",
        "simulated",
    ),
    ("escape_below_v0", _set("signal", "halo", "v_esc_km_s", value=200.0), "$.signal.halo.v_esc_km_s", "v0"),
    ("bad_container_image", _set("container_image", value="ghcr.io/x; rm -rf /"), "$.container_image", ""),
    ("unknown_detector", _set("mdc", "detector", value="XENONnT"), "$.mdc.detector", "XENONnT"),
    (
        "nest_nr_yields_five_values",
        _set("mdc", "nest_parameters", value={"nr_yields": [10.19, 1.11, 0.0498, -0.0533, 12.46]}),
        "$.mdc.nest_parameters.nr_yields",
        "too short",
    ),
    (
        "nest_widths_fourteen_values",
        _set("mdc", "nest_parameters", value={"nr_er_widths": [0.1] * 14}),
        "$.mdc.nest_parameters.nr_er_widths",
        "too long",
    ),
    (
        "nest_unknown_vector",
        _set("mdc", "nest_parameters", value={"s1_yields": [1.0]}),
        "$.mdc.nest_parameters",
        "s1_yields",
    ),
]


def _write(tmp_path: Path, doc: Any, name: str = "bad.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


@pytest.mark.parametrize(("mutate", "field", "text"), [c[1:] for c in BAD_DOCS], ids=[c[0] for c in BAD_DOCS])
def test_bad_config_names_file_and_field(
    tmp_path: Path, test_config_doc: dict[str, Any], mutate, field: str, text: str
) -> None:
    doc = copy.deepcopy(test_config_doc)
    mutate(doc)
    path = _write(tmp_path, doc)
    with pytest.raises(InvalidConfig) as info:
        load_config(path)
    exc = info.value
    assert exc.path == str(path)
    assert exc.field == field
    assert str(path) in str(exc)
    assert f"{field}:" in str(exc)
    assert text in str(exc)
    assert "\n" not in str(exc)


def test_yaml11_exponent_without_dot_sign_is_a_string_and_rejected(tmp_path: Path) -> None:
    """PyYAML (YAML 1.1) reads ``5.16e6`` as a string; the schema must refuse it rather than coerce it."""
    text = TEST_CONFIG.read_text(encoding="utf-8")
    assert "flux_per_cm2_s: 5.16e+6" in text
    path = tmp_path / "yaml11.yaml"
    path.write_text(text.replace("flux_per_cm2_s: 5.16e+6", "flux_per_cm2_s: 5.16e6", 1), encoding="utf-8")
    assert yaml.safe_load(path.read_text())["mdc"]["components"]["cevns_8b"]["flux_per_cm2_s"] == "5.16e6"
    with pytest.raises(InvalidConfig) as info:
        load_config(path)
    assert info.value.field == "$.mdc.components.cevns_8b.flux_per_cm2_s"
    assert str(path) in str(info.value)
    assert "'5.16e6' is not of type 'number'" in str(info.value)


def test_code_in_cut_variable_is_rejected_never_evaluated(
    tmp_path: Path, test_config_doc: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Any] = []
    monkeypatch.setattr(os, "system", lambda *a: calls.append(a) or 0)
    marker = tmp_path / "evaluated"
    doc = copy.deepcopy(test_config_doc)
    doc["selection"]["cuts"][0]["variable"] = f"__import__('os').system('touch {marker}')"
    path = _write(tmp_path, doc)
    with pytest.raises(InvalidConfig) as info:
        load_config(path)
    assert info.value.field == "$.selection.cuts[0].variable"
    assert str(path) in str(info.value)
    assert not calls
    assert not marker.exists()


def test_python_yaml_tags_are_refused(tmp_path: Path) -> None:
    """yaml.safe_load must be used: a python/object tag is a YAML error, not an object."""
    path = tmp_path / "tag.yaml"
    path.write_text("seed: !!python/object/apply:os.system ['true']\n", encoding="utf-8")
    with pytest.raises(InvalidConfig) as info:
        load_config(path)
    assert str(path) in str(info.value)
    assert "YAML" in str(info.value)


def test_missing_config_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(InvalidConfig) as info:
        load_config(path)
    assert str(path) in str(info.value)
    assert "not found" in str(info.value)


def test_corrupt_yaml(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.yaml"
    path.write_text("seed: 1\nmdc: {detector: [unclosed\n  live_time_days: 60\n", encoding="utf-8")
    with pytest.raises(InvalidConfig) as info:
        load_config(path)
    assert str(path) in str(info.value)
    assert "not valid YAML" in str(info.value)
    assert "\n" not in str(info.value)


def test_non_utf8_config(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(TEST_CONFIG.read_bytes().replace(b"# SMALL", "# SMÄLL".encode("latin-1"), 1))
    with pytest.raises(InvalidConfig) as info:
        load_config(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("content", ["", "- a\n- b\n", "just a string\n"], ids=["empty", "list", "scalar"])
def test_config_must_be_a_mapping(tmp_path: Path, content: str) -> None:
    path = tmp_path / "notmap.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InvalidConfig) as info:
        load_config(path)
    assert info.value.field == "$"
    assert str(path) in str(info.value)


def test_oversized_config_refused(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    path.write_text("# " + "x" * (1024 * 1024 + 10) + "\n", encoding="utf-8")
    with pytest.raises(InvalidConfig, match="larger than"):
        load_config(path)


def test_errors_are_dmpreserve_errors() -> None:
    assert issubclass(InvalidConfig, DmpreserveError)
    exc = InvalidConfig("bad", path="a.yaml", field="$.x")
    assert str(exc) == "a.yaml: $.x: bad"
    assert str(InvalidConfig("bad")) == "bad"


@pytest.mark.parametrize(
    "keys",
    [
        ("mdc", "live_time_days"),
        ("selection", "cuts", 1, "min"),
        ("backgrounds", "components", "neutron", "normalisation", "rate_per_t_yr"),
    ],
    ids=["live_time", "cut_min", "uncertainty"],
)
def test_nan_in_config_is_rejected(tmp_path: Path, test_config_doc: dict[str, Any], keys: tuple) -> None:
    doc = copy.deepcopy(test_config_doc)
    _set(*keys, value=math.nan)(doc)
    path = _write(tmp_path, doc)
    assert ".nan" in path.read_text()
    with pytest.raises(InvalidConfig) as info:
        load_config(path)
    assert str(path) in str(info.value)


def test_workflow_input_tables_match_the_package() -> None:
    """workflow/rules/inputs.smk repeats the input names and the URL-scheme -> storage-plugin table of
    dmpreserve.config (the Snakefile cannot import the package, e.g. under REANA): they must stay equal."""
    text = (Path(__file__).resolve().parents[2] / "workflow/rules/inputs.smk").read_text(encoding="utf-8")
    for name, value in (("INPUT_NAMES", INPUT_NAMES), ("STORAGE_PLUGINS", STORAGE_PLUGINS)):
        (literal,) = re.findall(rf"^{name} = (.+)$", text, flags=re.M)
        assert ast.literal_eval(literal) == value, name


# ---------------------------------------------------------------------------------------------
# Released tables as inputs, a released efficiency curve (three files), fiducial cuts applied upstream


def _table_input(**extra: Any) -> dict[str, Any]:
    return {
        "location": "../shared/reference/lz_ws2022/lz_ws2022_wimp_data.csv",
        "sha256": {"lz_ws2022_wimp_data.csv": "c" * 64},
        "table": {"columns": ["cs1_phd", "log10_cs2"], "description": "workflow/analyses/lz_ws2022/events.yaml"},
        **extra,
    }


def test_table_input_validates(tmp_path: Path, test_config_doc: dict[str, Any]) -> None:
    doc = copy.deepcopy(test_config_doc)
    doc["inputs"]["science"] = _table_input()
    cfg = load_config(_write(tmp_path, doc, "table.yaml"))
    assert cfg.inputs["science"]["table"]["columns"] == ["cs1_phd", "log10_cs2"]


@pytest.mark.parametrize(
    ("spec", "field", "text"),
    [
        (_table_input(location="data/events.parquet"), "$.inputs.science.location", "one text file"),
        (_table_input(location="data/events/"), "$.inputs.science.location", "one text file"),
        (_table_input(files=["a.parquet"]), "$.inputs.science.files", "'files' does not apply"),
        (
            _table_input(sha256={"other.csv": "0" * 64}),
            "$.inputs.science.sha256.other.csv",
            "the table is lz_ws2022_wimp_data.csv",
        ),
        (
            {**_table_input(), "table": {"columns": ["cs1_phd"], "description": "d.yaml", "unit": "phd"}},
            "$.inputs.science.table",
            "unit",
        ),
        ({**_table_input(), "table": {"columns": [], "description": "d.yaml"}}, "$.inputs.science.table.columns", ""),
    ],
    ids=["parquet", "directory", "files", "sha256_other_file", "table_unknown_key", "no_columns"],
)
def test_bad_table_input_refused(
    tmp_path: Path, test_config_doc: dict[str, Any], spec: dict[str, Any], field: str, text: str
) -> None:
    doc = copy.deepcopy(test_config_doc)
    doc["inputs"]["science"] = spec
    path = _write(tmp_path, doc)
    with pytest.raises(InvalidConfig) as info:
        load_config(path)
    assert info.value.path == str(path)
    assert info.value.field == field, str(info.value)
    assert text in str(info.value)


def test_efficiency_curve_triplet_validates(tmp_path: Path, test_config_doc: dict[str, Any]) -> None:
    doc = copy.deepcopy(test_config_doc)
    curve = {"median": "m.csv", "lower": "l.csv", "upper": "u.csv"}
    doc["signal"]["efficiency"] = {"curve": curve, "includes_roi": False}
    assert load_config(_write(tmp_path, doc, "a.yaml"))["signal"]["efficiency"]["curve"] == curve
    doc["signal"]["efficiency"]["curve"] = {**curve, "extend_flat_to_kev": 100.0}
    load_config(_write(tmp_path, doc, "b.yaml"))
    for bad, field in (
        ({"median": "m.csv", "lower": "l.csv"}, "$.signal.efficiency.curve"),
        ({**curve, "extend_flat_to_kev": 0.0}, "$.signal.efficiency.curve"),
        ({**curve, "band": "u.csv"}, "$.signal.efficiency.curve"),
    ):
        doc["signal"]["efficiency"]["curve"] = bad
        path = _write(tmp_path, doc, "bad.yaml")
        with pytest.raises(InvalidConfig) as info:
            load_config(path)
        assert info.value.field.startswith(field) and str(path) in str(info.value), bad


def test_config_without_fiducial_cut_validates(tmp_path: Path, test_config_doc: dict[str, Any]) -> None:
    """A provider that applied the fiducial cut upstream: no configured fiducial cut at all is allowed."""
    doc = copy.deepcopy(test_config_doc)
    doc["selection"]["cuts"] = [c for c in doc["selection"]["cuts"] if c["kind"] != "fiducial"]
    # the wall component's radial sideband lies outside the fiducial radius: without one it is refused
    path = _write(tmp_path, doc, "wall.yaml")
    with pytest.raises(InvalidConfig) as info:
        load_config(path)
    assert info.value.field == "$.backgrounds.components.wall.shape.radial_sideband.r_min_cm"
    del doc["backgrounds"]["components"]["wall"]
    cfg = load_config(_write(tmp_path, doc, "nofid.yaml"))
    assert cfg.cuts(kinds=("fiducial",)) == []


def test_fiducial_drift_cut_without_radius_refused(tmp_path: Path, test_config_doc: dict[str, Any]) -> None:
    doc = copy.deepcopy(test_config_doc)
    doc["selection"]["cuts"] = [c for c in doc["selection"]["cuts"] if c["name"] != "fiducial_radius"]
    assert [c["variable"] for c in doc["selection"]["cuts"] if c["kind"] == "fiducial"] == ["drift_time_us"]
    path = _write(tmp_path, doc)
    with pytest.raises(InvalidConfig) as info:
        load_config(path)
    assert info.value.field == "$.selection.cuts"
    assert "r_cm" in str(info.value) and str(path) in str(info.value)


@pytest.mark.parametrize(("power", "ok"), [(0.16, True), (0.5, True), (0.6, False), (0.0, False)])
def test_pcl_power_range(tmp_path: Path, test_config_doc: dict[str, Any], power: float, ok: bool) -> None:
    doc = copy.deepcopy(test_config_doc)
    doc["statistics"]["pcl_power"] = power
    path = _write(tmp_path, doc)
    if ok:
        assert load_config(path)["statistics"]["pcl_power"] == power
    else:
        with pytest.raises(InvalidConfig) as info:
            load_config(path)
        assert info.value.field == "$.statistics.pcl_power"


UNBINNED = {"binning": {"cs1_phd": {"bins": 22}, "log10_cs2": {"bins": 20}}, "smoothing_bins": 1.5}


@pytest.mark.parametrize(
    ("mode", "ok"), [("toys", True), ("asymptotic", True), (None, True), ("table", False)], ids=str
)
def test_unbinned_likelihood_needs_toys_or_asymptotic(
    tmp_path: Path, test_config_doc: dict[str, Any], mode: str | None, ok: bool
) -> None:
    """likelihood.unbinned: the threshold table is built from the binned likelihood, so neyman_threshold: table is
    refused (statistics absent: asymptotic)."""
    doc = copy.deepcopy(test_config_doc)
    doc["likelihood"]["unbinned"] = copy.deepcopy(UNBINNED)
    if mode is None:
        del doc["statistics"]
    else:
        doc["statistics"]["neyman_threshold"] = mode
    path = _write(tmp_path, doc)
    if ok:
        assert load_config(path)["likelihood"]["unbinned"] == UNBINNED
    else:
        with pytest.raises(InvalidConfig, match="likelihood.unbinned needs neyman_threshold") as info:
            load_config(path)
        assert info.value.field == "$.statistics.neyman_threshold" and info.value.path == str(path)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"binning": {"cs1_phd": {"bins": 1}, "log10_cs2": {"bins": 20}}}, "bins"),
        ({"binning": {"cs1_phd": {"bins": 22}}}, "log10_cs2"),
        ({"smoothing_bins": -0.5}, "smoothing_bins"),
        ({"er_events_per_line": 2.5}, "er_events_per_line"),
        ({"extra": 1}, "extra"),
    ],
)
def test_unbinned_setting_schema(tmp_path: Path, test_config_doc: dict[str, Any], change, field: str) -> None:
    doc = copy.deepcopy(test_config_doc)
    doc["statistics"]["neyman_threshold"] = "toys"
    doc["likelihood"]["unbinned"] = {**copy.deepcopy(UNBINNED), **change}
    with pytest.raises(InvalidConfig) as info:
        load_config(_write(tmp_path, doc))
    assert "unbinned" in str(info.value) and field in str(info.value)


def test_lz_ws2022_has_an_unbinned_likelihood_with_toys() -> None:
    cfg = load_config(REPO / "workflow" / "analyses" / "lz_ws2022" / "config.yaml")
    unbinned = cfg["likelihood"]["unbinned"]
    assert (unbinned["binning"]["cs1_phd"]["bins"], unbinned["binning"]["log10_cs2"]["bins"]) == (154, 182)
    assert unbinned["smoothing_bins"] == 1.5 and cfg.statistics["neyman_threshold"] == "toys"
