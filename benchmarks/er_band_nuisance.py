"""Measure the effect of the ER band position on a finished LZ analysis (issue 15), without rerunning it.

Resimulates the ER lines exactly as the ``response`` step does (same seed: the nominal response is checked
against ``response/response_er.json``), shifts every event's log10(cS2) by s dex before the cuts and the binning,
folds each ER component's spectrum through the shifted response and normalises it to the nominal total (pure
shape).  For each shift S the kit's workspace with its ER samples replaced by the shifted templates (data,
Gaussian-rate histosys and staterror rebuilt on them: a fixed band position) gives the background-only fit
(counts per component) and the limits at the given masses with ``reinterpret``'s engine (mode asymptotic, table
or toys).  ``er_band_profile.py`` profiles S as a nuisance parameter.  The fits' -2 ln L printed here is
pyhf's, with the normalisations of the staterror constraints, which change with the shifted templates: it does
not compare across shifts (er_band_profile.py compares the fast engine's NLL, without them).

A pyhf ``histosys`` with the +-delta templates as hi/lo (``--histosys DELTA``, kept for the record) is not a
usable model of this shift: its additive code4p interpolation makes bins at the band's edges negative within
|alpha| < 1 (the staterror gammas are then pushed to their bounds and the fit is meaningless).

    PYTHONPATH=src python benchmarks/er_band_nuisance.py --results results/lz_ws2022 --mode table \
        --shifts -0.035,0,0.035 -o /tmp/erband/table.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

import numpy as np

from dmpreserve.artifacts.exposure import read_exposure
from dmpreserve.artifacts.response import read_line_response
from dmpreserve.artifacts.templates import read_templates
from dmpreserve.backgrounds.model import BackgroundInputs, build_component
from dmpreserve.config import load_config
from dmpreserve.physics.signal_models import load_model
from dmpreserve.reinterpret.engine import model_signal, reinterpret
from dmpreserve.reinterpret.kit import load_kit
from dmpreserve.response import er_line_response, simulate_er_lines
from dmpreserve.stats.fit import FitModel
from dmpreserve.stats.yields import sample_yields


def shifted_templates(results: str, shifts: list[float], events_per_line: int = 2000):
    """{shift: {component: (template, stat_err)}} flattened [events] of the ER ``nest`` components, each shifted
    template normalised to the nominal total; and the analysis's templates."""
    cfg = load_config(f"{results}/config.resolved.yaml")
    stored = read_line_response(f"{results}/response/response_er.json")
    lines = np.asarray(stored.line_energies_kev)
    t0 = time.perf_counter()
    sim = simulate_er_lines(cfg, line_energies_kev=lines, events_per_line=events_per_line, progress=False)
    print(f"ER lines resimulated in {time.perf_counter() - t0:.1f} s")
    same = events_per_line == 2000  # the response step's default: the stored response is reproduced exactly
    if same:
        assert np.array_equal(er_line_response(sim, cfg, lines).matrix, stored.matrix), "ER response not reproduced"
    templates = read_templates(f"{results}/backgrounds/templates.json")
    exposure = read_exposure(f"{results}/selection/exposure.json")
    out: dict[float, dict] = {s: {} for s in shifts}
    for s in shifts:
        resp = er_line_response(sim, cfg, lines, log10_cs2_shift=s)
        inputs = BackgroundInputs(science=None, selected=None, exposure=exposure, response_er=resp)
        for name, comp in sorted(cfg["backgrounds"]["components"].items()):
            if comp.get("kind") != "ER" or comp.get("shape") != "nest":
                continue
            c = build_component(name, comp, inputs, cfg)
            nominal = np.asarray(templates.components[name].template, float).ravel()
            t, e = np.asarray(c.template, float).ravel(), np.asarray(c.stat_err, float).ravel()
            if s == 0 and same:
                assert np.allclose(t, nominal, rtol=1e-12, atol=1e-15), name
            f = nominal.sum() / t.sum()
            out[s][name] = (t * f, e * f)
    return out, templates


def with_shift(workspace: dict, shifted: dict) -> dict:
    """A copy of ``workspace`` whose ER samples are ``shifted`` ({component: (template, stat_err)})."""
    ws = json.loads(json.dumps(workspace))
    for sample in ws["channels"][0]["samples"]:
        if sample["name"] not in shifted:
            continue
        nominal = np.asarray(sample["data"])
        new, err = shifted[sample["name"]]
        sample["data"] = new.tolist()
        for mod in sample["modifiers"]:
            if mod["type"] == "histosys":  # the Gaussian rate constraint: nominal x (1 +- r)
                rel = np.sum(mod["data"]["hi_data"]) / nominal.sum() - 1.0
                mod["data"] = {"hi_data": (new * (1 + rel)).tolist(), "lo_data": (new * (1 - rel)).tolist()}
            elif mod["type"] == "staterror":
                mod["data"] = err.tolist()
    return ws


