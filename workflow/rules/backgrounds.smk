rule backgrounds:
    """Background templates, expected counts, rate constraints and per-bin statistical uncertainties of every
    component of backgrounds.components (select's events and exposure; the NEST responses for nest shapes)."""
    input:
        config=rules.resolve_config.output.config,
        selected=rules.select.output.selected,
        selected_meta=rules.select.output.selected_meta,
        exposure=rules.select.output.exposure,
        # the NEST responses of nest shapes (made by the signal rule, included after this file; with the response
        # step: f"{R}/response/response_nr.json" and f"{R}/response/response_er.json")
        response_nr=f"{R}/signal/response_nr.json",
        response_er=f"{R}/signal/response_er.json",
        science=rules.mdc.output.science,
        calib_er=rules.mdc.output.calib_er,
        isolated_s1=rules.mdc.output.isolated_s1,
        isolated_s2=rules.mdc.output.isolated_s2,
        sidecars=[
            rules.mdc.output.science_meta,
            rules.mdc.output.calib_er_meta,
            rules.mdc.output.isolated_s1_meta,
            rules.mdc.output.isolated_s2_meta,
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
