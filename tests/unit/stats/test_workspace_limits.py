"""Tests of dmpreserve.stats.workspace, dmpreserve.stats.limits and dmpreserve.stats.fit, cross-checked with
pyhf's own CLI."""

from __future__ import annotations

import copy
import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyhf
import pytest
from pyhf_reference import patchset_for, without_staterror

from dmpreserve.artifacts.signal_templates import read_signal
from dmpreserve.artifacts.templates import read_templates
from dmpreserve.errors import InvalidWorkspace
from dmpreserve.files import read_json
from dmpreserve.schema import validate
from dmpreserve.stats.fit import fit_background_only
from dmpreserve.stats.limits import LIMIT_COLUMNS, MassLimit, compute_limits
from dmpreserve.stats.workspace import (
    CHANNEL,
    POI,
    apply_patch,
    build_patchset,
    build_workspace,
    patch_name,
    validate_patchset,
    validate_workspace,
)

#: A mass of the test configuration's grid (10 .. 1000 GeV, 4 masses).
MASS_GEV = 46.4159


def _pyhf_cli() -> list[str]:
    """The pyhf command line of the running interpreter's environment."""
    script = Path(sys.executable).parent / "pyhf"
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from pyhf.cli import cli; sys.exit(cli())"]


def _pyhf(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*_pyhf_cli(), *args], capture_output=True, text=True, cwd=cwd, timeout=300, check=False)


@pytest.fixture(scope="module")
def ws_path(pipeline_dir: Path) -> Path:
    return pipeline_dir / "likelihood" / "BkgOnly.json"


@pytest.fixture(scope="module")
def ps_path(pipeline_dir: Path) -> Path:
    return pipeline_dir / "likelihood" / "patchset.json"


@pytest.fixture(scope="module")
def limit(workspace, patchset) -> MassLimit:
    (result,) = compute_limits(workspace, patchset, cl=0.9, masses_gev=[MASS_GEV], progress=False)
    return result


@pytest.fixture(scope="module")
def reference(workspace, patchset, tmp_path_factory) -> tuple[dict[str, Any], dict[str, Any], Path, Path, MassLimit]:
    """Workspace, patchset (and their files) without staterror, and our limit on them: the side of the checks
    against pyhf's own fits (tests/helpers/pyhf_reference.py)."""
    ws = without_staterror(workspace)
    ps = patchset_for(patchset, ws)
    d = tmp_path_factory.mktemp("pyhf_reference")
    (d / "BkgOnly.json").write_text(json.dumps(ws), encoding="utf-8")
    (d / "patchset.json").write_text(json.dumps(ps), encoding="utf-8")
    (result,) = compute_limits(ws, ps, cl=0.9, masses_gev=[MASS_GEV], progress=False)
    return ws, ps, d / "BkgOnly.json", d / "patchset.json", result


def _patch(patchset: dict[str, Any], mass_gev: float) -> dict[str, Any]:
    (p,) = [p for p in patchset["patches"] if np.isclose(p["metadata"]["values"][0], mass_gev, rtol=1e-4)]
    return p


# ---------------------------------------------------------------------------------- workspace


