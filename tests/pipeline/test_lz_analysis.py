"""Integration: LZ WS2022 from its released events through the real DAG, up to the likelihood.

Reads ../shared/reference/lz_ws2022 (LZ's release via mhliu0001/diamx; skipped with the reason when it is
absent).  A scratch copy of the workflow sits beside a link to ../shared, as in the checkout, and runs the
analysis configuration (standalone) with a smaller NR simulation; then: the standalone configuration kept
none of the mock default's components, the released table became 335 reduced events with LZ's live time
and exposure, the background-only workspace encodes LZ's Table I expected counts (arXiv:2207.03764) per
component, the signal carries the released efficiency band, and the likelihood passes pyhf's schema; the
unbinned likelihood's fine templates (rule unbinned_templates) hold the workspace's samples, every mass of the
signal grid and the 335 events, and give an unbinned model of one mass.
The full run with limits is the CI verify stage (step 5), ~4 min.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml
from reliability_support import env

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
LZ = SHARED / "reference" / "lz_ws2022"
CONFIG = "workflow/analyses/lz_ws2022/config.yaml"
OUT = "results/lz_ws2022"

if not (LZ / "lz_ws2022_wimp_data.csv").is_file():
    pytest.skip(
        f"LZ WS2022 release not found at {LZ} (LZ's events and efficiencies via mhliu0001/diamx; "
        "see shared/reference/README.md)",
        allow_module_level=True,
    )

#: arXiv:2207.03764, Table I, "Expected events" (as in workflow/analyses/lz_ws2022/published_yields.csv).
TABLE_I_EXPECTED = {
    "beta_detector_er": 215.0,
    "solar_nu_er": 27.1,
    "xe127": 9.2,
    "xe124": 5.0,
    "xe136": 15.1,
    "cevns_8b": 0.14,
    "accidentals": 1.2,
}


@pytest.fixture(scope="module")
def lz_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("lz")
    work = root / "repo"
    work.mkdir()
    (root / "shared").symlink_to(SHARED.resolve())
    for item in ("Snakefile", "workflow", "schemas"):
        src = REPO / item
        subprocess.run(["cp", "-r", str(src), str(work / item)], check=True)
    # a smaller NR simulation, layered on the standalone configuration by a second --configfile
    override = root / "smaller_simulation.yaml"
    override.write_text(
        "mdc:\n  simulation: {nr_events: 60000, nr_energy_min_kev: 0.5, nr_energy_max_kev: 100.0}\n", encoding="utf-8"
    )
    exe = Path(env()["PATH"].split(":")[0]) / "snakemake"
    argv = [
        str(exe),
        f"{OUT}/likelihood/BkgOnly.json",
        f"{OUT}/likelihood/patchset.json",
        f"{OUT}/likelihood/unbinned_templates.h5",
        "--cores",
        "2",
        "--configfile",
        CONFIG,
        str(override),
    ]
    proc = subprocess.run(argv, cwd=work, env=env(), capture_output=True, text=True, timeout=900, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return work / OUT


def test_standalone_configuration_replaces_the_default(lz_run: Path) -> None:
    resolved = yaml.safe_load((lz_run / "config.resolved.yaml").read_text())
    assert set(resolved["backgrounds"]["components"]) == {*TABLE_I_EXPECTED, "ar37", "detector_neutrons"}
    assert [c["kind"] for c in resolved["selection"]["cuts"]] == ["roi", "roi"]
    assert resolved["mdc"]["simulation"]["nr_events"] == 60000  # a later --configfile still layers on it


def test_released_table_becomes_reduced_data(lz_run: Path) -> None:
    table = pq.read_table(lz_run / "inputs" / "science.parquet")
    meta = json.loads((lz_run / "inputs" / "science.json").read_text())
    raw = np.loadtxt(LZ / "lz_ws2022_wimp_data.csv", delimiter=",")
    assert table.num_rows == meta["n_events"] == 335
    np.testing.assert_allclose(table["cs1_phd"].to_numpy(), raw[:, 0], rtol=0, atol=0)
    np.testing.assert_allclose(np.log10(table["cs2_phd"].to_numpy()), raw[:, 1], rtol=1e-14)
    assert meta["live_time_s"] == 60 * 86400.0
    assert meta["detector"]["name"] == "LZ_WS2022"
    assert {c["name"] for c in meta["upstream_cuts"]} >= {"fiducial_drift", "fiducial_radius", "single_scatter"}
    manifest = json.loads((lz_run / "inputs" / "manifest.json").read_text())
    (entry,) = [f for f in manifest["inputs"]["science"]["files"] if f["name"] == "lz_ws2022_wimp_data.csv"]
    assert entry["sha256"] == entry["declared_sha256"]
    exposure = json.loads((lz_run / "selection" / "exposure.json").read_text())
    assert exposure["exposure_t_yr"] == pytest.approx(5.5 * 60 / 365.25, rel=1e-3)


def test_workspace_encodes_lz_table_one(lz_run: Path) -> None:
    import pyhf

    ws = json.loads((lz_run / "likelihood" / "BkgOnly.json").read_text())
    pyhf.schema.validate(ws, "workspace.json")
    (channel,) = ws["channels"]
    totals = {s["name"]: float(np.sum(s["data"])) for s in channel["samples"]}
    for name, expected in TABLE_I_EXPECTED.items():
        assert totals[name] == pytest.approx(expected, rel=1e-6), name
    assert sum(ws["observations"][0]["data"]) == 335


def test_signal_carries_the_released_efficiency_band(lz_run: Path) -> None:
    patchset = json.loads((lz_run / "likelihood" / "patchset.json").read_text())
    mods = [
        m
        for patch in patchset["patches"]
        for op in patch["patch"]
        for m in op["value"].get("modifiers", [])
        if m["name"] == "signal_efficiency"
    ]
    assert len(mods) == len(patchset["patches"])
    for m in mods:
        assert m["type"] == "normsys" and m["data"]["lo"] < 1.0 < m["data"]["hi"]
    curve = (lz_run / "inputs" / "efficiency_curve.csv").read_text().splitlines()
    assert curve[0] == "energy_kev,efficiency,efficiency_lo,efficiency_hi"
    assert float(curve[-1].split(",")[0]) == 100.0  # extend_flat_to_kev


def test_unbinned_templates_hold_the_workspace_samples_and_the_events(lz_run: Path) -> None:
    from dmpreserve.artifacts.unbinned import read_unbinned_templates
    from dmpreserve.stats.unbinned import build_unbinned_model

    templates = read_unbinned_templates(str(lz_run / "likelihood" / "unbinned_templates.h5"))
    ws = json.loads((lz_run / "likelihood" / "BkgOnly.json").read_text())
    patchset = json.loads((lz_run / "likelihood" / "patchset.json").read_text())
    assert set(templates.sample_names) == {s["name"] for s in ws["channels"][0]["samples"]}
    assert templates.masses_gev == tuple(sorted(p["metadata"]["values"][0] for p in patchset["patches"]))
    assert templates.observed_bins.size == 335
    assert templates.backgrounds.shape == (9, 154 * 182)
    model = build_unbinned_model(ws, patchset["patches"][5], templates)
    assert model.observed[1].sum() == 335 and model.n_gammas == 0
    np.testing.assert_allclose(
        model.nominal.sum(axis=1)[~model.signal_mask],
        [float(np.sum(s["data"])) for s in ws["channels"][0]["samples"]],
        rtol=1e-9,
    )
