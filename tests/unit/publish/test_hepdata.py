"""Tests of dmpreserve.publish.hepdata: a small synthetic record validates, is byte-reproducible, and bad input
leaves nothing."""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile

import numpy as np
import pytest
import yaml
from small_likelihood import signal_patch, three_bin_workspace

from dmpreserve.errors import InvalidData
from dmpreserve.publish import hepdata

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
            "mass_gev": mass,
            "limit_cm2": 1.2 * base,
            "expected_cm2": base,
            "expected_m2sigma_cm2": 0.5 * base,
            "expected_m1sigma_cm2": 0.7 * base,
            "expected_p1sigma_cm2": 1.4 * base,
            "expected_p2sigma_cm2": 2.0 * base,
        },
        "observed_events": {"cs1_phd": [5.0, 12.0, 15.0], "log10_cs2": [3.1, 2.7, 2.8]},
        "background": {
            "cs1_edges_phd": [0.0, 10.0, 20.0],
            "log10_cs2_edges": [2.5, 3.0, 3.5, 4.0],
            "components": {"er": np.full((2, 3), 0.1), "neutron": np.full((2, 3), 0.01)},
            "observed": [[0, 1, 0], [2, 0, 0]],
        },
        "cutflow": {
            "cut": ["all", "fiducial", "roi"],
            "events": [1000, 100, 3],
            "efficiency_cumulative": [1.0, 0.1, 0.003],
        },
        "acceptance": {
            "energy_low_kev": [1.0, 2.0, 3.0],
            "energy_high_kev": [2.0, 3.0, 4.0],
            "acceptance": [0.0, 0.5, 0.8],
            "acceptance_err": [0.0, 0.05, 0.04],
        },
        "likelihood_files": [lik / "BkgOnly.json", lik / "patchset.json"],
        "metadata": {
            "description": "Synthetic liquid-xenon WIMP search.",
            "comment": "Test record.",
            "keywords": {"phrases": ["Dark Matter", "WIMP"]},
        },
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
    assert sorted(members) == [
        "Likelihoods.tar.gz",
        "background_expectation.yaml",
        "cut_flow.yaml",
        "limit_curve.yaml",
        "observed_events.yaml",
        "signal_efficiency.yaml",
        "submission.yaml",
    ]
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


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda r: r["limits"].__setitem__("limit_cm2", r["limits"]["limit_cm2"][:-1]), "differ in length"),
        (lambda r: r["limits"].__setitem__("limit_cm2", np.array([1e-47, np.nan, 1e-47])), "NaN"),
        (lambda r: r["limits"].__setitem__("expected_p1sigma_cm2", r["limits"]["expected_m2sigma_cm2"]), "ordered"),
        (lambda r: r["observed_events"].__setitem__("log10_cs2", [3.0]), "observed_events"),
        (lambda r: r["background"]["components"].__setitem__("wall", np.zeros((3, 3))), "wall"),
        (lambda r: r["cutflow"].__setitem__("efficiency_cumulative", [1.0, 0.1]), "cutflow"),
        (lambda r: r["acceptance"].__setitem__("acceptance", [0.1, 1.5, 0.2]), "acceptance"),
        (lambda r: r["likelihood_files"].append(r["likelihood_files"][0].parent / "missing.json"), "not found"),
        (lambda r: r["metadata"].__setitem__("keywords", {"energy": ["0"]}), "keyword"),
    ],
)
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


@pytest.mark.parametrize(
    "entries, member",
    [
        ([("submission.yaml", b"---\n", "file"), ("../evil", b"x", "file")], "../evil"),
        ([("/etc/evil", b"x", "file")], "/etc/evil"),
        ([("link", "/etc/passwd", "symlink")], "link"),
    ],
)
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


