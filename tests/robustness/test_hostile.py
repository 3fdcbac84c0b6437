"""Hostile input over every CLI entry point: one parametrised table of bad inputs.

Every case runs one ``dmpreserve`` subcommand on the good outputs of the small pipeline (conftest's
``mdc_dir``/``pipeline_dir``) with exactly one input damaged, and checks that the step

* exits with status 2,
* prints exactly one line ``dmpreserve STEP: error: FILE: FIELD: message`` naming the damaged file
  (and the field at fault where the damage is to a field rather than the whole file),
* leaves no output at all behind (no partial file, no ``*.part`` temporary),
* never evaluates anything (cut expressions, YAML tags and the like are refused as data).

A sample of the cases is also run through Snakemake in a temporary copy of the workflow, where the
job must be marked failed and its outputs must not exist.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from hostile_damage import (
    at,
    col,
    config,
    copy_reduced,
    csv_text,
    empty_dir,
    in_dir,
    json_doc,
    kit_dir,
    manifest_entry,
    nested,
    outside_link,
    parquet,
    raw_bytes,
    rehashed,
    replace_cell,
    sets,
    sidecar,
    sparse_file,
    sparse_member,
    split_reduced,
    tamper,
    unlink_file,
)
from released_inputs import event_description
from reliability_support import env, snakemake_argv

from dmpreserve.cli import main

REPO = Path(__file__).resolve().parents[2]

#: Inputs of the backgrounds step (option -> key of the ``good`` fixture).
_BACKGROUNDS_INPUTS = {
    "--config": "config",
    "--science": "science",
    "--calib-er": "calib_er",
    "--isolated-s1": "isolated_s1",
    "--isolated-s2": "isolated_s2",
    "--response-nr": "response",
    "--response-er": "response_er",
    "--selected": "selected",
    "--exposure": "exposure",
}
#: Inputs of each subcommand (option -> key of the ``good`` fixture) and its outputs (option -> file name).
INPUTS: dict[str, dict[str, str]] = {
    "validate-config": {"--config": "config"},
    "mdc": {"--config": "config"},
    "select-part": {"--config": "config", "--science": "science"},
    # select-part on a dataset directory of two science files
    "select-part-dir": {"--config": "config", "--science": "science_dir"},
    "select": {
        "--config": "config",
        "--parts": "part",
        "--part-cutflows": "part_cutflow",
        "--sim-nr": "sim_nr",
    },
    "backgrounds": _BACKGROUNDS_INPUTS,
    # the backgrounds step with a configuration whose extra component reads an external file (in/<name>)
    **{
        f"backgrounds-{v}": {**_BACKGROUNDS_INPUTS, "--config": f"config_bg_{v}"}
        for v in ("spectrum", "template", "hdf5")
    },
    "mass-grid": {"--config": "config", "--signal-model": "signal_model"},
    "response": {"--config": "config", "--sim-nr": "sim_nr", "--selected-sidecar": "selected_meta"},
    # the response step with an external efficiency curve (signal.efficiency.curve)
    "response-curve": {
        "--config": "config_curve",
        "--sim-nr": "sim_nr",
        "--selected-sidecar": "selected_meta",
        "--efficiency-curve": "efficiency_curve",
    },
    "signal": {"--config": "config", "--response-nr": "response", "--exposure": "exposure", "--mass-grid": "mass_grid"},
    # the signal step with a signal model of its own mass grid (its mass grid resolved for it)
    "signal-model": {
        "--config": "config",
        "--response-nr": "response",
        "--exposure": "exposure",
        "--mass-grid": "mass_grid_sub_threshold",
        "--model": "signal_model",
    },
    "likelihood": {"--config": "config", "--templates": "templates", "--signal": "signal"},
    "fit": {"--workspace": "workspace", "--patchset": "patchset"},
    "limits": {"--config": "config", "--workspace": "workspace", "--patchset": "patchset"},
    "plots": {
        "--limits": "limits",
        "--templates": "templates",
        "--signal": "signal",
        "--selected": "selected",
        "--cutflow": "cutflow",
        "--acceptance": "acceptance",
        "--fit": "fit",
    },
    "hepdata": {
        "--limits": "limits",
        "--templates": "templates",
        "--selected": "selected",
        "--cutflow": "cutflow",
        "--acceptance": "acceptance",
        "--workspace": "workspace",
        "--patchset": "patchset",
    },
    "provenance": {"--config": "config", "--inputs": "science"},
    "kit": {
        "--config": "config",
        "--signal-model": "signal_model",
        "--workspace": "workspace",
        "--response": "response",
        "--response-er": "response_er",
        "--templates": "templates",
        "--acceptance": "acceptance",
        "--limits": "limits",
    },
    "limits-point": {"--config": "config", "--workspace": "workspace", "--patchset": "patchset"},
    "reinterpret": {"--kit": "kit", "--spectrum": "spectrum"},
    "reinterpret-model": {"--kit": "kit", "--model": "signal_model"},
    "verify": {"--reference": "limits", "--result": "limits"},
    "verify-yields": {"--fit": "fit", "--published": "published_yields"},
    "partition": {"--input": "science"},
    # released text tables (config inputs.science.table; signal.efficiency.curve as median/lower/upper files)
    "import-events": {"--config": "config_table", "--table": "events_table"},
    "import-efficiency": {"--median": "eff_median", "--lower": "eff_lower", "--upper": "eff_upper"},
}
#: Subcommands without rows in this table, and where their bad input is tested instead.
ELSEWHERE = {
    "bulk-mdc": "tests/unit/mdc/test_bulk.py",
    "combine": "tests/unit/reinterpret/test_combine.py (the same data twice, different CL, an ER line on XENON1T)",
    "cluster": "tests/unit/mdc/test_layout.py",
    "image": "tests/deploy/test_image.py (builds the container image)",
    "import-release": "tests/unit/reinterpret/test_xenonnt_release.py",
    "inputs-manifest": "tests/pipeline/test_inputs.py",
    "plot-limits": "tests/unit/cli/test_cli_plot_limits.py (bad limits.json, reference CSVs, published files)",
    "resolve-config": "validate-config's rows (the same configuration reader)",
    "spectrum": "tests/unit/cli/test_cli.py",
    "thresholds": "tests/unit/publish/test_hepdata.py",
    "toys-shard": "limits-point's rows (the same workspace and patchset readers)",
    "unbinned-templates": "tests/unit/test_unbinned_templates.py (no likelihood.unbinned, an empty component; its "
    "other inputs are the backgrounds and signal steps' readers, rows here) and tests/unit/artifacts/"
    "test_unbinned_file.py (the templates file that limits-point --unbinned reads)",
}
#: Fixed extra arguments (small and fast settings).
EXTRA: dict[str, list[str]] = {
    "response": ["--er-lines", "1:3:1", "--er-events-per-line", "50", "--no-progress"],
    "response-curve": ["--er-lines", "1:3:1", "--er-events-per-line", "50", "--no-progress"],
    "fit": ["--gof-toys", "0", "--no-progress"],
    "reinterpret": ["--no-progress"],
    "limits-point": ["--index", "0", "--no-progress"],
    "reinterpret-model": ["--no-progress"],
    "partition": ["--parts", "4"],
    "import-events": ["--input", "science"],
}
OUTPUTS: dict[str, dict[str, str]] = {
    "validate-config": {},
    "mdc": {
        f"--{n}": f"{n}.parquet"
        for n in ("science", "truth", "calib-er", "calib-nr", "sim-nr", "isolated-s1", "isolated-s2")
    },
    "select-part": {"--selected": "part.parquet", "--cutflow": "part_cutflow.json"},
    "select-part-dir": {"--selected": "part.parquet", "--cutflow": "part_cutflow.json"},
    "select": {
        "--selected": "selected.parquet",
        "--cutflow": "cutflow.csv",
        "--acceptance": "acceptance.csv",
        "--exposure": "exposure.json",
    },
    "backgrounds": {"--templates": "templates.json", "--summary": "summary.csv"},
    **{
        f"backgrounds-{v}": {"--templates": "templates.json", "--summary": "summary.csv"}
        for v in ("spectrum", "template", "hdf5")
    },
    "mass-grid": {"-o": "mass_grid.json"},
    "response": {"--response-nr": "response_nr.json", "--response-er": "response_er.json"},
    "response-curve": {"--response-nr": "response_nr.json", "--response-er": "response_er.json"},
    "signal": {"--signal": "signal.json", "--spectra": "spectra.csv"},
    "signal-model": {"--signal": "signal.json", "--spectra": "spectra.csv"},
    "likelihood": {"--workspace": "BkgOnly.json", "--patchset": "patchset.json"},
    "fit": {"-o": "fit.json"},
    "limits": {"--csv": "limits.csv", "--json": "limits.json", "--no-progress": ""},
    "plots": {"--outdir": "plots"},
    "hepdata": {"-o": "submission.tar.gz"},
    "provenance": {"--outputs": "../good_output.txt", "-o": "provenance.json"},
    "kit": {"--outdir": "kit"},
    "limits-point": {"-o": "point.json"},
    "reinterpret": {"-o": "reinterpreted"},
    "reinterpret-model": {"-o": "reinterpreted"},
    "verify": {},
    "verify-yields": {},
    "partition": {"--outdir": "parts"},
    "import-events": {"--parquet": "science.parquet"},
    "import-efficiency": {"-o": "efficiency.csv"},
}


def _published_yields(fit: Path, dest: Path) -> Path:
    """A published background table (verify-yields) that agrees with the good fit.json's yields."""
    import json

    rows = [
        f"{y['sample']},{y['sample']} row,{y['prefit_events']!r},1.0,{y['postfit_events']!r},1.0,1.0\n"
        for y in json.loads(fit.read_text(encoding="utf-8"))["yields"]
    ]
    header = "sample,table_row,expected_events,expected_error,fit_events,fit_error_low,fit_error_high\n"
    dest.write_text(header + "".join(rows), encoding="utf-8")
    return dest


