"""Shared fixtures: a tiny mock-data challenge and the pipeline steps run on it, once per session.

The configuration is ``tests/data/test_config.yaml`` with the calibration and simulation samples
shrunk further, so that generating the MDC with NEST and running select/backgrounds/signal/likelihood
takes a few seconds.  Nothing here depends on files outside the repository and pytest's tmp dirs.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from dmpreserve.cli import tune_allocator
from dmpreserve.config import AnalysisConfig, config_from_dict
from dmpreserve.files import read_json

REPO = Path(__file__).resolve().parents[1]
TEST_CONFIG = REPO / "tests" / "data" / "test_config.yaml"
DEFAULT_CONFIG = REPO / "workflow" / "config" / "config.yaml"

#: ER line grid and small NEST sample for ``dmpreserve signal`` (fast tests; the CLI defaults are 0.5:30:0.5, 2000).
#: The lines span the ER background's range in the ROI: the backgrounds step folds the flat ER spectrum through them.
ER_LINES = "0.5:30:0.5"
ER_EVENTS_PER_LINE = 100

#: MDC sample names (attributes of dmpreserve.mdc.generate.MdcOutputs) -> file stem.
MDC_FILES = ("science", "truth", "calib_er", "calib_nr", "sim_nr", "isolated_s1", "isolated_s2")


def pytest_configure(config) -> None:
    """Tests run the statistics in-process: give them the CLI's allocator setting, as every CLI job has it."""
    tune_allocator()


def shrink(doc: dict[str, Any]) -> dict[str, Any]:
    """A copy of a configuration document with small calibration/simulation samples (fast tests)."""
    doc = copy.deepcopy(doc)
    doc["mdc"]["calibration"]["er_events"] = 3000
    doc["mdc"]["calibration"]["nr_events"] = 1000
    doc["mdc"]["simulation"]["nr_events"] = 20000
    doc["mdc"]["components"]["accidental"]["isolated_s1_events"] = 2000
    doc["backgrounds"]["components"]["accidental"]["shape"]["isolated_pairs"]["pairs"] = 20000
    return doc


