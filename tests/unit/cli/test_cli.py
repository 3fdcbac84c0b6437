"""Tests of the ``dmpreserve`` command line: help, version, the spectrum tool and clean failures on bad input."""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

import dmpreserve
from dmpreserve.cli import build_parser, main
from dmpreserve.files import read_csv
from dmpreserve.physics.halo import StandardHalo
from dmpreserve.physics.wimp import rate_si

SRC = Path(dmpreserve.__file__).resolve().parents[1]


def _subcommands() -> list[str]:
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return sorted(sub.choices)


def _one_line_error(capsys: pytest.CaptureFixture, command: str) -> str:
    err = capsys.readouterr().err.strip()
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"dmpreserve {command}: error: ")
    assert "Traceback" not in err
    return lines[0]


# ------------------------------------------------------------------------------ help, version


def test_top_level_help(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "usage: dmpreserve" in out
    for name in ("mdc", "select", "backgrounds", "signal", "likelihood", "limits", "spectrum"):
        assert name in out
    assert "phd" in out and "keV" in out and "GeV" in out and "cm^2" in out


def test_all_expected_subcommands_exist() -> None:
    assert set(_subcommands()) >= {
        "validate-config",
        "mdc",
        "select",
        "backgrounds",
        "signal",
        "spectrum",
        "likelihood",
        "fit",
        "limits",
        "plots",
        "hepdata",
        "provenance",
    }


@pytest.mark.parametrize("command", _subcommands())
def test_subcommand_help_mentions_units(command: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert f"usage: dmpreserve {command}" in out
    assert "Units:" in out
    assert "keV" in out and "phd" in out
    # a default is shown only where it says something (not "None"/"False", not twice)
    flat = " ".join(out.split())
    assert "(default: None)" not in flat and "(default: False)" not in flat
    assert "%%" not in out  # descriptions are not %-formatted: a literal %% would show


def test_spectrum_help_names_units_of_each_option(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        main(["spectrum", "--help"])
    out = capsys.readouterr().out
    assert "[GeV/c^2]" in out and "[cm^2]" in out and "[keV]" in out and "[km/s]" in out


def test_version(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"dmpreserve {dmpreserve.__version__}"


def test_python_dash_m_version(tmp_path: Path) -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), *filter(None, [env.get("PYTHONPATH")])])
    out = subprocess.run(
        [sys.executable, "-m", "dmpreserve", "--version"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"dmpreserve {dmpreserve.__version__}"


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2
    assert "COMMAND" in capsys.readouterr().err


# ----------------------------------------------------------------------------------- spectrum


def test_spectrum_writes_csv(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "x.csv"
    assert main(["spectrum", "--mass", "50", "--cross-section", "1e-45", "--energies", "1:50:1", "-o", str(out)]) == 0
    assert out.read_text().splitlines()[0] == "energy_kev,dr_de"
    cols = read_csv(out, required=("energy_kev", "dr_de"))
    e = np.array([float(v) for v in cols["energy_kev"]])
    rate = np.array([float(v) for v in cols["dr_de"]])
    assert len(e) == len(rate) == 50
    np.testing.assert_array_equal(e, np.arange(1.0, 51.0))
    assert np.all(rate > 0) and np.all(np.isfinite(rate))
    assert np.all(np.diff(rate) < 0)  # falls with energy at 50 GeV
    halo = StandardHalo(rho0_gev_cm3=0.3, v0_km_s=238.0, v_esc_km_s=544.0, v_earth_km_s=250.5)
    np.testing.assert_allclose(rate, rate_si(e, mass_gev=50.0, cross_section_cm2=1e-45, halo=halo), rtol=1e-14)
    assert [p.name for p in tmp_path.iterdir()] == ["x.csv"]


def test_spectrum_scales_with_cross_section(tmp_path: Path) -> None:
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    assert main(["spectrum", "--mass", "30", "--cross-section", "1e-45", "--energies", "2:20:2", "-o", str(a)]) == 0
    assert main(["spectrum", "--mass", "30", "--cross-section", "4e-45", "--energies", "2:20:2", "-o", str(b)]) == 0
    ra = np.array([float(v) for v in read_csv(a, required=("dr_de",))["dr_de"]])
    rb = np.array([float(v) for v in read_csv(b, required=("dr_de",))["dr_de"]])
    np.testing.assert_allclose(rb, 4 * ra, rtol=1e-12)


BAD_SPECTRUM = [
    ("negative_mass", ["--mass=-50", "--cross-section", "1e-45", "--energies", "1:50:1"], "--mass"),
    ("zero_mass", ["--mass", "0", "--cross-section", "1e-45", "--energies", "1:50:1"], "--mass"),
    ("nan_cross_section", ["--mass", "50", "--cross-section", "nan", "--energies", "1:50:1"], "--cross-section"),
    ("inf_cross_section", ["--mass", "50", "--cross-section", "inf", "--energies", "1:50:1"], "--cross-section"),
    ("inverted_energies", ["--mass", "50", "--cross-section", "1e-45", "--energies", "50:1:1"], "energies"),
    ("code_as_energies", ["--mass", "50", "--cross-section", "1e-45", "--energies", '__import__("os")'], "energies"),
    (
        "code_in_energy_field",
        ["--mass", "50", "--cross-section", "1e-45", "--energies", "1:__import__('os').getpid():1"],
        "energies",
    ),
    ("zero_step", ["--mass", "50", "--cross-section", "1e-45", "--energies", "1:50:0"], "energies"),
    ("too_many_points", ["--mass", "50", "--cross-section", "1e-45", "--energies", "0:1e9:1e-3"], "energies"),
    ("negative_rho0", ["--mass", "50", "--cross-section", "1e-45", "--energies", "1:50:1", "--rho0=-0.3"], "--rho0"),
]


@pytest.mark.parametrize(("args", "field"), [c[1:] for c in BAD_SPECTRUM], ids=[c[0] for c in BAD_SPECTRUM])
def test_spectrum_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch, args: list[str], field: str
) -> None:
    evaluated: list[str] = []
    monkeypatch.setattr(os, "getpid", lambda: evaluated.append("getpid") or 1)
    out = tmp_path / "x.csv"
    assert main(["spectrum", *args, "-o", str(out)]) == 2
    line = _one_line_error(capsys, "spectrum")
    assert f"{field}:" in line
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []
    assert not evaluated


# ------------------------------------------------------------------------------ configuration


def test_validate_config_ok(small_config_path: Path, small_config, capsys: pytest.CaptureFixture) -> None:
    assert main(["validate-config", "--config", str(small_config_path)]) == 0
    out = capsys.readouterr().out
    assert "valid" in out and small_config.sha256 in out


def _select_args(config: Path, tmp_path: Path, mdc_dir: Path | None = None) -> list[str]:
    m = mdc_dir or tmp_path
    return [
        "select-part",
        "--config",
        str(config),
        "--science",
        str(m / "science.parquet"),
        "--selected",
        str(tmp_path / "out" / "part-0.parquet"),
        "--cutflow",
        str(tmp_path / "out" / "part-0_cutflow.json"),
    ]


def test_missing_config(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    missing = tmp_path / "missing.yaml"
    assert main(_select_args(missing, tmp_path)) == 2
    line = _one_line_error(capsys, "select-part")
    assert str(missing) in line and "not found" in line
    assert not (tmp_path / "out").exists()


def test_schema_invalid_config(tmp_path: Path, test_config_doc, capsys: pytest.CaptureFixture) -> None:
    doc = copy.deepcopy(test_config_doc)
    doc["signal"]["masses_gev"]["count"] = 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(doc), encoding="utf-8")
    assert main(_select_args(bad, tmp_path)) == 2
    line = _one_line_error(capsys, "select-part")
    assert str(bad) in line and "$.signal.masses_gev.count" in line
    assert not (tmp_path / "out").exists()
    assert main(["validate-config", "--config", str(bad)]) == 2
    assert "$.signal.masses_gev.count" in _one_line_error(capsys, "validate-config")


def test_cut_with_code_is_rejected_by_the_cli(tmp_path: Path, test_config_doc, capsys: pytest.CaptureFixture) -> None:
    doc = copy.deepcopy(test_config_doc)
    marker = tmp_path / "evaluated"
    doc["selection"]["cuts"][0]["variable"] = f"__import__('pathlib').Path('{marker}').touch()"
    bad = tmp_path / "code.yaml"
    bad.write_text(yaml.safe_dump(doc), encoding="utf-8")
    assert main(["validate-config", "--config", str(bad)]) == 2
    assert "$.selection.cuts[0].variable" in _one_line_error(capsys, "validate-config")
    assert not marker.exists()


# -------------------------------------------------------------------------- steps on real data


def test_wrong_kind_of_input_file(
    tmp_path: Path, mdc_dir: Path, small_config_path: Path, capsys: pytest.CaptureFixture
) -> None:
    args = _select_args(small_config_path, tmp_path, mdc_dir)
    args[args.index("--science") + 1] = str(mdc_dir / "calib_er.parquet")
    assert main(args) == 2
    line = _one_line_error(capsys, "select-part")
    assert str(mdc_dir / "calib_er.json") in line and "$.kind" in line
    assert not (tmp_path / "out").exists()


def test_fit_command(tmp_path: Path, pipeline_dir: Path) -> None:
    out = tmp_path / "fit.json"
    assert main(["fit", "--workspace", str(pipeline_dir / "likelihood" / "BkgOnly.json"), "-o", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert len(doc["parameters"]) == 5


def test_limits_refuses_tampered_workspace(
    tmp_path: Path, pipeline_dir: Path, small_config_path: Path, capsys: pytest.CaptureFixture
) -> None:
    ws = json.loads((pipeline_dir / "likelihood" / "BkgOnly.json").read_text())
    ws["observations"][0]["data"][3] += 2
    bad = tmp_path / "BkgOnly.json"
    bad.write_text(json.dumps(ws))
    patchset = pipeline_dir / "likelihood" / "patchset.json"
    out_csv, out_json = tmp_path / "limits.csv", tmp_path / "limits.json"
    assert (
        main(
            [
                "limits",
                "--config",
                str(small_config_path),
                "--workspace",
                str(bad),
                "--patchset",
                str(patchset),
                "--csv",
                str(out_csv),
                "--json",
                str(out_json),
                "--no-progress",
            ]
        )
        == 2
    )
    line = _one_line_error(capsys, "limits")
    assert str(patchset) in line and "$.metadata.digests" in line
    assert not out_csv.exists() and not out_json.exists()


def test_likelihood_with_corrupt_templates(
    tmp_path: Path, pipeline_dir: Path, small_config_path: Path, capsys: pytest.CaptureFixture
) -> None:
    templates = tmp_path / "templates.json"
    templates.write_text((pipeline_dir / "backgrounds" / "templates.json").read_text()[:-200])
    ws, ps = tmp_path / "ws.json", tmp_path / "ps.json"
    assert (
        main(
            [
                "likelihood",
                "--config",
                str(small_config_path),
                "--templates",
                str(templates),
                "--signal",
                str(pipeline_dir / "signal" / "signal.json"),
                "--workspace",
                str(ws),
                "--patchset",
                str(ps),
            ]
        )
        == 2
    )
    line = _one_line_error(capsys, "likelihood")
    assert str(templates) in line and "not valid JSON" in line
    assert not ws.exists() and not ps.exists()


BAD_SIGNAL = [
    # moved here from the kit (which no longer simulates the ER line response); the response step's options
    ("inverted_er_lines", ["--er-lines", "5:1:1"], "--er-lines", "STOP"),
    ("er_lines_from_zero", ["--er-lines", "0:3:1"], "--er-lines", "> 0 keV"),
    ("one_er_line", ["--er-lines", "1:1.5:1"], "--er-lines", "at least two"),
    ("too_few_er_events", ["--er-events-per-line", "5"], "--er-events-per-line", ">= 10"),
]


@pytest.mark.parametrize(("args", "field", "text"), [c[1:] for c in BAD_SIGNAL], ids=[c[0] for c in BAD_SIGNAL])
def test_response_bad_er_options(
    tmp_path: Path,
    pipeline_dir: Path,
    mdc_dir: Path,
    small_config_path: Path,
    capsys: pytest.CaptureFixture,
    args: list[str],
    field: str,
    text: str,
) -> None:
    out = tmp_path / "out"
    argv = [
        "response",
        "--config",
        str(small_config_path),
        "--sim-nr",
        str(mdc_dir / "sim_nr.parquet"),
        "--selected-sidecar",
        str(pipeline_dir / "selection" / "selected.json"),
        "--response-nr",
        str(out / "r.json"),
        "--response-er",
        str(out / "r_er.json"),
        "--er-lines",
        "1:3:1",
        "--er-events-per-line",
        "50",
        "--no-progress",
        *args,
    ]
    assert main(argv) == 2
    line = _one_line_error(capsys, "response")
    assert f"{field}:" in line and text in line, line
    assert not out.exists()


def test_signal_refuses_bad_exposure(
    tmp_path: Path, pipeline_dir: Path, mdc_dir: Path, small_config_path: Path, capsys: pytest.CaptureFixture
) -> None:
    exposure = tmp_path / "exposure.json"
    doc = json.loads((pipeline_dir / "selection" / "exposure.json").read_text())
    exposure.write_text(json.dumps({**doc, "exposure_t_yr": 0.0}))
    out = tmp_path / "out"
    argv = [
        "signal",
        "--config",
        str(small_config_path),
        "--response-nr",
        str(pipeline_dir / "response" / "response_nr.json"),
        "--exposure",
        str(exposure),
        "--mass-grid",
        str(pipeline_dir / "signal" / "mass_grid.json"),
        "--signal",
        str(out / "s.json"),
        "--spectra",
        str(out / "s.csv"),
    ]
    assert main(argv) == 2
    line = _one_line_error(capsys, "signal")
    assert str(exposure) in line and "$.exposure_t_yr" in line
    assert not out.exists()


def test_kit_no_longer_takes_er_options(capsys: pytest.CaptureFixture) -> None:
    """The ER line response is simulated by ``response`` (``--response-er``); ``kit`` only assembles."""
    with pytest.raises(SystemExit) as info:
        main(["kit", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "--response-er" in out and "--er-lines" not in out and "--er-events-per-line" not in out


def test_mass_grid_step(
    tmp_path: Path, small_config_path: Path, small_config, test_config_doc, capsys: pytest.CaptureFixture
) -> None:
    """``dmpreserve mass-grid``: the configuration's grid for SI, the model's own grid otherwise; limit masses
    off the grid and a wrong number of scheduled limit jobs fail fast (exit 2, one line, no output)."""
    models = SRC.parent / "workflow" / "config" / "models"
    out = tmp_path / "grid.json"
    assert main(["mass-grid", "--config", str(small_config_path), "-o", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["masses_gev"] == list(small_config.masses_gev) == doc["limit_masses_gev"]
    assert doc["model_name"] == "si"
    sd = tmp_path / "sd.json"
    assert (
        main(
            [
                "mass-grid",
                "--config",
                str(small_config_path),
                "--signal-model",
                str(models / "sd_neutron.yaml"),
                "--expected-masses",
                "25",
                "-o",
                str(sd),
            ]
        )
        == 0
    )
    assert len(json.loads(sd.read_text())["masses_gev"]) == 25
    capsys.readouterr()
    bad = tmp_path / "bad.json"
    assert main(["mass-grid", "--config", str(small_config_path), "--expected-masses", "3", "-o", str(bad)]) == 2
    assert "$.limits.masses_gev" in _one_line_error(capsys, "mass-grid")
    doc = copy.deepcopy(test_config_doc)
    doc["limits"]["masses_gev"] = [33.0]
    off = tmp_path / "off_grid.yaml"
    off.write_text(yaml.safe_dump(doc), encoding="utf-8")
    assert main(["mass-grid", "--config", str(off), "-o", str(bad)]) == 2
    line = _one_line_error(capsys, "mass-grid")
    assert str(off) in line and "$.limits.masses_gev[0]" in line and "grid" in line
    assert not bad.exists()
