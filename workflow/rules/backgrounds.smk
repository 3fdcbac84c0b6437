rule backgrounds:
    """Background templates, expected counts, rate constraints and per-bin statistical uncertainties of every
    component of backgrounds.components (select's events and exposure; the NEST responses for nest shapes)."""
    input:
        config=rules.resolve_config.output.config,
        selected=rules.select.output.selected,
        selected_meta=rules.select.output.selected_meta,
        exposure=rules.select.output.exposure,
        # the NEST responses of nest shapes (rule response, in signal.smk, included after this file)
        response_nr=f"{R}/response/response_nr.json",
        response_er=f"{R}/response/response_er.json",
        manifest=INPUTS_MANIFEST or [],
        science=input_files("science"),
        calib_er=input_files("calibration_er"),
        isolated_s1=input_files("isolated_s1"),
        isolated_s2=input_files("isolated_s2"),
        sidecars=[
            *input_sidecars("science"),
            *input_sidecars("calibration_er"),
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
            "--isolated-s1 {input.isolated_s1} --isolated-s2 {input.isolated_s2} "
            "--response-nr {input.response_nr} --response-er {input.response_er} "
            "--selected {input.selected} --exposure {input.exposure} --templates {output.templates} "
            "--summary {output.summary} > {log} 2>&1"
        )
