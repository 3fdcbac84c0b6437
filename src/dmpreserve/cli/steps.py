"""Subcommands of the analysis steps: each parser next to its handler, and each handler calls library functions.

Handlers import the library late: importing every step's dependencies (pyhf, scipy.stats,
matplotlib, nestpy) takes about 2 s, against 0.05 s for ``dmpreserve --help``, and every Snakemake
job pays it once (measured with ``python -X importtime``).
"""

from __future__ import annotations

import argparse
import logging
import math
from pathlib import Path

from dmpreserve.errors import InvalidData, InvalidSpectrum

LOG = logging.getLogger("dmpreserve")


def register(sub, add) -> None:
    """Add the analysis steps' subcommands to the ``dmpreserve`` parser."""
    p = add(sub, "validate-config", "check a configuration file", "Validate a configuration against "
             "schemas/config.schema.json and the cross-checks a schema cannot express.")
    p.add_argument("--config", required=True)
    p.set_defaults(handler=run_validate_config)

    p = add(sub, "mdc", "generate the mock-data challenge with NEST",
             "Generate the science run, calibration samples, NR response simulation and isolated-S1/S2 samples "
             "with nestpy from the configured seed. Each Parquet file gets a JSON sidecar (same stem).")
    p.add_argument("--config", required=True)
    for name in ("science", "truth", "calib-er", "calib-nr", "sim-nr", "isolated-s1", "isolated-s2"):
        p.add_argument(f"--{name}", required=True, metavar="PARQUET")
    p.set_defaults(handler=run_mdc)

    p = add(sub, "select", "apply the selection; cut flow and signal acceptance",
             "Apply the cuts declared in the configuration to the science data and the NR simulation.")
    p.add_argument("--config", required=True)
    p.add_argument("--science", required=True, metavar="PARQUET")
    p.add_argument("--sim-nr", required=True, metavar="PARQUET")
    p.add_argument("--selected", required=True, metavar="PARQUET", help="selected science events (+ .json sidecar)")
    p.add_argument("--cutflow", required=True, metavar="CSV")
    p.add_argument("--acceptance", required=True, metavar="CSV")
    p.set_defaults(handler=run_select)

    p = add(sub, "backgrounds", "estimate background templates and counts",
             "Build (cS1, log10 cS2) templates and expected counts for ER, neutrons, 8B CEvNS, accidentals "
             "and wall events, and histogram the observed events.")
    p.add_argument("--config", required=True)
    for name in ("science", "calib-er", "sim-nr", "isolated-s1", "isolated-s2"):
        p.add_argument(f"--{name}", required=True, metavar="PARQUET")
    p.add_argument("--templates", required=True, metavar="JSON")
    p.add_argument("--summary", required=True, metavar="CSV")
    p.set_defaults(handler=run_backgrounds)

    p = add(sub, "signal", "build the NR response matrix and WIMP signal templates",
             "Fold SI WIMP recoil spectra (standard halo, Helm form factor) through the NR response matrix.")
    p.add_argument("--config", required=True)
    p.add_argument("--sim-nr", required=True, metavar="PARQUET")
    p.add_argument("--templates", required=True, metavar="JSON", help="background templates (for the exposure)")
    p.add_argument("--response", required=True, metavar="JSON")
    p.add_argument("--signal", required=True, metavar="JSON")
    p.add_argument("--spectra", required=True, metavar="CSV")
    p.add_argument("--model", metavar="YAML", default=None,
                   help="signal model file (schemas/signal_model.schema.json; NR models); default: SI "
                        "with the configuration's halo and mass grid")
    p.set_defaults(handler=run_signal)

    p = add(sub, "spectrum", "write an SI WIMP recoil spectrum",
             "Differential SI WIMP-xenon recoil rate dR/dE in events/(t yr keV) on an energy grid.")
    p.add_argument("--mass", required=True, type=float, metavar="GEV", help="WIMP mass [GeV/c^2]")
    p.add_argument("--cross-section", required=True, type=float, metavar="CM2",
                   help="SI WIMP-nucleon cross section [cm^2]")
    p.add_argument("--energies", required=True, metavar="START:STOP:STEP", help="recoil energies [keV]")
    p.add_argument("--rho0", type=float, default=0.3, metavar="GEV_CM3", help="local DM density [GeV/cm^3]")
    p.add_argument("--v0", type=float, default=238.0, metavar="KM_S", help="circular speed [km/s]")
    p.add_argument("--vesc", type=float, default=544.0, metavar="KM_S", help="escape speed [km/s]")
    p.add_argument("--vearth", type=float, default=250.5, metavar="KM_S", help="Earth speed in the galactic frame [km/s]")
    p.add_argument("-o", "--output", required=True, metavar="CSV")
    p.set_defaults(handler=run_spectrum)

    p = add(sub, "likelihood", "write the pyhf workspace and signal patchset",
             "Serialize the likelihood: background-only pyhf workspace and a patchset with one patch per mass.")
    p.add_argument("--config", required=True)
    p.add_argument("--templates", required=True, metavar="JSON")
    p.add_argument("--signal", required=True, metavar="JSON")
    p.add_argument("--workspace", required=True, metavar="JSON")
    p.add_argument("--patchset", required=True, metavar="JSON")
    p.set_defaults(handler=run_likelihood)

    p = add(sub, "fit", "maximum-likelihood fits: pulls, correlations, MINOS, POI scan, goodness of fit",
             "iminuit fits of -2 ln L of the pyhf model: background-only (MIGRAD, HESSE, pulls, correlations, "
             "saturated-model goodness of fit with chi2 ndof = bins - free parameters and with toys); with "
             "--patchset also the signal-plus-background fit at the mass closest to --reference-mass (MINOS for "
             "mu, profile-likelihood scan of mu) and mu^ +- HESSE error per mass. Output: schemas/fit.schema.json.")
    p.add_argument("--workspace", required=True, metavar="JSON", help="background-only pyhf workspace")
    p.add_argument("--patchset", metavar="JSON", help="signal patchset (enables the signal-plus-background fits)")
    p.add_argument("--reference-mass", type=float, default=50.0, metavar="GEV",
                   help="WIMP mass [GeV/c^2] of the full signal-plus-background fit (closest patch in log mass)")
    p.add_argument("--scan-points", type=int, default=31, metavar="N",
                   help="points of the profile-likelihood scan of mu (dimensionless signal strength)")
    p.add_argument("--gof-toys", type=int, default=100, metavar="N",
                   help="toys for the goodness-of-fit p-value (0: asymptotic chi2 only)")
    p.add_argument("--seed", type=int, default=20210907, help="seed of the goodness-of-fit toys")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("-o", "--output", required=True, metavar="JSON")
    p.set_defaults(handler=run_fit)

    p = add(sub, "plots", "make the result plots", "Limit curve (PCL headline, unconstrained PLR and CLs over "
             "the PLR sensitivity band; cross sections in cm^2), analysis space, cut flow, acceptance, and the fit "
             "plots: pulls, correlation matrix, profile-likelihood scan of mu, best-fit cross section per mass.")
    for name in ("limits", "templates", "signal", "selected", "cutflow", "acceptance", "fit"):
        p.add_argument(f"--{name}", required=True)
    p.add_argument("--outdir", required=True, help="writes limits.png/.pdf, analysis_space.png/.pdf, cutflow.png, "
                                                   "acceptance.png, pulls.png, correlation.png, poi_scan.png, "
                                                   "best_fit.png (the last two only for fits with a patchset)")
    p.set_defaults(handler=run_plots)

    p = add(sub, "hepdata", "build and validate the HEPData record", "HEPData record (hepdata-lib), "
             "validated with hepdata-validator; the likelihood is attached as a HistFactory resource. The limit "
             "table carries both conventions (power-constrained and unconstrained PLR limits with the Neyman "
             "construction, CLs), the sensitivity bands and the discovery p-value; with --fit also the fit results.")
    for name in ("limits", "templates", "selected", "cutflow", "acceptance", "workspace", "patchset"):
        p.add_argument(f"--{name}", required=True)
    p.add_argument("--fit", metavar="JSON", help="fit results (dmpreserve fit) to add as tables")
    p.add_argument("--resource", nargs=2, action="append", metavar=("PATH", "DESCRIPTION"),
                   help="attach a regular file as an additional resource with this description (repeatable; "
                        "at most 100 MiB per file)")
    p.add_argument("-o", "--output", required=True, metavar="TAR_GZ")
    p.set_defaults(handler=run_hepdata)

    p = add(sub, "provenance", "record checksums, versions, commit and image", "Write provenance.json.")
    p.add_argument("--config", required=True)
    p.add_argument("--inputs", nargs="+", required=True)
    p.add_argument("--outputs", nargs="+", required=True)
    p.add_argument("-o", "--output", required=True, metavar="JSON")
    p.set_defaults(handler=run_provenance)


