"""``dmpreserve combine``: refusals, the joint likelihood's identities, halo nuisances, joint-toy thresholds.

Two small pipeline kits from the session's test pipeline (``pipeline_dir``): the kit itself, and the same
detector with other observed counts (a Poisson draw of its background expectation, an "independent run").
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from dmpreserve.cli import main
from dmpreserve.files import read_json
from dmpreserve.physics.halo import StandardHalo
from dmpreserve.physics.signal_models import model_from_dict
from dmpreserve.reinterpret.combine import (
    build_patchset,
    check_experiments,
    load_experiment,
    mass_patch,
    merge_workspaces,
)
from dmpreserve.reinterpret.combine_halo import default_uncertainties
from dmpreserve.reinterpret.combine_signals import SignalSource, experiment_signals, signal_table
from dmpreserve.stats.model import build_model
from dmpreserve.stats.newton import minimize

MASSES = (10.0, 50.0, 300.0)


@pytest.fixture(scope="module")
def kits(pipeline_dir, small_config, tmp_path_factory) -> tuple[Path, Path]:
    """(kit, kit of an independent run of the same detector)."""
    from pipeline_kit import assemble_si_kit

    from dmpreserve.reinterpret.kit import write_kit

    root = tmp_path_factory.mktemp("combine_kits")
    r = pipeline_dir
    a = assemble_si_kit(
        root / "run_a" / "reinterpretation",
        config=small_config,
        workspace=r / "likelihood/BkgOnly.json",
        patchset=r / "likelihood/patchset.json",
        templates=r / "backgrounds/templates.json",
        response_nr=r / "response/response_nr.json",
        response_er=r / "response/response_er.json",
        acceptance=r / "selection/acceptance.csv",
        workdir=root,
    )
    ws = read_json(r / "likelihood/BkgOnly.json")
    ws_b = json.loads(json.dumps(ws))
    bkg = np.sum([s["data"] for s in ws_b["channels"][0]["samples"]], axis=0)
    ws_b["observations"][0]["data"] = np.random.default_rng(7).poisson(bkg).astype(float).tolist()
    b = root / "run_b" / "reinterpretation"
    manifest = {k: v for k, v in read_json(a / "kit.json").items() if k != "files"}
    contents = {n: (a / n).read_bytes() for n in read_json(a / "kit.json")["files"]}
    contents["BkgOnly.json"] = json.dumps(ws_b, sort_keys=True).encode()
    write_kit(b, files=contents, manifest=manifest)
    return a, b


def _source(halo=None) -> SignalSource:
    return SignalSource(masses_gev=MASSES, model=model_from_dict({"model": "si", **({"halo": halo} if halo else {})}))


def test_same_kit_twice_is_refused(kits, tmp_path, capsys):
    a, _ = kits
    copy = tmp_path / "copy" / "reinterpretation"
    shutil.copytree(a, copy)
    model = tmp_path / "si.yaml"
    model.write_text("model: si\n")
    for other in (a, copy):  # the same path, and the same data under another path
        out = tmp_path / "out"
        status = main(["combine", "--kit", str(a), "--kit", f"other={other}", "--model", str(model), "-o", str(out)])
        err = capsys.readouterr().err.strip().splitlines()
        assert status == 2 and not out.exists()
        assert len(err) == 1 and "same observed data" in err[0] and str(a) in err[0] and str(other) in err[0]


def test_different_cl_is_refused(kits):
    a, b = kits
    ea, eb = load_experiment(a), load_experiment(b)
    with pytest.raises(Exception, match="different confidence levels"):
        check_experiments([ea, dataclasses.replace(eb, cl=0.95)])


def test_one_kit_alone_equals_reinterpret(kits, tmp_path):
    a, _ = kits
    model = tmp_path / "si.yaml"
    model.write_text("model: si\nmasses_gev: [10, 50, 300]\n")
    common = ["--kit", str(a), "--model", str(model), "--asymptotic", "--no-progress"]
    assert (
        main(
            ["combine", *common[:4], "--no-halo-nuisances", "--asymptotic", "--no-progress", "-o", str(tmp_path / "c")]
        )
        == 0
    )
    assert (
        main(
            [
                "reinterpret",
                "--kit",
                str(a),
                "--model",
                str(model),
                "--asymptotic",
                "--no-progress",
                "-o",
                str(tmp_path / "r"),
            ]
        )
        == 0
    )
    comb = np.genfromtxt(tmp_path / "c/combined_limits.csv", delimiter=",", names=True)
    ref = np.genfromtxt(tmp_path / "r/limits.csv", delimiter=",", names=True)
    for col in (
        "mass_gev",
        "limit_cm2",
        "limit_unconstrained_cm2",
        "limit_cls_cm2",
        "expected_cm2",
        "expected_p2sigma_cm2",
    ):
        np.testing.assert_allclose(comb[col], ref[col], rtol=1e-6, err_msg=col)
    per = np.genfromtxt(
        tmp_path / "c/per_experiment_limits.csv", delimiter=",", names=True, dtype=None, encoding="utf-8"
    )
    np.testing.assert_allclose(per["limit_cm2"], ref["limit_cm2"], rtol=1e-6)


def _profile_nll(spec: dict, patch: dict, mu: float) -> float:
    """-2 ln L(mu, profiled nuisances) of the observed data (dmpreserve.stats' conditional fit; the constants it
    drops, ln n! and the Gaussian normalisations, are additive over experiments like the likelihood itself)."""
    model = build_model(spec, patch)
    init = model.start(model.nominal_aux[None])
    init[:, 0] = mu
    fit = minimize(model, model.observed[None], model.nominal_aux[None], init, fix_poi=True)
    assert fit.converged[0]
    return 2.0 * float(fit.nll[0])


@pytest.mark.parametrize("halo_nuisances", [False, True])
def test_joint_profile_is_sum_of_experiments(kits, halo_nuisances):
    """Without shared nuisance parameters -2 ln L_joint(mu) (profiled) is exactly the sum of the experiments';
    shared halo nuisance parameters break the identity."""
    exps = sorted([load_experiment(k) for k in kits], key=lambda e: e.name)
    src = _source()
    table = signal_table(exps, src, StandardHalo(), default_uncertainties() if halo_nuisances else None, progress=False)
    ws = merge_workspaces(exps)
    i = 1
    joint = mass_patch(table, exps, i, mass=MASSES[i], label="si")
    sigma = joint["metadata"]["reference_cross_section_cm2"]
    singles = [
        (merge_workspaces([e]), mass_patch(table, [e], i, mass=MASSES[i], label="si", strength=sigma)) for e in exps
    ]
    for mu in (0.0, 0.5, 2.0):
        total = sum(_profile_nll(w, p, mu) for w, p in singles)
        diff = _profile_nll(ws, joint, mu) - total
        if halo_nuisances:
            assert abs(diff) > 1e-4 or mu == 0.0
        else:
            assert abs(diff) < 1e-5 * max(1.0, abs(total)), (mu, diff)


def _signal_at(model, theta_alphas: dict[str, float]) -> np.ndarray:
    """Expected signal (mu = 1 minus mu = 0) with the named alphas set, every other parameter at its init."""
    theta = model.init.copy()
    for name, value in theta_alphas.items():
        theta[list(model.param_names).index(name)] = value
    on, off = theta.copy(), theta.copy()
    on[0], off[0] = 1.0, 0.0
    return model.expected(on[None])[0] - model.expected(off[None])[0]


def test_halo_nuisances_at_one_sigma_give_the_shifted_signal(kits):
    """halo_v0 / halo_vesc at +-1: each experiment's signal is its signal recomputed at the shifted halo (exact:
    normsys code4 and histosys code4p reproduce their anchors); halo_rho0 at +1 scales by 1 + 0.1 / 0.3."""
    exps = sorted([load_experiment(k) for k in kits], key=lambda e: e.name)
    src, halo, unc = _source(), StandardHalo(), default_uncertainties()
    table = signal_table(exps, src, halo, unc, progress=False)
    ws = merge_workspaces(exps)
    ps, _ = build_patchset(table, exps, ws, src)
    for i, patch in enumerate(ps["patches"]):
        model = build_model(ws, patch)
        sigma = patch["metadata"]["reference_cross_section_cm2"]
        nominal = _signal_at(model, {})
        np.testing.assert_allclose(_signal_at(model, {"halo_rho0": 1.0}), nominal * (1 + 0.1 / 0.3), rtol=1e-9)
        for name, up, down in unc.variations(halo):
            for sign, shifted in ((1.0, up), (-1.0, down)):
                recomputed = np.concatenate(
                    [
                        np.asarray(s[0][0][1]["data"]) / s[1] * sigma
                        for s in (experiment_signals(e, src, shifted)[i] for e in exps)
                    ]
                )
                got = _signal_at(model, {name: sign})
                np.testing.assert_allclose(got, recomputed, rtol=1e-9, atol=1e-12 * recomputed.max(), err_msg=name)
                assert np.max(np.abs(got / np.where(nominal > 0, nominal, 1) - 1)) > 1e-4  # the shift does something


def test_joint_toy_thresholds_and_byte_identical_reruns(kits, tmp_path):
    """The Neyman thresholds come from a table built from toys of the JOINT model (its reference shape's
    b_eff is the joint model's, not a single experiment's; the recorded digest is the joint workspace's), and a
    rerun gives byte-identical files."""
    from dmpreserve.artifacts.thresholds import read_threshold_table
    from dmpreserve.stats.thresholds import shape_stats
    from dmpreserve.stats.toys import background_theta

    a, b = kits
    model = tmp_path / "si.yaml"
    model.write_text("model: si\nmasses_gev: [10, 50, 300]\n")
    argv = ["combine", "--kit", str(a), "--kit", str(b), "--model", str(model), "--no-progress"]
    argv += ["--toys-per-point", "30", "--toys-background", "20", "--reference-masses", "50"]
    outs = [tmp_path / "c1", tmp_path / "c2"]
    for out in outs:
        assert main([*argv, "-o", str(out)]) == 0
    names = sorted(p.name for p in outs[0].iterdir())
    assert "threshold_table.json" in names and names == sorted(p.name for p in outs[1].iterdir())
    for name in names:
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes(), name
    doc = read_json(outs[0] / "combined_limits.json")
    ws = read_json(outs[0] / "combined_workspace.json")
    ps = read_json(outs[0] / "combined_patchset.json")
    assert doc["threshold_table"]["built_from_workspace_sha256"] == pyhf_digest(ws) == doc["workspace_sha256"]
    table = read_threshold_table(outs[0] / "threshold_table.json")
    patch = next(p for p in ps["patches"] if p["metadata"]["values"][0] == 50.0)
    joint = build_model(ws, patch)
    _, b_eff = shape_stats(joint, background_theta(joint))
    np.testing.assert_allclose(table.shape_b_eff, [b_eff], rtol=1e-9)
    singles = [t["shape_b_eff"][0] for t in doc["per_experiment_threshold_tables"].values()]
    assert all(abs(s / b_eff - 1) > 0.05 for s in singles)  # the joint shape is not a single experiment's
    rows = np.genfromtxt(outs[0] / "combined_limits.csv", delimiter=",", names=True)
    assert np.all(rows["neyman_threshold"] > 0) and np.all(rows["limit_cm2"] >= rows["limit_unconstrained_cm2"])
    # the joint likelihood in HS3: the written document is the conversion of the 50 GeV patch, and pyhs3's
    # -ln L equals pyhf's at >= 5 parameter points
    from hs3_check import compare_with_pyhf

    from dmpreserve.publish.hs3 import workspace_to_hs3

    assert read_json(outs[0] / "combined_likelihood_hs3.json") == workspace_to_hs3(ws, patch, name="combination")
    worst, worst_diff = compare_with_pyhf(ws, patch, name="combination")
    assert worst < 1e-6 and worst_diff < 1e-6


def pyhf_digest(doc: dict) -> str:
    import pyhf

    return pyhf.utils.digest(doc, algorithm="sha256")


X1T = Path(__file__).resolve().parents[3].parent / "shared" / "reference" / "xenon1t_2018"
needs_x1t = pytest.mark.skipif(
    not (X1T / "XENON1T_binwise_NR_LL.json").is_file(), reason=f"XENON1T binwise release not found at {X1T}"
)


@needs_x1t
def test_binwise_effective_poisson_channel():
    """The effective Poisson channel reproduces every bin's lambda_r(s) to < 0.1 (in -2 ln L) and XENON1T's
    asymptotic limit from the release's own method to 5% (measured: 0.957-1.000 at 9 GeV-10 TeV)."""
    from dmpreserve.reinterpret.combine_outputs import binwise_check

    exp = load_experiment(X1T, name="x1t")
    assert exp.effective.max_abs_delta.max() < 0.1
    src = SignalSource(masses_gev=(9.0, 50.0, 1000.0), model=model_from_dict({"model": "si"}))
    table = signal_table([exp], src, StandardHalo.shm_2018(), None, progress=False)
    rows = binwise_check(exp, src, table, cl=0.9)
    assert len(rows) == 3
    for r in rows:
        assert abs(r["ratio"] - 1) < 0.05, r


@needs_x1t
def test_binwise_refusals(tmp_path, capsys):
    model = tmp_path / "er.yaml"
    model.write_text("model: er_line\nmasses_gev: [10]\n")
    si = tmp_path / "si.yaml"
    si.write_text("model: si\n")
    for argv in (
        ["--kit", str(X1T), "--model", str(model)],  # an ER line on the NR-only binwise likelihood
        ["--kit", str(X1T), "--kit", f"again={X1T}", "--model", str(si)],  # the same data twice
    ):
        out = tmp_path / "out"
        assert main(["combine", *argv, "--asymptotic", "--no-progress", "-o", str(out)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and str(X1T) in err[0] and not out.exists()


@needs_x1t
def test_halo_shifts_reach_every_kind_of_experiment(kits):
    """A model that names its own halo: the shifted halos must still reach every experiment's signal (pipeline
    kit and XENON1T's binwise channel; v_esc moves a 50 GeV total by only 4e-5, an inert shift by exactly 0),
    and equal the signal recomputed with a model carrying the shifted halo."""
    shm = {"rho0_gev_cm3": 0.3, "v0_km_s": 220.0, "v_esc_km_s": 544.0, "v_earth_km_s": 232.0}
    src = SignalSource(masses_gev=(10.0, 50.0), model=model_from_dict({"model": "si", "halo": shm}))
    halo, unc = StandardHalo(**shm), default_uncertainties()
    exps = [load_experiment(kits[0]), load_experiment(X1T, name="x1t")]
    table = signal_table(exps, src, halo, unc, progress=False)
    for exp in exps:
        for name, up, down in table.shifted[exp.name]:
            for shifted_halo, sig in zip(
                [h for n, h_up, h_dn in unc.variations(halo) if n == name for h in (h_up, h_dn)], (up, down)
            ):
                for i in range(len(src.masses_gev)):
                    nominal = np.asarray(table.nominal[exp.name][i][0][0][1]["data"]) / table.nominal[exp.name][i][1]
                    got = np.asarray(sig[i][0][0][1]["data"]) / sig[i][1]
                    assert abs(got.sum() / nominal.sum() - 1) > 1e-5, (exp.name, name, i)  # inert: exactly 0
                    shifted_src = dataclasses.replace(src, model=dataclasses.replace(src.model, halo=shifted_halo))
                    want = experiment_signals(exp, shifted_src, shifted_halo)[i]
                    np.testing.assert_allclose(got, np.asarray(want[0][0][1]["data"]) / want[1], rtol=1e-9)


def test_plot_limits_reads_a_combination(kits, tmp_path):
    """``plot-limits --result OUT`` draws a combination with its exposure, convention and mock label; a pipeline
    result's ``cm^2`` shares an axis with ``cm^2 (SI WIMP-nucleon)``, an SD limit does not."""
    from dmpreserve.artifacts.limits import read_limit_result

    a, b = kits
    model = tmp_path / "si.yaml"
    model.write_text("model: si\nmasses_gev: [10, 50, 300]\n")
    out = tmp_path / "comb"
    argv = ["combine", "--kit", str(a), "--kit", str(b), "--model", str(model), "--asymptotic", "--no-progress"]
    assert main([*argv, "-o", str(out)]) == 0
    res = read_limit_result(out / "combined_limits.json")
    exposures = [read_json(Path(k) / "kit.json")["exposure_t_yr"] for k in kits]
    assert res.headline == "pcl" and res.mock and res.exposure_t_yr == pytest.approx(sum(exposures))
    assert main(["plot-limits", "--result", str(out), "-o", str(tmp_path / "f.png")]) == 0
    from dmpreserve.cli.plotlimits import common_unit
    from dmpreserve.errors import InvalidData

    assert common_unit(["cm^2", "cm^2 (SI WIMP-nucleon)"]) == "cm^2 (SI WIMP-nucleon)"
    for bad in (["cm^2 (SI WIMP-nucleon)", "cm^2 (SD WIMP-neutron)"], ["cm^2", "pb"]):
        with pytest.raises(InvalidData, match="different units"):
            common_unit(bad)
