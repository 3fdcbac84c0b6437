"""Subcommands of the statistics steps: ``likelihood``, ``fit``, ``limits-point`` (one mass) and ``limits`` (gather).

Handlers import the library late (see :mod:`dmpreserve.cli.steps`).
"""

from __future__ import annotations

import argparse
import logging

from dmpreserve.errors import InvalidWorkspace

_CONVENTIONS = (
    "Direct-detection convention (Baxter et al., EPJC 81 (2021) 907): Neyman-constructed upper limit of the "
    "two-sided PLR t~mu (critical values from the toy threshold table c(s, b_eff) at the expected signal, from toys "
    "of each mass, or the asymptotic 2.706 at 90% CL; config statistics.neyman_threshold) and the "
    "power-constrained limit (critical power statistics.pcl_power), "
    "with the median sensitivity and +-1/2 sigma bands; LHC convention: asymptotic CLs with q~mu; discovery: "
    "q0, p0, z0. Cross sections in cm^2, masses in GeV/c^2."
)


def _likelihood_args(p) -> None:
    p.add_argument(
        "--config",
        required=True,
        metavar="YAML",
        help="the resolved configuration (results/config.resolved.yaml): limits (cl, masses_gev) and statistics",
    )
    p.add_argument("--workspace", required=True, metavar="JSON", help="background-only pyhf workspace")
    p.add_argument("--patchset", required=True, metavar="JSON", help="signal patchset (one patch per mass)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--table",
        metavar="JSON",
        help="threshold table of 'dmpreserve thresholds' (statistics.neyman_threshold: table; without it the "
        "table is built in this process)",
    )
    p.add_argument(
        "--unbinned",
        metavar="H5",
        help="fine templates of 'dmpreserve unbinned-templates' (required with likelihood.unbinned): the limits "
        "are those of the unbinned likelihood of the observed events",
    )


def _unbinned(args: argparse.Namespace, cfg):
    """The fine templates of the unbinned likelihood (likelihood.unbinned), None for the binned one."""
    if not cfg["likelihood"].get("unbinned"):
        if args.unbinned:
            raise InvalidWorkspace(
                "--unbinned given but the configuration has no likelihood.unbinned", path=args.config
            )
        return None
    if not args.unbinned:
        raise InvalidWorkspace(
            "likelihood.unbinned is configured: --unbinned (the fine templates) is required", path=args.config
        )
    from dmpreserve.artifacts.unbinned import read_unbinned_templates

    return read_unbinned_templates(args.unbinned)


def _table(args: argparse.Namespace, cfg, ws, ps, toys):
    """The threshold table: read from --table, or built here (table mode only)."""
    if toys is None or toys.mode != "table":
        return None
    from dmpreserve.artifacts.thresholds import read_threshold_table

    if args.table:
        return read_threshold_table(args.table)
    import tempfile

    from dmpreserve.stats.limits import table_settings
    from dmpreserve.stats.thresholds import build_table

    LOG.info("no --table given: building the threshold table in this process")
    with tempfile.TemporaryDirectory() as tmp:
        return build_table(ws, ps, table_settings(cfg), cl=float(cfg["limits"]["cl"]), workdir=tmp, progress=False)


