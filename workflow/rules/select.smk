# The selection, scattered: one select_part job per group of inputs.science.files_per_job science files
# (SCIENCE_GROUPS, inputs.smk; the mock-data challenge is one file, so one part), then the select gather
# job: the selected events of the parts in part order, the exactly summed cut flow, the signal acceptance
# from the NR simulation and the exposure.


rule select_part:
    """Apply the configured cuts to one group of science files: its selected events and its cut flow."""
    input:
        config=rules.resolve_config.output.config,
        manifest=INPUTS_MANIFEST or [],
        science=science_group,
        science_meta=science_group_sidecars,
    output:
        selected=f"{R}/selection/parts/{{part}}.parquet",
        selected_meta=f"{R}/selection/parts/{{part}}.json",
        cutflow=f"{R}/selection/parts/{{part}}.cutflow.json",
    log:
        f"{R}/logs/select_part/{{part}}.log",
    wildcard_constraints:
        part="[0-9]+",
    resources:
        mem_mb=1000,
        kubernetes_memory_limit="1Gi",
    shell:
        with_dirs(
            "dmpreserve select-part --config {input.config} --science {input.science} "
            "--selected {output.selected} --cutflow {output.cutflow} > {log} 2>&1"
        )


rule select:
    """Gather the parts (selected events in part order, summed cut flow) and compute the signal acceptance vs
    NR energy and the exposure (fiducial mass x summed live time, computed once here for backgrounds and signal)."""
    input:
        config=rules.resolve_config.output.config,
        manifest=INPUTS_MANIFEST or [],
        parts=[f"{part}.parquet" for part in SELECT_PARTS],
        parts_meta=[f"{part}.json" for part in SELECT_PARTS],
        part_cutflows=[f"{part}.cutflow.json" for part in SELECT_PARTS],
        sim_nr=input_files("simulation_nr"),
        sim_nr_meta=input_sidecars("simulation_nr"),
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
            "dmpreserve select --config {input.config} --parts {input.parts} --part-cutflows {input.part_cutflows} "
            "--sim-nr {input.sim_nr} --selected {output.selected} --cutflow {output.cutflow} "
            "--acceptance {output.acceptance} --exposure {output.exposure} > {log} 2>&1"
        )
