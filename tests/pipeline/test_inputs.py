"""Input datasets (config section ``inputs``): validation, ``dmpreserve partition`` and ``inputs-manifest``,
and the workflow reading the science run as a directory of files, over HTTP, with a wrong sha256 and from an
unreachable URL.

The issue's "done when": the test configuration reading the science run as a local directory of 4 Parquet
files gives limits identical (byte for byte) to the single-file run (the reliability tests' memoised clean run).
"""

from __future__ import annotations

import copy
import functools
import hashlib
import http.server
import io
import json
import math
import subprocess
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest
import yaml
from reliability_support import clean_run, copy_workflow, env, snakemake_argv

from dmpreserve.artifacts.partition import partition_reduced, split_live_time
from dmpreserve.artifacts.reduced import read_dataset, read_reduced
from dmpreserve.cli import main
from dmpreserve.config import config_from_dict
from dmpreserve.errors import InvalidConfig
from dmpreserve.files import read_json

#: Results that must not depend on how the science run was delivered.
COMPARED = (
    "likelihood/BkgOnly.json",
    "likelihood/patchset.json",
    "limits/limits.csv",
    "limits/limits.json",
    "hepdata/submission.tar.gz",
)


def _with_inputs(doc: dict, **inputs) -> dict:
    doc = copy.deepcopy(doc)
    doc["inputs"] = {**doc.get("inputs", {}), **inputs}
    return doc


# ------------------------------------------------------------------------------------ configuration


def test_default_inputs_are_the_mock_data(test_config_doc) -> None:
    doc = copy.deepcopy(test_config_doc)
    assert set(config_from_dict(doc).inputs.values()) == {"mdc"}
    del doc["inputs"]  # absent section: the same
    assert set(config_from_dict(doc).inputs.values()) == {"mdc"}


def test_dataset_input_defaults(test_config_doc) -> None:
    digest = "AB" * 32
    doc = _with_inputs(test_config_doc, science={"location": "data/science/", "sha256": {"a.parquet": digest}})
    science = config_from_dict(doc).inputs["science"]
    assert science == {
        "location": "data/science/",
        "files": None,
        "sha256": {"a.parquet": digest.lower()},
        "files_per_job": 1,
    }


@pytest.mark.parametrize(
    ("spec", "field", "text"),
    [
        ({"location": "ftp://host/x/", "files": ["a.parquet"]}, "$.inputs.science.location", "unknown URL scheme"),
        ({"location": "root://host//data/run/"}, "$.inputs.science.files", "remote directory"),
        ({"location": "https://host/a.parquet", "files": ["a.parquet"]}, "$.inputs.science.files", "one .parquet"),
        (
            {"location": "root://host//d/", "files": ["a.parquet"], "sha256": {"b.json": "0" * 64}},
            "$.inputs.science.sha256.b.json",
            "names no file",
        ),
        ({"location": "d/", "files_per_job": 0}, "$.inputs.science.files_per_job", ""),
        ({"location": "d/", "files": ["../x.parquet"]}, "$.inputs.science", ""),
        ({"location": "d/", "sha256": {"a.parquet": "xyz"}}, "$.inputs.science", ""),
    ],
)
def test_bad_inputs_are_refused(test_config_doc, spec, field, text) -> None:
    with pytest.raises(InvalidConfig) as err:
        config_from_dict(_with_inputs(test_config_doc, science=spec), path="c.yaml")
    assert field in str(err.value) and text in str(err.value)
    assert "\n" not in str(err.value)


def test_files_per_job_is_science_only(test_config_doc) -> None:
    with pytest.raises(InvalidConfig, match=r"\$\.inputs\.calibration_er"):
        config_from_dict(_with_inputs(test_config_doc, calibration_er={"location": "d/", "files_per_job": 2}))


# ---------------------------------------------------------------------------- partition, manifest


def test_split_live_time_sums_exactly() -> None:
    for total, counts in ((5184000.0, [603, 603, 602, 603]), (0.1 + 0.2, [1, 1, 1]), (86400.0 * 61.3, [7, 0, 5])):
        parts = split_live_time(total, counts)
        assert len(parts) == len(counts) and math.fsum(parts) == total


