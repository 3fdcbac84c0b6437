"""The ``dmpreserve unbinned-templates`` subcommand: its parser next to its handler (library imported late).

Writes ``results/likelihood/unbinned_templates.h5`` (:mod:`dmpreserve.artifacts.unbinned`) for the unbinned
likelihood of ``likelihood.unbinned``, from the inputs of the ``response``, ``backgrounds`` and ``signal`` steps.
"""

from __future__ import annotations

import argparse
import logging
import time

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
    p.add_argument("--config", required=True, metavar="YAML", help="the resolved configuration")
    p.add_argument("--science", required=True, nargs="+", metavar="PARQUET", help="the science dataset")
    p.add_argument("--calib-er", nargs="+", metavar="PARQUET", help="ER calibration dataset (sideband, accidentals)")
    p.add_argument("--isolated-s1", nargs="+", metavar="PARQUET", help="isolated-S1 dataset (accidentals)")
    p.add_argument("--isolated-s2", nargs="+", metavar="PARQUET", help="isolated-S2 dataset (accidentals)")
    p.add_argument(
        "--sim-nr", required=True, nargs="+", metavar="PARQUET", help="the NR simulation: one or more files (a dataset)"
    )
    p.add_argument(
        "--efficiency-curve",
        default=None,
        metavar="CSV",
        help="the local copy of signal.efficiency.curve (columns energy_kev, efficiency, efficiency_lo, "
        "efficiency_hi); required exactly when the configuration names a curve",
    )
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

    from dmpreserve.artifacts.exposure import read_exposure
    from dmpreserve.artifacts.reduced import read_dataset, read_reduced, upstream_cuts
    from dmpreserve.artifacts.response import read_efficiency_curve, read_line_response
    from dmpreserve.artifacts.unbinned import write_unbinned_templates
    from dmpreserve.backgrounds import BackgroundInputs, science_run
    from dmpreserve.cli.signal import model_and_mass_grid
    from dmpreserve.config import load_config
    from dmpreserve.unbinned import build_unbinned_templates, unbinned_setting

    start = time.perf_counter()
    cfg = load_config(args.config)
    setting = unbinned_setting(cfg)
    model, grid = model_and_mass_grid(args.model, args.mass_grid)

    def dataset(paths, kind):
        return None if paths is None else read_dataset(paths, kinds=(kind,))

    selected = read_reduced(args.selected, kinds=("science",))
    inputs = BackgroundInputs(
        science=science_run(args.science),
        selected=selected,
        exposure=read_exposure(args.exposure),
        calib_er=dataset(args.calib_er, "calibration_er"),
        isolated_s1=dataset(args.isolated_s1, "isolated_s1"),
        isolated_s2=dataset(args.isolated_s2, "isolated_s2"),
    )
    templates = build_unbinned_templates(
        cfg,
        inputs,
        sim_nr=read_dataset(args.sim_nr, kinds=("simulation_nr",)),
        curve=read_efficiency_curve(args.efficiency_curve) if args.efficiency_curve else None,
        upstream=upstream_cuts(selected.meta, path=os.path.splitext(args.selected)[0] + ".json"),
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
