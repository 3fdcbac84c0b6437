"""Subcommands of the toy stage: ``toys-shard`` (one Snakemake job) and ``thresholds`` (merge into the table).

Handlers import the library late (see :mod:`dmpreserve.cli.steps`).
"""

from __future__ import annotations

import argparse
import logging

LOG = logging.getLogger("dmpreserve")


def register(sub, add) -> None:
    """Add ``toys-shard`` and ``thresholds`` to the ``dmpreserve`` parser."""
    p = add(
        sub,
        "toys-shard",
        "toys of one reference signal shape and shard for the threshold table (scatter job)",
        "t~mu of toys at every point of the signal-events grid (statistics.threshold_table) for reference shape "
        "--shape and shard --shard; writes Parquet with t~mu, mu_hat, stream key and fit status per toy.",
    )
    p.add_argument(
        "--config",
        required=True,
        metavar="YAML",
        help="the resolved configuration (results/config.resolved.yaml): statistics.threshold_table and seed",
    )
    p.add_argument("--workspace", required=True, metavar="JSON", help="background-only pyhf workspace")
    p.add_argument("--patchset", required=True, metavar="JSON", help="signal patchset (reference shapes)")
    p.add_argument("--shape", required=True, type=int, metavar="K", help="reference shape index (0-based)")
    p.add_argument("--shard", required=True, type=int, metavar="I", help="shard index (0-based)")
    p.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="PARQUET",
        help="the shard to write (results/toys/shards/shapeK_shardI.parquet)",
    )
    p.set_defaults(handler=run_toys_shard)

    p = add(
        sub,
        "thresholds",
        "merge toy shards into the Neyman threshold table",
        "Merge the Parquet shards of 'toys-shard' into threshold_table.json (schemas/threshold_table.schema.json): "
        "the cl quantile of t~mu per (shape, signal events) with its toy error; fails naming a shard whose "
        "fraction of failed fits exceeds statistics.toy_failure_fraction.",
    )
    p.add_argument(
        "--config",
        required=True,
        metavar="YAML",
        help="the resolved configuration (results/config.resolved.yaml): limits.cl and statistics.toy_failure_fraction",
    )
    p.add_argument(
        "--shards",
        required=True,
        nargs="+",
        metavar="PARQUET",
        help="the shards of 'dmpreserve toys-shard', every shape and shard (results/toys/shards/*.parquet)",
    )
    p.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="JSON",
        help="the threshold table to write (results/toys/threshold_table.json)",
    )
    p.set_defaults(handler=run_thresholds)


def run_toys_shard(args: argparse.Namespace) -> None:
    """``dmpreserve toys-shard``."""
    import numpy as np

    from dmpreserve.artifacts.likelihood import read_likelihood
    from dmpreserve.config import load_config
    from dmpreserve.stats.limits import table_settings
    from dmpreserve.stats.thresholds import shard_for_patch, write_shard

    cfg = load_config(args.config)
    lik = read_likelihood(args.workspace, args.patchset)
    settings = table_settings(cfg)
    table, meta = shard_for_patch(lik.workspace, lik.patchset, settings, shape=args.shape, shard=args.shard)
    ok = table.column("ok").to_numpy()
    LOG.info(
        "shape %d (m = %s GeV, b_eff = %.3g) shard %d: %d toys, %d failed fits",
        args.shape,
        meta["mass_gev"],
        float(meta["b_eff"]),
        args.shard,
        ok.size,
        int(np.sum(~ok)),
    )
    write_shard(args.output, table, meta)


def run_thresholds(args: argparse.Namespace) -> None:
    """``dmpreserve thresholds``."""
    from dmpreserve.artifacts.thresholds import write_threshold_table
    from dmpreserve.config import load_config
    from dmpreserve.stats.limits import table_settings
    from dmpreserve.stats.thresholds import merge_shards

    cfg = load_config(args.config)
    table = merge_shards(
        args.shards, cl=float(cfg["limits"]["cl"]), failure_fraction=table_settings(cfg).failure_fraction
    )
    for k, (m, b) in enumerate(zip(table.shape_mass_gev, table.shape_b_eff)):
        LOG.info(
            "shape %d (m = %.4g GeV, b_eff = %.3g): c = %s",
            k,
            m,
            b,
            " ".join(f"{c:.2f}" for c in table.thresholds[k]),
        )
    write_threshold_table(args.output, table)
