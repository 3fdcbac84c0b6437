"""Tests of dmpreserve.artifacts.released: released event tables and efficiency curves as inputs.

Synthetic tables written in ``tmp_path`` check every rule (separators, comments, bad rows, ROI, the
efficiency band); the expected values are computed independently here (``numpy.interp``, ``10 ** x``).
The last tests read LZ's real WS2022 release in ../shared/reference/lz_ws2022 and skip where it is absent.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from released_inputs import event_description

from dmpreserve.artifacts.reduced import inspect_reduced, read_dataset, upstream_cuts
from dmpreserve.artifacts.released import (
    DESCRIPTION_KEYS,
    EFFICIENCY_NEGATIVE_TOLERANCE,
    EfficiencyTriplet,
    check_inside_roi,
    event_columns,
    import_event_table,
    read_description,
    read_efficiency_triplet,
    read_numeric_table,
)
from dmpreserve.errors import InvalidData

REPO = Path(__file__).resolve().parents[3]
LZ_WS2022 = REPO.parent / "shared" / "reference" / "lz_ws2022"
NAMES = ("cs1_phd", "log10_cs2")


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------ read_numeric_table


@pytest.mark.parametrize(
    "text",
    [
        "5.0,3.2\n10,3.5\n2e1,3.9\n",
        "5.0 3.2\n10   3.5\n2e1 3.9",
        "5.0\t3.2\n10\t 3.5\n2e1\t3.9\n",
        "5.0, 3.2\n10 3.5\n2e1 ,3.9\n",
    ],
    ids=["comma", "space", "tab", "mixed"],
)
def test_read_numeric_table_separators(tmp_path: Path, text: str) -> None:
    t = read_numeric_table(_write(tmp_path / "t.txt", text), NAMES, what="event table")
    assert list(t) == list(NAMES)
    np.testing.assert_array_equal(t["cs1_phd"], [5.0, 10.0, 20.0])
    np.testing.assert_array_equal(t["log10_cs2"], [3.2, 3.5, 3.9])
    assert t["cs1_phd"].dtype == np.float64


def test_read_numeric_table_skips_comments_and_blank_lines(tmp_path: Path) -> None:
    text = "# S1c [phd], log10(S2c/phd)\n\n   \n5,3.2\n  # an indented comment\n\n6,3.3\n"
    t = read_numeric_table(_write(tmp_path / "t.txt", text), NAMES, what="event table")
    np.testing.assert_array_equal(t["cs1_phd"], [5.0, 6.0])


@pytest.mark.parametrize(
    ("row", "found"), [("6,3.3,1.0", 3), ("6", 1), ("6 3.3 7", 3)], ids=["extra_field", "missing_field", "extra_space"]
)
def test_read_numeric_table_wrong_field_count_names_file_and_line(tmp_path: Path, row: str, found: int) -> None:
    path = _write(tmp_path / "t.txt", f"# header comment\n5,3.2\n\n{row}\n7,3.4\n")
    with pytest.raises(InvalidData) as info:
        read_numeric_table(path, NAMES, what="event table")
    exc = info.value
    assert exc.path == str(path) and exc.field == "line 4"  # file lines count comments and blank lines
    assert f"has {found} fields, expected 2" in str(exc)
    assert str(path) in str(exc) and "\n" not in str(exc)


@pytest.mark.parametrize(
    ("value", "column", "text"),
    [
        ("nan", "log10_cs2", "not finite"),
        ("inf", "cs1_phd", "not finite"),
        ("-Infinity", "log10_cs2", "not finite"),
        ("3.2x", "log10_cs2", "not a number"),
        ("0x10", "cs1_phd", "not a number"),
    ],
    ids=["nan", "inf", "minus_infinity", "garbage", "hex"],
)
def test_read_numeric_table_bad_value_names_column(tmp_path: Path, value: str, column: str, text: str) -> None:
    row = f"{value},3.3" if column == "cs1_phd" else f"6,{value}"
    path = _write(tmp_path / "t.txt", f"5,3.2\n{row}\n")
    with pytest.raises(InvalidData) as info:
        read_numeric_table(path, NAMES, what="event table")
    assert info.value.path == str(path)
    assert info.value.field == column
    assert "line 2" in str(info.value) and text in str(info.value)


@pytest.mark.parametrize("text", ["", "# only a comment\n\n"], ids=["empty", "comments_only"])
def test_read_numeric_table_without_rows(tmp_path: Path, text: str) -> None:
    path = _write(tmp_path / "t.txt", text)
    with pytest.raises(InvalidData, match="no data rows") as info:
        read_numeric_table(path, NAMES, what="event table")
    assert info.value.path == str(path)


def test_read_numeric_table_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidData) as info:
        read_numeric_table(tmp_path / "absent.txt", NAMES, what="event table")
    assert str(tmp_path / "absent.txt") in str(info.value)


# ------------------------------------------------------------------------------- event_columns, ROI


def test_event_columns_converts_log10_cs2() -> None:
    x = np.array([2.7781512503836434, 3.0, 4.398])
    out = event_columns({"cs1_phd": np.array([3.5, 4.0, 79.0]), "log10_cs2": x})
    assert set(out) == {"cs1_phd", "cs2_phd"}
    np.testing.assert_allclose(out["cs2_phd"], [600.0, 1000.0, 25003.453], rtol=1e-6)
    np.testing.assert_array_equal(out["cs1_phd"], [3.5, 4.0, 79.0])
    same = event_columns({"cs1_phd": np.array([1.0]), "cs2_phd": np.array([500.0])})
    assert same["cs2_phd"][0] == 500.0


ROI = [
    {"name": "roi_cs1", "kind": "roi", "variable": "cs1_phd", "min": 3.0, "max": 80.0},
    {"name": "roi_cs2", "kind": "roi", "variable": "log10_cs2", "min": 2.6, "max": 4.6},
]


def test_check_inside_roi_passes_events_inside(tmp_path: Path) -> None:
    table = {"cs1_phd": np.array([3.0, 40.0, 80.0]), "log10_cs2": np.array([2.6, 3.5, 4.6])}  # edges included
    check_inside_roi(table, ROI, path=tmp_path / "t.txt")
    check_inside_roi({"cs1_phd": np.array([1000.0])}, [{"name": "r", "variable": "r_cm", "max": 1.0}], path="t")


@pytest.mark.parametrize(
    ("cs1", "log10_cs2", "cut", "row"),
    [([5.0, 2.9, 40.0], [3.0, 3.0, 3.0], "roi_cs1", 2), ([5.0, 6.0, 7.0], [3.0, 3.0, 4.7], "roi_cs2", 3)],
    ids=["cs1_below", "cs2_above"],
)
def test_check_inside_roi_names_cut_and_row(tmp_path: Path, cs1: list, log10_cs2: list, cut: str, row: int) -> None:
    table = {"cs1_phd": np.array(cs1), "log10_cs2": np.array(log10_cs2)}
    with pytest.raises(InvalidData) as info:
        check_inside_roi(table, ROI, path=tmp_path / "t.txt")
    msg = str(info.value)
    assert info.value.path == str(tmp_path / "t.txt")
    assert cut in msg and f"data row {row}" in msg and "1 event(s)" in msg


def test_check_inside_roi_log10_cut_on_cs2_table(tmp_path: Path) -> None:
    """A log10_cs2 ROI cut applies to a table that declares cs2_phd [phd] (compared as log10)."""
    inside = {"cs1_phd": np.array([5.0, 6.0]), "cs2_phd": np.array([10**2.61, 10**4.59])}
    check_inside_roi(inside, ROI, path="t.txt")
    outside = {"cs1_phd": np.array([5.0, 6.0]), "cs2_phd": np.array([1000.0, 300.0])}  # log10(300) = 2.48 < 2.6
    with pytest.raises(InvalidData) as info:
        check_inside_roi(outside, ROI, path="t.txt")
    assert info.value.field == "log10_cs2" and "roi_cs2" in str(info.value) and "data row 2" in str(info.value)


# --------------------------------------------------------------------------- read_efficiency_triplet


def _curve(path: Path, e, v, sep: str = ",") -> Path:
    return _write(path, "".join(f"{float(a)!r}{sep}{float(b)!r}\n" for a, b in zip(e, v)))


def _triplet(tmp_path: Path, med, lo, hi, **kw) -> EfficiencyTriplet:
    return read_efficiency_triplet(
        _curve(tmp_path / "median.csv", *med),
        _curve(tmp_path / "lower.csv", *lo),
        _curve(tmp_path / "upper.csv", *hi),
        **kw,
    )


def test_triplet_interpolates_band_onto_median_grid(tmp_path: Path) -> None:
    med = ([0.5, 1.3, 2.0, 4.7, 9.0, 12.0], [0.0, 0.2, 0.4, 0.7, 0.9, 0.95])
    lo = (np.arange(0.0, 10.01, 0.5), 0.08 * np.arange(0.0, 10.01, 0.5))  # lower stops at 10 keV
    hi = ([0.2, 3.0, 11.0], [0.05, 0.75, 1.0])
    t = _triplet(tmp_path, med, lo, hi)
    # only median points inside the range all three cover (0.5..10 keV): 12 keV is dropped, nothing extrapolated
    np.testing.assert_array_equal(t.energy_kev, [0.5, 1.3, 2.0, 4.7, 9.0])
    np.testing.assert_array_equal(t.efficiency, [0.0, 0.2, 0.4, 0.7, 0.9])
    e = t.energy_kev
    lo_ref = np.interp(e, lo[0], lo[1])  # 0.08 * e
    hi_ref = np.interp(e, hi[0], hi[1])
    np.testing.assert_allclose(lo_ref, 0.08 * e, rtol=1e-12)
    # where the interpolated lower edge lies above the median (1.3 keV: 0.104 < 0.2, fine; 9 keV: 0.72 < 0.9)
    np.testing.assert_allclose(t.efficiency_lo, np.minimum(lo_ref, t.efficiency), rtol=1e-12)
    np.testing.assert_allclose(t.efficiency_hi, np.maximum(hi_ref, t.efficiency), rtol=1e-12)
    # by hand at 4.7 keV: upper between (3, 0.75) and (11, 1.0): 0.75 + 0.25 * 1.7 / 8
    assert t.efficiency_hi[3] == pytest.approx(0.75 + 0.25 * 1.7 / 8)
    assert t.efficiency_lo[3] == pytest.approx(0.08 * 4.7)
    assert np.all(t.efficiency_lo <= t.efficiency) and np.all(t.efficiency <= t.efficiency_hi)
    assert t.rows()[3] == (4.7, 0.7, pytest.approx(0.376), pytest.approx(0.803125))


def test_triplet_widens_band_where_curves_cross(tmp_path: Path) -> None:
    med = ([1.0, 2.0, 3.0, 4.0], [0.1, 0.3, 0.5, 0.6])
    lo = ([1.0, 4.0], [0.2, 0.5])  # at 1 keV lower 0.2 > median 0.1; at 2 keV 0.3 = median: not widened
    hi = ([1.0, 4.0], [0.05, 0.9])  # at 1 keV upper 0.05 < median 0.1 (same point)
    t = _triplet(tmp_path, med, lo, hi)
    assert t.widened == 1
    assert t.efficiency_lo[0] == 0.1 and t.efficiency_hi[0] == 0.1
    np.testing.assert_allclose(t.efficiency_lo[1:], np.minimum(np.interp([2.0, 3.0, 4.0], *lo), [0.3, 0.5, 0.6]))
    med2 = ([1.0, 2.0, 3.0], [0.1, 0.3, 0.5])
    t2 = _triplet(tmp_path, med2, ([1.0, 3.0], [0.5, 0.6]), ([1.0, 3.0], [0.6, 0.7]))  # lower above at 3 points
    assert t2.widened == 3
    np.testing.assert_array_equal(t2.efficiency_lo, t2.efficiency)


def test_triplet_small_negative_clipped_larger_refused(tmp_path: Path) -> None:
    e = [0.5, 1.0, 2.0]
    t = _triplet(tmp_path, (e, [-5.6e-5, 0.2, 0.5]), (e, [-3e-5, 0.1, 0.4]), (e, [0.0, 0.3, 0.6]))
    assert t.efficiency[0] == 0.0 and t.efficiency_lo[0] == 0.0
    bad = -2 * EFFICIENCY_NEGATIVE_TOLERANCE
    with pytest.raises(InvalidData) as info:
        _triplet(tmp_path, (e, [0.0, 0.2, 0.5]), (e, [0.0, bad, 0.4]), (e, [0.0, 0.3, 0.6]))
    assert info.value.path == str(tmp_path / "lower.csv")
    assert info.value.field == "efficiency" and "outside [0, 1]" in str(info.value) and "data row 2" in str(info.value)


def test_triplet_above_one_refused(tmp_path: Path) -> None:
    e = [0.5, 1.0, 2.0]
    with pytest.raises(InvalidData) as info:
        _triplet(tmp_path, (e, [0.0, 0.2, 0.5]), (e, [0.0, 0.1, 0.4]), (e, [0.0, 0.3, 1.0001]))
    assert info.value.path == str(tmp_path / "upper.csv")
    assert info.value.field == "efficiency" and "data row 3" in str(info.value)


@pytest.mark.parametrize(
    ("energies", "row"),
    [([0.5, 1.0, 1.0, 2.0], 3), ([0.5, 2.0, 1.0, 3.0], 3), ([-1.0, 1.0, 2.0, 3.0], 1)],
    ids=["repeated", "decreasing", "negative"],
)
def test_triplet_energies_must_increase(tmp_path: Path, energies: list, row: int) -> None:
    e = [0.5, 1.0, 2.0, 3.0]
    v = [0.1, 0.2, 0.3, 0.4]
    with pytest.raises(InvalidData) as info:
        _triplet(tmp_path, (energies, v), (e, v), (e, v))
    assert info.value.path == str(tmp_path / "median.csv")
    assert info.value.field == "energy_kev" and f"data row {row}" in str(info.value)


def test_triplet_ranges_must_overlap(tmp_path: Path) -> None:
    with pytest.raises(InvalidData, match="fewer than two median points") as info:
        _triplet(tmp_path, ([1.0, 2.0, 3.0], [0.1, 0.2, 0.3]), ([2.5, 9.0], [0.1, 0.2]), ([0.0, 9.0], [0.3, 0.4]))
    assert info.value.path == str(tmp_path / "median.csv")


def test_triplet_extend_flat_appends_one_point(tmp_path: Path) -> None:
    e = [1.0, 2.0, 69.0]
    curves = ((e, [0.1, 0.5, 0.94]), (e, [0.05, 0.45, 0.9]), (e, [0.15, 0.55, 0.97]))
    plain = _triplet(tmp_path, *curves)
    t = _triplet(tmp_path, *curves, extend_flat_to_kev=100.0)
    assert len(t.energy_kev) == len(plain.energy_kev) + 1
    assert t.energy_kev[-1] == 100.0
    assert (t.efficiency[-1], t.efficiency_lo[-1], t.efficiency_hi[-1]) == (0.94, 0.9, 0.97)
    np.testing.assert_array_equal(t.energy_kev[:-1], plain.energy_kev)
    # an energy inside the curve would extend nothing: refused rather than ignored
    with pytest.raises(InvalidData, match="does not extend the curve"):
        _triplet(tmp_path, *curves, extend_flat_to_kev=50.0)


# --------------------------------------------------------------------------- descriptions and imports

DESCRIPTION = event_description(
    upstream_cuts=[
        {"name": "single_scatter", "definition": "one S1 and one S2", "efficiency": 0.9},
        {"name": "fiducial_radius", "definition": "r < 68.8 cm"},
    ],
    source={"release": "synthetic test table", "licence": "CC0"},
)
TABLE = "# S1c, log10(S2c)\n5.0, 3.2\n10.0 3.5\n\n20.0\t3.9\n"


@pytest.fixture
def released(tmp_path: Path) -> dict[str, Path]:
    """A synthetic released table with its description, and where the import writes."""
    return {
        "table": _write(tmp_path / "events.csv", TABLE),
        "description": _write(tmp_path / "events.yaml", yaml.safe_dump(DESCRIPTION)),
        "parquet": tmp_path / "out" / "science.parquet",
    }


def _import(r: dict[str, Path], columns=NAMES, **kw) -> int:
    (r["parquet"].parent).mkdir(exist_ok=True)
    return import_event_table(r["table"], columns, r["description"], r["parquet"], **kw)


def test_import_event_table_writes_readable_reduced_data(released: dict[str, Path]) -> None:
    assert _import(released, roi=ROI, sha256="ab" * 32) == 3
    info = inspect_reduced(released["parquet"], kinds=("science",))
    assert info.column_names == ("event_id", "cs1_phd", "cs2_phd")
    data = read_dataset([released["parquet"]], kinds=("science",))
    assert len(data) == 3
    np.testing.assert_array_equal(data.columns["event_id"], [0, 1, 2])
    np.testing.assert_array_equal(data.columns["cs1_phd"], [5.0, 10.0, 20.0])
    np.testing.assert_allclose(data.columns["cs2_phd"], [10**3.2, 10**3.5, 10**3.9], rtol=1e-15)
    np.testing.assert_allclose(data.variable("log10_cs2"), [3.2, 3.5, 3.9], rtol=1e-14)
    meta = data.meta
    assert meta["live_time_s"] == 86400.0
    assert meta["exposure"] == DESCRIPTION["exposure"]
    assert meta["active_volume"] == DESCRIPTION["active_volume"]
    assert meta["detector"]["name"] == "LZ_WS2022" and meta["detector"]["g1_phd_per_photon"] > 0
    cuts = upstream_cuts(meta, path=released["parquet"])
    assert [c.name for c in cuts] == ["single_scatter", "fiducial_radius"]
    assert cuts[0].efficiency == 0.9 and cuts[1].efficiency is None
    gen = meta["generator"]
    assert gen["imported_from"] == "events.csv" and gen["table_sha256"] == "ab" * 32
    assert gen["table_columns"] == list(NAMES) and gen["source"] == DESCRIPTION["source"]
    assert "source" not in meta


def test_import_event_table_keeps_cs2_phd_column(released: dict[str, Path]) -> None:
    _write(released["table"], "5.0,1584.9\n10.0,3162.3\n")
    assert _import(released, columns=("cs1_phd", "cs2_phd"), roi=ROI) == 2
    data = read_dataset(released["parquet"])
    np.testing.assert_array_equal(data.columns["cs2_phd"], [1584.9, 3162.3])


def _no_output(r: dict[str, Path]) -> None:
    assert sorted(p.name for p in r["parquet"].parent.iterdir()) == [], "something was written"


@pytest.mark.parametrize(
    ("mutate", "key"),
    [
        (lambda d: d.update(fiducial_mass_t=5.5), "fiducial_mass_t"),
        (lambda d: d.pop("live_time_s"), "live_time_s"),
        (lambda d: d.pop("active_volume"), "active_volume"),
        (lambda d: d.pop("kind"), "kind"),
        (lambda d: d.update(detector="NO_SUCH_DETECTOR"), "detector"),
        (lambda d: d.update(detector=["LZ_WS2022"]), "detector"),
        # attributes of nestpy.detectors that are not bundled detectors (the base class; a dunder name)
        (lambda d: d.update(detector="VDetector"), "detector"),
        (lambda d: d.update(detector="__class__"), "detector"),
    ],
    ids=[
        "unknown_key",
        "missing_live_time",
        "missing_active_volume",
        "missing_kind",
        "bad_detector",
        "detector_list",
        "detector_base_class",
        "detector_dunder",
    ],
)
def test_import_bad_description_names_it(released: dict[str, Path], mutate, key: str) -> None:
    doc = yaml.safe_load(yaml.safe_dump(DESCRIPTION))
    mutate(doc)
    _write(released["description"], yaml.safe_dump(doc))
    with pytest.raises(InvalidData) as info:
        _import(released, roi=ROI)
    assert info.value.path == str(released["description"])
    assert info.value.field == key
    _no_output(released)


def test_import_description_failing_sidecar_schema_names_description(released: dict[str, Path]) -> None:
    doc = {**DESCRIPTION, "kind": "not_a_kind"}
    _write(released["description"], yaml.safe_dump(doc))
    with pytest.raises(InvalidData) as info:
        _import(released, roi=ROI)
    assert info.value.path == str(released["description"])
    assert "kind" in str(info.value.field)
    _no_output(released)


@pytest.mark.parametrize("text", ["[1, 2]\n", "just text\n"], ids=["list", "scalar"])
def test_read_description_must_be_mapping(tmp_path: Path, text: str) -> None:
    path = _write(tmp_path / "d.yaml", text)
    with pytest.raises(InvalidData, match="mapping") as info:
        read_description(path)
    assert info.value.path == str(path)


def test_read_description_known_keys(released: dict[str, Path]) -> None:
    doc = read_description(released["description"])
    assert set(doc) <= set(DESCRIPTION_KEYS) and doc["detector"] == "LZ_WS2022"


@pytest.mark.parametrize(
    ("columns", "table", "field", "text"),
    [
        (("cs1_phd", "log10_s2"), TABLE, "columns", "unknown column name 'log10_s2'"),
        (("cs1_phd", "cs1_phd"), TABLE, "columns", "named twice"),
        (NAMES, "5,3.2\n6,3.3,9\n", "line 2", "3 fields"),
        (NAMES, "5,3.2\n6\n", "line 2", "1 fields"),
        (NAMES, "5,3.2\n6,nan\n", "log10_cs2", "not finite"),
        (NAMES, "5,3.2\n90,3.3\n", "cs1_phd", "roi_cs1"),
        (NAMES, "", None, "no data rows"),
    ],
    ids=["unknown_column", "column_twice", "extra_field", "missing_field", "nan", "outside_roi", "empty"],
)
def test_import_bad_table_names_it(
    released: dict[str, Path], columns: tuple, table: str, field: str | None, text: str
) -> None:
    _write(released["table"], table)
    with pytest.raises(InvalidData) as info:
        _import(released, columns=columns, roi=ROI)
    assert info.value.path == str(released["table"])
    assert info.value.field == field
    assert text in str(info.value)
    _no_output(released)


def test_import_negative_cs1_refused_by_value_checks(released: dict[str, Path]) -> None:
    """Without an ROI the reduced-data value checks still refuse a negative area (nothing written)."""
    _write(released["table"], "5,3.2\n-1,3.3\n")
    with pytest.raises(InvalidData) as info:
        _import(released)
    assert info.value.field == "cs1_phd"
    _no_output(released)


# ------------------------------------------------------------------------------ LZ's real WS2022 release

needs_lz = pytest.mark.skipif(
    not (LZ_WS2022 / "lz_ws2022_wimp_data.csv").is_file(),
    reason=f"LZ WS2022 release not found at {LZ_WS2022} (public data copied by mhliu0001/diamx; see "
    "shared/reference/lz_ws2022/README.md)",
)


@pytest.mark.reference
@needs_lz
def test_lz_ws2022_events_import(tmp_path: Path) -> None:
    cfg = yaml.safe_load((REPO / "workflow/analyses/lz_ws2022/config.yaml").read_text(encoding="utf-8"))
    table = cfg["inputs"]["science"]["table"]
    roi = [c for c in cfg["selection"]["cuts"] if c["kind"] == "roi"]
    out = tmp_path / "science.parquet"
    n = import_event_table(
        LZ_WS2022 / "lz_ws2022_wimp_data.csv", table["columns"], REPO / table["description"], out, roi=roi
    )
    assert n == 335
    data = read_dataset(out, kinds=("science",))
    assert len(data) == 335
    cs2 = data.columns["cs2_phd"]
    assert cs2.min() == pytest.approx(10**3.441, rel=2e-3) and cs2.max() == pytest.approx(10**4.398, rel=2e-3)
    cs1 = data.columns["cs1_phd"]
    assert 3.0 <= cs1.min() and cs1.max() <= 80.0
    assert data.meta["live_time_s"] == pytest.approx(60 * 86400.0)
    assert data.meta["exposure"]["fiducial_mass_t"] == 5.5
    assert data.meta["detector"]["name"] == "LZ_WS2022"


@pytest.mark.reference
@needs_lz
def test_lz_ws2022_efficiency_triplet() -> None:
    files = [LZ_WS2022 / f"lz_ws2022_eff_{w}.csv" for w in ("median", "lower", "upper")]
    t = read_efficiency_triplet(*files)
    assert len(t.energy_kev) == 179  # 180 median points; the last lies beyond the band's 69.42 keV
    assert t.energy_kev[-1] <= 69.42
    assert np.interp(5.0, t.energy_kev, t.efficiency) == pytest.approx(0.429, abs=1.5e-3)  # README numbers
    assert np.interp(10.0, t.energy_kev, t.efficiency) == pytest.approx(0.817, abs=1.5e-3)
    assert np.interp(20.0, t.energy_kev, t.efficiency) == pytest.approx(0.893, abs=1.5e-3)
    assert np.interp(40.0, t.energy_kev, t.efficiency) == pytest.approx(0.926, abs=1.5e-3)
    assert np.all(t.efficiency_lo <= t.efficiency) and np.all(t.efficiency <= t.efficiency_hi)
    assert np.all((t.efficiency_lo >= 0) & (t.efficiency_hi <= 1))
    # README: lower/median 0.955-0.978, upper/median 1.007-1.036 above 3 keV on the band's own 0.1 keV grid;
    # interpolated onto the median's grid the ratios move by up to ~0.005
    above = t.energy_kev > 3.0
    ratio_lo, ratio_hi = t.efficiency_lo[above] / t.efficiency[above], t.efficiency_hi[above] / t.efficiency[above]
    assert 0.95 < ratio_lo.min() and ratio_lo.max() < 0.985
    assert 1.005 < ratio_hi.min() and ratio_hi.max() < 1.045
    ext = read_efficiency_triplet(*files, extend_flat_to_kev=100.0)
    assert len(ext.energy_kev) == 180 and ext.energy_kev[-1] == 100.0
    assert ext.efficiency[-1] == t.efficiency[-1] and math.isclose(ext.efficiency[-1], 0.94, abs_tol=0.01)


@pytest.mark.parametrize("text", ["5.0,,3.2\n", "5.0,3.2,\n", ",5.0,3.2\n"], ids=["doubled", "trailing", "leading"])
def test_read_numeric_table_refuses_empty_fields(tmp_path: Path, text: str) -> None:
    with pytest.raises(InvalidData, match="line 1 has an empty field"):
        read_numeric_table(_write(tmp_path / "t.txt", text), NAMES, what="event table")
