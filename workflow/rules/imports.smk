# Released data as text tables (docs/operations.md, "Released event tables"): a collaboration's events after all
# cuts (inputs.NAME.table) and its NR efficiency curve as three files (signal.efficiency.curve: {median, lower,
# upper}) become the project's own files before any step reads them.


rule import_events:
    """A released event table (inputs.NAME.table) -> reduced data (results/inputs/NAME.parquet + .json): every row
    checked (field count, finite, inside the configured ROI); live time, exposure, upstream cuts and detector from
    the table's description file.  After inputs_manifest, which checks the table's declared sha256."""
    input:
        config=rules.resolve_config.output.config,
        manifest=INPUTS_MANIFEST or [],
        table=lambda wildcards: TABLE_INPUTS[wildcards.name],
        description=lambda wildcards: config["inputs"][wildcards.name]["table"]["description"],
    output:
        parquet=f"{R}/inputs/{{name}}.parquet",
        sidecar=f"{R}/inputs/{{name}}.json",
    wildcard_constraints:
        name="|".join(TABLE_INPUTS) or "no-table-inputs",
    log:
        f"{R}/logs/import_events/{{name}}.log",
    resources:
        mem_mb=1000,
        kubernetes_memory_limit="1Gi",
    shell:
        with_dirs(
            "dmpreserve import-events --config {input.config} --input {wildcards.name} --table {input.table} "
            "--parquet {output.parquet} > {log} 2>&1"
        )


# signal.efficiency.curve given as three released files: combined into one CSV for the response rule.
_CURVE = (config["signal"].get("efficiency") or {}) if isinstance(config["signal"].get("efficiency"), dict) else {}
RELEASED_EFFICIENCY = _CURVE.get("curve") if isinstance(_CURVE.get("curve"), dict) else None


rule import_efficiency:
    """A released NR efficiency curve in three files (median, lower, upper; energy [keV], efficiency) -> the
    efficiency-curve CSV of the response rule (lower and upper interpolated onto the median's energies)."""
    input:
        median=RELEASED_EFFICIENCY["median"] if RELEASED_EFFICIENCY else [],
        lower=RELEASED_EFFICIENCY["lower"] if RELEASED_EFFICIENCY else [],
        upper=RELEASED_EFFICIENCY["upper"] if RELEASED_EFFICIENCY else [],
    output:
        curve=f"{R}/inputs/efficiency_curve.csv",
    params:
        flat_to=(
            f"--extend-flat-to-kev {RELEASED_EFFICIENCY['extend_flat_to_kev']}"
            if RELEASED_EFFICIENCY and "extend_flat_to_kev" in RELEASED_EFFICIENCY
            else ""
        ),
    log:
        f"{R}/logs/import_efficiency.log",
    resources:
        mem_mb=500,
        kubernetes_memory_limit="1Gi",
    shell:
        with_dirs(
            "dmpreserve import-efficiency --median {input.median} --lower {input.lower} --upper {input.upper} "
            "{params.flat_to} -o {output.curve} > {log} 2>&1"
        )
