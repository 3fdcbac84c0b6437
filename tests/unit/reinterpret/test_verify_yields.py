"""dmpreserve verify-yields: the published background table, the comparison with fit.json's yields, the CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from dmpreserve.cli import main
from dmpreserve.errors import InvalidData
from dmpreserve.reinterpret.verify_yields import (
    COLUMNS,
    compare_yields,
    format_yields_table,
    read_published_yields,
)

REPO = Path(__file__).resolve().parents[3]
HEADER = ",".join(COLUMNS) + "\n"
#: sample, table_row, expected, expected_error, fit, fit_error_low, fit_error_high
GOOD = [
    ("er", "beta + det. ER", 100, 10, 110, 5, 10),
    ("ar37", "37Ar", "", "", 50, 8, 9),
]


def _write(path: Path, rows, header: str = HEADER, comments: str = "") -> Path:
    path.write_text(comments + header + "".join(",".join(str(v) for v in r) + "\n" for r in rows), encoding="utf-8")
    return path


def _yields(**rows: tuple[float, float, float]) -> list[dict]:
    return [
        {"sample": name, "prefit_events": pre, "postfit_events": post, "postfit_error": err}
        for name, (pre, post, err) in rows.items()
    ]


# ------------------------------------------------------------------------------------------------ reading


def test_read_skips_comments_and_allows_empty_expectation(tmp_path: Path) -> None:
    path = _write(tmp_path / "t.csv", GOOD, comments="# LZ-like table\n# second comment line\n")
    rows = read_published_yields(path)
    assert [r.sample for r in rows] == ["er", "ar37"]
    er, ar = rows
    assert (er.expected, er.expected_error, er.fit, er.fit_error_low, er.fit_error_high) == (100, 10, 110, 5, 10)
    assert er.table_row == "beta + det. ER"
    assert ar.expected is None and ar.expected_error is None and ar.fit == 50


def test_read_the_lz_ws2022_table() -> None:
    rows = read_published_yields(REPO / "workflow/analyses/lz_ws2022/published_yields.csv")
    by = {r.sample: r for r in rows}
    assert len(rows) == 9
    assert by["beta_detector_er"].expected == 215 and by["beta_detector_er"].fit == 222
    assert by["ar37"].expected is None and (by["ar37"].fit_error_low, by["ar37"].fit_error_high) == (8.9, 9.6)
    assert by["detector_neutrons"].fit_error_low == 0.0


@pytest.mark.parametrize(
    ("column", "value", "text"),
    [
        ("fit_events", "many", "not a number"),
        ("fit_error_high", "-1", ">= 0"),
        ("expected_events", "nan", "finite"),
        ("fit_error_low", "inf", "finite"),
        ("fit_events", "", "not a number"),  # only the expectation may be empty
    ],
)
def test_read_refuses_bad_numbers(tmp_path: Path, column: str, value: str, text: str) -> None:
    rows = [list(r) for r in GOOD]
    rows[1][COLUMNS.index(column)] = value
    path = _write(tmp_path / "t.csv", rows)
    with pytest.raises(InvalidData, match=text) as info:
        read_published_yields(path)
    assert info.value.path == str(path) and info.value.field == column
    assert "data row 2" in str(info.value)


def test_read_refuses_missing_column(tmp_path: Path) -> None:
    header = HEADER.replace(",fit_error_high", "")
    path = _write(tmp_path / "t.csv", [r[:-1] for r in GOOD], header=header)
    with pytest.raises(InvalidData, match="missing") as info:
        read_published_yields(path)
    assert info.value.path == str(path) and info.value.field == "fit_error_high"


def test_read_refuses_duplicate_sample(tmp_path: Path) -> None:
    path = _write(tmp_path / "t.csv", [*GOOD, GOOD[0]])
    with pytest.raises(InvalidData, match="'er' appears twice") as info:
        read_published_yields(path)
    assert info.value.path == str(path) and info.value.field == "sample"


def test_read_refuses_a_table_without_rows(tmp_path: Path) -> None:
    path = _write(tmp_path / "t.csv", [], comments="# nothing transcribed yet\n")
    with pytest.raises(InvalidData, match="no data rows") as info:
        read_published_yields(path)
    assert info.value.path == str(path)


# ------------------------------------------------------------------------------------------------ comparing


def test_pull_uses_the_error_on_the_side_of_the_deviation(tmp_path: Path) -> None:
    published = read_published_yields(_write(tmp_path / "t.csv", GOOD))
    # er: published 110 -5/+10; ours 118 is +0.8 sigma above (high error 10), 102 is -1.6 sigma below (low error 5)
    above = compare_yields(_yields(er=(100, 118, 4), ar37=(0, 50, 1)), published)
    below = compare_yields(_yields(er=(100, 102, 4), ar37=(0, 50, 1)), published)
    # (the published "110" is rounded to 1 event: half a unit, 0.5, adds in quadrature)
    assert above[0].pull == pytest.approx(8 / math.hypot(10, 0.5)) and above[0].ok
    assert below[0].pull == pytest.approx(-8 / math.hypot(5, 0.5)) and not below[0].ok and below[0].prefit_ok
    assert compare_yields(_yields(er=(100, 102, 4), ar37=(0, 50, 1)), published, nsigma=2.0)[0].ok
    # ar37: -8/+9, no expectation: any prefit count is fine
    ar = compare_yields(_yields(er=(100, 110, 4), ar37=(7.0, 59.0, 1)), published)[1]
    assert ar.pull == pytest.approx(9 / math.hypot(9, 0.5)) and ar.ok and ar.prefit_ok
    ar = compare_yields(_yields(er=(100, 110, 4), ar37=(7.0, 41.5, 1)), published)[1]
    assert ar.pull == pytest.approx(-8.5 / math.hypot(8, 0.5)) and not ar.ok


def test_zero_error_side_counts_as_a_hundredth_of_an_event(tmp_path: Path) -> None:
    published = read_published_yields(_write(tmp_path / "t.csv", [("n", "neutrons", "", "", 0.0, 0.0, 0.2)]))
    (row,) = compare_yields(_yields(n=(0.1, 0.15, 0.1)), published)
    assert row.pull == pytest.approx(0.15 / math.hypot(0.2, 0.05)) and row.ok  # "0.0": rounded to 0.1
    (row,) = compare_yields(_yields(n=(0.1, 0.0, 0.1)), published)
    assert row.pull == 0.0 and row.ok


def test_prefit_differing_by_more_than_one_percent_fails(tmp_path: Path) -> None:
    published = read_published_yields(_write(tmp_path / "t.csv", GOOD))
    ok = compare_yields(_yields(er=(100.9, 110, 4), ar37=(0, 50, 1)), published)[0]
    bad = compare_yields(_yields(er=(101.5, 110, 4), ar37=(0, 50, 1)), published)[0]
    assert ok.prefit_ok and ok.ok
    assert not bad.prefit_ok and not bad.ok and bad.pull == 0.0
    assert "PREFIT DIFFERS" in format_yields_table([ok, bad], nsigma=1.0)


def test_a_sample_missing_from_the_fit_is_bad_input(tmp_path: Path) -> None:
    published = read_published_yields(_write(tmp_path / "t.csv", GOOD))
    with pytest.raises(InvalidData, match="no sample 'ar37'") as info:
        compare_yields(_yields(er=(100, 110, 4), other=(1, 1, 1)), published, path="fit.json")
    assert info.value.path == "fit.json" and info.value.field == "sample"
    for nsigma in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(InvalidData, match="--nsigma"):
            compare_yields(_yields(er=(100, 110, 4), ar37=(0, 50, 1)), published, nsigma=nsigma)


def test_table_formats_every_row(tmp_path: Path) -> None:
    # an expectation without a published error is printed too
    rows = [*GOOD, ("xe", "127Xe", 9.2, "", 9.3, 0.8, 0.8)]
    published = read_published_yields(_write(tmp_path / "t.csv", rows))
    out = compare_yields(_yields(er=(100, 110, 4), ar37=(0, 50, 1), xe=(9.2, 9.3, 0.5)), published)
    text = format_yields_table(out, nsigma=1.0).splitlines()
    assert len(text) == 4 and "within 1 sigma" in text[0]
    assert text[1].startswith("er") and "110 +10/-5" in text[1] and text[1].endswith("ok")
    assert text[2].startswith("ar37") and " - " in text[2]
    assert text[3].startswith("xe") and "9.3 +- 0.8" in text[3]


# ------------------------------------------------------------------------------------------------ CLI


def _fit_json(path: Path, yields: list[dict] | None) -> Path:
    doc = {"twice_nll": 1.0, "method": "test", "parameters": []}
    if yields is not None:
        doc["yields"] = yields
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def test_cli_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    pub = str(_write(tmp_path / "t.csv", GOOD))
    good = str(_fit_json(tmp_path / "good.json", _yields(er=(100, 112, 4), ar37=(0, 52, 3))))
    off = str(_fit_json(tmp_path / "off.json", _yields(er=(100, 125, 4), ar37=(0, 52, 3))))  # er +1.5 sigma
    assert main(["verify-yields", "--fit", good, "--published", pub]) == 0
    out = capsys.readouterr().out
    assert f"published: {pub}" in out and "er" in out and "FAIL" not in out
    with pytest.raises(SystemExit) as info:
        main(["verify-yields", "--fit", off, "--published", pub])
    assert info.value.code == 1
    assert "FAIL" in capsys.readouterr().out
    assert main(["verify-yields", "--fit", off, "--published", pub, "--nsigma", "2"]) == 0
    capsys.readouterr()


@pytest.mark.parametrize(
    ("case", "field"),
    [("no_yields", "yields"), ("missing_sample", "sample"), ("bad_nsigma", "--nsigma"), ("nan_cell", "fit_events")],
)
def test_cli_bad_input_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture, case: str, field: str) -> None:
    pub = _write(tmp_path / "t.csv", GOOD)
    fit = _fit_json(tmp_path / "fit.json", _yields(er=(100, 112, 4), ar37=(0, 52, 3)))
    extra: list[str] = []
    named = fit
    if case == "no_yields":
        _fit_json(fit, None)
    elif case == "missing_sample":
        _fit_json(fit, _yields(er=(100, 112, 4)))
    elif case == "bad_nsigma":
        extra, named = ["--nsigma", "0"], None
    else:
        rows = [list(r) for r in GOOD]
        rows[0][COLUMNS.index("fit_events")] = "nan"
        _write(pub, rows)
        named = pub
    capsys.readouterr()
    assert main(["verify-yields", "--fit", str(fit), "--published", str(pub), *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("dmpreserve verify-yields: error: "), err
    prefix = "dmpreserve verify-yields: error: " + ("" if named is None else f"{named}: ")
    assert err[0].startswith(prefix + field), err[0]


@pytest.mark.parametrize(
    ("text", "half_unit"), [("0.15", 0.005), ("222", 0.5), ("52.5", 0.05), ("1.2e-3", 0.00005), ("0.0", 0.05)]
)
def test_rounding_of_last_printed_digit(text: str, half_unit: float) -> None:
    from dmpreserve.reinterpret.verify_yields import rounding_of

    assert rounding_of(text) == pytest.approx(half_unit)
