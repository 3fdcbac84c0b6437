"""Implementations of the CLI subcommands: read inputs, call the library, write outputs."""

from __future__ import annotations

import argparse
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from dmpreserve.config import AnalysisConfig, load_config
from dmpreserve.data import read_reduced, write_reduced
from dmpreserve.errors import InvalidData, InvalidSpectrum
from dmpreserve.io import read_csv, read_json, write_csv, write_json

LOG = logging.getLogger("dmpreserve")
SAMPLES = ("science", "calibration_er", "calibration_nr", "simulation_nr", "isolated_s1", "isolated_s2")


def _config(args: argparse.Namespace) -> AnalysisConfig:
    return load_config(args.config)


def run_validate_config(args: argparse.Namespace) -> None:
    """``dmpreserve validate-config``."""
    cfg = _config(args)
    print(f"{args.config}: valid (config sha256 {cfg.sha256})")


def run_mdc(args: argparse.Namespace) -> None:
    """``dmpreserve mdc``."""
    from dmpreserve.mdc import MdcOutputs, generate

    cfg = _config(args)
    out = MdcOutputs(science=args.science, truth=args.truth, calib_er=args.calib_er, calib_nr=args.calib_nr,
                     sim_nr=args.sim_nr, isolated_s1=args.isolated_s1, isolated_s2=args.isolated_s2)
    counts = generate(cfg, out)
    LOG.info("science run: %s", ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))


def run_select(args: argparse.Namespace) -> None:
    """``dmpreserve select``."""
    from dmpreserve.selection import apply_cuts, cuts_from_config, nr_acceptance

    cfg = _config(args)
    science = read_reduced(args.science, kinds=("science",))
    sim = read_reduced(args.sim_nr, kinds=("simulation_nr",))
    cuts = cuts_from_config(cfg)
    mask, flow = apply_cuts(science, cuts)
    acc = nr_acceptance(sim, cuts, cfg.acceptance_energy_edges_kev)
    write_csv(args.cutflow, ("cut", "description", "events", "efficiency_cumulative", "efficiency_step"), flow.rows())
    write_csv(args.acceptance, ("energy_low_kev", "energy_high_kev", "energy_kev", "acceptance", "acceptance_err"),
              acc.rows())
    cols = {k: v[mask] for k, v in science.columns.items()}
    meta = {k: v for k, v in science.meta.items() if k not in ("columns", "n_events")}
    meta["selection"] = {"config_sha256": cfg.sha256, "cuts": [c["name"] for c in cfg.cuts()]}
    write_reduced(args.selected, cols, meta)
    for row in flow.rows():
        LOG.info("cut %-16s %8d events (%.4g cumulative)", row[0], row[2], row[3])


def run_backgrounds(args: argparse.Namespace) -> None:
    """``dmpreserve backgrounds``."""
    from dmpreserve.backgrounds import estimate_backgrounds

    cfg = _config(args)
    doc = estimate_backgrounds(
        config=cfg, science=read_reduced(args.science, kinds=("science",)),
        calib_er=read_reduced(args.calib_er, kinds=("calibration_er",)),
        sim_nr=read_reduced(args.sim_nr, kinds=("simulation_nr",)),
        isolated_s1=read_reduced(args.isolated_s1, kinds=("isolated_s1",)),
        isolated_s2=read_reduced(args.isolated_s2, kinds=("isolated_s2",)))
    rows = []
    for name, comp in sorted(doc["components"].items()):
        rows.append((name, comp["expected_events"], comp["uncertainty_events"], comp["method"]))
        LOG.info("%-10s %10.4g +- %.3g events (%s)", name, comp["expected_events"], comp["uncertainty_events"],
                 comp["method"])
    LOG.info("observed %d events, exposure %.4g t yr", int(np.sum(doc["observed"])), doc["exposure_t_yr"])
    write_csv(args.summary, ("component", "expected_events", "uncertainty_events", "method"), rows)
    write_json(args.templates, doc)


def read_templates(path: str) -> dict[str, Any]:
    """Read ``templates.json`` and check it against its schema."""
    from dmpreserve.schemas import validate

    from dmpreserve.arrays import check_templates

    doc = read_json(path, what="background templates")
    validate(doc, "templates", path=path)
    check_templates(doc, path=path)
    return doc


