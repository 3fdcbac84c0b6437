"""The field's plot (publish.plot_limits): legends, bands, clipping, deterministic files; limits.json reading."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dmpreserve.artifacts.limits import MOCK_DATA_TEXT, data_record, read_limit_result
from dmpreserve.errors import InvalidData
from dmpreserve.publish import figures
from dmpreserve.publish.plot_limits import LimitCurve, clip_to_range, plot_limits
from dmpreserve.publish.plots import save_figure
from dmpreserve.publish.references import PUBLISHED, REFERENCE_DIR_ENV, reference_dir

MASS = np.geomspace(10.0, 1000.0, 7)
BASE = 1e-47 * (MASS / 30.0 + 30.0 / MASS)
BAND = np.array([0.5 * BASE, 0.7 * BASE, BASE, 1.4 * BASE, 2.0 * BASE])


def _result(**kw) -> LimitCurve:
    args = {
        "label": "this work",
        "masses_gev": MASS,
        "limits": 1.1 * BASE,
        "convention": "pcl",
        "pcl_power": 0.16,
        "band": BAND,
        "exposure_t_yr": 0.908,
        "mock": True,
    }
    args.update(kw)
    return LimitCurve(**args)


def _legend(fig) -> list[str]:
    return [t.get_text() for t in fig.legends[0].get_texts()]


def test_legend_states_label_exposure_convention_and_mock() -> None:
    ref = LimitCurve(
        label="LZ WS2022",
        masses_gev=[9.0, 30.0, 1e15],
        limits=[2e-46, 1.9e-47, 1e-30],
        convention="unconstrained",
        exposure_t_yr=0.9,
    )
    legend = _legend(plot_limits([_result()], [ref]))
    assert legend[0] == f"this work, {MOCK_DATA_TEXT}, 0.908 t yr, power-constrained (π_crit = 0.16)"
    assert "this work: median expected" in legend
    assert "this work: expected ±1σ" in legend and "this work: expected ±2σ" in legend
    assert legend[-1] == "LZ WS2022, 0.9 t yr, unconstrained"


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        ({"convention": "cls", "mock": False}, "this work, 0.908 t yr, CLs"),
        (
            {"convention": "unconstrained", "exposure_t_yr": None, "mock": False},
            "this work, exposure not stated, unconstrained",
        ),
        ({"convention": "unconstrained", "cl": 0.95, "mock": False}, "this work, 0.908 t yr, unconstrained, 95% CL"),
    ],
)
def test_legend_conventions(kw, expected) -> None:
    assert _result(**kw).legend() == expected


def test_no_band_no_band_entries_and_result_drawn_over_its_masses() -> None:
    fig = plot_limits([_result(band=None)], [])
    assert len(_legend(fig)) == 1
    (line,) = fig.axes[0].get_lines()
    np.testing.assert_allclose(line.get_xdata(), MASS)
    assert fig.axes[0].get_xlim() == pytest.approx((MASS[0], MASS[-1]))
    assert fig.axes[0].get_xscale() == "log" and fig.axes[0].get_yscale() == "log"


def test_references_clipped_to_the_results_masses_by_log_log_interpolation() -> None:
    ref = LimitCurve(label="far", masses_gev=[1e15, 5.0, 100.0], limits=[1e-30, 1e-44, 1e-46], convention="x")
    fig = plot_limits([_result(band=None)], [ref])
    (line,) = [ln for ln in fig.axes[0].get_lines() if ln.get_label().startswith("far")]
    x, y = np.asarray(line.get_xdata()), np.asarray(line.get_ydata())
    np.testing.assert_allclose(x, [10.0, 100.0, 1000.0])
    # independent log-log interpolation at 10 GeV between (5, 1e-44) and (100, 1e-46)
    t = np.log(10.0 / 5.0) / np.log(100.0 / 5.0)
    assert y[0] == pytest.approx(np.exp((1 - t) * np.log(1e-44) + t * np.log(1e-46)))
    assert y[1] == pytest.approx(1e-46)
    assert y[2] == pytest.approx(
        np.exp(np.log(1e-46) + np.log(1000 / 100) / np.log(1e15 / 100) * np.log(1e-30 / 1e-46))
    )
    assert max(y) < 1e-43  # the 1e15 GeV point cannot stretch the axis


def test_reference_outside_the_range_is_named_not_drawn() -> None:
    light = LimitCurve(label="light", masses_gev=[3.0, 6.0], limits=[1e-42, 1e-45], convention="x", exposure_t_yr=6.77)
    fig = plot_limits([_result(band=None)], [light], mass_range=(20.0, 1000.0))
    assert not [ln for ln in fig.axes[0].get_lines() if ln.get_label().startswith("light")]
    assert _legend(fig)[-1] == "outside 20-1000 GeV: light"
    (res,) = fig.axes[0].get_lines()
    assert min(res.get_xdata()) == pytest.approx(20.0)


def test_mass_range_and_curves_are_checked() -> None:
    with pytest.raises(InvalidData, match="mass_range"):
        plot_limits([_result()], mass_range=(100.0, 10.0))
    with pytest.raises(InvalidData, match=r"curves\[0\].limits"):
        plot_limits([_result(limits=np.r_[BASE[:-1], np.nan])])
    with pytest.raises(InvalidData, match=r"curves\[0\].band"):
        plot_limits([_result(band=BAND[:4])])
    with pytest.raises(InvalidData, match="nothing to draw"):
        plot_limits([], [])


def test_clip_to_range_inside_is_unchanged() -> None:
    m, v = clip_to_range(MASS, BASE, 1.0, 1e5)
    np.testing.assert_allclose(m, MASS)
    np.testing.assert_allclose(v, BASE)


@pytest.mark.parametrize("suffix", [".pdf", ".png", ".svg"])
def test_reruns_are_byte_identical(tmp_path: Path, suffix: str) -> None:
    ref = LimitCurve(label="ref", masses_gev=[10.0, 1000.0], limits=[1e-46, 1e-45], convention="unconstrained")
    a, b = tmp_path / f"a{suffix}", tmp_path / f"b{suffix}"
    save_figure(plot_limits([_result()], [ref]), a)
    save_figure(plot_limits([_result()], [ref]), b)
    assert a.read_bytes() == b.read_bytes()
    assert a.stat().st_size > 1000
    other = tmp_path / f"c{suffix}"
    save_figure(plot_limits([_result(label="other")], [ref]), other)
    assert other.read_bytes() != a.read_bytes()  # the comparison can fail


# ------------------------------------------------------------------------------ limits.json and the table


def _rows(columns=("mass_gev", "limit_cm2")) -> list[dict]:
    return [{c: float(m if c == "mass_gev" else 1e-46 * (i + 1)) for c in columns} for i, m in enumerate((10.0, 100.0))]


def test_read_limit_result_conventions(tmp_path: Path) -> None:
    path = tmp_path / "limits.json"
    full = ("mass_gev", "limit_cm2", "limit_unconstrained_cm2", "limit_pcl_cm2", "limit_cls_cm2")
    doc = {"cl": 0.9, "method": "x", "statistics": {"pcl_power": 0.5}, "limits": _rows(full)}
    doc["data"] = data_record({"science": "mdc"}, 1.5)
    path.write_text(json.dumps(doc), encoding="utf-8")
    res = read_limit_result(path)
    assert (res.headline, res.pcl_power, res.exposure_t_yr, res.mock) == ("pcl", 0.5, 1.5, True)
    assert res.curve("unconstrained")[0] == "unconstrained"
    assert res.curve(None)[2] is None  # no band columns
    # the release backend: no power constraint, so no PCL curve to draw
    doc = {"cl": 0.9, "method": "... no power constraint; ...", "limits": _rows(full), "data": {"exposure_t_yr": 6.77}}
    path.write_text(json.dumps(doc), encoding="utf-8")
    res = read_limit_result(path)
    assert (res.headline, res.mock, res.exposure_t_yr) == ("unconstrained", False, 6.77)
    with pytest.raises(InvalidData, match="not power-constrained"):
        res.curve("pcl")
    # the binwise backend: mass and limit only
    doc = {"cl": 0.9, "backend": "binwise", "limits": _rows()}
    path.write_text(json.dumps(doc), encoding="utf-8")
    res = read_limit_result(path)
    assert res.curve(None)[0] == "unconstrained"
    with pytest.raises(InvalidData, match="limit_cls_cm2"):
        res.curve("cls")


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({"cl": 0.9, "limits": []}, "limits"),
        ({"cl": 0.9, "limits": [{"mass_gev": 10.0}]}, "limits[].limit_cm2"),
        ({"cl": 0.9, "limits": [{"mass_gev": 10.0, "limit_cm2": -1.0}]}, "limit_cm2"),
        ({"cl": 1.5, "limits": [{"mass_gev": 10.0, "limit_cm2": 1e-46}]}, "cl"),
        ({"cl": 0.9, "limits": [{"mass_gev": 10.0, "limit_cm2": 1e-46}], "data": {"mock": "yes"}}, "data.mock"),
    ],
)
def test_read_limit_result_refuses_bad_documents(tmp_path: Path, doc, field: str) -> None:
    path = tmp_path / "limits.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(InvalidData) as info:
        read_limit_result(path)
    assert info.value.field == field and info.value.path == str(path)


def test_published_table_is_read_only_and_complete() -> None:
    with pytest.raises(TypeError):
        PUBLISHED["x"] = PUBLISHED["xenon1t-2018"]  # type: ignore[index]
    assert set(PUBLISHED) == {"xenon1t-2018", "lz-ws2022-unconstrained", "lz-ws2022-pcl", "xenonnt-2026-light-dm"}
    for name, entry in PUBLISHED.items():
        assert entry.name == name and entry.exposure_t_yr > 0 and entry.convention and "arXiv" in entry.citation


def test_reference_dir_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(REFERENCE_DIR_ENV, raising=False)
    assert reference_dir() == Path("../shared/reference")
    monkeypatch.setenv(REFERENCE_DIR_ENV, str(tmp_path))
    assert reference_dir() == tmp_path
    assert reference_dir("elsewhere") == Path("elsewhere")


def test_pipeline_limit_plot_legend_has_mock_exposure_and_power(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    path = tmp_path / "limits.json"
    rows = [{c: (m if c == "mass_gev" else 1e-46) for c in figures.plots.LIMIT_CURVE_COLUMNS} for m in (10.0, 100.0)]
    path.write_text(
        json.dumps({"cl": 0.9, "statistics": {"pcl_power": 0.16}, "limits": rows, "data": data_record({}, 0.908)}),
        encoding="utf-8",
    )
    res = read_limit_result(path)
    saved = []
    monkeypatch.setattr(figures.plots, "save_figure", lambda fig, p: saved.append(fig))
    figures.write_limit_plot(res.table, tmp_path, [], res)
    legend = _legend(saved[0])
    assert legend[0] == f"Power-constrained limit (PCL at π_crit = 0.16, headline), {MOCK_DATA_TEXT}, 0.908 t yr"
    assert MOCK_DATA_TEXT in saved[0].axes[0].get_title()


def _line_colors(fig) -> dict[str, str]:
    from matplotlib.colors import to_hex

    return {line.get_label(): to_hex(line.get_color()) for line in fig.axes[0].get_lines()}


def test_an_experiment_has_one_colour_in_every_figure() -> None:
    """LZ's curves share LZ's colour whatever their position among the references, in ``plot_limits`` and the
    pipeline's limit plot; curves of unknown experiments keep the style cycle."""
    from dmpreserve.publish.plots import EXPERIMENT_COLORS, experiment_color, plot_limit_curve

    colors = dict(EXPERIMENT_COLORS)
    assert experiment_color("LZ WS2022 published") == experiment_color("lz_ws2022 alone") == colors["lz"]
    assert experiment_color("XENONnT 2026") == colors["xenonnt"] != experiment_color("XENON1T 2018")
    assert experiment_color("my model") is None and len(set(colors.values())) == len(colors)

    def ref(label: str) -> LimitCurve:
        return LimitCurve(label=label, masses_gev=MASS, limits=2 * BASE, convention="unconstrained")

    first = plot_limits([_result()], [ref("LZ WS2022"), ref("XENONnT 2026"), ref("my model")])
    second = plot_limits([_result()], [ref("XENON1T 2018"), ref("lz_ws2024 alone"), ref("other")])
    c1 = {k.split(",")[0]: v for k, v in _line_colors(first).items()}
    c2 = {k.split(",")[0]: v for k, v in _line_colors(second).items()}
    assert c1["LZ WS2022"] == c2["lz_ws2024 alone"] == colors["lz"]
    assert c1["XENONnT 2026"] == colors["xenonnt"] and c2["XENON1T 2018"] == colors["xenon1t"]
    assert c1["my model"] not in colors.values() and c2["other"] not in colors.values()
    cols = ("limit_cm2", "expected_cm2", "expected_m2sigma_cm2", "expected_m1sigma_cm2")
    cols += ("expected_p1sigma_cm2", "expected_p2sigma_cm2")
    pipeline = plot_limit_curve(
        mass_gev=MASS,
        **dict.fromkeys(cols, BASE),
        references=[("mine", MASS, 3 * BASE), ("LZ WS2022 published, unconstrained", MASS, 2 * BASE)],
    )
    c3 = _line_colors(pipeline)
    assert c3["LZ WS2022 published, unconstrained"] == colors["lz"] and c3["mine"] not in colors.values()
