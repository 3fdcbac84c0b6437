"""Measure what a reduced charge yield of electron-capture lines does to a finished LZ analysis (issue 15).

Electron captures (127Xe L- and M-shell, 124Xe double captures) leave inner-shell vacancies whose x-ray and
Auger cascades recombine more than a beta of the same energy: less charge, more light, a population shifted from
the ER band towards the NR band (Temples et al., PRD 104 (2021) 112001, arXiv:2109.11487; LZ,
arXiv:2503.05679, measured in LZ at WS2022's 193 V/cm).  The pipeline simulates these lines as betas.

Each case scales the NEST ER charge yield of chosen lines by a factor f with the total quanta kept
(Ne -> f Ne, Nph -> Nph + (1 - f) Ne), resimulates those lines with NEST through the analysis's detector, cuts and
binning, and replaces the component's template (normalised to its nominal total, the published expected count
in the ROI) in the kit's workspace.  The factor goes in through an explicit ER yield vector for that line,
[q, q, 1, 1, 0, 0, 1, 1, 1, 1] with q = f x NEST's charge yield Qy at the line's energy and the detector's drift
field: NEST's beta model then gives Qy = q at every energy (exact for a line in a uniform field, as LZ_WS2022's;
checked against nestpy for every simulated line).  ``er_yields=nestpy`` in a case also replaces the analysis's ER
yield vector by nestpy's defaults for every ER component (all ER lines resimulated as the response step does).
Then the background-only fit and the limits with ``reinterpret``'s engine (mode asymptotic, table or toys), as
:mod:`er_band_nuisance` does for the ER band position.

A case is a ``;``-separated list of ``COMPONENT=F`` (every line of the component), ``COMPONENT@KEV=F`` (one
line) and optionally ``er_yields=nestpy``.  E.g. diamx's WS2022 configuration
(``../shared/reference/lz_ws2022/lz_ws2022_wimp_config.json``: ``l_quenching_factor`` 0.88 for 127Xe,
``ll_``/``lm_quenching_factor`` 0.88 for 124Xe) is ``xe127=0.88;xe124=0.88``; diamx's code defaults
(``diamx/experiments/lz.py``: 0.87 for L and LM captures, 0.70 for the 124Xe LL capture) are
``xe127=0.87;xe124=0.87;xe124@10.0=0.7``.

    PYTHONPATH=src python benchmarks/ec_charge_yield.py --results results/lz_ws2022 --mode toys \
        --cases "xe127=1;xe124=1" "xe127=0.88;xe124=0.88" "er_yields=nestpy;xe127=0.87;xe124=0.87;xe124@10.0=0.7" \
        --masses 20,26.7,30,36.3,50,100 -o /tmp/ec.json
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json

import numpy as np
from er_band_nuisance import case_limits, mean_log10cs2, with_shift

from dmpreserve.artifacts.exposure import read_exposure
from dmpreserve.artifacts.response import read_line_response
from dmpreserve.artifacts.templates import read_templates
from dmpreserve.backgrounds.model import BackgroundInputs, build_component
from dmpreserve.config import AnalysisConfig, load_config
from dmpreserve.detector import NestDetector
from dmpreserve.physics.signal_models import load_model
from dmpreserve.reinterpret.engine import model_signal
from dmpreserve.reinterpret.kit import load_kit
from dmpreserve.response import er_line_response, simulate_er_lines
from dmpreserve.stats.fit import FitModel
from dmpreserve.stats.yields import sample_yields


def with_er_yields(cfg: AnalysisConfig, vector: list[float] | None) -> AnalysisConfig:
    """``cfg`` with ``mdc.nest_parameters.er_yields`` set to ``vector`` (None: nestpy's default vector)."""
    raw = copy.deepcopy(cfg.raw)
    params = raw["mdc"].setdefault("nest_parameters", {})
    if vector is None:
        params.pop("er_yields", None)
    else:
        params["er_yields"] = [float(v) for v in vector]
    return dataclasses.replace(cfg, raw=raw)


def nest_yields(cfg: AnalysisConfig, energy_kev: float) -> tuple[float, float]:
    """NEST's mean (electrons, photons) of a beta of ``energy_kev`` at the detector's drift field."""
    det = NestDetector(cfg["mdc"]["detector"], cfg["mdc"].get("nest_parameters"))
    field = det.params.drift_field_v_per_cm
    y = det.calc.GetYields(det._nestpy.interactions.beta, energy_kev, det.density, field, **det._yield_kwargs)
    return float(y.ElectronYield), float(y.PhotonYield)


def with_line_factor(cfg: AnalysisConfig, energy_kev: float, factor: float) -> AnalysisConfig:
    """``cfg`` whose ER yield vector gives ``factor`` x its charge yield at ``energy_kev``, total quanta kept.

    Raises:
        AssertionError: nestpy does not give that (checked: electrons x factor to 1e-9, quanta to 1e-12).
    """
    ne, nph = nest_yields(cfg, energy_kev)
    q = factor * ne / energy_kev
    new = with_er_yields(cfg, [q, q, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0])
    ne1, nph1 = nest_yields(new, energy_kev)
    assert abs(ne1 / ne - factor) < 1e-9 and abs((ne1 + nph1) / (ne + nph) - 1.0) < 1e-12, (energy_kev, ne1 / ne)
    return new


def parse_case(text: str) -> tuple[bool, dict[tuple[str, float | None], float]]:
    """``"er_yields=nestpy;xe127=0.88;xe124@10.0=0.7"`` -> (True, {("xe127", None): 0.88, ("xe124", 10.0): 0.7})."""
    factors: dict[tuple[str, float | None], float] = {}
    nestpy_er = False
    for item in filter(None, (s.strip() for s in text.split(";"))):
        key, value = item.split("=")
        if key == "er_yields":
            if value != "nestpy":
                raise ValueError(f"er_yields={value}: only 'nestpy' (nestpy's default ER yields)")
            nestpy_er = True
            continue
        name, _, energy = key.partition("@")
        factors[(name, float(energy) if energy else None)] = float(value)
    return nestpy_er, factors


def line_rows(cfg: AnalysisConfig, energy_kev: float, factor: float, events: int) -> tuple[np.ndarray, np.ndarray]:
    """The response row (and its error) of one ER line with the charge yield x ``factor``."""
    sim_cfg = cfg if factor == 1.0 else with_line_factor(cfg, energy_kev, factor)
    lines = np.array([energy_kev])
    sim = simulate_er_lines(sim_cfg, line_energies_kev=lines, events_per_line=events, progress=False)
    resp = er_line_response(sim, cfg, lines)
    return np.asarray(resp.matrix[0], float), np.asarray(resp.matrix_err[0], float)


def case_templates(results: str, cfg: AnalysisConfig, templates, case: str, events: int) -> dict:
    """{component: (template, stat_err)} of the ER components ``case`` changes, normalised to their nominal totals.

    Components with a charge factor: their lines resimulated one by one (``events`` each).  With
    ``er_yields=nestpy`` every other ER ``nest`` component is rebuilt from the ER line grid of the response step
    resimulated with nestpy's default yields (same seed and events per line as the step).
    """
    nestpy_er, factors = parse_case(case)
    base = with_er_yields(cfg, None) if nestpy_er else cfg
    out = {}
    inputs = None
    if nestpy_er:
        lines = np.asarray(read_line_response(f"{results}/response/response_er.json").line_energies_kev)
        sim = simulate_er_lines(base, line_energies_kev=lines, events_per_line=2000, progress=False)
        exposure = read_exposure(f"{results}/selection/exposure.json")
        resp = er_line_response(sim, cfg, lines)
        inputs = BackgroundInputs(science=None, selected=None, exposure=exposure, response_er=resp)
    for name, comp in sorted(cfg["backgrounds"]["components"].items()):
        if comp.get("kind") != "ER" or comp.get("shape") != "nest":
            continue
        if any(n == name for n, _ in factors):
            lines = comp["spectrum"]["lines"]
            t, var = 0.0, 0.0
            for energy, intensity in zip(lines["energies_kev"], lines["intensities"]):
                f = factors.get((name, float(energy)), factors.get((name, None), 1.0))
                row, err = line_rows(base, float(energy), f, events)
                t, var = t + intensity * row, var + (intensity * err) ** 2
            t, e = np.asarray(t, float).ravel(), np.sqrt(np.asarray(var, float).ravel())
        elif inputs is not None:
            c = build_component(name, comp, inputs, cfg)
            t, e = np.asarray(c.template, float).ravel(), np.asarray(c.stat_err, float).ravel()
        else:
            continue
        nominal = np.asarray(templates.components[name].template, float).ravel()
        k = nominal.sum() / t.sum()
        out[name] = (t * k, e * k)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", required=True, help="a finished LZ analysis's results directory")
    ap.add_argument("--cases", nargs="+", required=True, help='e.g. "xe127=1;xe124=1" "xe127=0.88;xe124=0.88"')
    ap.add_argument("--masses", default="10,12,15,20,25,30,36,40,50,100,1000")
    ap.add_argument("--mode", default="asymptotic", choices=("asymptotic", "table", "toys", "none"))
    ap.add_argument("--events-per-line", type=int, default=20000, help="NEST events per EC line")
    ap.add_argument("-o", "--output", required=True)
    args = ap.parse_args()
    masses = tuple(float(m) for m in args.masses.split(","))
    cfg = load_config(f"{args.results}/config.resolved.yaml")
    templates = read_templates(f"{args.results}/backgrounds/templates.json")
    kit = load_kit(f"{args.results}/reinterpretation")
    signal = model_signal(kit, load_model(kit.file("signal_model.yaml")), masses_gev=masses)
    doc = {"mode": args.mode, "results": args.results, "masses_gev": list(masses), "cases": {}}
    for text in args.cases:
        new = case_templates(args.results, cfg, templates, text, args.events_per_line)
        ws = with_shift(kit.workspace, new)
        stored = {n: (np.asarray(templates.components[n].template, float), None) for n in new}
        nominal = mean_log10cs2(templates, stored)
        case = mean_log10cs2(templates, new)
        lik = FitModel(ws)
        best = lik.fit()
        entry = {
            "mean_log10cs2": {n: {"nominal": nominal[n], "case": case[n]} for n in new},
            "yields": {y["sample"]: [y["postfit_events"], y["postfit_error"]] for y in sample_yields(lik, best)},
        }
        if args.mode != "none":
            entry.update(case_limits(kit, signal, ws, args.mode))
        doc["cases"][text] = entry
        print(text, f"{entry.get('seconds', 0):.0f} s", flush=True)
    with open(args.output, "w") as f:
        json.dump(doc, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