def read_signal(path: str, *, n_bins: int | None = None) -> dict[str, Any]:
    """Read ``signal.json`` and check it against its schema and for consistent array lengths."""
    from dmpreserve.arrays import check_signal
    from dmpreserve.schemas import validate

    doc = read_json(path, what="signal templates")
    validate(doc, "signal", path=path)
    check_signal(doc, path=path, n_bins=n_bins)
    return doc


def run_signal(args: argparse.Namespace) -> None:
    """``dmpreserve signal``."""
    from dmpreserve.reinterpret.commands import signal_model_or_none
    from dmpreserve.signal import build_response, build_signal, spectra_rows

    cfg = _config(args)
    model = signal_model_or_none(getattr(args, "model", None))
    sim = read_reduced(args.sim_nr, kinds=("simulation_nr",))
    templates = read_templates(args.templates)
    response = build_response(sim, cfg)
    doc = build_signal(config=cfg, response=response, exposure_t_yr=float(templates["exposure_t_yr"]), model=model)
    for m, ref, n in zip(doc["masses_gev"], doc["reference_cross_section_cm2"], doc["expected_events"]):
        LOG.info("m = %8.4g GeV: %.4g signal events at sigma = %.0e cm2", m, n, ref)
    write_json(args.response, response.to_json())
    write_json(args.signal, doc)
    write_csv(args.spectra, ("mass_gev", "energy_kev", "dr_de"), spectra_rows(cfg, model=model))


def run_spectrum(args: argparse.Namespace) -> None:
    """``dmpreserve spectrum``."""
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
    from dmpreserve.likelihood import build_patchset, build_workspace

    cfg = _config(args)
    templates = read_templates(args.templates)
    signal = read_signal(args.signal, n_bins=int(np.size(templates["observed"])))
    ws = build_workspace(templates, poi_bounds=tuple(cfg["likelihood"]["poi_bounds"]))
    ps = build_patchset(ws, signal, inspire_id=cfg["likelihood"]["inspire_id"])
    write_json(args.workspace, ws)
    write_json(args.patchset, ps)
    LOG.info("workspace: %d bins, %d samples; patchset: %d masses", len(ws["observations"][0]["data"]),
             len(ws["channels"][0]["samples"]), len(ps["patches"]))


def _read_likelihood(workspace: str, patchset: str) -> tuple[dict[str, Any], dict[str, Any]]:
    from dmpreserve.likelihood import validate_patchset, validate_workspace

    ws = read_json(workspace, what="pyhf workspace")
    validate_workspace(ws, path=workspace)
    ps = read_json(patchset, what="pyhf patchset")
    validate_patchset(ps, ws, path=patchset)
    return ws, ps


def run_fit(args: argparse.Namespace) -> None:
    """``dmpreserve fit``."""
    from dmpreserve.fit import fit_all
    from dmpreserve.likelihood import validate_workspace
    from dmpreserve.schemas import validate

    if args.patchset:
        ws, ps = _read_likelihood(args.workspace, args.patchset)
    else:
        ws, ps = read_json(args.workspace, what="pyhf workspace"), None
        validate_workspace(ws, path=args.workspace)
    doc = fit_all(ws, ps, reference_mass_gev=args.reference_mass, scan_points=args.scan_points,
                  gof_toys=args.gof_toys, seed=args.seed, progress=not args.no_progress)
    validate(doc, "fit", path=args.output)
    for p in doc["parameters"]:
        LOG.info("%-16s %+.3f +- %.3f (pull %s)", p["name"], p["value"], p["error"], p["pull"])
    gof = doc["goodness_of_fit"]
    LOG.info("saturated GoF: t = %.4g, ndof = %d, p(chi2) = %s, p(toys) = %s", gof["t_sat"], gof["ndof"],
             gof["p_value_chi2"], gof["p_value_toys"])
    if "signal_plus_background" in doc:
        sb = doc["signal_plus_background"]
        poi = sb["poi"]
        LOG.info("S+B fit at %.4g GeV: mu^ = %.4g +- %.3g (MINOS %s / %s)", sb["mass_gev"], poi["value"], poi["error"],
                 poi["minos_lower"], poi["minos_upper"])
    write_json(args.output, doc)


