# Limits: one job per mass (scatter over the mass index, so a cluster spreads the toys), then a
# gather job.  N is computed here with plain Python (the Snakefile cannot import dmpreserve):
# the masses of limits.masses_gev if given, else the signal model's own mass grid if it has one,
# else the configuration's signal grid; index i is the i-th selected mass in ascending order
# (dmpreserve.stats.limits.select_patches).  A malformed model file falls back to the configuration's
# grid here; the signal step then refuses it with a clear message.
# (N_LIMIT_MASSES is computed in common.smk, counting only; the masses themselves are resolved once by the
# mass_grid rule, which also checks N against them before any expensive step.)


rule limits_point:
    """All limits of one mass: Neyman t~mu (threshold table, toys or asymptotic), PCL, CLs, bands, p0/z0; with
    likelihood.unbinned on the unbinned likelihood of the fine templates (unbinned.smk)."""
    input:
        config=rules.resolve_config.output.config,
        workspace=rules.likelihood.output.workspace,
        patchset=rules.likelihood.output.patchset,
        table=THRESHOLD_TABLE or [],
        unbinned=UNBINNED_TEMPLATES or [],
    output:
        point=f"{R}/limits/points/{{index}}.json",
    log:
        f"{R}/logs/limits_point/{{index}}.log",
    params:
        table=lambda wildcards, input: f"--table {input.table}" if input.table else "",
        unbinned=lambda wildcards, input: f"--unbinned {input.unbinned}" if input.unbinned else "",
    wildcard_constraints:
        index="[0-9]+",
    resources:
        mem_mb=1500,
        kubernetes_memory_limit="2Gi",
    shell:
        with_dirs(
            "dmpreserve limits-point --config {input.config} --workspace {input.workspace} "
            "--patchset {input.patchset} {params.table} {params.unbinned} --index {wildcards.index} -o {output.point} "
            "> {log} 2>&1"
        )


rule limits:
    """Gather the per-mass limits into limits.csv / limits.json (cross sections in cm2)."""
    input:
        config=rules.resolve_config.output.config,
        workspace=rules.likelihood.output.workspace,
        patchset=rules.likelihood.output.patchset,
        points=expand(f"{R}/limits/points/{{index}}.json", index=range(N_LIMIT_MASSES)),
        table=THRESHOLD_TABLE or [],
        exposure=rules.select.output.exposure,
    output:
        csv=f"{R}/limits/limits.csv",
        json=f"{R}/limits/limits.json",
    params:
        table=lambda wildcards, input: f"--table {input.table}" if input.table else "",
    log:
        f"{R}/logs/limits.log",
    resources:
        mem_mb=1000,
        kubernetes_memory_limit="1Gi",
    shell:
        with_dirs(
            "dmpreserve limits --config {input.config} --workspace {input.workspace} --patchset {input.patchset} "
            "{params.table} --points {input.points} --exposure {input.exposure} --csv {output.csv} --json {output.json} "
            "--no-progress > {log} 2>&1"
        )
