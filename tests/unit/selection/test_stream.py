"""Tests of the streaming selection (dmpreserve.selection.stream.select_stream and the cut expressions)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from dmpreserve.artifacts.reduced import ReducedData, read_reduced
from dmpreserve.config import load_config
from dmpreserve.errors import InvalidData
from dmpreserve.files import read_json
from dmpreserve.mdc.bulk import SIDECAR, BulkOptions, dataset_files, generate_bulk
from dmpreserve.selection.cuts import Cut, apply_cuts, cuts_from_config
from dmpreserve.selection.stream import cut_expression, cuts_expression, needed_columns, open_dataset, select_stream

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """A small bulk dataset (3 files, many row groups)."""
    out = tmp_path_factory.mktemp("stream") / "bulk"
    generate_bulk(
        out,
        BulkOptions(
            target_bytes=2_000_000, rows_per_file=30_000, row_group_rows=6_000, table_events=4_000, energy_bins=20
        ),
        threads=2,
        progress=False,
    )
    return out


@pytest.fixture(scope="module")
def in_memory(dataset: Path) -> ReducedData:
    table = pa.concat_tables(pq.read_table(f) for f in dataset_files(dataset))
    cols = {c: table.column(c).to_numpy() for c in table.column_names}
    return ReducedData(columns=cols, meta={"n_events": table.num_rows, "kind": "science"}, path=str(dataset))


@pytest.fixture(scope="module")
def cuts() -> tuple[Cut, ...]:
    return cuts_from_config(load_config(REPO / "workflow" / "config" / "config.yaml"))


@pytest.mark.parametrize("cutflow", [True, False])
def test_same_events_and_cutflow_as_apply_cuts(dataset, in_memory, cuts, cutflow) -> None:
    mask, flow = apply_cuts(in_memory, cuts)
    res = select_stream(dataset, cuts, cutflow=cutflow, batch_rows=5_000)
    assert res.n_events == len(in_memory)
    assert res.n_selected == int(mask.sum()) > 0
    assert np.array_equal(np.sort(res.table.column("event_id").to_numpy()), in_memory.columns["event_id"][mask])
    if cutflow:
        assert res.cutflow.cuts == flow.cuts and res.cutflow.events == flow.events
        assert res.n_batches >= res.n_events // 5_000
    else:
        assert res.cutflow is None


def test_output_file_and_sidecar_are_reduced_data(dataset, in_memory, cuts, tmp_path) -> None:
    meta = read_json(dataset / SIDECAR)
    out = tmp_path / "selected.parquet"
    res = select_stream(dataset_files(dataset), cuts, output=out, sidecar_meta=meta)
    assert res.table is None and res.output == str(out)
    data = read_reduced(out, kinds=("science",))
    assert len(data) == res.n_selected
    mask, _ = apply_cuts(in_memory, cuts)
    assert np.array_equal(data.columns["cs1_phd"], in_memory.columns["cs1_phd"][mask])


def test_columns_subset_and_count_only(dataset, cuts) -> None:
    res = select_stream(dataset, cuts, columns=["cs1_phd", "cs2_phd"])
    assert res.table.column_names == ["cs1_phd", "cs2_phd"]
    counted = select_stream(dataset, cuts, collect=False)
    assert counted.table is None and counted.n_selected == res.n_selected


def _random_data(rng: np.random.Generator, n: int = 4000) -> ReducedData:
    cols = {
        "event_id": np.arange(n, dtype=np.int64),
        "x_cm": rng.uniform(-80, 80, n),
        "y_cm": rng.uniform(-80, 80, n),
        "cs2_phd": 10 ** rng.uniform(1, 6, n),
        "cs1_phd": rng.uniform(0, 200, n),
        "s1_coincidence": rng.integers(0, 10, n),
    }
    return ReducedData(columns=cols, meta={"n_events": n, "kind": "science"}, path="<random>")


@pytest.mark.parametrize(
    "variable, lower, upper",
    [
        ("r_cm", -math.inf, 50.0),
        ("r_cm", 10.0, 60.0),
        ("r_cm", 0.0, math.inf),
        ("r_cm", -5.0, -1.0),
        ("r_cm", 30.0, math.inf),
        ("log10_cs2", 2.6, 4.6),
        ("log10_cs2", -math.inf, 3.0),
        ("log10_cs2", 5.5, math.inf),
        ("cs1_phd", 3.0, 80.0),
        ("cs1_phd", -math.inf, math.inf),
        ("s1_coincidence", 3, math.inf),
    ],
)
def test_expression_matches_numpy_mask(variable, lower, upper) -> None:
    data = _random_data(np.random.default_rng(7))
    cut = Cut("c", "roi", variable, lower=lower, upper=upper)
    table = pa.table(dict(data.columns))
    got = ds.dataset(table).to_table(filter=cut_expression(cut)).column("event_id").to_numpy()
    assert np.array_equal(got, data.columns["event_id"][cut.mask(data)])


def test_helpers(cuts) -> None:
    assert set(needed_columns(cuts)) == {
        "s1_coincidence",
        "s2_phd",
        "drift_time_us",
        "x_cm",
        "y_cm",
        "cs1_phd",
        "cs2_phd",
    }
    assert cuts_expression(()) is None
    assert "multiply" in str(cuts_expression(cuts)) and "log10" not in str(cuts_expression(cuts))


def test_no_cuts_keeps_everything(dataset) -> None:
    res = select_stream(dataset, (), collect=False)
    assert res.n_selected == res.n_events and res.cutflow.events == (res.n_events,)


def test_bad_sources_raise_invalid_data(tmp_path, cuts) -> None:
    with pytest.raises(InvalidData, match="not found"):
        open_dataset(tmp_path / "missing")
    with pytest.raises(InvalidData, match="no Parquet files"):
        open_dataset(tmp_path)
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet")
    with pytest.raises(InvalidData, match="readable"):
        open_dataset(bad)
    wrong = tmp_path / "wrong" / "a.parquet"
    wrong.parent.mkdir()
    pq.write_table(pa.table({"cs1_phd": pa.array([1, 2], pa.int32())}), wrong)
    with pytest.raises(InvalidData) as err:
        open_dataset(wrong.parent)
    assert err.value.field == "cs1_phd"
    only = tmp_path / "only" / "a.parquet"
    only.parent.mkdir()
    pq.write_table(pa.table({"cs1_phd": [1.0, 2.0]}), only)
    with pytest.raises(InvalidData) as err:
        select_stream(only, cuts)
    assert err.value.field == "s1_coincidence"
