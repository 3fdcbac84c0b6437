"""A reinterpretation kit with the unbinned likelihood (kit format 4) on the session's small pipeline.

The pipeline's own steps on the session's inputs: ``unbinned-templates`` (2x finer grid, smoothed), ``limits
--unbinned`` (asymptotic), ``kit --unbinned``; then ``reinterpret`` on the kit must give the pipeline's limits
(closure), fold the SI model through the stored fine responses into the step's own fine signal, fall back to the
binned workspace with ``--binned``, and refuse what it cannot do (one line, exit 2).
"""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from unbinned_steps import unbinned_argv, unbinned_config

from dmpreserve.artifacts.unbinned import read_unbinned_templates, write_unbinned_templates
from dmpreserve.cli import main
from dmpreserve.files import read_json
from dmpreserve.physics.signal_models import load_model
from dmpreserve.reinterpret.engine import LEGACY_BAND_POINTS, limit_options, model_signal, read_unbinned
from dmpreserve.reinterpret.kit import UNBINNED_FILE, load_kit
from dmpreserve.stats.limits import compute_limits
from dmpreserve.unbinned import with_signal

#: Columns compared in the closure (the pipeline's and the kit's limits).
COLUMNS = ("limit_cm2", "limit_unconstrained_cm2", "limit_cls_cm2", "expected_cm2", "expected_p1sigma_cm2")


def _rows(path: Path) -> list[dict[str, float]]:
    with path.open(newline="") as f:
        return [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(f)]


def _kit_argv(config: Path, r: Path, limits: Path, unbinned: Path, outdir: Path, model: Path) -> list[str]:
    return [
        "kit",
        "--config",
        str(config),
        "--signal-model",
        str(model),
        "--workspace",
        f"{r}/likelihood/BkgOnly.json",
        "--response",
        f"{r}/response/response_nr.json",
        "--response-er",
        f"{r}/response/response_er.json",
        "--templates",
        f"{r}/backgrounds/templates.json",
        "--acceptance",
        f"{r}/selection/acceptance.csv",
        "--limits",
        str(limits),
        "--unbinned",
        str(unbinned),
        "--outdir",
        str(outdir),
    ]


@pytest.fixture(scope="module")
def made(tmp_path_factory, pipeline_dir: Path, mdc_dir: Path, small_config_path: Path) -> dict[str, Path]:
    """The pipeline's fine templates, unbinned limits and kit (paths: config, h5, limits, kit, model, tmp)."""
    tmp = tmp_path_factory.mktemp("unbinned_kit")
    n1, n2 = yaml.safe_load(small_config_path.read_text())["analysis"]["binning"].values()
    config = unbinned_config(tmp, small_config_path, (2 * n1["bins"], 2 * n2["bins"]), 1.5)
    h5 = tmp / "unbinned_templates.h5"
    assert main(unbinned_argv(config, pipeline_dir, mdc_dir, h5)) == 0
    r = pipeline_dir
    limits = tmp / "limits.csv"
    argv = ["limits", "--config", str(config), "--workspace", f"{r}/likelihood/BkgOnly.json"]
    argv += ["--patchset", f"{r}/likelihood/patchset.json", "--unbinned", str(h5), "--no-progress"]
    assert main([*argv, "--csv", str(limits), "--json", str(tmp / "limits.json")]) == 0
    model = tmp / "si.yaml"
    model.write_text("model: si\n", encoding="utf-8")
    kit = tmp / "kit"
    assert main(_kit_argv(config, r, limits, h5, kit, model)) == 0
    return {"config": config, "h5": h5, "limits": limits, "kit": kit, "model": model, "tmp": tmp}


def test_kit_records_the_unbinned_likelihood(made) -> None:
    manifest = read_json(made["kit"] / "kit.json")
    assert manifest["format_version"] == 4 and manifest["likelihood"] == "unbinned"
    assert UNBINNED_FILE in manifest["files"] and "unbinned likelihood" in manifest["statistics"]
    assert (made["kit"] / UNBINNED_FILE).read_bytes() == made["h5"].read_bytes()
    kit = load_kit(made["kit"])
    assert kit.unbinned and read_unbinned(kit).observed_bins.size > 0


