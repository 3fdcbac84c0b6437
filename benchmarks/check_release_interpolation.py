"""Check of the XENONnT kit's yield nuisances: pyhf modifiers vs the release's own bilinear grid interpolation.

The kit approximates the release's 7 x 7 (t_ly, t_qy) grid by one normsys + one histosys per direction.  This
script computes the asymptotic SI limits (observed, Asimov median; two-sided t~mu, 90% CL) at the published
masses three ways and prints their ratios:

* ``exact``: the release's likelihood with bilinear interpolation of every grid component (blueice's
  ``GridInterpolator``), fitted with scipy (tests/helpers/release_exact.py; independent of pyhf's modifiers);
* ``kit``: the kit as imported (normsys factors = the grid's total-rate ratios at t = +-1, histosys = the
  shapes at +-1), with the fast engine;
* ``fitted``: the same workspace with each normsys fitted to the grid's total-rate ratios along the whole
  axis instead (least squares in ln over |t| = 1, 2, 3, per side): right at |t| = 2-3, 5-11% off at +-1.

Reads ../shared/reference/xenonnt_2026_light_dm.  About 1 min per mass on one core.

    PYTHONPATH=src:tests/helpers python benchmarks/check_release_interpolation.py [--masses 3,6,10]
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "helpers"))

from release_exact import asymptotic_limits, si_setup  # noqa: E402

from dmpreserve.reinterpret import xenonnt  # noqa: E402
from dmpreserve.reinterpret.release import read_release  # noqa: E402
from dmpreserve.reinterpret.release_kit import patch_limit  # noqa: E402

RELEASE = REPO.parent / "shared" / "reference" / "xenonnt_2026_light_dm"


def axis_totals(grid: np.ndarray) -> dict[str, np.ndarray]:
    """Totals along both yield axes of a (7, 7, n_bins) grid [events], ``{t_ly, t_qy}`` -> shape (7,)."""
    tot = grid.sum(axis=-1)
    return {"t_ly": tot[:, 3], "t_qy": tot[3, :]}


def fitted_factors(sample: dict, axes: dict[str, np.ndarray]) -> dict:
    """``sample`` with its t_ly/t_qy normsys fitted to the axis totals: ln hi = sum t ln r(t) / sum t^2."""
    out = copy.deepcopy(sample)
    t = np.array([1.0, 2.0, 3.0])
    for m in out["modifiers"]:
        if m["type"] == "normsys" and m["name"] in axes:
            r = axes[m["name"]] / axes[m["name"]][3]
            hi, lo = (float(np.exp(t @ np.log(side) / (t @ t))) for side in (r[4:], r[2::-1]))
            m["data"] = {"hi": hi, "lo": lo}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--masses", default=",".join(f"{m:g}" for m in xenonnt.PUBLISHED_SI_MASSES_GEV))
    args = ap.parse_args()
    release = read_release(RELEASE)
    ws = xenonnt.build_workspace(release)
    b8w = xenonnt.b8_weights(release)
    grids = {"rg": [r.rg * r.livetime_t_yr for r in release.runs], "b8": xenonnt.grid_templates(release, b8w)}
    ws_fit = copy.deepcopy(ws)
    for i, ch in enumerate(ws_fit["channels"]):
        ch["samples"] = [
            fitted_factors(s, axis_totals(grids[s["name"]][i])) if s["name"] in grids else s for s in ch["samples"]
        ]
    print("| mass [GeV] | observed: kit / exact | fitted / exact | median: kit / exact | fitted / exact |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for mass in (float(m) for m in args.masses.split(",")):
        setup = si_setup(release, mass)
        patch, w, reference = setup["patch"], setup["weights"], setup["reference"]
        sig = xenonnt.grid_templates(release, w)
        patch_fit = copy.deepcopy(patch)
        for op, g in zip(patch_fit["patch"], sig):
            op["value"] = fitted_factors(op["value"], axis_totals(g * np.sum(op["value"]["data"]) / g[3, 3].sum()))
        exact = asymptotic_limits(setup["exact"])
        kit = patch_limit(ws, patch, reference=reference)
        fitted = patch_limit(ws_fit, patch_fit, reference=reference)
        row = [
            kit.mu_unconstrained / exact["observed"],
            fitted.mu_unconstrained / exact["observed"],
            kit.mu_expected[2] / exact["median"],
            fitted.mu_expected[2] / exact["median"],
        ]
        print(f"| {mass:g} | " + " | ".join(f"{x:.3f}" for x in row) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
