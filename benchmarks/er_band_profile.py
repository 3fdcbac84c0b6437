"""The ER band position as a nuisance parameter, profiled on a grid of fixed shifts (asymptotic, fast engine).

For each shift s of the ER templates' log10(cS2) (:mod:`er_band_nuisance`: resimulated ER lines, events shifted
before the cuts, pure shape) and each mass, the observed free fit and conditional fits on a mu grid give
NLL_s(mu); the profile over the band shift with a Gaussian prior of width delta is
P(mu) = min_s [NLL_s(mu) + (s / delta)^2 / 2], t~mu = 2 (P(mu) - min_{mu >= 0} P) and the observed asymptotic
unconstrained limit the largest mu with t~mu = chi2_1 quantile (2.706).  ``delta = inf`` profiles the shift
freely; a single shift 0 reproduces the pipeline's asymptotic unconstrained limit.

    PYTHONPATH=src python benchmarks/er_band_profile.py --results results/lz_ws2022 --events-per-line 20000 \
        --shifts 0,0.01,...,0.08 --delta 0.035 -o /tmp/erband/profile.json
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from er_band_nuisance import shifted_templates, with_shift
from scipy import stats

from dmpreserve.physics.signal_models import load_model
from dmpreserve.reinterpret.engine import model_signal
from dmpreserve.reinterpret.kit import load_kit
from dmpreserve.stats.model import build_model
from dmpreserve.stats.newton import minimize
from dmpreserve.stats.teststat import fit_datasets
from dmpreserve.stats.workspace import build_patchset


def nll_curves(ws: dict, patch: dict, mus: np.ndarray) -> tuple[float, float, np.ndarray]:
    """(free NLL, mu_hat, conditional NLL at each mu) of the observed data."""
    model = build_model(ws, patch)
    data, aux = model.observed[None], model.nominal_aux[None]
    sets = fit_datasets(model, data, aux)
    init = np.repeat(sets.free.theta, mus.size, axis=0)
    init[:, 0] = mus
    cond = minimize(model, data, aux, init, fix_poi=True)
    return float(sets.free.nll[0]), float(sets.mu_hat[0]), cond.nll


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", required=True)
    ap.add_argument("--shifts", required=True, help="grid of ER band shifts [dex]")
    ap.add_argument("--delta", default="0.035", help="prior widths [dex], comma-separated (inf: free)")
    ap.add_argument("--masses", default="10,12,15,20,25,30,36,40,50,100,1000")
    ap.add_argument("--events-per-line", type=int, default=2000, help="NEST events per ER line (2000: the step's)")
    ap.add_argument("-o", "--output", required=True)
    args = ap.parse_args()
    shifts = [float(s) for s in args.shifts.split(",")]
    deltas = [float(d) for d in args.delta.split(",")]
    masses = tuple(float(m) for m in args.masses.split(","))
    kit = load_kit(f"{args.results}/reinterpretation")
    shifted, _ = shifted_templates(args.results, sorted(set(shifts) | {0.0}), args.events_per_line)
    signal = model_signal(kit, load_model(kit.file("signal_model.yaml")), masses_gev=masses)
    ps = build_patchset(kit.workspace, signal, inspire_id="ins0000000")
    mus = np.concatenate([[0.0], np.geomspace(1e-3, 40.0, 300)])
    c = stats.chi2.ppf(0.9, 1)
    out = {"shifts": shifts, "masses_gev": list(masses), "events_per_line": args.events_per_line, "rows": []}
    table = {}  # (shift, mass index) -> (free nll, mu_hat, conditional nlls)
    for s in shifts:
        ws = with_shift(kit.workspace, shifted[s])
        for i, patch in enumerate(ps["patches"]):
            table[s, i] = nll_curves(ws, patch, mus)
        bkg = [table[s, i][2][0] for i in range(len(masses))]
        print(f"shift {s:+.4f}: NLL(mu=0) {bkg[0]:.3f}", flush=True)
    out["nll_mu0"] = {f"{s:g}": float(table[s, 0][2][0]) for s in shifts}
    ref = {i: table[0.0, i] for i in range(len(masses))} if 0.0 in shifts else None
    for delta in deltas:
        for i, mass in enumerate(masses):
            pen = {s: 0.5 * (s / delta) ** 2 if np.isfinite(delta) else 0.0 for s in shifts}
            prof = np.min([table[s, i][2] + pen[s] for s in shifts], axis=0)
            s_at = np.array(shifts)[np.argmin([table[s, i][2] + pen[s] for s in shifts], axis=0)]
            best = min(min(table[s, i][0] + pen[s] for s in shifts), prof.min())
            t = 2.0 * (prof - best)
            # the largest mu with t = c: the crossing after the last grid point below c
            below = np.flatnonzero(t <= c)
            j = below[-1]
            lim = float(np.interp(c, [t[j], t[j + 1]], [mus[j], mus[j + 1]])) if j + 1 < mus.size else float("nan")
            row = {
                "delta": delta,
                "mass_gev": mass,
                "mu_limit": lim,
                "limit_unconstrained_cm2": lim * signal.reference_cross_section_cm2[i],
                "shift_at_mu0": float(s_at[0]),
                "shift_at_limit": float(s_at[min(j + 1, mus.size - 1)]),
                "t_mu0": float(t[0]),
            }
            if ref is not None:
                t0 = 2.0 * (ref[i][2] - min(ref[i][0], ref[i][2].min()))
                b0 = np.flatnonzero(t0 <= c)[-1]
                row["limit_shift0_cm2"] = float(
                    np.interp(c, [t0[b0], t0[b0 + 1]], [mus[b0], mus[b0 + 1]]) * signal.reference_cross_section_cm2[i]
                )
            out["rows"].append(row)
    with open(args.output, "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