@pytest.mark.parametrize(("recorded", "expected"), [({"band_points": 11}, 11), ({}, LEGACY_BAND_POINTS)])
def test_per_mass_toys_of_a_kit_use_its_recorded_band_points(made, recorded, expected) -> None:
    """``reinterpret --toys`` takes the band's threshold points from the kit's statistics_settings; a kit made
    before they were recorded (6 points) keeps 6, so its closure holds."""
    kit = load_kit(made["kit"])
    st = {"neyman_threshold": "toys", "pcl_power": 0.5, "toys_background": 50, "seed": 3, **recorded}
    kit = dataclasses.replace(kit, manifest={**kit.manifest, "statistics_settings": st})
    opts, _ = limit_options(kit, mode="toys", unbinned=True)
    assert opts["toys"].band_points == expected and opts["toys"].mode == "toys"


def test_reinterpret_reproduces_the_pipelines_unbinned_limits(made) -> None:
    """Closure: the kit's default (the pipeline's method: here asymptotic) gives the pipeline's limits."""
    out = made["tmp"] / "closure"
    assert main(["reinterpret", "--kit", str(made["kit"]), "--model", str(made["model"]), "-o", str(out)]) == 0
    ours, pipeline = _rows(out / "limits.csv"), _rows(made["limits"])
    assert [r["mass_gev"] for r in ours] == pytest.approx([r["mass_gev"] for r in pipeline], rel=1e-12)
    for a, b in zip(ours, pipeline):
        for column in COLUMNS:
            assert a[column] == pytest.approx(b[column], rel=1e-9), (a["mass_gev"], column)
    doc = json.loads((out / "limits.json").read_text())
    assert "unbinned likelihood" in doc["method"]
    # recorded as the pipeline records it (here "likelihood": "unbinned")
    assert doc["statistics"] == json.loads((made["tmp"] / "limits.json").read_text())["statistics"]
    assert doc["statistics"]["likelihood"] == "unbinned"


def test_fine_signal_of_the_kit_is_the_steps(made) -> None:
    """The SI model folded through the kit's fine NR response (reinterpret's own loop) and smoothed is the step's
    fine signal (built by the signal step's build_signal on the fine grid)."""
    kit = load_kit(made["kit"])
    fine = read_unbinned(kit)
    signal = model_signal(kit, load_model(made["model"]), masses_gev=fine.masses_gev, fine=fine)
    assert signal.templates.shape == (len(fine.masses_gev), fine.signal.shape[1])
    rebuilt = with_signal(fine, signal.masses_gev, signal.templates)
    assert rebuilt.masses_gev == fine.masses_gev
    np.testing.assert_allclose(rebuilt.signal, fine.signal, rtol=1e-9, atol=1e-15)
    assert not np.allclose(rebuilt.signal[0], rebuilt.signal[-1])  # the masses' shapes differ


def test_binned_option_gives_the_workspaces_limits(made, pipeline_dir: Path) -> None:
    """``--binned``: the binned pyhf likelihood (asymptotic here), different from the unbinned limits."""
    out = made["tmp"] / "binned"
    argv = ["reinterpret", "--kit", str(made["kit"]), "--model", str(made["model"]), "-o", str(out), "--binned"]
    assert main(argv) == 0
    ours = _rows(out / "limits.csv")
    cfg = yaml.safe_load(made["config"].read_text())
    binned = compute_limits(
        read_json(pipeline_dir / "likelihood" / "BkgOnly.json"),
        read_json(pipeline_dir / "likelihood" / "patchset.json"),
        cl=0.9,
        pcl_power=float(cfg["statistics"]["pcl_power"]),
        progress=False,
    )
    assert [r["mass_gev"] for r in ours] == pytest.approx([b.mass_gev for b in binned], rel=1e-12)
    for a, b in zip(ours, binned):
        assert a["limit_cls_cm2"] == pytest.approx(b.row()["limit_cls_cm2"], rel=1e-9)
    unbinned = _rows(made["limits"])
    assert max(abs(a["limit_cls_cm2"] / b["limit_cls_cm2"] - 1) for a, b in zip(ours, unbinned)) > 0.01
    assert "unbinned" not in json.loads((out / "limits.json").read_text())["method"]


