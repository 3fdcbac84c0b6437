rule backgrounds:
    """Background templates in (cS1, log10 cS2) and expected counts per component (select's events and exposure)."""
    input:
        config=rules.resolve_config.output.config,
        selected=rules.select.output.selected,
        selected_meta=rules.select.output.selected_meta,
        exposure=rules.select.output.exposure,
        science=rules.mdc.output.science,
        calib_er=rules.mdc.output.calib_er,
        sim_nr=rules.mdc.output.sim_nr,
        isolated_s1=rules.mdc.output.isolated_s1,
        isolated_s2=rules.mdc.output.isolated_s2,
        sidecars=[
            rules.mdc.output.science_meta,
            rules.mdc.output.calib_er_meta,
            rules.mdc.output.sim_nr_meta,
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
            "--sim-nr {input.sim_nr} --isolated-s1 {input.isolated_s1} --isolated-s2 {input.isolated_s2} "
            "--selected {input.selected} --exposure {input.exposure} --templates {output.templates} "
            "--summary {output.summary} > {log} 2>&1"
        )
