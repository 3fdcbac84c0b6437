rule backgrounds:
    """Background templates in (cS1, log10 cS2) and expected counts per component (select's events and exposure)."""
    input:
        config=rules.resolve_config.output.config,
        selected=rules.select.output.selected,
        selected_meta=rules.select.output.selected_meta,
        exposure=rules.select.output.exposure,
        manifest=INPUTS_MANIFEST or [],
        science=input_files("science"),
        calib_er=input_files("calibration_er"),
        sim_nr=input_files("simulation_nr"),
        isolated_s1=input_files("isolated_s1"),
        isolated_s2=input_files("isolated_s2"),
        sidecars=[
            *input_sidecars("science"),
            *input_sidecars("calibration_er"),
            *input_sidecars("simulation_nr"),
            *input_sidecars("isolated_s1"),
            *input_sidecars("isolated_s2"),
        ],
    output:
        templates=f"{R}/backgrounds/templates.json",
        summary=report(f"{R}/backgrounds/summary.csv", caption="../report/backgrounds.rst", category="Backgrounds"),
    log:
        f"{R}/logs/backgrounds.log",
    resources:
        mem_mb=2000,
        kubernetes_memory_limit="2Gi",
    shell:
        with_dirs(
            "dmpreserve backgrounds --config {input.config} --science {input.science} --calib-er {input.calib_er} "
            "--sim-nr {input.sim_nr} --isolated-s1 {input.isolated_s1} --isolated-s2 {input.isolated_s2} "
            "--selected {input.selected} --exposure {input.exposure} --templates {output.templates} "
            "--summary {output.summary} > {log} 2>&1"
        )
