"""Integration: the whole Snakemake DAG on the small test configuration (about a minute).

The run is the session's clean run (shared with test_inputs.py and, in CI, the later stages), copied with its
file times and Snakemake metadata, since one test here damages an input and reruns a step."""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import pyhf
import pytest
from reliability_support import clean_run, env, snakemake_argv

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def _snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        snakemake_argv(*args), cwd=workdir, env=env(), capture_output=True, text=True, timeout=900, check=check
    )


@pytest.fixture(scope="module")
def workflow_run(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("wf") / "repo"
    shutil.copytree(clean_run(tmp_path_factory), work, symlinks=True)  # copy2: file times kept
    return work


def test_all_outputs(workflow_run: Path) -> None:
    r = workflow_run / "results"
    for rel in (
        "likelihood/BkgOnly.json",
        "likelihood/patchset.json",
        "likelihood/likelihood_hs3.json",
        "limits/limits.csv",
        "limits/limits.json",
        "hepdata/submission.tar.gz",
        "plots/limits.png",
        "plots/limits.pdf",
        "plots/analysis_space.png",
        "plots/cutflow.png",
        "plots/pulls.png",
        "plots/acceptance.png",
        "provenance.json",
        "selection/cutflow.csv",
        "selection/acceptance.csv",
        "backgrounds/templates.json",
        "signal/signal.json",
        "mdc/truth.parquet",
    ):
        assert (r / rel).is_file() and (r / rel).stat().st_size > 0, rel
    assert not list(r.rglob("*.part")), "temporary files left behind"


def test_likelihood_is_valid_pyhf(workflow_run: Path) -> None:
    r = workflow_run / "results" / "likelihood"
    ws = json.loads((r / "BkgOnly.json").read_text())
    pyhf.schema.validate(ws, "workspace.json")
    ps = pyhf.PatchSet(json.loads((r / "patchset.json").read_text()))
    ps.verify(pyhf.Workspace(ws))
    assert len(ps.patches) == 4


def test_limits_match_config_and_are_ordered(workflow_run: Path) -> None:
    lines = (workflow_run / "results/limits/limits.csv").read_text().splitlines()
    assert lines[0].startswith("mass_gev,limit_cm2,limit_unconstrained_cm2,limit_pcl_cm2,limit_cls_cm2,expected_cm2")
    header = lines[0].split(",")
    rows = [dict(zip(header, map(float, line.split(",")))) for line in lines[1:]]
    assert [round(r["mass_gev"], 3) for r in rows] == [10.0, 46.416, 215.443, 1000.0]
    for r in rows:
        bands = [
            r[f"expected_{q}_cm2"] if q else r["expected_cm2"] for q in ("m2sigma", "m1sigma", "", "p1sigma", "p2sigma")
        ]
        assert bands == sorted(bands)  # -2s <= -1s <= median <= +1s <= +2s
        assert r["limit_cm2"] == r["limit_pcl_cm2"] >= r["limit_unconstrained_cm2"]
        assert 1e-49 < r["limit_cm2"] < 1e-43


def test_provenance_records_everything(workflow_run: Path) -> None:
    prov = json.loads((workflow_run / "results/provenance.json").read_text())
    assert prov["container_image"].startswith("docker://")
    assert any(k.endswith("science.parquet") for k in prov["inputs"])
    assert any(k.endswith("BkgOnly.json") for k in prov["outputs"])
    assert prov["packages"]["pyhf"] == pyhf.__version__
    assert len(prov["config"]["sha256"]) == 64


def test_hepdata_archive_has_likelihood(workflow_run: Path) -> None:
    with tarfile.open(workflow_run / "results/hepdata/submission.tar.gz") as tar:
        names = tar.getnames()
    assert "submission.yaml" in names and "Likelihoods.tar.gz" in names


def test_nothing_to_do_on_rerun(workflow_run: Path) -> None:
    proc = _snakemake(workflow_run, "-n")
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_lint_clean(workflow_run: Path) -> None:
    proc = _snakemake(workflow_run, "--lint", check=False)
    assert "Congratulations" in proc.stdout + proc.stderr, proc.stdout[-3000:]


def test_corrupt_input_fails_job_and_leaves_no_output(workflow_run: Path) -> None:
    """A corrupt reduced-data file makes the step fail with a clear message and no partial output."""
    work = workflow_run
    science = work / "results/mdc/science.parquet"
    original = science.read_bytes()
    try:
        science.write_bytes(original[: len(original) // 2])
        part = "results/selection/parts/0.cutflow.json"
        proc = _snakemake(work, part, "--force", "--allowed-rules", "select_part", check=False)
        assert proc.returncode != 0
        log = (work / "results/logs/select_part/0.log").read_text()
        assert "science.parquet" in log and "not a readable Parquet file" in log
        assert not (work / part).exists() and not (work / "results/selection/parts/0.parquet").exists()
    finally:
        science.write_bytes(original)