def test_partition_gives_the_same_dataset(mdc_dir: Path, tmp_path: Path) -> None:
    files = partition_reduced(mdc_dir / "science.parquet", 4, tmp_path)
    assert [f.name for f in files] == [f"part-00{i}.parquet" for i in range(4)]
    whole, parts = read_reduced(mdc_dir / "science.parquet"), read_dataset(files, kinds=("science",))
    assert parts.meta["live_time_s"] == whole.meta["live_time_s"]
    assert len(parts) == len(whole)
    for name, values in whole.columns.items():
        np.testing.assert_array_equal(parts.columns[name], values)
    assert (
        main(["partition", "--input", str(mdc_dir / "science.parquet"), "--parts", "0", "--outdir", str(tmp_path)]) == 2
    )


def _manifest_case(tmp_path: Path, mdc_dir: Path, small_config_path: Path, digest: str | None) -> list[str]:
    science = tmp_path / "science"
    files = partition_reduced(mdc_dir / "science.parquet", 2, science)
    doc = yaml.safe_load(small_config_path.read_text(encoding="utf-8"))
    spec = {"location": str(science)}
    if digest is not None:
        spec["sha256"] = {"part-001.parquet": digest}
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump(_with_inputs(doc, science=spec)), encoding="utf-8")
    argv = ["inputs-manifest", "--config", str(cfg)]
    for f in files:
        for p in (f, f.with_suffix(".json")):
            argv += ["--file", "science", str(p), str(p)]
    return [*argv, "-o", str(tmp_path / "out" / "manifest.json")]


def test_inputs_manifest_records_every_file(tmp_path, mdc_dir, small_config_path) -> None:
    partition_reduced(mdc_dir / "science.parquet", 2, tmp_path / "expected")
    good = hashlib.sha256((tmp_path / "expected/part-001.parquet").read_bytes()).hexdigest()
    argv = _manifest_case(tmp_path, mdc_dir, small_config_path, good.upper())  # hex digits of either case
    assert main(argv) == 0
    doc = read_json(tmp_path / "out/manifest.json")
    science = doc["inputs"]["science"]
    assert science["plugin"] is None and len(science["files"]) == 4
    assert [f["name"] for f in science["files"]] == [
        "part-000.parquet",
        "part-000.json",
        "part-001.parquet",
        "part-001.json",
    ]
    assert science["files"][2]["sha256"] == science["files"][2]["declared_sha256"] == good


def test_inputs_manifest_sha256_mismatch(tmp_path, mdc_dir, small_config_path, capsys) -> None:
    argv = _manifest_case(tmp_path, mdc_dir, small_config_path, "0" * 64)
    capsys.readouterr()
    assert main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"dmpreserve inputs-manifest: error: {tmp_path / 'science/part-001.parquet'}: ")
    assert "$.inputs.science.sha256.part-001.parquet" in lines[0]
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


# ------------------------------------------------------------------------------------------ workflow


def _members(data: bytes) -> dict[str, object]:
    """Members of a .tar.gz (nested .tar.gz expanded; kit.json parsed, its ``data`` record split off)."""
    out: dict[str, object] = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for m in tar.getmembers():
            body = tar.extractfile(m).read() if m.isfile() else b""
            if m.name.endswith(".tar.gz"):
                out.update({f"{m.name}/{k}": v for k, v in _members(body).items()})
            elif m.name.endswith("kit.json"):
                doc = json.loads(body)
                out[m.name] = (doc.pop("data", {}).get("science"), doc)
            else:
                out[m.name] = (m.mode, m.mtime, body)
    return out


def _overlay(work: Path, inputs: dict) -> Path:
    path = work / "inputs.yaml"
    path.write_text(yaml.safe_dump({"inputs": inputs}), encoding="utf-8")
    return path


def _snakemake(work: Path, overlay: Path, *args: str, timeout: int = 1200) -> subprocess.CompletedProcess:
    argv = [*snakemake_argv(*args), str(overlay)]  # after tests/data/test_config.yaml: the overlay wins
    return subprocess.run(argv, cwd=work, env=env(), capture_output=True, text=True, timeout=timeout, check=False)


