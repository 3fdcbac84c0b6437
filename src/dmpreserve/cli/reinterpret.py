"""Subcommands of reinterpretation: ``kit`` (assemble), ``reinterpret`` (new signal models), ``verify`` (curves).

Handlers import the library late (see :mod:`dmpreserve.cli.steps`).
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from pathlib import Path

from dmpreserve.errors import InvalidData, InvalidSpectrum


def register(sub, add) -> None:
    """Add ``kit``, ``reinterpret`` and ``verify`` to the ``dmpreserve`` parser."""

    p = add(
        sub,
        "kit",
        "assemble the reinterpretation kit",
        "Copy the background-only workspace, NR and ER responses, signal efficiency and limits into a kit "
        "directory, write kit.json (sha256 of every file) and a deterministic kit.tar.gz.",
    )
    p.add_argument(
        "--config",
        required=True,
        metavar="YAML",
        help="the resolved configuration (results/config.resolved.yaml): CL, POI bounds, binning and statistics "
        "settings recorded in kit.json",
    )
    p.add_argument(
        "--signal-model",
        required=True,
        metavar="YAML",
        help="the signal model the pipeline used (e.g. workflow/config/signal_model.yaml), copied as signal_model.yaml",
    )
    for name, metavar, text in (
        ("workspace", "JSON", "background-only pyhf workspace (results/likelihood/BkgOnly.json)"),
        ("response", "JSON", "NR response matrix (results/response/response_nr.json)"),
        ("response-er", "JSON", "ER line response (results/response/response_er.json)"),
        ("templates", "JSON", "background templates: the kit's exposure (results/backgrounds/templates.json)"),
        (
            "acceptance",
            "CSV",
            "NR signal acceptance vs true recoil energy [keV], copied as efficiency.csv "
            "(results/selection/acceptance.csv)",
        ),
        ("limits", "CSV", "the pipeline's limits, the closure reference (results/limits/limits.csv)"),
    ):
        p.add_argument(f"--{name}", required=True, metavar=metavar, help=text)
    p.add_argument("--thresholds", metavar="JSON", help="threshold table (statistics.neyman_threshold: table)")
    p.add_argument(
        "--unbinned",
        metavar="H5",
        help="the unbinned likelihood's fine templates (likelihood.unbinned; unbinned_templates.h5 with the fine "
        "responses): the kit then reinterprets with the unbinned likelihood",
    )
    p.add_argument("--outdir", required=True, help="kit directory")
    p.add_argument("--tarball", default=None, metavar="TAR_GZ", help="archive path (default OUTDIR/kit.tar.gz)")
    p.set_defaults(handler=run_kit)

    p = add(
        sub,
        "reinterpret",
        "limits for a new signal model from the kit",
        "Fold a built-in model (--model YAML) or a user spectrum (--spectrum CSV: mass_gev,energy_kev,dr_de in "
        "events/(t yr keV) at --reference-cross-section) through the kit's response, build a pyhf patchset and "
        "compute 90% CL limits (the kit's method: toy threshold table if it has one, per-mass toys for a kit "
        "with the unbinned likelihood, else asymptotic). A kit with the unbinned likelihood (kit.json "
        "likelihood: unbinned) also folds the model through its fine responses and computes the limits of the "
        "unbinned likelihood of the observed events, as the pipeline did. "
        "Writes limits.csv, limits.json, patchset.json, limits.png and "
        "hepdata_limits.yaml. With --kit pointing at a binwise release (XENON1T format), uses that likelihood "
        "and writes limits.csv and limits.json.",
    )
    p.add_argument("--kit", required=True, metavar="DIR", help="reinterpretation kit, or binwise release directory")
    add_signal_source(p, masses_help="override the model's mass grid [GeV]")
    p.add_argument(
        "--backend",
        choices=("auto", "kit", "binwise"),
        default="auto",
        help="auto: binwise if --kit holds XENON1T_binwise_NR_*.json, else the pyhf kit",
    )
    p.add_argument(
        "--toys",
        action="store_true",
        help="kit backend: Neyman thresholds from toys of each mass with the kit's seed (a mass of the kit gets "
        "the pipeline's own toys; slow); default: the kit's own method (its threshold table and shared "
        "background-only toys; per-mass toys for a kit with the unbinned likelihood; else asymptotic). "
        "Template-release kits: thresholds and sensitivity band from toys (about 3.5-6 minutes per mass on one "
        "core) instead of asymptotics",
    )
    p.add_argument(
        "--asymptotic",
        action="store_true",
        help="asymptotic threshold 2.706 instead of the toy-MC Neyman threshold (both backends)",
    )
    p.add_argument(
        "--binned",
        action="store_true",
        help="kits with the unbinned likelihood: use the binned pyhf workspace instead (the kit's threshold "
        "table if it has one, else asymptotic; pyhf-compatible, and the only choice for ER lines when the "
        "kit has no fine ER response)",
    )
    p.add_argument(
        "--yield-morphing",
        choices=("release", "pyhf"),
        default="release",
        help="template-release kits: how the (t_ly, t_qy) yield nuisances act: release = the release's own "
        "bilinear interpolation of its 7x7 grid (its likelihood); pyhf = the workspace's normsys + histosys "
        "(the serialized pyhf likelihood, 1-5%% weaker limits from 4 GeV, 19%% at 3 GeV)",
    )
    p.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="DIR",
        help="output directory: limits.csv, limits.json, patchset.json, limits.png, hepdata_limits.yaml",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(handler=run_reinterpret)

    p = add(
        sub,
        "verify",
        "compare a limit curve with a reference curve",
        "Interpolate the result in log(mass)-log(limit) at the reference masses, print the ratios and exit 1 "
        "if any |ratio - 1| > rtol (exit 2 on bad input).",
    )
    p.add_argument("--reference", required=True, metavar="CSV", help="reference curve (limits.csv or mass,limit rows)")
    p.add_argument("--result", required=True, metavar="CSV", help="curve to check")
    p.add_argument("--rtol", type=float, default=1e-6, help="allowed relative deviation")
    p.add_argument("--mass-range", default=None, metavar="A:B", help="compare only masses A..B [GeV]")
    p.add_argument("--column", default="limit_cm2", help="limit column of the result")
    p.add_argument("--reference-column", default="limit_cm2", help="limit column of the reference")
    p.add_argument(
        "--allow-uncovered",
        action="store_true",
        help="skip reference masses outside the result's mass range instead of failing",
    )
    p.set_defaults(handler=run_verify)

    p = add(
        sub,
        "verify-yields",
        "compare the background-only fit's counts per component with a published background table",
        "Print, per component of a published background table (CSV: sample, table_row, expected_events, "
        "expected_error, fit_events, fit_error_low, fit_error_high; e.g. workflow/analyses/lz_ws2022/"
        "published_yields.csv), the published expectation and fit result next to our prefit and postfit counts "
        "(fit.json yields) and the pull in published sigmas; exit 1 if a postfit count lies more than NSIGMA "
        "published sigmas from the published fit result or a prefit count differs from the published "
        "expectation by more than 1 % (exit 2 on bad input).",
    )
    p.add_argument("--fit", required=True, metavar="JSON", help="fit.json of the analysis (results/fit/fit.json)")
    p.add_argument("--published", required=True, metavar="CSV", help="the published background table")
    p.add_argument("--nsigma", type=float, default=1.0, help="allowed deviation in published sigmas (default 1)")
    p.set_defaults(handler=run_verify_yields)

    p = add(
        sub,
        "import-release",
        "import a XENONnT binned template release as a pyhf likelihood and reinterpretation kit",
        "Read a template release (binning/, data/, templates/ as XENONnT/cevns_data_release, arXiv:2604.06002) "
        "with inference_interface, check every template against the binning YAML, and write a kit: "
        "background-only pyhf workspace (one channel per science run), mono-energetic NR templates, the SI "
        "patchset at the published masses and kit.json. Nothing is written if any input is bad.",
    )
    p.add_argument("--release", required=True, metavar="DIR", help="release directory")
    p.add_argument("-o", "--output", required=True, metavar="KIT_DIR", help="the kit directory to write")
    p.add_argument(
        "--runs",
        default=None,
        metavar="RUN=T_YR,...",
        help="science runs and livetimes [t yr] (default sr0, sr1, sr2 with the release notebook's livetimes)",
    )
    p.add_argument(
        "--signal-efficiency",
        nargs="?",
        const=True,  # the earlier release's width (xenonnt.efficiency_width)
        default=0.0,
        type=float,
        metavar="REL",
        help="add a signal-efficiency uncertainty shared by 8B and the signal, relative width REL in [0, 1) "
        "(0: none; without REL: 0.25, the earlier XENONnT release's; without the option: none)",
    )
    p.set_defaults(handler=run_import_release)


LOG = logging.getLogger("dmpreserve")


def run_kit(args: argparse.Namespace) -> None:
    """``dmpreserve kit``: assemble the reinterpretation kit from the pipeline's outputs."""
    from dmpreserve.artifacts.limits import read_limits
    from dmpreserve.artifacts.response import read_line_response, read_response
    from dmpreserve.artifacts.templates import read_templates
    from dmpreserve.config import load_config
    from dmpreserve.physics.signal_models import load_model
    from dmpreserve.reinterpret.kit import UNBINNED_FILE, assemble_kit

    read_limits(args.limits)  # checks the file
    if args.thresholds:
        from dmpreserve.artifacts.thresholds import read_threshold_table

        read_threshold_table(args.thresholds)
    if args.unbinned:
        from dmpreserve.artifacts.unbinned import read_unbinned_templates

        read_unbinned_templates(args.unbinned).fine_responses()  # refuses a file without the fine NR response
    er = read_line_response(args.response_er)
    assemble_kit(
        args.outdir,
        tarball=args.tarball,
        config=load_config(args.config),
        model=load_model(args.signal_model),
        templates=read_templates(args.templates),
        nr_response=read_response(args.response),
        er_response=er,
        files={
            "BkgOnly.json": args.workspace,
            "response_nr.json": args.response,
            "response_er.json": args.response_er,
            "efficiency.csv": args.acceptance,
            "limits.csv": args.limits,
            "signal_model.yaml": args.signal_model,
            **({"threshold_table.json": args.thresholds} if args.thresholds else {}),
            **({UNBINNED_FILE: args.unbinned} if args.unbinned else {}),
        },
    )
    LOG.info("kit written to %s (ER response: %d lines)", args.outdir, len(er.line_energies_kev))