# ------------------------------------------------------------------ both conventions, fit tables, resources
def _both_conventions(record) -> dict:
    lim = dict(record["limits"])
    base = lim["expected_cm2"]
    lim.update(
        {
            "limit_unconstrained_cm2": 0.6 * base,
            "limit_pcl_cm2": lim["limit_cm2"],
            "limit_cls_cm2": 1.3 * base,
            "expected_cls_cm2": 1.1 * base,
            "expected_cls_m2sigma_cm2": 0.6 * base,
            "expected_cls_m1sigma_cm2": 0.8 * base,
            "expected_cls_p1sigma_cm2": 1.5 * base,
            "expected_cls_p2sigma_cm2": 2.2 * base,
            "p0": np.array([0.5, 0.2, 0.01]),
            "z0": np.array([0.0, 0.84, 2.33]),
            "neyman_threshold": np.array([2.7, 2.6, 2.8]),
            "neyman_threshold_err": np.array([0.05, 0.06, 0.05]),
            "pcl_threshold_cm2": 0.7 * base,
            "unrelated_extra_column": np.zeros(3),
        }
    )
    return lim


def test_limit_table_carries_both_conventions(record):
    record["limits"] = _both_conventions(record)
    hepdata.write_submission(**record)
    members = _members(record["output_tar"])
    table = members["limit_curve.yaml"].decode()
    for text in (
        "Power-constrained upper limit",
        "Unconstrained upper limit",
        "CLs upper limit",
        "PLR sensitivity: median",
        "CLs expected (median)",
        "Local p-value p0",
        "Local significance Z0",
        "Neyman critical value",
        "toy MC stat.",
        "critical power 0.16",
    ):
        assert text in table, text
    descriptions = " ".join(
        str(doc.get("description", "")) for doc in yaml.safe_load_all(members["submission.yaml"].decode()) if doc
    )
    assert "Baxter et al., EPJC 81 (2021) 907" in descriptions and "Neyman construction" in descriptions
    assert "CLs method and the test statistic q~mu" in descriptions
    assert "unrelated_extra_column" not in table


@pytest.mark.parametrize(
    "column, value, match",
    [
        ("limit_cls_cm2", [1e-47, -1e-47, 1e-47], "limit_cls_cm2"),
        ("p0", [0.5, 1.5, 0.1], "p0"),
        ("expected_cls_p1sigma_cm2", [1e-50, 1e-50, 1e-50], "ordered"),
    ],
)
def test_bad_optional_limit_columns(record, column, value, match):
    record["limits"] = _both_conventions(record)
    record["limits"][column] = np.array(value)
    with pytest.raises(InvalidData, match=match):
        hepdata.write_submission(**record)
    assert not record["output_tar"].exists()


@pytest.fixture(scope="module")
def fit_doc() -> dict:
    from dmpreserve.stats.fit import fit_all

    spec = three_bin_workspace()
    patches = [signal_patch(f"m{m}", m) for m in (10.0, 50.0, 200.0)]
    return fit_all(spec, {"patches": patches}, scan_points=7, gof_toys=5, seed=1).to_json()


def test_fit_tables(record, fit_doc):
    hepdata.write_submission(**record, fit=fit_doc)
    members = _members(record["output_tar"])
    for name in (
        "background-only_fit.yaml",
        "correlation_matrix.yaml",
        "signal-plus-background_fit.yaml",
        "profile_likelihood_scan.yaml",
        "best-fit_cross_section.yaml",
    ):
        assert name in members, name
    descriptions = " ".join(
        str(doc.get("description", "")) for doc in yaml.safe_load_all(members["submission.yaml"].decode()) if doc
    )
    assert "Saturated-model goodness of fit" in descriptions and "MINOS interval of mu" in descriptions
    assert "norm_er" in members["background-only_fit.yaml"].decode()
    hepdata.write_submission(**dict(record, output_tar=record["output_tar"].with_name("again.tar.gz")), fit=fit_doc)
    assert record["output_tar"].with_name("again.tar.gz").read_bytes() == record["output_tar"].read_bytes()


def test_additional_resources(record, tmp_path):
    kit = tmp_path / "kit.tar.gz"
    kit.write_bytes(b"\x1f\x8b reinterpretation kit")
    notes = tmp_path / "NOTES.txt"
    notes.write_text("notes\n")
    record["resources"] = [(kit, "Reinterpretation kit"), (str(notes), "Analysis notes")]
    hepdata.write_submission(**record)
    members = _members(record["output_tar"])
    assert members["kit.tar.gz"] == kit.read_bytes() and members["NOTES.txt"] == b"notes\n"
    submission = members["submission.yaml"].decode()
    assert "description: Reinterpretation kit" in submission and "location: kit.tar.gz" in submission
    first = record["output_tar"].read_bytes()
    os.utime(kit, (1, 1))
    hepdata.write_submission(**record)
    assert record["output_tar"].read_bytes() == first


