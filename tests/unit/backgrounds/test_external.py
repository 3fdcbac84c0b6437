"""External templates: CSV in the analysis binning and HDF5 in XENONnT's inference_interface format."""

from __future__ import annotations

from pathlib import Path

import h5py
import multihist
import numpy as np
import pytest
from inference_interface import multihist_to_template

from dmpreserve.backgrounds.external import read_csv_template, read_hdf5_template
from dmpreserve.config import Binning
from dmpreserve.errors import InvalidData

BINNING = Binning((3.0, 10.0, 80.0), (2.6, 3.6, 4.6))
VALUES = np.array([[1.0, 2.0], [0.0, 4.5]])


def _csv_rows(binning: Binning, values: np.ndarray, err: np.ndarray | None = None) -> str:
    e1, e2 = binning.cs1_edges_phd, binning.log10_cs2_edges
    head = "cs1_min_phd,cs1_max_phd,log10_cs2_min,log10_cs2_max,events" + (",events_err" if err is not None else "")
    rows = []
    for i in reversed(range(len(e1) - 1)):  # any order
        for j in range(len(e2) - 1):
            extra = f",{float(err[i, j])!r}" if err is not None else ""
            rows.append(f"{e1[i]!r},{e1[i + 1]!r},{e2[j]!r},{e2[j + 1]!r},{float(values[i, j])!r}{extra}")
    return head + "\n" + "\n".join(rows) + "\n"


def test_csv_template_in_any_row_order(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(_csv_rows(BINNING, VALUES, 0.1 * VALUES), encoding="utf-8")
    t = read_csv_template(path, BINNING)
    np.testing.assert_array_equal(t.values, VALUES)
    np.testing.assert_array_equal(t.stat_err, 0.1 * VALUES)


@pytest.mark.parametrize(
    ("mutate", "field", "words"),
    [
        (lambda s: s.replace("10.0,80.0", "10.0,70.0"), "cs1_max_phd", "analysis binning"),
        (lambda s: s.replace("3.0,10.0", "3.5,10.0"), "cs1_min_phd", "analysis binning"),
        (lambda s: "\n".join(s.splitlines()[:-1]) + "\n", "cs1_min_phd", "exactly once"),
        (lambda s: s.replace(",4.5", ",nan"), "events", "finite"),
        (lambda s: s.replace(",4.5", ",-4.5"), "events", ">= 0"),
    ],
)
def test_bad_csv_template(tmp_path: Path, mutate, field: str, words: str) -> None:
    path = tmp_path / "t.csv"
    path.write_text(mutate(_csv_rows(BINNING, VALUES)), encoding="utf-8")
    with pytest.raises(InvalidData) as err:
        read_csv_template(path, BINNING)
    assert err.value.path == str(path) and err.value.field == field and words in err.value.message


def _hdf5(path: Path, binning: Binning, values: np.ndarray, name: str = "er") -> Path:
    hist = multihist.Histdd(
        bins=[list(binning.cs1_edges_phd), list(binning.log10_cs2_edges)], axis_names=["cs1", "log10_cs2"]
    )
    hist.histogram = values
    multihist_to_template([hist], str(path), histogram_names=[name])
    return path


def test_hdf5_template_round_trip(tmp_path: Path) -> None:
    path = _hdf5(tmp_path / "t.h5", BINNING, VALUES)
    t = read_hdf5_template(path, "er", BINNING)
    np.testing.assert_array_equal(t.values, VALUES)
    assert t.stat_err is None


def test_hdf5_template_binning_differs(tmp_path: Path) -> None:
    other = Binning((3.0, 20.0, 80.0), BINNING.log10_cs2_edges)
    path = _hdf5(tmp_path / "t.h5", other, VALUES)
    with pytest.raises(InvalidData) as err:
        read_hdf5_template(path, "er", BINNING)
    assert err.value.path == str(path) and err.value.field == "bins/0" and "analysis binning" in err.value.message


@pytest.mark.parametrize("kind", ["not_hdf5", "no_groups", "no_histogram", "one_axis"])
def test_hdf5_not_in_inference_interface_format(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "t.h5"
    if kind == "not_hdf5":
        path.write_text("cs1,cs2\n1,2\n", encoding="utf-8")
    elif kind == "no_groups":
        with h5py.File(path, "w") as f:
            f.create_dataset("data", data=VALUES)
    elif kind == "no_histogram":
        _hdf5(path, BINNING, VALUES, name="wall")
    else:
        with h5py.File(path, "w") as f:
            f.create_dataset("bins/0", data=np.asarray(BINNING.cs1_edges_phd))
            f.create_dataset("templates/er", data=np.array([1.0, 2.0]))
    with pytest.raises(InvalidData) as err:
        read_hdf5_template(path, "er", BINNING)
    assert err.value.path == str(path)
    assert err.value.field in {"templates/er", "bins", "templates"}, err.value
