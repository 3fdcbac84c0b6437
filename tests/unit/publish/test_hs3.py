"""HS3 copies of the project's likelihoods: pyhs3's -ln L against pyhf's ``-logpdf`` on the same parameters.

For every workspace kind the project writes -- (a) the small test workspace (+ a synthetic one with every
modifier type), (b) the pipeline's workspace + the reference-mass patch, (c) the XENONnT template-release
kit, (d) the LZ WS2022 kit -- the negative log-likelihood is evaluated with pyhs3 (the HS3 document,
:func:`dmpreserve.publish.hs3_eval.hs3_nll_function`) and with pyhf (``model.logpdf`` with this project's
interpolation codes) at >= 5 parameter points: nominal, mu at several values, nuisance parameters at +-1
and +-2 sigma (beyond +-1 the interpolation codes differ), gammas moved.  Absolute values agree within
1e-6 relative once pyhf's constant for the staterror gammas it fixes is added (``pyhf_constant_offset``:
n_fixed * ln(2 pi) / 2, a pyhf artefact, not a parameter dependence); differences NLL(p) - NLL(p0) are
compared as well.  A perturbed parameter mapping must fail the comparison.

Real workspaces are read where they exist and skipped otherwise: results/ of this checkout (or the
directory in $DMPRESERVE_HS3_RESULTS, e.g. /work/main/results), ../shared/reference/xenonnt_2026_light_dm.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hs3_check import compare_with_pyhf as _compare
from small_likelihood import signal_patch, three_bin_workspace

from dmpreserve.errors import InvalidData
from dmpreserve.publish import hs3, hs3_eval

REPO = Path(__file__).resolve().parents[3]
RESULTS = Path(os.environ.get("DMPRESERVE_HS3_RESULTS", REPO / "results"))
XENONNT = REPO.parent / "shared" / "reference" / "xenonnt_2026_light_dm"
RTOL = 1e-6


SIDE_SHAPE = {"hi_data": [33.0, 12.5, 0.0, 4.1, 0.0], "lo_data": [28.0, 11.0, 0.0, 3.8, 0.0]}


def _every_modifier_workspace():
    """Two channels sharing a normsys and a histosys (one constraint each), staterror (a gamma pyhf fixes, an
    empty bin), lumi, shapesys (its gamma in the empty bin is one pyhf fixes too), free normfactor."""
    ws = three_bin_workspace()
    ch = ws["channels"][0]
    ch["samples"][0]["modifiers"] += [
        {"name": "shape_er", "type": "histosys", "data": {"hi_data": [22.0, 9.0, 5.5], "lo_data": [18.5, 11.0, 4.0]}},
        {"name": "stat_ch", "type": "staterror", "data": [2.0, 1.5, 1.0]},
        {"name": "lumi", "type": "lumi", "data": None},
    ]
    ws["channels"].append(
        {
            "name": "side",
            "samples": [
                {
                    "name": "er",
                    "data": [30.0, 12.0, 0.0, 4.0, 0.0],
                    "modifiers": [
                        {"name": "norm_er", "type": "normsys", "data": {"hi": 1.2, "lo": 0.85}},
                        {"name": "stat_side", "type": "staterror", "data": [3.0, 1.0, 0.0, 0.5, 0.0]},
                        {
                            "name": "shape_er",
                            "type": "histosys",
                            "data": {"hi_data": [33.0, 12.5, 0.0, 4.1, 0.0], "lo_data": [28.0, 11.0, 0.0, 3.8, 0.0]},
                        },
                    ],
                },
                {
                    "name": "nr",
                    "data": [5.0, 6.0, 0.5, 2.0, 0.0],
                    "modifiers": [
                        {"name": "rate_nr", "type": "normfactor", "data": None},
                        {"name": "bkg_unc", "type": "shapesys", "data": [1.0, 1.5, 0.5, 0.4, 0.0]},
                    ],
                },
            ],
        }
    )
    ws["observations"].append({"name": "side", "data": [33.0, 20.0, 1.0, 5.0, 0.0]})
    ws["measurements"][0]["config"]["parameters"].append(
        {"name": "lumi", "auxdata": [1.0], "sigmas": [0.03], "bounds": [[0.5, 1.5]], "inits": [1.0]}
    )
    return ws


def test_small_workspace_agrees_with_pyhf():
    worst, worst_diff = _compare(three_bin_workspace(), signal_patch("m50", 50.0), name="small")
    print(f"small: max relative difference {worst:.2e} (differences {worst_diff:.2e})")
    assert worst < RTOL and worst_diff < RTOL


def test_every_modifier_type_agrees_with_pyhf():
    ws = _every_modifier_workspace()
    worst, worst_diff = _compare(ws, signal_patch("m50", 50.0), name="every_modifier")
    print(f"every modifier: max relative difference {worst:.2e} (differences {worst_diff:.2e})")
    assert worst < RTOL and worst_diff < RTOL
    doc = hs3.workspace_to_hs3(ws, signal_patch("m50", 50.0), name="every_modifier")
    assert doc["misc"]["dmpreserve"]["kept_bins"]["side"] == [0, 1, 2, 3]  # the empty bin 4 is left out
    assert hs3.fixed_gammas(ws) == ["stat_side_bin_2", "stat_side_bin_4", "bkg_unc_bin_4"]
    assert hs3.pyhf_constant_offset(ws) == pytest.approx(np.log(2 * np.pi) + 1.0)


def test_perturbed_parameter_mapping_fails():
    """Swapping mu with a nuisance parameter's value, or moving one gamma, is seen by the comparison."""
    ws = _every_modifier_workspace()

    def swap(values):
        out = dict(values)
        out["mu"], out["norm_er"] = values["norm_er"] + 1.0, values["mu"] - 1.0
        return out

    def gamma(values):
        return values | {"stat_ch_bin_1": values["stat_ch_bin_1"] * 1.01}

    assert _compare(ws, signal_patch("m50", 50.0), name="x", perturb=swap)[0] > 100 * RTOL
    assert _compare(ws, signal_patch("m50", 50.0), name="x", perturb=gamma)[0] > RTOL


