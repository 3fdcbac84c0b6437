"""Tests of dmpreserve.publish.plots: figures build from small arrays, bad input is refused, saving is deterministic."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure

from dmpreserve.errors import InvalidData
from dmpreserve.publish import plots, plots_fit


def _limits(n: int = 6) -> dict[str, np.ndarray]:
    mass = np.geomspace(10.0, 1000.0, n)
    base = 1e-47 * (mass / 30.0 + 30.0 / mass)
    return {
        "mass_gev": mass,
        "limit_cm2": 1.2 * base,
        "expected_cm2": base,
        "expected_m2sigma_cm2": 0.55 * base,
        "expected_m1sigma_cm2": 0.72 * base,
        "expected_p1sigma_cm2": 1.4 * base,
        "expected_p2sigma_cm2": 2.0 * base,
    }


def _space() -> dict:
    x = np.linspace(0.0, 80.0, 9)
    y = np.linspace(2.5, 4.5, 11)
    xc = 0.5 * (x[:-1] + x[1:])
    yc = 0.5 * (y[:-1] + y[1:])
    xx, yy = np.meshgrid(xc, yc, indexing="ij")
    bkg = 0.5 * np.exp(-0.5 * ((yy - 3.6) / 0.2) ** 2)
    bkg[0, 0] = 0.0  # empty bin must be tolerated (masked)
    sig = np.exp(-0.5 * ((yy - 3.0) / 0.15) ** 2) * np.exp(-xx / 20.0)
    return {
        "cs1_edges_phd": x,
        "log10_cs2_edges": y,
        "background_expected": bkg,
        "observed_cs1_phd": [5.0, 30.0, 60.0],
        "observed_log10_cs2": [3.5, 3.7, 3.1],
        "signal_expected": sig,
        "signal_label": "40 GeV/c² WIMP",
    }


def _labels(fig: Figure) -> tuple[str, str]:
    ax = fig.axes[0]
    return ax.get_xlabel(), ax.get_ylabel()


def test_limit_curve_axes_and_legend():
    lim = _limits()
    fig = plots.plot_limit_curve(**lim, title="test", references=[("published", lim["mass_gev"], lim["limit_cm2"])])
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    xlabel, ylabel = _labels(fig)
    assert "GeV/c²" in xlabel and "cm²" in ylabel
    texts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert texts[0] == "Observed 90% CL limit"
    assert "published" in texts and any("1\\sigma" in t for t in texts) and any("2\\sigma" in t for t in texts)


def test_mass_ticks_are_plain_numbers_over_a_narrow_range():
    """3-12 GeV (a light-DM search): ticks read 3, 4, 10, not 3x10^0; over decades the log labels stay."""
    narrow = {k: v[:4] for k, v in _limits(4).items()}
    narrow["mass_gev"] = np.array([3.0, 5.0, 8.0, 12.0])
    ax = plots.plot_limit_curve(**narrow).axes[0]
    fmt = ax.xaxis.get_minor_formatter()
    assert fmt(3.0, 0) == "3" and ax.xaxis.get_major_formatter()(10.0, 0) == "10"
    wide = plots.plot_limit_curve(**_limits()).axes[0]  # 10-1000 GeV
    assert wide.xaxis.get_major_formatter()(100.0, 0) != "100"


def test_limit_curve_rejects_bad_input():
    lim = _limits()
    bad = dict(lim, limit_cm2=lim["limit_cm2"][:-1])
    with pytest.raises(InvalidData, match="differ in length"):
        plots.plot_limit_curve(**bad)
    nan = dict(lim, expected_cm2=np.where(np.arange(6) == 2, np.nan, lim["expected_cm2"]))
    with pytest.raises(InvalidData, match="expected_cm2"):
        plots.plot_limit_curve(**nan)
    with pytest.raises(InvalidData, match="positive"):
        plots.plot_limit_curve(**dict(lim, limit_cm2=-lim["limit_cm2"]))
    with pytest.raises(InvalidData, match="references"):
        plots.plot_limit_curve(**lim, references=[("only a label",)])


def test_analysis_space():
    fig = plots.plot_analysis_space(**_space())
    xlabel, ylabel = _labels(fig)
    assert xlabel == "cS1 [phd]" and "cS2 / phd" in ylabel
    cbar_labels = [ax.get_ylabel() for ax in fig.axes[1:]]
    assert "expected background events / bin" in cbar_labels
    legend_texts = [t.get_text() for leg in fig.legends for t in leg.get_texts()]
    assert any("50%" in t for t in legend_texts) and any("90%" in t for t in legend_texts)
    assert any("Observed events (3)" in t for t in legend_texts)


def test_analysis_space_without_signal_and_events():
    space = _space()
    fig = plots.plot_analysis_space(
        cs1_edges_phd=space["cs1_edges_phd"],
        log10_cs2_edges=space["log10_cs2_edges"],
        background_expected=space["background_expected"],
        observed_cs1_phd=[],
        observed_log10_cs2=[],
    )
    assert isinstance(fig, Figure)


def test_analysis_space_shape_mismatch():
    space = _space()
    space["background_expected"] = space["background_expected"][:, :-1]
    with pytest.raises(InvalidData, match="background_expected"):
        plots.plot_analysis_space(**space)
    space = _space()
    space["signal_expected"] = space["signal_expected"].T
    with pytest.raises(InvalidData, match="signal_expected"):
        plots.plot_analysis_space(**space)
    space = _space()
    space["observed_log10_cs2"] = [3.0]
    with pytest.raises(InvalidData, match="observed"):
        plots.plot_analysis_space(**space)


def test_cutflow_pulls_acceptance():
    fig = plots.plot_cutflow(cuts=["all", "fiducial", "ROI"], events=[1000, 100, 0], efficiency=[1.0, 0.1, 0.0])
    assert fig.axes[0].get_yscale() == "log"
    annotations = [t.get_text() for t in fig.axes[0].texts]
    assert any("ε = 10%" in t for t in annotations)
    fig = plots_fit.plot_pulls(names=["a", "b"], pulls=[0.5, -2.5], errors=[0.9, 1.0])
    assert "theta" in fig.axes[0].get_xlabel()
    fig = plots.plot_acceptance(
        energy_kev=[5.0, 10.0, 20.0], acceptance=[0.2, 0.7, 0.8], acceptance_err=[0.02, 0.03, 0.03]
    )
    assert "keV" in fig.axes[0].get_xlabel()


def test_cutflow_pulls_acceptance_reject_bad_input():
    with pytest.raises(InvalidData, match="efficiency"):
        plots.plot_cutflow(cuts=["a", "b"], events=[10, 5], efficiency=[1.0, 1.5])
    with pytest.raises(InvalidData, match="differ in length"):
        plots_fit.plot_pulls(names=["a", "b"], pulls=[0.1], errors=[1.0])
    with pytest.raises(InvalidData, match="acceptance"):
        plots.plot_acceptance(energy_kev=[1.0], acceptance=[1.2], acceptance_err=[0.1])


@pytest.mark.parametrize("suffix", [".png", ".pdf"])
def test_save_figure_deterministic(tmp_path, suffix):
    fig = plots.plot_limit_curve(**_limits())
    first, second = tmp_path / f"a{suffix}", tmp_path / f"b{suffix}"
    plots.save_figure(fig, first)
    plots.save_figure(fig, second)
    assert first.read_bytes() == second.read_bytes()
    # A freshly built identical figure gives the same bytes as well.
    third = tmp_path / f"c{suffix}"
    plots.save_figure(plots.plot_limit_curve(**_limits()), third)
    assert third.read_bytes() == first.read_bytes()
    magic = b"\x89PNG" if suffix == ".png" else b"%PDF"
    assert first.read_bytes().startswith(magic)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([first.name, second.name, third.name])


def test_save_figure_rejects_unknown_suffix(tmp_path):
    fig = plots_fit.plot_pulls(names=["a"], pulls=[0.0], errors=[1.0])
    with pytest.raises(InvalidData, match="unsupported"):
        plots.save_figure(fig, tmp_path / "fig.jpg")
    assert list(tmp_path.iterdir()) == []


def test_limit_curve_both_conventions_legend_order():
    lim = _limits()
    fig = plots.plot_limit_curve(
        **lim,
        limit_unconstrained_cm2=0.8 * lim["limit_cm2"],
        limit_cls_cm2=1.1 * lim["limit_cm2"],
        expected_cls_cm2=1.2 * lim["expected_cm2"],
        label="PCL (headline)",
        band_label="PLR sensitivity",
    )
    ax = fig.axes[0]
    texts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert texts[0] == "PCL (headline)"
    assert texts[1].startswith("Unconstrained PLR") and texts[2].startswith("CLs limit")
    assert "CLs median expected" in texts and "PLR sensitivity median" in texts
    assert any("PLR sensitivity" in t and "1\\sigma" in t for t in texts)
    assert len(ax.get_lines()) == 5  # headline, unconstrained, CLs, CLs expected, median
    with pytest.raises(InvalidData, match="limit_cls_cm2"):
        plots.plot_limit_curve(**lim, limit_cls_cm2=lim["limit_cm2"][:-1])


def test_fit_plots():
    fig = plots_fit.plot_correlation(names=["mu", "a", "b"], matrix=[[1, 0.5, -0.2], [0.5, 1, 0], [-0.2, 0, 1]])
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["mu", "a", "b"]
    assert any(t.get_text() == "0.50" for t in fig.axes[0].texts)
    assert "correlation" in fig.axes[1].get_ylabel()
    mu = np.linspace(0, 2, 9)
    fig = plots_fit.plot_poi_scan(mu=mu, delta_twice_nll=(mu - 0.5) ** 2, mu_hat=0.5)
    levels = sorted(round(line.get_ydata()[0], 3) for line in fig.axes[0].get_lines()[1:4])
    assert levels == [1.0, 2.706, 4.0]
    assert "mu" in fig.axes[0].get_xlabel()
    fig = plots_fit.plot_best_fit_per_mass(
        mass_gev=[10, 50, 200],
        cross_section_hat_cm2=[0.0, 2e-47, 0.0],
        cross_section_hat_error_cm2=[1e-46, 1e-47, 3e-47],
    )
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log" and "cm²" in ax.get_ylabel()


def test_fit_plots_reject_bad_input():
    with pytest.raises(InvalidData, match="matrix"):
        plots_fit.plot_correlation(names=["a", "b"], matrix=[[1.0]])
    with pytest.raises(InvalidData, match="matrix"):
        plots_fit.plot_correlation(names=["a"], matrix=[[1.5]])
    with pytest.raises(InvalidData, match="delta_twice_nll"):
        plots_fit.plot_poi_scan(mu=[0, 1], delta_twice_nll=[0, -1])
    with pytest.raises(InvalidData, match="differ in length"):
        plots_fit.plot_poi_scan(mu=[0, 1, 2], delta_twice_nll=[0, 1])
    with pytest.raises(InvalidData, match="cross_section_hat"):
        plots_fit.plot_best_fit_per_mass(mass_gev=[10], cross_section_hat_cm2=[0.0], cross_section_hat_error_cm2=[0.0])
