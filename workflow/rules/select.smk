rule select:
    """Apply the configured cuts: selected events, cut flow, signal acceptance vs NR energy, and the exposure
    (fiducial mass x live time, computed once here for the backgrounds and signal steps)."""
    input:
        config=rules.resolve_config.output.config,
        science=rules.mdc.output.science,
        science_meta=rules.mdc.output.science_meta,
        sim_nr=rules.mdc.output.sim_nr,
        sim_nr_meta=rules.mdc.output.sim_nr_meta,
    output:
        selected=f"{R}/selection/selected.parquet",
        selected_meta=f"{R}/selection/selected.json",
        cutflow=report(f"{R}/selection/cutflow.csv", caption="../report/cutflow.rst", category="Selection"),
        acceptance=f"{R}/selection/acceptance.csv",
        exposure=f"{R}/selection/exposure.json",
    log:
        f"{R}/logs/select.log",
    resources:
        mem_mb=2000,
        kubernetes_memory_limit="2Gi",
    shell:
        with_dirs(
            "dmpreserve select --config {input.config} --science {input.science} --sim-nr {input.sim_nr} "
            "--selected {output.selected} --cutflow {output.cutflow} --acceptance {output.acceptance} "
            "--exposure {output.exposure} > {log} 2>&1"
        )
