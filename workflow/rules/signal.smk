rule signal:
    """NR and ER responses and the signal model's templates for the mass grid (SIGNAL_MODEL, --config signal_model=).

    The ER line response (for ER signal models in the reinterpretation kit) is made here, with the NR one.
    """
    input:
        config=rules.resolve_config.output.config,
        model=SIGNAL_MODEL,
        manifest=INPUTS_MANIFEST or [],
        sim_nr=input_files("simulation_nr"),
        sim_nr_meta=input_sidecars("simulation_nr"),
        exposure=rules.select.output.exposure,
        mass_grid=rules.mass_grid.output.grid,
    output:
        response=f"{R}/signal/response_nr.json",
        response_er=f"{R}/signal/response_er.json",
        signal=f"{R}/signal/signal.json",
        spectra=f"{R}/signal/spectra.csv",
    log:
        f"{R}/logs/signal.log",
    resources:
        mem_mb=2000,
        kubernetes_memory_limit="2Gi",
    shell:
        with_dirs(
            "dmpreserve signal --config {input.config} --model {input.model} --sim-nr {input.sim_nr} "
            "--exposure {input.exposure} --mass-grid {input.mass_grid} --response {output.response} --response-er {output.response_er} "
            "--signal {output.signal} --spectra {output.spectra} --no-progress > {log} 2>&1"
        )
