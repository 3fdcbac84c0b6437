rule likelihood:
    """Serialized likelihood: pyhf background-only workspace and signal patchset; HS3 copy (50 GeV patch)."""
    input:
        config=rules.resolve_config.output.config,
        templates=rules.backgrounds.output.templates,
        signal=rules.signal.output.signal,
    output:
        workspace=f"{R}/likelihood/BkgOnly.json",
        patchset=f"{R}/likelihood/patchset.json",
        hs3=f"{R}/likelihood/likelihood_hs3.json",
    log:
        f"{R}/logs/likelihood.log",
    resources:
        mem_mb=1000,
        kubernetes_memory_limit="1Gi",
    shell:
        with_dirs(
            "dmpreserve likelihood --config {input.config} --templates {input.templates} --signal {input.signal} "
            "--workspace {output.workspace} --patchset {output.patchset} --hs3 {output.hs3} > {log} 2>&1"
        )


rule fit:
    """Maximum-likelihood fits: background-only (pulls, correlations, goodness of fit) and signal-plus-background."""
    input:
        workspace=rules.likelihood.output.workspace,
        patchset=rules.likelihood.output.patchset,
    output:
        fit=report(f"{R}/fit/fit.json", caption="../report/fit.rst", category="Fit"),
    params:
        gof_toys=config["statistics"].get("gof_toys", 100),
        # the per-mass best fits at the masses whose limits are computed (limits.masses_gev), else at every patch
        masses=" ".join(["--masses", *map(str, config["limits"]["masses_gev"])]) if config["limits"].get("masses_gev") else "",
    log:
        f"{R}/logs/fit.log",
    resources:
        mem_mb=1000,
        kubernetes_memory_limit="1Gi",
    shell:
        with_dirs(
            "dmpreserve fit --workspace {input.workspace} --patchset {input.patchset} --no-progress "
            "--gof-toys {params.gof_toys} {params.masses} "
            "--output {output.fit} > {log} 2>&1"
        )