@pytest.fixture(scope="module")
def good(tmp_path_factory, mdc_dir: Path, pipeline_dir: Path, small_config_path: Path) -> dict[str, Path]:
    """Paths of a complete set of good inputs (the small pipeline plus fit and limits)."""
    extra = tmp_path_factory.mktemp("good")
    doc = yaml.safe_load(small_config_path.read_text(encoding="utf-8"))
    doc.setdefault("statistics", {})["neyman_threshold"] = "asymptotic"  # no toys: fast
    doc["statistics"]["toys_background"] = 50
    cfg = extra / "config.yaml"
    cfg.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    paths = {
        "config": cfg,
        **{k: mdc_dir / f"{k}.parquet" for k in ("science", "sim_nr", "calib_er", "isolated_s1", "isolated_s2")},
        "templates": pipeline_dir / "backgrounds/templates.json",
        "signal": pipeline_dir / "signal/signal.json",
        "selected": pipeline_dir / "selection/selected.parquet",
        "part": extra / "parts/part-0.parquet",  # the science run as one part, selected with this config
        "part_cutflow": extra / "parts/part-0_cutflow.json",
        "science_dir": split_reduced(mdc_dir / "science.parquet", extra / "science_dir", 2),
        "cutflow": pipeline_dir / "selection/cutflow.csv",
        "acceptance": pipeline_dir / "selection/acceptance.csv",
        "exposure": pipeline_dir / "selection/exposure.json",
        "workspace": pipeline_dir / "likelihood/BkgOnly.json",
        "patchset": pipeline_dir / "likelihood/patchset.json",
        "fit": extra / "fit.json",
        "limits": extra / "limits.csv",
    }
    argv = ["select-part", "--config", str(cfg), "--science", str(paths["science"])]
    assert main([*argv, "--selected", str(paths["part"]), "--cutflow", str(paths["part_cutflow"])]) == 0
    assert (
        main(
            ["fit", "--workspace", str(paths["workspace"]), "--gof-toys", "0", "--no-progress", "-o", str(paths["fit"])]
        )
        == 0
    )
    paths["published_yields"] = _published_yields(paths["fit"], extra / "published_yields.csv")
    paths.update(_external_background_inputs(extra, doc))
    paths["signal_model"] = REPO / "workflow/config/signal_model.yaml"
    paths["response"] = pipeline_dir / "response/response_nr.json"
    paths["response_er"] = pipeline_dir / "response/response_er.json"
    paths["mass_grid"] = pipeline_dir / "signal/mass_grid.json"
    paths["selected_meta"] = pipeline_dir / "selection/selected.json"
    # an external efficiency curve (median and band over the response's energy range) and a config naming it
    paths["efficiency_curve"] = extra / "efficiency.csv"
    paths["efficiency_curve"].write_text(EFFICIENCY_CSV, encoding="utf-8")
    doc = yaml.safe_load(cfg.read_text(encoding="utf-8"))
    doc["signal"]["efficiency"] = {"curve": str(paths["efficiency_curve"]), "includes_roi": False}
    paths["config_curve"] = extra / "config_curve.yaml"
    paths["config_curve"].write_text(yaml.safe_dump(doc), encoding="utf-8")
    paths.update(_released_inputs(extra, cfg))
    # a model with masses below threshold, and its resolved mass grid (the signal step refuses such masses)
    paths["sub_threshold_model"] = extra / "sub_threshold.yaml"
    paths["sub_threshold_model"].write_text(SUB_THRESHOLD_MODEL, encoding="utf-8")
    paths["mass_grid_sub_threshold"] = extra / "mass_grid_sub_threshold.json"
    assert (
        main(
            [
                "mass-grid",
                "--config",
                str(cfg),
                "--signal-model",
                str(paths["sub_threshold_model"]),
                "-o",
                str(paths["mass_grid_sub_threshold"]),
            ]
        )
        == 0
    )
    paths["spectrum"] = extra / "spectrum.csv"
    paths["spectrum"].write_text(
        "mass_gev,energy_kev,dr_de\n" + "".join(f"50,{e},{0.1 * math.exp(-e / 10)!r}\n" for e in range(1, 60)),
        encoding="utf-8",
    )
    paths["kit"] = extra / "kit"
    assert (
        main(
            [
                "limits",
                "--config",
                str(cfg),
                "--workspace",
                str(paths["workspace"]),
                "--patchset",
                str(paths["patchset"]),
                "--csv",
                str(paths["limits"]),
                "--json",
                str(extra / "limits.json"),
                "--no-progress",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "kit",
                *[x for o, k in INPUTS["kit"].items() for x in (o, str(paths[k]))],
                *EXTRA.get("kit", []),
                "--outdir",
                str(paths["kit"]),
            ]
        )
        == 0
    )
    return paths


#: A good released event table (S1c [phd], log10(S2c/phd); inside the test configuration's ROI) and its description.
EVENTS_TABLE = "# S1c, log10(S2c)\n5.0,3.2\n10.0,3.5\n20.0,3.9\n40.0,4.1\n"
EVENTS_DESCRIPTION = event_description(source={"release": "synthetic hostile-input test table"})
#: A good released efficiency curve: median, lower and upper as headerless ``energy, efficiency`` files.
EFFICIENCY_FILES = {
    "eff_median": "0.5,0.0\n1.0,0.2\n5.0,0.6\n10.0,0.8\n50.0,0.9\n",
    "eff_lower": "0.5,0.0\n1.0,0.18\n5.0,0.55\n10.0,0.76\n50.0,0.86\n",
    "eff_upper": "0.5,0.0\n1.0,0.22\n5.0,0.65\n10.0,0.84\n50.0,0.94\n",
}


