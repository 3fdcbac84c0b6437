"""Subcommands of the analysis steps: each parser next to its handler, and each handler calls library functions.

Handlers import the library late: importing every step's dependencies (pyhf, scipy.stats,
matplotlib, nestpy) takes about 2 s, against 0.05 s for ``dmpreserve --help``, and every Snakemake
job pays it once (measured with ``python -X importtime``).
"""

from __future__ import annotations

import argparse
import logging
import math

from dmpreserve.errors import InvalidData, InvalidSpectrum

LOG = logging.getLogger("dmpreserve")


def register(sub, add) -> None:
    """Add the analysis steps' subcommands to the ``dmpreserve`` parser."""
    p = add(
        sub,
        "resolve-config",
        "write the configuration Snakemake merged, validated",
        "Validate the configuration Snakemake merged from the default and every --configfile, then "
        "--config KEY=VALUE (given here as JSON), and write it as sorted YAML: the file every step reads.",
    )
    p.add_argument("--config-json", required=True, metavar="JSON", help="the merged configuration (a JSON object)")
    p.add_argument("--source", default="<merged configuration>", help="where it was merged from (for errors)")
    p.add_argument("-o", "--output", required=True, metavar="YAML")
    p.set_defaults(handler=run_resolve_config)

    p = add(
        sub,
        "mass-grid",
        "resolve the mass grid once and check the limit masses",
        "The signal model's mass grid (or the configuration's), and the limit masses (limits.masses_gev, each "
        "checked to lie on that grid); with --expected-masses also the number of limit jobs the workflow "
        "scheduled. Runs before the expensive steps, so a mismatch fails in seconds.",
    )
    p.add_argument("--config", required=True, metavar="YAML", help="the resolved configuration")
    p.add_argument("--signal-model", default=None, metavar="YAML", help="signal model file (default: SI)")
    p.add_argument(
        "--expected-masses",
        type=int,
        default=None,
        metavar="N",
        help="number of limit masses the workflow scheduled (fails fast on a mismatch)",
    )
    p.add_argument("-o", "--output", required=True, metavar="JSON")
    p.set_defaults(handler=run_mass_grid)

    p = add(
        sub,
        "validate-config",
        "check a configuration file",
        "Validate a configuration against schemas/config.schema.json and the cross-checks a schema cannot express.",
    )
    p.add_argument("--config", required=True)
    p.set_defaults(handler=run_validate_config)

    p = add(
        sub,
        "mdc",
        "generate the mock-data challenge with NEST",
        "Generate the science run, calibration samples, NR response simulation and isolated-S1/S2 samples "
        "with nestpy from the configured seed. Each Parquet file gets a JSON sidecar (same stem).",
    )
    p.add_argument("--config", required=True)
    for name in ("science", "truth", "calib-er", "calib-nr", "sim-nr", "isolated-s1", "isolated-s2"):
        p.add_argument(f"--{name}", required=True, metavar="PARQUET")
    p.set_defaults(handler=run_mdc)

    p = add(
        sub,
        "select",
        "apply the selection; cut flow and signal acceptance",
        "Apply the cuts declared in the configuration to the science data and the NR simulation.",
    )
    p.add_argument("--config", required=True)
    p.add_argument("--science", required=True, metavar="PARQUET")
    p.add_argument("--sim-nr", required=True, metavar="PARQUET")
    p.add_argument("--selected", required=True, metavar="PARQUET", help="selected science events (+ .json sidecar)")
    p.add_argument("--cutflow", required=True, metavar="CSV")
    p.add_argument("--acceptance", required=True, metavar="CSV")
    p.add_argument(
        "--exposure",
        required=True,
        metavar="JSON",
        help="exposure: fiducial mass of the cuts x live time [t yr] (read by backgrounds and signal)",
    )
    p.set_defaults(handler=run_select)

    p = add(
        sub,
        "signal",
        "build the NR and ER responses and the signal model's templates",
        "Build the NR response matrix from the NR simulation, simulate the ER response to monoenergetic lines "
        "with NEST (seeded from the configuration), and fold the signal model's recoil spectra (default SI "
        "WIMPs: standard halo, Helm form factor) through the NR response.",
    )
    p.add_argument("--config", required=True)
    p.add_argument("--sim-nr", required=True, metavar="PARQUET")
    p.add_argument("--exposure", required=True, metavar="JSON", help="the select step's exposure.json")
    p.add_argument("--mass-grid", required=True, metavar="JSON", help="the mass-grid step's mass_grid.json")
    p.add_argument("--response", required=True, metavar="JSON", help="NR response matrix (response_nr.json)")
    p.add_argument("--response-er", required=True, metavar="JSON", help="ER line response (response_er.json)")
    p.add_argument("--signal", required=True, metavar="JSON")
    p.add_argument("--spectra", required=True, metavar="CSV")
    p.add_argument(
        "--er-lines", default="0.5:30:0.5", metavar="START:STOP:STEP", help="energies of the simulated ER lines [keV]"
    )
    p.add_argument("--er-events-per-line", type=int, default=2000, metavar="N", help="NEST events per ER line")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--model",
        metavar="YAML",
        default=None,
        help="signal model file (schemas/signal_model.schema.json; NR models); default: SI "
        "with the configuration's halo and mass grid",
    )
    p.set_defaults(handler=run_signal)

    p = add(
        sub,
        "spectrum",
        "write an SI WIMP recoil spectrum",
        "Differential SI WIMP-xenon recoil rate dR/dE in events/(t yr keV) on an energy grid.",
    )
    p.add_argument("--mass", required=True, type=float, metavar="GEV", help="WIMP mass [GeV/c^2]")
    p.add_argument(
        "--cross-section", required=True, type=float, metavar="CM2", help="SI WIMP-nucleon cross section [cm^2]"
    )
    p.add_argument("--energies", required=True, metavar="START:STOP:STEP", help="recoil energies [keV]")
    p.add_argument("--rho0", type=float, default=0.3, metavar="GEV_CM3", help="local DM density [GeV/cm^3]")
    p.add_argument("--v0", type=float, default=238.0, metavar="KM_S", help="circular speed [km/s]")
    p.add_argument("--vesc", type=float, default=544.0, metavar="KM_S", help="escape speed [km/s]")
    p.add_argument(
        "--vearth", type=float, default=250.5, metavar="KM_S", help="Earth speed in the galactic frame [km/s]"
    )
    p.add_argument("-o", "--output", required=True, metavar="CSV")
    p.set_defaults(handler=run_spectrum)


