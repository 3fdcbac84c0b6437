"""Reinterpretation kit from a real pipeline run (test configuration), closure tests and the RECAST rerun.

One Snakemake run of the limits and kit targets on ``tests/data/test_config.yaml`` in a scratch copy
(about half a minute), then: kit validity and checksums, closure of the default SI model, scaling of a
user spectrum, other built-in models, and ``snakemake -n --config signal_model=...`` planning only the
rules from resolve_config on (the model sizes the limits scatter).
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
import yaml
from reliability_support import copy_workflow, env, snakemake_argv

from dmpreserve.cli import main
from dmpreserve.errors import InvalidData
from dmpreserve.reinterpret.kit import load_kit
from dmpreserve.reinterpret.verify import compare, read_curve

REPO = Path(__file__).resolve().parents[2]
TARGETS = ("results/limits/limits.csv", "results/reinterpretation/kit.json")
pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        snakemake_argv(*args), cwd=workdir, env=env(), capture_output=True, text=True, timeout=900, check=False
    )


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    work = copy_workflow(tmp_path_factory.mktemp("wf_reinterpret") / "repo")
    # asymptotic limits keep this fixture fast; the toy closure runs in .ci/stages/verify.sh
    cfg_path = work / "tests/data/test_config.yaml"
    cfg = yaml.safe_load(cfg_path.read_text())
    cfg["statistics"] = dict(cfg.get("statistics") or {}, neyman_threshold="asymptotic")
    cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    proc = _snakemake(work, *TARGETS)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return work


def test_kit_is_complete_and_checked(run_dir: Path, tmp_path: Path) -> None:
    kit_dir = run_dir / "results" / "reinterpretation"
    kit = load_kit(kit_dir)
    assert set(kit.manifest["files"]) >= {
        "BkgOnly.json",
        "response_nr.json",
        "response_er.json",
        "efficiency.csv",
        "limits.csv",
    }
    with tarfile.open(kit_dir / "kit.tar.gz") as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == sorted(m.name for m in members)
    assert all(m.mtime == 0 and m.uid == 0 and m.gid == 0 for m in members)
    assert "reinterpretation/kit.json" in {m.name for m in members}
    copy = tmp_path / "kit"
    shutil.copytree(kit_dir, copy)
    (copy / "response_nr.json").write_text((copy / "response_nr.json").read_text().replace("0.", "0.0", 1))
    with pytest.raises(InvalidData) as err:
        load_kit(copy)
    assert err.value.field == "files.response_nr.json.sha256"


def test_closure_default_model_reproduces_pipeline_limits(run_dir: Path, tmp_path: Path) -> None:
    """With the kit's toy settings (as the pipeline ran) the limits agree within 1%; asymptotic is the default."""
    kit = str(run_dir / "results/reinterpretation")
    model = str(REPO / "workflow/config/signal_model.yaml")
    out = tmp_path / "si"
    toys = ["--toys"] if load_kit(kit).manifest["statistics_settings"]["neyman_threshold"] == "toys" else []
    assert main(["reinterpret", "--kit", kit, "--model", model, "-o", str(out), "--no-progress", *toys]) == 0
    pipeline = run_dir / "results/limits/limits.csv"
    for column in ("limit_cm2", "expected_cm2"):
        rows = compare(read_curve(pipeline, column=column), read_curve(out / "limits.csv", column=column), rtol=0.01)
        assert len(rows) == 4 and all(r.ok for r in rows)
    for name in ("limits.json", "patchset.json", "limits.png", "hepdata_limits.yaml"):
        assert (out / name).stat().st_size > 0
    # the kit's method, recorded as the pipeline records it; the same columns (toy columns with toys)
    recorded = json.loads((run_dir / "results/limits/limits.json").read_text())["statistics"]
    assert json.loads((out / "limits.json").read_text())["statistics"] == recorded
    header = (out / "limits.csv").read_text().splitlines()[0]
    assert header == pipeline.read_text().splitlines()[0]
    for column in ("limit_unconstrained_cm2", "limit_cls_cm2"):  # both conventions, also in the HEPData table
        rows = compare(read_curve(pipeline, column=column), read_curve(out / "limits.csv", column=column), rtol=0.01)
        assert len(rows) == 4 and all(r.ok for r in rows)
    table = (out / "hepdata_limits.yaml").read_text()
    assert "Neyman construction, PLR t~mu" in table and "CLs (asymptotic, q~mu)" in table
    asym = tmp_path / "asym"
    assert main(["reinterpret", "--kit", kit, "--model", model, "-o", str(asym), "--no-progress"]) == 0
    assert "asymptotic" in json.loads((asym / "limits.json").read_text())["method"]
    rows = compare(read_curve(pipeline), read_curve(asym / "limits.csv"), rtol=0.5)
    assert all(r.ok for r in rows)  # toys vs asymptotic thresholds: same order of magnitude


