"""Measure what a reduced charge yield of electron-capture lines does to a finished LZ analysis (issue 15).

Electron captures (127Xe L- and M-shell, 124Xe double captures) leave inner-shell vacancies whose x-ray and
Auger cascades recombine more than a beta of the same energy: less charge, more light, a population shifted from
the ER band towards the NR band (Temples et al., PRD 104 (2021) 112001, arXiv:2109.11487; LZ,
arXiv:2503.05679, measured in LZ at WS2022's 193 V/cm).  The pipeline simulates these lines as betas.

Each case scales the NEST ER charge yield of chosen lines by a factor f with the total quanta kept
(Ne -> f Ne, Nph -> Nph + (1 - f) Ne; exact through the ER yield vector: NEST's Qy is linear in its parameters
m1, m2 and m5, which are scaled by f), resimulates those lines with NEST through the analysis's detector, cuts and
binning, and replaces the component's template (normalised to its nominal total, the published expected count
in the ROI) in the kit's workspace.  Then the background-only fit and the limits with ``reinterpret``'s engine
(mode asymptotic, table or toys), as :mod:`er_band_nuisance` does for the ER band position.

A case is a ``;``-separated list of ``COMPONENT=F`` (every line of the component) or ``COMPONENT@KEV=F`` (one
line).  E.g. diamx's WS2022 configuration (``../shared/reference/lz_ws2022/lz_ws2022_wimp_config.json``:
``l_quenching_factor`` 0.88 for 127Xe, ``ll_``/``lm_quenching_factor`` 0.88 for 124Xe) is
``xe127=0.88;xe124=0.88``.

    PYTHONPATH=src python benchmarks/ec_charge_yield.py --results results/lz_ws2022 --mode toys \
        --cases "xe127=1;xe124=1" "xe127=0.88;xe124=0.88" --masses 20,26.7,30,36.3,50,100 -o /tmp/ec.json
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import time

import numpy as np
from er_band_nuisance import with_shift

from dmpreserve.artifacts.templates import read_templates
from dmpreserve.config import AnalysisConfig, load_config
from dmpreserve.detector import NestDetector
from dmpreserve.physics.signal_models import load_model
from dmpreserve.reinterpret.engine import model_signal, reinterpret
from dmpreserve.reinterpret.kit import load_kit
from dmpreserve.response import er_line_response, simulate_er_lines
from dmpreserve.stats.fit import FitModel
from dmpreserve.stats.yields import sample_yields

#: Entries of NEST's ERYieldsParam that the charge yield Qy is linear in (m1, m2, m5; NEST v2 beta model).
QY_LINEAR = (0, 1, 4)


def with_charge_factor(cfg: AnalysisConfig, factor: float) -> AnalysisConfig:
    """``cfg`` whose NEST ER yield vector gives ``factor`` x the charge yield at every energy, total quanta kept.

    Raises:
        ValueError: the configuration has no explicit ``mdc.nest_parameters.er_yields`` (nestpy's default vector
            holds field-dependent sentinels that cannot be scaled).
    """
    raw = copy.deepcopy(cfg.raw)
    params = (raw["mdc"].get("nest_parameters") or {}).get("er_yields")
    if params is None:
        raise ValueError("needs mdc.nest_parameters.er_yields (an explicit ER yield vector)")
    if any(params[i] < 0 for i in QY_LINEAR):
        raise ValueError("er_yields: m1, m2 and m5 must be explicit (non-negative) to be scaled")
    for i in QY_LINEAR:
        params[i] = float(params[i]) * factor
    return dataclasses.replace(cfg, raw=raw)


def parse_case(text: str) -> dict[tuple[str, float | None], float]:
    """``"xe127=0.88;xe124@10.0=0.7"`` -> {("xe127", None): 0.88, ("xe124", 10.0): 0.7}."""
    out: dict[tuple[str, float | None], float] = {}
    for item in filter(None, (s.strip() for s in text.split(";"))):
        key, value = item.split("=")
        name, _, energy = key.partition("@")
        out[(name, float(energy) if energy else None)] = float(value)
    return out


def check_factor(cfg: AnalysisConfig, energy_kev: float, factor: float) -> None:
    """Assert that the scaled vector gives ``factor`` x NEST's mean electrons at ``energy_kev``, quanta kept."""
    means = []
    for c in (cfg, with_charge_factor(cfg, factor)):
        det = NestDetector(c["mdc"]["detector"], c["mdc"].get("nest_parameters"))
        field = det.params.drift_field_v_per_cm
        y = det.calc.GetYields(det._nestpy.interactions.beta, energy_kev, det.density, field, **det._yield_kwargs)
        means.append((y.ElectronYield, y.ElectronYield + y.PhotonYield))
    (ne0, nq0), (ne1, nq1) = means
    assert abs(ne1 / ne0 - factor) < 1e-9 and abs(nq1 / nq0 - 1.0) < 1e-12, (energy_kev, ne1 / ne0, nq1 / nq0)


