"""Benchmark: asymptotic limit curve with expected bands, dmpreserve.stats versus pyhf, per mass.

Task: the 90% CL limit with the expected band for each of 50 WIMP masses on the default workspace
(default configuration's background-only workspace, 440 bins with a staterror gamma per bin; the signal grid
widened to 50 masses).  Interleaved in one process, mass by mass; the baseline runs on the middle mass of the grid
only (264 GeV; ``N_BASELINE_MASSES``), as it needs minutes per mass (measured 2026-11-30: 714 s, of which
19 s JAX compile; ours 0.24 s; limits equal to 1.6e-5):

* ours: ``dmpreserve.stats.limits.limit_for_patch`` (vectorized numpy model + batched Newton fits, Asimov
  root finding): CLs observed + 5 expected, Neyman t~mu observed + 5 expected, PCL, p0/z0;
* baseline: ``pyhf.infer.intervals.upper_limits.upper_limit(data, model, scan=None, level=0.1)`` as the issue
  asks, with pyhf 0.7.6's JAX backend (jax 0.10.2 from env/requirements-bench.txt: exact gradients by autodiff)
  and its default scipy optimizer (SLSQP).  NOTE pyhf 0.7.6 ignores ``level`` there (scikit-hep/pyhf#2563): it
  returns 95% CL limits, so they are compared with ours at cl = 0.95 (observed and the 5 expected).
  Three things were needed to run it, all stated in the printed line: (1) the workspace without its 112 bins
  that are empty in the data and every sample (``drop_empty_bins``: the same likelihood and free parameters;
  their 0 log 0 has a NaN JAX gradient); (2) hypotest's results as floats inside toms748_scan
  (scikit-hep/pyhf#2466: unhashable JAX POIs); (3) one OpenBLAS thread (SLSQP on 334 parameters was 10-70x
  slower with two on this 2-core machine).  The time includes JAX's compile time (a new model per mass), which
  is reported apart.

The numpy backend (finite-difference gradients over 446 parameters) is not measured any more: on 2026-11-30 it
did not finish one mass in 15 min.  With the JAX backend the gradients cost about 3 ms; pyhf's time goes to SLSQP
(100-235 iterations per fit, 2.5-6 s) times 4 fits per hypotest times one hypotest per root-finder step, for
6 roots.

Also: time per mass versus the number of analysis bins (100 .. 10,000; synthetic workspaces with
the same five background samples, normsys and histosys constraints, no staterror) for issue 7; the baseline
there (up to 1000 bins) is ``toms748_scan(level=0.1)`` with the same JAX backend.
Writes ``benchmarks/results/limits.csv``, ``limits_bins.csv`` and ``limits_bins.png``.

    .venv/bin/python benchmarks/bench_limits.py [--quick] [--workspace BkgOnly.json --patchset patchset.json]
"""

from __future__ import annotations

import contextlib
import copy
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyhf
import pyhf.infer.intervals.upper_limits as pyhf_upper_limits
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import bench_args, blas_threads, interleave, write_results  # noqa: E402

from dmpreserve.files import read_json  # noqa: E402
from dmpreserve.stats import reference  # noqa: E402
from dmpreserve.stats.limits import limit_for_patch, select_patches  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
#: Masses of the pyhf baseline, spread over the grid (the middle one when 1).
N_BASELINE_MASSES = 1
#: Names of the limits compared: observed, then expected at -2, -1, 0, +1, +2 sigma.
LIMIT_NAMES = ("obs", "exp_m2", "exp_m1", "exp_0", "exp_p1", "exp_p2")


