"""dmpreserve verify: curve reading, log-log comparison, table and exit status."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from dmpreserve.cli import main
from dmpreserve.errors import InvalidData
from dmpreserve.reinterpret.verify import compare, parse_mass_range, read_curve

HEADER = "mass_gev,limit_cm2,expected_cm2\n"


def _write(path, rows, header=HEADER):
    path.write_text(header + "".join(",".join(str(v) for v in r) + "\n" for r in rows))
    return path


def test_loglog_interpolation_and_ratios(tmp_path) -> None:
    ref = _write(tmp_path / "ref.csv", [(10, 1e-46, 1), (100, 1e-45, 1)])
    # result at 1 and 1000 GeV on the power law sigma ∝ m: exact at the reference masses in log-log
    res = _write(tmp_path / "res.csv", [(1, 1e-47, 1), (1000, 1e-44, 1)])
    rows = compare(read_curve(ref), read_curve(res), rtol=1e-9)
    assert [r.ok for r in rows] == [True, True]
    assert all(r.ratio == pytest.approx(1.0, rel=1e-12) for r in rows)


def test_xenon1t_style_file_and_mass_range(tmp_path) -> None:
    ref = tmp_path / "x.csv"
    ref.write_text('"# XENON 2018",,,\n## mass, limit,\n6,2.0E-44,1\n20,5.0E-47,1\n50,5.0E-47,1  \n')
    curve = read_curve(ref)
    assert curve.mass_gev.tolist() == [6.0, 20.0, 50.0]
    res = _write(tmp_path / "r.csv", [(20, 5.2e-47, 0), (50, 5.0e-47, 0)])
    rows = compare(curve, read_curve(res), rtol=0.05, mass_range=parse_mass_range("20:"))
    assert [r.mass_gev for r in rows] == [20.0, 50.0] and all(r.ok for r in rows)
    rows = compare(curve, read_curve(res), rtol=0.05)  # 6 GeV not covered: fails
    assert rows[0].result is None and not rows[0].ok
    assert len(compare(curve, read_curve(res), rtol=0.05, require_coverage=False)) == 2


def test_cli_exit_status_and_table(tmp_path, capsys) -> None:
    ref = _write(tmp_path / "ref.csv", [(10, 1e-46, 1), (100, 1e-45, 1)])
    ok = _write(tmp_path / "ok.csv", [(10, 1.0000001e-46, 1), (100, 1e-45, 1)])
    bad = _write(tmp_path / "bad.csv", [(10, 1.2e-46, 1), (100, 1e-45, 1)])
    assert main(["verify", "--reference", str(ref), "--result", str(ok), "--rtol", "1e-6"]) == 0
    out = capsys.readouterr().out
    assert "2/2 masses within tolerance" in out
    with pytest.raises(SystemExit) as exc:
        main(["verify", "--reference", str(ref), "--result", str(bad), "--rtol", "0.1"])
    assert exc.value.code == 1
    assert "FAIL" in capsys.readouterr().out
    assert main(["verify", "--reference", str(ref), "--result", str(bad), "--rtol", "0.25"]) == 0
    assert main(["verify", "--reference", str(ref), "--result", str(bad), "--mass-range", "50:200"]) == 0


@pytest.mark.parametrize(
    "text, field",
    [
        ("mass_gev,other\n1,2\n", "limit_cm2"),
        (HEADER + "10,-1,1\n", "limit_cm2"),
        (HEADER + "10,nan,1\n", "limit_cm2"),
        (HEADER + "10,1e-46,1\n10,2e-46,1\n", "mass_gev"),
        (HEADER + "10,abc,1\n", "limit_cm2"),
    ],
)
def test_bad_curves(tmp_path, text: str, field: str) -> None:
    p = tmp_path / "c.csv"
    p.write_text(text)
    with pytest.raises(InvalidData) as err:
        read_curve(p)
    assert err.value.field == field and err.value.path == str(p)
    ok = _write(tmp_path / "ok.csv", [(10, 1e-46, 1)])
    assert main(["verify", "--reference", str(ok), "--result", str(p)]) == 2


@pytest.mark.parametrize("text", ["5", "a:b", "10:5", "-1:3", "nan:4"])
def test_bad_mass_range(text: str) -> None:
    with pytest.raises(InvalidData):
        parse_mass_range(text)
    assert parse_mass_range(None) == (0.0, math.inf)


# ---- white-space separated curves (digitised limits: a '# url' line, then "mass<TAB> sigma")

REPO = Path(__file__).resolve().parents[3]
LZ_NON_PCL = REPO.parent / "shared/reference/lz_ws2022/LZ_2022_non-power-constrained.txt"


def test_whitespace_curve_with_comment(tmp_path) -> None:
    p = tmp_path / "digitised.txt"
    p.write_text(
        "# https://arxiv.org/abs/2207.03764\n9.0\t 3.5e-46\n\n30.0   6.0e-48\n  1000.0 \t1.0e-46  \n100.0\t2e-47"
    )
    curve = read_curve(p)
    assert curve.mass_gev.tolist() == [9.0, 30.0, 100.0, 1000.0]  # sorted by mass
    assert curve.limit.tolist() == [3.5e-46, 6.0e-48, 2e-47, 1.0e-46]
    # the same curve as CSV compares equal, row by row
    res = _write(tmp_path / "res.csv", [(m, v, 1) for m, v in zip(curve.mass_gev, curve.limit)])
    assert all(r.ok and r.ratio == pytest.approx(1.0) for r in compare(curve, read_curve(res), rtol=1e-12))


@pytest.mark.parametrize(
    "text",
    ["# c\n9.0\t3.5e-46\n30.0\n", "# c\n9.0\tnan\n", "# c\n9.0\t-1e-46\n", "# c\n9.0 x\n"],
    ids=["one_field", "nan", "negative", "not_a_number"],
)
def test_bad_whitespace_curve(tmp_path, text: str) -> None:
    p = tmp_path / "c.txt"
    p.write_text(text)
    with pytest.raises(InvalidData) as err:
        read_curve(p)
    assert err.value.path == str(p) and err.value.field == "limit_cm2"


@pytest.mark.reference
@pytest.mark.skipif(not LZ_NON_PCL.is_file(), reason=f"LZ's digitised WS2022 limit not found at {LZ_NON_PCL}")
def test_lz_ws2022_published_curve() -> None:
    curve = read_curve(LZ_NON_PCL)
    assert len(curve.mass_gev) == 93
    i = int(curve.limit.argmin())
    assert curve.limit[i] == pytest.approx(5.93e-48, rel=0.01)
    assert curve.mass_gev[i] == pytest.approx(29.6, rel=0.02)
    assert curve.mass_gev[0] == pytest.approx(9.0, rel=0.01) and curve.mass_gev[-1] > 1000.0
