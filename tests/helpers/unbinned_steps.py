"""The ``unbinned-templates`` step's configuration and command line on the session's small pipeline (shared by
tests/unit/test_unbinned_templates.py and tests/unit/reinterpret/test_unbinned_kit.py)."""

from __future__ import annotations

from pathlib import Path

import yaml

from conftest import ER_EVENTS_PER_LINE


def unbinned_config(tmp_path: Path, small_config_path: Path, bins: tuple[int, int], smoothing: float) -> Path:
    doc = yaml.safe_load(small_config_path.read_text(encoding="utf-8"))
    doc["statistics"]["neyman_threshold"] = "asymptotic"
    doc["likelihood"]["unbinned"] = {
        "binning": {"cs1_phd": {"bins": bins[0]}, "log10_cs2": {"bins": bins[1]}},
        "smoothing_bins": smoothing,
        "er_events_per_line": ER_EVENTS_PER_LINE,  # the session's response step's (conftest)
    }
    path = tmp_path / f"config_{bins[0]}x{bins[1]}_{smoothing:g}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def unbinned_argv(config: Path, r: Path, m: Path, out: Path) -> list[str]:
    return [
        "unbinned-templates",
        "--config",
        str(config),
        "--science",
        f"{m}/science.parquet",
        "--calib-er",
        f"{m}/calib_er.parquet",
        "--isolated-s1",
        f"{m}/isolated_s1.parquet",
        "--isolated-s2",
        f"{m}/isolated_s2.parquet",
        "--sim-nr",
        f"{m}/sim_nr.parquet",
        "--response-er",
        f"{r}/response/response_er.json",
        "--selected",
        f"{r}/selection/selected.parquet",
        "--exposure",
        f"{r}/selection/exposure.json",
        "--mass-grid",
        f"{r}/signal/mass_grid.json",
        "-o",
        str(out),
        "--no-progress",
    ]
