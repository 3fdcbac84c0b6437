"""Published reference curves on the limit plot: write_limit_plot, ``dmpreserve plots --reference``, the config key."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dmpreserve.artifacts.limits import LimitTable
from dmpreserve.cli import main
from dmpreserve.config import config_from_dict
from dmpreserve.errors import InvalidConfig
from dmpreserve.publish import figures

MASS = np.geomspace(10.0, 1000.0, 6)


def _table() -> LimitTable:
    base = 1e-47 * (MASS / 30.0 + 30.0 / MASS)
    cols = {
        "mass_gev": MASS,
        "limit_cm2": 1.2 * base,
        "expected_cm2": base,
        "expected_m2sigma_cm2": 0.55 * base,
        "expected_m1sigma_cm2": 0.72 * base,
        "expected_p1sigma_cm2": 1.4 * base,
        "expected_p2sigma_cm2": 2.0 * base,
        "limit_unconstrained_cm2": 1.1 * base,
        "limit_cls_cm2": 1.3 * base,
    }
    return LimitTable(cols)


def _drawn(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, references) -> list:
    saved: list = []
    monkeypatch.setattr(figures.plots, "save_figure", lambda fig, path: saved.append((fig, Path(path).name)))
    figures.write_limit_plot(_table(), tmp_path, references)
    assert [name for _, name in saved] == ["limits.png", "limits.pdf"]
    return saved


def test_write_limit_plot_draws_the_reference_with_its_label(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    ref_mass = [1000.0, 10.0, 100.0]  # unsorted, as a digitised curve may be: drawn in mass order
    ref_limit = [3e-46, 2e-45, 4e-47]
    ((fig, _), _) = _drawn(monkeypatch, tmp_path, [("LZ 2022 (published)", ref_mass, ref_limit)])
    ax = fig.axes[0]
    (line,) = [ln for ln in ax.get_lines() if ln.get_label() == "LZ 2022 (published)"]
    # drawn in mass order, cut at our mass range by log-log interpolation
    lo, hi = float(MASS[0]), float(MASS[-1])
    xs = [x for x in (10.0, 100.0, 1000.0) if lo < x < hi]
    np.testing.assert_allclose(line.get_xdata(), [max(lo, 10.0), *xs, min(hi, 1000.0)])
    ref = dict(zip((10.0, 100.0, 1000.0), (2e-45, 4e-47, 3e-46)))
    inner = np.asarray(line.get_ydata())[1:-1]
    np.testing.assert_allclose(inner, [ref[x] for x in xs])
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend[-1] == "LZ 2022 (published)"
    assert legend[0].startswith("Power-constrained limit")


def test_reference_beyond_our_masses_does_not_stretch_the_axes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # a digitised curve extended to 1e15 GeV (DirectDetectionPlots' LZ power-constrained file does that)
    ((fig, _), _) = _drawn(monkeypatch, tmp_path, [("far", [10.0, 100.0, 1e15], [1e-45, 1e-46, 1e-30])])
    (line,) = [ln for ln in fig.axes[0].get_lines() if ln.get_label() == "far"]
    assert max(line.get_xdata()) <= float(MASS[-1]) * (1 + 1e-12)
    assert max(line.get_ydata()) < 1e-40


def test_write_limit_plot_without_references_has_no_extra_line(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    ((fig, _), _) = _drawn(monkeypatch, tmp_path, [])
    with_ref = _drawn(monkeypatch, tmp_path, [("ref", [10.0, 1000.0], [1e-46, 1e-45])])[0][0]
    assert len(with_ref.axes[0].get_lines()) == len(fig.axes[0].get_lines()) + 1
    assert "ref" not in [t.get_text() for t in fig.legends[0].get_texts()]


def test_write_limit_plot_writes_both_files(tmp_path: Path) -> None:
    figures.write_limit_plot(_table(), tmp_path, [("ref", [10.0, 1000.0], [1e-46, 1e-45])])
    assert (tmp_path / "limits.png").stat().st_size > 0 and (tmp_path / "limits.pdf").stat().st_size > 0


def _plots_argv(tmp_path: Path, reference: str) -> list[str]:
    # the references are read before every other input: the other paths need not exist
    argv = ["plots"]
    for name in ("limits", "templates", "signal", "selected", "cutflow", "acceptance", "fit"):
        argv += [f"--{name}", str(tmp_path / f"missing_{name}")]
    return [*argv, "--outdir", str(tmp_path / "out"), "--reference", reference]


@pytest.mark.parametrize("reference", ["published.csv", "=published.csv", "  =published.csv", "LZ="])
def test_cli_bad_reference_option_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture, reference: str) -> None:
    assert main(_plots_argv(tmp_path, reference)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("dmpreserve plots: error: --reference: expected LABEL=CSV"), err
    assert not (tmp_path / "out").exists()


def test_cli_bad_reference_file_exits_2_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    curve = tmp_path / "published.csv"
    curve.write_text("mass_gev,limit_cm2\n10,1e-45\n100,nan\n", encoding="utf-8")
    assert main(_plots_argv(tmp_path, f"LZ 2022={curve}")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"dmpreserve plots: error: {curve}: limit_cm2"), err


def _with_references(doc: dict[str, Any], refs: Any) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    out.setdefault("limits", {})["reference_curves"] = refs
    return out


def test_config_reference_curves(test_config_doc: dict[str, Any]) -> None:
    good = [{"label": "LZ 2022 (no PCL)", "path": "ref/lz.csv"}]
    cfg = config_from_dict(_with_references(test_config_doc, good), path="<config>")
    assert cfg["limits"]["reference_curves"] == good
    for bad, field in (
        ([{"label": "a=b", "path": "x.csv"}], "$.limits.reference_curves[0].label"),
        ([{"label": "", "path": "x.csv"}], "$.limits.reference_curves[0].label"),
        ([{"label": "x"}], "$.limits.reference_curves[0]"),
        ([{"label": "x", "path": "x.csv", "colour": "red"}], "$.limits.reference_curves[0]"),
    ):
        with pytest.raises(InvalidConfig) as info:
            config_from_dict(_with_references(test_config_doc, bad), path="<config>")
        assert info.value.field == field, (bad, info.value)
