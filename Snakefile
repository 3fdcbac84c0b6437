# dmpreserve: preserved liquid-xenon WIMP search.
#   snakemake --cores 2                      (default analysis, see README.md)
#   snakemake --cores 2 --configfile tests/data/test_config.yaml
# Every rule is a shell call of the dmpreserve CLI (REANA runs only shell rules), creates its own
# output and log directories, and runs in the project image with --use-singularity.

import os

import yaml

from snakemake.utils import min_version, validate

min_version("7.32.4")


configfile: "workflow/config/config.yaml"


validate(config, "schemas/config.schema.json")

# The analysis steps read the configuration file themselves: the first one given (--configfile
# wins over the default above).  Overrides with --config KEY=VALUE are not seen by the steps.
CONFIGFILE = os.path.relpath(str(workflow.configfiles[0]))
IMAGE = config["container_image"]
# Signal model file (RECAST-style rerun: --config signal_model=PATH); an input of the signal rule, so a
# new model reruns only the rules downstream of it.
SIGNAL_MODEL = config.get("signal_model") or "workflow/config/signal_model.yaml"
R = "results"


include: "workflow/rules/common.smk"
include: "workflow/rules/mdc.smk"
include: "workflow/rules/select.smk"
include: "workflow/rules/backgrounds.smk"
include: "workflow/rules/signal.smk"
include: "workflow/rules/likelihood.smk"
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
