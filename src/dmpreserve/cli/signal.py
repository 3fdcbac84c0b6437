"""Subcommands ``response`` (NR and ER detector responses) and ``signal`` (fold the signal model's spectra).

``response`` writes ``results/response/response_nr.json`` and ``response_er.json`` (read by ``signal``,
``backgrounds`` for NEST-simulated background shapes, and the reinterpretation kit); ``signal`` folds the
recoil spectra through the NR response.  Handlers import the library late (see :mod:`dmpreserve.cli.steps`).
"""

from __future__ import annotations

import argparse
import logging

from dmpreserve.errors import InvalidData, InvalidSpectrum

LOG = logging.getLogger("dmpreserve")


def add_nr_response_arguments(p) -> None:
    """The inputs of the NR response (--sim-nr, --efficiency-curve), shared by ``response`` and
    ``unbinned-templates``."""
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


def register(sub, add) -> None:
    """Add the ``response`` and ``signal`` subcommands to the ``dmpreserve`` parser."""
    p = add(
        sub,
        "response",
        "build the NR response matrix and the ER line response",
        "Build the NR response matrix (true recoil energy x analysis bin) from the NR simulation: with every "
        "configured cut (signal.efficiency: simulation), or as an external efficiency curve x the simulation's "
        "analysis-space distribution (signal.efficiency: {curve, includes_roi}); multiply in the efficiency of "
        "upstream cuts declared in the selected events' sidecar; simulate the ER response to monoenergetic "
        "lines with NEST (seeded from the configuration).",
    )
    p.add_argument(
        "--config",
        required=True,
        metavar="YAML",
        help="the resolved configuration (results/config.resolved.yaml): cuts, analysis.binning, signal "
        "energy bins and signal.efficiency",
    )
    add_nr_response_arguments(p)
    p.add_argument(
        "--selected-sidecar",
        required=True,
        metavar="JSON",
        help="the select step's selected.json (its upstream_cuts: efficiencies of cuts applied upstream)",
    )
    p.add_argument("--response-nr", required=True, metavar="JSON", help="NR response matrix (response_nr.json)")
    p.add_argument("--response-er", required=True, metavar="JSON", help="ER line response (response_er.json)")
    p.add_argument(
        "--er-lines", default="0.5:30:0.5", metavar="START:STOP:STEP", help="energies of the simulated ER lines [keV]"
    )
    p.add_argument("--er-events-per-line", type=int, default=2000, metavar="N", help="NEST events per ER line")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(handler=run_response)

    p = add(
        sub,
        "signal",
        "fold the signal model's recoil spectra through the NR response",
        "Fold the signal model's recoil spectra (default SI WIMPs: standard halo, Helm form factor) through the "
        "NR response matrix of the response step, for the resolved mass grid; with an efficiency band also "
        "through the lower and upper responses (efficiency_lo/efficiency_hi per mass).",
    )
    p.add_argument(
        "--config",
        required=True,
        metavar="YAML",
        help="the resolved configuration (results/config.resolved.yaml): halo, binning and the signal section",
    )
    p.add_argument("--response-nr", required=True, metavar="JSON", help="the response step's response_nr.json")
    p.add_argument("--exposure", required=True, metavar="JSON", help="the select step's exposure.json")
    p.add_argument("--mass-grid", required=True, metavar="JSON", help="the mass-grid step's mass_grid.json")
    p.add_argument(
        "--signal",
        required=True,
        metavar="JSON",
        help="the signal templates to write: expected events per analysis bin for each mass at its reference "
        "cross section [cm^2] (results/signal/signal.json)",
    )
    p.add_argument(
        "--spectra",
        required=True,
        metavar="CSV",
        help="the recoil spectra to write: mass_gev [GeV/c^2], energy_kev [keV], dr_de [events/(t yr keV)] "
        "at 1e-45 cm^2 (results/signal/spectra.csv)",
    )
    p.add_argument(
        "--model",
        metavar="YAML",
        default=None,
        help="signal model file (schemas/signal_model.schema.json; NR models); default: SI "
        "with the configuration's halo and mass grid",
    )
    p.set_defaults(handler=run_signal)


def _er_lines(args: argparse.Namespace):
    from dmpreserve.physics.wimp import parse_energy_range

    if args.er_events_per_line < 10:
        raise InvalidData("must be >= 10", field="--er-events-per-line")
    try:
        lines = parse_energy_range(args.er_lines)
    except InvalidSpectrum as exc:
        raise InvalidData(exc.message, field="--er-lines") from None
    if len(lines) < 2 or lines[0] <= 0:
        raise InvalidData("need at least two line energies > 0 keV", field="--er-lines")
    return lines