def run_validate_config(args: argparse.Namespace) -> None:
    """``dmpreserve validate-config``."""
    from dmpreserve.config import load_config

    cfg = load_config(args.config)
    print(f"{args.config}: valid (config sha256 {cfg.sha256})")


def run_mdc(args: argparse.Namespace) -> None:
    """``dmpreserve mdc``."""
    from dmpreserve.config import load_config
    from dmpreserve.mdc.generate import MdcOutputs, generate

    out = MdcOutputs(science=args.science, truth=args.truth, calib_er=args.calib_er, calib_nr=args.calib_nr,
                     sim_nr=args.sim_nr, isolated_s1=args.isolated_s1, isolated_s2=args.isolated_s2)
    counts = generate(load_config(args.config), out)
    LOG.info("science run: %s", ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))


def run_select(args: argparse.Namespace) -> None:
    """``dmpreserve select``."""
    from dmpreserve.artifacts.reduced import read_reduced, write_reduced
    from dmpreserve.config import load_config
    from dmpreserve.selection.cuts import apply_cuts, cuts_from_config, nr_acceptance

    cfg = load_config(args.config)
    science = read_reduced(args.science, kinds=("science",))
    sim = read_reduced(args.sim_nr, kinds=("simulation_nr",))
    cuts = cuts_from_config(cfg)
    mask, flow = apply_cuts(science, cuts)
    acc = nr_acceptance(sim, cuts, cfg.acceptance_energy_edges_kev)
    flow.write(args.cutflow)
    acc.write(args.acceptance)
    cols = {k: v[mask] for k, v in science.columns.items()}
    meta = {k: v for k, v in science.meta.items() if k not in ("columns", "n_events")}
    meta["selection"] = {"config_sha256": cfg.sha256, "cuts": [c["name"] for c in cfg.cuts()]}
    write_reduced(args.selected, cols, meta)
    for row in flow.rows():
        LOG.info("cut %-16s %8d events (%.4g cumulative)", row[0], row[2], row[3])


