"""Tests of dmpreserve.mdc.layout: clustering an existing dataset's row groups (``dmpreserve cluster``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dmpreserve.cli import main
from dmpreserve.errors import InvalidData
from dmpreserve.files import read_json, sha256_file
from dmpreserve.mdc.bulk import BulkOptions, dataset_files, generate_bulk
from dmpreserve.mdc.layout import SIDECAR, cluster_dataset, cluster_order
from dmpreserve.selection.cuts import Cut
from dmpreserve.selection.stream import select_stream

SMALL = {
    "target_bytes": 1_500_000,
    "rows_per_file": 30_000,
    "row_group_rows": 6_000,
    "table_events": 4_000,
    "energy_bins": 20,
}


@pytest.fixture(scope="module")
def event_order(tmp_path_factory) -> Path:
    """A small bulk dataset in plain event order."""
    out = tmp_path_factory.mktemp("layout") / "event"
    generate_bulk(out, BulkOptions(**SMALL, cluster_by=None), progress=False)
    return out


def test_cluster_order_groups_and_keeps_event_order() -> None:
    values = np.array([5.0, 1.0, 4.0, 2.0, 3.0, 0.0, 9.0, 8.0])
    order = cluster_order(values, 3)
    assert order.tolist() == [1, 3, 5, 0, 2, 4, 6, 7]  # groups {0,1,2}, {3,4,5}, {8,9}, each in event order


def test_clustering_an_event_order_dataset_gives_the_bulk_clustered_files(event_order: Path, tmp_path: Path) -> None:
    """``cluster`` of the event-order dataset is byte-identical to bulk-mdc's clustered output (same seed)."""
    direct = tmp_path / "direct"
    generate_bulk(direct, BulkOptions(**SMALL), progress=False)
    out = tmp_path / "clustered"
    doc = cluster_dataset(event_order, out, row_group_rows=SMALL["row_group_rows"], progress=False)
    assert doc["files"] == len(dataset_files(event_order)) and doc["layout"]["clustered_by"] == "cs1_phd"
    assert [sha256_file(p) for p in dataset_files(out)] == [sha256_file(p) for p in dataset_files(direct)]
    a, b = read_json(out / SIDECAR), read_json(direct / SIDECAR)
    assert a.pop("generator")["bytes"] != b.pop("generator")["bytes"]  # the generator's record of its own output
    assert a == b


def test_clustered_selection_reads_fewer_row_groups_same_events(event_order: Path, tmp_path: Path) -> None:
    out = tmp_path / "clustered"
    cluster_dataset(event_order, out, row_group_rows=SMALL["row_group_rows"], progress=False)
    cuts = [Cut(name="roi", kind="roi", variable="cs1_phd", lower=3.0, upper=80.0)]
    a = select_stream(dataset_files(event_order), cuts, cutflow=False).table
    b = select_stream(dataset_files(out), cuts, cutflow=False).table
    assert a.num_rows > 0
    assert np.array_equal(np.sort(a.column("event_id").to_numpy()), np.sort(b.column("event_id").to_numpy()))
    meta = pq.ParquetFile(dataset_files(out)[0]).metadata
    col = meta.schema.to_arrow_schema().get_field_index("cs1_phd")
    overlap = [meta.row_group(i).column(col).statistics.min < 80.0 for i in range(meta.num_row_groups)]
    assert 0 < sum(overlap) < meta.num_row_groups / 2


def test_cli_and_dataset_without_sidecar(tmp_path: Path, capsys) -> None:
    src = tmp_path / "plain"
    src.mkdir()
    n = 1000
    rng = np.random.default_rng(3)
    table = pa.table({"event_id": np.arange(n), "cs1_phd": rng.uniform(0, 500, n), "x_cm": rng.normal(size=n)})
    pq.write_table(table, src / "a.parquet")
    out = tmp_path / "out"
    assert main(["cluster", "--input", str(src), "--outdir", str(out), "--row-group-rows", "100", "--no-progress"]) == 0
    assert "clustered by cs1_phd" in capsys.readouterr().out
    assert not (out / SIDECAR).exists()
    back = pq.read_table(out / "a.parquet")
    assert pq.ParquetFile(out / "a.parquet").metadata.num_row_groups == 10
    assert back.sort_by("event_id").equals(table)


def _bad_file(tmp_path: Path, kind: str) -> tuple[Path, str]:
    src = tmp_path / "src"
    src.mkdir()
    cs1 = np.array([1.0, 2.0, 3.0])
    if kind == "nan":
        cs1[1] = np.nan
    cols = {"event_id": np.arange(3), "cs1_phd": cs1} if kind != "no_column" else {"event_id": np.arange(3)}
    if kind == "string":
        cols["cs1_phd"] = np.array(["a", "b", "c"])
    pq.write_table(pa.table(cols), src / "a.parquet")
    if kind == "corrupt":
        (src / "b.parquet").write_bytes(b"PAR1 not parquet")
    return src, {"nan": "cs1_phd", "no_column": "cs1_phd", "string": "cs1_phd", "corrupt": "b.parquet"}[kind]


@pytest.mark.parametrize("kind", ["nan", "no_column", "string", "corrupt"])
def test_bad_input_names_file_and_field_and_leaves_nothing(tmp_path: Path, capsys, kind: str) -> None:
    src, named = _bad_file(tmp_path, kind)
    out = tmp_path / "out"
    assert main(["cluster", "--input", str(src), "--outdir", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert named in err and len(err.strip().splitlines()) == 1
    assert not out.exists() and [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []


def test_refuses_bad_directories_and_options(event_order: Path, tmp_path: Path) -> None:
    for kwargs, field in [
        ({"source": tmp_path / "missing", "outdir": tmp_path / "o"}, None),
        ({"source": event_order, "outdir": event_order}, None),
        ({"source": event_order, "outdir": tmp_path / "o", "by": "event_id"}, "by"),
        ({"source": event_order, "outdir": tmp_path / "o", "row_group_rows": 0}, "row_group_rows"),
        ({"source": event_order, "outdir": tmp_path / "o", "threads": -1}, "threads"),
    ]:
        with pytest.raises(InvalidData) as err:
            cluster_dataset(progress=False, **kwargs)
        assert err.value.field == field
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("x")
    with pytest.raises(InvalidData, match="not empty"):
        cluster_dataset(event_order, full, progress=False)
    assert [p.name for p in full.iterdir()] == ["keep.txt"]
