rule hepdata:
    """HEPData record (hepdata-lib), validated with hepdata-validator; likelihood attached as HistFactory."""
    input:
        limits=rules.limits.output.csv,
        templates=rules.backgrounds.output.templates,
        selected=rules.select.output.selected,
        selected_meta=rules.select.output.selected_meta,
        cutflow=rules.select.output.cutflow,
        acceptance=rules.select.output.acceptance,
        workspace=rules.likelihood.output.workspace,
        patchset=rules.likelihood.output.patchset,
    output:
        submission=f"{R}/hepdata/submission.tar.gz",
    log:
        f"{R}/logs/hepdata.log",
    container:
        IMAGE
    resources:
        mem_mb=1000,
        kubernetes_memory_limit="1Gi",
    shell:
        "mkdir -p $(dirname {output.submission}) $(dirname {log}) && "
        "dmpreserve hepdata --limits {input.limits} --templates {input.templates} --selected {input.selected} "
        "--cutflow {input.cutflow} --acceptance {input.acceptance} --workspace {input.workspace} "
        "--patchset {input.patchset} --output {output.submission} > {log} 2>&1"
