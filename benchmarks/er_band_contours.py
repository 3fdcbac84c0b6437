"""Our LZ WS2022 ER background band against LZ's own background-model contours, per S1c slice (issue 15).

LZ drew 1 sigma and 2 sigma contours of its background model over the WS2022 data (digitised by diamx:
``../shared/reference/lz_ws2022/lz_ws2022_bkg_{1,2}sigma.csv``, S1c [phd] vs log10(S2c/phd); closed curves whose
lower and upper branches bound the band at each S1c).  This resimulates the ER line grid of the response step
(same seed, 2000 NEST events per line) with the analysis's ER yields or nestpy's defaults, folds every ER ``nest``
component with its published expected count (37Ar at its nominal 50 events) on a fine binning (1 phd x 0.005 dex)
and prints, at each S1c (+-1.5 phd), the 2.3, 15.9, 50, 84.1 and 97.7% quantiles of log10 cS2 beside LZ's
2 sigma low, 1 sigma low, 1 sigma midpoint, 1 sigma high and 2 sigma high.  The comparison of band centres does
not depend on how LZ defined its contours; the widths are compared as if they were per-slice +-1, +-2 sigma.
LZ's contours are in fact highest-density regions holding 68.3% and 95.4% of the model (its WIMP contours are
reproduced that way, ``benchmarks/nr_band_contours.py``), so the script then draws ours the same way (smoothed,
Gaussian 1.5 bins) and prints, at each S1c, its lower and upper boundary minus LZ's branch: the like-for-like
comparison of the band's width and lower tail.

    PYTHONPATH=src python benchmarks/er_band_contours.py --results results/lz_ws2022 [--er-yields nestpy]
"""

from __future__ import annotations

import argparse
import copy
import dataclasses

import numpy as np
from ec_charge_yield import with_er_yields
from scipy.ndimage import gaussian_filter

from dmpreserve.artifacts.exposure import read_exposure
from dmpreserve.artifacts.response import read_line_response
from dmpreserve.backgrounds.model import BackgroundInputs, build_component
from dmpreserve.config import load_config
from dmpreserve.response import er_line_response, simulate_er_lines

REFERENCE = "../shared/reference/lz_ws2022"
QUANTILES = (0.02275, 0.15866, 0.5, 0.84134, 0.97725)
S1C_PHD = (5, 8, 10, 15, 20, 25, 30, 35, 40, 50, 60, 70)
#: Highest-density fractions of LZ's 1 and 2 sigma contours (one-dimensional convention).
HPD_FRACTIONS = ((0.6827, "1sigma"), (0.9545, "2sigma"))
SMOOTH_BINS = 1.5


def branches(path: str, s1c: float) -> list[float]:
    """log10 S2c where the closed contour in ``path`` crosses S1c = ``s1c`` (sorted)."""
    a = np.loadtxt(path, delimiter=",")
    ys = []
    for (x0, y0), (x1, y1) in zip(a[:-1], a[1:]):
        if (x0 - s1c) * (x1 - s1c) <= 0 and x0 != x1:
            ys.append(y0 + (s1c - x0) * (y1 - y0) / (x1 - x0))
    return sorted(ys)


def highest_density_region(density: np.ndarray, fraction: float) -> np.ndarray:
    """Boolean mask of the smallest set of bins of ``density`` (smoothed) holding ``fraction`` of its total."""
    h = gaussian_filter(density, SMOOTH_BINS)
    v = np.sort(h.ravel())[::-1]
    threshold = v[np.searchsorted(np.cumsum(v) / v.sum(), fraction)]
    return h >= threshold


def region_boundaries(region: np.ndarray, c1: np.ndarray, c2: np.ndarray, s1c: float) -> tuple[float, float] | None:
    """Lowest and highest log10 cS2 bin centre of ``region`` in the S1c column containing ``s1c``."""
    ys = c2[region[min(np.searchsorted(c1, s1c), len(c1) - 1)]]
    return (float(ys[0]), float(ys[-1])) if len(ys) else None


