"""Integration: layered configuration reaches every step through results/config.resolved.yaml.

One Snakemake run of ``results/limits/limits.json`` in a scratch copy on the test configuration,
layered with two override files and a ``--config KEY=VALUE`` (asymptotic limits at one mass keep it
to about half a minute), then: every layer is in the resolved configuration and honoured by the steps,
the single selected mass is exactly one limits_point job; and a mass that is not on the grid fails in
the first job, in seconds, with a one-line error naming the key.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from reliability_support import copy_workflow, env, snakemake_argv

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TARGET = "results/limits/limits.json"
SEED = 4242  # not the test configuration's seed (20221011)
MASS_GEV = 10.0  # on the test configuration's grid (10 - 1000 GeV, 4 log-spaced masses)


def _snakemake(work: Path, *args: str, overrides: tuple[Path, ...] = ()) -> subprocess.CompletedProcess:
    """Snakemake on the test configuration, then each override file (later files win)."""
    argv = [*snakemake_argv(*args), *map(str, overrides)]  # extends snakemake_argv's --configfile CONFIG
    return subprocess.run(argv, cwd=work, env=env(), capture_output=True, text=True, timeout=900, check=False)


def _write(path: Path, doc: dict) -> Path:
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def _job_counts(out: str) -> dict[str, int]:
    stats = out.split("Job stats:")[1].split("\n\n")[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)\s*$", stats, re.M)}


@pytest.fixture(scope="module")
def layered_run(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    base = tmp_path_factory.mktemp("wf_layering")
    work = copy_workflow(base / "repo")
    overrides = (
        _write(base / "overrides.yaml", {"limits": {"cl": 0.95}, "statistics": {"neyman_threshold": "asymptotic"}}),
        _write(base / "one_mass.yaml", {"limits": {"masses_gev": [MASS_GEV]}}),
    )
    proc = _snakemake(work, TARGET, "--config", f"seed={SEED}", overrides=overrides)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return work, proc


def test_resolved_config_has_every_layer(layered_run) -> None:
    work, _ = layered_run
    resolved = yaml.safe_load((work / "results/config.resolved.yaml").read_text(encoding="utf-8"))
    assert resolved["limits"] == {"cl": 0.95, "masses_gev": [MASS_GEV]}  # two files merged key by key
    assert resolved["statistics"]["neyman_threshold"] == "asymptotic"
    assert resolved["statistics"]["toys_per_mu"] == 200  # the rest of the section from the test configuration
    assert resolved["seed"] == SEED
    assert resolved["signal"]["masses_gev"]["count"] == 4  # tests/data/test_config.yaml over the default
    text = (work / "results/config.resolved.yaml").read_text(encoding="utf-8")
    top = [line.split(":")[0] for line in text.splitlines() if re.match(r"^\w", line)]
    assert top == sorted(top)  # written sorted


def test_steps_honour_files_and_command_line(layered_run) -> None:
    work, _ = layered_run
    limits = json.loads((work / "results/limits/limits.json").read_text())
    assert limits["cl"] == 0.95
    assert limits["statistics"]["neyman_threshold"] == "asymptotic"
    assert "thresholds asymptotic" in limits["method"]
    science = json.loads((work / "results/mdc/science.json").read_text())
    assert science["generator"]["seed"] == SEED, "mdc did not see --config seed="


def test_one_selected_mass_is_one_limits_point_job(layered_run) -> None:
    work, proc = layered_run
    assert _job_counts(proc.stdout + proc.stderr).get("limits_point") == 1
    assert sorted(p.name for p in (work / "results/limits/points").iterdir()) == ["0.json"]
    lines = (work / "results/limits/limits.csv").read_text().splitlines()
    assert len(lines) == 2 and float(lines[1].split(",")[0]) == pytest.approx(MASS_GEV)


def test_mass_off_the_grid_fails_fast_naming_the_key(tmp_path: Path) -> None:
    work = copy_workflow(tmp_path / "repo")
    bad = _write(tmp_path / "bad_mass.yaml", {"limits": {"masses_gev": [50.0]}})
    start = time.monotonic()
    proc = _snakemake(work, TARGET, overrides=(bad,))
    elapsed = time.monotonic() - start
    assert proc.returncode != 0
    assert "Error in rule resolve_config" in proc.stdout + proc.stderr
    assert not (work / "results/mdc").exists(), "a step ran after the configuration was refused"
    errors = [line for line in (work / "results/logs/resolve_config.log").read_text().splitlines() if line.strip()]
    assert len(errors) == 1, errors
    assert "limits.masses_gev" in errors[0] and "50" in errors[0], errors[0]
    assert elapsed < 120, f"took {elapsed:.0f} s"


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("band_points", 2, ".band_points: 2 is less than the minimum of 3"),
        ("band_points", "many", ".band_points: 'many' is not of type 'integer'"),
        ("band_pionts", 24, ": Additional properties are not allowed"),  # a typo: the allowed key it is closest to
    ],
)
def test_schema_invalid_override_is_one_line_and_exit_two(tmp_path: Path, key, value, message) -> None:
    """A schema-invalid key in an override file: Snakemake exits 2 before any job, with one line on stderr naming
    the key as a JSON path and the merged files (workflow/rules/config_check.smk), not a traceback."""
    work = copy_workflow(tmp_path / "repo")
    bad = _write(tmp_path / "bad_band.yaml", {"statistics": {key: value}})
    proc = _snakemake(work, TARGET, overrides=(bad,))
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.startswith("invalid configuration")]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert f"$.statistics{message}" in lines[0] and "bad_band.yaml" in lines[0], lines[0]
    if key == "band_pionts":
        assert "'band_pionts': did you mean 'band_points'?" in lines[0], lines[0]
    assert not (work / "results").exists(), "something was written after the configuration was refused"