def _released_inputs(extra: Path, cfg: Path) -> dict[str, Path]:
    """A released event table, its description, a configuration importing it, and a released efficiency curve."""
    out = {"events_table": extra / "events.csv", "events_description": extra / "events.yaml"}
    out["events_table"].write_text(EVENTS_TABLE, encoding="utf-8")
    out["events_description"].write_text(yaml.safe_dump(EVENTS_DESCRIPTION), encoding="utf-8")
    doc = yaml.safe_load(cfg.read_text(encoding="utf-8"))
    doc["inputs"]["science"] = {
        "location": str(out["events_table"]),
        "table": {"columns": ["cs1_phd", "log10_cs2"], "description": str(out["events_description"])},
    }
    out["config_table"] = extra / "config_table.yaml"
    out["config_table"].write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    for key, text in EFFICIENCY_FILES.items():
        out[key] = extra / f"{key}.csv"
        out[key].write_text(text, encoding="utf-8")
    return out


#: External files of the backgrounds-{spectrum,template,hdf5} variants: each configuration reads ``in/<name>``
#: relative to the working directory (the test's tmp_path), where the damaged copy is written.
EXTERNAL_BACKGROUND_FILES = {"spectrum": "bg_spectrum.csv", "template": "bg_template.csv", "hdf5": "bg_template.h5"}


def _external_background_inputs(extra: Path, doc: dict) -> dict[str, Path]:
    """Good external background files and, per variant, a configuration with one extra component reading one."""
    import multihist
    from inference_interface import multihist_to_template

    from dmpreserve.config import config_from_dict

    binning = config_from_dict(doc).binning
    e1, e2 = binning.cs1_edges_phd, binning.log10_cs2_edges
    out: dict[str, Path] = {}
    files = {k: extra / name for k, name in EXTERNAL_BACKGROUND_FILES.items()}
    files["spectrum"].write_text(
        "energy_kev,rate_per_t_yr_kev\n" + "".join(f"{e},0.1\n" for e in range(1, 21)), encoding="utf-8"
    )
    files["template"].write_text(
        "cs1_min_phd,cs1_max_phd,log10_cs2_min,log10_cs2_max,events\n"
        + "".join(
            f"{e1[i]!r},{e1[i + 1]!r},{e2[j]!r},{e2[j + 1]!r},1.0\n"
            for i in range(len(e1) - 1)
            for j in range(len(e2) - 1)
        ),
        encoding="utf-8",
    )
    hist = multihist.Histdd(bins=[list(e1), list(e2)], axis_names=["cs1", "log10_cs2"])
    hist.histogram = np.ones((len(e1) - 1, len(e2) - 1))
    multihist_to_template([hist], str(files["hdf5"]), histogram_names=["extra"])
    components = {
        "spectrum": {
            "kind": "ER",
            "spectrum": {"csv": {"path": "in/bg_spectrum.csv"}},
            "shape": "nest",
            "normalisation": {"spectrum": True, "constraint": {"lognormal": 0.1}},
        },
        "template": {
            "shape": {"template": {"csv": "in/bg_template.csv"}},
            "normalisation": {"expected_events": 1.0, "constraint": {"lognormal": 0.1}},
        },
        "hdf5": {
            "shape": {"template": {"hdf5": {"path": "in/bg_template.h5", "histogram": "extra"}}},
            "normalisation": {"expected_events": 1.0, "constraint": {"gaussian": 0.1}},
        },
    }
    for variant, comp in components.items():
        d = yaml.safe_load(yaml.safe_dump(doc))
        d["backgrounds"]["components"]["extra"] = comp
        out[f"config_bg_{variant}"] = extra / f"config_bg_{variant}.yaml"
        out[f"config_bg_{variant}"].write_text(yaml.safe_dump(d, sort_keys=False), encoding="utf-8")
        out[f"bg_{variant}"] = files[variant]
    return out


def _not_inference_interface(src: Path, dest: Path) -> Path:
    """An HDF5 file with the histogram but neither the ``bins`` nor the ``templates`` group."""
    import h5py

    dest.mkdir(parents=True, exist_ok=True)
    out = dest / src.name
    with h5py.File(out, "w") as f:
        f.create_dataset("extra", data=np.ones((2, 2)))
    return out


def _line_outside_response(doc: dict) -> None:
    doc["backgrounds"]["components"]["ar37"] = {
        "kind": "ER",
        "spectrum": {"lines": {"energies_kev": [2.82, 41.5], "intensities": [1.0, 1.0]}},
        "shape": "nest",
        "normalisation": {"expected_events": 1.0, "constraint": {"free": {}}},
    }


def _cut_code(doc: dict) -> None:
    doc["selection"]["cuts"][0]["variable"] = "__import__('os').system('touch EVALUATED')"


def _normsys_lo_zero(doc: dict) -> None:
    doc["channels"][0]["samples"][0]["modifiers"][0]["data"]["lo"] = 0.0


def _shapesys(doc: dict) -> None:
    n = len(doc["observations"][0]["data"])
    doc["channels"][0]["samples"][0]["modifiers"].append({"name": "stat", "type": "shapesys", "data": [1.0] * n})


def _without_staterror(doc: dict) -> None:
    """Remove the pipeline's own staterror modifiers (each sample then has only its rate modifier)."""
    for sample in doc["channels"][0]["samples"]:
        sample["modifiers"] = [m for m in sample["modifiers"] if m["type"] != "staterror"]


def _staterror_short(doc: dict) -> None:
    """A staterror with one bin fewer than its sample."""
    n = len(doc["observations"][0]["data"])
    _without_staterror(doc)
    doc["channels"][0]["samples"][0]["modifiers"].append({"name": "stat", "type": "staterror", "data": [0.1] * (n - 1)})


def _two_staterrors(doc: dict) -> None:
    """Two staterror names on one channel (the fast engine profiles one gamma per bin)."""
    n = len(doc["observations"][0]["data"])
    _without_staterror(doc)
    for k, sample in enumerate(doc["channels"][0]["samples"][:2]):
        sample["modifiers"].append({"name": f"stat_{k}", "type": "staterror", "data": [0.1] * n})


def _zero_signal_patch(doc: dict) -> None:
    """The first patch's signal sample expects nothing (a mass below threshold)."""
    value = doc["patches"][0]["patch"][0]["value"]
    value["data"] = [0.0] * len(value["data"])


#: A model with a mass below threshold (a 3 GeV WIMP's recoils stay below ~1 keV).
SUB_THRESHOLD_MODEL = "model: si\nmasses_gev: [3.0, 5.0, 50.0]\n"


def _bad_digest(doc: dict) -> None:
    doc["metadata"]["digests"]["sha256"] = "0" * 64


BILLION_LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
    f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
    for i in range(9)
)


@dataclasses.dataclass(frozen=True)
class Case:
    """One hostile input: run ``command`` with the input ``target`` replaced by ``damage(good, dest)``.

    ``field`` is a substring the error line must contain after the file name (None: a whole-file
    problem such as a truncated file, where the message says what is wrong with the file).
    """

    id: str
    command: str
    target: str
    damage: Callable[[Path, Path], Path]
    field: str | None
    text: str = ""
    names: str = "damaged"


#: A good efficiency curve for the response step (0-100 keV: covers the response's energy-bin centres).
EFFICIENCY_CSV = "energy_kev,efficiency,efficiency_lo,efficiency_hi\n0,0,0,0.1\n5,0.5,0.4,0.6\n100,0.9,0.8,1.0\n"


