rule reinterpretation_kit:
    """Reinterpretation kit: workspace, NR/ER responses, efficiency, limits, threshold table, the unbinned
    likelihood's templates (likelihood.unbinned), manifest, tarball."""
    input:
        config=rules.resolve_config.output.config,
        model=SIGNAL_MODEL,
        workspace=rules.likelihood.output.workspace,
        response=rules.response.output.response_nr,
        response_er=rules.response.output.response_er,
        templates=rules.backgrounds.output.templates,
        acceptance=rules.select.output.acceptance,
        limits=rules.limits.output.csv,
        table=THRESHOLD_TABLE or [],
        unbinned=UNBINNED_TEMPLATES or [],
    output:
        manifest=f"{R}/reinterpretation/kit.json",
        tarball=f"{R}/reinterpretation/kit.tar.gz",
        workspace=f"{R}/reinterpretation/BkgOnly.json",
        response_nr=f"{R}/reinterpretation/response_nr.json",
        response_er=f"{R}/reinterpretation/response_er.json",
        efficiency=f"{R}/reinterpretation/efficiency.csv",
        limits=f"{R}/reinterpretation/limits.csv",
        model=f"{R}/reinterpretation/signal_model.yaml",
        readme=f"{R}/reinterpretation/README.md",
    params:
        table=lambda wildcards, input: f"--thresholds {input.table}" if input.table else "",
        unbinned=lambda wildcards, input: f"--unbinned {input.unbinned}" if input.unbinned else "",
    log:
        f"{R}/logs/reinterpretation_kit.log",
    resources:
        mem_mb=1000,
        kubernetes_memory_limit="1Gi",
    shell:
        with_dirs(
            "dmpreserve kit --config {input.config} --signal-model {input.model} --workspace {input.workspace} "
            "--response {input.response} --response-er {input.response_er} --templates {input.templates} "
            "--acceptance {input.acceptance} --limits {input.limits} {params.table} {params.unbinned} "
            "--outdir $(dirname {output.manifest}) --tarball {output.tarball} > {log} 2>&1"
        )
