rule limits:
    """90% CL upper limits on sigma_SI per mass with expected bands (asymptotic CLs)."""
    input:
        config=CONFIGFILE,
        workspace=rules.likelihood.output.workspace,
        patchset=rules.likelihood.output.patchset,
    output:
        csv=f"{R}/limits/limits.csv",
        json=f"{R}/limits/limits.json",
    log:
        f"{R}/logs/limits.log",
    container:
        IMAGE
    resources:
        mem_mb=1500,
        kubernetes_memory_limit="2Gi",
    shell:
        "mkdir -p $(dirname {output.csv}) $(dirname {log}) && "
        "dmpreserve limits --config {input.config} --workspace {input.workspace} --patchset {input.patchset} "
        "--csv {output.csv} --json {output.json} > {log} 2>&1"