@pytest.fixture(scope="session")
def test_config_doc() -> dict[str, Any]:
    """The test configuration document as read from YAML (a fresh deep copy per use is the caller's job)."""
    return yaml.safe_load(TEST_CONFIG.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def small_config_path(tmp_path_factory, test_config_doc) -> Path:
    """The shrunk test configuration, written as YAML (for the CLI's ``--config``)."""
    path = tmp_path_factory.mktemp("config") / "small_config.yaml"
    path.write_text(yaml.safe_dump(shrink(test_config_doc), sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def small_config(small_config_path) -> AnalysisConfig:
    """The shrunk test configuration, validated."""
    doc = yaml.safe_load(small_config_path.read_text(encoding="utf-8"))
    return config_from_dict(doc, path=str(small_config_path))


@pytest.fixture(scope="session")
def mdc_dir(tmp_path_factory, small_config) -> Path:
    """Directory holding the mock-data challenge generated once from ``small_config``.

    Files: ``<name>.parquet`` (+ ``<name>.json`` sidecar except for the truth file) for every
    name in :data:`MDC_FILES`.
    """
    from dmpreserve.mdc.generate import MdcOutputs, generate

    out = tmp_path_factory.mktemp("mdc")
    generate(small_config, MdcOutputs(**{k: str(out / f"{k}.parquet") for k in MDC_FILES}))
    return out


@pytest.fixture(scope="session")
def pipeline_dir(tmp_path_factory, mdc_dir, small_config_path) -> Path:
    """Directory with the outputs of ``dmpreserve select-part/select/mass-grid/backgrounds/signal/likelihood`` on
    ``mdc_dir``.

    Layout: ``selection/{selected.parquet,cutflow.csv,acceptance.csv,exposure.json}``,
    ``selection/parts/{part-0.parquet,part-0.json,part-0_cutflow.json}`` (the science run as one part),
    ``backgrounds/{templates.json,summary.csv}``,
    ``response/{response_nr.json,response_er.json}`` (ER lines :data:`ER_LINES`),
    ``signal/{mass_grid.json,signal.json,spectra.csv}`` (SI mass grid of the configuration),
    ``likelihood/{BkgOnly.json,patchset.json}``.
    """
    from dmpreserve.cli import main

    r = tmp_path_factory.mktemp("results")
    m = mdc_dir
    c = str(small_config_path)
    steps = [
        [
            "select-part",
            "--config",
            c,
            "--science",
            f"{m}/science.parquet",
            "--selected",
            f"{r}/selection/parts/part-0.parquet",
            "--cutflow",
            f"{r}/selection/parts/part-0_cutflow.json",
        ],
        [
            "select",
            "--config",
            c,
            "--parts",
            f"{r}/selection/parts/part-0.parquet",
            "--part-cutflows",
            f"{r}/selection/parts/part-0_cutflow.json",
            "--sim-nr",
            f"{m}/sim_nr.parquet",
            "--selected",
            f"{r}/selection/selected.parquet",
            "--cutflow",
            f"{r}/selection/cutflow.csv",
            "--acceptance",
            f"{r}/selection/acceptance.csv",
            "--exposure",
            f"{r}/selection/exposure.json",
        ],
        ["mass-grid", "--config", c, "-o", f"{r}/signal/mass_grid.json"],
        [
            "response",
            "--config",
            c,
            "--sim-nr",
            f"{m}/sim_nr.parquet",
            "--selected-sidecar",
            f"{r}/selection/selected.json",
            "--response-nr",
            f"{r}/response/response_nr.json",
            "--response-er",
            f"{r}/response/response_er.json",
            "--er-lines",
            ER_LINES,
            "--er-events-per-line",
            str(ER_EVENTS_PER_LINE),
            "--no-progress",
        ],
        [
            "signal",
            "--config",
            c,
            "--response-nr",
            f"{r}/response/response_nr.json",
            "--exposure",
            f"{r}/selection/exposure.json",
            "--mass-grid",
            f"{r}/signal/mass_grid.json",
            "--signal",
            f"{r}/signal/signal.json",
            "--spectra",
            f"{r}/signal/spectra.csv",
        ],
        [
            "backgrounds",
            "--config",
            c,
            "--science",
            f"{m}/science.parquet",
            "--calib-er",
            f"{m}/calib_er.parquet",
            "--response-nr",
            f"{r}/response/response_nr.json",
            "--response-er",
            f"{r}/response/response_er.json",
            "--isolated-s1",
            f"{m}/isolated_s1.parquet",
            "--isolated-s2",
            f"{m}/isolated_s2.parquet",
            "--selected",
            f"{r}/selection/selected.parquet",
            "--exposure",
            f"{r}/selection/exposure.json",
            "--templates",
            f"{r}/backgrounds/templates.json",
            "--summary",
            f"{r}/backgrounds/summary.csv",
        ],
        [
            "likelihood",
            "--config",
            c,
            "--templates",
            f"{r}/backgrounds/templates.json",
            "--signal",
            f"{r}/signal/signal.json",
            "--workspace",
            f"{r}/likelihood/BkgOnly.json",
            "--patchset",
            f"{r}/likelihood/patchset.json",
        ],
    ]
    for argv in steps:
        status = main(argv)
        assert status == 0, f"dmpreserve {argv[0]} failed with exit status {status}"
    return r


@pytest.fixture(scope="module")
def workspace(pipeline_dir: Path) -> dict[str, Any]:
    """The background-only workspace of ``pipeline_dir`` (read once per test module)."""
    return read_json(pipeline_dir / "likelihood" / "BkgOnly.json")


@pytest.fixture(scope="module")
def patchset(pipeline_dir: Path) -> dict[str, Any]:
    """The signal patchset of ``pipeline_dir`` (read once per test module)."""
    return read_json(pipeline_dir / "likelihood" / "patchset.json")