def run_backgrounds(args: argparse.Namespace) -> None:
    """``dmpreserve backgrounds``."""
    from dmpreserve.artifacts.reduced import read_reduced
    from dmpreserve.artifacts.templates import write_templates
    from dmpreserve.backgrounds import estimate_backgrounds, write_summary
    from dmpreserve.config import load_config

    templates = estimate_backgrounds(
        config=load_config(args.config), science=read_reduced(args.science, kinds=("science",)),
        calib_er=read_reduced(args.calib_er, kinds=("calibration_er",)),
        sim_nr=read_reduced(args.sim_nr, kinds=("simulation_nr",)),
        isolated_s1=read_reduced(args.isolated_s1, kinds=("isolated_s1",)),
        isolated_s2=read_reduced(args.isolated_s2, kinds=("isolated_s2",)))
    for name, comp in sorted(templates.components.items()):
        LOG.info("%-10s %10.4g +- %.3g events (%s)", name, comp.expected_events, comp.uncertainty_events, comp.method)
    LOG.info("observed %d events, exposure %.4g t yr", int(templates.observed.sum()), templates.exposure_t_yr)
    write_summary(args.summary, templates)
    write_templates(args.templates, templates)


def run_signal(args: argparse.Namespace) -> None:
    """``dmpreserve signal``."""
    from dmpreserve.artifacts.reduced import read_reduced
    from dmpreserve.artifacts.response import write_response
    from dmpreserve.artifacts.signal_templates import write_signal
    from dmpreserve.artifacts.templates import read_templates
    from dmpreserve.config import load_config
    from dmpreserve.files import write_csv
    from dmpreserve.physics.signal_models import load_model
    from dmpreserve.signals import build_response, build_signal, spectra_rows

    cfg = load_config(args.config)
    model = load_model(args.model) if args.model else None
    sim = read_reduced(args.sim_nr, kinds=("simulation_nr",))
    templates = read_templates(args.templates)
    response = build_response(sim, cfg)
    signal = build_signal(config=cfg, response=response, exposure_t_yr=templates.exposure_t_yr, model=model)
    for m, ref, n in zip(signal.masses_gev, signal.reference_cross_section_cm2, signal.expected_events):
        LOG.info("m = %8.4g GeV: %.4g signal events at sigma = %.0e cm2", m, n, ref)
    write_response(args.response, response)
    write_signal(args.signal, signal)
    write_csv(args.spectra, ("mass_gev", "energy_kev", "dr_de"), spectra_rows(cfg, model=model))