def test_hs3_resource(record, tmp_path):
    """The HS3 likelihood is attached with resource type HS3 and the record still validates."""
    import yaml
    from small_likelihood import signal_patch, three_bin_workspace

    from dmpreserve.publish.hs3 import workspace_to_hs3, write_hs3

    path = tmp_path / "likelihood_hs3.json"
    write_hs3(path, workspace_to_hs3(three_bin_workspace(), signal_patch("m50", 50.0), name="small"))
    hepdata.write_submission(**record, hs3=path)  # validated with hepdata-validator inside
    members = _members(record["output_tar"])
    assert members[hepdata.HS3_RESOURCE] == path.read_bytes()
    header = next(yaml.safe_load_all(members["submission.yaml"]))
    types = {r["location"]: r.get("type") for r in header["additional_resources"]}
    assert types[hepdata.HS3_RESOURCE] == "HS3" and types[hepdata.LIKELIHOOD_ARCHIVE] == "HistFactory"


def _symlink(tmp_path):
    target = tmp_path / "real.txt"
    target.write_text("x")
    link = tmp_path / "link.txt"
    link.symlink_to(target)
    return [(link, "a link")]


def _plain(tmp_path, name="r.txt", text="x"):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "make, match",
    [
        (_symlink, "symbolic link"),
        (lambda t: [(t, "a directory")], "not a regular file"),
        (lambda t: [(t / "missing.bin", "missing")], "not found"),
        (lambda t: [(_plain(t, "table.yaml"), "yaml")], "file name"),
        (lambda t: [(_plain(t, "bad name.txt"), "space")], "file name"),
        (lambda t: [(_plain(t, "Likelihoods.tar.gz"), "clash")], "clashes"),
        (lambda t: [(_plain(t), "one"), (_plain(t), "twice")], "twice"),
        (lambda t: [(_plain(t), "  ")], "description"),
        (lambda t: [(_plain(t),)], "pair"),
        (lambda t: [(_plain(t, text="y" * 11), "big")], "larger"),
    ],
)
def test_bad_resources_leave_no_output(record, tmp_path, monkeypatch, make, match):
    monkeypatch.setattr(hepdata, "MAX_RESOURCE_BYTES", 10)
    folder = tmp_path / "res"
    folder.mkdir()
    record["resources"] = make(folder)
    with pytest.raises(InvalidData, match=match) as err:
        hepdata.write_submission(**record)
    assert "resources[" in str(err.value)
    assert not record["output_tar"].exists()


def test_threshold_table(record):
    thresholds = {
        "cl": 0.9,
        "signal_events": [0.5, 2.0, 10.0],
        "shape_mass_gev": [8.0, 100.0],
        "shape_b_eff": [0.27, 1.2],
        "thresholds": [[2.9, 2.8, 2.7], [3.1, 2.9, 2.72]],
        "errors": [[0.1, 0.1, 0.05], [0.1, 0.08, 0.05]],
    }
    hepdata.write_submission(**record, thresholds=thresholds)
    members = _members(record["output_tar"])
    table = yaml.safe_load(members["neyman_threshold_table.yaml"].decode())
    assert [v["value"] for v in table["independent_variables"][0]["values"]] == [0.5, 2.0, 10.0]
    deps = table["dependent_variables"]
    assert [[v["value"] for v in d["values"]] for d in deps] == thresholds["thresholds"]
    assert {q["value"] for d in deps for q in d["qualifiers"] if q["name"] == "Reference signal shape"} == {
        "8 GeV WIMP",
        "100 GeV WIMP",
    }
    bad = dict(thresholds, thresholds=[[2.9, 2.8], [3.1, 2.9]])
    with pytest.raises(InvalidData, match="does not match"):
        hepdata.write_submission(
            **dict(record, output_tar=record["output_tar"].with_name("bad.tar.gz")), thresholds=bad
        )
    assert not record["output_tar"].with_name("bad.tar.gz").exists()
