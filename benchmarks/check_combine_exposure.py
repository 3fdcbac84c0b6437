"""Check of ``dmpreserve combine``: two independent mock-data runs vs one run of twice the exposure.

Runs the test configuration's chain (mdc, select, response, signal, backgrounds, likelihood; as the test
session's ``pipeline_dir``) three times -- seed A and seed B at the configured live time, and seed C at twice
the live time -- assembles a kit of each, combines A + B (``--asymptotic --no-halo-nuisances``) and compares
the combined limits with ``dmpreserve reinterpret`` of C, per mass: the median expected limit (the
sensitivity, which should agree up to the background model's run-to-run differences) and the observed one
(which also carries the data's fluctuations).  Prints a table and writes ``OUT/exposure_check.csv``.

    PYTHONPATH=src python benchmarks/check_combine_exposure.py OUT [--config tests/data/test_config.yaml]
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "tests" / "helpers"))

from pipeline_kit import assemble_si_kit  # noqa: E402

from conftest import ER_EVENTS_PER_LINE, ER_LINES, MDC_FILES, shrink  # noqa: E402
from dmpreserve.cli import main as cli  # noqa: E402


def run_chain(cfg_doc: dict, root: Path) -> Path:
    """The chain of the test session's pipeline on ``cfg_doc``; returns the kit directory."""
    from dmpreserve.config import config_from_dict
    from dmpreserve.mdc.generate import MdcOutputs, generate

    root.mkdir(parents=True, exist_ok=True)
    c = root / "config.yaml"
    c.write_text(yaml.safe_dump(cfg_doc, sort_keys=False))
    cfg = config_from_dict(cfg_doc, path=str(c))
    m, r = root / "mdc", root / "results"
    generate(cfg, MdcOutputs(**{k: str(m / f"{k}.parquet") for k in MDC_FILES}))
    steps = [
        ["select-part", "--config", str(c), "--science", f"{m}/science.parquet"]
        + ["--selected", f"{r}/parts/part-0.parquet", "--cutflow", f"{r}/parts/part-0_cutflow.json"],
        ["select", "--config", str(c), "--parts", f"{r}/parts/part-0.parquet"]
        + ["--part-cutflows", f"{r}/parts/part-0_cutflow.json", "--sim-nr", f"{m}/sim_nr.parquet"]
        + ["--selected", f"{r}/selected.parquet", "--cutflow", f"{r}/cutflow.csv"]
        + ["--acceptance", f"{r}/acceptance.csv", "--exposure", f"{r}/exposure.json"],
        ["mass-grid", "--config", str(c), "-o", f"{r}/mass_grid.json"],
        ["response", "--config", str(c), "--sim-nr", f"{m}/sim_nr.parquet", "--selected-sidecar", f"{r}/selected.json"]
        + ["--response-nr", f"{r}/response_nr.json", "--response-er", f"{r}/response_er.json"]
        + ["--er-lines", ER_LINES, "--er-events-per-line", str(ER_EVENTS_PER_LINE), "--no-progress"],
        ["signal", "--config", str(c), "--response-nr", f"{r}/response_nr.json", "--exposure", f"{r}/exposure.json"]
        + ["--mass-grid", f"{r}/mass_grid.json", "--signal", f"{r}/signal.json", "--spectra", f"{r}/spectra.csv"],
        ["backgrounds", "--config", str(c), "--science", f"{m}/science.parquet", "--calib-er", f"{m}/calib_er.parquet"]
        + ["--response-nr", f"{r}/response_nr.json", "--response-er", f"{r}/response_er.json"]
        + ["--isolated-s1", f"{m}/isolated_s1.parquet", "--isolated-s2", f"{m}/isolated_s2.parquet"]
        + ["--selected", f"{r}/selected.parquet", "--exposure", f"{r}/exposure.json"]
        + ["--templates", f"{r}/templates.json", "--summary", f"{r}/summary.csv"],
        ["likelihood", "--config", str(c), "--templates", f"{r}/templates.json", "--signal", f"{r}/signal.json"]
        + ["--workspace", f"{r}/BkgOnly.json", "--patchset", f"{r}/patchset.json"],
    ]
    for argv in steps:
        if cli(argv) != 0:
            raise SystemExit(f"dmpreserve {argv[0]} failed in {root}")
    return assemble_si_kit(
        root / "reinterpretation",
        config=cfg,
        workspace=r / "BkgOnly.json",
        patchset=r / "patchset.json",
        templates=r / "templates.json",
        response_nr=r / "response_nr.json",
        response_er=r / "response_er.json",
        acceptance=r / "acceptance.csv",
        workdir=r,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--config", default=str(REPO / "tests/data/test_config.yaml"))
    ap.add_argument("--masses", default="10,30,100,300,1000")
    ap.add_argument("--seeds", default="1001,2002,3004", help="seeds of runs A, B and C (the double exposure)")
    args = ap.parse_args()
    out = Path(args.out)
    base = shrink(yaml.safe_load(Path(args.config).read_text()))
    base["statistics"] = dict(base["statistics"], neyman_threshold="asymptotic")
    days = float(base["mdc"]["live_time_days"])
    kits = {}
    seeds = [int(s) for s in args.seeds.split(",")]
    for name, seed, live in (("run_a", seeds[0], days), ("run_b", seeds[1], days), ("run_c", seeds[2], 2 * days)):
        if (out / name / "reinterpretation" / "kit.json").is_file():  # reuse a finished run
            kits[name] = out / name / "reinterpretation"
            continue
        doc = copy.deepcopy(base)
        doc["seed"], doc["mdc"]["live_time_days"] = seed, live
        kits[name] = run_chain(doc, out / name)
    model = out / "si.yaml"
    model.write_text(f"model: si\nmasses_gev: [{args.masses}]\n")
    common = ["--model", str(model), "--asymptotic", "--no-progress"]
    assert (
        cli(
            ["combine", "--kit", str(kits["run_a"]), "--kit", str(kits["run_b"]), *common]
            + ["--no-halo-nuisances", "-o", str(out / "combined")]
        )
        == 0
    )
    assert cli(["reinterpret", "--kit", str(kits["run_c"]), *common, "-o", str(out / "double")]) == 0
    comb = np.genfromtxt(out / "combined/combined_limits.csv", delimiter=",", names=True)
    dbl = np.genfromtxt(out / "double/limits.csv", delimiter=",", names=True)
    rows = []
    print(f"{'mass':>8} {'exp A+B':>11} {'exp 2x':>11} {'ratio':>7} {'obs A+B':>11} {'obs 2x':>11} {'ratio':>7}")
    for i, mass in enumerate(comb["mass_gev"]):
        e1, e2 = comb["expected_cm2"][i], dbl["expected_cm2"][i]
        o1, o2 = comb["limit_unconstrained_cm2"][i], dbl["limit_unconstrained_cm2"][i]
        rows.append((mass, e1, e2, e1 / e2, o1, o2, o1 / o2))
        print(f"{mass:8.4g} {e1:11.4g} {e2:11.4g} {e1 / e2:7.3f} {o1:11.4g} {o2:11.4g} {o1 / o2:7.3f}")
    from dmpreserve.files import write_csv

    write_csv(
        out / "exposure_check.csv",
        (
            "mass_gev",
            "expected_ab_cm2",
            "expected_2x_cm2",
            "expected_ratio",
            "observed_ab_cm2",
            "observed_2x_cm2",
            "observed_ratio",
        ),
        rows,
    )


if __name__ == "__main__":
    main()
