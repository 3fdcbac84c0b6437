"""Multi-file datasets (read_dataset) and the sidecar's upstream cuts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_files_and_reduced import _science_columns, _science_meta

from dmpreserve.artifacts.reduced import read_dataset, read_reduced, upstream_cuts, write_reduced
from dmpreserve.errors import InvalidData


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
