"""The toy construction checked against a published band whose likelihood is known exactly: XENONnT's 2024 release.

The earlier XENONnT release (XENONnT/light_wimp_data_release, commit a09cd8f; PRL 134, 111802, arXiv:2409.17868;
SR0 + SR1, 3.51 t yr) ships the *complete* templates of its SI search -- ``ac``, ``er``, ``rg``, ``b8`` and the
signal ``wimp_si_<m>`` at 3, 4, 5, 6, 8, 10, 12 GeV, each on the 7 x 7 (t_ly, t_qy) grid -- the priors of its
alea model (``statistical_model_base.yaml``) and its published SI curve with the *unconstrained* limit beside the
power-constrained one (``limits/XENONnT_2024_SI.csv``).  The 2026 release has no signal templates (only
mono-energetic ones), so its band can only be compared through our signal convention; here nothing but the
statistics is ours.  This script builds that likelihood with the kit's engine (the 2026 importer's workspace,
the release's bilinear yield morphing), the per-model templates taking the place of the mono-energetic ones
(one-hot weights), and prints ours / published for the unconstrained limit and the band.

The observed events and the binning are the 2026 release's SR0/SR1 files: the same 37 events (checked against the
earlier release's ``real_data.pkl`` to 7e-6 in every observable, read once outside this project with a numpy-only
restricted unpickler; this script reads no pickle).

Measured 2026-12-02 (docs/reinterpretation.md, "Checked against the 2024 release"): asymptotic and, with
``--toys`` (``RELEASE_TOYS``, about 3 min per mass on one core), the toy limits and band.

    PYTHONPATH=src python benchmarks/check_earlier_release.py --earlier DIR [--signal-efficiency] [--toys]
        [--masses 4,6,8]

``DIR``: a checkout of https://github.com/XENONnT/light_wimp_data_release (the folder holding
``light_wimp_data_release/``).  Without it (or without ../shared/reference/xenonnt_2026_light_dm) the check is
skipped with the reason.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

from dmpreserve.reinterpret import release as rel
from dmpreserve.reinterpret import release_kit, xenonnt

REPO = Path(__file__).resolve().parents[1]
RELEASE_2026 = REPO.parent / "shared" / "reference" / "xenonnt_2026_light_dm"
MASSES_GEV = (3, 4, 5, 6, 8, 10, 12)
LIVETIMES_T_YR = {"sr0": 1.174398, "sr1": 2.342593}  # statistical_model_base.yaml livetime_sr0 / livetime_sr1
COLUMNS = (  # ours (limits in mu x reference), published column of XENONnT_2024_SI.csv
    ("observed (unconstrained)", "unconstrained_upper_limit_cm2"),
    ("-2σ", "sensitivity_m2sigma_cm2"),
    ("-1σ", "sensitivity_m1sigma_cm2"),
    ("median", "sensitivity_median_cm2"),
    ("+1σ", "sensitivity_p1sigma_cm2"),
    ("+2σ", "sensitivity_p2sigma_cm2"),
    ("PCL 0.16", "upper_limit_cm2"),  # the published headline: power-constrained at the -1 sigma band
)


def _grid(folder: Path, stem: str, edges, binning: Path) -> np.ndarray:
    out = np.zeros((len(rel.YIELD_GRID), len(rel.YIELD_GRID), int(np.prod([len(e) - 1 for e in edges]))))
    for i, a in enumerate(rel.YIELD_GRID):
        for j, b in enumerate(rel.YIELD_GRID):
            out[i, j] = rel.read_template(folder / f"{stem}_cevns_tly_{a:.1f}_tqy_{b:.1f}.h5", edges, binning)
    return out


def read_earlier(earlier: Path) -> rel.Release:
    """The 2024 likelihood as a :class:`~dmpreserve.reinterpret.release.Release`: slot k of ``mono`` is the SI
    template at ``MASSES_GEV[k]`` [events/(t yr) at 1e-45 cm^2], the last slot the 8B template [events/(t yr)].
    Binning and observed events are the 2026 release's SR0/SR1 (read and checked by ``read_release``)."""
    data = earlier / "light_wimp_data_release" / "data"
    runs = []
    for run in rel.read_release(RELEASE_2026, LIVETIMES_T_YR).runs:
        binning = RELEASE_2026 / "binning" / f"{run.name}.yaml"
        stem = f"template_XENONnT_{run.name}"
        flat = {c: rel.read_template(data / c / f"{stem}_{c}_cevns.h5", run.edges, binning) for c in ("ac", "er")}
        slots = [_grid(data / "wimp_si", f"{stem}_wimp_si_{m}", run.edges, binning) for m in MASSES_GEV]
        slots.append(_grid(data / "b8", f"{stem}_b8", run.edges, binning))
        rg = _grid(data / "rg", f"{stem}_rg", run.edges, binning)
        runs.append(dataclasses.replace(run, ac=flat["ac"], er=flat["er"], rg=rg, mono=np.stack(slots)))
    return rel.Release(str(earlier), tuple(runs), np.arange(len(MASSES_GEV) + 1, dtype=float))


