rule select:
    """Apply the configured cuts: selected events, cut flow, signal acceptance vs NR energy."""
    input:
        config=CONFIGFILE,
        science=rules.mdc.output.science,
        science_meta=rules.mdc.output.science_meta,
        sim_nr=rules.mdc.output.sim_nr,
        sim_nr_meta=rules.mdc.output.sim_nr_meta,
    output:
        selected=f"{R}/selection/selected.parquet",
        selected_meta=f"{R}/selection/selected.json",
        cutflow=report(f"{R}/selection/cutflow.csv", caption="../report/cutflow.rst", category="Selection"),
        acceptance=f"{R}/selection/acceptance.csv",
    log:
        f"{R}/logs/select.log",
    container:
        IMAGE
    resources:
        mem_mb=2000,
        kubernetes_memory_limit="2Gi",
    shell:
        "mkdir -p $(dirname {output.selected}) $(dirname {log}) && "
        "dmpreserve select --config {input.config} --science {input.science} --sim-nr {input.sim_nr} "
        "--selected {output.selected} --cutflow {output.cutflow} --acceptance {output.acceptance} > {log} 2>&1"
