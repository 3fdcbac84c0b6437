"""Tests of the SLURM workflow profile and the CI stage that runs it (no cluster needed here)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
PROFILE = REPO / "workflow" / "profiles" / "slurm" / "config.yaml"
STAGE = REPO / ".ci" / "stages" / "slurm.sh"


@pytest.fixture(scope="module")
def profile() -> dict:
    return yaml.safe_load(PROFILE.read_text(encoding="utf-8"))


def _rules() -> set[str]:
    names = set()
    for smk in [REPO / "Snakefile", *sorted((REPO / "workflow" / "rules").glob("*.smk"))]:
        names.update(re.findall(r"^rule (\w+):", smk.read_text(encoding="utf-8"), flags=re.M))
    return names


def test_profile_has_resources_for_every_step(profile) -> None:
    resources = profile["set-resources"]
    for rule in _rules() - {"all"}:
        assert rule in resources, f"rule {rule} has no SLURM resources in {PROFILE.name}"
    for rule, res in resources.items():
        assert isinstance(res["mem_mb"], int) and 100 <= res["mem_mb"] <= 16000, rule
        assert isinstance(res["runtime"], int) and res["runtime"] > 0, rule
    assert {"mdc", "limits", "limits_point"} <= set(resources)
    assert profile["default-resources"]["mem_mb"] > 0


def test_profile_leaves_site_settings_to_the_command_line(profile) -> None:
    assert "executor" not in profile  # the CI stage and the README pass --executor slurm
    assert not any(k.startswith("slurm-") for k in profile)
    assert "slurm_account" not in profile["default-resources"]


@pytest.mark.skipif(
    shutil.which("snakemake", path=str(Path(sys.executable).parent)) is None,
    reason="snakemake not installed beside this interpreter",
)
def test_dry_run_with_the_profile(tmp_path) -> None:
    """The profile parses and schedules the test configuration (dry run: no cluster needed)."""
    work = tmp_path / "wf"
    shutil.copytree(
        REPO,
        work,
        ignore=shutil.ignore_patterns(
            ".venv", "results", ".snakemake", ".git", "benchmarks", "__pycache__", "*.egg-info", ".pytest_cache"
        ),
    )
    snakemake = str(Path(sys.executable).parent / "snakemake")
    proc = subprocess.run(
        [
            snakemake,
            "-n",
            "--executor",
            "slurm",
            "--workflow-profile",
            "workflow/profiles/slurm",
            "--configfile",
            "tests/data/test_config.yaml",
            "--slurm-status-command",
            "squeue",
            "--slurm-no-account",
            "results/limits/limits.csv",
        ],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert re.search(r"\blimits\b", proc.stdout + proc.stderr)


def test_ci_stage_script() -> None:
    text = STAGE.read_text(encoding="utf-8")
    subprocess.run(["bash", "-n", str(STAGE)], check=True)
    assert "slurm-local" in text and "trap cleanup EXIT" in text and '"$SLURM_LOCAL" stop' in text
    assert "--executor slurm --workflow-profile workflow/profiles/slurm" in text
    assert "--slurm-status-command squeue" in text
    assert "timeout -s INT" in text  # a CI timeout interrupts Snakemake so that it scancels its jobs
