rule signal:
    """NR response matrix and the signal model's templates for the mass grid (SIGNAL_MODEL, --config signal_model=)."""
    input:
        config=CONFIGFILE,
        model=SIGNAL_MODEL,
        sim_nr=rules.mdc.output.sim_nr,
        sim_nr_meta=rules.mdc.output.sim_nr_meta,
        templates=rules.backgrounds.output.templates,
    output:
        response=f"{R}/signal/response_nr.json",
        signal=f"{R}/signal/signal.json",
        spectra=f"{R}/signal/spectra.csv",
    log:
        f"{R}/logs/signal.log",
    container:
        IMAGE
    resources:
        mem_mb=2000,
        kubernetes_memory_limit="2Gi",
    shell:
        "mkdir -p $(dirname {output.signal}) $(dirname {log}) && "
        "dmpreserve signal --config {input.config} --model {input.model} --sim-nr {input.sim_nr} --templates {input.templates} "
        "--response {output.response} --signal {output.signal} --spectra {output.spectra} > {log} 2>&1"
