"""The ``dmpreserve backgrounds`` subcommand: its parser next to its handler (library imported late)."""

from __future__ import annotations

import argparse
import logging

LOG = logging.getLogger("dmpreserve")


def register(sub, add) -> None:
    """Add the ``backgrounds`` subcommand to the ``dmpreserve`` parser."""
    p = add(
        sub,
        "backgrounds",
        "estimate background templates and counts",
        "Build the (cS1, log10 cS2) template, expected count, rate constraint and per-bin statistical uncertainty "
        "of every component declared in backgrounds.components (spectra folded through the NEST responses, "
        "external templates, accidentals from isolated S1/S2 pairings, wall events from the radial sideband), "
        "and histogram the observed events. Datasets are one or more Parquet files, each with its JSON sidecar; "
        "the science run is streamed (only its sidebands are read).",
    )
    add_dataset_arguments(p)
    p.add_argument("--response-nr", metavar="JSON", help="NEST NR response matrix (response_nr.json; NR nest shapes)")
    p.add_argument("--response-er", metavar="JSON", help="NEST ER line response (response_er.json; ER nest shapes)")
    p.add_argument("--selected", required=True, metavar="PARQUET", help="the select step's selected events")
    p.add_argument("--exposure", required=True, metavar="JSON", help="the select step's exposure.json")
    p.add_argument("--templates", required=True, metavar="JSON", help="output: templates.json")
    p.add_argument("--summary", required=True, metavar="CSV", help="output: summary.csv")
    p.set_defaults(handler=run_backgrounds)


def add_dataset_arguments(p) -> None:
    """--config and the datasets of the background model (--science, --calib-er, --isolated-s1, --isolated-s2),
    shared by ``backgrounds`` and ``unbinned-templates``."""
    p.add_argument("--config", required=True, metavar="YAML", help="the resolved configuration")
    p.add_argument("--science", required=True, nargs="+", metavar="PARQUET", help="the science dataset")
    p.add_argument("--calib-er", nargs="+", metavar="PARQUET", help="ER calibration dataset (sideband, accidentals)")
    p.add_argument("--isolated-s1", nargs="+", metavar="PARQUET", help="isolated-S1 dataset (accidentals)")
    p.add_argument("--isolated-s2", nargs="+", metavar="PARQUET", help="isolated-S2 dataset (accidentals)")


def background_inputs(args: argparse.Namespace, **responses):
    """The :class:`~dmpreserve.backgrounds.BackgroundInputs` of :func:`add_dataset_arguments`' datasets, --selected
    and --exposure (``responses``: its response fields, as the calling step reads them)."""
    from dmpreserve.artifacts.exposure import read_exposure
    from dmpreserve.artifacts.reduced import read_dataset, read_reduced
    from dmpreserve.backgrounds import BackgroundInputs, science_run

    def dataset(paths, kind):
        return None if paths is None else read_dataset(paths, kinds=(kind,))

    return BackgroundInputs(
        science=science_run(args.science),
        selected=read_reduced(args.selected, kinds=("science",)),
        exposure=read_exposure(args.exposure),
        calib_er=dataset(args.calib_er, "calibration_er"),
        isolated_s1=dataset(args.isolated_s1, "isolated_s1"),
        isolated_s2=dataset(args.isolated_s2, "isolated_s2"),
        **responses,
    )


def run_backgrounds(args: argparse.Namespace) -> None:
    """``dmpreserve backgrounds``."""
    from dmpreserve.artifacts.response import read_line_response, read_response
    from dmpreserve.artifacts.templates import write_templates
    from dmpreserve.backgrounds import estimate_backgrounds, write_summary
    from dmpreserve.backgrounds.quality import MIN_EVENTS_PER_BIN, poorly_sampled_fraction
    from dmpreserve.config import load_config

    inputs = background_inputs(
        args,
        response_nr=None if args.response_nr is None else read_response(args.response_nr),
        response_er=None if args.response_er is None else read_line_response(args.response_er),
        response_nr_path=args.response_nr or "--response-nr",
        response_er_path=args.response_er or "--response-er",
    )
    templates = estimate_backgrounds(load_config(args.config), inputs)
    for name, comp in sorted(templates.components.items()):
        LOG.info(
            "%-10s %10.4g +- %.3g events (%s; %s); %.1f%% of it in bins on < %d simulated events",
            name,
            comp.expected_events,
            comp.uncertainty_events,
            comp.constraint,
            comp.method,
            100 * poorly_sampled_fraction(comp.template, comp.stat_err),
            MIN_EVENTS_PER_BIN,
        )
    LOG.info("observed %d events, exposure %.4g t yr", int(templates.observed.sum()), templates.exposure_t_yr)
    write_summary(args.summary, templates)
    write_templates(args.templates, templates)
