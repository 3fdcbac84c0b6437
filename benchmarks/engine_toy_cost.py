"""Cost of one batched toy fit (free + conditional t~mu fit of 1000 toys) of the fast engine.

A default-size synthetic workspace (440 bins, 5 backgrounds with normsys, a falling signal), without or
with a staterror on every background (``stat``).  Not a ``bench_*.py`` (``make bench`` does not run it):

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python benchmarks/engine_toy_cost.py [stat]
"""

import sys
import time

import numpy as np

from dmpreserve.stats.model import build_model
from dmpreserve.stats.teststat import fit_datasets, tmu_tilde
from dmpreserve.stats.toys import background_theta, generate


def workspace(staterror: bool, seed=0, bins=440, samples=5):
    rng = np.random.default_rng(seed)
    out = []
    for s in range(samples):
        data = rng.gamma(0.5, 1.0, bins) * (50.0 * (s + 1) / bins)
        mods = [{"name": f"norm_b{s}", "type": "normsys", "data": {"hi": 1.2, "lo": 1 / 1.2}}]
        if staterror:
            mods.append({"name": "stat", "type": "staterror", "data": (0.1 * data + 0.02 * data.mean()).tolist()})
        out.append({"name": f"b{s}", "data": data.tolist(), "modifiers": mods})
    total = np.sum([o["data"] for o in out], axis=0)
    obs = rng.poisson(total).astype(float)
    ws = {
        "channels": [{"name": "ch", "samples": out}],
        "observations": [{"name": "ch", "data": obs.tolist()}],
        "measurements": [
            {"name": "m", "config": {"poi": "mu", "parameters": [{"name": "mu", "bounds": [[0, 100]], "inits": [1]}]}}
        ],
        "version": "1.0.0",
    }
    sig = np.exp(-np.arange(bins) / 60.0)
    sig *= 5 / sig.sum()
    patch = {
        "metadata": {"name": "p", "values": [50.0], "reference_cross_section_cm2": 1e-46},
        "patch": [
            {
                "op": "add",
                "path": "/channels/0/samples/-",
                "value": {
                    "name": "signal",
                    "data": sig.tolist(),
                    "modifiers": [{"name": "mu", "type": "normfactor", "data": None}],
                },
            }
        ],
    }
    return ws, patch


if __name__ == "__main__":
    stat = len(sys.argv) > 1 and sys.argv[1] == "stat"
    n = 1000
    ws, patch = workspace(stat)
    model = build_model(ws, patch)
    theta0 = background_theta(model)
    theta = theta0.copy()
    theta[0] = 1.0
    data, aux = generate(model, theta, n, np.random.default_rng(1))
    init = np.repeat(theta[None, : model.n_params], n, axis=0)
    t0 = time.perf_counter()
    sets = fit_datasets(model, data, aux, init=init)
    t1 = time.perf_counter()
    t, cond = tmu_tilde(model, sets, np.full(n, 1.0))
    t2 = time.perf_counter()
    print(
        f"staterror={stat} n={n}: free fits {t1 - t0:.2f} s, conditional fits {t2 - t1:.2f} s, total {t2 - t0:.2f} s "
        f"({1e3 * (t2 - t0) / n:.2f} ms/toy); converged {sets.free.converged.mean():.3f} "
        f"{cond.converged.mean():.3f}; mean t {t.mean():.3f}"
    )