def test_document_is_valid_hs3_and_written_sorted(tmp_path):
    pyhs3 = hs3.import_pyhs3()

    doc = hs3.workspace_to_hs3(three_bin_workspace(), signal_patch("m50", 50.0), name="small")
    assert doc["metadata"]["hs3_version"] == hs3.HS3_VERSION
    assert {d["type"] for d in doc["distributions"]} == {"histfactory_dist"}
    mods = {m["type"]: m for s in doc["distributions"][0]["samples"] for m in s["modifiers"]}
    assert mods["normsys"]["data"]["interpolation"] == "code4"
    assert doc["analyses"][0]["parameters_of_interest"] == ["mu"]
    assert doc["misc"]["dmpreserve"]["patch"]["reference_cross_section_cm2"] == 1e-46
    path = tmp_path / "likelihood_hs3.json"
    hs3.write_hs3(path, doc)
    again = json.loads(path.read_text())
    assert again == json.loads(json.dumps(doc))
    assert list(again) == sorted(again)
    pyhs3.Workspace(**again)  # reads back
    assert hs3_eval.hs3_nll(again, {"mu": 1.0}) == pytest.approx(hs3_eval.hs3_nll(doc, {"mu": 1.0}), rel=1e-12)


def test_unmappable_inputs_are_refused():
    ws = three_bin_workspace()
    with pytest.raises(InvalidData, match="patch"):
        hs3.workspace_to_hs3(ws, [{"op": "remove", "path": "/channels/7"}], name="x")
    bad = copy.deepcopy(ws)
    bad["channels"][0]["samples"][0]["modifiers"].append({"name": "stat", "type": "staterror", "data": [0.0, 1.0, 1.0]})
    with pytest.raises(InvalidData, match="zero uncertainty"):
        hs3.workspace_to_hs3(bad, name="x")
    doc = hs3.workspace_to_hs3(ws, name="x")
    with pytest.raises(InvalidData, match="unknown HS3 parameter"):
        hs3_eval.hs3_nll(doc, {"nope": 1.0})