def default_likelihood(workdir: Path, *, masses: int = 50) -> tuple[Path, Path]:
    """Build the default workspace and a ``masses``-mass patchset with the CLI steps (about a minute)."""
    doc = yaml.safe_load((REPO / "workflow" / "config" / "config.yaml").read_text(encoding="utf-8"))
    doc["signal"]["masses_gev"]["count"] = masses
    cfg = workdir / "config.yaml"
    cfg.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    m, r = workdir / "mdc", workdir / "results"
    exe = [sys.executable, "-m", "dmpreserve"]
    steps = [
        [
            "mdc",
            "--config",
            cfg,
            *sum(
                (
                    [f"--{k.replace('_', '-')}", m / f"{k}.parquet"]
                    for k in ("science", "truth", "calib_er", "calib_nr", "sim_nr", "isolated_s1", "isolated_s2")
                ),
                [],
            ),
        ],
        # the straight DAG: select-part (the science run as one part) -> select (gather: selected events,
        # exposure) -> mass-grid -> response -> backgrounds, signal
        [
            "select-part",
            "--config",
            cfg,
            "--science",
            m / "science.parquet",
            "--selected",
            r / "part-0.parquet",
            "--cutflow",
            r / "part-0_cutflow.json",
        ],
        [
            "select",
            "--config",
            cfg,
            "--parts",
            r / "part-0.parquet",
            "--part-cutflows",
            r / "part-0_cutflow.json",
            "--sim-nr",
            m / "sim_nr.parquet",
            "--selected",
            r / "selected.parquet",
            "--cutflow",
            r / "cutflow.csv",
            "--acceptance",
            r / "acceptance.csv",
            "--exposure",
            r / "exposure.json",
        ],
        ["mass-grid", "--config", cfg, "-o", r / "mass_grid.json"],
        [
            "response",
            "--config",
            cfg,
            "--sim-nr",
            m / "sim_nr.parquet",
            "--selected-sidecar",
            r / "selected.json",
            "--response-nr",
            r / "response.json",
            "--response-er",
            r / "response_er.json",
            "--no-progress",
        ],
        [
            "backgrounds",
            "--config",
            cfg,
            "--science",
            m / "science.parquet",
            "--selected",
            r / "selected.parquet",
            "--exposure",
            r / "exposure.json",
            "--calib-er",
            m / "calib_er.parquet",
            "--response-nr",
            r / "response.json",
            "--response-er",
            r / "response_er.json",
            "--isolated-s1",
            m / "isolated_s1.parquet",
            "--isolated-s2",
            m / "isolated_s2.parquet",
            "--templates",
            r / "templates.json",
            "--summary",
            r / "summary.csv",
        ],
        [
            "signal",
            "--config",
            cfg,
            "--response-nr",
            r / "response.json",
            "--exposure",
            r / "exposure.json",
            "--mass-grid",
            r / "mass_grid.json",
            "--signal",
            r / "signal.json",
            "--spectra",
            r / "spectra.csv",
        ],
        [
            "likelihood",
            "--config",
            cfg,
            "--templates",
            r / "templates.json",
            "--signal",
            r / "signal.json",
            "--workspace",
            r / "BkgOnly.json",
            "--patchset",
            r / "patchset.json",
        ],
    ]
    for step in steps:
        proc = subprocess.run([*exe, *map(str, step)], capture_output=True, text=True, check=False)
        if proc.returncode:
            sys.exit(f"dmpreserve {step[0]} failed:\n{proc.stderr[-3000:]}")
    return r / "BkgOnly.json", r / "patchset.json"


def likelihood_args(parser) -> None:
    """Shared options: an existing likelihood instead of building the default one."""
    parser.add_argument("--workspace", help="background-only workspace (default: build the default one)")
    parser.add_argument("--patchset", help="patchset (default: the default configuration with 50 masses)")
    parser.add_argument("--bins-only", action="store_true", help="only the time-versus-bins scan")


def load_likelihood(args, tmp: Path) -> tuple[dict, dict]:
    """The workspace and patchset of ``args`` (or built into ``tmp``)."""
    if args.workspace and args.patchset:
        return read_json(args.workspace), read_json(args.patchset)
    t0 = time.perf_counter()
    ws, ps = default_likelihood(tmp)
    print(f"built the default likelihood (50 masses) in {time.perf_counter() - t0:.0f} s", flush=True)
    return read_json(ws), read_json(ps)


class CompileClock:
    """JAX's compile time (tracing, lowering, XLA compilation) in this process since it was created [s].

    Registered as a JAX event-duration listener by :func:`use_pyhf_jax`; ``clock.seconds`` is the running sum.
    """

    def __init__(self) -> None:
        self.seconds = 0.0

    def __call__(self, event: str, duration: float, **_) -> None:
        if event.startswith("/jax/core/compile/"):
            self.seconds += duration