def _one_hot(k: int) -> np.ndarray:
    w = np.zeros(len(MASSES_GEV) + 1)
    w[k] = 1.0
    return w


def published(earlier: Path) -> dict[float, dict[str, float]]:
    path = earlier / "light_wimp_data_release" / "limits" / "XENONnT_2024_SI.csv"
    with open(path, newline="") as fh:
        return {float(r["dm_mass_gev"]): {k: float(v) for k, v in r.items()} for r in csv.DictReader(fh)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--earlier", type=Path, help="checkout of XENONnT/light_wimp_data_release")
    parser.add_argument("--masses", default=",".join(map(str, MASSES_GEV)), help="SI masses [GeV], of 3,4,5,6,8,10,12")
    parser.add_argument(
        "--signal-efficiency",
        nargs="?",
        const=True,  # the 2024 model's width (xenonnt.efficiency_width)
        default=0.0,
        type=float,
        metavar="REL",
        help="shared signal-efficiency normsys of relative width REL (without REL: the 2024 model's 0.25)",
    )
    parser.add_argument("--toys", action="store_true", help="toy thresholds and band (RELEASE_TOYS)")
    args = parser.parse_args()
    if args.earlier is None:
        print("earlier release: skipped, no --earlier DIR (a checkout of XENONnT/light_wimp_data_release) given")
        return 0
    if not (args.earlier / "light_wimp_data_release" / "data").is_dir():
        print(f"earlier release: skipped, {args.earlier} holds no light_wimp_data_release/data")
        return 0
    if not RELEASE_2026.is_dir():
        print(f"earlier release: skipped, the 2026 release (binning, events) is not at {RELEASE_2026}")
        return 0
    release = read_earlier(args.earlier)
    b8 = _one_hot(len(MASSES_GEV))
    ws = xenonnt.build_workspace(release, signal_efficiency=args.signal_efficiency, b8_mono_weights=b8)
    mono = xenonnt.mono_document(release)
    grid_doc = xenonnt.grid_document(release, b8_mono_weights=b8)
    pub = published(args.earlier)
    events = {r.name: float(r.mono[-1, 3, 3].sum() * r.livetime_t_yr) for r in release.runs}
    print(
        f"2024 likelihood: 8B at nominal yields {events} events; "
        f"signal efficiency {xenonnt.efficiency_width(args.signal_efficiency):g}; "
        f"{'toys (RELEASE_TOYS)' if args.toys else 'asymptotic'}"
    )
    print("| mass [GeV] | " + " | ".join(c for c, _ in COLUMNS) + " |")
    print("|---" * (len(COLUMNS) + 1) + "|")
    within = []
    for m in (float(x) for x in args.masses.split(",")):
        k = MASSES_GEV.index(int(m))
        w = _one_hot(k)
        patch, scale, _ = xenonnt.signal_patch(
            mono, w, name=f"si_{m:g}", values=[m], signal_efficiency=args.signal_efficiency
        )
        t0 = time.perf_counter()
        lim = release_kit.patch_limit(
            ws,
            patch,
            reference=1e-45 * scale,
            toys=release_kit.RELEASE_TOYS if args.toys else None,
            mass_index=k,
            grids=xenonnt.release_grids(grid_doc, patch, w),
        )
        ours = [lim.mu_unconstrained, *lim.mu_expected, lim.mu_pcl]
        ratios = [1e-45 * scale * x / pub[m][col] for x, (_, col) in zip(ours, COLUMNS)]
        print(
            f"| {m:g} | " + " | ".join(f"{r:.3f}" for r in ratios) + f" |  ({time.perf_counter() - t0:.1f} s)",
            flush=True,
        )
        within.append([abs(r - 1.0) for r in ratios[:-1]])  # limit and band (the PCL column repeats them)
    dev = np.asarray(within)
    print(
        f"limit and band: {int((dev <= 0.15).sum())} of {dev.size} within 15%, {int((dev <= 0.10).sum())} within "
        f"10%, {int((dev <= 0.05).sum())} within 5% (unrounded ratios)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
