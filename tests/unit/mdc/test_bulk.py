"""Tests of dmpreserve.mdc.bulk: the bulk mock-data generator (tables built with nestpy, vectorized draws)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from dmpreserve.artifacts.reduced import check_values, read_reduced
from dmpreserve.cli import main
from dmpreserve.errors import InvalidConfig
from dmpreserve.files import read_json, sha256_file
from dmpreserve.mdc.bulk import COLUMNS, SIDECAR, BulkOptions, build_tables, dataset_files, draw_events, generate_bulk

SMALL = {
    "target_bytes": 2_500_000,
    "rows_per_file": 40_000,
    "row_group_rows": 8_000,
    "table_events": 4_000,
    "energy_bins": 20,
}


@pytest.fixture(scope="module")
def bulk_dir(tmp_path_factory) -> Path:
    """A ~2.5 MB bulk dataset."""
    out = tmp_path_factory.mktemp("bulk") / "data"
    generate_bulk(out, BulkOptions(**SMALL), threads=2, progress=False)
    return out


def test_dataset_layout_and_sidecar(bulk_dir: Path) -> None:
    files = dataset_files(bulk_dir)
    assert len(files) >= 2
    doc = read_json(bulk_dir / SIDECAR)
    assert doc["kind"] == "science" and doc["generator"]["name"] == "dmpreserve.mdc.bulk"
    assert "tables built with nestpy" in doc["generator"]["description"]
    assert doc["generator"]["files"] == len(files)
    assert doc["n_events"] == sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    assert 0.5 * SMALL["target_bytes"] <= doc["generator"]["bytes"] <= 2 * SMALL["target_bytes"]
    meta = pq.ParquetFile(files[0])
    assert meta.metadata.num_row_groups >= 4
    assert "nestpy" in json.loads(meta.schema_arrow.metadata[b"dmpreserve"])["description"]


def test_each_file_is_valid_reduced_data(bulk_dir: Path, tmp_path: Path) -> None:
    """Every file, with the dataset's sidecar, passes the reduced-data reader (schema and values)."""
    doc = read_json(bulk_dir / SIDECAR)
    first = dataset_files(bulk_dir)[0]
    sidecar = tmp_path / "one.json"
    sidecar.write_text(json.dumps({**doc, "n_events": pq.ParquetFile(first).metadata.num_rows}), encoding="utf-8")
    data = read_reduced(first, sidecar=sidecar, kinds=("science",))
    assert tuple(data.columns) == COLUMNS
    ids = np.concatenate([pq.read_table(f, columns=["event_id"]).column(0).to_numpy() for f in dataset_files(bulk_dir)])
    assert len(np.unique(ids)) == len(ids)


def test_response_is_physical(bulk_dir: Path) -> None:
    t = pq.read_table(dataset_files(bulk_dir)[0]).to_pydict()
    cs1, cs2 = np.asarray(t["cs1_phd"]), np.asarray(t["cs2_phd"])
    check_values({k: np.asarray(v) for k, v in t.items()}, path="bulk")
    assert np.all(cs1 > 0) and np.all(cs2 > 0)
    # ER band: log10(cS2) rises with cS1, roughly linear in log-log; a few % in the WIMP ROI (cS1 < 80 phd)
    assert np.corrcoef(np.log10(cs1), np.log10(cs2))[0, 1] > 0.9
    assert 0.01 < np.mean(cs1 < 80) < 0.2
    r = np.hypot(t["x_cm"], t["y_cm"])
    assert np.quantile(r, 0.5) == pytest.approx(72.8 / np.sqrt(2), rel=0.05)
    assert np.max(t["drift_time_us"]) < 960


def test_byte_identical_whatever_the_threads(bulk_dir: Path, tmp_path: Path) -> None:
    other = tmp_path / "again"
    generate_bulk(other, BulkOptions(**SMALL), threads=1, progress=False)
    a, b = dataset_files(bulk_dir), dataset_files(other)
    assert [Path(p).name for p in a] == [Path(p).name for p in b]
    assert [sha256_file(p) for p in a] == [sha256_file(p) for p in b]
    assert (bulk_dir / SIDECAR).read_bytes() == (other / SIDECAR).read_bytes()