def use_pyhf_jax() -> tuple[str, CompileClock]:
    """pyhf's JAX backend with its scipy optimizer for the baselines: their name for the printed lines, and the
    clock of JAX's compile time from then on.

    JAX comes from the benchmark pins (env/requirements-bench.txt, installed by ``make bench``).
    """
    import jax

    pyhf.set_backend("jax", pyhf.optimize.scipy_optimizer())
    clock = CompileClock()
    jax.monitoring.register_event_duration_secs_listener(clock)
    return f"pyhf {pyhf.__version__} JAX backend (jax {jax.__version__}), scipy SLSQP", clock


def drop_empty_bins(workspace: dict, patch: dict) -> tuple[dict, dict, int]:
    """Copies of a one-channel workspace and patch without the bins that are zero in the data and in every sample.

    Such a bin's Poisson term is Pois(0 | 0) = 1 at every parameter point and pyhf fixes its staterror gamma (zero
    uncertainty), so the likelihood and its free parameters are unchanged; but its ``xlogy(0, 0)`` has a NaN
    gradient in pyhf's JAX backend, which stops every fit (scipy: "Inequality constraints incompatible"; pyhf's
    advice is to drop such bins, scikit-hep/pyhf#180, #1852).  The default workspace has 112 of 440.
    Returns the copies and the number of bins dropped.
    """
    ws, p = copy.deepcopy(workspace), copy.deepcopy(patch)
    channel, obs = ws["channels"][0], ws["observations"][0]
    samples = channel["samples"] + [op["value"] for op in p["patch"] if op["op"] == "add"]
    used = np.asarray(obs["data"]) != 0
    for sample in samples:
        used |= np.asarray(sample["data"]) != 0
        for m in sample["modifiers"]:
            if m["type"] == "histosys":
                used |= (np.asarray(m["data"]["hi_data"]) != 0) | (np.asarray(m["data"]["lo_data"]) != 0)
            elif m["type"] in ("staterror", "shapesys"):
                used |= np.asarray(m["data"]) != 0
    keep = np.flatnonzero(used)
    if len(keep) == len(used):
        return ws, p, 0

    def cut(values: list) -> list:
        return [values[i] for i in keep]

    obs["data"] = cut(obs["data"])
    for sample in samples:
        sample["data"] = cut(sample["data"])
        for m in sample["modifiers"]:
            if m["type"] == "histosys":
                m["data"] = {k: cut(v) for k, v in m["data"].items()}
            elif m["type"] in ("staterror", "shapesys"):
                m["data"] = cut(m["data"])
    return ws, p, len(used) - len(keep)


def pyhf_model_and_data(workspace: dict, patch: dict):
    """pyhf's model (the backend as set) of the patched workspace without its empty bins, and its data."""
    ws, p, _ = drop_empty_bins(workspace, patch)
    return reference.pyhf_model_and_data(ws, p)


@contextlib.contextmanager
def _float_hypotest():
    """pyhf 0.7.6's toms748_scan caches hypotest results by the POI; under the JAX backend the POIs that scipy's
    toms748 computes from them are JAX arrays, which are unhashable (scikit-hep/pyhf#2466).  Hand it floats."""
    hypotest = pyhf_upper_limits.hypotest

    def as_floats(*args, **kwargs):
        obs, exp = hypotest(*args, **kwargs)
        return float(obs), [float(e) for e in exp]

    pyhf_upper_limits.hypotest = as_floats
    try:
        yield
    finally:
        pyhf_upper_limits.hypotest = hypotest


def baseline_upper_limit(workspace: dict, patch: dict):
    """The issue's baseline call (95% CL in pyhf 0.7.6, see the module docstring); one OpenBLAS thread."""
    with blas_threads(1), _float_hypotest():
        model, data = pyhf_model_and_data(workspace, patch)
        obs, exp = pyhf_upper_limits.upper_limit(data, model, scan=None, level=0.1)
    return float(obs), [float(e) for e in exp]


def baseline_toms748(workspace: dict, patch: dict, *, level: float):
    """pyhf's root finder at the given level (what upper_limit should call); one OpenBLAS thread."""
    with blas_threads(1), _float_hypotest():
        model, data = pyhf_model_and_data(workspace, patch)
        _, hi = model.config.suggested_bounds()[model.config.poi_index]
        # lower bracket end slightly above 0: pyhf's CLs is 0/0 = NaN at mu = 0 on some synthetic workspaces
        obs, exp = pyhf_upper_limits.toms748_scan(data, model, 1e-4 * hi, hi, level=level)
    return float(obs), [float(e) for e in exp]


