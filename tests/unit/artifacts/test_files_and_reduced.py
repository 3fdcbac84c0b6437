"""Tests of dmpreserve.files (atomic, deterministic writers; strict readers) and dmpreserve.artifacts.reduced
(reduced data)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dmpreserve.artifacts.reduced import ReducedData, column_catalogue, read_reduced, sidecar_path, write_reduced
from dmpreserve.errors import InvalidData
from dmpreserve.files import atomic_write, read_csv, read_json, sha256_file, write_csv, write_json

DETECTOR = {
    "name": "TestTPC",
    "g1_phd_per_photon": 0.11,
    "g2_phd_per_electron": 47.0,
    "electron_lifetime_us": 6500.0,
    "drift_velocity_mm_per_us": 1.5,
    "drift_field_v_per_cm": 192.0,
    "lxe_density_g_cm3": 2.88,
    "wall_radius_cm": 72.8,
    "position_resolution_cm": {"a_cm": 1.2, "b_cm": 0.1},
}
ACTIVE = {"r_max_cm": 72.8, "drift_time_min_us": 0.0, "drift_time_max_us": 960.0}
SCIENCE_COLUMNS = (
    "event_id",
    "s1_phd",
    "s2_phd",
    "cs1_phd",
    "cs2_phd",
    "drift_time_us",
    "x_cm",
    "y_cm",
    "s1_coincidence",
)


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".part") or p.name.startswith("."))


# ------------------------------------------------------------------------------------------- io


def test_atomic_write_success(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "out.txt"
    with atomic_write(target) as tmp:
        assert tmp.parent == target.parent
        assert tmp != target
        tmp.write_text("hello")
        assert not target.exists()
    assert target.read_text() == "hello"
    assert _leftovers(target.parent) == []


def test_atomic_write_removes_what_a_killed_writer_left(tmp_path: Path) -> None:
    """A SIGKILLed writer leaves ``.<name>.<8 chars>.part``; the next write of the same target removes it
    (found by the CI crash-safety stage: a kill during truth.parquet's write left one behind)."""
    target = tmp_path / "truth.parquet"
    stale = [tmp_path / ".truth.parquet.k1ll_d00.part", tmp_path / ".truth.parquet.abcdefgh.part"]
    for p in stale:
        p.write_text("partial")
    (tmp_path / ".truth.parquet.zzzzzzzz.part").mkdir()  # a staging directory (dmpreserve cluster)
    others = [
        tmp_path / ".truth.parquet.x.abcdefgh.part",  # another target's temporary
        tmp_path / ".truth.parquet.short.part",
        tmp_path / "truth.parquet.abcdefgh.part",
        tmp_path / ".science.parquet.abcdefgh.part",
    ]
    for p in others:
        p.write_text("keep")
    with atomic_write(target) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([target.name, *(p.name for p in others)])


def test_atomic_write_exception_leaves_no_file(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_write(target) as tmp:
            tmp.write_text("partial")
            raise RuntimeError("boom")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_exception_keeps_previous_file(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_write(target) as tmp:
            tmp.write_text("new but partial")
            raise KeyboardInterrupt
    assert target.read_text() == "old"
    assert _leftovers(tmp_path) == []


def test_write_json_sorted_and_deterministic(tmp_path: Path) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    write_json(a, {"zeta": 1, "alpha": {"y": np.float64(0.1), "x": np.arange(3)}, "mid": (1, 2)})
    write_json(b, {"mid": [1, 2], "alpha": {"x": [0, 1, 2], "y": 0.1}, "zeta": 1})
    assert a.read_bytes() == b.read_bytes()
    text = a.read_text(encoding="utf-8")
    assert text.endswith("}\n")
    assert text.index('"alpha"') < text.index('"mid"') < text.index('"zeta"')
    assert json.loads(text) == {"alpha": {"x": [0, 1, 2], "y": 0.1}, "mid": [1, 2], "zeta": 1}
    assert sha256_file(a) == sha256_file(b)
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize(
    "bad",
    [math.nan, math.inf, -math.inf, np.float64("nan"), np.array([1.0, np.inf])],
    ids=["nan", "inf", "-inf", "np_nan", "array_inf"],
)
def test_write_json_rejects_non_finite(tmp_path: Path, bad: Any) -> None:
    target = tmp_path / "x.json"
    with pytest.raises(ValueError, match="non-finite|not JSON compliant"):
        write_json(target, {"value": bad})
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_read_json_rejects_non_json_constants(tmp_path: Path, constant: str) -> None:
    path = tmp_path / "c.json"
    path.write_text(f'{{"a": [1.0, {constant}]}}', encoding="utf-8")
    with pytest.raises(InvalidData) as info:
        read_json(path)
    assert str(path) in str(info.value)
    assert constant.lstrip("-") in str(info.value)


@pytest.mark.parametrize("text", ['{"a": 1', "", "not json", '{"a": 1}}'], ids=["truncated", "empty", "text", "extra"])
def test_read_json_rejects_corrupt_json(tmp_path: Path, text: str) -> None:
    path = tmp_path / "corrupt.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InvalidData) as info:
        read_json(path, what="pyhf workspace")
    assert str(path) in str(info.value)
    assert "pyhf workspace" in str(info.value)
    assert "not valid JSON" in str(info.value)


def test_read_json_missing_and_non_utf8(tmp_path: Path) -> None:
    with pytest.raises(InvalidData, match="not found") as info:
        read_json(tmp_path / "missing.json")
    assert str(tmp_path / "missing.json") in str(info.value)
    bad = tmp_path / "latin1.json"
    bad.write_bytes('{"a": "Ä"}'.encode("latin-1"))
    with pytest.raises(InvalidData, match="UTF-8") as info:
        read_json(bad)
    assert str(bad) in str(info.value)


def test_read_json_round_trip(tmp_path: Path) -> None:
    doc = {"b": [1, 2.5, None, True], "a": {"nested": "ü"}}
    write_json(tmp_path / "r.json", doc)
    assert read_json(tmp_path / "r.json") == doc


def test_csv_round_trip_exact_and_rejects_nan(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    values = [0.1 + 0.2, 1e-47 / 3, np.float64(2.0) / 3]
    write_csv(path, ("name", "value"), [(f"r{i}", v) for i, v in enumerate(values)])
    cols = read_csv(path, required=("name", "value"))
    assert cols["name"] == ["r0", "r1", "r2"]
    assert [float(v) for v in cols["value"]] == [float(v) for v in values]
    with pytest.raises(InvalidData) as info:
        read_csv(path, required=("name", "limit_cm2"))
    assert info.value.field == "limit_cm2" and str(path) in str(info.value)
    out = tmp_path / "nan.csv"
    with pytest.raises(ValueError, match="non-finite"):
        write_csv(out, ("a",), [(1.0,), (math.nan,)])
    assert not out.exists()
    assert _leftovers(tmp_path) == []


def test_read_csv_ragged_line(tmp_path: Path) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text("a,b\n1,2\n3\n", encoding="utf-8")
    with pytest.raises(InvalidData, match="line 3") as info:
        read_csv(path, required=("a",))
    assert str(path) in str(info.value)


# ------------------------------------------------------------------------------ reduced data


def _science_columns(n: int = 50, seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    s1 = rng.uniform(1.0, 100.0, n)
    s2 = rng.uniform(500.0, 5e4, n)
    return {
        "event_id": np.arange(n, dtype=np.int64),
        "s1_phd": s1,
        "s2_phd": s2,
        "cs1_phd": 1.1 * s1,
        "cs2_phd": 1.2 * s2,
        "drift_time_us": rng.uniform(0.0, 950.0, n),
        "x_cm": rng.uniform(-50, 50, n),
        "y_cm": rng.uniform(-50, 50, n),
        "s1_coincidence": rng.integers(2, 20, n).astype(np.int64),
    }


def _science_meta() -> dict[str, Any]:
    return {
        "format": "dmpreserve-reduced-data",
        "format_version": 1,
        "kind": "science",
        "detector": dict(DETECTOR),
        "active_volume": dict(ACTIVE),
        "live_time_s": 5.184e6,
        "exposure": {"fiducial_mass_t": 5.5, "live_time_days": 60.0, "exposure_t_yr": 0.9},
    }


@pytest.fixture()
def science_file(tmp_path: Path) -> Path:
    path = tmp_path / "science.parquet"
    write_reduced(path, _science_columns(), _science_meta())
    return path


def _rewrite_parquet(path: Path, mutate) -> None:
    table = pq.read_table(path)
    cols = {name: table.column(name).to_numpy() for name in table.column_names}
    mutate(cols)
    pq.write_table(pa.table(cols), path)


def _rewrite_sidecar(path: Path, mutate) -> None:
    side = sidecar_path(path)
    doc = json.loads(side.read_text())
    mutate(doc)
    side.write_text(json.dumps(doc))


def test_read_reduced_round_trip(science_file: Path) -> None:
    cols = _science_columns()
    data = read_reduced(science_file, kinds=("science",))
    assert isinstance(data, ReducedData)
    assert len(data) == 50 and data.kind == "science"
    assert set(data.columns) == set(SCIENCE_COLUMNS)
    for name, values in cols.items():
        np.testing.assert_array_equal(data.columns[name], values)
        assert data.columns[name].dtype == np.dtype(column_catalogue()[name]["dtype"])
    assert data.meta["columns"]["cs1_phd"]["unit"] == "phd"
    assert data.meta["n_events"] == 50
    np.testing.assert_allclose(data.variable("r_cm"), np.hypot(cols["x_cm"], cols["y_cm"]))
    np.testing.assert_allclose(data.variable("log10_cs2"), np.log10(cols["cs2_phd"]))
    with pytest.raises(ValueError):
        data.columns["s1_phd"][0] = -1.0  # read-only


def test_write_reduced_is_deterministic(tmp_path: Path) -> None:
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    write_reduced(a, _science_columns(), _science_meta())
    write_reduced(b, _science_columns(), _science_meta())
    assert sha256_file(a) == sha256_file(b)
    assert sidecar_path(a).read_bytes() == sidecar_path(b).read_bytes()


def test_variable_unknown_column_names_file(science_file: Path) -> None:
    data = read_reduced(science_file)
    with pytest.raises(InvalidData) as info:
        data.variable("true_energy_kev")
    assert info.value.field == "true_energy_kev" and str(science_file) in str(info.value)


def _drop_column(name: str):
    return lambda cols: cols.pop(name)


def _set_column(name: str, fn):
    def mutate(cols):
        cols[name] = fn(cols[name])

    return mutate


def _with_index(arr: np.ndarray, i: int, value: Any) -> np.ndarray:
    arr = arr.copy()
    arr[i] = value
    return arr


# (id, parquet mutation, sidecar mutation, file that must be named ("parquet"/"sidecar"), field, text)
BAD_REDUCED = [
    ("missing_column_in_parquet", _drop_column("cs1_phd"), None, "parquet", "cs1_phd", "missing from the Parquet"),
    (
        "column_not_in_sidecar",
        None,
        lambda d: d["columns"].pop("cs2_phd"),
        "sidecar",
        "$.columns.cs2_phd",
        "not described in the sidecar",
    ),
    (
        "float_event_id",
        _set_column("event_id", lambda a: a.astype(np.float64)),
        None,
        "sidecar",
        "$.columns.event_id.dtype",
        "int64",
    ),
    (
        "int32_coincidence",
        _set_column("s1_coincidence", lambda a: a.astype(np.int32)),
        None,
        "sidecar",
        "$.columns.s1_coincidence.dtype",
        "int64",
    ),
    (
        "unit_mismatch",
        None,
        lambda d: d["columns"]["cs1_phd"].update(unit="keV"),
        "sidecar",
        "$.columns.cs1_phd.unit",
        "phd",
    ),
    ("nan_value", _set_column("cs1_phd", lambda a: _with_index(a, 3, np.nan)), None, "parquet", "cs1_phd", "NaN"),
    ("inf_value", _set_column("x_cm", lambda a: _with_index(a, 0, np.inf)), None, "parquet", "x_cm", "infinite"),
    ("negative_area", _set_column("s2_phd", lambda a: _with_index(a, 7, -5.0)), None, "parquet", "s2_phd", "negative"),
    (
        "negative_drift_time",
        _set_column("drift_time_us", lambda a: _with_index(a, 1, -0.5)),
        None,
        "parquet",
        "drift_time_us",
        "negative",
    ),
    (
        "duplicate_event_id",
        _set_column("event_id", lambda a: _with_index(a, 9, a[8])),
        None,
        "parquet",
        "event_id",
        "duplicate",
    ),
    ("n_events_mismatch", None, lambda d: d.update(n_events=49), "sidecar", "$.n_events", "49"),
    (
        "unknown_column",
        lambda c: c.update(energy_kev=np.ones(50)),
        lambda d: d["columns"].update(energy_kev={"unit": "keV"}),
        "sidecar",
        "$.columns",
        "energy_kev",
    ),
    (
        "missing_detector_field",
        None,
        lambda d: d["detector"].pop("g1_phd_per_photon"),
        "sidecar",
        "$.detector",
        "g1_phd_per_photon",
    ),
    ("wrong_format", None, lambda d: d.update(format="csv"), "sidecar", "$.format", ""),
    ("science_without_live_time", None, lambda d: d.pop("live_time_s"), "sidecar", "$", "live_time_s"),
    (
        "science_without_required_cs2",
        _drop_column("cs2_phd"),
        lambda d: d["columns"].pop("cs2_phd"),
        "sidecar",
        "$.columns",
        "cs2_phd",
    ),
]


@pytest.mark.parametrize(
    ("pmut", "smut", "which", "field", "text"), [c[1:] for c in BAD_REDUCED], ids=[c[0] for c in BAD_REDUCED]
)
def test_bad_reduced_data_names_file_and_field(
    science_file: Path, pmut, smut, which: str, field: str, text: str
) -> None:
    if pmut is not None:
        _rewrite_parquet(science_file, pmut)
    if smut is not None:
        _rewrite_sidecar(science_file, smut)
    with pytest.raises(InvalidData) as info:
        read_reduced(science_file, kinds=("science",))
    exc = info.value
    named = str(science_file) if which == "parquet" else str(sidecar_path(science_file))
    assert exc.path == named
    assert exc.field == field
    assert str(exc).startswith(f"{named}: {field}: ")
    assert text in str(exc)


def test_null_values_rejected(science_file: Path) -> None:
    table = pq.read_table(science_file)
    cs1 = pa.array([None] + table.column("cs1_phd").to_pylist()[1:], pa.float64())
    pq.write_table(table.set_column(table.column_names.index("cs1_phd"), "cs1_phd", cs1), science_file)
    with pytest.raises(InvalidData) as info:
        read_reduced(science_file)
    assert info.value.field == "cs1_phd" and str(science_file) in str(info.value)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_corrupt_parquet(science_file: Path, damage: str) -> None:
    raw = science_file.read_bytes()
    if damage == "truncate":
        science_file.write_bytes(raw[: len(raw) // 2])
    elif damage == "garbage":
        science_file.write_bytes(b"PAR1" + b"\x00garbage" * 50)
    else:
        science_file.write_bytes(b"")
    with pytest.raises(InvalidData) as info:
        read_reduced(science_file)
    assert info.value.path == str(science_file)
    assert "not a readable Parquet file" in str(info.value)


def test_missing_files(science_file: Path, tmp_path: Path) -> None:
    sidecar_path(science_file).unlink()
    with pytest.raises(InvalidData) as info:
        read_reduced(science_file)
    assert info.value.path == str(sidecar_path(science_file)) and "not found" in str(info.value)
    with pytest.raises(InvalidData) as info:
        read_reduced(tmp_path / "absent.parquet")
    assert info.value.path == str(tmp_path / "absent.parquet") and "not found" in str(info.value)


@pytest.mark.parametrize("text", ["", "[1, 2]", '{"kind": NaN}'], ids=["empty", "list", "nan"])
def test_bad_sidecar_documents(science_file: Path, text: str) -> None:
    sidecar_path(science_file).write_text(text)
    with pytest.raises(InvalidData) as info:
        read_reduced(science_file)
    assert info.value.path == str(sidecar_path(science_file))


def test_explicit_sidecar_argument(science_file: Path, tmp_path: Path) -> None:
    other = tmp_path / "elsewhere" / "meta.json"
    other.parent.mkdir()
    sidecar_path(science_file).rename(other)
    assert len(read_reduced(science_file, sidecar=other)) == 50
    with pytest.raises(InvalidData):
        read_reduced(science_file)


def _simulation_file(tmp_path: Path) -> Path:
    cols = _science_columns()
    cols["true_energy_kev"] = np.linspace(0.5, 100.0, 50)
    meta = {k: v for k, v in _science_meta().items() if k not in ("live_time_s", "exposure")}
    meta.update(kind="simulation_nr", energy_range_kev=[0.5, 100.0])
    path = tmp_path / "sim.parquet"
    write_reduced(path, cols, meta)
    return path


def test_truth_never_allowed_in_science_data(tmp_path: Path) -> None:
    """A science file carrying true_energy_kev is refused on write and on read."""
    cols = _science_columns()
    cols["true_energy_kev"] = np.ones(50)
    with pytest.raises(InvalidData) as info:
        write_reduced(tmp_path / "w.parquet", cols, _science_meta())
    assert info.value.field == "$.columns"
    assert not (tmp_path / "w.parquet").exists()
    # a simulation file (where truth is legitimate) relabelled as science
    path = _simulation_file(tmp_path)
    assert "true_energy_kev" in read_reduced(path, kinds=("simulation_nr",)).columns

    def relabel(doc):
        doc.pop("energy_range_kev")
        doc.update(
            kind="science",
            live_time_s=5.184e6,
            exposure={"fiducial_mass_t": 5.5, "live_time_days": 60.0, "exposure_t_yr": 0.9},
        )

    _rewrite_sidecar(path, relabel)
    with pytest.raises(InvalidData) as info:
        read_reduced(path)
    assert info.value.path == str(sidecar_path(path))
    assert info.value.field == "$.columns"


def test_wrong_kind_requested(science_file: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidData) as info:
        read_reduced(science_file, kinds=("simulation_nr",))
    assert info.value.field == "$.kind" and str(sidecar_path(science_file)) in str(info.value)
    assert "simulation_nr" in str(info.value) and "'science'" in str(info.value)
    sim = _simulation_file(tmp_path)
    with pytest.raises(InvalidData) as info:
        read_reduced(sim, kinds=("science", "calibration_er"))
    assert info.value.field == "$.kind"


def test_simulation_requires_truth(tmp_path: Path) -> None:
    path = _simulation_file(tmp_path)
    _rewrite_parquet(path, _drop_column("true_energy_kev"))
    _rewrite_sidecar(path, lambda d: (d["columns"].pop("true_energy_kev"), d.update(n_events=50)))
    with pytest.raises(InvalidData) as info:
        read_reduced(path)
    assert info.value.field == "$.columns" and "true_energy_kev" in str(info.value)


def test_write_reduced_validates_before_writing(tmp_path: Path) -> None:
    cols = _science_columns()
    cols["s1_phd"] = _with_index(cols["s1_phd"], 0, -1.0)
    path = tmp_path / "neg.parquet"
    with pytest.raises(InvalidData) as info:
        write_reduced(path, cols, _science_meta())
    assert info.value.field == "s1_phd"
    assert list(tmp_path.iterdir()) == []