def test_draw_events_vectorized_and_seeded() -> None:
    tables = build_tables(BulkOptions(**SMALL))
    a = draw_events(tables, 1000, np.random.default_rng(1), nr_fraction=0.5, first_id=10)
    b = draw_events(tables, 1000, np.random.default_rng(1), nr_fraction=0.5, first_id=10)
    assert all(np.array_equal(a[k], b[k]) for k in COLUMNS)
    assert a["event_id"][0] == 10 and 900 < len(a["event_id"]) <= 1000


@pytest.mark.parametrize(
    "field, value", [("target_bytes", 0), ("nr_fraction", 1.5), ("row_group_rows", 0), ("energy_max_kev", 0.1)]
)
def test_bad_options_name_the_field(field: str, value: float) -> None:
    with pytest.raises(InvalidConfig) as err:
        BulkOptions(**{**SMALL, field: value})
    assert err.value.field == field


def test_cli(tmp_path: Path, capsys) -> None:
    out = tmp_path / "cli"
    rc = main(
        [
            "bulk-mdc",
            "--outdir",
            str(out),
            "--size-gb",
            "0.001",
            "--rows-per-file",
            "20000",
            "--row-group-rows",
            "5000",
            "--no-progress",
            "--compression",
            "snappy",
            "--table-events",
            "3000",
            "--cluster-by",
            "none",
        ]
    )
    assert rc == 0
    assert "events in" in capsys.readouterr().out
    doc = read_json(out / SIDECAR)
    assert doc["generator"]["compression"] == "snappy" and doc["layout"]["clustered_by"] is None
    for bad in ("-1", "nan", "inf", "0"):
        assert main(["bulk-mdc", "--outdir", str(tmp_path / "bad"), "--size-gb", bad]) == 2
        err = capsys.readouterr().err
        assert "size_gb" in err and len(err.strip().splitlines()) == 1
        assert not (tmp_path / "bad").exists()


def _row_group_ranges(path: str, column: str) -> list[tuple[float, float]]:
    meta = pq.ParquetFile(path).metadata
    col = meta.schema.to_arrow_schema().get_field_index(column)
    return [
        (meta.row_group(i).column(col).statistics.min, meta.row_group(i).column(col).statistics.max)
        for i in range(meta.num_row_groups)
    ]


def test_default_layout_clusters_row_groups_by_cs1(bulk_dir: Path) -> None:
    """Row groups hold disjoint, increasing cS1 ranges; inside each, events keep their event order."""
    path = dataset_files(bulk_dir)[0]
    ranges = _row_group_ranges(path, "cs1_phd")
    assert len(ranges) >= 4 and all(hi <= lo2 for (_, hi), (lo2, _) in zip(ranges, ranges[1:]))
    pf = pq.ParquetFile(path)
    for i in range(pf.metadata.num_row_groups):
        ids = pf.read_row_group(i, columns=["event_id"]).column(0).to_numpy()
        assert len(ids) == SMALL["row_group_rows"] or i == pf.metadata.num_row_groups - 1
        assert np.all(np.diff(ids) > 0)
    layout = read_json(bulk_dir / SIDECAR)["layout"]
    assert layout["clustered_by"] == "cs1_phd" and "event order inside each row group" in layout["description"]


def test_event_order_layout(tmp_path: Path) -> None:
    out = tmp_path / "event"
    generate_bulk(out, BulkOptions(**{**SMALL, "cluster_by": None}), progress=False)
    path = dataset_files(out)[0]
    ids = pq.read_table(path, columns=["event_id"]).column(0).to_numpy()
    assert np.all(np.diff(ids) == 1)
    ranges = _row_group_ranges(path, "cs1_phd")
    assert all(lo < 10 and hi > 500 for lo, hi in ranges)  # every row group spans the full cS1 range
    assert read_json(out / SIDECAR)["layout"]["clustered_by"] is None


def test_clustering_only_reorders_events(bulk_dir: Path, tmp_path: Path) -> None:
    """The clustered and event-order files hold the same events (same seed: same draws)."""
    out = tmp_path / "event"
    generate_bulk(out, BulkOptions(**{**SMALL, "cluster_by": None}), progress=False)
    a = pq.read_table(dataset_files(bulk_dir)[1]).sort_by("event_id")
    b = pq.read_table(dataset_files(out)[1])
    assert a.replace_schema_metadata(None).equals(b.replace_schema_metadata(None))
