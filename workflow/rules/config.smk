rule resolve_config:
    """The first job: validate the merged configuration (schema and semantics) and write it, sorted, to
    results/config.resolved.yaml, the file every step reads.  It also checks limits.masses_gev against the
    signal model's mass grid and against the N_LIMIT_MASSES limit jobs scheduled, so a mismatch fails here,
    in seconds, naming the key."""
    input:
        configfiles=CONFIGFILES,
        model=SIGNAL_MODEL,
    output:
        config=f"{R}/config.resolved.yaml",
    params:
        config=json.dumps(config, sort_keys=True),
        source=" + ".join(CONFIGFILES) + " (+ --config KEY=VALUE)",
        expected_masses=N_LIMIT_MASSES,
    log:
        f"{R}/logs/resolve_config.log",
    resources:
        mem_mb=500,
        kubernetes_memory_limit="1Gi",
    shell:
        with_dirs(
            "dmpreserve resolve-config --config-json {params.config:q} --source {params.source:q} "
            "--signal-model {input.model} --expected-masses {params.expected_masses} -o {output.config} > {log} 2>&1"
        )
