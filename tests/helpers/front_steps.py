"""The CLI steps from mock data to background templates (select-part, select, response, backgrounds), as argv lists.

Shared by the background tests that run them on their own configuration; the session pipeline of the
conftest (``pipeline_dir``) runs the whole chain.
"""

from __future__ import annotations

from pathlib import Path


def select_steps(m: Path, c: str, r: Path) -> list[list[str]]:
    """select-part and select of the mock science run ``m/science.parquet`` into ``r``."""
    return [
        ["select-part", "--config", c, "--science", f"{m}/science.parquet"]
        + ["--selected", f"{r}/part.parquet", "--cutflow", f"{r}/part_cutflow.json"],
        ["select", "--config", c, "--parts", f"{r}/part.parquet", "--part-cutflows", f"{r}/part_cutflow.json"]
        + ["--sim-nr", f"{m}/sim_nr.parquet", "--selected", f"{r}/selected.parquet", "--cutflow", f"{r}/cutflow.csv"]
        + ["--acceptance", f"{r}/acceptance.csv", "--exposure", f"{r}/exposure.json"],
    ]


def response_and_backgrounds(m: Path, c: str, r: Path, out: Path, er_args: list[str]) -> list[list[str]]:
    """response (NR and ER, ``er_args``: its ER-line options) and backgrounds into ``out``, from select's ``r``."""
    responses = ["--response-nr", f"{out}/response_nr.json", "--response-er", f"{out}/response_er.json"]
    return [
        ["response", "--config", c, "--sim-nr", f"{m}/sim_nr.parquet", "--selected-sidecar", f"{r}/selected.json"]
        + responses
        + [*er_args, "--no-progress"],
        ["backgrounds", "--config", c, "--science", f"{m}/science.parquet", "--calib-er", f"{m}/calib_er.parquet"]
        + ["--isolated-s1", f"{m}/isolated_s1.parquet", "--isolated-s2", f"{m}/isolated_s2.parquet"]
        + responses
        + ["--selected", f"{r}/selected.parquet", "--exposure", f"{r}/exposure.json"]
        + ["--templates", f"{out}/templates.json", "--summary", f"{out}/summary.csv"],
    ]