def with_compile_s(fn, clock: CompileClock):
    """``fn`` wrapped to return ``(fn(), JAX compile seconds during the call)``."""

    def call():
        before = clock.seconds
        result = fn()
        return result, clock.seconds - before

    return call


def _rel(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a) / np.asarray(b) - 1.0)))


def synthetic_workspace(workspace: dict, patch: dict, n_bins: int, *, seed: int = 1) -> tuple[dict, dict]:
    """The default workspace's samples resampled onto ``n_bins`` bins (same totals, normsys and histosys).

    The staterror modifiers are dropped (their per-bin uncertainties have no resampled counterpart), and a
    histosys keeps its totals' ratios to the nominal sample on the new shape.
    """
    rng = np.random.default_rng(seed)
    ws = copy.deepcopy(workspace)
    x = np.linspace(0, 1, n_bins)
    background = np.zeros(n_bins)
    for sample in ws["channels"][0]["samples"]:
        total = float(np.sum(sample["data"]))
        shape = np.exp(-((x - rng.uniform()) ** 2) / (2 * rng.uniform(0.05, 0.5) ** 2)) + 1e-3
        new = total * shape / shape.sum()
        modifiers = []
        for m in sample["modifiers"]:
            if m["type"] == "staterror":
                continue
            if m["type"] == "histosys":
                m["data"] = {
                    k: (new * (float(np.sum(v)) / total if total else 1.0)).tolist() for k, v in m["data"].items()
                }
            modifiers.append(m)
        sample["modifiers"] = modifiers
        sample["data"] = new.tolist()
        background += new
    ws["observations"][0]["data"] = rng.poisson(background).astype(float).tolist()
    p = copy.deepcopy(patch)
    sig = np.exp(-((x - 0.2) ** 2) / (2 * 0.05**2))
    p["patch"][0]["value"]["data"] = (5.0 * sig / sig.sum()).tolist()
    return ws, p


def bins_scan(workspace: dict, patch: dict, *, quick: bool) -> list[dict]:
    """Time per mass versus the number of bins (ours; pyhf's toms748_scan up to 1000 bins)."""
    rows = []
    for n_bins in (100, 1000) if quick else (100, 300, 1000, 3000, 10000):
        ws, p = synthetic_workspace(workspace, patch, n_bins)
        funcs = {"ours": lambda ws=ws, p=p: limit_for_patch(ws, p, cl=0.9)}
        if n_bins <= 1000:
            funcs["baseline"] = lambda ws=ws, p=p: baseline_toms748(ws, p, level=0.1)
        res = interleave(funcs, repeat=1 if quick else 2)
        row = {"n_bins": n_bins, **res["ours"].row("ours")}
        if "baseline" in res:
            row.update(res["baseline"].row("baseline"))
            row["ratio"] = res["baseline"].median_s / res["ours"].median_s
            row["max_rel_diff_cls"] = _rel(
                [res["ours"].result.mu_cls, *res["ours"].result.mu_cls_expected],
                [res["baseline"].result[0], *res["baseline"].result[1]],
            )
        print(
            f"  {n_bins:6d} bins: ours {res['ours'].median_s:.3f} s/mass"
            + (f", pyhf {res['baseline'].median_s:.2f} s/mass" if "baseline" in res else ""),
            flush=True,
        )
        rows.append(row)
    return rows


