"""Limits of dmpreserve.stats / dmpreserve.stats.limits: asymptotics vs pyhf, toys, coverage, PCL, CLI
scatter/gather."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyhf
import pytest
import yaml
from pyhf_reference import without_staterror_fixtures
from scipy import stats

from dmpreserve.artifacts.limits import LIMIT_COLUMNS, TOY_COLUMNS
from dmpreserve.cli import main
from dmpreserve.files import read_csv, read_json
from dmpreserve.schema import validate
from dmpreserve.stats.asymptotic import asymptotic_limits, observed_setup
from dmpreserve.stats.limits import MassLimit, compute_limits, limit_for_patch
from dmpreserve.stats.model import build_model
from dmpreserve.stats.reference import pyhf_model_and_data
from dmpreserve.stats.teststat import fit_datasets, tmu_tilde
from dmpreserve.stats.toys import generate, quantile_with_error, refine_crossing, toy_tmu, upper_crossing

# the pipeline's likelihood without staterror, on both sides of the comparisons with pyhf's own fits
workspace, patchset = without_staterror_fixtures()


MASS_GEV = 46.4159


@pytest.fixture(scope="module")
def patch(patchset) -> dict[str, Any]:
    (p,) = [p for p in patchset["patches"] if np.isclose(p["metadata"]["values"][0], MASS_GEV, rtol=1e-4)]
    return p


@pytest.fixture(scope="module")
def model(workspace, patch):
    return build_model(workspace, patch)


@pytest.fixture(scope="module")
def asym(model):
    return asymptotic_limits(model, cl=0.9, pcl_power=0.16)


@pytest.fixture(scope="module")
def pyhf_model(workspace, patch):
    pyhf.set_backend("numpy", pyhf.optimize.scipy_optimizer())
    return pyhf_model_and_data(workspace, patch)


# ------------------------------------------------------------------------------ asymptotics


def test_cls_limits_match_pyhf(asym, pyhf_model) -> None:
    """Same numbers as pyhf's TOMS 748 scan at level 0.1 (upper_limit(level=...) is ignored in pyhf 0.7.6).

    The bracket starts at mu = 1e-3, not 0: pyhf's CLs at mu = 0 is 0/0, NaN or not depending on the BLAS
    rounding (with OMP_NUM_THREADS=1 the scan stopped on it)."""
    m, data = pyhf_model
    obs, exp = pyhf.infer.intervals.upper_limits.toms748_scan(data, m, 1e-3, 50.0, level=0.1)
    assert 1e-3 < float(obs) < 50.0
    assert asym.cls == pytest.approx(float(obs), rel=1e-3)
    np.testing.assert_allclose(asym.cls_expected, [float(e) for e in exp], rtol=1e-3)


def test_neyman_asymptotic_limit_has_threshold_2706(asym, pyhf_model) -> None:
    m, data = pyhf_model
    args = (data, m, m.config.suggested_init(), m.config.suggested_bounds(), m.config.suggested_fixed())
    t = float(pyhf.infer.test_statistics.tmu_tilde(asym.neyman, *args))
    assert t == pytest.approx(stats.chi2.ppf(0.9, 1), abs=2e-3)
    assert asym.threshold == pytest.approx(2.70554, abs=1e-4)
    assert float(pyhf.infer.test_statistics.tmu_tilde(0.9 * asym.neyman, *args)) < t


def test_asymptotic_bands(asym) -> None:
    for band in (asym.cls_expected, asym.neyman_expected):
        assert all(a < b for a, b in zip(band, band[1:]))
    # median PLR sensitivity = median CLs limit: both are sqrt(2.706) = 1.645 sigma_A at 90% CL
    assert asym.neyman_expected[2] == pytest.approx(asym.cls_expected[2], rel=1e-5)
    # the PCL floor at power 0.16 lies just above the -1 sigma sensitivity (0.1587)
    assert asym.neyman_expected[1] < asym.pcl_threshold < 1.02 * asym.neyman_expected[1]


def test_discovery_matches_pyhf(asym, pyhf_model) -> None:
    m, data = pyhf_model
    p0 = float(pyhf.infer.hypotest(0.0, data, m, test_stat="q0", calctype="asymptotics"))
    assert asym.p0 == pytest.approx(p0, rel=1e-3, abs=1e-6)
    assert asym.z0 == pytest.approx(stats.norm.isf(asym.p0), abs=1e-6)


def test_pcl_is_max_of_unconstrained_and_floor(workspace, patch) -> None:
    res = limit_for_patch(workspace, patch, cl=0.9, pcl_power=0.16)
    assert res.mu_pcl == pytest.approx(max(res.mu_unconstrained, res.mu_pcl_threshold))
    assert res.mu_limit == res.mu_pcl
    row = res.row()
    assert tuple(row) == LIMIT_COLUMNS
    assert row["limit_cm2"] == row["limit_pcl_cm2"] >= row["expected_m1sigma_cm2"]
    # a strong under-fluctuation: the PCL is the floor, not the unconstrained limit
    low = copy.deepcopy(workspace)
    signal = np.asarray(patch["patch"][0]["value"]["data"])
    obs = np.asarray(low["observations"][0]["data"])
    obs[np.argsort(signal)[-30:]] = 0.0  # no events where the signal would be
    low["observations"][0]["data"] = obs.tolist()
    res = limit_for_patch(low, patch, cl=0.9, pcl_power=0.16)
    assert res.mu_unconstrained < res.mu_pcl_threshold == res.mu_pcl == res.mu_limit


def test_masslimit_json_roundtrip(workspace, patch) -> None:
    res = limit_for_patch(workspace, patch, cl=0.9)
    assert MassLimit.from_json(json.loads(json.dumps(res.to_json())), path="x.json") == res


def test_fifty_masses_default_is_fast_and_asymptotic(workspace, patchset) -> None:
    results = compute_limits(workspace, patchset, progress=False)
    assert [r.mass_gev for r in results] == sorted(r.mass_gev for r in results)
    assert all(r.n_toys == 0 and r.p0_toys is None for r in results)


# --------------------------------------------------------------------------------------- toys


def test_toy_tmu_is_chi2_for_large_signal(model) -> None:
    """Far from the boundary t~mu follows chi2(1) (Wilks): the toy threshold is near 2.706."""
    mu = 3.0
    sets = fit_datasets(model, model.observed[None], np.zeros((1, model.n_params - 1)))
    _, cond = tmu_tilde(model, sets, np.array([mu]))
    t = toy_tmu(model, cond.theta[0], mu, 1500, np.random.default_rng(11))
    c, err = quantile_with_error(t, 0.9)
    assert abs(c - 2.706) < 4 * err + 0.1
    assert stats.kstest(t, stats.chi2(1).cdf).pvalue > 0.001


def test_upper_crossing_refinement_is_exact(model, asym) -> None:
    """Toy upper limits from a coarse grid + bracket refinement equal those of a dense grid."""
    n = 60
    theta0 = np.concatenate([[0.0], observed_setup(model).sets.aux[1]])
    data, aux = generate(model, theta0, n, np.random.default_rng(5))
    sets = fit_datasets(model, data, aux, init=np.repeat(theta0[None], n, axis=0))
    top = 2 * asym.neyman_expected[4]
    knots = np.linspace(0.3 * asym.neyman_expected[0], top, 6)
    c_knots = 2.3 + 0.3 * np.sin(3 * knots / top)

    class Critical:
        total, alpha = 1.0, 0.1

        def __call__(self, x):
            return np.interp(x, knots, c_knots), np.zeros_like(x)

        def atom(self, x):
            return np.zeros_like(x), np.zeros_like(x)

    def limits(grid: np.ndarray) -> np.ndarray:
        t, _ = tmu_tilde(model, sets, np.tile(grid, n), which=np.repeat(np.arange(n), grid.size))
        return upper_crossing(model, sets, grid, t.reshape(n, grid.size), Critical())

    coarse = limits(np.concatenate([[0.0], knots]))
    dense = limits(np.concatenate([[0.0], np.linspace(0.01 * knots[0], top, 300)]))
    np.testing.assert_allclose(coarse, dense, rtol=2e-3)


def test_refine_crossing_roots_jumps_and_known_ends() -> None:
    """The bracket refinement against analytic crossings: a smooth root, a jump (an atom's end), g(hi) = 0,
    a NaN region (not excluded); the returned end has g >= 0, lies within rtol of the crossing, and the
    bracket's known ends are never evaluated again."""
    roots = np.array([0.3, 1.7, 2.5, 4.0])
    evaluated: list[np.ndarray] = []
    per_row = np.zeros(4, int)

    def g(x: np.ndarray, rows: np.ndarray) -> np.ndarray:
        evaluated.append(x.copy())
        np.add.at(per_row, rows, 1)
        r = roots[rows]
        smooth = np.sqrt(x) - np.sqrt(r)  # row 0: t~mu-like, sqrt(t) - sqrt(c)
        jump = np.where(x >= r, 1.0, -1.0)  # row 1: g jumps at the end of an atom
        nan = np.where(x < r, np.nan, x - r)  # row 3: NaN below the root counts as not excluded
        return np.select([rows == 0, rows == 1, rows == 3], [smooth, jump, nan], x - r)

    lo, hi = np.array([0.1, 1.0, 1.0, 3.0]), np.array([1.0, 3.0, 2.5, 5.0])
    g_lo = np.array([np.sqrt(0.1) - np.sqrt(0.3), -1.0, -1.5, -1.0])
    g_hi = np.array([1.0 - np.sqrt(0.3), 1.0, 0.0, 1.0])
    out = refine_crossing(g, lo, hi, g_lo, g_hi, rtol=1e-6)
    assert np.all(out >= roots * (1 - 1e-15))  # the excluded end
    np.testing.assert_allclose(out, roots, rtol=1.5e-6)
    assert out[2] == 2.5  # g(hi) = 0: hi without an evaluation
    x = np.concatenate(evaluated)
    assert not np.isin(x, np.concatenate([lo, hi])).any()
    # smooth rows converge superlinearly (regula falsi alternating with bisection took 19+); a jump takes bisection
    assert per_row[[0, 3]].max() <= 8 and per_row[2] == 0 and per_row[1] <= 25, per_row


def test_neyman_coverage(model) -> None:
    """Pseudo-experiments at a known mu: the Neyman 90% intervals cover it at 0.90 +- 3 binomial sigma.

    mu is covered iff t~mu(data) <= threshold(mu) (the construction's acceptance region at mu).
    """
    mu_true, n_thr, n_exp = 0.15, 3000, 2000
    sets = fit_datasets(model, model.observed[None], np.zeros((1, model.n_params - 1)))
    _, cond = tmu_tilde(model, sets, np.array([mu_true]))
    theta = cond.theta[0]
    threshold, _ = quantile_with_error(toy_tmu(model, theta, mu_true, n_thr, np.random.default_rng(21)), 0.9)
    data, aux = generate(model, theta, n_exp, np.random.default_rng(22))
    pseudo = fit_datasets(model, data, aux, init=np.repeat(theta[None], n_exp, axis=0))
    t, _ = tmu_tilde(model, pseudo, np.full(n_exp, mu_true))
    coverage = float(np.mean(t <= threshold))
    sigma = np.sqrt(0.9 * 0.1 / n_exp)
    assert abs(coverage - 0.90) < 3 * sigma, coverage


# ---------------------------------------------------------------------------------------- CLI


@pytest.fixture(scope="module")
def toy_config(tmp_path_factory, small_config_path: Path) -> Path:
    doc = yaml.safe_load(small_config_path.read_text(encoding="utf-8"))
    doc["statistics"] = {
        "neyman_threshold": "table",
        "pcl_power": 0.16,
        "toys_background": 100,
        "threshold_table": {
            "signal_events": {"min": 0.5, "max": 30.0, "points": 6},
            "reference_masses_gev": [10.0, 1000.0],
            "toys_per_point": 100,
            "shards": 1,
        },
    }
    path = tmp_path_factory.mktemp("toycfg") / "config.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def _lik(pipeline_dir: Path) -> list[str]:
    return [
        "--workspace",
        str(pipeline_dir / "likelihood" / "BkgOnly.json"),
        "--patchset",
        str(pipeline_dir / "likelihood" / "patchset.json"),
    ]


def test_cli_scatter_gather(toy_config: Path, pipeline_dir: Path, tmp_path: Path) -> None:
    points = []
    for i in range(4):
        out = tmp_path / "points" / f"{i}.json"
        assert (
            main(
                [
                    "limits-point",
                    "--config",
                    str(toy_config),
                    *_lik(pipeline_dir),
                    "--index",
                    str(i),
                    "-o",
                    str(out),
                    "--no-progress",
                ]
            )
            == 0
        )
        points.append(str(out))
    again = tmp_path / "again.json"
    assert (
        main(
            [
                "limits-point",
                "--config",
                str(toy_config),
                *_lik(pipeline_dir),
                "--index",
                "3",
                "-o",
                str(again),
                "--no-progress",
            ]
        )
        == 0
    )
    assert again.read_bytes() == Path(points[3]).read_bytes()  # byte-identical rerun
    csv, js = tmp_path / "limits.csv", tmp_path / "limits.json"
    assert (
        main(
            [
                "limits",
                "--config",
                str(toy_config),
                *_lik(pipeline_dir),
                "--points",
                *points[::-1],
                "--csv",
                str(csv),
                "--json",
                str(js),
            ]
        )
        == 0
    )
    cols = read_csv(csv, required=LIMIT_COLUMNS)
    assert tuple(cols) == LIMIT_COLUMNS + TOY_COLUMNS
    doc = read_json(js)
    validate(doc, "limits", path=str(js))
    masses = [r["mass_gev"] for r in doc["limits"]]
    assert masses == sorted(masses) and len(masses) == 4
    for r in doc["limits"]:
        assert r["limit_cm2"] == r["limit_pcl_cm2"] >= r["limit_unconstrained_cm2"]
        assert r["limit_cm2"] >= r["pcl_threshold_cm2"]
        assert r["neyman_threshold_err"] > 0
    assert doc["statistics"]["neyman_threshold"] == "table"


def test_cli_errors(
    toy_config: Path, small_config_path: Path, pipeline_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert (
        main(
            [
                "limits-point",
                "--config",
                str(toy_config),
                *_lik(pipeline_dir),
                "--index",
                "4",
                "-o",
                str(tmp_path / "p.json"),
            ]
        )
        == 2
    )
    assert "--index" in capsys.readouterr().err
    p0 = tmp_path / "0.json"
    assert (
        main(
            [
                "limits-point",
                "--config",
                str(small_config_path),
                *_lik(pipeline_dir),
                "--index",
                "0",
                "-o",
                str(p0),
                "--no-progress",
            ]
        )
        == 0
    )
    capsys.readouterr()
    args = ["--csv", str(tmp_path / "l.csv"), "--json", str(tmp_path / "l.json")]
    assert main(["limits", "--config", str(small_config_path), *_lik(pipeline_dir), "--points", str(p0), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--points" in err and "4 masses" in err
    # a point computed with other statistics settings is refused
    assert main(["limits", "--config", str(toy_config), *_lik(pipeline_dir), "--points", str(p0), *args]) == 2
    assert "statistics" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    doc = read_json(p0)
    doc["limit"]["mu_cls"] = "x"
    bad.write_text(json.dumps(doc))
    assert main(["limits", "--config", str(small_config_path), *_lik(pipeline_dir), "--points", str(bad), *args]) == 2
    assert "mu_cls" in capsys.readouterr().err
    assert not (tmp_path / "l.csv").exists()
    # a signal too weak for the POI bounds: one line naming the patchset and the patch
    weak = read_json(pipeline_dir / "likelihood" / "patchset.json")
    for p in weak["patches"]:
        p["patch"][0]["value"]["data"] = [v * 1e-4 for v in p["patch"][0]["value"]["data"]]
    weak_path = tmp_path / "weak.json"
    weak_path.write_text(json.dumps(weak))
    assert (
        main(
            [
                "limits-point",
                "--config",
                str(small_config_path),
                "--workspace",
                str(pipeline_dir / "likelihood" / "BkgOnly.json"),
                "--patchset",
                str(weak_path),
                "--index",
                "0",
                "-o",
                str(tmp_path / "w.json"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(weak_path) in err and "not bracketed" in err and "patches[" in err
