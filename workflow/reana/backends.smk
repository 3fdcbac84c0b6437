# Shared by the REANA compute-backend variants (Snakefile.htcondor, Snakefile.slurm): after the
# main Snakefile is included, add REANA's per-step hints (compute_backend and its options) to the
# resources of every rule.  REANA's Snakemake engine reads them from each job's resources; there is
# no workflow-wide default.  Rule.resources is a dict under Snakemake 7.32.4 and a Resources mapping
# under 9.x; both accept update() with plain values.


def reana_backend(**hints):
    for rule_ in workflow.rules:
        rule_.resources.update(hints)