def _spectrum(run_dir: Path, path: Path, *, mass: str, factor: float) -> None:
    with open(run_dir / "results/signal/spectra.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["mass_gev"] == mass]
    assert rows
    path.write_text(
        "mass_gev,energy_kev,dr_de\n"
        + "".join(f"{r['mass_gev']},{r['energy_kev']},{float(r['dr_de']) * factor!r}\n" for r in rows)
    )


def test_spectrum_scaled_by_k_divides_the_limit_by_k(run_dir: Path, tmp_path: Path) -> None:
    kit = str(run_dir / "results/reinterpretation")
    limits = {}
    for k in (1.0, 7.0):
        spec = tmp_path / f"s{k}.csv"
        _spectrum(run_dir, spec, mass="46.4159", factor=k)
        out = tmp_path / f"o{k}"
        assert main(["reinterpret", "--kit", kit, "--spectrum", str(spec), "-o", str(out), "--no-progress"]) == 0
        limits[k] = read_curve(out / "limits.csv").limit[0]
    assert limits[7.0] * 7.0 == pytest.approx(limits[1.0], rel=0.01)
    # the tabulated SI spectrum (200 points) also reproduces the pipeline's limit at that mass
    pipeline = read_curve(run_dir / "results/limits/limits.csv")
    assert limits[1.0] == pytest.approx(float(pipeline.limit[pipeline.mass_gev == 46.4159][0]), rel=0.03)


@pytest.mark.parametrize(
    "model, masses", [("sd_neutron", "50"), ("light_mediator", "50"), ("inelastic", "200"), ("er_line", "5e-6,1.5e-5")]
)
def test_builtin_models_run(run_dir: Path, tmp_path: Path, model: str, masses: str) -> None:
    out = tmp_path / model
    assert (
        main(
            [
                "reinterpret",
                "--kit",
                str(run_dir / "results/reinterpretation"),
                "--model",
                str(REPO / f"workflow/config/models/{model}.yaml"),
                "--masses",
                masses,
                "-o",
                str(out),
                "--no-progress",
            ]
        )
        == 0
    )
    doc = json.loads((out / "limits.json").read_text())
    assert len(doc["limits"]) == len(masses.split(","))
    assert all(r["limit_cm2"] > 0 for r in doc["limits"])
    if model == "er_line":
        assert doc["units"]["limit_cm2"].startswith("events/(t yr)")


def test_recast_rerun_plans_only_downstream_rules(run_dir: Path) -> None:
    assert "Nothing to be done" in _snakemake(run_dir, "-n", *TARGETS).stdout
    proc = _snakemake(run_dir, "-n", *TARGETS, "--config", "signal_model=workflow/config/models/sd_neutron.yaml")
    assert proc.returncode == 0, proc.stderr[-3000:]
    stats = proc.stdout.split("Job stats:")[1].split("\n\n")[0]
    planned = {m.group(1) for m in re.finditer(r"^(\w+)\s+\d+\s*$", stats, re.M)} - {"total"}
    assert {"mass_grid", "signal", "likelihood", "limits", "reinterpretation_kit"} <= planned, stats
    # the model is an input of mass_grid and signal only (not of the resolved configuration): the steps
    # upstream of the signal model are kept
    assert not planned & {"resolve_config", "mdc", "select", "backgrounds", "response"}, stats
    # the model's own mass grid (25 masses) sizes the limits scatter, not the test config's 4 masses
    assert re.search(r"^limits_point\s+25\s*$", stats, re.M), stats


def test_kit_rebuild_is_byte_identical(run_dir: Path, tmp_path: Path) -> None:
    r = run_dir / "results"
    argv = [
        "kit",
        "--config",
        str(r / "config.resolved.yaml"),
        "--signal-model",
        str(run_dir / "workflow/config/signal_model.yaml"),
        "--workspace",
        str(r / "likelihood/BkgOnly.json"),
        "--response",
        str(r / "response/response_nr.json"),
        "--response-er",
        str(r / "response/response_er.json"),
        "--templates",
        str(r / "backgrounds/templates.json"),
        "--acceptance",
        str(r / "selection/acceptance.csv"),
        "--limits",
        str(r / "limits/limits.csv"),
        "--outdir",
        str(tmp_path / "kit"),
    ]
    assert main(argv) == 0
    for name in ("kit.tar.gz", "kit.json", "response_er.json"):
        assert (tmp_path / "kit" / name).read_bytes() == (r / "reinterpretation" / name).read_bytes(), name
    # the kit only assembles: the ER line response is the response step's, the kit simulates nothing
    assert (r / "reinterpretation/response_er.json").read_bytes() == (r / "response/response_er.json").read_bytes()
    with pytest.raises(SystemExit) as err:  # --er-lines moved to the response step
        main([*argv[:-2], "--outdir", str(tmp_path / "bad"), "--er-lines", "5:1:1"])
    assert err.value.code == 2