def add_signal_source(p: argparse.ArgumentParser, *, masses_help: str) -> None:
    """The signal-source options shared by ``reinterpret`` and ``combine``: ``--model`` or ``--spectrum`` (one of
    them), ``--reference-cross-section`` and ``--masses`` (read back with :func:`read_signal_source`)."""
    group = p.add_argument_group("signal source")
    one = group.add_mutually_exclusive_group(required=True)
    one.add_argument("--model", metavar="YAML", help="built-in model (schemas/signal_model.schema.json)")
    one.add_argument("--spectrum", metavar="CSV", help="user NR spectra (schemas/signal_spectrum.schema.json)")
    group.add_argument(
        "--reference-cross-section",
        type=float,
        default=1e-45,
        metavar="CM2",
        help="cross section of the --spectrum rates [cm^2]; limits are reported in it",
    )
    group.add_argument("--masses", default=None, metavar="GEV,GEV,...", help=masses_help)


def read_signal_source(args: argparse.Namespace):
    """(model or None, spectra or None, reference cross section [cm^2], --masses [GeV] or None, source record).

    Raises:
        InvalidSpectrum: a reference cross section that is not a positive finite number, bad ``--masses``,
            or an invalid model/spectrum file (naming it).
    """
    from dmpreserve.physics.signal_models import INTERPOLATION_RULE, load_model, read_spectrum_csv

    ref = args.reference_cross_section
    if not (math.isfinite(ref) and ref > 0):
        raise InvalidSpectrum(
            f"must be a positive finite number of cm^2, got {ref!r}", field="--reference-cross-section"
        )
    masses = _masses(args.masses)
    model = load_model(args.model) if args.model else None
    spectra = read_spectrum_csv(args.spectrum) if args.spectrum else None
    source = (
        {"model": model.model, **model.to_json(), **({"masses_gev": list(masses)} if masses else {})}
        if model
        else {"spectrum": str(args.spectrum), "reference_cross_section_cm2": ref, "interpolation": INTERPOLATION_RULE}
    )
    return model, spectra, ref, masses, source