def run_validate_config(args: argparse.Namespace) -> None:
    """``dmpreserve validate-config``."""
    from dmpreserve.config import load_config

    cfg = load_config(args.config)
    print(f"{args.config}: valid (config sha256 {cfg.sha256})")


def run_resolve_config(args: argparse.Namespace) -> None:
    """``dmpreserve resolve-config``."""
    import json

    from dmpreserve.config import config_from_dict, write_resolved_config
    from dmpreserve.errors import InvalidConfig

    try:
        doc = json.loads(args.config_json)
    except json.JSONDecodeError as exc:
        raise InvalidConfig(f"not a JSON object ({exc})", path=args.source, field="--config-json") from None
    cfg = config_from_dict(doc, path=args.source)
    write_resolved_config(args.output, cfg)
    LOG.info("resolved configuration %s (sha256 %s)", args.output, cfg.sha256)


def run_mass_grid(args: argparse.Namespace) -> None:
    """``dmpreserve mass-grid``."""
    from dmpreserve.artifacts.mass_grid import write_mass_grid
    from dmpreserve.config import load_config
    from dmpreserve.errors import InvalidConfig
    from dmpreserve.physics.signal_models import SignalModel, load_model
    from dmpreserve.signals import resolve_mass_grid

    cfg = load_config(args.config)
    model = load_model(args.signal_model) if args.signal_model else SignalModel(model="si")
    grid = resolve_mass_grid(cfg, model, model_file=args.signal_model or "<SI default>")
    if args.expected_masses is not None and args.expected_masses != len(grid.limit_masses_gev):
        raise InvalidConfig(
            f"the workflow scheduled {args.expected_masses} limit jobs, but the configuration and the signal model "
            f"{args.signal_model} select {len(grid.limit_masses_gev)} masses",
            path=args.config,
            field="$.limits.masses_gev",
        )
    write_mass_grid(args.output, grid)
    LOG.info(
        "%s: %d masses %.4g-%.4g GeV, limits at %d",
        grid.model_name,
        len(grid.masses_gev),
        min(grid.masses_gev),
        max(grid.masses_gev),
        len(grid.limit_masses_gev),
    )


def run_mdc(args: argparse.Namespace) -> None:
    """``dmpreserve mdc``."""
    from dmpreserve.config import load_config
    from dmpreserve.mdc.generate import MdcOutputs, generate

    out = MdcOutputs(
        science=args.science,
        truth=args.truth,
        calib_er=args.calib_er,
        calib_nr=args.calib_nr,
        sim_nr=args.sim_nr,
        isolated_s1=args.isolated_s1,
        isolated_s2=args.isolated_s2,
    )
    counts = generate(load_config(args.config), out)
    LOG.info("science run: %s", ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))


def run_select(args: argparse.Namespace) -> None:
    """``dmpreserve select``."""
    from dmpreserve.artifacts.exposure import write_exposure
    from dmpreserve.artifacts.reduced import read_reduced, write_reduced
    from dmpreserve.config import load_config
    from dmpreserve.selection.cuts import apply_cuts, cuts_from_config, exposure_of, nr_acceptance

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
    exposure = exposure_of(science, cuts)
    write_exposure(args.exposure, exposure)
    LOG.info(
        "exposure %.6g t yr (fiducial mass %.4g t x live time %.4g d)",
        exposure.exposure_t_yr,
        exposure.fiducial_mass_t,
        exposure.live_time_s / 86400.0,
    )
    for row in flow.rows():
        LOG.info("cut %-16s %8d events (%.4g cumulative)", row[0], row[2], row[3])