def _read_table(path: str, required: tuple[str, ...], numeric: tuple[str, ...], *, what: str = "CSV"
                ) -> dict[str, Any]:
    cols = read_csv(path, required=required, what=what)
    out: dict[str, Any] = dict(cols)
    for c in numeric:
        try:
            out[c] = np.array([float(v) for v in cols[c]])
        except ValueError:
            raise InvalidData("non-numeric value", path=path, field=c) from None
    return out


def read_limits(path: str) -> dict[str, np.ndarray]:
    """Read ``limits.csv`` into float arrays: every column of the file, ``LIMIT_COLUMNS`` required.

    ``mass_gev`` and the ``*_cm2`` columns must be positive and finite, all others finite.
    """
    from dmpreserve.limits import LIMIT_COLUMNS

    header = tuple(read_csv(path, required=LIMIT_COLUMNS, what="limits"))
    cols = _read_table(path, LIMIT_COLUMNS, header, what="limits")
    out = {}
    for c in header:
        arr = cols[c]
        positive = c == "mass_gev" or c.endswith("_cm2")
        if not np.all(np.isfinite(arr)) or (positive and np.any(arr <= 0)):
            raise InvalidData(f"values must be {'positive and ' if positive else ''}finite", path=path, field=c)
        out[c] = arr
    return out


def _inputs_for_outputs(args: argparse.Namespace) -> dict[str, Any]:
    templates = read_templates(args.templates)
    selected = read_reduced(args.selected, kinds=("science",))
    cutflow = _read_table(args.cutflow, ("cut", "events", "efficiency_cumulative"), ("events", "efficiency_cumulative"))
    acceptance = _read_table(args.acceptance, ("energy_low_kev", "energy_high_kev", "energy_kev", "acceptance",
                                               "acceptance_err"),
                             ("energy_low_kev", "energy_high_kev", "energy_kev", "acceptance", "acceptance_err"))
    return {"limits": read_limits(args.limits), "templates": templates, "selected": selected, "cutflow": cutflow,
            "acceptance": acceptance}


#: Keyword arguments of ``plots.plot_limit_curve`` / columns of the HEPData limit table read from limits.csv.
def _limit_plot(plots, lim: dict[str, np.ndarray], outdir: Path) -> None:
    both = "limit_unconstrained_cm2" in lim and "limit_cls_cm2" in lim
    kwargs = {k: lim[k] for k in plots.LIMIT_CURVE_COLUMNS if k in lim}
    if both:
        fig = plots.plot_limit_curve(**kwargs, label="Power-constrained limit (PCL, headline)",
                                     band_label="PLR sensitivity", title="SI WIMP-nucleon, 90% CL")
    else:
        fig = plots.plot_limit_curve(**kwargs, title="SI WIMP-nucleon, 90% CL (asymptotic CLs)")
    plots.save_figure(fig, outdir / "limits.png")
    plots.save_figure(fig, outdir / "limits.pdf")


def _fit_plots(fit: dict[str, Any], outdir: Path) -> None:
    from dmpreserve import plots_fit
    from dmpreserve.plots import save_figure

    pars = [p for p in fit["parameters"] if p.get("pull") is not None]
    save_figure(plots_fit.plot_pulls(names=[p["name"] for p in pars], pulls=[p["pull"] for p in pars],
                                     errors=[p["error"] / p["prefit_error"] for p in pars]), outdir / "pulls.png")
    sb = fit.get("signal_plus_background")
    corr = (sb or fit)["correlation"]
    save_figure(plots_fit.plot_correlation(names=corr["names"], matrix=corr["matrix"]), outdir / "correlation.png")
    if sb is not None:
        save_figure(plots_fit.plot_poi_scan(mu=sb["scan"]["mu"], delta_twice_nll=sb["scan"]["delta_twice_nll"],
                                            mu_hat=sb["poi"]["value"],
                                            title=f"Profile likelihood, {sb['mass_gev']:.4g} GeV/c² WIMP "
                                                  f"(σ = μ × {sb['reference_cross_section_cm2']:.0e} cm²)"),
                    outdir / "poi_scan.png")
        rows = fit["best_fit_per_mass"]
        save_figure(plots_fit.plot_best_fit_per_mass(
            mass_gev=[r["mass_gev"] for r in rows], cross_section_hat_cm2=[r["cross_section_hat_cm2"] for r in rows],
            cross_section_hat_error_cm2=[r["cross_section_hat_error_cm2"] for r in rows]), outdir / "best_fit.png")


