rule provenance:
    """Checksums of every input and output, config hash, package versions, git commit, container image; with
    dataset inputs also their manifest (location/URL, local copy's sha256, storage plugin version)."""
    input:
        config=rules.resolve_config.output.config,
        data=list(rules.mdc.output) if USES_MDC else [],
        manifest=INPUTS_MANIFEST or [],
        results=[
            *(f"{part}{ext}" for part in SELECT_PARTS for ext in (".parquet", ".json", ".cutflow.json")),
            *rules.select.output,
            *rules.backgrounds.output,
            *rules.response.output,
            *rules.signal.output,
            *rules.likelihood.output,
            *rules.fit.output,
            *(TOY_SHARDS if THRESHOLD_TABLE else []),
            *([THRESHOLD_TABLE] if THRESHOLD_TABLE else []),
            *([UNBINNED_TEMPLATES] if UNBINNED_TEMPLATES else []),
            *rules.limits.output,
            *rules.plots.output,
            *rules.hepdata.output,
            *rules.reinterpretation_kit.output,
        ],
    output:
        provenance=f"{R}/provenance.json",
    params:
        manifest=lambda wildcards, input: f"--inputs-manifest {input.manifest}" if input.manifest else "",
    log:
        f"{R}/logs/provenance.log",
    resources:
        mem_mb=500,
        kubernetes_memory_limit="1Gi",
    shell:
        with_dirs(
            "dmpreserve provenance --config {input.config} --inputs {input.config} {input.data} {params.manifest} "
            "--outputs {input.results} --output {output.provenance} > {log} 2>&1"
        )


rule inputs_manifest:
    """Check the declared sha256 of every file of the dataset inputs (local copies, after storage retrieval;
    a mismatch fails here, before any step reads the file) and record, per input and file, the location,
    local path, sha256 and storage plugin version (results/inputs/manifest.json, part of provenance)."""
    input:
        config=rules.resolve_config.output.config,
        files=MANIFEST_FILES,
    output:
        manifest=f"{R}/inputs/manifest.json",
    params:
        files=manifest_args,
    log:
        f"{R}/logs/inputs_manifest.log",
    resources:
        mem_mb=500,
        kubernetes_memory_limit="1Gi",
    shell:
        with_dirs("dmpreserve inputs-manifest --config {input.config} {params.files} -o {output.manifest} > {log} 2>&1")