def _real(workspace: Path, patchset: Path, mass: float, name: str):
    if not workspace.is_file() or not patchset.is_file():
        pytest.skip(f"{workspace} or {patchset} absent (set DMPRESERVE_HS3_RESULTS to a results/ directory)")
    from dmpreserve.stats.fit import reference_patch

    ws = json.loads(workspace.read_text())
    patch = reference_patch(json.loads(patchset.read_text()), mass)
    worst, worst_diff = _compare(ws, patch, name=name)
    print(f"{name}: max relative difference {worst:.2e} (differences {worst_diff:.2e})")
    assert worst < RTOL and worst_diff < RTOL


@pytest.mark.slow
def test_pipeline_workspace_agrees_with_pyhf(pipeline_dir):
    """The test configuration's pipeline likelihood (staterror, normsys, histosys; run by the session fixture)."""
    lk = pipeline_dir / "likelihood"
    _real(lk / "BkgOnly.json", lk / "patchset.json", 50.0, "pipeline")


@pytest.mark.slow
def test_default_pipeline_workspace_agrees_with_pyhf():
    """The default run's likelihood (1584 bins), where a ``make run`` has left one in results/."""
    _real(RESULTS / "likelihood" / "BkgOnly.json", RESULTS / "likelihood" / "patchset.json", 50.0, "pipeline")


@pytest.mark.slow
def test_lz_ws2022_kit_agrees_with_pyhf():
    kit = RESULTS / "lz_ws2022" / "reinterpretation"
    _real(kit / "BkgOnly.json", RESULTS / "lz_ws2022" / "likelihood" / "patchset.json", 50.0, "lz_ws2022")


@pytest.mark.slow
@pytest.mark.reference
def test_xenonnt_release_kit_agrees_with_pyhf(tmp_path):
    if not XENONNT.is_dir():
        pytest.skip(f"{XENONNT} absent (the XENONnT 2026 light-DM release, see shared/reference/README.md)")
    out = tmp_path / "ntkit"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]))
    subprocess.run(
        [sys.executable, "-m", "dmpreserve", "import-release", "--release", str(XENONNT), "-o", str(out)],
        check=True,
        env=env,
        capture_output=True,
    )
    _real(out / "BkgOnly.json", out / "patchset_si.json", 6.0, "xenonnt_2026")
    kit_doc = json.loads((out / "likelihood_hs3.json").read_text())  # the kit's own HS3 copy
    assert kit_doc["misc"]["dmpreserve"]["patch"]["values"] == [6.0]
    assert "likelihood_hs3.json" in json.loads((out / "kit.json").read_text())["files"]


def test_pyhs3_import_leaves_logging_alone():
    """pyhs3 0.4.2 reconfigures logging at import (disable_existing_loggers, root level WARNING): through
    :func:`hs3.import_pyhs3` the ``dmpreserve`` logger keeps logging, the root keeps its level and handlers
    (a fresh interpreter, where pyhs3 is not imported yet; the bare import shows the effect)."""
    code = """
import logging, sys
logging.basicConfig(level=logging.INFO)
log, root = logging.getLogger("dmpreserve"), logging.getLogger()
before = root.handlers[:]
if sys.argv[1] == "bare":
    import pyhs3
else:
    from dmpreserve.publish.hs3 import import_pyhs3
    import_pyhs3()
print(log.disabled, root.level == logging.INFO, root.handlers == before)
"""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]))
    run = [
        subprocess.run([sys.executable, "-c", code, m], env=env, capture_output=True, text=True, check=True)
        for m in ("bare", "ours")
    ]
    assert run[0].stdout.split() == ["True", "False", "False"]  # what pyhs3 does on its own
    assert run[1].stdout.split() == ["False", "True", "True"]
