"""Handlers of ``dmpreserve kit``, ``dmpreserve reinterpret`` and ``dmpreserve verify``."""

from __future__ import annotations

import argparse
import logging
import math
import sys
from pathlib import Path

from dmpreserve.errors import InvalidData, InvalidSpectrum

LOG = logging.getLogger("dmpreserve")


def run_kit(args: argparse.Namespace) -> None:
    """``dmpreserve kit``: assemble the reinterpretation kit from the pipeline's outputs."""
    from dmpreserve.commands import read_limits, read_templates
    from dmpreserve.config import load_config
    from dmpreserve.io import dumps_json, read_json
    from dmpreserve.limits import METHOD
    from dmpreserve.physics.wimp import parse_energy_range
    from dmpreserve.reinterpret.kit import README, simulate_er_response, write_kit
    from dmpreserve.reinterpret.models import load_model
    from dmpreserve.signal import halo_from_config

    cfg = load_config(args.config)
    model = load_model(args.signal_model)
    templates = read_templates(args.templates)
    read_limits(args.limits)  # checks the file
    if args.er_events_per_line < 10:
        raise InvalidData("must be >= 10", field="--er-events-per-line")
    lines = parse_energy_range(args.er_lines)
    if len(lines) < 2 or lines[0] <= 0:
        raise InvalidData("need at least two line energies > 0 keV", field="--er-lines")
    er = simulate_er_response(cfg, line_energies_kev=lines, events_per_line=args.er_events_per_line,
                              progress=not args.no_progress)
    response = read_json(args.response, what="NR response")
    binning = cfg.binning
    halo = model.halo or halo_from_config(cfg)
    manifest = {
        "format": "dmpreserve-reinterpretation-kit", "format_version": 1,
        "exposure_t_yr": float(templates["exposure_t_yr"]), "cl": float(cfg["limits"]["cl"]),
        "poi_bounds": [float(x) for x in cfg["likelihood"]["poi_bounds"]],
        "inspire_id": cfg["likelihood"]["inspire_id"],
        "target_events_at_reference": float(cfg["signal"]["target_events_at_reference"]),
        "analysis_binning": {"cs1_edges_phd": list(binning.cs1_edges_phd),
                             "log10_cs2_edges": list(binning.log10_cs2_edges),
                             "flattening": "k = i_cs1 * n_log10cs2 + j_log10cs2"},
        "nr_energy_edges_kev": [float(x) for x in response["energy_edges_kev"]],
        "er_line_energies_kev": lines.tolist(), "halo": halo.as_dict(),
        "masses_gev": list(model.masses_gev or cfg.masses_gev), "statistics": METHOD,
        "statistics_settings": dict(getattr(cfg, "statistics", None) or {"neyman_threshold": "asymptotic",
                                                                          "pcl_power": 0.16}),
        "signal_model": model.to_json(),
        "units": {"exposure_t_yr": "t yr", "energies": "keV", "cs1": "phd", "masses_gev": "GeV/c^2",
                  "limits": "cm^2", "halo": "GeV/cm^3, km/s"}}
    files = {"BkgOnly.json": Path(args.workspace).read_bytes(), "response_nr.json": Path(args.response).read_bytes(),
             "response_er.json": dumps_json(er.to_json()).encode("utf-8"),
             "efficiency.csv": Path(args.acceptance).read_bytes(), "limits.csv": Path(args.limits).read_bytes(),
             "signal_model.yaml": Path(args.signal_model).read_bytes(), "README.md": README.encode("utf-8")}
    write_kit(args.outdir, files=files, manifest=manifest, tarball=args.tarball)
    LOG.info("kit written to %s (ER response: %d lines, %d events each)", args.outdir, len(lines),
             args.er_events_per_line)


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
    """Binwise backend: limits per mass, written as limits.csv (mass_gev, limit_cm2) and limits.json."""
    from dmpreserve.io import write_csv, write_json
    from dmpreserve.reinterpret.xenon1t import load_binwise

    bw = load_binwise(args.kit)
    rows = []
    for m, (rate, strength, breakpoints) in zip(masses, spectra_rates):
        x = bw.upper_limit(bw.fold(rate, breakpoints_kev=breakpoints), asymptotic=args.asymptotic)
        rows.append((m, x * strength))
        LOG.info("m = %8.4g GeV: limit %.4e %s", m, x * strength, unit)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "limits.csv", ("mass_gev", "limit_cm2"), rows)
    write_json(out / "limits.json", {"cl": 0.9, "backend": "binwise approximate likelihood (XENON1T release format)",
                                     "threshold": "asymptotic chi2(1)" if args.asymptotic else "toy-MC Neyman",
                                     "units": {"limit_cm2": unit, "mass_gev": "GeV/c^2"}, "source": source,
                                     "limits": [{"mass_gev": m, "limit_cm2": v} for m, v in rows]})


