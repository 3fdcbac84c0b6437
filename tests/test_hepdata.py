"""Tests of dmpreserve.hepdata: a small synthetic record validates, is byte-reproducible, bad input leaves nothing."""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile

import numpy as np
import pytest

from dmpreserve import hepdata
from dmpreserve.errors import InvalidData

pytest.importorskip("hepdata_lib")
pytest.importorskip("hepdata_validator")


@pytest.fixture()
def record(tmp_path) -> dict:
    """Keyword arguments of write_submission for a tiny synthetic analysis."""
    lik = tmp_path / "likelihood"
    lik.mkdir()
    (lik / "BkgOnly.json").write_text(json.dumps({"channels": [], "version": "1.0.0"}, sort_keys=True))
    (lik / "patchset.json").write_text(json.dumps({"patches": [], "version": "1.0.0"}, sort_keys=True))
    mass = np.array([10.0, 50.0, 200.0])
    base = 1e-47 * np.array([3.0, 1.0, 2.0])
    return {
        "output_tar": tmp_path / "out" / "hepdata.tar.gz",
        "limits": {
            "mass_gev": mass, "limit_cm2": 1.2 * base, "expected_cm2": base,
            "expected_m2sigma_cm2": 0.5 * base, "expected_m1sigma_cm2": 0.7 * base,
            "expected_p1sigma_cm2": 1.4 * base, "expected_p2sigma_cm2": 2.0 * base,
        },
        "observed_events": {"cs1_phd": [5.0, 12.0, 15.0], "log10_cs2": [3.1, 2.7, 2.8]},
        "background": {
            "cs1_edges_phd": [0.0, 10.0, 20.0],
            "log10_cs2_edges": [2.5, 3.0, 3.5, 4.0],
            "components": {"er": np.full((2, 3), 0.1), "neutron": np.full((2, 3), 0.01)},
            "observed": [[0, 1, 0], [2, 0, 0]],
        },
        "cutflow": {"cut": ["all", "fiducial", "roi"], "events": [1000, 100, 3],
                    "efficiency_cumulative": [1.0, 0.1, 0.003]},
        "acceptance": {"energy_low_kev": [1.0, 2.0, 3.0], "energy_high_kev": [2.0, 3.0, 4.0],
                       "acceptance": [0.0, 0.5, 0.8], "acceptance_err": [0.0, 0.05, 0.04]},
        "likelihood_files": [lik / "BkgOnly.json", lik / "patchset.json"],
        "metadata": {"description": "Synthetic liquid-xenon WIMP search.", "comment": "Test record.",
                     "keywords": {"phrases": ["Dark Matter", "WIMP"]}},
    }


def _members(path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}


def test_write_submission_validates_and_is_clean(record, tmp_path, monkeypatch):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    hepdata.write_submission(**record)
    out = record["output_tar"]
    assert out.is_file()
    assert os.listdir(cwd) == []  # hepdata-lib wrote nothing into the working directory
    assert os.getcwd() == str(cwd)
    assert os.listdir(out.parent) == [out.name]  # no temporary leftovers beside the output
    hepdata.validate_submission(out)

    members = _members(out)
    assert sorted(members) == ["Likelihoods.tar.gz", "background_expectation.yaml", "cut_flow.yaml",
                               "limit_curve.yaml", "observed_events.yaml", "signal_efficiency.yaml",
                               "submission.yaml"]
    submission = members["submission.yaml"].decode()
    assert "type: HistFactory" in submission and "location: Likelihoods.tar.gz" in submission
    assert "90% CL upper limit, asymptotic CLs" in submission
    limit_yaml = members["limit_curve.yaml"].decode()
    assert "asymerror" in limit_yaml and "label: 1 sigma" in limit_yaml and "label: 2 sigma" in limit_yaml
    with tarfile.open(fileobj=io.BytesIO(members["Likelihoods.tar.gz"])) as inner:
        assert sorted(inner.getnames()) == ["BkgOnly.json", "README.txt", "patchset.json"]
    with tarfile.open(out) as tar:
        for info in tar.getmembers():
            assert (info.mtime, info.uid, info.gid, info.uname, info.gname) == (0, 0, 0, "", "")
    raw = out.read_bytes()
    assert raw[:2] == b"\x1f\x8b" and raw[4:8] == b"\x00\x00\x00\x00"  # gzip header mtime 0


def test_write_submission_is_deterministic(record, tmp_path):
    hepdata.write_submission(**record)
    first = record["output_tar"].read_bytes()
    second_path = tmp_path / "again" / "hepdata.tar.gz"
    os.utime(record["likelihood_files"][0], (1, 1))  # input mtimes must not leak into the archive
    hepdata.write_submission(**dict(record, output_tar=second_path))
    assert second_path.read_bytes() == first


