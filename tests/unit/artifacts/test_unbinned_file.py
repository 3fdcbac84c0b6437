"""``unbinned_templates.h5``: round trip, byte-identical reruns, and every refusal of the reader and writer."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from dmpreserve.artifacts.unbinned import (
    FORMAT,
    UnbinnedTemplates,
    read_unbinned_templates,
    write_unbinned_templates,
)
from dmpreserve.errors import InvalidData

N1, N2 = 4, 5


def _rows(rng: np.random.Generator, n: int) -> np.ndarray:
    a = rng.random((n, N1 * N2))
    return a / a.sum(axis=1, keepdims=True)


@pytest.fixture
def templates() -> UnbinnedTemplates:
    rng = np.random.default_rng(7)
    return UnbinnedTemplates(
        cs1_edges=np.linspace(3.0, 80.0, N1 + 1),
        log10_cs2_edges=np.linspace(2.6, 4.6, N2 + 1),
        smoothing_bins=1.5,
        sample_names=("accidental", "er", "neutron"),
        backgrounds=_rows(rng, 3),
        masses_gev=(10.0, 50.0),
        signal=_rows(rng, 2),
        observed_bins=np.array([0, 7, 7, N1 * N2 - 1], np.int64),
    )


@pytest.fixture
def written(tmp_path: Path, templates: UnbinnedTemplates) -> Path:
    path = tmp_path / "unbinned_templates.h5"
    write_unbinned_templates(path, templates)
    return path


def test_round_trip(written: Path, templates: UnbinnedTemplates) -> None:
    t = read_unbinned_templates(written)
    np.testing.assert_array_equal(t.cs1_edges, templates.cs1_edges)
    np.testing.assert_array_equal(t.log10_cs2_edges, templates.log10_cs2_edges)
    np.testing.assert_array_equal(t.backgrounds, templates.backgrounds)
    np.testing.assert_array_equal(t.signal, templates.signal)
    np.testing.assert_array_equal(t.observed_bins, templates.observed_bins)
    assert t.observed_bins.dtype == np.int64
    assert t.sample_names == templates.sample_names and all(type(n) is str for n in t.sample_names)
    assert t.masses_gev == templates.masses_gev and t.smoothing_bins == 1.5
    assert t.shape == (N1, N2) and t.path == str(written)
    np.testing.assert_array_equal(t.shape_of("er"), templates.backgrounds[1])
    np.testing.assert_array_equal(t.signal_shape(50.0 * (1 + 5e-5)), templates.signal[1])
    assert t.bin_areas.shape == (N1 * N2,) and t.bin_areas.sum() == pytest.approx(77.0 * 2.0)
    with pytest.raises(ValueError):  # read-only arrays: the dataclass is frozen, its arrays too
        t.backgrounds[0, 0] = 1.0
    with h5py.File(written) as f:
        assert f.attrs["format"] == FORMAT


def test_unknown_sample_and_mass_name_what_exists(written: Path) -> None:
    t = read_unbinned_templates(written)
    with pytest.raises(InvalidData, match="no background sample 'wall'.*accidental, er, neutron") as info:
        t.shape_of("wall")
    assert info.value.field == "sample_names" and info.value.path == str(written)
    with pytest.raises(InvalidData, match="no signal shape for 20 GeV.*10, 50 GeV") as info:
        t.signal_shape(20.0)
    assert info.value.field == "masses_gev"
    with pytest.raises(InvalidData):
        t.signal_shape(50.0 * (1 + 2e-4))


def test_rerun_is_byte_identical(tmp_path: Path, templates: UnbinnedTemplates) -> None:
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    write_unbinned_templates(a, templates)
    time.sleep(1.1)  # HDF5 object timestamps have a resolution of one second
    write_unbinned_templates(b, templates)
    assert a.read_bytes() == b.read_bytes()


def _damage(path: Path, name: str, value=None) -> None:
    with h5py.File(path, "a") as f:
        del f[name]
        if value is not None:
            f.create_dataset(name, data=value)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("signal", None, "missing dataset"),
        ("backgrounds", None, "missing dataset"),
        ("observed_bins", None, "missing dataset"),
        ("signal", "nan", "finite"),
        ("backgrounds", "negative", "negative entries"),
        ("backgrounds", "unnormalised", "not 1"),
        ("signal", "short", r"shape \(2, 19\), expected \(2, 20\)"),
        ("cs1_edges_phd", np.array([3.0, 2.0, 80.0, 81.0, 90.0]), "ascending"),
        ("masses_gev", np.array([50.0, 10.0]), "ascending"),
        ("observed_bins", np.array([0, N1 * N2]), r"in \[0, 20\)"),
        ("observed_bins", np.array([0.0, 1.0]), "integers"),
        ("sample_names", np.array([1, 2, 3]), "strings"),
    ],
)
def test_reader_refuses_bad_files(written: Path, templates, name: str, value, message: str) -> None:
    if isinstance(value, str):
        arr = np.array(getattr(templates, name), float)
        if value == "nan":
            arr[0, 3] = np.nan
        elif value == "negative":
            arr[1, 2] = -arr[1, 2]
        elif value == "unnormalised":
            arr[0] *= 1.001
        else:
            arr = arr[:, :-1]
        value = arr
    _damage(written, name, value)
    with pytest.raises(InvalidData, match=message) as info:
        read_unbinned_templates(written)
    assert info.value.field == name and info.value.path == str(written)
    assert "\n" not in str(info.value)


def test_reader_refuses_other_files(tmp_path: Path, written: Path) -> None:
    with pytest.raises(InvalidData, match="not found"):
        read_unbinned_templates(tmp_path / "absent.h5")
    text = tmp_path / "text.h5"
    text.write_text("not HDF5\n")
    with pytest.raises(InvalidData, match="not a readable HDF5 file") as info:
        read_unbinned_templates(text)
    assert "\n" not in str(info.value)
    with h5py.File(written, "a") as f:
        f.attrs["format"] = "something-else"
    with pytest.raises(InvalidData, match="not an unbinned-templates file") as info:
        read_unbinned_templates(written)
    assert info.value.field == "format"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"smoothing_bins": -1.0}, "smoothing_bins"),
        ({"smoothing_bins": float("nan")}, "smoothing_bins"),
        ({"sample_names": ("er", "er", "neutron")}, "sample_names"),
        ({"masses_gev": (10.0,)}, "signal"),
        ({"log10_cs2_edges": np.array([2.6, 4.6])}, "log10_cs2_edges"),
        ({"observed_bins": np.array([-1])}, "observed_bins"),
    ],
)
def test_writer_refuses_inconsistent_templates(tmp_path: Path, templates, change, field: str) -> None:
    path = tmp_path / "bad.h5"
    with pytest.raises(InvalidData) as info:
        write_unbinned_templates(path, dataclasses.replace(templates, **change))
    assert info.value.field == field and info.value.path == str(path)
    assert not path.exists() and not list(tmp_path.iterdir())


def _responses(rng: np.random.Generator) -> dict:
    """Optional fine responses: 3 NR energy bins (4 edges) and 2 ER lines, probabilities per bin below 1."""
    return {
        "nr_energy_edges_kev": np.array([1.0, 2.0, 5.0, 10.0]),
        "nr_response": 0.04 * rng.random((3, N1 * N2)),
        "er_line_energies_kev": np.array([2.0, 8.0]),
        "er_response": 0.04 * rng.random((2, N1 * N2)),
    }


def test_fine_responses_round_trip(tmp_path: Path, templates: UnbinnedTemplates, written: Path) -> None:
    """The optional fine responses are written and read back (a file without them reads with None)."""
    responses = _responses(np.random.default_rng(2))
    path = tmp_path / "with_responses.h5"
    write_unbinned_templates(path, dataclasses.replace(templates, **responses))
    t = read_unbinned_templates(path)
    for name, value in responses.items():
        np.testing.assert_array_equal(getattr(t, name), value)
    nr, er = t.fine_responses()
    m = responses["nr_response"]
    np.testing.assert_allclose(nr.fold(np.array([1.0, 0.0, 2.0])), m[0] + 2 * m[2], rtol=1e-15)
    assert nr.binning.shape == (N1, N2)
    np.testing.assert_allclose(er.row(5.0), 0.5 * (responses["er_response"][0] + responses["er_response"][1]))
    plain = read_unbinned_templates(written)
    assert plain.nr_response is None and plain.er_response is None
    with pytest.raises(InvalidData, match="no fine NR response") as info:
        plain.fine_responses()
    assert info.value.field == "nr_response" and info.value.path == str(written)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"nr_response": None}, "nr_response"),
        ({"er_line_energies_kev": None}, "er_response"),
        ({"nr_energy_edges_kev": np.array([1.0, 5.0, 2.0, 10.0])}, "nr_energy_edges_kev"),
        ({"nr_response": np.full((3, N1 * N2), 1.5)}, "nr_response"),
        ({"nr_response": np.full((4, N1 * N2), 0.01)}, "nr_response"),
        ({"er_response": np.full((2, N1 * N2), np.nan)}, "er_response"),
    ],
)
def test_writer_refuses_inconsistent_responses(tmp_path: Path, templates, change, field: str) -> None:
    responses = {**_responses(np.random.default_rng(2)), **change}
    path = tmp_path / "bad.h5"
    with pytest.raises(InvalidData) as info:
        write_unbinned_templates(path, dataclasses.replace(templates, **responses))
    assert info.value.field == field and info.value.path == str(path)
    assert not path.exists()