def line_rows(cfg: AnalysisConfig, energy_kev: float, factor: float, events: int) -> tuple[np.ndarray, np.ndarray]:
    """The response row (and its error) of one ER line with the charge yield x ``factor``."""
    sim_cfg = cfg
    if factor != 1.0:
        check_factor(cfg, energy_kev, factor)
        sim_cfg = with_charge_factor(cfg, factor)
    lines = np.array([energy_kev])
    sim = simulate_er_lines(sim_cfg, line_energies_kev=lines, events_per_line=events, progress=False)
    resp = er_line_response(sim, cfg, lines)
    return np.asarray(resp.matrix[0], float), np.asarray(resp.matrix_err[0], float)


def case_templates(cfg: AnalysisConfig, templates, case: dict, events: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{component: (template, stat_err)} of the components ``case`` names, normalised to their nominal totals."""
    out = {}
    components = cfg["backgrounds"]["components"]
    for name in sorted({n for n, _ in case}):
        lines = components[name]["spectrum"]["lines"]
        t, var = 0.0, 0.0
        for energy, intensity in zip(lines["energies_kev"], lines["intensities"]):
            f = case.get((name, float(energy)), case.get((name, None), 1.0))
            row, err = line_rows(cfg, float(energy), f, events)
            t, var = t + intensity * row, var + (intensity * err) ** 2
        nominal = np.asarray(templates.components[name].template, float).ravel()
        t = np.asarray(t, float).ravel()
        k = nominal.sum() / t.sum()
        out[name] = (t * k, np.sqrt(np.asarray(var, float).ravel()) * k)
    return out


def mean_log10cs2(templates, template: np.ndarray) -> float:
    """Mean log10 cS2 of a flattened template (bin centres)."""
    edges = np.asarray(templates.log10_cs2_edges)
    n1, n2 = templates.shape
    return float((template.reshape(n1, n2).sum(0) * 0.5 * (edges[:-1] + edges[1:])).sum() / template.sum())


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
        new = case_templates(cfg, templates, parse_case(text), args.events_per_line)
        ws = with_shift(kit.workspace, new)
        lik = FitModel(ws)
        best = lik.fit()
        entry = {
            "mean_log10cs2": {
                n: {
                    "nominal": mean_log10cs2(templates, np.asarray(templates.components[n].template, float).ravel()),
                    "case": mean_log10cs2(templates, t),
                }
                for n, (t, _) in new.items()
            },
            "yields": {y["sample"]: [y["postfit_events"], y["postfit_error"]] for y in sample_yields(lik, best)},
        }
        if args.mode != "none":
            t0 = time.perf_counter()
            res = reinterpret(
                dataclasses.replace(kit, workspace=ws),
                signal,
                strength_unit="cm2",
                source={"model": "si"},
                progress=False,
                mode=args.mode,
            )
            entry["seconds"] = time.perf_counter() - t0
            entry["limits"] = [lim.row() | {"mu_hat": lim.mu_hat} for lim in res.limits]
        doc["cases"][text] = entry
        print(text, f"{entry.get('seconds', 0):.0f} s", flush=True)
    with open(args.output, "w") as f:
        json.dump(doc, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
