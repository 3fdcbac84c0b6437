"""Subcommands of the publishing steps: ``plots``, ``hepdata``, ``provenance``.

Handlers import the library late (see :mod:`dmpreserve.cli.steps`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

THRESHOLDS_RESOURCE = (
    "Neyman threshold table: toy-MC critical values c(s, b_eff) of the two-sided PLR t~mu versus total expected "
    "signal events s for reference signal shapes of effective background b_eff "
    "(schemas/threshold_table.schema.json); dmpreserve reinterpret uses it"
)


def register(sub, add) -> None:
    """Add ``plots``, ``hepdata`` and ``provenance`` to the ``dmpreserve`` parser."""
    p = add(
        sub,
        "plots",
        "make the result plots",
        "Limit curve (PCL headline, unconstrained PLR and CLs over "
        "the PLR sensitivity band; cross sections in cm^2), analysis space, cut flow, acceptance, and the fit "
        "plots: pulls, correlation matrix, profile-likelihood scan of mu, best-fit cross section per mass.",
    )
    for name, metavar, text in (
        (
            "limits",
            "CSV",
            "limit curves, masses [GeV/c^2] and cross sections [cm^2] (results/limits/limits.csv)",
        ),
        (
            "templates",
            "JSON",
            "background templates and observed histogram, for the analysis space (results/backgrounds/templates.json)",
        ),
        (
            "signal",
            "JSON",
            "signal templates per mass, for the signal contours of the analysis space (results/signal/signal.json)",
        ),
        (
            "selected",
            "PARQUET",
            "selected science events, drawn in the analysis space (results/selection/selected.parquet, "
            "sidecar beside it)",
        ),
        ("cutflow", "CSV", "cut flow (results/selection/cutflow.csv)"),
        (
            "acceptance",
            "CSV",
            "NR signal acceptance vs true recoil energy [keV] (results/selection/acceptance.csv)",
        ),
        ("fit", "JSON", "fit results: pulls, correlations, mu scan, best fits (results/fit/fit.json)"),
    ):
        p.add_argument(f"--{name}", required=True, metavar=metavar, help=text)
    p.add_argument(
        "--outdir",
        required=True,
        help="writes limits.png/.pdf, analysis_space.png/.pdf, cutflow.png, "
        "acceptance.png, pulls.png, correlation.png, poi_scan.png, "
        "best_fit.png (the last two only for fits with a patchset)",
    )
    p.add_argument(
        "--reference",
        action="append",
        default=[],
        metavar="LABEL=CSV",
        help="a published curve to draw on the limit plot (mass [GeV], limit [cm^2] rows, as dmpreserve verify "
        "reads them); repeatable (config limits.reference_curves).  A curve of the published-curve table "
        "(dmpreserve plot-limits --help) gets its exposure and convention in the legend",
    )
    p.add_argument(
        "--limits-json",
        metavar="JSON",
        help="limits.json of the same limits step: its critical power, exposure and data record (mock data are "
        "labelled 'mock data (NEST MDC)') go into the limit plot's legend",
    )
    p.set_defaults(handler=run_plots)

    p = add(
        sub,
        "hepdata",
        "build and validate the HEPData record",
        "HEPData record (hepdata-lib), "
        "validated with hepdata-validator; the likelihood is attached as a HistFactory resource. The limit "
        "table carries both conventions (power-constrained and unconstrained PLR limits with the Neyman "
        "construction, CLs), the sensitivity bands and the discovery p-value; with --fit also the fit results.",
    )
    for name, metavar, text in (
        (
            "limits",
            "CSV",
            "limit curves, masses [GeV/c^2] and cross sections [cm^2] (results/limits/limits.csv): the table "
            "'Limit curve'",
        ),
        (
            "templates",
            "JSON",
            "background templates and observed histogram (results/backgrounds/templates.json): the table "
            "'Background expectation'",
        ),
        (
            "selected",
            "PARQUET",
            "selected science events (results/selection/selected.parquet, sidecar beside it): the table "
            "'Observed events'",
        ),
        ("cutflow", "CSV", "cut flow (results/selection/cutflow.csv): the table 'Cut flow'"),
        (
            "acceptance",
            "CSV",
            "NR signal acceptance vs true recoil energy [keV] (results/selection/acceptance.csv): the table "
            "'Signal efficiency'",
        ),
        (
            "workspace",
            "JSON",
            "background-only pyhf workspace (results/likelihood/BkgOnly.json), attached in Likelihoods.tar.gz",
        ),
        (
            "patchset",
            "JSON",
            "signal patchset, one patch per mass (results/likelihood/patchset.json), attached in Likelihoods.tar.gz",
        ),
    ):
        p.add_argument(f"--{name}", required=True, metavar=metavar, help=text)
    p.add_argument("--fit", metavar="JSON", help="fit results (dmpreserve fit) to add as tables")
    p.add_argument("--hs3", metavar="JSON", help="the likelihood in HS3 (dmpreserve likelihood --hs3), type HS3")
    p.add_argument(
        "--thresholds",
        metavar="JSON",
        help="Neyman threshold table (dmpreserve thresholds) to add as a table and attach as a resource",
    )
    p.add_argument(
        "--resource",
        nargs=2,
        action="append",
        metavar=("PATH", "DESCRIPTION"),
        help="attach a regular file as an additional resource with this description (repeatable; "
        "at most 100 MiB per file)",
    )
    p.add_argument("-o", "--output", required=True, metavar="TAR_GZ", help="the HEPData submission archive")
    p.set_defaults(handler=run_hepdata)

    p = add(sub, "provenance", "record checksums, versions, commit and image", "Write provenance.json.")
    p.add_argument(
        "--config",
        required=True,
        metavar="YAML",
        help="the resolved configuration (results/config.resolved.yaml): its sha256 and container_image",
    )
    p.add_argument(
        "--inputs",
        nargs="+",
        required=True,
        metavar="FILE",
        help="input files to record with their sha256: the resolved configuration and, with mock data, "
        "results/mdc/* (dataset inputs: --inputs-manifest)",
    )
    p.add_argument(
        "--outputs",
        nargs="+",
        required=True,
        metavar="FILE",
        help="output files to record with their sha256: every result of the pipeline under results/",
    )
    p.add_argument(
        "--inputs-manifest",
        metavar="JSON",
        help="the dataset inputs' manifest (dmpreserve inputs-manifest), embedded as input_datasets",
    )
    p.add_argument("-o", "--output", required=True, metavar="JSON", help="provenance.json to write")
    p.set_defaults(handler=run_provenance)


def run_plots(args: argparse.Namespace) -> None:
    """``dmpreserve plots``."""
    from dmpreserve.artifacts.fit import read_fit
    from dmpreserve.artifacts.limits import read_limit_result, read_limits
    from dmpreserve.artifacts.reduced import read_reduced
    from dmpreserve.artifacts.signal_templates import read_signal
    from dmpreserve.artifacts.tables import Acceptance, CutFlow
    from dmpreserve.artifacts.templates import read_templates
    from dmpreserve.errors import InvalidData
    from dmpreserve.publish.figures import write_result_plots
    from dmpreserve.publish.references import PUBLISHED
    from dmpreserve.reinterpret.verify import read_curve

    references = []
    for item in args.reference:
        label, sep, path = item.partition("=")
        if not sep or not label.strip() or not path:
            raise InvalidData(f"expected LABEL=CSV, got {item!r}", field="--reference")
        curve = read_curve(path)
        label = label.strip()
        known = [c for c in PUBLISHED.values() if Path(path).as_posix().endswith(c.file)]
        if known:
            label = f"{label} ({known[0].exposure_t_yr:g} t yr, {known[0].convention})"
        references.append((label, curve.mass_gev, curve.limit))
    templates = read_templates(args.templates)
    write_result_plots(
        Path(args.outdir),
        limits=read_limits(args.limits),
        templates=templates,
        signal=read_signal(args.signal, n_bins=templates.n_bins),
        selected=read_reduced(args.selected, kinds=("science",)),
        cutflow=CutFlow.read(args.cutflow),
        acceptance=Acceptance.read(args.acceptance),
        fit=read_fit(args.fit),
        references=references,
        result=read_limit_result(args.limits_json) if args.limits_json else None,
    )


def run_hepdata(args: argparse.Namespace) -> None:
    """``dmpreserve hepdata``."""
    from dmpreserve.artifacts.fit import read_fit
    from dmpreserve.artifacts.likelihood import read_likelihood
    from dmpreserve.artifacts.limits import read_limits
    from dmpreserve.artifacts.reduced import read_reduced
    from dmpreserve.artifacts.tables import Acceptance, CutFlow
    from dmpreserve.artifacts.templates import read_templates
    from dmpreserve.artifacts.thresholds import read_threshold_table
    from dmpreserve.publish.hepdata import write_analysis_record

    read_likelihood(args.workspace, args.patchset)  # checks both before they are attached
    resources = [(path, description) for path, description in (args.resource or [])]
    if args.thresholds:
        resources.append((args.thresholds, THRESHOLDS_RESOURCE))
    write_analysis_record(
        args.output,
        limits=read_limits(args.limits),
        templates=read_templates(args.templates),
        selected=read_reduced(args.selected, kinds=("science",)),
        cutflow=CutFlow.read(args.cutflow),
        acceptance=Acceptance.read(args.acceptance),
        likelihood_files=[args.workspace, args.patchset],
        hs3=args.hs3,
        fit=read_fit(args.fit) if args.fit else None,
        resources=resources,
        thresholds=read_threshold_table(args.thresholds) if args.thresholds else None,
    )


def run_provenance(args: argparse.Namespace) -> None:
    """``dmpreserve provenance``."""
    from dmpreserve.config import load_config
    from dmpreserve.files import write_json
    from dmpreserve.publish.provenance import build_provenance

    cfg = load_config(args.config)
    doc = build_provenance(
        config_path=args.config,
        config_sha256=cfg.sha256,
        image=cfg["container_image"],
        inputs=sorted(set(args.inputs)),
        outputs=sorted(set(args.outputs)),
        inputs_manifest=args.inputs_manifest,
    )
    write_json(args.output, doc)
