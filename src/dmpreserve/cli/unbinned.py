"""The ``dmpreserve unbinned-templates`` subcommand: its parser next to its handler (library imported late).

Writes ``results/likelihood/unbinned_templates.h5`` (:mod:`dmpreserve.artifacts.unbinned`) for the unbinned
likelihood of ``likelihood.unbinned``, from the inputs of the ``response``, ``backgrounds`` and ``signal`` steps.
"""

from __future__ import annotations

import argparse
import logging
import time

from dmpreserve.cli.backgrounds import add_dataset_arguments, background_inputs
from dmpreserve.cli.signal import add_nr_response_arguments

LOG = logging.getLogger("dmpreserve")


def register(sub, add) -> None:
    """Add the ``unbinned-templates`` subcommand to the ``dmpreserve`` parser."""
    p = add(
        sub,
        "unbinned-templates",
        "fine, smoothed templates for the unbinned likelihood (likelihood.unbinned)",
        "Rebuild every background component of backgrounds.components and the signal of every mass of the mass "
        "grid on the fine (cS1 [phd], log10 cS2/phd) grid of likelihood.unbinned (its bins over analysis.binning's "
        "ROI), smooth each by a Gaussian of likelihood.unbinned.smoothing_bins fine bins, normalise each to sum 1, "
        "and write them with the fine bin of every selected event to one HDF5 file. The NR response is rebuilt "
        "from the NR simulation (efficiency curve and upstream cuts as the response step); the ER lines of "
        "response_er.json are resimulated with NEST and the response step's seed "
        "(likelihood.unbinned.er_events_per_line events per line, default 2000 as the response step). "
        "Normalisations stay in the pyhf workspace.",
    )
    add_dataset_arguments(p)
    add_nr_response_arguments(p)
    p.add_argument(
        "--response-er",
        required=True,
        metavar="JSON",
        help="the response step's response_er.json (its ER line energies [keV] are resimulated on the fine grid)",
    )
    p.add_argument(
        "--selected",
        required=True,
        metavar="PARQUET",
        help="the select step's selected events (columns cs1_phd [phd], cs2_phd [phd]); its sidecar's upstream "
        "cuts enter the NR response",
    )
    p.add_argument("--exposure", required=True, metavar="JSON", help="the select step's exposure.json [t yr]")
    p.add_argument("--mass-grid", required=True, metavar="JSON", help="the mass-grid step's mass_grid.json [GeV]")
    p.add_argument(
        "--model",
        metavar="YAML",
        default=None,
        help="signal model file (as for dmpreserve signal); default: SI with the configuration's halo",
    )
    p.add_argument("-o", "--output", required=True, metavar="H5", help="output: unbinned_templates.h5")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(handler=run_unbinned_templates)


def run_unbinned_templates(args: argparse.Namespace) -> None:
    """``dmpreserve unbinned-templates``."""
    import os

    from dmpreserve.artifacts.reduced import read_dataset, upstream_cuts
    from dmpreserve.artifacts.response import read_efficiency_curve, read_line_response
    from dmpreserve.artifacts.unbinned import write_unbinned_templates
    from dmpreserve.cli.signal import model_and_mass_grid
    from dmpreserve.config import load_config
    from dmpreserve.unbinned import build_unbinned_templates, unbinned_setting

    start = time.perf_counter()
    cfg = load_config(args.config)
    setting = unbinned_setting(cfg)
    model, grid = model_and_mass_grid(args.model, args.mass_grid)

    inputs = background_inputs(args)
    templates = build_unbinned_templates(
        cfg,
        inputs,
        sim_nr=read_dataset(args.sim_nr, kinds=("simulation_nr",)),
        curve=read_efficiency_curve(args.efficiency_curve) if args.efficiency_curve else None,
        upstream=upstream_cuts(inputs.selected.meta, path=os.path.splitext(args.selected)[0] + ".json"),
        er_line_energies_kev=read_line_response(args.response_er).line_energies_kev,
        masses_gev=grid.masses_gev,
        model=model,
        progress=not args.no_progress,
    )
    n1, n2 = templates.shape
    LOG.info(
        "%d x %d fine bins (%.4g phd x %.4g dex), smoothed by a Gaussian of %g bins, %d ER events per line",
        n1,
        n2,
        templates.cs1_edges[1] - templates.cs1_edges[0],
        templates.log10_cs2_edges[1] - templates.log10_cs2_edges[0],
        templates.smoothing_bins,
        setting["er_events_per_line"],
    )
    LOG.info(
        "%d background shapes (%s), %d signal masses %.4g-%.4g GeV, %d observed events",
        len(templates.sample_names),
        ", ".join(templates.sample_names),
        len(templates.masses_gev),
        templates.masses_gev[0],
        templates.masses_gev[-1],
        templates.observed_bins.size,
    )
    write_unbinned_templates(args.output, templates)
    LOG.info("wrote %s in %.1f s", args.output, time.perf_counter() - start)