def with_er_band(workspace: dict, hi: dict, lo: dict) -> dict:
    """A copy of ``workspace`` with the histosys ``er_band`` (hi/lo templates) on every ER sample."""
    ws = json.loads(json.dumps(workspace))
    for sample in ws["channels"][0]["samples"]:
        if sample["name"] in hi:
            data = {"hi_data": hi[sample["name"]][0].tolist(), "lo_data": lo[sample["name"]][0].tolist()}
            sample["modifiers"].append({"name": "er_band", "type": "histosys", "data": data})
    return ws


def case_limits(kit, signal, workspace: dict, mode: str) -> dict:
    """{"seconds", "limits"} of ``reinterpret``'s engine on ``kit`` with its workspace replaced by ``workspace``."""
    t0 = time.perf_counter()
    res = reinterpret(
        dataclasses.replace(kit, workspace=workspace),
        signal,
        strength_unit="cm2",
        source={"model": "si"},
        progress=False,
        mode=mode,
    )
    return {
        "seconds": time.perf_counter() - t0,
        "limits": [lim.row() | {"mu_hat": lim.mu_hat} for lim in res.limits],
    }


def mean_log10cs2(templates, shifted) -> dict:
    """{component: mean log10 cS2 of the template (bin centres)}."""
    edges = np.asarray(templates.log10_cs2_edges)
    centres = 0.5 * (edges[:-1] + edges[1:])
    n1, n2 = templates.shape
    return {n: float((t.reshape(n1, n2).sum(0) * centres).sum() / t.sum()) for n, (t, _) in shifted.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", required=True, help="a finished LZ analysis's results directory")
    ap.add_argument("--shifts", default="0", help="fixed ER band shifts [dex], comma-separated")
    ap.add_argument("--histosys", type=float, default=None, metavar="DELTA", help="also the er_band histosys")
    ap.add_argument("--masses", default="10,12,15,20,25,30,36,40,50,100,1000")
    ap.add_argument("--mode", default="asymptotic", choices=("asymptotic", "table", "toys", "none"))
    ap.add_argument("--no-fit", action="store_true")
    ap.add_argument("--events-per-line", type=int, default=2000, help="NEST events per ER line (2000: the step's)")
    ap.add_argument("-o", "--output", required=True)
    args = ap.parse_args()
    masses = tuple(float(m) for m in args.masses.split(","))
    shifts = [float(s) for s in args.shifts.split(",")]
    needed = sorted(set(shifts) | ({0.0, args.histosys, -args.histosys} if args.histosys else set()))
    kit = load_kit(f"{args.results}/reinterpretation")
    shifted, templates = shifted_templates(args.results, needed, args.events_per_line)
    cases = {f"shift={s:g}": with_shift(kit.workspace, shifted[s]) for s in shifts}
    if args.histosys:
        d = args.histosys
        cases[f"histosys={d:g}"] = with_er_band(kit.workspace, shifted[d], shifted[-d])
    signal = model_signal(kit, load_model(kit.file("signal_model.yaml")), masses_gev=masses)
    doc = {"mode": args.mode, "results": args.results, "masses_gev": list(masses), "cases": {}}
    doc["mean_log10cs2"] = {f"{s:g}": mean_log10cs2(templates, shifted[s]) for s in needed}
    for key, ws in cases.items():
        entry = {}
        if not args.no_fit:
            lik = FitModel(ws)
            best = lik.fit()
            entry["fit"] = {
                "parameters": {n: [v, e] for n, v, e in zip(best.names, best.values, best.errors)},
                "yields": {y["sample"]: [y["postfit_events"], y["postfit_error"]] for y in sample_yields(lik, best)},
                "twice_nll": best.twice_nll,
                "valid": best.valid,
            }
        if args.mode != "none":
            entry.update(case_limits(kit, signal, ws, args.mode))
        doc["cases"][key] = entry
        print(key, entry.get("fit", {}).get("twice_nll"), f"{entry.get('seconds', 0):.0f} s", flush=True)
    with open(args.output, "w") as f:
        json.dump(doc, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