def test_no_observed_events_is_valid(record):
    record["observed_events"] = {"cs1_phd": [], "log10_cs2": []}
    hepdata.write_submission(**record)
    hepdata.validate_submission(record["output_tar"])


@pytest.mark.parametrize("mutate, match", [
    (lambda r: r["limits"].__setitem__("limit_cm2", r["limits"]["limit_cm2"][:-1]), "differ in length"),
    (lambda r: r["limits"].__setitem__("limit_cm2", np.array([1e-47, np.nan, 1e-47])), "NaN"),
    (lambda r: r["limits"].__setitem__("expected_p1sigma_cm2", r["limits"]["expected_m2sigma_cm2"]), "ordered"),
    (lambda r: r["observed_events"].__setitem__("log10_cs2", [3.0]), "observed_events"),
    (lambda r: r["background"]["components"].__setitem__("wall", np.zeros((3, 3))), "wall"),
    (lambda r: r["cutflow"].__setitem__("efficiency_cumulative", [1.0, 0.1]), "cutflow"),
    (lambda r: r["acceptance"].__setitem__("acceptance", [0.1, 1.5, 0.2]), "acceptance"),
    (lambda r: r["likelihood_files"].append(r["likelihood_files"][0].parent / "missing.json"), "not found"),
    (lambda r: r["metadata"].__setitem__("keywords", {"energy": ["0"]}), "keyword"),
])
def test_invalid_input_raises_and_leaves_no_output(record, mutate, match):
    mutate(record)
    with pytest.raises(InvalidData, match=match):
        hepdata.write_submission(**record)
    assert not record["output_tar"].exists()
    parent = record["output_tar"].parent
    assert not parent.exists() or list(parent.iterdir()) == []


def test_failed_validation_keeps_previous_output(record, monkeypatch):
    hepdata.write_submission(**record)
    previous = record["output_tar"].read_bytes()

    def reject(path):
        raise InvalidData("HEPData validation failed: forced", path=path)

    monkeypatch.setattr(hepdata, "validate_submission", reject)
    record["limits"]["limit_cm2"] = 2.0 * record["limits"]["limit_cm2"]
    with pytest.raises(InvalidData, match="forced"):
        hepdata.write_submission(**record)
    assert record["output_tar"].read_bytes() == previous
    assert os.listdir(record["output_tar"].parent) == [record["output_tar"].name]


def _tar_with(path, entries) -> None:
    """Write a tar.gz with entries (TarInfo-modifier, data)."""
    with tarfile.open(path, "w:gz") as tar:
        for name, data, kind in entries:
            info = tarfile.TarInfo(name)
            if kind == "symlink":
                info.type = tarfile.SYMTYPE
                info.linkname = data
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


@pytest.mark.parametrize("entries, member", [
    ([("submission.yaml", b"---\n", "file"), ("../evil", b"x", "file")], "../evil"),
    ([("/etc/evil", b"x", "file")], "/etc/evil"),
    ([("link", "/etc/passwd", "symlink")], "link"),
])
def test_validate_rejects_unsafe_archives(tmp_path, entries, member):
    bad = tmp_path / "bad.tar.gz"
    _tar_with(bad, entries)
    with pytest.raises(InvalidData) as err:
        hepdata.validate_submission(bad)
    assert member in str(err.value)
    assert not (tmp_path.parent / "evil").exists()


def test_validate_rejects_oversized_member(tmp_path, monkeypatch):
    monkeypatch.setattr(hepdata, "MAX_MEMBER_BYTES", 10)
    bad = tmp_path / "big.tar.gz"
    _tar_with(bad, [("submission.yaml", b"x" * 11, "file")])
    with pytest.raises(InvalidData, match="submission.yaml"):
        hepdata.validate_submission(bad)


def test_validate_reports_validator_messages(tmp_path, record):
    hepdata.write_submission(**record)
    members = _members(record["output_tar"])
    members["stray.yaml"] = b"a: 1\n"  # not referenced by submission.yaml
    members["cut_flow.yaml"] = b"independent_variables: 3\n"  # schema-invalid data file
    broken = tmp_path / "broken.tar.gz"
    with tarfile.open(broken, "w:gz") as tar:
        for name, data in sorted(members.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with pytest.raises(InvalidData) as err:
        hepdata.validate_submission(broken)
    text = str(err.value)
    assert "HEPData validation failed" in text and "stray.yaml" in text and "cut_flow.yaml" in text


def test_validate_rejects_garbage(tmp_path):
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(gzip.compress(b"not a tar archive at all" * 100))
    with pytest.raises(InvalidData, match="junk.tar.gz"):
        hepdata.validate_submission(junk)
    with pytest.raises(InvalidData, match="not found"):
        hepdata.validate_submission(tmp_path / "missing.tar.gz")