def _masses(text: str | None) -> tuple[float, ...] | None:
    if not text:
        return None
    try:
        values = tuple(float(x) for x in text.split(","))
    except ValueError:
        raise InvalidSpectrum(f"expected comma-separated masses in GeV, got {text!r}", field="--masses") from None
    if not all(math.isfinite(v) and v > 0 for v in values):
        raise InvalidSpectrum("masses must be positive and finite", field="--masses")
    return values


def _xenon1t(args: argparse.Namespace, spectra_rates, masses, unit: str, source: dict) -> None:
    """Binwise backend: limits per mass, written as limits.csv (mass_gev, limit_cm2) and limits.json.

    Masses without expected signal are skipped and listed (``no_sensitivity``), as in the kit backend.
    """
    import numpy as np

    from dmpreserve.files import write_csv, write_json
    from dmpreserve.reinterpret.outputs import NO_SENSITIVITY
    from dmpreserve.reinterpret.xenon1t import load_binwise

    bw = load_binwise(args.kit)
    rows, invisible = [], []
    for m, (rate, strength, breakpoints) in zip(masses, spectra_rates):
        s_reco = bw.fold(rate, breakpoints_kev=breakpoints)
        if not np.all(np.isfinite(s_reco)) or not np.any(s_reco > 0):
            invisible.append(m)
            LOG.warning("m = %8.4g GeV: no sensitivity (%s)", m, NO_SENSITIVITY)
            continue
        x = bw.upper_limit(s_reco, asymptotic=args.asymptotic)
        rows.append((m, x * strength))
        LOG.info("m = %8.4g GeV: limit %.4e %s", m, x * strength, unit)
    if not rows:
        raise InvalidSpectrum(
            "no mass gives expected signal in the analysis region",
            path=args.model or args.spectrum,
            field="--masses" if args.masses else "masses_gev",
        )
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "limits.csv", ("mass_gev", "limit_cm2"), rows)
    write_json(
        out / "limits.json",
        {
            "cl": 0.9,
            "backend": "binwise approximate likelihood (XENON1T release format)",
            "threshold": "asymptotic chi2(1)" if args.asymptotic else "toy-MC Neyman",
            "units": {"limit_cm2": unit, "mass_gev": "GeV/c^2"},
            "source": source,
            "limits": [{"mass_gev": m, "limit_cm2": v} for m, v in rows],
            "no_sensitivity": [{"mass_gev": m, "reason": NO_SENSITIVITY} for m in invisible],
        },
    )


