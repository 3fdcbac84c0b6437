# Unbinned likelihood (likelihood.unbinned): fine, smoothed templates of every background component and of the
# signal of every mass, and the fine bin of every selected event (results/likelihood/unbinned_templates.h5), read by
# limits_point (--unbinned).  Built from the inputs of the response, backgrounds and signal steps; needed only when
# the configuration has likelihood.unbinned (UNBINNED_TEMPLATES, common.smk).


rule unbinned_templates:
    """Fine (cS1, log10 cS2) templates for the unbinned likelihood: every background component and the signal
    rebuilt on likelihood.unbinned's grid over the ROI, smoothed by a Gaussian, normalised to 1; observed bins."""
    input:
        config=rules.resolve_config.output.config,
        model=SIGNAL_MODEL,
        mass_grid=rules.mass_grid.output.grid,
        selected=rules.select.output.selected,
        selected_meta=rules.select.output.selected_meta,
        exposure=rules.select.output.exposure,
        response_er=rules.response.output.response_er,
        curve=EFFICIENCY_CURVE or [],
        manifest=INPUTS_MANIFEST or [],
        science=input_files("science"),
        calib_er=input_files("calibration_er"),
        isolated_s1=input_files("isolated_s1"),
        isolated_s2=input_files("isolated_s2"),
        sim_nr=input_files("simulation_nr"),
        sidecars=[
            *input_sidecars("science"),
            *input_sidecars("calibration_er"),
            *input_sidecars("isolated_s1"),
            *input_sidecars("isolated_s2"),
            *input_sidecars("simulation_nr"),
        ],
    output:
        templates=f"{R}/likelihood/unbinned_templates.h5",
    params:
        curve=lambda wildcards, input: f"--efficiency-curve {input.curve}" if input.curve else "",
        # what the file holds: a change reruns the rule on existing results (Snakemake's params rerun trigger)
        content="shapes, observed bins, fine NR and ER responses",
    log:
        f"{R}/logs/unbinned_templates.log",
    resources:
        mem_mb=2000,
        kubernetes_memory_limit="2Gi",
    shell:
        with_dirs(
            "dmpreserve unbinned-templates --config {input.config} --model {input.model} "
            "--mass-grid {input.mass_grid} --science {input.science} --calib-er {input.calib_er} "
            "--isolated-s1 {input.isolated_s1} --isolated-s2 {input.isolated_s2} --sim-nr {input.sim_nr} "
            "{params.curve} --response-er {input.response_er} --selected {input.selected} "
            "--exposure {input.exposure} -o {output.templates} --no-progress > {log} 2>&1"
        )
