"""Benchmark: fits of the XENONnT 2026 release's own likelihood (bilinear yield morphing), fast engine vs scipy.

Task: the free maximum-likelihood fit (mu >= 0, two yield parameters on the release's 7 x 7 grid, six rate
parameters) of N background-only toy datasets of the SI model at 6 GeV.  ours: one batched call of
:func:`dmpreserve.stats.newton.minimize` on the model with the release's grids
(:func:`dmpreserve.reinterpret.xenonnt.release_grids`).  baseline: the independent implementation of the same
likelihood in ``tests/helpers/release_exact.py`` (scipy ``RegularGridInterpolator`` + ``L-BFGS-B``), one fit per
dataset.  Also prints how far the two minima are apart (ours minus scipy's -ln L per toy: <= 0 is ours at
least as low) and the largest difference in mu_hat.  N = 40 (``--quick``: 8).  Needs
../shared/reference/xenonnt_2026_light_dm (otherwise says so and exits 0).

    .venv/bin/python benchmarks/bench_release_fits.py [--quick]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests" / "helpers"))
from _common import bench_args, interleave, print_ratio, write_results  # noqa: E402
from release_exact import si_setup  # noqa: E402

from dmpreserve.reinterpret import xenonnt  # noqa: E402
from dmpreserve.reinterpret.release import read_release  # noqa: E402
from dmpreserve.stats.model import build_model  # noqa: E402
from dmpreserve.stats.newton import minimize  # noqa: E402
from dmpreserve.stats.toys import background_theta, generate  # noqa: E402

RELEASE = HERE.parent.parent / "shared" / "reference" / "xenonnt_2026_light_dm"
MASS_GEV = 6.0


def main() -> int:
    args = bench_args(__doc__.splitlines()[0])
    if not RELEASE.is_dir():
        print(f"release_fits: skipped, the XENONnT 2026 release is not at {RELEASE}")
        return 0
    n = 8 if args.quick else 40
    release = read_release(RELEASE)
    setup = si_setup(release, MASS_GEV)
    exact = setup["exact"]
    grids = xenonnt.release_grids(xenonnt.grid_document(release), setup["patch"], setup["weights"])
    model = build_model(setup["workspace"], setup["patch"], grids=grids)
    data, aux = generate(model, background_theta(model), n, np.random.default_rng(20261130))
    # the same toys in the scipy model's layout: counts per run, auxiliary data in its parameter order
    names = model.param_names
    exact_names = ["mu", *xenonnt.YIELDS, *exact.rates]
    k = len(model.alpha_names)
    alpha_aux = {a: aux[:, i] for i, a in enumerate(model.alpha_names)}
    exact_aux = np.column_stack([alpha_aux[p] for p in exact_names[1:]])
    sizes = np.cumsum([len(o) for o in exact.observed])[:-1]
    runs = [np.split(row, sizes) for row in data]
    init = np.repeat(model.init[None], n, axis=0)

    def ours():
        return minimize(model, data, aux, init, fix_poi=False)

    def baseline():
        return [exact.fit(runs[i], exact_aux[i]) for i in range(n)]

    print(f"m = {MASS_GEV:g} GeV, {n} toy datasets, {len(names)} parameters, {k} constrained", flush=True)
    res = interleave({"ours": ours, "baseline": baseline}, repeat=1 if args.quick else 3)
    fit = res["ours"].result
    ref = res["baseline"].result
    d_nll = fit.nll - np.array([r[0] for r in ref])
    d_mu = np.abs(fit.theta[:, 0] - np.array([r[1][0] for r in ref]))
    print(
        f"minima: ours - scipy -ln L from {d_nll.min():.2e} to {d_nll.max():.2e}; |mu_hat difference| <= "
        f"{d_mu.max():.2e}; {int(fit.converged.sum())} of {n} converged",
        flush=True,
    )
    print_ratio(f"release_fits_{n}", res["ours"], res["baseline"])
    write_results(
        "release_fits",
        [
            {
                "mass_gev": MASS_GEV,
                "n_toys": n,
                **res["ours"].row("ours"),
                **res["baseline"].row("baseline"),
                "ratio": res["baseline"].median_s / res["ours"].median_s,
                "max_nll_ours_minus_scipy": float(d_nll.max()),
                "min_nll_ours_minus_scipy": float(d_nll.min()),
                "max_abs_mu_hat_difference": float(d_mu.max()),
            }
        ],
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
