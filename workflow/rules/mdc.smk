rule mdc:
    """Generate the mock-data challenge (reduced data, calibrations, NR simulation) with NEST.  Its outputs are the
    inputs configured as `mdc` (the default, inputs.smk); with no such input nothing asks for them and it does not run."""
    input:
        config=rules.resolve_config.output.config,
    output:
        science=f"{R}/mdc/science.parquet",
        science_meta=f"{R}/mdc/science.json",
        truth=f"{R}/mdc/truth.parquet",
        calib_er=f"{R}/mdc/calib_er.parquet",
        calib_er_meta=f"{R}/mdc/calib_er.json",
        calib_nr=f"{R}/mdc/calib_nr.parquet",
        calib_nr_meta=f"{R}/mdc/calib_nr.json",
        sim_nr=f"{R}/mdc/sim_nr.parquet",
        sim_nr_meta=f"{R}/mdc/sim_nr.json",
        isolated_s1=f"{R}/mdc/isolated_s1.parquet",
        isolated_s1_meta=f"{R}/mdc/isolated_s1.json",
        isolated_s2=f"{R}/mdc/isolated_s2.parquet",
        isolated_s2_meta=f"{R}/mdc/isolated_s2.json",
    log:
        f"{R}/logs/mdc.log",
    resources:
        mem_mb=3000,
        kubernetes_memory_limit="3Gi",
    shell:
        with_dirs(
            "dmpreserve mdc --config {input.config} --science {output.science} --truth {output.truth} "
            "--calib-er {output.calib_er} --calib-nr {output.calib_nr} --sim-nr {output.sim_nr} "
            "--isolated-s1 {output.isolated_s1} --isolated-s2 {output.isolated_s2} > {log} 2>&1"
        )