def read_fit(path: str) -> dict[str, Any]:
    """Read ``fit.json`` and check it against ``schemas/fit.schema.json``."""
    from dmpreserve.schemas import validate

    doc = read_json(path, what="fit result")
    validate(doc, "fit", path=path)
    return doc


def run_plots(args: argparse.Namespace) -> None:
    """``dmpreserve plots``."""
    from dmpreserve import plots

    d = _inputs_for_outputs(args)
    t = d["templates"]
    fit = read_fit(args.fit)
    signal = read_signal(args.signal, n_bins=int(np.size(t["observed"])))
    outdir = Path(args.outdir)
    _limit_plot(plots, d["limits"], outdir)
    background = np.sum([np.asarray(c["template"]) for c in t["components"].values()], axis=0)
    shape = background.shape
    i_mass = int(np.argmin(np.abs(np.log(np.asarray(signal["masses_gev"]) / 50.0))))
    sel = d["selected"]
    fig = plots.plot_analysis_space(
        cs1_edges_phd=t["binning"]["cs1_edges_phd"], log10_cs2_edges=t["binning"]["log10_cs2_edges"],
        background_expected=background, observed_cs1_phd=sel.columns["cs1_phd"],
        observed_log10_cs2=sel.variable("log10_cs2"),
        signal_expected=np.asarray(signal["templates"][i_mass]).reshape(shape),
        signal_label=f"{signal['masses_gev'][i_mass]:.3g} GeV WIMP")
    plots.save_figure(fig, outdir / "analysis_space.png")
    plots.save_figure(fig, outdir / "analysis_space.pdf")
    cf = d["cutflow"]
    plots.save_figure(plots.plot_cutflow(cuts=cf["cut"], events=cf["events"], efficiency=cf["efficiency_cumulative"]),
                      outdir / "cutflow.png")
    acc = d["acceptance"]
    plots.save_figure(plots.plot_acceptance(energy_kev=acc["energy_kev"], acceptance=acc["acceptance"],
                                            acceptance_err=acc["acceptance_err"]), outdir / "acceptance.png")
    _fit_plots(fit, outdir)


def run_hepdata(args: argparse.Namespace) -> None:
    """``dmpreserve hepdata``."""
    from dmpreserve.hepdata import write_submission

    d = _inputs_for_outputs(args)
    _read_likelihood(args.workspace, args.patchset)
    t = d["templates"]
    sel = d["selected"]
    write_submission(
        output_tar=args.output, limits=d["limits"],
        observed_events={"cs1_phd": sel.columns["cs1_phd"], "log10_cs2": sel.variable("log10_cs2")},
        background={"cs1_edges_phd": t["binning"]["cs1_edges_phd"], "log10_cs2_edges": t["binning"]["log10_cs2_edges"],
                    "components": {k: np.asarray(v["template"]) for k, v in t["components"].items()},
                    "observed": np.asarray(t["observed"])},
        cutflow={k: d["cutflow"][k] for k in ("cut", "events", "efficiency_cumulative")},
        acceptance={k: d["acceptance"][k] for k in ("energy_low_kev", "energy_high_kev", "acceptance", "acceptance_err")},
        likelihood_files=[args.workspace, args.patchset],
        fit=read_fit(args.fit) if args.fit else None,
        resources=[(path, description) for path, description in (args.resource or [])],
        metadata={"description": "Search for spin-independent WIMP-nucleon scattering in a liquid-xenon TPC "
                                 "(dmpreserve mock-data challenge modelled on LZ's first science run, "
                                 f"exposure {t['exposure_t_yr']:.4g} t yr).",
                  "comment": "Produced by the dmpreserve preserved-analysis pipeline."})


def run_provenance(args: argparse.Namespace) -> None:
    """``dmpreserve provenance``."""
    from dmpreserve.provenance import build_provenance

    cfg = _config(args)
    doc = build_provenance(config_path=args.config, config_sha256=cfg.sha256, image=cfg["container_image"],
                           inputs=sorted(set(args.inputs)), outputs=sorted(set(args.outputs)))
    write_json(args.output, doc)
