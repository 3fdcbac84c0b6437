# Toy stage: the Neyman threshold table c(s, b_eff) (statistics.neyman_threshold: table).
# One job per (reference shape, shard) writes every toy's t~mu, mu_hat, stream key and fit status to
# Parquet; the merge job builds results/toys/threshold_table.json and fails, naming the shard, when a
# shard's fraction of failed fits exceeds statistics.toy_failure_fraction.  Shards are ordinary
# outputs: a rerun with the same inputs reuses them, and provenance lists them.


rule toys_shard:
    """t~mu of the toys of one reference signal shape and shard (Parquet)."""
    input:
        config=rules.resolve_config.output.config,
        workspace=rules.likelihood.output.workspace,
        patchset=rules.likelihood.output.patchset,
    output:
        shard=f"{R}/toys/shards/shape{{shape}}_shard{{shard}}.parquet",
    log:
        f"{R}/logs/toys/shape{{shape}}_shard{{shard}}.log",
    wildcard_constraints:
        shape="[0-9]+",
        shard="[0-9]+",
    resources:
        mem_mb=1500,
        kubernetes_memory_limit="2Gi",
    shell:
        with_dirs(
            "dmpreserve toys-shard --config {input.config} --workspace {input.workspace} --patchset {input.patchset} "
            "--shape {wildcards.shape} --shard {wildcards.shard} -o {output.shard} > {log} 2>&1"
        )


TOY_SHARDS = expand(
    f"{R}/toys/shards/shape{{shape}}_shard{{shard}}.parquet",
    shape=range(N_TABLE_SHAPES),
    shard=range(N_TABLE_SHARDS),
)


rule thresholds:
    """Merge the toy shards into the threshold table (critical value vs expected signal events)."""
    input:
        config=rules.resolve_config.output.config,
        shards=TOY_SHARDS,
    output:
        table=f"{R}/toys/threshold_table.json",
    log:
        f"{R}/logs/thresholds.log",
    resources:
        mem_mb=1000,
        kubernetes_memory_limit="1Gi",
    shell:
        with_dirs("dmpreserve thresholds --config {input.config} --shards {input.shards} -o {output.table} > {log} 2>&1")