def register(sub, add) -> None:
    """Add ``likelihood``, ``fit``, ``limits`` and ``limits-point`` to the ``dmpreserve`` parser."""
    p = add(
        sub,
        "likelihood",
        "write the pyhf workspace and signal patchset",
        "Serialize the likelihood: background-only pyhf workspace and a patchset with one patch per mass.",
    )
    p.add_argument(
        "--config",
        required=True,
        metavar="YAML",
        help="the resolved configuration (results/config.resolved.yaml): likelihood.poi_bounds and inspire_id",
    )
    p.add_argument(
        "--templates",
        required=True,
        metavar="JSON",
        help="background templates, expected counts, constraints and observed histogram "
        "(results/backgrounds/templates.json)",
    )
    p.add_argument(
        "--signal",
        required=True,
        metavar="JSON",
        help="signal templates, one per mass, at their reference cross sections (results/signal/signal.json)",
    )
    p.add_argument(
        "--workspace",
        required=True,
        metavar="JSON",
        help="the background-only pyhf workspace to write (results/likelihood/BkgOnly.json)",
    )
    p.add_argument(
        "--patchset",
        required=True,
        metavar="JSON",
        help="the signal patchset to write, one patch per mass (results/likelihood/patchset.json)",
    )
    p.add_argument(
        "--hs3",
        metavar="JSON",
        help="also write the likelihood in HS3 (pyhs3): the workspace plus the patch closest to --hs3-mass",
    )
    p.add_argument("--hs3-mass", type=float, default=50.0, metavar="GEV", help="WIMP mass [GeV/c^2] of --hs3")
    p.set_defaults(handler=run_likelihood)

    p = add(
        sub,
        "fit",
        "maximum-likelihood fits: pulls, correlations, MINOS, POI scan, goodness of fit",
        "iminuit fits of -2 ln L of the pyhf model: background-only (MIGRAD, HESSE, pulls, correlations, "
        "saturated-model goodness of fit with chi2 ndof = bins - free parameters and with toys); with "
        "--patchset also the signal-plus-background fit at the mass closest to --reference-mass (MINOS for "
        "mu, profile-likelihood scan of mu) and mu^ +- HESSE error per mass. Output: schemas/fit.schema.json.",
    )
    p.add_argument("--workspace", required=True, metavar="JSON", help="background-only pyhf workspace")
    p.add_argument("--patchset", metavar="JSON", help="signal patchset (enables the signal-plus-background fits)")
    p.add_argument(
        "--reference-mass",
        type=float,
        default=50.0,
        metavar="GEV",
        help="WIMP mass [GeV/c^2] of the full signal-plus-background fit (closest patch in log mass)",
    )
    p.add_argument(
        "--scan-points",
        type=int,
        default=31,
        metavar="N",
        help="points of the profile-likelihood scan of mu (dimensionless signal strength)",
    )
    p.add_argument(
        "--gof-toys",
        type=int,
        default=100,
        metavar="N",
        help="toys for the goodness-of-fit p-value (0: asymptotic chi2 only)",
    )
    p.add_argument("--seed", type=int, default=20210907, help="seed of the goodness-of-fit toys")
    p.add_argument(
        "--masses",
        type=float,
        nargs="+",
        metavar="GEV",
        help="WIMP masses [GeV/c^2] of the per-mass best fits (patches of the patchset; default: every patch)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("-o", "--output", required=True, metavar="JSON", help="the fit results (fit.json) to write")
    p.set_defaults(handler=run_fit)

    p = add(
        sub,
        "limits",
        "90%% CL upper limits per mass (gather)",
        "Write limits.csv and limits.json: gather the per-mass files of 'limits-point' (--points), or "
        "compute every mass in this process. " + _CONVENTIONS,
    )
    _likelihood_args(p)
    p.add_argument(
        "--points",
        nargs="*",
        metavar="JSON",
        default=None,
        help="per-mass results of 'dmpreserve limits-point' (all selected masses)",
    )
    p.add_argument("--csv", required=True, metavar="CSV", help="limits.csv (columns: see README; cm^2)")
    p.add_argument("--json", required=True, metavar="JSON", help="limits.json (rows, settings, mu values)")
    p.add_argument(
        "--exposure",
        metavar="JSON",
        help="exposure.json of the select step: its exposure is recorded in limits.json (data.exposure_t_yr) "
        "for plot legends",
    )
    p.set_defaults(handler=run_limits)

    p = add(
        sub,
        "limits-point",
        "all limits of one mass (scatter job)",
        "Limits, sensitivity bands and discovery significance for the mass with index --index (0-based, "
        "in ascending mass order of the selected masses), including the toys if configured. " + _CONVENTIONS,
    )
    _likelihood_args(p)
    p.add_argument("--index", required=True, type=int, metavar="N", help="mass index (0 .. number of masses - 1)")
    p.add_argument("-o", "--output", required=True, metavar="JSON", help="point file for 'dmpreserve limits --points'")
    p.set_defaults(handler=run_limits_point)


LOG = logging.getLogger("dmpreserve")


def run_limits_point(args: argparse.Namespace) -> None:
    """``dmpreserve limits-point``: all limits of the mass with the given index (one Snakemake job)."""
    from dmpreserve.artifacts.likelihood import read_likelihood
    from dmpreserve.config import load_config
    from dmpreserve.files import write_json
    from dmpreserve.stats.limits import (
        POINT_FORMAT_VERSION,
        limit_for_patch,
        select_patches,
        statistics_doc,
        toy_settings,
    )

    cfg = load_config(args.config)
    lik = read_likelihood(args.workspace, args.patchset)
    ws, ps = lik.workspace, lik.patchset
    patches = select_patches(ps, cfg["limits"]["masses_gev"])
    if not 0 <= args.index < len(patches):
        raise InvalidWorkspace(
            f"mass index {args.index} outside 0..{len(patches) - 1}", path=args.patchset, field="--index"
        )
    cl = float(cfg["limits"]["cl"])
    patch = patches[args.index]
    toys = toy_settings(cfg)
    table = _table(args, cfg, ws, ps, toys)
    try:
        result = limit_for_patch(
            ws,
            patch,
            cl=cl,
            pcl_power=float(cfg.statistics["pcl_power"]),
            toys=toys,
            table=table,
            mass_index=args.index,
            progress=not args.no_progress,
            unbinned=_unbinned(args, cfg),
        )
    except InvalidWorkspace as exc:
        if exc.path is not None:
            raise
        raise InvalidWorkspace(
            exc.message, path=args.patchset, field=f"patches[{patch['metadata']['name']}] {exc.field or ''}".strip()
        ) from None
    row = result.row()
    LOG.info(
        "m = %.6g GeV: PCL %.3e cm2 (unconstrained %.3e, CLs %.3e), z0 = %.2f",
        result.mass_gev,
        row["limit_cm2"],
        row["limit_unconstrained_cm2"],
        row["limit_cls_cm2"],
        result.z0,
    )
    write_json(
        args.output,
        {
            "version": POINT_FORMAT_VERSION,
            "cl": cl,
            "mass_index": args.index,
            "statistics": statistics_doc(cfg),
            "limit": result.to_json(),
        },
    )


def run_limits(args: argparse.Namespace) -> None:
    """``dmpreserve limits``: gather the per-mass points (or compute all masses here) into limits.csv/json."""
    from dmpreserve.artifacts.exposure import read_exposure
    from dmpreserve.artifacts.likelihood import read_likelihood
    from dmpreserve.artifacts.limits import csv_columns, data_record
    from dmpreserve.config import load_config
    from dmpreserve.files import write_csv, write_json
    from dmpreserve.schema import validate
    from dmpreserve.stats.limits import (
        compute_limits,
        method_text,
        read_points,
        select_patches,
        statistics_doc,
        toy_settings,
    )

    cfg = load_config(args.config)
    cl = float(cfg["limits"]["cl"])
    toys = toy_settings(cfg)
    lik = read_likelihood(args.workspace, args.patchset)
    ws, ps = lik.workspace, lik.patchset
    if args.points:
        results = read_points(
            args.points,
            cl=cl,
            n_expected=len(select_patches(ps, cfg["limits"]["masses_gev"])),
            statistics=statistics_doc(cfg),
        )
    else:
        try:
            results = compute_limits(
                ws,
                ps,
                cl=cl,
                masses_gev=cfg["limits"]["masses_gev"],
                pcl_power=float(cfg.statistics["pcl_power"]),
                toys=toys,
                table=_table(args, cfg, ws, ps, toys),
                progress=not args.no_progress,
                unbinned=_unbinned(args, cfg),
            )
        except InvalidWorkspace as exc:
            if exc.path is not None:
                raise
            raise InvalidWorkspace(exc.message, path=args.patchset, field=exc.field) from None
    rows = [r.row() for r in results]
    columns = csv_columns(rows)
    for r in rows:
        LOG.info(
            "m = %8.4g GeV: PCL %.3e cm2, unconstrained %.3e, CLs %.3e (sensitivity %.3e), z0 %.2f",
            r["mass_gev"],
            r["limit_cm2"],
            r["limit_unconstrained_cm2"],
            r["limit_cls_cm2"],
            r["expected_cm2"],
            r["z0"],
        )
    doc = {
        "cl": cl,
        "method": method_text(
            toys=toys.mode if toys else None,
            pcl_power=float(cfg.statistics["pcl_power"]),
            unbinned=bool(cfg["likelihood"].get("unbinned")),
            observed=str(cfg.statistics["observed_limit"]),
        ),
        "statistics": statistics_doc(cfg),
        "limits": rows,
        "mu": [r.to_json() for r in results],
        "data": data_record(cfg.inputs, read_exposure(args.exposure).exposure_t_yr if args.exposure else None),
    }
    validate(doc, "limits", path=args.json)
    write_csv(args.csv, columns, [[r[c] for c in columns] for r in rows])
    write_json(args.json, doc)


def run_likelihood(args: argparse.Namespace) -> None:
    """``dmpreserve likelihood``."""
    from dmpreserve.artifacts.signal_templates import read_signal
    from dmpreserve.artifacts.templates import read_templates
    from dmpreserve.config import load_config
    from dmpreserve.files import write_json
    from dmpreserve.stats.workspace import build_patchset, build_workspace

    cfg = load_config(args.config)
    templates = read_templates(args.templates)
    signal = read_signal(args.signal, n_bins=templates.n_bins)
    ws = build_workspace(templates, poi_bounds=tuple(cfg["likelihood"]["poi_bounds"]))
    ps = build_patchset(ws, signal, inspire_id=cfg["likelihood"]["inspire_id"])
    write_json(args.workspace, ws)
    write_json(args.patchset, ps)
    if args.hs3:
        from dmpreserve.publish.hs3 import workspace_to_hs3, write_hs3
        from dmpreserve.stats.fit import reference_patch

        write_hs3(args.hs3, workspace_to_hs3(ws, reference_patch(ps, args.hs3_mass), name="wimp_search"))
    LOG.info(
        "workspace: %d bins, %d samples; patchset: %d masses",
        len(ws["observations"][0]["data"]),
        len(ws["channels"][0]["samples"]),
        len(ps["patches"]),
    )


def run_fit(args: argparse.Namespace) -> None:
    """``dmpreserve fit``."""
    from dmpreserve.artifacts.fit import write_fit
    from dmpreserve.artifacts.likelihood import read_likelihood
    from dmpreserve.stats.fit import fit_all

    lik = read_likelihood(args.workspace, args.patchset)
    fit = fit_all(
        lik.workspace,
        lik.patchset,
        reference_mass_gev=args.reference_mass,
        scan_points=args.scan_points,
        gof_toys=args.gof_toys,
        seed=args.seed,
        progress=not args.no_progress,
        masses_gev=args.masses,
    )
    for p in fit.parameters:
        LOG.info("%-16s %+.3f +- %.3f (pull %s)", p["name"], p["value"], p["error"], p["pull"])
    gof = fit.goodness_of_fit
    LOG.info(
        "saturated GoF: t = %.4g, ndof = %d, p(chi2) = %s, p(toys) = %s",
        gof["t_sat"],
        gof["ndof"],
        gof["p_value_chi2"],
        gof["p_value_toys"],
    )
    if fit.signal_plus_background is not None:
        sb = fit.signal_plus_background
        poi = sb["poi"]
        LOG.info(
            "S+B fit at %.4g GeV: mu^ = %.4g +- %.3g (MINOS %s / %s)",
            sb["mass_gev"],
            poi["value"],
            poi["error"],
            poi["minos_lower"],
            poi["minos_upper"],
        )
    write_fit(args.output, fit)