def run_reinterpret(args: argparse.Namespace) -> None:
    """``dmpreserve reinterpret``."""
    from dmpreserve.reinterpret.xenon1t import PUBLISHED_MASSES_GEV, is_binwise_release

    model, spectra, ref, masses, source = read_signal_source(args)
    binwise = args.backend == "binwise" or (args.backend == "auto" and is_binwise_release(args.kit))
    if binwise:
        from dmpreserve.physics.halo import StandardHalo

        if model is not None:
            if model.is_er:
                raise InvalidSpectrum("the binwise NR likelihood cannot test an ER line", field="model")
            halo = model.halo or StandardHalo.shm_2018()
            ms = masses or model.masses_gev or PUBLISHED_MASSES_GEV
            rates = [
                (model.rate(mass_gev=m, strength=1e-45, halo=halo), 1e-45, model.breakpoints_kev(mass_gev=m, halo=halo))
                for m in ms
            ]
            unit = model.strength_unit
        else:
            ms = spectra.masses_gev
            rates = [(spectra.rate(i), ref, spectra.breakpoints_kev(i)) for i in range(len(ms))]
            unit = "cm^2 (user spectrum)"
        _xenon1t(args, rates, ms, unit, source)
        return
    from dmpreserve.reinterpret.engine import model_signal, read_unbinned, reinterpret, spectrum_signal
    from dmpreserve.reinterpret.kit import load_kit
    from dmpreserve.reinterpret.outputs import write_outputs
    from dmpreserve.reinterpret.release_kit import is_release_kit, reinterpret_release

    kit = load_kit(args.kit)
    if is_release_kit(kit):
        result = reinterpret_release(
            kit,
            model=model,
            spectra=spectra,
            reference_cross_section_cm2=ref,
            masses_gev=masses,
            source=source,
            progress=not args.no_progress,
            toys=args.toys,
            yield_morphing=args.yield_morphing,
        )
    else:
        fine = read_unbinned(kit) if kit.unbinned and not args.binned else None
        unbinned = None
        if model is not None:
            signal = model_signal(kit, model, masses_gev=masses)
            if fine is not None:
                unbinned = (fine, model_signal(kit, model, masses_gev=masses, fine=fine))
            unit = model.strength_unit
        else:
            signal = spectrum_signal(kit, spectra, reference_cross_section_cm2=ref)
            if fine is not None:
                unbinned = (fine, spectrum_signal(kit, spectra, reference_cross_section_cm2=ref, fine=fine))
            unit = "cm^2 (user spectrum)"
        if fine is not None:
            LOG.info("the kit's unbinned likelihood (%d observed events)", fine.observed_bins.size)
        try:
            result = reinterpret(
                kit,
                signal,
                strength_unit=unit,
                source=source,
                progress=not args.no_progress,
                mode="toys" if args.toys else "asymptotic" if args.asymptotic else "kit",
                unbinned=unbinned,
            )
        except InvalidSpectrum as exc:
            if exc.path is not None or exc.field != "masses_gev":
                raise
            raise InvalidSpectrum(  # no mass has any expected signal: name the model (or spectrum) file
                exc.message, path=args.model or args.spectrum, field="--masses" if masses else "masses_gev"
            ) from None
    for r in result.limits:
        row = r.row()
        LOG.info(
            "m = %8.4g GeV: limit %.4e (expected %.4e) %s",
            row["mass_gev"],
            row["limit_cm2"],
            row["expected_cm2"],
            result.strength_unit,
        )
    write_outputs(
        args.output, result, cl=float(kit.manifest["cl"]), method=result.method, data=kit.manifest.get("data")
    )


