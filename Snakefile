# dmpreserve: preserved liquid-xenon WIMP search.
#   snakemake --cores 2                      (default analysis, see README.md)
#   snakemake --cores 2 --configfile tests/data/test_config.yaml
# Every rule is a shell call of the dmpreserve CLI (REANA runs only shell rules) that creates its own
# output and log directories (with_dirs, common.smk); all run in the project image (the global
# container: below; --use-singularity / --software-deployment-method apptainer).

import copy
import json
import os

import yaml

from snakemake.utils import min_version, validate

min_version("7.32.4")


configfile: "workflow/config/config.yaml"


# A complete analysis configuration (workflow/analyses/NAME/config.yaml) says `standalone: true`: it replaces the
# default configuration instead of layering on it (as --replace-workflow-config does), so that sections it
# leaves out (e.g. a background component of the mock-data default) do not creep in.  Later --configfile files
# and --config KEY=VALUE still layer on it.
# (Snakemake >= 8: workflow.config_settings.overwrite_config; 7.x, as on REANA 0.9: workflow.overwrite_config.)
_CLI_CONFIG = getattr(getattr(workflow, "config_settings", workflow), "overwrite_config", None) or {}
STANDALONE = bool(_CLI_CONFIG.get("standalone"))
if STANDALONE:
    config.clear()
    config.update(copy.deepcopy(_CLI_CONFIG))


include: "workflow/rules/config_check.smk"


# Configuration: Snakemake merges the default configfile: above, then every --configfile in order, then
# --config KEY=VALUE.  The first job (rule resolve_config) validates that merged dict and writes it to
# results/config.resolved.yaml, the one file every step reads: every override reaches every step.
CONFIGFILES = list(dict.fromkeys(os.path.relpath(str(f)) for f in workflow.configfiles))
CONFIGFILES.sort(key=lambda f: f != "workflow/config/config.yaml")  # merge order: the default first
if STANDALONE:
    CONFIGFILES = [f for f in CONFIGFILES if f != "workflow/config/config.yaml"]
exit_if_invalid(config, CONFIGFILES)
validate(config, "schemas/config.schema.json")

IMAGE = config["container_image"]
# Signal model file (RECAST-style rerun: --config signal_model=PATH): an input of mass_grid (its mass grid sizes
# the limits scatter), signal and reinterpretation_kit, and not part of the resolved configuration, so a new
# model reruns only those rules and what follows them.
SIGNAL_MODEL = config.get("signal_model") or "workflow/config/signal_model.yaml"
R = config.get("results_dir", "results")  # an analysis of workflow/analyses/ writes into results/NAME


# Every rule runs in the project image (versioned reference, config key container_image).
container: IMAGE


include: "workflow/rules/common.smk"
include: "workflow/rules/config.smk"
include: "workflow/rules/inputs.smk"
include: "workflow/rules/imports.smk"
include: "workflow/rules/mdc.smk"
include: "workflow/rules/select.smk"
include: "workflow/rules/backgrounds.smk"
include: "workflow/rules/signal.smk"
include: "workflow/rules/likelihood.smk"
include: "workflow/rules/unbinned.smk"
include: "workflow/rules/toys.smk"
include: "workflow/rules/limits.smk"
include: "workflow/rules/plots.smk"
include: "workflow/rules/reinterpret.smk"
include: "workflow/rules/hepdata.smk"
include: "workflow/rules/provenance.smk"


rule all:
    input:
        f"{R}/likelihood/BkgOnly.json",
        f"{R}/likelihood/patchset.json",
        f"{R}/limits/limits.csv",
        f"{R}/limits/limits.json",
        f"{R}/hepdata/submission.tar.gz",
        f"{R}/plots/limits.png",
        f"{R}/provenance.json",
        f"{R}/reinterpretation/kit.json",
        f"{R}/reinterpretation/kit.tar.gz",
    default_target: True
