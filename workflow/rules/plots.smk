rule plots:
    """Limit curve (PCL, unconstrained PLR, CLs over the PLR sensitivity band), analysis space, cut flow,
    acceptance, and the fit plots (pulls, correlations, POI scan, best-fit cross section per mass)."""
    input:
        limits=rules.limits.output.csv,
        limits_json=rules.limits.output.json,
        templates=rules.backgrounds.output.templates,
        signal=rules.signal.output.signal,
        selected=rules.select.output.selected,
        selected_meta=rules.select.output.selected_meta,
        cutflow=rules.select.output.cutflow,
        acceptance=rules.select.output.acceptance,
        fit=rules.fit.output.fit,
        references=[c["path"] for c in config["limits"].get("reference_curves") or []],
    output:
        limits_png=report(f"{R}/plots/limits.png", caption="../report/limits.rst", category="Limits"),
        limits_pdf=f"{R}/plots/limits.pdf",
        space_png=report(f"{R}/plots/analysis_space.png", caption="../report/analysis_space.rst", category="Data"),
        space_pdf=f"{R}/plots/analysis_space.pdf",
        cutflow_png=report(f"{R}/plots/cutflow.png", caption="../report/cutflow.rst", category="Selection"),
        acceptance_png=report(f"{R}/plots/acceptance.png", caption="../report/acceptance.rst", category="Selection"),
        pulls_png=report(f"{R}/plots/pulls.png", caption="../report/pulls.rst", category="Fit"),
        correlation_png=report(f"{R}/plots/correlation.png", caption="../report/correlation.rst", category="Fit"),
        scan_png=report(f"{R}/plots/poi_scan.png", caption="../report/poi_scan.rst", category="Fit"),
        best_fit_png=report(f"{R}/plots/best_fit.png", caption="../report/best_fit.rst", category="Fit"),
    params:
        references=lambda wildcards: " ".join(
            shlex.quote(f"--reference={c['label']}={c['path']}") for c in config["limits"].get("reference_curves") or []
        ),
    log:
        f"{R}/logs/plots.log",
    resources:
        mem_mb=1000,
        kubernetes_memory_limit="1Gi",
    shell:
        with_dirs(
            "dmpreserve plots --limits {input.limits} --limits-json {input.limits_json} --templates {input.templates} "
            "--signal {input.signal} "
            "--selected {input.selected} --cutflow {input.cutflow} --acceptance {input.acceptance} --fit {input.fit} "
            "{params.references} --outdir $(dirname {output.limits_png}) > {log} 2>&1"
        )
