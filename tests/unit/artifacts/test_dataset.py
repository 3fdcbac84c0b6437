"""Multi-file datasets (read_dataset) and the sidecar's upstream cuts."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_files_and_reduced import _science_columns, _science_meta

from dmpreserve.artifacts.reduced import (
    check_batch_values,
    check_dataset,
    check_values,
    column_requirements,
    expand_dataset,
    inspect_reduced,
    read_dataset,
    read_reduced,
    upstream_cuts,
    write_reduced,
)
from dmpreserve.artifacts.tables import CutFlow, PartCutFlow, PartFile
from dmpreserve.errors import InvalidData
from dmpreserve.schema import load_schema


def _split(tmp_path: Path, n_files: int = 3, *, meta_of=lambda i, m: m) -> list[Path]:
    cols = _science_columns(90)
    paths = []
    for i, idx in enumerate(np.array_split(np.arange(90), n_files)):
        meta = _science_meta()
        meta["live_time_s"] = 1000.0 * (i + 1)
        path = tmp_path / f"part-{i}.parquet"
        write_reduced(path, {k: v[idx] for k, v in cols.items()}, meta_of(i, meta))
        paths.append(path)
    return paths


def test_dataset_concatenates_in_order_and_sums_live_time(tmp_path: Path) -> None:
    cols = _science_columns(90)
    data = read_dataset(_split(tmp_path), kinds=("science",))
    assert len(data) == 90 and data.meta["n_events"] == 90
    assert data.meta["live_time_s"] == 6000.0
    for name, values in cols.items():
        np.testing.assert_array_equal(data.columns[name], values)


def test_single_file_dataset_is_read_reduced(tmp_path: Path) -> None:
    (path,) = _split(tmp_path, 1)
    assert read_dataset([path]).meta == read_reduced(path).meta


def test_dataset_refuses_disagreeing_files(tmp_path: Path) -> None:
    def other_detector(i, meta):
        if i == 2:
            meta["detector"] = {**meta["detector"], "g1_phd_per_photon": 0.2}
        return meta

    with pytest.raises(InvalidData, match=r"part-2.json: \$.detector: differs from"):
        read_dataset(_split(tmp_path, meta_of=other_detector))
    with pytest.raises(InvalidData, match="at least one"):
        read_dataset([])


def test_upstream_cuts_parse_and_interpolate() -> None:
    meta = {
        "upstream_cuts": [
            {"name": "s1_coincidence", "definition": ">= 3 PMTs", "efficiency": 0.9},
            {
                "name": "veto",
                "definition": "no veto signal",
                "efficiency": {"energy_kev": [1, 3], "efficiency": [0, 1]},
            },
            {"name": "fiducial", "definition": "inside the fiducial volume"},
        ]
    }
    a, b, c = upstream_cuts(meta, path="x.json")
    np.testing.assert_allclose(a.efficiency_at([1.0, 50.0]), [0.9, 0.9])
    np.testing.assert_allclose(b.efficiency_at([0.5, 2.0, 9.0]), [0.0, 0.5, 1.0])
    np.testing.assert_allclose(c.efficiency_at([2.0]), [1.0])
    meta["upstream_cuts"][1]["efficiency"]["energy_kev"] = [3, 1]
    with pytest.raises(InvalidData, match=r"upstream_cuts\[1\].efficiency.energy_kev: energies must increase"):
        upstream_cuts(meta, path="x.json")


# ------------------------------------------------------------------ required and optional columns


def test_column_requirements_per_kind() -> None:
    assert column_requirements("science") == (
        ("cs1_phd", "cs2_phd"),
        ("event_id", "s1_phd", "s2_phd", "drift_time_us", "x_cm", "y_cm", "s1_coincidence"),
    )
    assert column_requirements("calibration_nr")[0] == ("cs1_phd", "cs2_phd")
    req, opt = column_requirements("simulation_nr")
    assert req == ("cs1_phd", "cs2_phd", "true_energy_kev") and "true_energy_kev" not in opt
    assert column_requirements("isolated_s1")[0] == ("s1_phd",)
    assert column_requirements("isolated_s2")[0] == ("s2_phd",)
    assert "true_energy_kev" in column_requirements("calibration_er")[1]  # ER calibration may carry truth
    with pytest.raises(ValueError, match="unknown"):
        column_requirements("pizza")


def test_schema_descriptions_name_the_optional_columns() -> None:
    """The schema's description of each kind's columns lists exactly what column_requirements returns."""
    for entry in load_schema("reduced_data")["allOf"]:
        kind = entry["if"]["properties"]["kind"].get("const")
        cols = entry["then"].get("properties", {}).get("columns", {})
        if kind is None or "required" not in cols:
            continue
        req, opt = column_requirements(kind)
        assert f"required columns {', '.join(req)}; optional columns {', '.join(opt)} " in cols["description"]


def test_science_with_only_required_columns_and_no_nominal_exposure(tmp_path: Path) -> None:
    cols = _science_columns(20)
    meta = _science_meta()
    del meta["exposure"]
    path = tmp_path / "minimal.parquet"
    write_reduced(path, {k: cols[k] for k in ("cs1_phd", "cs2_phd")}, meta)
    data = read_reduced(path, kinds=("science",))
    assert list(data.columns) == ["cs1_phd", "cs2_phd"]
    with pytest.raises(InvalidData, match=r"minimal.parquet: x_cm: column needed by the analysis is missing"):
        data.variable("x_cm")


def test_inspect_does_not_read_the_values(tmp_path: Path) -> None:
    """inspect_reduced checks sidecar and schema only; read_reduced then refuses the bad value."""
    (path,) = _split(tmp_path, 1)
    table = pq.read_table(path)
    cs1 = table.column("cs1_phd").to_numpy().copy()
    cs1[3] = np.nan
    pq.write_table(table.set_column(table.column_names.index("cs1_phd"), "cs1_phd", pa.array(cs1)), path)
    info = inspect_reduced(path, kinds=("science",))
    assert info.n_events == 90 and info.column_names == tuple(_science_columns(1))
    with pytest.raises(InvalidData, match=r"part-0.parquet: cs1_phd: 1 NaN or infinite values"):
        read_reduced(path)


@pytest.mark.parametrize(
    ("name", "value", "text"),
    [("cs2_phd", np.inf, "1 NaN or infinite"), ("drift_time_us", -1.0, "negative values"), ("x_cm", np.nan, "NaN")],
)
def test_check_batch_values_agrees_with_check_values(name: str, value: float, text: str) -> None:
    cols = _science_columns(30)
    check_batch_values(pa.RecordBatch.from_pydict(cols), path="f.parquet")  # good values pass
    cols[name] = cols[name].copy()
    cols[name][7] = value
    for check in (
        lambda: check_values(cols, path="f.parquet"),
        lambda: check_batch_values(pa.table(cols), path="f.parquet"),
    ):
        with pytest.raises(InvalidData, match=rf"f.parquet: {name}: .*{text}"):
            check()
    nulls = pa.table({"cs1_phd": pa.array([1.0, None])})
    with pytest.raises(InvalidData, match="cs1_phd: 1 null values"):
        check_batch_values(nulls, path="f.parquet")


def test_dataset_directory_and_empty_directory(tmp_path: Path) -> None:
    paths = _split(tmp_path / "d")
    assert expand_dataset(tmp_path / "d") == [str(p) for p in paths]
    assert len(read_dataset(tmp_path / "d")) == 90
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidData, match=r"empty: no Parquet files"):
        read_dataset([tmp_path / "empty"])


def test_check_dataset_names_the_file_and_field(tmp_path: Path) -> None:
    paths = _split(tmp_path)
    cols = _science_columns(90)
    write_reduced(paths[1], {k: v[30:60] for k, v in cols.items() if k != "s1_phd"}, _science_meta())
    files = [inspect_reduced(p) for p in paths]
    with pytest.raises(InvalidData, match=r"part-1.json: \$.columns: columns .* differ from those of"):
        check_dataset(files)


# ------------------------------------------------------------------ the part cut flow (select-part)


def _part_flow() -> PartCutFlow:
    files = (
        PartFile(
            "a.parquet", "a.json", 60, 0.1, {"fiducial_mass_t": 5.5, "live_time_days": 1.0, "exposure_t_yr": 0.01}
        ),
        PartFile("b.parquet", "b.json", 40, 0.2, None),
    )
    flow = CutFlow(
        ("all", "q", "fid", "roi"), ("all events in the file", "q", "applied upstream (x)", "roi"), (100, 70, 70, 9)
    )
    return PartCutFlow("0" * 64, "part-0.parquet", flow, (False, False, True, False), math.fsum([0.1, 0.2]), files)


def test_part_cutflow_round_trip(tmp_path: Path) -> None:
    part = _part_flow()
    part.write(tmp_path / "c.json")
    assert PartCutFlow.read(tmp_path / "c.json") == part
    assert part.n_events == 100 and part.n_selected == 9


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d["cuts"][1].update(events=101), r"\$.cuts\[1\].events"),
        (lambda d: d["cuts"][2].update(events=60), r"\$.cuts\[2\].events"),  # upstream row must keep the count
        (lambda d: d.update(n_selected=8), r"\$.n_selected"),
        (lambda d: d.update(live_time_s=0.3000001), r"\$.files"),
        (lambda d: d["cuts"][0].update(name="everything"), r"\$.cuts\[0\]"),
        (lambda d: d.update(config_sha256="abc"), r"\$.config_sha256"),
    ],
)
def test_part_cutflow_refuses_inconsistent_counts(tmp_path: Path, mutate, field: str) -> None:
    doc = _part_flow().to_json()
    mutate(doc)
    (tmp_path / "c.json").write_text(json.dumps(doc))
    with pytest.raises(InvalidData, match=rf"c.json: {field}"):
        PartCutFlow.read(tmp_path / "c.json")