def run_verify(args: argparse.Namespace) -> None:
    """``dmpreserve verify``: exits 1 when a mass fails the tolerance."""
    from dmpreserve.reinterpret.verify import compare, format_table, parse_mass_range, read_curve

    ref = read_curve(args.reference, column=args.reference_column)
    res = read_curve(args.result, column=args.column)
    rows = compare(
        ref,
        res,
        rtol=args.rtol,
        mass_range=parse_mass_range(args.mass_range),
        require_coverage=not args.allow_uncovered,
    )
    print(f"reference: {args.reference}\nresult:    {args.result}")
    print(format_table(rows, rtol=args.rtol))
    sys.stdout.flush()
    if not all(r.ok for r in rows):
        raise SystemExit(1)


def run_verify_yields(args: argparse.Namespace) -> None:
    """``dmpreserve verify-yields``: exits 1 when a component fails."""
    from dmpreserve.artifacts.fit import read_fit
    from dmpreserve.reinterpret.verify_yields import compare_yields, format_yields_table, read_published_yields

    fit = read_fit(args.fit)
    if not fit.yields:
        raise InvalidData("no 'yields' (counts per component): rerun the fit step", path=args.fit, field="yields")
    rows = compare_yields(fit.yields, read_published_yields(args.published), nsigma=args.nsigma, path=args.fit)
    print(f"published: {args.published}\nfit:       {args.fit}")
    print(format_yields_table(rows, nsigma=args.nsigma))
    sys.stdout.flush()
    if not all(r.ok for r in rows):
        raise SystemExit(1)


def _runs(text: str | None) -> dict[str, float] | None:
    if not text:
        return None
    out = {}
    for item in text.split(","):
        name, _, value = item.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise InvalidSpectrum(f"expected RUN=T_YR, got {item!r}", field="--runs") from None
    return out


def run_import_release(args: argparse.Namespace) -> None:
    """``dmpreserve import-release``: read and check the release, then write the kit."""
    from dmpreserve.reinterpret.release import read_release
    from dmpreserve.reinterpret.release_kit import import_release
    from dmpreserve.reinterpret.xenonnt import efficiency_width

    try:
        width = efficiency_width(args.signal_efficiency)
    except ValueError as exc:
        raise InvalidData(str(exc), field="--signal-efficiency") from None
    release = read_release(args.release, _runs(args.runs))
    manifest = import_release(release, args.output, signal_efficiency=width)
    for run in manifest["runs"]:
        LOG.info(
            "%s: %d bins, livetime %.6g t yr, 8B CEvNS %.3f events",
            run["name"],
            run["n_bins"],
            run["livetime_t_yr"],
            manifest["b8_expected_events"][run["name"]],
        )
    LOG.info("kit written to %s", args.output)