def run_signal(args: argparse.Namespace) -> None:
    """``dmpreserve signal``."""
    from dmpreserve.artifacts.exposure import read_exposure
    from dmpreserve.artifacts.mass_grid import read_mass_grid
    from dmpreserve.artifacts.reduced import read_reduced
    from dmpreserve.artifacts.response import write_response
    from dmpreserve.artifacts.signal_templates import write_signal
    from dmpreserve.config import load_config
    from dmpreserve.files import write_csv
    from dmpreserve.physics.signal_models import load_model
    from dmpreserve.physics.wimp import parse_energy_range
    from dmpreserve.signals import build_response, build_signal, simulate_er_response, spectra_rows

    cfg = load_config(args.config)
    if args.er_events_per_line < 10:
        raise InvalidData("must be >= 10", field="--er-events-per-line")
    try:
        lines = parse_energy_range(args.er_lines)
    except InvalidSpectrum as exc:
        raise InvalidData(exc.message, field="--er-lines") from None
    if len(lines) < 2 or lines[0] <= 0:
        raise InvalidData("need at least two line energies > 0 keV", field="--er-lines")
    model = load_model(args.model) if args.model else None
    grid = read_mass_grid(args.mass_grid)
    model_name = model.model if model else "si"
    if grid.model_name != model_name or (model and model.masses_gev and tuple(model.masses_gev) != grid.masses_gev):
        raise InvalidData(
            f"the mass grid was resolved for another signal model ({grid.model_name!r}, from {grid.model_file}), "
            f"not for {args.model or 'the default SI model'}",
            path=args.mass_grid,
            field="model_file",
        )
    sim = read_reduced(args.sim_nr, kinds=("simulation_nr",))
    exposure = read_exposure(args.exposure)
    response = build_response(sim, cfg)
    try:
        signal = build_signal(
            config=cfg,
            response=response,
            exposure_t_yr=exposure.exposure_t_yr,
            model=model,
            masses_gev=grid.masses_gev,
        )
    except InvalidSpectrum as exc:  # masses without sensitivity: name the file that chose them
        if exc.field != "masses_gev" or exc.path is not None:
            raise
        from_model = model is not None and model.masses_gev is not None
        raise InvalidSpectrum(
            exc.message,
            path=args.model if from_model else args.config,
            field="masses_gev" if from_model else "$.signal.masses_gev",
        ) from None
    for m, ref, n in zip(signal.masses_gev, signal.reference_cross_section_cm2, signal.expected_events):
        LOG.info("m = %8.4g GeV: %.4g signal events at sigma = %.0e cm2", m, n, ref)
    er = simulate_er_response(
        cfg, line_energies_kev=lines, events_per_line=args.er_events_per_line, progress=not args.no_progress
    )
    LOG.info(
        "ER response: %d lines %.4g-%.4g keV, %d NEST events each",
        len(lines),
        lines[0],
        lines[-1],
        args.er_events_per_line,
    )
    write_response(args.response, response)
    write_response(args.response_er, er)
    write_signal(args.signal, signal)
    write_csv(args.spectra, ("mass_gev", "energy_kev", "dr_de"), spectra_rows(cfg, model=model))


def run_spectrum(args: argparse.Namespace) -> None:
    """``dmpreserve spectrum``."""
    import numpy as np

    from dmpreserve.files import write_csv
    from dmpreserve.physics.halo import StandardHalo
    from dmpreserve.physics.wimp import parse_energy_range, rate_si

    for name, value in (
        ("--mass", args.mass),
        ("--cross-section", args.cross_section),
        ("--rho0", args.rho0),
        ("--v0", args.v0),
        ("--vesc", args.vesc),
    ):
        if not math.isfinite(value) or value <= 0:
            raise InvalidSpectrum(f"must be a positive finite number, got {value!r}", field=name)
    if not math.isfinite(args.vearth) or args.vearth < 0:
        raise InvalidSpectrum(f"must be a non-negative finite number, got {args.vearth!r}", field="--vearth")
    energies = parse_energy_range(args.energies)
    halo = StandardHalo(rho0_gev_cm3=args.rho0, v0_km_s=args.v0, v_esc_km_s=args.vesc, v_earth_km_s=args.vearth)
    rate = rate_si(energies, mass_gev=args.mass, cross_section_cm2=args.cross_section, halo=halo)
    write_csv(args.output, ("energy_kev", "dr_de"), zip(energies.tolist(), np.asarray(rate, float).tolist()))