def _plot(rows: list[dict], directory: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.loglog([r["n_bins"] for r in rows], [r["ours_median_s"] for r in rows], "o-", label="dmpreserve.stats")
    b = [r for r in rows if "baseline_median_s" in r]
    ax.loglog([r["n_bins"] for r in b], [r["baseline_median_s"] for r in b], "s--", label="pyhf toms748_scan")
    ax.set_xlabel("analysis bins")
    ax.set_ylabel("time per mass [s]")
    ax.legend()
    fig.tight_layout()
    fig.savefig(directory / "limits_bins.png", dpi=120, metadata={"Software": None})


def main() -> None:
    args = bench_args(__doc__.splitlines()[0], extra=likelihood_args)
    baseline, clock = use_pyhf_jax()
    print(f"baseline: {baseline} (one OpenBLAS thread; empty bins dropped)", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        workspace, patchset = load_likelihood(args, Path(tmp))
    patches = select_patches(patchset)
    if not getattr(args, "bins_only", False):
        mass_scan(args, workspace, patches, baseline, clock)
    print("time per mass versus analysis bins:")
    brows = bins_scan(workspace, patches[len(patches) // 2], quick=args.quick)
    write_results("limits_bins", brows, directory=args.results)
    _plot(brows, args.results)


def mass_scan(args, workspace: dict, patches: list[dict], baseline: str, clock: CompileClock) -> None:
    """Ours versus pyhf's upper_limit, mass by mass (the headline comparison)."""
    # pyhf needs minutes per mass even with exact gradients (SLSQP on 334 free parameters, a few seconds per
    # fit, 4 fits per hypotest, one hypotest per root-finder step for each of the 6 roots), so the baseline
    # runs on few masses
    n_base = min(len(patches), N_BASELINE_MASSES)
    spread = np.linspace(0, len(patches) - 1, n_base) if n_base > 1 else [len(patches) // 2]
    base_idx = set(np.round(spread).astype(int).tolist())
    ours_t, base_t, rows = [], [], []
    t_all = time.perf_counter()
    for i, patch in enumerate(patches):
        if i not in base_idx:
            t0 = time.perf_counter()
            limit_for_patch(workspace, patch, cl=0.9)
            ours_t.append(time.perf_counter() - t0)
            continue
        res = interleave(
            {
                "ours": lambda p=patch: limit_for_patch(workspace, p, cl=0.9),
                "baseline": with_compile_s(lambda p=patch: baseline_upper_limit(workspace, p), clock),
            },
            repeat=1,
        )
        ours, base = res["ours"], res["baseline"]
        (base_obs, base_exp), compile_s = base.result
        ours_t.append(ours.median_s)
        base_t.append(base.median_s)
        at95 = limit_for_patch(workspace, patch, cl=0.95)
        r = ours.result
        rows.append(
            {
                "mass_gev": r.mass_gev,
                **ours.row("ours"),
                **base.row("baseline"),
                "baseline_jax_compile_s": round(compile_s, 2),
                "ratio": base.median_s / ours.median_s,
                "max_rel_diff_cl95_vs_upper_limit": _rel([at95.mu_cls, *at95.mu_cls_expected], [base_obs, *base_exp]),
                **{f"ours_cls95_{k}": v for k, v in zip(LIMIT_NAMES, [at95.mu_cls, *at95.mu_cls_expected])},
                **{f"pyhf_cls95_{k}": v for k, v in zip(LIMIT_NAMES, [base_obs, *base_exp])},
            }
        )
        print(
            f"  m = {r.mass_gev:8.4g} GeV: ours {ours.median_s:.3f} s, pyhf upper_limit {base.median_s:.1f} s "
            f"(JAX compile {compile_s:.1f} s), max rel diff {rows[-1]['max_rel_diff_cl95_vs_upper_limit']:.1e} "
            "(95% CL, observed and 5 expected)",
            flush=True,
        )
    print(f"ours: {len(patches)} masses in {sum(ours_t):.2f} s ({time.perf_counter() - t_all:.0f} s with baseline)")
    ours_mean, base_mean = float(np.mean(ours_t)), float(np.mean(base_t))
    compile_mean = float(np.mean([r["baseline_jax_compile_s"] for r in rows]))
    ratio = base_mean / ours_mean
    peak_ours = max(r["ours_peak_mb"] for r in rows)
    peak_base = max(r["baseline_peak_mb"] for r in rows)
    print(
        f"limits_per_mass: ours {ours_mean:.4f} s, baseline {base_mean:.4f} s, ratio {ratio:.1f} "
        f"(peak memory ours {peak_ours:.0f} MB, baseline {peak_base:.0f} MB; baseline {baseline}, on {len(base_t)} of "
        f"{len(patches)} masses, of which JAX compile {compile_mean:.1f} s per mass (a new model per mass); "
        f"max rel diff {max(r['max_rel_diff_cl95_vs_upper_limit'] for r in rows):.1e} at 95% vs upper_limit)",
        flush=True,
    )
    write_results("limits", rows, directory=args.results)


if __name__ == "__main__":
    main()
