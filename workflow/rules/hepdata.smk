rule hepdata:
    """HEPData record (hepdata-lib), validated with hepdata-validator; likelihood attached as HistFactory.

    Limits in both conventions (PCL/unconstrained PLR with Neyman construction, CLs), discovery p-values, fit tables;
    the reinterpretation kit attached as an additional resource.
    """
    input:
        limits=rules.limits.output.csv,
        templates=rules.backgrounds.output.templates,
        selected=rules.select.output.selected,
        selected_meta=rules.select.output.selected_meta,
        cutflow=rules.select.output.cutflow,
        acceptance=rules.select.output.acceptance,
        workspace=rules.likelihood.output.workspace,
        patchset=rules.likelihood.output.patchset,
        hs3=rules.likelihood.output.hs3,
        fit=rules.fit.output.fit,
        kit=rules.reinterpretation_kit.output.tarball,
        table=THRESHOLD_TABLE or [],
    output:
        submission=f"{R}/hepdata/submission.tar.gz",
    params:
        table=lambda wildcards, input: f"--thresholds {input.table}" if input.table else "",
    log:
        f"{R}/logs/hepdata.log",
    resources:
        mem_mb=1000,
        kubernetes_memory_limit="1Gi",
    shell:
        with_dirs(
            "dmpreserve hepdata --limits {input.limits} --templates {input.templates} --selected {input.selected} "
            "--cutflow {input.cutflow} --acceptance {input.acceptance} --workspace {input.workspace} "
            "--patchset {input.patchset} --hs3 {input.hs3} --fit {input.fit} --output {output.submission} "
            "--resource {input.kit} 'Reinterpretation kit: background-only workspace, NR and ER response matrices, "
            "energy binning, exposure, signal efficiency and limits, with a sha256 manifest (dmpreserve reinterpret "
            "--kit DIR)' {params.table} > {log} 2>&1"
        )
