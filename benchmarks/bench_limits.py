"""Benchmark: asymptotic limit curve with expected bands, dmpreserve.stats versus pyhf, per mass.

Task: the 90% CL limit with the expected band for each of 50 WIMP masses on the default workspace
(default configuration's background-only workspace, 440 bins; the signal grid widened to 50
masses).  Interleaved in one process, mass by mass (the baseline on 3 masses spread over the grid, 1 with
``--quick``: since the default workspace has a staterror gamma per bin, pyhf's scipy fits with finite-difference
gradients are slow; on 2026-11-30 one mass took more than 15 min, so even ``--quick`` does not finish quickly):

* ours: ``dmpreserve.stats.limits.limit_for_patch`` (vectorized numpy model + batched Newton fits, Asimov
  root finding): CLs observed + 5 expected, Neyman t~mu observed + 5 expected, PCL, p0/z0;
* baseline: ``pyhf.infer.intervals.upper_limits.upper_limit(data, model, scan=None, level=0.1)`` as
  the issue asks (numpy backend, scipy optimizer).  NOTE pyhf 0.7.6 ignores ``level`` there
  (scikit-hep/pyhf#2563): it returns 95% CL limits.  The numbers are therefore compared with
  ``toms748_scan(level=0.1)`` (what upper_limit should do; ours at cl = 0.9) and upper_limit's
  output with ours at cl = 0.95.

Also: time per mass versus the number of analysis bins (100 .. 10,000; synthetic workspaces with
the same five background samples and normsys constraints) for issue 7.
Writes ``benchmarks/results/limits.csv``, ``limits_bins.csv`` and ``limits_bins.png``.

    .venv/bin/python benchmarks/bench_limits.py [--quick] [--workspace BkgOnly.json --patchset patchset.json]
"""

from __future__ import annotations

import copy
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyhf
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import bench_args, interleave, write_results  # noqa: E402

from dmpreserve.files import read_json  # noqa: E402
from dmpreserve.stats.limits import limit_for_patch, select_patches  # noqa: E402
from dmpreserve.stats.reference import pyhf_model_and_data  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


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


def baseline_upper_limit(workspace: dict, patch: dict):
    """The issue's baseline call (95% CL in pyhf 0.7.6, see the module docstring)."""
    model, data = pyhf_model_and_data(workspace, patch)
    obs, exp = pyhf.infer.intervals.upper_limits.upper_limit(data, model, scan=None, level=0.1)
    return float(obs), [float(e) for e in exp]


def baseline_toms748(workspace: dict, patch: dict, *, level: float):
    """pyhf's root finder at the given level (what upper_limit should call)."""
    model, data = pyhf_model_and_data(workspace, patch)
    _, hi = model.config.suggested_bounds()[model.config.poi_index]
    # lower bracket end slightly above 0: pyhf's CLs is 0/0 = NaN at mu = 0 on some synthetic workspaces
    obs, exp = pyhf.infer.intervals.upper_limits.toms748_scan(data, model, 1e-4 * hi, hi, level=level)
    return float(obs), [float(e) for e in exp]


def _rel(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a) / np.asarray(b) - 1.0)))


def synthetic_workspace(workspace: dict, patch: dict, n_bins: int, *, seed: int = 1) -> tuple[dict, dict]:
    """The default workspace's samples resampled onto ``n_bins`` bins (same totals and modifiers)."""
    rng = np.random.default_rng(seed)
    ws = copy.deepcopy(workspace)
    x = np.linspace(0, 1, n_bins)
    background = np.zeros(n_bins)
    for sample in ws["channels"][0]["samples"]:
        total = float(np.sum(sample["data"]))
        shape = np.exp(-((x - rng.uniform()) ** 2) / (2 * rng.uniform(0.05, 0.5) ** 2)) + 1e-3
        sample["data"] = (total * shape / shape.sum()).tolist()
        background += np.asarray(sample["data"])
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
    pyhf.set_backend("numpy", pyhf.optimize.scipy_optimizer())
    with tempfile.TemporaryDirectory() as tmp:
        workspace, patchset = load_likelihood(args, Path(tmp))
    patches = select_patches(patchset)
    if not getattr(args, "bins_only", False):
        mass_scan(args, workspace, patches)
    print("time per mass versus analysis bins:")
    brows = bins_scan(workspace, patches[len(patches) // 2], quick=args.quick)
    write_results("limits_bins", brows, directory=args.results)
    _plot(brows, args.results)


def mass_scan(args, workspace: dict, patches: list[dict]) -> None:
    """Ours versus pyhf's upper_limit, mass by mass (the headline comparison)."""
    # pyhf's upper_limit took more than 15 min per mass on the default workspace (a staterror gamma per bin,
    # 440 parameters), so the baseline runs on a few masses spread over the grid; ours runs on every mass
    n_base = min(len(patches), 1 if args.quick else 3)
    base_idx = set(np.linspace(0, len(patches) - 1, n_base).round().astype(int).tolist())
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
                "baseline": lambda p=patch: baseline_upper_limit(workspace, p),
            },
            repeat=1,
        )
        ours, base = res["ours"], res["baseline"]
        ours_t.append(ours.median_s)
        base_t.append(base.median_s)
        at95 = limit_for_patch(workspace, patch, cl=0.95)
        ref90 = baseline_toms748(workspace, patch, level=0.1)
        r = ours.result
        rows.append(
            {
                "mass_gev": r.mass_gev,
                **ours.row("ours"),
                **base.row("baseline"),
                "ratio": base.median_s / ours.median_s,
                "max_rel_diff_cl90_vs_toms748": _rel([r.mu_cls, *r.mu_cls_expected], [ref90[0], *ref90[1]]),
                "max_rel_diff_cl95_vs_upper_limit": _rel(
                    [at95.mu_cls, *at95.mu_cls_expected], [base.result[0], *base.result[1]]
                ),
            }
        )
        print(
            f"  m = {r.mass_gev:8.4g} GeV: ours {ours.median_s:.3f} s, pyhf {base.median_s:.2f} s, "
            f"max rel diff {rows[-1]['max_rel_diff_cl90_vs_toms748']:.1e} (90%), "
            f"{rows[-1]['max_rel_diff_cl95_vs_upper_limit']:.1e} (95% vs upper_limit)",
            flush=True,
        )
    print(f"ours: {len(patches)} masses in {sum(ours_t):.2f} s ({time.perf_counter() - t_all:.0f} s with baseline)")
    ours_mean, base_mean = float(np.mean(ours_t)), float(np.mean(base_t))
    ratio = base_mean / ours_mean
    peak_ours = max(r["ours_peak_mb"] for r in rows)
    peak_base = max(r["baseline_peak_mb"] for r in rows)
    print(
        f"limits_per_mass: ours {ours_mean:.4f} s, baseline {base_mean:.4f} s, ratio {ratio:.1f} "
        f"(peak memory ours {peak_ours:.0f} MB, baseline {peak_base:.0f} MB; pyhf on {len(base_t)} of "
        f"{len(patches)} masses; max rel diff {max(r['max_rel_diff_cl90_vs_toms748'] for r in rows):.1e} vs "
        f"toms748_scan(level=0.1), {max(r['max_rel_diff_cl95_vs_upper_limit'] for r in rows):.1e} at 95% vs "
        "upper_limit)",
        flush=True,
    )
    write_results("limits", rows, directory=args.results)


if __name__ == "__main__":
    main()
