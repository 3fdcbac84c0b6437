"""REANA submission files, checked without REANA: reana.yaml and its HTCondor/Slurm variants, the
Gherkin tests, and the rule properties REANA's Snakemake engine needs (shell rules that create their
own directories, one global versioned container, kubernetes_memory_limit).  `reana-client validate` and the
Snakemake 7.32.4 dry run are in the CI stage .ci/stages/reana.sh (their own virtual environments)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dmpreserve import __version__

REPO = Path(__file__).resolve().parents[2]
SPECS = {
    "kubernetes": REPO / "reana.yaml",
    "htcondor": REPO / "workflow" / "reana" / "reana-htcondor.yaml",
    "slurm": REPO / "workflow" / "reana" / "reana-slurm.yaml",
}
BACKENDS = {"htcondor": "htcondorcern", "slurm": "slurmcern"}

#: REANA's Gherkin steps used here (reana_commons.gherkin_parser.functions); the CI stage checks the
#: feature files against the real parser too.
STEPS = (
    r"the workflow is finished",
    r'the workflow status should be "\w+"',
    r"all the outputs should be included in the workspace",
    r'the workspace should (?:contain|include) "[^"]+"',
    r'the file "[^"]+" should include "[^"]+"',
    r'the sha256 checksum of the file "[^"]+" should be "[0-9a-f]{64}"',
)


def _spec(name: str) -> dict:
    return yaml.safe_load(SPECS[name].read_text(encoding="utf-8"))


def _rule_all_targets() -> set[str]:
    text = (REPO / "Snakefile").read_text(encoding="utf-8")
    block = text[text.index("rule all:") :]
    return {t.replace("{R}", "results") for t in re.findall(r'f?"(\{R\}/[^"]+)"', block)}


@pytest.mark.parametrize("name", sorted(SPECS))
def test_spec_inputs_outputs_tests(name):
    spec = _spec(name)
    assert spec["workflow"]["type"] == "snakemake"
    assert (REPO / spec["workflow"]["file"]).is_file()
    for path in spec["inputs"]["files"] + spec["tests"]["files"]:
        assert (REPO / path).is_file(), path
    for path in spec["inputs"]["directories"]:
        assert (REPO / path).is_dir(), path
    # REANA passes the default configfile: (the steps read results/config.resolved.yaml, merged from it).
    config = spec["inputs"]["parameters"]["input"]
    assert f'configfile: "{config}"' in (REPO / "Snakefile").read_text(encoding="utf-8")
    targets = _rule_all_targets()
    for path in spec["outputs"]["files"]:
        assert path in targets, f"{path} is not a target of rule all"
    for directory in spec["outputs"].get("directories", []):
        assert any(t.startswith(directory + "/") for t in targets), directory
    assert {"results/likelihood/BkgOnly.json", "results/limits/limits.csv", "results/hepdata/submission.tar.gz"} <= set(
        spec["outputs"]["files"]
    )


def test_variants_differ_only_in_the_snakefile():
    base = _spec("kubernetes")
    for name in BACKENDS:
        spec = _spec(name)
        assert spec["workflow"]["file"] == f"workflow/reana/Snakefile.{name}"
        spec["workflow"]["file"] = base["workflow"]["file"]
        assert spec == base


def test_feature_files_use_reana_steps():
    files = [REPO / f for f in _spec("kubernetes")["tests"]["files"]]
    outputs = set(_spec("kubernetes")["outputs"]["files"]) | _rule_all_targets()
    checksums = 0
    for feature in files:
        text = feature.read_text(encoding="utf-8")
        assert re.search(r"^Feature: ", text, flags=re.M)
        for line in text.splitlines():
            match = re.match(r"\s*(?:Given|When|Then|And|But) (.*)$", line)
            if not match:
                continue
            step = match.group(1)
            assert any(re.fullmatch(p, step) for p in STEPS), f"{feature.name}: unknown REANA step: {step}"
            for path in re.findall(r'(?:file|contain|include) "(results/[^"]+)"', step):
                assert path in outputs, f"{feature.name}: {path} is not produced by the workflow"
            if step.startswith("the sha256 checksum"):
                checksums += 1
                assert not step.endswith('"' + "0" * 64 + '"'), f"{feature.name}: placeholder digest"
    assert checksums >= 2, "the likelihood's sha256 must be tested"


def test_rules_are_reana_ready():
    config = yaml.safe_load((REPO / "workflow" / "config" / "config.yaml").read_text(encoding="utf-8"))
    image = config["container_image"]
    assert re.fullmatch(r"docker://[a-z0-9./-]+/dmpreserve:" + re.escape(__version__), image)
    # One global container: directive, before the rules are included (it applies to rules defined after it).
    snakefile = (REPO / "Snakefile").read_text(encoding="utf-8")
    assert re.search(r"^container: IMAGE$", snakefile, flags=re.M), "no global container: IMAGE in the Snakefile"
    with_rules = [
        m.start()
        for m in re.finditer(r'^include: "([^"]+)"$', snakefile, flags=re.M)
        if re.search(r"^rule \w+:", (REPO / m.group(1)).read_text(encoding="utf-8"), flags=re.M)
    ]
    assert with_rules, "the Snakefile includes no rule files"
    assert snakefile.index("container: IMAGE") < min(with_rules), "container: must precede the rules"
    # One helper creates the output and log directories REANA does not create.
    common = (REPO / "workflow" / "rules" / "common.smk").read_text(encoding="utf-8")
    assert "def with_dirs(command):\n" in common and "mkdir -p $(dirname {{output}} {{log}}) && {command}" in common
    for smk in sorted((REPO / "workflow" / "rules").glob("*.smk")):
        text = smk.read_text(encoding="utf-8")
        for block in re.split(r"^(?=rule \w+:)", text, flags=re.M)[1:]:
            name = block.split(":")[0]
            assert re.search(r"^\s+shell:\n\s+with_dirs\(", block, flags=re.M), (
                f"{smk.name}: {name} is not a shell rule creating its output/log directories (with_dirs)"
            )
            assert re.search(r"^\s+log:", block, flags=re.M), f"{smk.name}: {name} has no log"
            assert not re.search(r"^\s+container:", block, flags=re.M), f"{smk.name}: {name}: use the global container"
            assert 'kubernetes_memory_limit="' in block, f"{smk.name}: {name} has no kubernetes_memory_limit"


@pytest.mark.integration
def test_backend_variant_dry_run_sets_compute_backend(tmp_path):
    """Every job of the Slurm variant carries REANA's compute_backend hint (pinned Snakemake 9).

    Run in a copy of what REANA uploads (reana.yaml inputs), which also proves those inputs suffice.
    """
    spec = _spec("slurm")
    for path in spec["inputs"]["files"] + ["tests/data/test_config.yaml"]:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPO / path, tmp_path / path)
    for path in spec["inputs"]["directories"]:
        shutil.copytree(REPO / path, tmp_path / path, ignore=shutil.ignore_patterns("__pycache__"))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "-n",
            "--snakefile",
            spec["workflow"]["file"],
            "--configfile",
            "tests/data/test_config.yaml",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    out = proc.stdout + proc.stderr
    jobs = re.findall(r"^\s+resources: (.*)$", out, flags=re.M)
    assert jobs and all("compute_backend=slurmcern" in job for job in jobs)