def run_spectrum(args: argparse.Namespace) -> None:
    """``dmpreserve spectrum``."""
    import numpy as np

    from dmpreserve.files import write_csv
    from dmpreserve.physics.halo import StandardHalo
    from dmpreserve.physics.wimp import parse_energy_range, rate_si

    for name, value in (("--mass", args.mass), ("--cross-section", args.cross_section), ("--rho0", args.rho0),
                        ("--v0", args.v0), ("--vesc", args.vesc)):
        if not math.isfinite(value) or value <= 0:
            raise InvalidSpectrum(f"must be a positive finite number, got {value!r}", field=name)
    if not math.isfinite(args.vearth) or args.vearth < 0:
        raise InvalidSpectrum(f"must be a non-negative finite number, got {args.vearth!r}", field="--vearth")
    energies = parse_energy_range(args.energies)
    halo = StandardHalo(rho0_gev_cm3=args.rho0, v0_km_s=args.v0, v_esc_km_s=args.vesc, v_earth_km_s=args.vearth)
    rate = rate_si(energies, mass_gev=args.mass, cross_section_cm2=args.cross_section, halo=halo)
    write_csv(args.output, ("energy_kev", "dr_de"), zip(energies.tolist(), np.asarray(rate, float).tolist()))


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
    LOG.info("workspace: %d bins, %d samples; patchset: %d masses", len(ws["observations"][0]["data"]),
             len(ws["channels"][0]["samples"]), len(ps["patches"]))


def run_fit(args: argparse.Namespace) -> None:
    """``dmpreserve fit``."""
    from dmpreserve.artifacts.fit import write_fit
    from dmpreserve.artifacts.likelihood import read_likelihood
    from dmpreserve.stats.fit import fit_all

    lik = read_likelihood(args.workspace, args.patchset)
    fit = fit_all(lik.workspace, lik.patchset, reference_mass_gev=args.reference_mass, scan_points=args.scan_points,
                  gof_toys=args.gof_toys, seed=args.seed, progress=not args.no_progress)
    for p in fit.parameters:
        LOG.info("%-16s %+.3f +- %.3f (pull %s)", p["name"], p["value"], p["error"], p["pull"])
    gof = fit.goodness_of_fit
    LOG.info("saturated GoF: t = %.4g, ndof = %d, p(chi2) = %s, p(toys) = %s", gof["t_sat"], gof["ndof"],
             gof["p_value_chi2"], gof["p_value_toys"])
    if fit.signal_plus_background is not None:
        sb = fit.signal_plus_background
        poi = sb["poi"]
        LOG.info("S+B fit at %.4g GeV: mu^ = %.4g +- %.3g (MINOS %s / %s)", sb["mass_gev"], poi["value"], poi["error"],
                 poi["minos_lower"], poi["minos_upper"])
    write_fit(args.output, fit)


def run_plots(args: argparse.Namespace) -> None:
    """``dmpreserve plots``."""
    from dmpreserve.artifacts.fit import read_fit
    from dmpreserve.artifacts.limits import read_limits
    from dmpreserve.artifacts.reduced import read_reduced
    from dmpreserve.artifacts.signal_templates import read_signal
    from dmpreserve.artifacts.tables import Acceptance, CutFlow
    from dmpreserve.artifacts.templates import read_templates
    from dmpreserve.publish.figures import write_result_plots

    templates = read_templates(args.templates)
    write_result_plots(Path(args.outdir), limits=read_limits(args.limits), templates=templates,
                       signal=read_signal(args.signal, n_bins=templates.n_bins),
                       selected=read_reduced(args.selected, kinds=("science",)), cutflow=CutFlow.read(args.cutflow),
                       acceptance=Acceptance.read(args.acceptance), fit=read_fit(args.fit))


def run_hepdata(args: argparse.Namespace) -> None:
    """``dmpreserve hepdata``."""
    from dmpreserve.artifacts.fit import read_fit
    from dmpreserve.artifacts.likelihood import read_likelihood
    from dmpreserve.artifacts.limits import read_limits
    from dmpreserve.artifacts.reduced import read_reduced
    from dmpreserve.artifacts.tables import Acceptance, CutFlow
    from dmpreserve.artifacts.templates import read_templates
    from dmpreserve.publish.hepdata import write_analysis_record

    read_likelihood(args.workspace, args.patchset)  # checks both before they are attached
    write_analysis_record(
        args.output, limits=read_limits(args.limits), templates=read_templates(args.templates),
        selected=read_reduced(args.selected, kinds=("science",)), cutflow=CutFlow.read(args.cutflow),
        acceptance=Acceptance.read(args.acceptance), likelihood_files=[args.workspace, args.patchset],
        fit=read_fit(args.fit) if args.fit else None,
        resources=[(path, description) for path, description in (args.resource or [])])


def run_provenance(args: argparse.Namespace) -> None:
    """``dmpreserve provenance``."""
    from dmpreserve.config import load_config
    from dmpreserve.files import write_json
    from dmpreserve.publish.provenance import build_provenance

    cfg = load_config(args.config)
    doc = build_provenance(config_path=args.config, config_sha256=cfg.sha256, image=cfg["container_image"],
                           inputs=sorted(set(args.inputs)), outputs=sorted(set(args.outputs)))
    write_json(args.output, doc)
