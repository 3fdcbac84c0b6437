"""Threshold table vs per-mass toys on a finished run: pull (c_mass - c_table) / error at several masses and s.

PYTHONPATH=src python benchmarks/check_threshold_table.py RESULTS_DIR [--toys 1000]
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from dmpreserve.artifacts.thresholds import read_threshold_table
from dmpreserve.stats.model import build_model
from dmpreserve.stats.thresholds import shape_stats
from dmpreserve.stats.toys import background_theta, quantile_with_error, toy_tmu


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("--toys", type=int, default=1000)
    ap.add_argument("--masses", default="6,28.1,96.9,1149,10000")
    ap.add_argument("--signal", default="1.3,2.2,3.5")
    args = ap.parse_args()
    ws = json.load(open(f"{args.results}/likelihood/BkgOnly.json"))
    ps = json.load(open(f"{args.results}/likelihood/patchset.json"))
    table = read_threshold_table(f"{args.results}/toys/threshold_table.json")
    masses = np.array([p["metadata"]["values"][0] for p in ps["patches"]])
    for m in (float(x) for x in args.masses.split(",")):
        patch = ps["patches"][int(np.argmin(np.abs(np.log(masses / m))))]
        model = build_model(ws, patch)
        theta0 = background_theta(model)
        total, b_eff = shape_stats(model, theta0)
        for s in (float(x) for x in args.signal.split(",")):
            ct, et = (float(v[0]) for v in table.critical_value([s], b_eff))
            th = theta0.copy()
            th[0] = s / total
            rng = np.random.default_rng([int(m * 10), int(s * 100)])
            c, e = quantile_with_error(toy_tmu(model, th, s / total, args.toys, rng), table.cl)
            pull = (c - ct) / np.hypot(e, et)
            print(
                f"m={patch['metadata']['values'][0]:8.4g} b_eff={b_eff:.3f} s={s:4.2f}: "
                f"per-mass {c:.3f}+-{e:.3f} table {ct:.3f}+-{et:.3f} pull {pull:+.2f}"
            )


if __name__ == "__main__":
    main()
