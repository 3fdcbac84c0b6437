"""Subcommands of the analysis steps: each parser next to its handler, and each handler calls library functions.

Handlers import the library late: importing every step's dependencies (pyhf, scipy.stats,
matplotlib, nestpy) takes about 2 s, against 0.05 s for ``dmpreserve --help``, and every Snakemake
job pays it once (measured with ``python -X importtime``).
"""

from __future__ import annotations

import argparse
import logging
import math

from dmpreserve.errors import InvalidSpectrum

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
    p.add_argument("-o", "--output", required=True, metavar="YAML", help="the resolved configuration to write")
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
    p.add_argument("-o", "--output", required=True, metavar="JSON", help="the mass grid (mass_grid.json) to write")
    p.set_defaults(handler=run_mass_grid)

    p = add(
        sub,
        "validate-config",
        "check a configuration file",
        "Validate a configuration against schemas/config.schema.json and the cross-checks a schema cannot express.",
    )
    p.add_argument(
        "--config",
        required=True,
        metavar="YAML",
        help="the configuration file to check, e.g. workflow/config/config.yaml or results/config.resolved.yaml",
    )
    p.set_defaults(handler=run_validate_config)

    p = add(
        sub,
        "mdc",
        "generate the mock-data challenge with NEST",
        "Generate the science run, calibration samples, NR response simulation and isolated-S1/S2 samples "
        "with nestpy from the configured seed. Each Parquet file gets a JSON sidecar (same stem).",
    )
    p.add_argument(
        "--config",
        required=True,
        metavar="YAML",
        help="the resolved configuration (results/config.resolved.yaml): seed and section mdc",
    )
    for name, text in (
        ("science", "the science run to write (results/mdc/science.parquet; sidecar with live time and exposure)"),
        (
            "truth",
            "the science run's truth labels to write (results/mdc/truth.parquet: event_id, component, "
            "true_energy_kev [keV]; no sidecar, never read by the analysis)",
        ),
        ("calib-er", "the ER calibration, flat in energy, to write (results/mdc/calib_er.parquet)"),
        ("calib-nr", "the NR (D-D neutron) calibration to write (results/mdc/calib_nr.parquet)"),
        (
            "sim-nr",
            "the NR response simulation, flat in true recoil energy [keV], to write (results/mdc/sim_nr.parquet)",
        ),
        (
            "isolated-s1",
            "the isolated-S1 sample (accidental coincidences) to write (results/mdc/isolated_s1.parquet)",
        ),
        (
            "isolated-s2",
            "the isolated-S2 sample (accidental coincidences) to write (results/mdc/isolated_s2.parquet)",
        ),
    ):
        p.add_argument(f"--{name}", required=True, metavar="PARQUET", help=text)
    p.set_defaults(handler=run_mdc)

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
    p.add_argument("-o", "--output", required=True, metavar="CSV", help="the recoil spectrum dR/dE to write")
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
