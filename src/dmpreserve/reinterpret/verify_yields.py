"""Compare the background-only fit's counts per component with a collaboration's published background table.

The published table is a CSV kept with the analysis (e.g. ``workflow/analyses/lz_ws2022/published_yields.csv``,
transcribed from arXiv:2207.03764, Table I), columns ``sample`` (the component's name in the configuration),
``table_row`` (the row's label in the paper), ``expected_events``, ``expected_error`` (empty: no prior),
``fit_events``, ``fit_error_low``, ``fit_error_high``; ``#`` lines are comments.  Our counts are the
``yields`` of ``fit.json`` (:mod:`dmpreserve.stats.yields`).  A component agrees when our postfit count lies
within ``nsigma`` published standard deviations of the published fit result (the error on the side of the
deviation; a zero error on that side counts as 0.01 events; half a unit of the fit result's last printed
digit, its rounding, is added in quadrature: "0.15 +- 0.01" compares as 0.15 +- 0.011), and our prefit count
equals the published expectation within 1 % (the configuration encodes the table).
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

from dmpreserve.errors import InvalidData
from dmpreserve.files import read_csv

COLUMNS = ("sample", "table_row", "expected_events", "expected_error", "fit_events", "fit_error_low", "fit_error_high")
#: Smallest published error used as the unit of deviation [events] (a "0.0 +0.2" row has no lower error).
MIN_ERROR_EVENTS = 0.01


@dataclasses.dataclass(frozen=True)
class PublishedYield:
    """One row of a published background table (counts in events)."""

    sample: str
    table_row: str
    expected: float | None
    expected_error: float | None
    fit: float
    fit_error_low: float
    fit_error_high: float
    fit_rounding: float = 0.0


def rounding_of(text: str) -> float:
    """Half a unit of the last printed digit of a published number (``"0.15"`` -> 0.005, ``"222"`` -> 0.5):
    the resolution of a value the paper rounded."""
    t = text.strip().lower()
    mantissa, _, exponent = t.partition("e")
    decimals = len(mantissa.split(".", 1)[1]) if "." in mantissa else 0
    return 0.5 * 10.0 ** (-decimals + (int(exponent) if exponent else 0))


@dataclasses.dataclass(frozen=True)
class YieldComparison:
    """Our prefit/postfit counts of one component against the published row; ``pull`` in published sigmas."""

    published: PublishedYield
    prefit: float
    postfit: float
    postfit_error: float
    pull: float
    prefit_ok: bool
    ok: bool


def _number(text: str, *, path: str, field: str, row: int, optional: bool = False) -> float | None:
    if optional and not text.strip():
        return None
    try:
        value = float(text)
    except ValueError:
        raise InvalidData(f"data row {row}: {text!r} is not a number", path=path, field=field) from None
    if not math.isfinite(value) or value < 0:
        raise InvalidData(f"data row {row}: must be finite and >= 0, got {text!r}", path=path, field=field)
    return value


def read_published_yields(path: str | os.PathLike) -> list[PublishedYield]:
    """Read a published background table (module docstring).

    Raises:
        InvalidData: naming the file and column: a missing column, a value that is not a finite number >= 0,
            a sample named twice, a table without data rows.
    """
    p = str(path)
    cols = read_csv(p, required=COLUMNS, what="published background table")
    rows = []
    for i in range(len(cols["sample"])):
        row = i + 1
        vals = {
            c: _number(cols[c][i], path=p, field=c, row=row, optional=c.startswith("expected")) for c in COLUMNS[2:]
        }
        rows.append(
            PublishedYield(
                cols["sample"][i].strip(),
                cols["table_row"][i].strip(),
                vals["expected_events"],
                vals["expected_error"],
                vals["fit_events"],
                vals["fit_error_low"],
                vals["fit_error_high"],
                rounding_of(cols["fit_events"][i]),
            )
        )
    if not rows:
        raise InvalidData("no data rows (nothing to compare)", path=p, field="sample")
    names = [r.sample for r in rows]
    for name in names:
        if names.count(name) > 1:
            raise InvalidData(f"sample {name!r} appears twice", path=p, field="sample")
    return rows


def compare_yields(
    yields: Sequence[Mapping[str, Any]], published: Sequence[PublishedYield], *, nsigma: float = 1.0, path: str = ""
) -> list[YieldComparison]:
    """Compare fit.json ``yields`` with the published rows (module docstring).

    Raises:
        InvalidData: a published sample that the fit does not have (naming it), or a bad ``nsigma``.
    """
    if not (math.isfinite(nsigma) and nsigma > 0):
        raise InvalidData(f"must be a finite number > 0, got {nsigma!r}", field="--nsigma")
    ours = {y["sample"]: y for y in yields}
    out = []
    for pub in published:
        if pub.sample not in ours:
            raise InvalidData(
                f"the fit has no sample {pub.sample!r} (samples: {', '.join(sorted(ours))})", path=path, field="sample"
            )
        y = ours[pub.sample]
        post, pre = float(y["postfit_events"]), float(y["prefit_events"])
        side = pub.fit_error_high if post >= pub.fit else pub.fit_error_low
        pull = (post - pub.fit) / math.hypot(max(side, MIN_ERROR_EVENTS), pub.fit_rounding)
        prefit_ok = pub.expected is None or abs(pre - pub.expected) <= 0.01 * max(pub.expected, MIN_ERROR_EVENTS)
        ok = abs(pull) <= nsigma and prefit_ok
        out.append(YieldComparison(pub, pre, post, float(y["postfit_error"]), pull, prefit_ok, ok))
    return out


def format_yields_table(rows: Sequence[YieldComparison], *, nsigma: float) -> str:
    """A fixed-width table: component, published expected and fit, ours prefit and postfit, pull, verdict."""
    head = (
        f"{'component':<20} {'published expected':>19} {'published fit':>17} {'ours prefit':>11} "
        f"{'ours postfit':>16} {'pull':>6}  within {nsigma:g} sigma"
    )
    lines = [head]
    for r in rows:
        p = r.published
        exp = "-" if p.expected is None else f"{p.expected:g}"
        exp += "" if p.expected is None or p.expected_error is None else f" +- {p.expected_error:g}"
        fit = (
            f"{p.fit:g} +- {p.fit_error_high:g}"
            if p.fit_error_low == p.fit_error_high
            else f"{p.fit:g} +{p.fit_error_high:g}/-{p.fit_error_low:g}"
        )
        verdict = "ok" if r.ok else ("PREFIT DIFFERS" if not r.prefit_ok else "FAIL")
        lines.append(
            f"{p.sample:<20} {exp:>19} {fit:>17} {r.prefit:>11.3g} {r.postfit:>9.3g} +- {r.postfit_error:<4.2g} "
            f"{r.pull:>6.2f}  {verdict}"
        )
    return "\n".join(lines)
