"""Subcommands of the selection: ``select-part`` (one group of science files) and ``select`` (the gather).

The workflow runs one ``select-part`` job per group of science files, then one ``select`` job
(:mod:`dmpreserve.selection.scatter`).  Each Parquet file has its JSON sidecar of the same stem
beside it.
"""

from __future__ import annotations

import argparse
import logging

LOG = logging.getLogger("dmpreserve")


def register(sub, add) -> None:
    """Add ``select-part`` and ``select`` to the ``dmpreserve`` parser."""
    p = add(
        sub,
        "select-part",
        "apply the selection to one group of science files (streaming)",
        "Validate the science files of one part (sidecars and Parquet schemas, without loading the data; the files "
        "must agree), then stream them in the given order through the configured cuts, checking the values batch "
        "by batch: the part's selected events and its cut flow (JSON, exact counts). Memory stays bounded "
        "whatever the size of the files.",
    )
    p.add_argument(
        "--config",
        required=True,
        metavar="YAML",
        help="the resolved configuration (results/config.resolved.yaml): the cuts (selection.cuts)",
    )
    p.add_argument(
        "--science",
        required=True,
        nargs="+",
        metavar="PARQUET",
        help="science files of the part, in order (a directory: its *.parquet, sorted)",
    )
    p.add_argument("--selected", required=True, metavar="PARQUET", help="the part's selected events (+ .json sidecar)")
    p.add_argument("--cutflow", required=True, metavar="JSON", help="the part's cut flow (schemas/select_part)")
    p.add_argument("--progress", action="store_true", help="progress bar (events)")
    p.set_defaults(handler=run_select_part)

    p = add(
        sub,
        "select",
        "gather the selection's parts; cut flow, signal acceptance and exposure",
        "Check that the parts of the scattered selection come from this configuration and agree, concatenate "
        "their selected events in the given order, sum their cut flows exactly, compute the NR signal acceptance "
        "from the simulation and the exposure (fiducial mass x the science files' summed live time).",
    )
    p.add_argument(
        "--config",
        required=True,
        metavar="YAML",
        help="the resolved configuration (results/config.resolved.yaml), the one the parts were selected with",
    )
    p.add_argument("--parts", required=True, nargs="+", metavar="PARQUET", help="the select-part outputs, in order")
    p.add_argument(
        "--part-cutflows", required=True, nargs="+", metavar="JSON", help="their cut flows, in the same order"
    )
    p.add_argument(
        "--sim-nr",
        required=True,
        nargs="+",
        metavar="PARQUET",
        help="NR simulation (one or more files, or a directory)",
    )
    p.add_argument("--selected", required=True, metavar="PARQUET", help="selected science events (+ .json sidecar)")
    p.add_argument(
        "--cutflow",
        required=True,
        metavar="CSV",
        help="the summed cut flow to write: events after each cut, cumulative and step efficiency "
        "(results/selection/cutflow.csv)",
    )
    p.add_argument(
        "--acceptance",
        required=True,
        metavar="CSV",
        help="the NR signal acceptance of all cuts vs true recoil energy [keV], with its MC-statistics error, "
        "to write (results/selection/acceptance.csv)",
    )
    p.add_argument(
        "--exposure",
        required=True,
        metavar="JSON",
        help="exposure: fiducial mass x summed live time [t yr] (read by backgrounds and signal)",
    )
    p.set_defaults(handler=run_select)


def run_select_part(args: argparse.Namespace) -> None:
    """``dmpreserve select-part``."""
    from dmpreserve.config import load_config
    from dmpreserve.selection.scatter import select_part

    part = select_part(
        load_config(args.config), args.science, selected=args.selected, cutflow=args.cutflow, progress=args.progress
    )
    LOG.info(
        "part of %d files: %d of %d events selected, live time %.6g s",
        len(part.files),
        part.n_selected,
        part.n_events,
        part.live_time_s,
    )


def run_select(args: argparse.Namespace) -> None:
    """``dmpreserve select``."""
    from dmpreserve.config import load_config
    from dmpreserve.selection.scatter import gather

    res = gather(
        load_config(args.config),
        args.parts,
        args.part_cutflows,
        args.sim_nr,
        selected=args.selected,
        cutflow=args.cutflow,
        acceptance=args.acceptance,
        exposure=args.exposure,
    )
    LOG.info(
        "exposure %.6g t yr (fiducial mass %.4g t x live time %.4g d)",
        res.exposure.exposure_t_yr,
        res.exposure.fiducial_mass_t,
        res.exposure.live_time_s / 86400.0,
    )
    for row in res.cutflow.rows():
        LOG.info("cut %-16s %8d events (%.4g cumulative)", row[0], row[2], row[3])
