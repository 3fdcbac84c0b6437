rule resolve_config:
    """The first job: validate the merged configuration (schema and semantics) and write it, sorted, to
    results/config.resolved.yaml, the file every step reads.  `signal_model` is left out: it names an input
    file of the workflow (of mass_grid and signal), so a new model reruns only those and what follows them."""
    input:
        configfiles=CONFIGFILES,
    output:
        config=f"{R}/config.resolved.yaml",
    params:
        config=json.dumps({k: v for k, v in config.items() if k != "signal_model"}, sort_keys=True),
        source=" + ".join(CONFIGFILES) + " (+ --config KEY=VALUE)",
    log:
        f"{R}/logs/resolve_config.log",
    resources:
        mem_mb=500,
        kubernetes_memory_limit="1Gi",
    shell:
        with_dirs(
            "dmpreserve resolve-config --config-json {params.config:q} --source {params.source:q} "
            "-o {output.config} > {log} 2>&1"
        )


rule mass_grid:
    """The mass grid, resolved once (the signal model's, else the configuration's); checks limits.masses_gev
    against it and the number of limit masses against the N_LIMIT_MASSES scattered limit jobs, so a mismatch
    fails in seconds, before the expensive steps, naming the key and the model file."""
    input:
        config=rules.resolve_config.output.config,
        model=SIGNAL_MODEL,
    output:
        grid=f"{R}/signal/mass_grid.json",
    params:
        expected_masses=N_LIMIT_MASSES,
    log:
        f"{R}/logs/mass_grid.log",
    resources:
        mem_mb=500,
        kubernetes_memory_limit="1Gi",
    shell:
        with_dirs(
            "dmpreserve mass-grid --config {input.config} --signal-model {input.model} "
            "--expected-masses {params.expected_masses} -o {output.grid} > {log} 2>&1"
        )