def with_binning(cfg, n_cs1: int, n_log10cs2: int):
    """``cfg`` (an AnalysisConfig) with its analysis binning replaced by ``n_cs1`` x ``n_log10cs2`` bins over the
    same ROI."""
    b = cfg["analysis"]["binning"]
    raw = copy.deepcopy(cfg.raw)
    raw["analysis"]["binning"] = {
        "cs1_phd": {**b["cs1_phd"], "bins": n_cs1},
        "log10_cs2": {**b["log10_cs2"], "bins": n_log10cs2},
    }
    return dataclasses.replace(cfg, raw=raw)


def er_band(results: str, nestpy_er: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(cS1 edges, log10 cS2 edges, total ER background [events] on them) of the finished analysis."""
    cfg = load_config(f"{results}/config.resolved.yaml")
    sim_cfg = with_er_yields(cfg, None) if nestpy_er else cfg
    b = cfg["analysis"]["binning"]
    lo, hi = b["cs1_phd"]["min"], b["cs1_phd"]["max"]
    lo2, hi2 = b["log10_cs2"]["min"], b["log10_cs2"]["max"]
    n1, n2 = int(round(hi - lo)), int(round((hi2 - lo2) / 0.005))
    fine = with_binning(cfg, n1, n2)
    lines = np.asarray(read_line_response(f"{results}/response/response_er.json").line_energies_kev)
    sim = simulate_er_lines(sim_cfg, line_energies_kev=lines, events_per_line=2000, progress=False)
    exposure = read_exposure(f"{results}/selection/exposure.json")
    inputs = BackgroundInputs(
        science=None, selected=None, exposure=exposure, response_er=er_line_response(sim, fine, lines)
    )
    total = np.zeros((n1, n2))
    for name, comp in sorted(cfg["backgrounds"]["components"].items()):
        if comp.get("kind") != "ER" or comp.get("shape") != "nest":
            continue
        t = np.asarray(build_component(name, comp, inputs, fine).template, float).reshape(n1, n2)
        total += t / t.sum() * float(comp["normalisation"]["expected_events"])
    return np.linspace(lo, hi, n1 + 1), np.linspace(lo2, hi2, n2 + 1), total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", required=True, help="a finished LZ WS2022 analysis's results directory")
    ap.add_argument("--er-yields", choices=("config", "nestpy"), default="config")
    ap.add_argument("--reference", default=REFERENCE, help="folder with lz_ws2022_bkg_{1,2}sigma.csv")
    args = ap.parse_args()
    e1, e2, total = er_band(args.results, args.er_yields == "nestpy")
    c1 = 0.5 * (e1[:-1] + e1[1:])
    print("S1c | LZ: 2s low, 1s low, 1s mid, 1s high, 2s high | ours: 2.3, 15.9, 50, 84.1, 97.7% | ours mid - LZ mid")
    for s in S1C_PHD:
        col = total[np.abs(c1 - s) < 1.5].sum(0)
        cdf = np.cumsum(col) / col.sum()
        ours = [float(np.interp(q, cdf, e2[1:])) for q in QUANTILES]
        one = branches(f"{args.reference}/lz_ws2022_bkg_1sigma.csv", s)
        two = branches(f"{args.reference}/lz_ws2022_bkg_2sigma.csv", s)
        lz = [two[0], one[0], 0.5 * (one[0] + one[-1]), one[-1], two[-1]]
        print(
            f"{s:3d} | "
            + " ".join(f"{x:.3f}" for x in lz)
            + " | "
            + " ".join(f"{x:.3f}" for x in ours)
            + f" | {ours[2] - lz[2]:+.3f}"
        )
    c2 = 0.5 * (e2[:-1] + e2[1:])
    print("highest-density regions of ours: S1c extent; at S1c = s: (lower, upper) boundary - LZ's branch [dex]")
    for frac, name in HPD_FRACTIONS:
        region = highest_density_region(total, frac)
        cols = np.nonzero(region.any(axis=1))[0]
        diffs = []
        for s in S1C_PHD:
            ours, lz = region_boundaries(region, c1, c2, s), branches(f"{args.reference}/lz_ws2022_bkg_{name}.csv", s)
            if ours and len(lz) >= 2:
                diffs.append(f"{s}: ({ours[0] - lz[0]:+.3f}, {ours[1] - lz[-1]:+.3f})")
        print(f"{100 * frac:.1f}% vs LZ {name}: S1c {e1[cols[0]]:.0f}-{e1[cols[-1] + 1]:.0f}; " + "; ".join(diffs))


if __name__ == "__main__":
    main()
