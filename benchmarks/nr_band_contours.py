"""Our LZ WS2022 WIMP signal against LZ's own WIMP-signal contours: band position, width and S1 scale (issue 15).

LZ drew 1 sigma and 2 sigma contours of a WIMP signal over the WS2022 data (digitised by diamx:
``../shared/reference/lz_ws2022/lz_ws2022_wimp_{1,2}sigma.csv``, S1c [phd] vs log10(S2c/phd), S1c 3.0-39.5 phd; the
mass is not stated with the files). This builds the pipeline's own SI signal for a few masses exactly as the signal
step does (the finished analysis's NR simulation and LZ's efficiency curve through
:func:`dmpreserve.response.nr_response`, folded by :func:`dmpreserve.signals.build_signal`), but on a fine binning
(0.5 phd x 0.01 dex), smooths it (Gaussian, 1.5 bins: ``er_band_contours.highest_density_region``) and draws its
highest-density regions holding 68.3% and 95.4% of the signal in the ROI (and 39.3% / 86.5%, the two-dimensional 1
and 2 sigma). For each it prints the region's S1c extent beside LZ's contour's and, at each S1c, the lower and upper
boundary minus LZ's contour branch [dex]. Which fractions and which mass reproduce LZ's contours tells how LZ drew
them; how closely they do tells how well our NR model (nestpy's NR yields through the LZ_WS2022 detector, the
standard halo, LZ's efficiency) reproduces LZ's signal model. (LZ's upstream cuts state no efficiency of their own,
so the pipeline's response equals ``nr_response`` without them.)

    PYTHONPATH=src python benchmarks/nr_band_contours.py --results results/lz_ws2022 [--masses 26,28,30,32,34]
"""

from __future__ import annotations

import argparse

import numpy as np
from er_band_contours import branches, highest_density_region, region_boundaries, with_binning

from dmpreserve.artifacts.exposure import read_exposure
from dmpreserve.artifacts.reduced import read_dataset
from dmpreserve.artifacts.response import read_efficiency_curve
from dmpreserve.config import AnalysisConfig, load_config
from dmpreserve.response import nr_response
from dmpreserve.signals import build_signal

REFERENCE = "../shared/reference/lz_ws2022"
#: Highest-density fractions: one-dimensional 1 and 2 sigma (68.3%, 95.4%), two-dimensional (39.3%, 86.5%).
FRACTIONS = ((0.6827, "1sigma"), (0.9545, "2sigma"), (0.3935, "1sigma"), (0.8647, "2sigma"))
S1C_PHD = (4, 6, 8, 10, 12, 15, 18, 22, 26, 30, 35)


def fine_config(cfg: AnalysisConfig, *, ds1_phd: float = 0.5, dlog10: float = 0.01) -> AnalysisConfig:
    """``cfg`` with its analysis binning replaced by a fine one over the same ROI."""
    b = cfg["analysis"]["binning"]
    lo, hi = b["cs1_phd"]["min"], b["cs1_phd"]["max"]
    lo2, hi2 = b["log10_cs2"]["min"], b["log10_cs2"]["max"]
    return with_binning(cfg, int(round((hi - lo) / ds1_phd)), int(round((hi2 - lo2) / dlog10)))


def signal_densities(results: str, masses_gev: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(cS1 edges, log10 cS2 edges, SI signal templates of shape (n_mass, n_cs1, n_log10cs2)) on the fine binning."""
    cfg = fine_config(load_config(f"{results}/config.resolved.yaml"))
    sim = read_dataset(f"{results}/mdc/sim_nr.parquet", kinds=("simulation_nr",))
    curve = read_efficiency_curve(f"{results}/inputs/efficiency_curve.csv")
    response = nr_response(sim, cfg, curve=curve)
    exposure = read_exposure(f"{results}/selection/exposure.json")
    sig = build_signal(config=cfg, response=response, exposure_t_yr=exposure.exposure_t_yr, masses_gev=masses_gev)
    b = cfg["analysis"]["binning"]
    e1 = np.linspace(b["cs1_phd"]["min"], b["cs1_phd"]["max"], b["cs1_phd"]["bins"] + 1)
    e2 = np.linspace(b["log10_cs2"]["min"], b["log10_cs2"]["max"], b["log10_cs2"]["bins"] + 1)
    return e1, e2, np.asarray(sig.templates).reshape(len(masses_gev), len(e1) - 1, len(e2) - 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", required=True, help="a finished LZ WS2022 analysis's results directory")
    ap.add_argument("--masses", default="26,28,30,32,34", help="WIMP masses [GeV], comma-separated")
    ap.add_argument("--reference", default=REFERENCE, help="folder with lz_ws2022_wimp_{1,2}sigma.csv")
    args = ap.parse_args()
    masses = tuple(float(m) for m in args.masses.split(","))
    e1, e2, dens = signal_densities(args.results, masses)
    c1, c2 = 0.5 * (e1[1:] + e1[:-1]), 0.5 * (e2[1:] + e2[:-1])
    contours = {k: np.loadtxt(f"{args.reference}/lz_ws2022_wimp_{k}.csv", delimiter=",") for k in ("1sigma", "2sigma")}
    for k, a in contours.items():
        print(f"LZ's WIMP {k} contour: S1c {a[:, 0].min():.2f}-{a[:, 0].max():.2f} phd")
    print("ours: highest-density region, S1c extent [phd]; at S1c = s: (lower, upper) boundary - LZ's branch [dex]")
    for m, d in zip(masses, dens):
        for frac, name in FRACTIONS:
            region = highest_density_region(d, frac)
            cols = np.nonzero(region.any(axis=1))[0]
            diffs = []
            for s in S1C_PHD:
                ours = region_boundaries(region, c1, c2, s)
                lz = branches(f"{args.reference}/lz_ws2022_wimp_{name}.csv", s)
                if ours and len(lz) >= 2:
                    diffs.append(f"{s}: ({ours[0] - lz[0]:+.3f}, {ours[1] - lz[-1]:+.3f})")
            print(
                f"{m:g} GeV, {100 * frac:.1f}% vs LZ {name}: S1c {e1[cols[0]]:.1f}-{e1[cols[-1] + 1]:.1f}; "
                + "; ".join(diffs)
            )


if __name__ == "__main__":
    main()