def _upstream_cuts(path: str):
    """The upstream cuts of the selected events' sidecar (checked against the sidecar schema's definition)."""
    import jsonschema

    from dmpreserve.artifacts.reduced import upstream_cuts
    from dmpreserve.files import read_json
    from dmpreserve.schema import json_path, load_schema

    meta = read_json(path, what="selected-events sidecar")
    if not isinstance(meta, dict):
        raise InvalidData("sidecar must be a JSON object", path=path)
    schema = {
        "type": "object",
        "properties": {"upstream_cuts": load_schema("reduced_data")["properties"]["upstream_cuts"]},
    }
    best = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(meta))
    if best is not None:
        raise InvalidData(
            f"does not match reduced_data.schema.json: {best.message[:300]}", path=path, field=json_path(best)
        )
    return upstream_cuts(meta, path=path)


def run_response(args: argparse.Namespace) -> None:
    """``dmpreserve response``."""
    from dmpreserve.artifacts.reduced import read_dataset
    from dmpreserve.artifacts.response import read_efficiency_curve, write_response
    from dmpreserve.config import load_config
    from dmpreserve.response import nr_response, simulate_er_response

    cfg = load_config(args.config)
    lines = _er_lines(args)
    upstream = _upstream_cuts(args.selected_sidecar)
    curve = read_efficiency_curve(args.efficiency_curve) if args.efficiency_curve else None
    sim = read_dataset(args.sim_nr, kinds=("simulation_nr",))
    response = nr_response(sim, cfg, curve=curve, upstream=upstream)
    info = response.efficiency or {"method": "simulation"}
    LOG.info(
        "NR response: %d energy bins x %d analysis bins, efficiency from %s%s",
        response.matrix.shape[0],
        response.matrix.shape[1],
        info.get("curve", "the NR simulation's cuts"),
        "".join(f"; upstream cut {c['name']}" for c in info.get("upstream_cuts", [])),
    )
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
    write_response(args.response_nr, response)
    write_response(args.response_er, er)


def model_and_mass_grid(model_path: str | None, grid_path: str):
    """The signal model (None: SI) and the mass grid resolved for it (``mass_grid.json``), checked to agree.

    Raises:
        InvalidData: the grid was resolved for another model (naming the grid file, field ``model_file``).
    """
    from dmpreserve.artifacts.mass_grid import read_mass_grid
    from dmpreserve.physics.signal_models import load_model

    model = load_model(model_path) if model_path else None
    grid = read_mass_grid(grid_path)
    model_name = model.model if model else "si"
    if grid.model_name != model_name or (model and model.masses_gev and tuple(model.masses_gev) != grid.masses_gev):
        raise InvalidData(
            f"the mass grid was resolved for another signal model ({grid.model_name!r}, from {grid.model_file}), "
            f"not for {model_path or 'the default SI model'}",
            path=grid_path,
            field="model_file",
        )
    return model, grid


def run_signal(args: argparse.Namespace) -> None:
    """``dmpreserve signal``."""
    from dmpreserve.artifacts.exposure import read_exposure
    from dmpreserve.artifacts.response import read_response
    from dmpreserve.artifacts.signal_templates import write_signal
    from dmpreserve.config import load_config
    from dmpreserve.files import write_csv
    from dmpreserve.signals import build_signal, spectra_rows

    cfg = load_config(args.config)
    model, grid = model_and_mass_grid(args.model, args.mass_grid)
    response = read_response(args.response_nr)
    if response.matrix.shape[1] != cfg.binning.n_bins or not _same_edges(response, cfg):
        raise InvalidData(
            "the response was built for another binning or energy range than the configuration's "
            "(analysis.binning, signal.energy_bins_kev)",
            path=args.response_nr,
            field="$.energy_edges_kev",
        )
    exposure = read_exposure(args.exposure)
    try:
        signal = build_signal(
            config=cfg,
            response=response,
            exposure_t_yr=exposure.exposure_t_yr,
            model=model,
            masses_gev=grid.masses_gev,
        )
    except InvalidSpectrum as exc:  # masses without sensitivity: name the file that chose them
        if exc.path is not None:
            raise
        if exc.field == "efficiency_lo":
            raise InvalidSpectrum(exc.message, path=args.response_nr, field="$.matrix_lo") from None
        if exc.field != "masses_gev":
            raise
        from_model = model is not None and model.masses_gev is not None
        raise InvalidSpectrum(
            exc.message,
            path=args.model if from_model else args.config,
            field="masses_gev" if from_model else "$.signal.masses_gev",
        ) from None
    for m, ref, n in zip(signal.masses_gev, signal.reference_cross_section_cm2, signal.expected_events):
        LOG.info("m = %8.4g GeV: %.4g signal events at sigma = %.0e cm2", m, n, ref)
    write_signal(args.signal, signal)
    write_csv(args.spectra, ("mass_gev", "energy_kev", "dr_de"), spectra_rows(cfg, model=model))


def _same_edges(response, cfg) -> bool:
    import numpy as np

    edges = cfg.signal_energy_edges_kev
    return response.energy_edges_kev.shape == edges.shape and bool(np.allclose(response.energy_edges_kev, edges))