@pytest.mark.slow
@pytest.mark.integration
def test_directory_of_four_files_gives_identical_limits(tmp_path_factory) -> None:
    """The issue's "done when": the science run as a directory of 4 Parquet files, one select_part job each.

    Byte-identical likelihood and limits; ``limits.json`` and the HEPData tarball's kit.json differ only in
    their ``data`` record (mock-data challenge vs declared ``inputs.science``), every other member byte for
    byte.  (The XRootD CI stage compares two declared deliveries, byte for byte throughout.)"""
    reference = clean_run(tmp_path_factory)
    work = copy_workflow(tmp_path_factory.mktemp("inputs_dir"))
    partition_reduced(reference / "results/mdc/science.parquet", 4, work / "data/science")
    proc = _snakemake(work, _overlay(work, {"science": {"location": "data/science"}}))
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert sorted(p.name for p in (work / "results/selection/parts").glob("*.cutflow.json")) == [
        f"{i}.cutflow.json" for i in range(4)
    ]
    for rel in COMPARED:
        # the reference is the in-pipeline mock-data challenge, the other run declares the same data as
        # inputs.science: only their ``data`` record (mock or declared) may differ
        got, want = (work / "results" / rel).read_bytes(), (reference / "results" / rel).read_bytes()
        if rel == "limits/limits.json":
            got, want = json.loads(got), json.loads(want)
            assert got.pop("data")["science"] == "inputs.science" and want.pop("data")["science"] == "mdc"
        elif rel.endswith(".tar.gz"):
            got, want = _members(got), _members(want)
            for name in [n for n in got if n.endswith("kit.json")]:
                assert got[name][0] == "inputs.science" and want[name][0] == "mdc"
                got[name], want[name] = got[name][1], want[name][1]
        assert got == want, rel
    manifest = read_json(work / "results/inputs/manifest.json")
    assert [f["name"] for f in manifest["inputs"]["science"]["files"]][::2] == [f"part-00{i}.parquet" for i in range(4)]
    provenance = read_json(work / "results/provenance.json")
    assert provenance["input_datasets"] == manifest["inputs"]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # no request log on stderr
        pass


@pytest.fixture()
def http_server(tmp_path: Path):
    """A local HTTP server (python's http.server in a thread) serving tmp_path/www; yields its base URL."""
    root = tmp_path / "www"
    root.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.integration
def test_http_input_through_the_storage_plugin(tmp_path, mdc_dir, http_server) -> None:
    """inputs.science over plain HTTP (snakemake-storage-plugin-http): the manifest records the URL, the plugin
    and the sha256 of the local copies, which equal the served files'."""
    pytest.importorskip("snakemake_storage_plugin_http")
    base, root = http_server
    files = partition_reduced(mdc_dir / "science.parquet", 2, root / "science")
    work = copy_workflow(tmp_path / "wf")
    url = f"{base}/science/"
    overlay = _overlay(work, {"science": {"location": url, "files": [f.name for f in files]}})
    proc = _snakemake(work, overlay, "results/inputs/manifest.json", timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    science = read_json(work / "results/inputs/manifest.json")["inputs"]["science"]
    assert science["location"] == url
    assert science["plugin"]["name"] == "snakemake-storage-plugin-http"
    served = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (root / "science").iterdir()}
    assert {f["name"]: f["sha256"] for f in science["files"]} == served
    assert all(f["location"] == url + f["name"] for f in science["files"])


@pytest.mark.integration
def test_sha256_mismatch_fails_the_manifest_job(tmp_path, mdc_dir) -> None:
    work = copy_workflow(tmp_path / "wf")
    partition_reduced(mdc_dir / "science.parquet", 2, work / "data/science")
    overlay = _overlay(work, {"science": {"location": "data/science", "sha256": {"part-001.json": "f" * 64}}})
    proc = _snakemake(work, overlay, "results/inputs/manifest.json", timeout=300)
    assert proc.returncode != 0
    assert "Error in rule inputs_manifest" in proc.stderr, proc.stderr[-3000:]
    log = (work / "results/logs/inputs_manifest.log").read_text()
    errors = [line for line in log.splitlines() if ": error: " in line]
    assert len(errors) == 1, log
    assert errors[0].startswith("dmpreserve inputs-manifest: error: data/science/part-001.json: ")
    assert "$.inputs.science.sha256.part-001.json" in errors[0]
    assert not (work / "results/inputs/manifest.json").exists()


@pytest.mark.integration
def test_unreachable_url_is_one_clear_error(tmp_path) -> None:
    """A URL nobody serves (a closed port on localhost): Snakemake stops before any job, naming the URL."""
    pytest.importorskip("snakemake_storage_plugin_http")
    work = copy_workflow(tmp_path / "wf")
    url = "http://127.0.0.1:9/run/science.parquet"  # port 9 (discard): nothing listens
    proc = _snakemake(work, _overlay(work, {"science": {"location": url}}), "results/inputs/manifest.json", timeout=300)
    assert proc.returncode != 0
    assert url in proc.stderr, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert not (work / "results/inputs").exists()