def test_er_line_through_the_fine_er_response(made, pipeline_dir: Path, capsys) -> None:
    """An ER line is folded through the stored fine ER response; a kit whose file has none refuses it, naming
    --binned (one line, exit 2, no output)."""
    model = made["tmp"] / "er_line.yaml"
    model.write_text("model: er_line\nmasses_gev: [3.0e-6, 8.0e-6]\nreference_rate_per_t_yr: 1.0\n", encoding="utf-8")
    out = made["tmp"] / "er_line"
    assert main(["reinterpret", "--kit", str(made["kit"]), "--model", str(model), "-o", str(out), "--no-progress"]) == 0
    assert len(_rows(out / "limits.csv")) == 2
    templates = read_unbinned_templates(made["h5"])
    no_er = made["tmp"] / "no_er" / UNBINNED_FILE
    no_er.parent.mkdir()
    write_unbinned_templates(no_er, dataclasses.replace(templates, er_line_energies_kev=None, er_response=None))
    kit = made["tmp"] / "kit_no_er"
    assert main(_kit_argv(made["config"], pipeline_dir, made["limits"], no_er, kit, made["model"])) == 0
    capsys.readouterr()
    bad = made["tmp"] / "er_line_no_er"
    assert main(["reinterpret", "--kit", str(kit), "--model", str(model), "-o", str(bad), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--binned" in err[0] and "er_response" in err[0]
    assert not bad.exists()
    assert main(["reinterpret", "--kit", str(kit), "--model", str(model), "-o", str(bad), "--binned"]) == 0


def test_kit_refuses_templates_without_fine_responses(made, pipeline_dir: Path, capsys) -> None:
    templates = read_unbinned_templates(made["h5"])
    old = made["tmp"] / "old" / UNBINNED_FILE
    old.parent.mkdir()
    write_unbinned_templates(old, dataclasses.replace(templates, nr_energy_edges_kev=None, nr_response=None))
    capsys.readouterr()
    kit = made["tmp"] / "kit_old"
    assert main(_kit_argv(made["config"], pipeline_dir, made["limits"], old, kit, made["model"])) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(old) in err[0] and "nr_response" in err[0]
    assert not kit.exists()


def test_manifest_without_the_file_is_refused(made, capsys) -> None:
    """kit.json declaring the unbinned likelihood without listing its file: refused on load, naming the field."""
    import shutil

    kit = made["tmp"] / "kit_unlisted"
    shutil.copytree(made["kit"], kit)
    manifest = read_json(kit / "kit.json")
    del manifest["files"][UNBINNED_FILE]
    (kit / "kit.json").write_text(json.dumps(manifest), encoding="utf-8")
    capsys.readouterr()
    out = made["tmp"] / "unlisted_out"
    assert main(["reinterpret", "--kit", str(kit), "--model", str(made["model"]), "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "likelihood" in err[0] and UNBINNED_FILE in err[0]
    assert not out.exists()


def test_corrupt_unbinned_file_is_one_clear_error(made, capsys) -> None:
    """A kit whose unbinned_templates.h5 is not HDF5 (checksum updated to match): one line naming the file, exit 2."""
    import hashlib
    import shutil

    kit = made["tmp"] / "kit_corrupt"
    shutil.copytree(made["kit"], kit)
    (kit / UNBINNED_FILE).write_bytes(b"not an HDF5 file\n")
    manifest = read_json(kit / "kit.json")
    manifest["files"][UNBINNED_FILE]["sha256"] = hashlib.sha256(b"not an HDF5 file\n").hexdigest()
    (kit / "kit.json").write_text(json.dumps(manifest), encoding="utf-8")
    capsys.readouterr()
    out = made["tmp"] / "corrupt_out"
    assert main(["reinterpret", "--kit", str(kit), "--model", str(made["model"]), "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(kit / UNBINNED_FILE) in err[0] and "HDF5" in err[0]
    assert not out.exists()


def test_a_kit_mass_gets_the_pipelines_toy_stream(made) -> None:
    """Per-mass toys: a mass of the kit gets its index in the kit (the pipeline's ``limits-point --index``), alone
    or among other masses; any other mass gets one past the kit's, distinct from every pipeline stream."""
    from dmpreserve.reinterpret.engine import toy_stream_index

    kit = load_kit(made["kit"])
    masses = sorted(kit.manifest["masses_gev"])
    index = toy_stream_index(kit)
    assert [index(0, m) for m in masses] == list(range(len(masses)))
    assert index(5, masses[2] * (1 + 5e-5)) == 2  # matched as limits.masses_gev is
    assert index(0, 0.5 * masses[0]) == len(masses) and index(3, 1.1 * masses[-1]) == len(masses) + 3