def _curve(fn: Callable[[list[list[str]]], None]) -> Callable[[Path, Path], Path]:
    """Damage the efficiency curve's data rows (lists of cells, header excluded)."""

    def text(t: str) -> str:
        lines = t.splitlines()
        rows = [line.split(",") for line in lines[1:]]
        fn(rows)
        return "\n".join([lines[0], *(",".join(r) for r in rows)]) + "\n"

    return csv_text(text)


CASES = [
    # --- configuration (every step reads it; validate-config, mdc and select as the entry points)
    Case(
        "config_unknown_key",
        "validate-config",
        "config",
        config(sets("analysis", "unbinned", value=True)),
        "$.analysis",
        "unbinned",
    ),
    Case("config_wrong_type", "select", "config", config(sets("seed", value="forty-two")), "$.seed", "integer"),
    Case(
        "config_empty_mass_grid",
        "validate-config",
        "config",
        config(sets("signal", "masses_gev", "count", value=0)),
        "$.signal.masses_gev.count",
    ),
    Case(
        "config_inverted_range",
        "mdc",
        "config",
        config(sets("mdc", "components", "er", "energy_min_kev", value=70.0)),
        "$.mdc.components.er",
        "inverted",
    ),
    Case(
        "config_binning_leaves_roi",
        "select",
        "config",
        config(sets("analysis", "binning", "cs1_phd", "max", value=120.0)),
        "$.analysis.binning.cs1_phd",
        "ROI",
    ),
    Case("config_cut_smuggles_code", "select", "config", config(_cut_code), "$.selection.cuts[0].variable"),
    Case(
        "config_cut_bound_is_code",
        "validate-config",
        "config",
        config(sets("selection", "cuts", 0, "min", value="__import__('os').getpid()")),
        "$.selection.cuts[0].min",
    ),
    Case(
        "config_python_yaml_tag",
        "validate-config",
        "config",
        config(text="seed: !!python/object/apply:os.system ['touch EVALUATED']\n"),
        None,
        "YAML",
    ),
    Case(
        "config_nan",
        "mdc",
        "config",
        config(sets("mdc", "live_time_days", value=float("nan"))),
        "$.mdc.live_time_days",
        "non-finite",
    ),
    Case(
        "config_huge_integer",
        "select",
        "config",
        config(sets("selection", "cuts", 1, "min", value=10**400)),
        "$.selection.cuts[1].min",
        "too large",
    ),
    Case("config_alias_bomb", "validate-config", "config", config(text=BILLION_LAUGHS), None, "alias"),
    Case("config_deeply_nested", "validate-config", "config", config(text=nested(100_000)), None, "nested"),
    Case("config_duplicate_key", "validate-config", "config", config(text="seed: 1\nseed: 2\n"), None, "duplicate"),
    Case("config_empty", "validate-config", "config", config(text=""), "$", "object"),
    Case("config_not_utf8", "validate-config", "config", raw_bytes(lambda b: b"seed: \xff\xfe\n"), None, "YAML"),
    Case(
        "config_mass_off_grid",
        "limits",
        "config",
        config(sets("limits", "masses_gev", value=[33.0])),
        "$.limits.masses_gev[0]",
        "grid",
    ),
    Case("config_missing", "validate-config", "config", lambda src, dest: dest / "nowhere.yaml", None, "not found"),
    # --- reduced data (select, backgrounds, signal read it)
    Case("parquet_truncated", "select-part", "science", raw_bytes(lambda b: b[: len(b) // 2]), None, "Parquet"),
    Case(
        "parquet_garbage",
        "backgrounds",
        "calib_er",
        raw_bytes(lambda b: b"PAR1" + b"\x00garbage" * 100),
        None,
        "Parquet",
    ),
    Case("parquet_empty_file", "select", "sim_nr", raw_bytes(lambda b: b""), None, "Parquet"),
    Case("parquet_missing_column", "select-part", "science", parquet(lambda c: c.pop("cs1_phd")), "cs1_phd", "missing"),
    Case(
        "parquet_wrong_dtype",
        "backgrounds",
        "isolated_s2",
        parquet(col("event_id", lambda a: a.astype(float))),
        "$.columns.event_id.dtype",
        names="sidecar",
    ),
    Case("parquet_nan", "select-part", "science", parquet(col("cs2_phd", at(0, np.nan))), "cs2_phd", "NaN"),
    Case(
        "parquet_inf",
        "response",
        "sim_nr",
        parquet(col("true_energy_kev", at(2, np.inf))),
        "true_energy_kev",
        "infinite",
    ),
    Case("parquet_negative_area", "select-part", "science", parquet(col("s1_phd", at(3, -1.0))), "s1_phd", "negative"),
    Case(
        "parquet_duplicate_event_id",
        "backgrounds",
        "isolated_s1",
        parquet(col("event_id", at(1, 0))),
        "event_id",
        "duplicate",
    ),
    Case(
        "parquet_duplicate_column_name",
        "select-part",
        "science",
        parquet(lambda c: pa.Table.from_arrays([pa.array(v) for v in [*c.values(), c["x_cm"]]], names=[*c, "x_cm"])),
        "x_cm",
        "twice",
    ),
    Case(
        "parquet_nested_column",
        "select-part",
        "science",
        parquet(lambda c: c.update(x_cm=[[v] for v in c["x_cm"]])),
        "$.columns.x_cm.dtype",
        names="sidecar",
    ),
    Case(
        "parquet_zero_rows_sidecar_disagrees",
        "select-part",
        "science",
        parquet(lambda c: [c.__setitem__(k, v[:0]) for k, v in c.items()]),
        "$.n_events",
        names="sidecar",
    ),
    Case(
        "sidecar_unit_disagrees",
        "select-part",
        "science",
        sidecar(lambda d: d["columns"]["cs1_phd"].update(unit="keV")),
        "$.columns.cs1_phd.unit",
    ),
    Case("sidecar_wrong_kind", "select-part", "science", sidecar(sets("kind", value="calibration_er")), "$.kind"),
    Case(
        "truth_column_in_science",
        "select-part",
        "science",
        parquet(
            lambda c: c.update(true_energy_kev=np.ones(len(c["x_cm"]))),
            lambda d: d["columns"].update(true_energy_kev={"unit": "keV", "description": "true energy"}),
        ),
        "$.columns",
        "true_energy_kev",
        names="sidecar",
    ),
    Case(
        "sidecar_columns_not_object",
        "select-part",
        "science",
        sidecar(sets("columns", value=["event_id"])),
        "$.columns",
        "object",
    ),
    Case("sidecar_columns_number", "backgrounds", "science", sidecar(sets("columns", value=7)), "$.columns", "object"),
    Case("sidecar_not_object", "select", "sim_nr", sidecar(text="[1, 2, 3]"), None, "object"),
    Case("sidecar_nan_literal", "select-part", "science", sidecar(text='{"kind": NaN}'), None, "NaN"),
    Case("sidecar_deeply_nested", "select-part", "science", sidecar(text=nested(100_000)), None, "nested"),
    Case(
        "sidecar_missing",
        "select-part",
        "science",
        lambda src, dest: unlink_file(copy_reduced(src, dest).with_suffix(".json")),
        None,
        "not found",
    ),
    # --- datasets of several files (select-part on a directory of two science files) and the select gather
    Case(
        "dataset_sidecar_missing",
        "select-part-dir",
        "science_dir",
        in_dir("part-1.parquet", lambda src, dest: unlink_file(copy_reduced(src, dest).with_suffix(".json"))),
        None,
        "not found",
    ),
    Case(
        "dataset_columns_disagree",
        "select-part-dir",
        "science_dir",
        in_dir("part-1.parquet", parquet(lambda c: c.pop("s1_phd"), lambda d: d["columns"].pop("s1_phd"))),
        "$.columns",
        "differ",
        names="sidecar",
    ),
    Case(
        "dataset_units_disagree",
        "select-part-dir",
        "science_dir",
        in_dir("part-1.parquet", sidecar(lambda d: d["columns"]["drift_time_us"].update(unit="ms"))),
        "$.columns.drift_time_us.unit",
    ),
    Case(
        "dataset_detector_disagrees",
        "select-part-dir",
        "science_dir",
        in_dir("part-1.parquet", sidecar(lambda d: d["detector"].update(g1_phd_per_photon=0.5))),
        "$.detector",
        "differs",
    ),
    Case("dataset_empty_directory", "select-part-dir", "science_dir", empty_dir, None, "no Parquet files"),
    Case(
        "dataset_nan_streamed_second_file",
        "select-part-dir",
        "science_dir",
        in_dir("part-1.parquet", parquet(col("cs1_phd", at(5, np.nan)))),
        "cs1_phd",
        "NaN",
    ),
    Case(
        "cut_on_missing_column_not_upstream",
        "select-part",
        "science",
        parquet(
            lambda c: [c.pop("x_cm"), c.pop("y_cm")],
            lambda d: [d["columns"].pop("x_cm"), d["columns"].pop("y_cm")],
        ),
        "x_cm",
        "fiducial_radius",
    ),
    Case(
        "part_from_another_config",
        "select",
        "part_cutflow",
        json_doc(sets("config_sha256", value="0" * 64)),
        "$.config_sha256",
        "another configuration",
    ),
    Case(
        "part_cutflow_count_tampered",
        "select",
        "part_cutflow",
        json_doc(
            lambda d: [
                d["cuts"][-1].update(events=d["cuts"][-1]["events"] - 1),
                d.update(n_selected=d["n_selected"] - 1),
            ]
        ),
        "$.n_selected",
        "the part has",
    ),
    Case(
        "part_cutflow_count_increases",
        "select",
        "part_cutflow",
        json_doc(lambda d: d["cuts"][2].update(events=d["cuts"][1]["events"] + 1)),
        "$.cuts[2].events",
    ),
    Case(
        "part_nan",
        "select",
        "part",
        parquet(col("cs2_phd", at(0, np.nan))),
        "cs2_phd",
        "NaN",
    ),
    # --- background templates, signal, likelihood, fit, limits
    Case("templates_truncated", "likelihood", "templates", raw_bytes(lambda b: b[:-100]), None, "not valid JSON"),
    Case(
        "templates_negative_exposure",
        "likelihood",
        "templates",
        json_doc(sets("exposure_t_yr", value=-1.0)),
        "$.exposure_t_yr",
    ),
    # --- exposure (select writes it; backgrounds and signal read it)
    Case("exposure_negative", "signal", "exposure", json_doc(sets("exposure_t_yr", value=-1.0)), "$.exposure_t_yr"),
    Case(
        "exposure_missing_live_time",
        "backgrounds",
        "exposure",
        json_doc(lambda d: d.pop("live_time_s")),
        "$",
        "live_time_s",
    ),
    Case("exposure_truncated", "signal", "exposure", raw_bytes(lambda b: b[:-10]), None, "not valid JSON"),
    # --- mass grid (mass-grid writes it from the configuration and the signal model; signal reads it)
    Case(
        "mass_grid_limit_mass_off_grid",
        "mass-grid",
        "config",
        config(sets("limits", "masses_gev", value=[33.0])),
        "$.limits.masses_gev[0]",
        "grid",
    ),
    Case("mass_grid_empty", "signal", "mass_grid", json_doc(sets("masses_gev", value=[])), "$.masses_gev"),
    Case(
        "mass_grid_negative_mass",
        "signal",
        "mass_grid",
        json_doc(sets("masses_gev", value=[-10.0, 50.0])),
        "$.masses_gev[0]",
    ),
    Case(
        "templates_ragged",
        "likelihood",
        "templates",
        json_doc(lambda d: next(iter(d["components"].values()))["template"][0].pop()),
        "template",
        "shape",
    ),
    Case(
        "templates_observed_shape",
        "likelihood",
        "templates",
        json_doc(lambda d: d["observed"].pop()),
        "observed",
        "shape",
    ),
    Case(
        "signal_negative_rate",
        "likelihood",
        "signal",
        json_doc(lambda d: d["templates"][0].__setitem__(0, -1.0)),
        "$.templates[0][0]",
    ),
    Case(
        "signal_wrong_bin_count",
        "likelihood",
        "signal",
        json_doc(lambda d: d["templates"][1].pop()),
        "templates",
        "bins",
    ),
    Case(
        "signal_arrays_disagree",
        "likelihood",
        "signal",
        json_doc(lambda d: d["masses_gev"].pop()),
        "$.reference_cross_section_cm2",
        "mismatch",
    ),
    Case(
        "workspace_schema_invalid",
        "fit",
        "workspace",
        json_doc(lambda d: d.pop("observations")),
        None,
        "not a valid pyhf workspace",
    ),
    Case("workspace_not_json", "fit", "workspace", raw_bytes(lambda b: b"\x89PNG\r\n"), None, "UTF-8"),
    Case(
        "workspace_observation_longer_than_samples",
        "fit",
        "workspace",
        json_doc(lambda d: d["observations"][0]["data"].append(1.0)),
        "$.channels[0].samples[0].data",
        "bins",
    ),
    Case(
        "workspace_unsupported_version",
        "limits",
        "workspace",
        json_doc(sets("version", value="2.0.0")),
        "$.version",
        "version",
    ),
    Case(
        "workspace_duplicate_key",
        "fit",
        "workspace",
        raw_bytes(lambda b: b'{"version": "1.0.0", "version": "1"}'),
        "version",
        "twice",
    ),
    Case(
        "workspace_nan_literal",
        "limits",
        "workspace",
        raw_bytes(lambda b: b.replace(b'"data": [', b'"data": [NaN, ', 1)),
        None,
        "NaN",
    ),
    Case("workspace_deeply_nested", "fit", "workspace", raw_bytes(lambda b: nested(100_000).encode()), None, "nested"),
    Case("patchset_digest_mismatch", "limits", "patchset", json_doc(_bad_digest), "$.metadata.digests"),
    Case(
        "patchset_duplicate_patch",
        "limits",
        "patchset",
        json_doc(lambda d: d["patches"].append(d["patches"][0])),
        None,
        "Multiple patches",
    ),
    Case(
        "limits_point_workspace_truncated",
        "limits-point",
        "workspace",
        raw_bytes(lambda b: b[: len(b) // 3]),
        None,
        "not valid JSON",
    ),
    Case(
        "limits_point_patchset_digest_mismatch", "limits-point", "patchset", json_doc(_bad_digest), "$.metadata.digests"
    ),
    # normsys lo = 0 (common in converted ROOT workspaces): every reader of a likelihood refuses it alike
    Case(
        "workspace_normsys_lo_zero",
        "fit",
        "workspace",
        json_doc(_normsys_lo_zero),
        "$.channels[0].samples[0].modifiers[0].data.lo",
        "positive",
    ),
    Case(
        "limits_point_workspace_normsys_lo_zero",
        "limits-point",
        "workspace",
        json_doc(_normsys_lo_zero),
        "$.channels[0].samples[0].modifiers[0].data.lo",
        "positive",
    ),
    Case(
        "limits_workspace_normsys_lo_zero",
        "limits",
        "workspace",
        json_doc(_normsys_lo_zero),
        "$.channels[0].samples[0].modifiers[0].data.lo",
        "positive",
    ),
    Case(
        "hepdata_workspace_normsys_lo_zero",
        "hepdata",
        "workspace",
        json_doc(_normsys_lo_zero),
        "$.channels[0].samples[0].modifiers[0].data.lo",
        "positive",
    ),
    Case(
        "kit_workspace_normsys_lo_zero",
        "reinterpret",
        "kit",
        kit_dir(rehashed("BkgOnly.json", _normsys_lo_zero)),
        "$.channels[0].samples[0].modifiers[0].data.lo",
        "positive",
    ),
    Case(
        "workspace_unsupported_modifier",
        "fit",
        "workspace",
        json_doc(_shapesys),
        "$.channels[0].samples[0]",
        "not supported",
    ),
    Case(
        "workspace_staterror_wrong_length",
        "fit",
        "workspace",
        json_doc(_staterror_short),
        "$.channels[0].samples[0].modifiers[1].data",
        "bins, the sample",
    ),
    Case(
        "limits_point_workspace_two_staterrors",
        "limits-point",
        "workspace",
        json_doc(_two_staterrors),
        "$.channels[0].samples[1].modifiers[1].name",
        "one staterror name per channel",
    ),
    Case("patchset_zero_signal", "fit", "patchset", json_doc(_zero_signal_patch), "$.patches[0]", "no sensitivity"),
    Case(
        "limits_point_patchset_zero_signal",
        "limits-point",
        "patchset",
        json_doc(_zero_signal_patch),
        "$.patches[0]",
        "no sensitivity",
    ),
    Case(
        "patchset_schema_invalid",
        "limits",
        "patchset",
        json_doc(lambda d: d.pop("patches")),
        None,
        "not a valid pyhf patchset",
    ),
    # --- plots and HEPData inputs (tables written by earlier steps)
    Case("fit_missing_parameters", "plots", "fit", json_doc(lambda d: d.pop("parameters")), "$", "parameters"),
    Case("signal_for_plots_not_object", "plots", "signal", raw_bytes(lambda b: b"[1, 2]"), "$", "object"),
    Case("limits_nan", "plots", "limits", csv_text(replace_cell("limit_cm2", "nan")), "limit_cm2", "finite"),
    Case(
        "limits_missing_column",
        "hepdata",
        "limits",
        csv_text(lambda t: t.replace("expected_cm2", "expected", 1)),
        "expected_cm2",
        "missing",
    ),
    Case(
        "limits_negative",
        "hepdata",
        "limits",
        csv_text(replace_cell("expected_cm2", "-1e-46")),
        "expected_cm2",
        "positive",
    ),
    Case("cutflow_nul_byte", "plots", "cutflow", csv_text(lambda t: t.replace(",", ",\x00", 1)), None, "NUL"),
    Case(
        "cutflow_huge_field",
        "hepdata",
        "cutflow",
        csv_text(lambda t: t.replace("all", "a" * 200_000, 1)),
        None,
        "field",
    ),
    Case(
        "acceptance_non_numeric",
        "hepdata",
        "acceptance",
        csv_text(replace_cell("acceptance", "__import__")),
        "acceptance",
        "non-numeric",
    ),
    # --- reinterpretation: user spectra, signal models, the kit; verify
    Case(
        "spectrum_negative_rate",
        "reinterpret",
        "spectrum",
        csv_text(replace_cell("dr_de", "-0.5")),
        "$.rows[0].dr_de",
        "minimum",
    ),
    Case("spectrum_nan_rate", "reinterpret", "spectrum", csv_text(replace_cell("dr_de", "nan")), "$.rows[0].dr_de"),
    Case(
        "spectrum_non_monotonic_energies",
        "reinterpret",
        "spectrum",
        csv_text(replace_cell("energy_kev", "30")),
        "energy_kev",
        "increasing",
    ),
    Case(
        "spectrum_wrong_units",
        "reinterpret",
        "spectrum",
        csv_text(lambda t: t.replace("energy_kev,dr_de", "energy_ev,dr_de_per_kg_day", 1)),
        "energy_kev",
        "missing",
    ),
    Case("spectrum_2gb_sparse", "reinterpret", "spectrum", sparse_file(2 * 1024**3), None, "larger than"),
    Case(
        "model_mass_below_threshold",
        "signal-model",
        "signal_model",
        config(text=SUB_THRESHOLD_MODEL),
        "masses_gev",
        "no sensitivity at 3 GeV",
    ),
    Case(
        "model_only_masses_below_threshold",
        "reinterpret-model",
        "signal_model",
        config(text="model: si\nmasses_gev: [2.0, 3.0]\n"),
        "masses_gev",
        "no mass gives expected signal",
    ),
    Case(
        "signal_all_zero_template",
        "likelihood",
        "signal",
        json_doc(lambda d: d["templates"].__setitem__(0, [0.0] * len(d["templates"][0]))),
        "$.templates[0]",
        "no expected signal",
    ),
    Case("model_alias_bomb", "reinterpret-model", "signal_model", config(text=BILLION_LAUGHS), None, "alias"),
    Case(
        "model_python_tag",
        "reinterpret-model",
        "signal_model",
        config(text="model: !!python/object/apply:os.system ['touch EVALUATED']\n"),
        None,
        "YAML",
    ),
    Case("kit_file_tampered", "reinterpret", "kit", kit_dir(tamper("README.md")), "files.README.md.sha256"),
    Case(
        "kit_manifest_dotdot_path",
        "reinterpret",
        "kit",
        kit_dir(manifest_entry("../outside.txt", b"x")),
        "$.files",
        "../outside.txt",
    ),
    Case(
        "kit_manifest_absolute_path",
        "reinterpret",
        "kit",
        kit_dir(manifest_entry("/etc/hostname", b"x")),
        "$.files",
        "/etc/hostname",
    ),
    Case("kit_symlink_member", "reinterpret", "kit", kit_dir(outside_link), "files.README.md", "links"),
    Case(
        "kit_oversized_member",
        "reinterpret",
        "kit",
        kit_dir(sparse_member("efficiency.csv", 2 * 1024**3)),
        "files.efficiency.csv",
        "larger than",
    ),
    Case("kit_limits_nan", "kit", "limits", csv_text(replace_cell("expected_cm2", "nan")), "expected_cm2", "finite"),
    Case(
        "kit_response_er_truncated", "kit", "response_er", raw_bytes(lambda b: b[: len(b) // 2]), None, "not valid JSON"
    ),
    Case("verify_reference_nan", "verify", "limits", csv_text(replace_cell("limit_cm2", "nan")), "limit_cm2"),
    Case(
        "verify_yields_published_nan",
        "verify-yields",
        "published_yields",
        csv_text(replace_cell("fit_events", "nan")),
        "fit_events",
        "finite",
    ),
    Case(
        "verify_yields_published_missing_column",
        "verify-yields",
        "published_yields",
        csv_text(lambda t: "\n".join(line.rsplit(",", 1)[0] for line in t.splitlines()) + "\n"),
        "fit_error_high",
        "missing",
    ),
    Case(
        "verify_yields_fit_without_yields",
        "verify-yields",
        "fit",
        json_doc(lambda doc: doc.pop("yields")),
        "yields",
        "rerun the fit step",
    ),
    Case(
        "verify_yields_fit_negative_count",
        "verify-yields",
        "fit",
        json_doc(sets("yields", 0, "postfit_events", value=-1.0)),
        "$.yields[0].postfit_events",
    ),
    # --- efficiency curve (signal.efficiency.curve; the response step reads it) and upstream cuts
    Case(
        "config_efficiency_unknown",
        "validate-config",
        "config",
        config(sets("signal", "efficiency", value={"curve": "eff.csv", "band": "wide"})),
        "$.signal.efficiency",
    ),
    Case(
        "efficiency_curve_nan",
        "response-curve",
        "efficiency_curve",
        _curve(lambda r: r[1].__setitem__(1, "nan")),
        "efficiency",
        "not finite",
    ),
    Case(
        "efficiency_curve_above_one",
        "response-curve",
        "efficiency_curve",
        _curve(lambda r: r[2].__setitem__(3, "1.5")),
        "efficiency_hi",
        "outside [0, 1]",
    ),
    Case(
        "efficiency_curve_band_excludes_median",
        "response-curve",
        "efficiency_curve",
        _curve(lambda r: r[1].__setitem__(2, "0.7")),
        "efficiency_lo",
        "band",
    ),
    Case(
        "efficiency_curve_energies_not_increasing",
        "response-curve",
        "efficiency_curve",
        _curve(lambda r: r[2].__setitem__(0, "5")),
        "energy_kev",
        "strictly increasing",
    ),
    Case(
        "efficiency_curve_short_range",
        "response-curve",
        "efficiency_curve",
        _curve(lambda r: r[2].__setitem__(0, "50")),
        "energy_kev",
        "not extrapolated",
    ),
    Case(
        "efficiency_curve_missing_band",
        "response-curve",
        "efficiency_curve",
        csv_text(lambda t: t.replace(",efficiency_hi", ",eff_hi", 1)),
        "efficiency_hi",
        "missing",
    ),
    Case(
        "selected_upstream_efficiency_above_one",
        "response",
        "selected_meta",
        json_doc(sets("upstream_cuts", value=[{"name": "hotspot", "definition": "x", "efficiency": 1.5}])),
        "$.upstream_cuts[0].efficiency",
    ),
    Case(
        "response_for_other_binning",
        "signal",
        "response",
        json_doc(lambda d: d["energy_edges_kev"].pop()),
        "$.energy_edges_kev",
        "another binning",
    ),
    # --- the background model's external inputs (backgrounds reads them through the configuration)
    Case(
        "bg_template_binning_differs",
        "backgrounds-template",
        "bg_template",
        csv_text(lambda s: s.replace("3.0,10.0,", "3.0,11.0,")),
        "cs1_max_phd",
        "analysis binning",
    ),
    Case(
        "bg_template_bin_missing",
        "backgrounds-template",
        "bg_template",
        csv_text(lambda s: "\n".join(s.splitlines()[:-1]) + "\n"),
        "cs1_min_phd",
        "exactly once",
    ),
    Case(
        "bg_hdf5_not_inference_interface",
        "backgrounds-hdf5",
        "bg_hdf5",
        _not_inference_interface,
        "bins",
        "inference_interface",
    ),
    Case("bg_hdf5_not_hdf5", "backgrounds-hdf5", "bg_hdf5", raw_bytes(lambda b: b"not hdf5\n"), "templates/extra"),
    Case(
        "bg_spectrum_nan",
        "backgrounds-spectrum",
        "bg_spectrum",
        csv_text(lambda s: s.replace("5,0.1", "5,nan")),
        "rate_per_t_yr_kev",
        "finite",
    ),
    Case(
        "bg_spectrum_negative",
        "backgrounds-spectrum",
        "bg_spectrum",
        csv_text(lambda s: s.replace("5,0.1", "5,-0.1")),
        "rate_per_t_yr_kev",
        ">= 0",
    ),
    Case(
        "bg_spectrum_not_increasing",
        "backgrounds-spectrum",
        "bg_spectrum",
        csv_text(lambda s: s.replace("\n5,0.1", "\n3,0.1")),
        "energy_kev",
        "increase",
    ),
    Case(
        "bg_line_outside_response",
        "backgrounds",
        "config",
        config(_line_outside_response),
        "$.backgrounds.components.ar37.spectrum.lines.energies_kev[1]",
        "outside the energy range",
    ),
    Case(
        "bg_response_binning_differs",
        "backgrounds",
        "response",
        json_doc(lambda d: d["binning"]["cs1_edges_phd"].__setitem__(1, 4.0)),
        "binning.cs1_edges_phd",
        "binning",
    ),
    # --- input datasets (config section inputs; dmpreserve partition)
    Case(
        "config_inputs_unknown_url_scheme",
        "validate-config",
        "config",
        config(sets("inputs", "science", value={"location": "gopher://lake/run/", "files": ["a.parquet"]})),
        "$.inputs.science.location",
        "unknown URL scheme",
    ),
    Case(
        "config_inputs_remote_directory_without_files",
        "validate-config",
        "config",
        config(sets("inputs", "science", value={"location": "root://lake.example//store/run/"})),
        "$.inputs.science.files",
        "remote directory",
    ),
    Case(
        "config_inputs_sha256_of_unknown_file",
        "validate-config",
        "config",
        config(
            sets(
                "inputs",
                "calibration_er",
                value={"location": "https://lake.example/er.parquet", "sha256": {"nr.parquet": "0" * 64}},
            )
        ),
        "$.inputs.calibration_er.sha256.nr.parquet",
        "names no file",
    ),
    Case(
        "config_inputs_files_per_job_zero",
        "validate-config",
        "config",
        config(sets("inputs", "science", value={"location": "data/run/", "files_per_job": 0})),
        "$.inputs.science.files_per_job",
    ),
    Case("partition_truncated", "partition", "science", raw_bytes(lambda b: b[: len(b) // 2]), None, "Parquet"),
    Case(
        "partition_sidecar_live_time_missing",
        "partition",
        "science",
        sidecar(lambda d: d.pop("live_time_s")),
        "$",
        "live_time_s",
        names="sidecar",
    ),
    # --- released text tables: events (import-events) and efficiency curves (import-efficiency)
    Case(
        "import_events_extra_column",
        "import-events",
        "events_table",
        csv_text(lambda t: t.replace("10.0,3.5\n", "10.0,3.5,0.7\n")),
        "line 3",
        "3 fields, expected 2",
    ),
    Case(
        "import_events_missing_column",
        "import-events",
        "events_table",
        csv_text(lambda t: t.replace("20.0,3.9\n", "20.0\n")),
        "line 4",
        "1 fields, expected 2",
    ),
    Case(
        "import_events_nan",
        "import-events",
        "events_table",
        csv_text(lambda t: t.replace("10.0,3.5", "10.0,nan")),
        "log10_cs2",
        "not finite",
    ),
    Case(
        "import_events_outside_roi",
        "import-events",
        "events_table",
        csv_text(lambda t: t.replace("20.0,3.9", "120.0,3.9")),
        "cs1_phd",
        "outside the ROI cut roi_cs1",
    ),
    Case(
        "import_efficiency_above_one",
        "import-efficiency",
        "eff_upper",
        csv_text(lambda t: t.replace("10.0,0.84", "10.0,1.2")),
        "efficiency",
        "outside [0, 1]",
    ),
    Case(
        "import_efficiency_negative",
        "import-efficiency",
        "eff_lower",
        csv_text(lambda t: t.replace("1.0,0.18", "1.0,-0.1")),
        "efficiency",
        "outside [0, 1]",
    ),
    Case(
        "import_efficiency_energies_not_increasing",
        "import-efficiency",
        "eff_median",
        csv_text(lambda t: t.replace("5.0,0.6", "0.8,0.6")),
        "energy_kev",
        "strictly increasing (data row 3)",
    ),
    # --- provenance
    Case(
        "provenance_missing_input",
        "provenance",
        "science",
        lambda src, dest: dest / "gone.parquet",
        None,
        "does not exist",
    ),
]


def _argv(case: Case, good: dict[str, Path], tmp_path: Path) -> tuple[list[str], Path, Path]:
    """The argument list, the damaged file to be named, and the output directory."""
    dest, out = tmp_path / "in", tmp_path / "out"
    out.mkdir()
    named = case.damage(good[case.target], dest)
    bad = {
        case.target: named.with_suffix(".parquet")
        if named.suffix == ".json" and good[case.target].suffix == ".parquet"
        else named
    }
    if good[case.target].is_dir():  # a directory: the damaged file inside it is what the error must name
        bad[case.target] = dest / good[case.target].name
    if case.names == "sidecar":
        named = named.with_suffix(".json")
    argv = [
        case.command.removesuffix("-model").split("-")[0]
        if case.command.startswith("backgrounds")
        else case.command.removesuffix("-model").removesuffix("-curve").removesuffix("-dir")
    ]
    argv += EXTRA.get(case.command, [])
    for option, key in INPUTS[case.command].items():
        argv += [option, str(bad.get(key, good[key]))]
    if case.command == "provenance":
        (tmp_path / "good_output.txt").write_text("x")
    for option, name in OUTPUTS[case.command].items():
        argv += [option] + ([str(out / name)] if name else [])
    return argv, named, out


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_input_fails_cleanly(
    case: Case, good: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    argv, named, out = _argv(case, good, tmp_path)
    capsys.readouterr()
    status = main(argv)
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert status == 2, err
    lines = [line for line in err.splitlines() if not line.startswith("INFO ")]
    assert len(lines) == 1, err
    prefix = f"dmpreserve {argv[0]}: error: {named}: "
    assert lines[0].startswith(prefix), lines[0]
    rest = lines[0][len(prefix) :]
    if case.field is not None:
        assert rest.startswith(case.field) or case.field in rest.split(": ")[0], rest
    assert case.text in rest, rest
    assert "Traceback" not in err
    leftovers = [p for p in out.rglob("*") if not p.is_dir()]
    assert leftovers == [], f"partial output left behind: {leftovers}"
    assert not (tmp_path / "EVALUATED").exists()


def test_released_good_inputs_import(good: dict[str, Path], tmp_path: Path) -> None:
    """The undamaged released inputs import cleanly: each import row fails for its one damage only."""
    for command in ("import-events", "import-efficiency"):
        argv = [command, *EXTRA.get(command, [])]
        argv += [x for o, k in INPUTS[command].items() for x in (o, str(good[k]))]
        argv += [x for o, name in OUTPUTS[command].items() for x in (o, str(tmp_path / name))]
        assert main(argv) == 0, command
    assert len(pq.read_table(tmp_path / "science.parquet")) == EVENTS_TABLE.count("\n") - 1
    assert (tmp_path / "efficiency.csv").read_text().count("\n") == 1 + EFFICIENCY_FILES["eff_median"].count("\n")


def test_table_covers_every_entry_point() -> None:
    """Every subcommand that reads a user file has cases; the table has at least 40 cases."""
    assert len(CASES) >= 40
    assert {c.command for c in CASES} >= set(INPUTS)
    assert len({c.id for c in CASES}) == len(CASES)
    # every subcommand of the CLI has rows here or is named, with where its bad input is tested, in ELSEWHERE
    from dmpreserve.cli import build_parser

    (sub,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    assert not set(INPUTS) & set(ELSEWHERE)
    assert set(sub.choices) - set(ELSEWHERE) <= set(INPUTS), sorted(set(sub.choices) - set(ELSEWHERE) - set(INPUTS))
    assert set(ELSEWHERE) <= set(sub.choices), sorted(set(ELSEWHERE) - set(sub.choices))


# ---------------------------------------------------------------------------------- Snakemake


@pytest.fixture(scope="module")
def workflow_copy(tmp_path_factory, mdc_dir: Path, pipeline_dir: Path) -> Path:
    """A copy of the workflow whose results/ already holds the small pipeline's outputs."""
    work = tmp_path_factory.mktemp("hostile_wf")
    for item in ("Snakefile", "workflow", "schemas"):
        (shutil.copytree if (REPO / item).is_dir() else shutil.copy)(REPO / item, work / item)
    (work / "tests/data").mkdir(parents=True)
    shutil.copy(REPO / "tests/data/test_config.yaml", work / "tests/data/test_config.yaml")
    shutil.copytree(mdc_dir, work / "results/mdc")
    for sub in ("selection", "backgrounds", "response", "signal", "likelihood"):
        shutil.copytree(pipeline_dir / sub, work / "results" / sub)
    # the workflow's first job (every step reads its results/config.resolved.yaml); its log is not wanted
    proc = subprocess.run(
        snakemake_argv("results/config.resolved.yaml", "--allowed-rules", "resolve_config", cores=1),
        cwd=work,
        env=env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    # the toy stage's threshold table, which limits_point reads (test configuration: table thresholds)
    proc = subprocess.run(
        snakemake_argv("results/toys/threshold_table.json", "--allowed-rules", "toys_shard", "thresholds", cores=1),
        cwd=work,
        env=env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    shutil.rmtree(work / "results/logs")
    stamp = time.time() - 1000  # in the past, in DAG order: every result newer than its inputs, older than now
    for f in [work / "tests/data/test_config.yaml", *(work / "workflow").rglob("*")]:
        os.utime(f, (stamp - 10, stamp - 10))
    os.utime(work / "results/config.resolved.yaml", (stamp - 5, stamp - 5))
    for i, sub in enumerate(("mdc", "selection", "backgrounds", "response", "signal", "likelihood", "toys")):
        for f in (work / "results" / sub).rglob("*"):
            os.utime(f, (stamp + i, stamp + i))
    return work


# (case id, rule, target file, file under results/ to damage)
SNAKEMAKE_CASES = [
    ("parquet_truncated", "select_part", "results/selection/parts/0.cutflow.json", "results/mdc/science.parquet"),
    # calib_er: read by backgrounds only (damaging science would make Snakemake rerun select first)
    ("sidecar_unit_disagrees", "backgrounds", "results/backgrounds/templates.json", "results/mdc/calib_er.parquet"),
    ("patchset_digest_mismatch", "limits_point", "results/limits/points/0.json", "results/likelihood/patchset.json"),
]


@pytest.mark.integration
@pytest.mark.parametrize(("case_id", "rule", "target", "victim"), SNAKEMAKE_CASES, ids=[c[0] for c in SNAKEMAKE_CASES])
def test_snakemake_marks_job_failed(
    workflow_copy: Path, tmp_path: Path, case_id: str, rule: str, target: str, victim: str
) -> None:
    (case,) = [c for c in CASES if c.id == case_id]
    work = tmp_path / "wf"
    shutil.copytree(workflow_copy, work)  # copy2: modification times kept, nothing is out of date
    victim_path = work / victim
    damaged = case.damage(victim_path, tmp_path / "damaged")
    for p in (damaged, damaged.with_suffix(".json")):
        if p.exists():
            shutil.copyfile(p, victim_path.with_name(p.name))
    proc = subprocess.run(
        snakemake_argv(target, "--force", "--allowed-rules", rule, cores=1),
        cwd=work,
        env=env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode != 0, proc.stderr[-3000:]
    assert f"Error in rule {rule}" in proc.stderr, proc.stderr[-3000:]
    log = next((work / "results/logs").rglob("*.log")).read_text()
    errors = [line for line in log.splitlines() if ": error: " in line]
    assert len(errors) == 1 and errors[0].startswith(f"dmpreserve {rule.replace('_', '-')}: error: "), log
    assert f"{Path(victim).parent}/{damaged.name}: " in errors[0], errors[0]
    assert not (work / target).exists()
    assert not list((work / "results").rglob("*.part"))
