"""Coverage of the toy-based Neyman upper limits on the XENONnT 2026 release (its own bilinear yield morphing).

``reinterpret --toys`` on a template-release kit takes each mass's Neyman thresholds c(mu) from fresh toys at
the mu it evaluates (400 per mu) and the sensitivity band from 1000 background-only toys whose limits use
c(mu) interpolated between six toy points (:class:`dmpreserve.stats.neyman.BandCritical`).  This check generates
``--toys`` pseudo-datasets at true signal strengths mu_true = f x (the toy median limit), for each f of
``--factors``, with the nuisances where the thresholds' toys have them (``RELEASE_TOYS.truth``), computes
each one's upper limit exactly as the band does, and prints the coverage P(limit >= mu_true) with its binomial
error.  A 90% CL construction must give at least 0.90 up to that error (more where t~mu is discrete); less
would mean the thresholds or their interpolation are too low, i.e. limits and band too strong.

Measured 2026-11-30, SI 8 GeV, 1000 toys per f, seed 7, ``RELEASE_TOYS`` (toys at the nominal model, the band's
thresholds at 24 mu values from 2000 toys each; the toy median then from 1000 background-only toys): coverage
0.947, 0.933, 0.949, 0.944 (+- 0.009) at f = 0.5, 1, 2, 4 (with 6 x 400 thresholds: 0.957, 0.933, 0.942, 0.953;
docs/reinterpretation.md).  About 6 min on one core.  Reads
../shared/reference/xenonnt_2026_light_dm.

    PYTHONPATH=src python benchmarks/check_release_coverage.py [--mass 8] [--toys 1000] [--factors 0.5,1,2,4]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "helpers"))
from release_exact import si_setup  # noqa: E402

from dmpreserve.reinterpret import xenonnt  # noqa: E402
from dmpreserve.reinterpret.release import read_release  # noqa: E402
from dmpreserve.reinterpret.release_kit import RELEASE_TOYS  # noqa: E402
from dmpreserve.stats.asymptotic import asymptotic_limits, observed_setup  # noqa: E402
from dmpreserve.stats.model import build_model  # noqa: E402
from dmpreserve.stats.neyman import BandCritical, ToyCritical, sensitivity  # noqa: E402
from dmpreserve.stats.teststat import fit_datasets, tmu_tilde  # noqa: E402
from dmpreserve.stats.toys import generate, upper_crossing  # noqa: E402

RELEASE = REPO.parent / "shared" / "reference" / "xenonnt_2026_light_dm"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mass", type=float, default=8.0, help="SI WIMP mass [GeV] (one of the release's 3-12)")
    parser.add_argument("--toys", type=int, default=1000, help="pseudo-datasets per true signal strength")
    parser.add_argument("--factors", default="0.5,1,2,4", help="mu_true / toy median limit, comma-separated")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if not RELEASE.is_dir():
        print(f"release coverage: skipped, the XENONnT 2026 release is not at {RELEASE}")
        return 0
    release = read_release(RELEASE)
    setup = si_setup(release, args.mass)  # the same workspace and SI patch as bench_release_fits and the tests
    grids = xenonnt.release_grids(xenonnt.grid_document(release), setup["patch"], setup["weights"])
    model = build_model(setup["workspace"], setup["patch"], grids=grids)
    theta0 = RELEASE_TOYS.theta(model)
    asym = asymptotic_limits(model, cl=0.9)
    critical = ToyCritical(model, theta0, RELEASE_TOYS, mass_index=0, cl=0.9)
    band = BandCritical(critical, asym, model.poi_bounds[1])
    t0 = time.time()
    sens = sensitivity(model, observed_setup(model), asym, band, theta0, RELEASE_TOYS, pcl_power=0.16)
    median = sens.expected[2]
    print(f"SI {args.mass:g} GeV: toy band (mu) {np.round(sens.expected, 4).tolist()}, median {median:.4g}", flush=True)
    rng = np.random.default_rng(args.seed)
    n = args.toys
    for f in (float(x) for x in args.factors.split(",")):
        mu_true = f * median
        truth = theta0.copy()
        truth[0] = mu_true
        data, aux = generate(model, truth, n, rng)
        sets = fit_datasets(model, data, aux, init=np.repeat(truth[None, : model.n_params], n, axis=0))
        top = min(model.poi_bounds[1], 3.0 * asym.neyman_expected[4] + 3.0 * mu_true)
        grid = np.concatenate([[0.0], np.geomspace(0.1 * asym.neyman_expected[0], top, 40)])
        t, _ = tmu_tilde(model, sets, np.tile(grid, n), which=np.repeat(np.arange(n), grid.size))
        limits = upper_crossing(model, sets, grid, t.reshape(n, grid.size), band)
        cover = float(np.mean(limits >= mu_true))
        print(
            f"mu_true = {f:g} x median = {mu_true:.4g}: coverage {cover:.3f} +- {np.sqrt(0.09 / n):.3f} "
            f"({time.time() - t0:.0f} s)",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
