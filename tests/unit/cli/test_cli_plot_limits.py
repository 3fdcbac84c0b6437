"""``dmpreserve plot-limits``: options, published curves from ../shared/reference, bad input (exit 2, one line)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dmpreserve.artifacts.limits import MOCK_DATA_TEXT, data_record
from dmpreserve.cli import main
from dmpreserve.publish.references import PUBLISHED, REFERENCE_DIR_ENV

REPO = Path(__file__).resolve().parents[3]
SHARED = REPO.parent / "shared" / "reference"
needs_shared = pytest.mark.skipif(
    not SHARED.is_dir(), reason=f"the published reference curves ({SHARED}) are not on this machine"
)
BANDS = ("expected_m2sigma_cm2", "expected_m1sigma_cm2", "expected_cm2", "expected_p1sigma_cm2", "expected_p2sigma_cm2")
COLUMNS = ("mass_gev", "limit_cm2", "limit_unconstrained_cm2", "limit_pcl_cm2", "limit_cls_cm2", *BANDS)


def _limits_json(folder: Path, *, mock: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for m in (10.0, 30.0, 100.0, 1000.0):
        base = 1e-47 * (m / 30.0 + 30.0 / m)
        rows.append({c: m if c == "mass_gev" else base * (1.0 + 0.1 * i) for i, c in enumerate(COLUMNS)})
    doc = {
        "cl": 0.9,
        "method": "m",
        "statistics": {"pcl_power": 0.16},
        "limits": rows,
        "data": data_record({"science": "mdc"} if mock else {"science": {"location": "x.csv"}}, 0.908),
    }
    path = folder / "limits.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def _one_line(capsys: pytest.CaptureFixture) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    err = [ln for ln in err if not ln.startswith(("WARNING", "INFO"))]
    assert len(err) == 1, err
    assert err[0].startswith("dmpreserve plot-limits: error: "), err
    return err[0]


def test_help_names_options_published_curves_and_an_example(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as info:
        main(["plot-limits", "--help"])
    assert info.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    for text in ("--result", "--convention", "--published", "--reference", "--reference-dir", REFERENCE_DIR_ENV):
        assert text in out
    for name in PUBLISHED:  # argparse may wrap a name at its hyphens
        assert name in out.replace("- ", "-")
    assert "mock data (NEST MDC)" in out and "Example: dmpreserve plot-limits" in out


def test_user_reference_and_result_directory(tmp_path: Path) -> None:
    _limits_json(tmp_path / "run" / "limits")
    ref = tmp_path / "mine.csv"
    ref.write_text("mass_gev,limit_cm2\n10,1e-45\n1000,1e-45\n", encoding="utf-8")
    out = tmp_path / "plot.svg"
    assert main(["plot-limits", "--result", str(tmp_path / "run"), "--reference", f"mine={ref}", "-o", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert "run, mock data (NEST MDC), 0.908 t yr, power-constrained (π_crit = 0.16)" in text
    assert "mine, exposure not stated, as given" in text


def test_convention_cls_and_labels(tmp_path: Path) -> None:
    path = _limits_json(tmp_path / "a", mock=False)
    out = tmp_path / "plot.svg"
    assert main(["plot-limits", "--result", f"LZ (ours)={path}", "--convention", "cls", "-o", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert "LZ (ours), 0.908 t yr, CLs" in text and MOCK_DATA_TEXT not in text


@needs_shared
def test_every_published_curve_is_drawn_and_the_file_is_reproducible(tmp_path: Path) -> None:
    path = _limits_json(tmp_path / "run")
    argv = ["plot-limits", "--result", str(path), "--reference-dir", str(SHARED), "--mass-range", "3:10000"]
    for name in PUBLISHED:
        argv += ["--published", name]
    assert main([*argv, "-o", str(tmp_path / "a.pdf")]) == 0
    assert main([*argv, "-o", str(tmp_path / "b.pdf")]) == 0
    assert (tmp_path / "a.pdf").read_bytes() == (tmp_path / "b.pdf").read_bytes()
    assert main([*argv, "-o", str(tmp_path / "a.svg")]) == 0
    text = (tmp_path / "a.svg").read_text(encoding="utf-8")
    for entry in PUBLISHED.values():
        assert f"{entry.experiment} (published), {entry.exposure_t_yr:.3g} t yr, {entry.convention}" in text


def test_missing_published_file_exits_2_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    argv = [
        "plot-limits",
        "--published",
        "lz-ws2022-pcl",
        "--reference-dir",
        str(tmp_path),
        "-o",
        str(tmp_path / "p.png"),
    ]
    assert main(argv) == 2
    line = _one_line(capsys)
    assert str(tmp_path / PUBLISHED["lz-ws2022-pcl"].file) in line and "--published" in line
    assert not (tmp_path / "p.png").exists()


@pytest.mark.parametrize(
    ("content", "field"),
    [
        ("mass_gev,limit_cm2\n10,1e-45\n100,nan\n", "limit_cm2"),
        ("mass,sigma\n10,1e-45\n", "limit_cm2"),
        ("10 1e-45\n10 2e-45\n", "mass_gev"),
        ("", None),
    ],
)
def test_corrupt_reference_csv_exits_2_naming_file_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture, content: str, field: str | None
) -> None:
    ref = tmp_path / "bad.csv"
    ref.write_text(content, encoding="utf-8")
    out = tmp_path / "p.png"
    assert main(["plot-limits", "--reference", f"bad={ref}", "-o", str(out)]) == 2
    line = _one_line(capsys)
    assert f"error: {ref}" in line and (field is None or f": {field}:" in line), line
    assert not out.exists()


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--reference", "nolabel.csv"], "--reference: expected LABEL=CSV"),
        (["--result", "{missing}"], "limits file not found"),
        (["--result", "{corrupt}"], "limits"),
        (["--result", "{dir}"], "no limits.json"),
        (["--result", "{good}", "--convention", "pcl", "--mass-range", "10:"], "--mass-range"),
        ([], "nothing to draw"),
    ],
)
def test_bad_options_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture, argv: list[str], needle: str) -> None:
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text('{"cl": 0.9, "limits": [', encoding="utf-8")
    (tmp_path / "empty").mkdir()
    good = _limits_json(tmp_path / "good")
    names = {"missing": tmp_path / "none.json", "corrupt": corrupt, "dir": tmp_path / "empty", "good": good}
    argv = [a.format(**names) for a in argv]
    out = tmp_path / "p.png"
    assert main(["plot-limits", *argv, "-o", str(out)]) == 2
    assert needle in _one_line(capsys)
    assert not out.exists()


def test_bad_output_suffix(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    good = _limits_json(tmp_path / "good")
    assert main(["plot-limits", "--result", str(good), "-o", str(tmp_path / "p.jpg")]) == 2
    assert "--output" in _one_line(capsys)
