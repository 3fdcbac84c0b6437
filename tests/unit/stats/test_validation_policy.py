"""One likelihood validation for every reader, masses without sensitivity, invalid fits never published."""

from __future__ import annotations

import copy
import logging
from typing import Any

import numpy as np
import pytest
from small_likelihood import signal_patch, three_bin_workspace

from dmpreserve.artifacts.likelihood import check_model, check_patches, validate_workspace
from dmpreserve.artifacts.signal_templates import SignalTemplates
from dmpreserve.errors import InvalidWorkspace
from dmpreserve.publish.hepdata_fit_tables import fit_tables
from dmpreserve.reinterpret.engine import split_visible
from dmpreserve.stats.fit import fit_all
from dmpreserve.stats.model import build_model

LO0 = "$.channels[0].samples[0].modifiers[0].data.lo"


def _patch(mass: float, signal=(0.5, 2.0, 3.0)) -> dict[str, Any]:
    return signal_patch(f"m{mass:g}", mass, signal)


@pytest.mark.parametrize("lo", [0.0, -0.5, float("inf")])
def test_normsys_lo_refused_alike_by_every_reader(lo: float) -> None:
    ws = three_bin_workspace()
    ws["channels"][0]["samples"][0]["modifiers"][0]["data"]["lo"] = lo
    errors = []
    for read in (lambda: validate_workspace(ws, path="ws.json"), lambda: check_model(ws, path="ws.json")):
        with pytest.raises(InvalidWorkspace) as info:
            read()
        errors.append(str(info.value))
    with pytest.raises(InvalidWorkspace) as info:  # the fast engine (limits-point)
        build_model(ws, _patch(10.0))
    assert info.value.field == LO0 and "positive and finite" in info.value.message
    with pytest.raises(InvalidWorkspace) as info:  # the fits: refused before any NaN fit
        fit_all(ws, {"patches": [_patch(10.0)]}, scan_points=3, gof_toys=0)
    assert info.value.field == LO0
    assert errors[0] == errors[1] and errors[0].startswith(f"ws.json: {LO0}: normsys 'norm_er': factor lo")


@pytest.mark.parametrize(
    ("mutate", "field", "text"),
    [
        (
            lambda ws: ws["channels"][0]["samples"][0]["modifiers"].append(
                {"name": "stat", "type": "shapesys", "data": [1.0] * 3}
            ),
            "$.channels[0].samples[0].modifiers[1].type",
            "not supported",
        ),
        (
            lambda ws: ws["channels"][0]["samples"][0]["modifiers"].extend(
                [{"name": "stat_a", "type": "staterror", "data": [1.0] * 3}]
                + [{"name": "stat_b", "type": "staterror", "data": [1.0] * 3}]
            ),
            "$.channels[0].samples[0].modifiers[2].name",
            "one staterror name per channel",
        ),
        (
            lambda ws: ws["channels"][0]["samples"][0]["modifiers"].append(
                {"name": "stat", "type": "staterror", "data": [1.0] * 2}
            ),
            "$.channels[0].samples[0].modifiers[1].data",
            "has 2 bins, the sample 3",
        ),
        (
            lambda ws: ws["measurements"][0]["config"]["parameters"][0].update(auxdata=[0.0]),
            "$.measurements[0].config.parameters[0].auxdata",
            "not supported",
        ),
        (
            lambda ws: ws["measurements"][0]["config"]["parameters"][0].update(fixed=True),
            "$.measurements[0].config.parameters[0]",
            "fixed",
        ),
        (
            lambda ws: ws["measurements"][0]["config"]["parameters"][0].update(bounds=[[5.0, 1.0]]),
            "$.measurements[0].config.parameters[0].bounds",
            "low < high",
        ),
        (
            lambda ws: ws["channels"][0]["samples"][0]["data"].__setitem__(1, -1.0),
            "$.channels[0].samples[0].data",
            ">= 0",
        ),
    ],
)
def test_unsupported_workspaces(mutate, field: str, text: str) -> None:
    ws = three_bin_workspace()
    mutate(ws)
    with pytest.raises(InvalidWorkspace) as info:
        check_model(ws, path="ws.json")
    assert info.value.field == field and text in info.value.message


def test_zero_signal_patch_is_refused() -> None:
    ws = three_bin_workspace()
    check_patches(ws, [_patch(10.0)])
    with pytest.raises(InvalidWorkspace) as info:
        check_patches(ws, [_patch(10.0), _patch(3.0, signal=(0.0, 0.0, 0.0))], path="ps.json")
    assert info.value.path == "ps.json" and info.value.field == "$.patches[1]"
    assert "'m3'" in info.value.message and "no sensitivity" in info.value.message
    with pytest.raises(InvalidWorkspace, match="no sensitivity"):
        build_model(ws, _patch(3.0, signal=(0.0, 0.0, 0.0)))


def _signal(totals) -> SignalTemplates:
    templates = np.array([[t / 2, t / 2] for t in totals])
    return SignalTemplates(
        masses_gev=tuple(float(i + 1) for i in range(len(totals))),
        reference_cross_section_cm2=(1e-45,) * len(totals),
        expected_events=tuple(totals),
        templates=templates,
        exposure_t_yr=1.0,
        model="m",
        halo=None,
        units={},
    )


def test_reinterpret_keeps_visible_masses(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="dmpreserve"):
        visible, invisible = split_visible(_signal([0.0, 3.0, 5.0]))
    assert visible.masses_gev == (2.0, 3.0) and invisible == (1.0,) and visible.templates.shape == (2, 2)
    assert "no sensitivity at 1 GeV" in caplog.text
    with pytest.raises(Exception, match="no mass gives expected signal") as info:
        split_visible(_signal([0.0, 0.0]))
    assert info.value.field == "masses_gev"


class _Table:
    def __init__(self, title, description="", **_):
        self.title, self.description, self.variables = title, description, []

    def add_variable(self, v):
        self.variables.append(v)


class _Variable:
    def __init__(self, name, values):
        self.name, self.values = name, list(values)

    def add_uncertainty(self, u):
        pass


class _Hdl:
    """A stand-in for hepdata_lib recording the tables' titles and values."""

    class Uncertainty:
        def __init__(self, *a, **k):
            self.values = []


def test_invalid_fits_are_not_published(monkeypatch: pytest.MonkeyPatch) -> None:
    import dmpreserve.publish.hepdata_fit_tables as mod

    monkeypatch.setattr(mod, "new_table", lambda hdl, title, **k: _Table(title, **k))
    monkeypatch.setattr(mod, "variable", lambda hdl, name, values, **k: _Variable(name, values))
    doc = fit_all(three_bin_workspace(), {"patches": [_patch(10.0), _patch(50.0)]}, scan_points=3, gof_toys=0).to_json()
    doc = copy.deepcopy(doc)
    doc["best_fit_per_mass"][0]["valid"] = False
    tables = fit_tables(_Hdl, doc, [])
    best = [t for t in tables if t.title == "Best-fit cross section"][0]
    assert {v.name: v.values for v in best.variables}["WIMP mass"] == [50.0]
    assert "not published: 10 GeV" in best.description
    doc["signal_plus_background"]["valid"] = False
    titles = [t.title for t in fit_tables(_Hdl, doc, [])]
    assert "Signal-plus-background fit" not in titles and "Profile likelihood scan" not in titles
