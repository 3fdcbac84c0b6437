# Efficiency-curve file of signal.efficiency ({curve: CSV, includes_roi: ...}; docs/physics.md, Signal): an input
# of the response rule, so that a new curve reruns it; none with the default signal.efficiency: simulation.
_EFFICIENCY = config["signal"].get("efficiency", "simulation")
EFFICIENCY_CURVE = _EFFICIENCY["curve"] if isinstance(_EFFICIENCY, dict) else None
if isinstance(EFFICIENCY_CURVE, dict):  # a released curve in three files: combined by rule import_efficiency
    EFFICIENCY_CURVE = f"{R}/inputs/efficiency_curve.csv"


rule response:
    """NR response matrix (true recoil energy x analysis bin) and ER line response (NEST), for the signal step,
    the NEST-simulated background shapes and the reinterpretation kit.

    The NR efficiency comes from the NR simulation's cuts (signal.efficiency: simulation) or from an external curve
    (signal.efficiency.curve); upstream cuts declared in the selected events' sidecar multiply it.
    """
    input:
        config=rules.resolve_config.output.config,
        manifest=INPUTS_MANIFEST or [],
        sim_nr=input_files("simulation_nr"),
        sim_nr_meta=input_sidecars("simulation_nr"),
        selected_meta=rules.select.output.selected_meta,
        curve=EFFICIENCY_CURVE or [],
    output:
        response_nr=f"{R}/response/response_nr.json",
        response_er=f"{R}/response/response_er.json",
    params:
        curve=lambda wildcards, input: f"--efficiency-curve {input.curve}" if input.curve else "",
    log:
        f"{R}/logs/response.log",
    resources:
        mem_mb=2000,
        kubernetes_memory_limit="2Gi",
    shell:
        with_dirs(
            "dmpreserve response --config {input.config} --sim-nr {input.sim_nr} "
            "--selected-sidecar {input.selected_meta} {params.curve} --response-nr {output.response_nr} "
            "--response-er {output.response_er} --no-progress > {log} 2>&1"
        )


rule signal:
    """The signal model's templates for the mass grid (SIGNAL_MODEL, --config signal_model=): its recoil spectra
    folded through the NR response of the response rule."""
    input:
        config=rules.resolve_config.output.config,
        model=SIGNAL_MODEL,
        response_nr=rules.response.output.response_nr,
        exposure=rules.select.output.exposure,
        mass_grid=rules.mass_grid.output.grid,
    output:
        signal=f"{R}/signal/signal.json",
        spectra=f"{R}/signal/spectra.csv",
    log:
        f"{R}/logs/signal.log",
    resources:
        mem_mb=1000,
        kubernetes_memory_limit="1Gi",
    shell:
        with_dirs(
            "dmpreserve signal --config {input.config} --model {input.model} --response-nr {input.response_nr} "
            "--exposure {input.exposure} --mass-grid {input.mass_grid} --signal {output.signal} "
            "--spectra {output.spectra} > {log} 2>&1"
        )