def test_workspace_validates_and_matches_templates(workspace, pipeline_dir: Path) -> None:
    pyhf.schema.validate(workspace, "workspace.json")
    validate_workspace(workspace)
    templates = read_json(pipeline_dir / "backgrounds" / "templates.json")
    ws = pyhf.Workspace(workspace)
    model = ws.model(poi_name=None)
    assert model.config.channels == [CHANNEL]
    assert sorted(model.config.samples) == sorted(templates["components"])
    np.testing.assert_array_equal(ws.observations[CHANNEL], np.asarray(templates["observed"]).ravel())
    assert ws.get_measurement()["config"]["poi"] == POI
    for sample in workspace["channels"][0]["samples"]:
        comp = templates["components"][sample["name"]]
        np.testing.assert_allclose(sample["data"], np.asarray(comp["template"]).ravel())  # k = i * n2 + j
        mods = {m["type"]: m for m in sample["modifiers"]}
        rel = comp["uncertainty_events"] / comp["expected_events"]
        kind = comp["constraint"]["type"]
        if kind == "lognormal":
            assert mods["normsys"]["data"]["hi"] == pytest.approx(1 + rel)
            assert mods["normsys"]["data"]["hi"] * mods["normsys"]["data"]["lo"] == pytest.approx(1.0)
        elif kind == "gaussian":
            data = np.asarray(sample["data"])
            np.testing.assert_allclose(mods["histosys"]["data"]["hi_data"], data * (1 + rel))
            np.testing.assert_allclose(mods["histosys"]["data"]["lo_data"], data * (1 - rel))
        else:
            assert kind == "free" and mods["normfactor"]["name"] == f"rate_{sample['name']}"
        # the per-bin statistical uncertainty of finite-sample shapes (absolute, events)
        if "stat_err" in comp:
            np.testing.assert_allclose(mods["staterror"]["data"], np.asarray(comp["stat_err"]).ravel())
        else:
            assert "staterror" not in mods
        assert len(mods) == len(sample["modifiers"])
    # the background-only expectation is the sum of the templates
    expected = model.expected_actualdata(model.config.suggested_init())
    total = sum(np.asarray(c["template"]).ravel() for c in templates["components"].values())
    np.testing.assert_allclose(expected, total, rtol=1e-9)


def test_build_workspace_rejects_bad_templates(pipeline_dir: Path) -> None:
    templates = read_templates(pipeline_dir / "backgrounds" / "templates.json")
    wall = templates.components["wall"]
    negative = np.array(wall.template, float, copy=True)
    negative[0, 0] = -1.0
    bad = dataclasses.replace(
        templates, components={**templates.components, "wall": dataclasses.replace(wall, template=negative)}
    )
    with pytest.raises(InvalidWorkspace) as info:
        build_workspace(bad, poi_bounds=(0.0, 50.0))
    assert info.value.field == "components.wall.template"
    ws = build_workspace(templates, poi_bounds=(0.0, 50.0))
    assert ws["measurements"][0]["config"]["parameters"][0]["bounds"] == [[0.0, 50.0]]


def test_workspace_schema_violation_is_invalid_workspace(workspace, tmp_path: Path) -> None:
    bad = copy.deepcopy(workspace)
    del bad["observations"]
    with pytest.raises(InvalidWorkspace) as info:
        validate_workspace(bad, path=str(tmp_path / "ws.json"))
    assert str(tmp_path / "ws.json") in str(info.value)


# ----------------------------------------------------------------------------------- patchset


def test_patchset_validates_and_verifies(workspace, patchset, small_config, pipeline_dir: Path) -> None:
    ps = pyhf.PatchSet(patchset)
    ps.verify(pyhf.Workspace(workspace))
    validate_patchset(patchset, workspace)
    signal = read_json(pipeline_dir / "signal" / "signal.json")
    assert [p.values[0] for p in ps.patches] == signal["masses_gev"]
    assert [p.name for p in ps.patches] == [patch_name(m) for m in small_config.masses_gev]
    assert patchset["metadata"]["references"]["hepdata"] == small_config["likelihood"]["inspire_id"]
    for meta, ref in zip((p["metadata"] for p in patchset["patches"]), signal["reference_cross_section_cm2"]):
        assert meta["reference_cross_section_cm2"] == ref