def run_reinterpret(args: argparse.Namespace) -> None:
    """``dmpreserve reinterpret``."""
    from dmpreserve.reinterpret.models import load_model, read_spectrum_csv
    from dmpreserve.reinterpret.xenon1t import PUBLISHED_MASSES_GEV, is_binwise_release

    ref = args.reference_cross_section
    if not (math.isfinite(ref) and ref > 0):
        raise InvalidSpectrum(f"must be a positive finite number of cm^2, got {ref!r}",
                              field="--reference-cross-section")
    masses = _masses(args.masses)
    model = load_model(args.model) if args.model else None
    spectra = read_spectrum_csv(args.spectrum) if args.spectrum else None
    source = {"model": model.model, **model.to_json()} if model else {"spectrum": str(args.spectrum),
                                                                      "reference_cross_section_cm2": ref}
    binwise = args.backend == "binwise" or (args.backend == "auto" and is_binwise_release(args.kit))
    if binwise:
        from dmpreserve.physics.halo import StandardHalo

        if model is not None:
            if model.is_er:
                raise InvalidSpectrum("the binwise NR likelihood cannot test an ER line", field="model")
            halo = model.halo or StandardHalo.shm_2018()
            ms = masses or model.masses_gev or PUBLISHED_MASSES_GEV
            rates = [(model.rate(mass_gev=m, strength=1e-45, halo=halo), 1e-45,
                      model.breakpoints_kev(mass_gev=m, halo=halo)) for m in ms]
            unit = model.strength_unit
        else:
            ms = spectra.masses_gev
            rates = [(spectra.rate(i), ref, None) for i in range(len(ms))]
            unit = "cm^2 (user spectrum)"
        _xenon1t(args, rates, ms, unit, source)
        return
    from dmpreserve.limits import METHOD
    from dmpreserve.reinterpret.engine import model_signal, reinterpret, spectrum_signal
    from dmpreserve.reinterpret.kit import load_kit
    from dmpreserve.reinterpret.outputs import write_outputs

    kit = load_kit(args.kit)
    if model is not None:
        signal = model_signal(kit, model, masses_gev=masses)
        unit = model.strength_unit
    else:
        signal = spectrum_signal(kit, spectra, reference_cross_section_cm2=ref)
        unit = "cm^2 (user spectrum)"
    result = reinterpret(kit, signal, strength_unit=unit, source=source, progress=not args.no_progress,
                         toys=args.toys)
    for r in result.limits:
        row = r.row()
        LOG.info("m = %8.4g GeV: limit %.4e (expected %.4e) %s", row["mass_gev"], row["limit_cm2"],
                 row["expected_cm2"], unit)
    write_outputs(args.output, result, cl=float(kit.manifest["cl"]), method=result.method or METHOD)


def run_verify(args: argparse.Namespace) -> None:
    """``dmpreserve verify``: exits 1 when a mass fails the tolerance."""
    from dmpreserve.reinterpret.verify import compare, format_table, parse_mass_range, read_curve

    ref = read_curve(args.reference, column=args.reference_column)
    res = read_curve(args.result, column=args.column)
    rows = compare(ref, res, rtol=args.rtol, mass_range=parse_mass_range(args.mass_range),
                   require_coverage=not args.allow_uncovered)
    print(f"reference: {args.reference}\nresult:    {args.result}")
    print(format_table(rows, rtol=args.rtol))
    sys.stdout.flush()
    if not all(r.ok for r in rows):
        raise SystemExit(1)


def signal_model_or_none(path: str | None):
    """The signal model of ``dmpreserve signal --model`` (None: SI with the configuration's halo)."""
    if not path:
        return None
    from dmpreserve.reinterpret.models import load_model

    return load_model(path)