def test_pyhf_cli_verifies_patchset(ws_path: Path, ps_path: Path, tmp_path: Path) -> None:
    out = _pyhf("patchset", "verify", str(ws_path), str(ps_path), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "All good" in out.stdout


def test_tampered_workspace_fails_verification(workspace, patchset, tmp_path: Path, ps_path: Path) -> None:
    tampered = copy.deepcopy(workspace)
    tampered["observations"][0]["data"][0] += 1.0
    validate_workspace(tampered)  # still a valid workspace, just not the one the patchset was made for
    with pytest.raises(InvalidWorkspace) as info:
        validate_patchset(patchset, tampered, path=str(ps_path))
    assert info.value.field == "$.metadata.digests"
    assert str(ps_path) in str(info.value)
    with pytest.raises(pyhf.exceptions.PatchSetVerificationError):
        pyhf.PatchSet(patchset).verify(pyhf.Workspace(tampered))
    bad_ws = tmp_path / "tampered.json"
    bad_ws.write_text(json.dumps(tampered))
    out = _pyhf("patchset", "verify", str(bad_ws), str(ps_path), cwd=tmp_path)
    assert out.returncode != 0


def test_tampered_patchset_digest_fails(workspace, patchset) -> None:
    bad = copy.deepcopy(patchset)
    bad["metadata"]["digests"]["sha256"] = "0" * 64
    with pytest.raises(InvalidWorkspace):
        validate_patchset(bad, workspace)
    bad = copy.deepcopy(patchset)
    del bad["metadata"]["labels"]
    with pytest.raises(InvalidWorkspace, match="not a valid pyhf patchset"):
        validate_patchset(bad)


def test_build_patchset_rejects_wrong_bin_count(workspace, pipeline_dir: Path) -> None:
    signal = read_signal(pipeline_dir / "signal" / "signal.json")
    bad = dataclasses.replace(signal, templates=np.asarray(signal.templates)[:, :-1])
    with pytest.raises(InvalidWorkspace, match="bins"):
        build_patchset(workspace, bad, inspire_id="ins0000000")


def test_patches_are_named_after_the_signal_model(workspace, pipeline_dir: Path) -> None:
    signal = read_signal(pipeline_dir / "signal" / "signal.json")
    assert signal.model_name == "si"
    si = build_patchset(workspace, signal, inspire_id="ins0000000")
    assert si["metadata"]["name"] == "wimp_si" and si["patches"][0]["metadata"]["name"].startswith("wimp_si_m")
    sd = build_patchset(workspace, dataclasses.replace(signal, model_name="sd_neutron"), inspire_id="ins0000000")
    assert sd["metadata"]["name"] == "wimp_sd_neutron"
    assert [p["metadata"]["name"] for p in sd["patches"]] == [patch_name(m, "sd_neutron") for m in signal.masses_gev]
    assert "sd_neutron signal hypotheses" in sd["metadata"]["description"]


def test_apply_patch(workspace, patchset) -> None:
    spec = apply_patch(workspace, patchset, patch_name(MASS_GEV))
    names = [s["name"] for s in spec["channels"][0]["samples"]]
    assert names[-1] == "signal" and len(names) == len(workspace["channels"][0]["samples"]) + 1
    assert len(workspace["channels"][0]["samples"]) == 5  # the input is not modified
    model = pyhf.Workspace(spec).model()
    assert model.config.poi_name == POI
    with pytest.raises(InvalidWorkspace, match="no patch named"):
        apply_patch(workspace, patchset, "wimp_si_m33_GeV")


@pytest.mark.parametrize(
    ("mass", "name"),
    [
        (46.4159, "wimp_si_m46p4159_GeV"),
        (1000.0, "wimp_si_m1000_GeV"),
        (6.0, "wimp_si_m6_GeV"),
        (12.5893, "wimp_si_m12p5893_GeV"),
    ],
)
def test_patch_name(mass: float, name: str) -> None:
    assert patch_name(mass) == name


# ------------------------------------------------------------------------------------- limits


def test_limit_result(limit: MassLimit, patchset) -> None:
    ref = _patch(patchset, MASS_GEV)["metadata"]["reference_cross_section_cm2"]
    assert limit.mass_gev == MASS_GEV
    assert limit.reference_cross_section_cm2 == ref
    assert 0 < limit.mu_limit < 50
    row = limit.row()
    assert tuple(row) == LIMIT_COLUMNS
    assert row["limit_cm2"] == pytest.approx(limit.mu_limit * ref, rel=1e-12)
    assert row["expected_cm2"] == pytest.approx(limit.mu_expected[2] * ref, rel=1e-12)
    assert row["limit_cls_cm2"] == pytest.approx(limit.mu_cls * ref, rel=1e-12)
    assert row["limit_cm2"] == row["limit_pcl_cm2"] == max(row["limit_unconstrained_cm2"], row["pcl_threshold_cm2"])


def test_expected_band_ordering(limit: MassLimit) -> None:
    for band in (limit.mu_expected, limit.mu_cls_expected):
        m2, m1, med, p1, p2 = band
        assert 0 < m2 < m1 < med < p1 < p2
    row = limit.row()
    assert (
        row["expected_m2sigma_cm2"]
        < row["expected_m1sigma_cm2"]
        < row["expected_cm2"]
        < row["expected_p1sigma_cm2"]
        < row["expected_p2sigma_cm2"]
    )


def test_pyhf_cli_cls_is_010_at_the_limit(reference, tmp_path: Path) -> None:
    """An independent check with pyhf's CLI: the observed CLs at mu = the reported 90% CL CLs limit is 0.10."""
    _, _, ws_path, ps_path, limit = reference
    name = patch_name(MASS_GEV)
    patch_file = tmp_path / "patch.json"
    out = _pyhf("patchset", "extract", str(ps_path), "--name", name, "--output-file", str(patch_file), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert json.loads(patch_file.read_text())[0]["value"]["name"] == "signal"
    out = _pyhf("cls", str(ws_path), "--patch", str(patch_file), "--test-poi", repr(limit.mu_cls), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    cls = json.loads(out.stdout)
    assert cls["CLs_obs"] == pytest.approx(0.10, abs=0.01)
    # and the limit is not at a 95% CL (CLs = 0.05) by mistake
    assert abs(cls["CLs_obs"] - 0.05) > 0.03


def test_expected_limits_have_cls_exp_010(reference) -> None:
    """At each expected-band signal strength the matching expected CLs is 0.10."""
    workspace, patchset, _, _, limit = reference
    pyhf.set_backend("numpy", pyhf.optimize.scipy_optimizer())
    ws = pyhf.Workspace(workspace)
    model = ws.model(
        patches=[pyhf.patchset.Patch(_patch(patchset, MASS_GEV))],
        modifier_settings={"normsys": {"interpcode": "code4"}, "histosys": {"interpcode": "code4p"}},
    )
    data = ws.data(model)
    for k, mu in enumerate(limit.mu_cls_expected):
        _, cls_exp = pyhf.infer.hypotest(mu, data, model, test_stat="qtilde", return_expected_set=True)
        assert float(cls_exp[k]) == pytest.approx(0.10, abs=0.005), k


def test_compute_limits_selects_masses(workspace, patchset) -> None:
    assert compute_limits(workspace, patchset, masses_gev=[33.0], progress=False) == []


def test_limit_outside_poi_bounds_is_refused(workspace, patchset) -> None:
    weak = copy.deepcopy(_patch(patchset, MASS_GEV))
    data = weak["patch"][0]["value"]["data"]
    weak["patch"][0]["value"]["data"] = [v * 1e-4 for v in data]
    from dmpreserve.stats.limits import limit_for_patch

    with pytest.raises(InvalidWorkspace, match="not bracketed"):
        limit_for_patch(workspace, weak, cl=0.9)


# ---------------------------------------------------------------------------------------- fit


def test_background_only_fit_pulls(workspace) -> None:
    doc = fit_background_only(workspace)
    validate(doc, "fit", path="bkgonly_fit.json")
    params = {p["name"]: p for p in doc["parameters"]}
    assert sorted(params) == sorted(f"norm_{c}" for c in ("er", "neutron", "cevns_8b", "accidental", "wall"))
    for name, p in params.items():
        assert p["prefit_value"] == 0.0 and p["prefit_error"] == 1.0, name
        assert np.isfinite(p["value"]) and 0 < p["error"] <= 1.5, name
        assert p["pull"] == pytest.approx((p["value"] - p["prefit_value"]) / p["prefit_error"])
        assert abs(p["pull"]) < 4, name
    assert np.isfinite(doc["twice_nll"])
    # the ER normalisation is constrained by ~250 events: the data pull it, and its post-fit error shrinks
    assert params["norm_er"]["error"] < 0.9
