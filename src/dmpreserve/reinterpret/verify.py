"""Compare a limit curve with a reference curve (CI verification of published results).

The result curve is interpolated linearly in (log mass, log limit) at each reference mass inside the
compared range (never extrapolated); the ratio result / reference must lie within 1 +- rtol.
Curves are CSV files: either with a header naming ``mass_gev`` (or ``mass``, as the XENONnT 2026
release's limit files) and the limit column (``limits.csv``), or
header-less numeric rows (mass in GeV first, limit second, as in the XENON1T release's
``xenon1t_1ty.csv``), comma-separated or, in a line without a comma, separated by white space (the digitised
curves of cajohare/DirectDetectionPlots, e.g. LZ's); lines starting with ``#`` (or ``"#``) are comments.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import os

import numpy as np

from dmpreserve.errors import InvalidData
from dmpreserve.files import read_text


@dataclasses.dataclass(frozen=True)
class Curve:
    """A limit curve: masses [GeV] (increasing) and limits (cross section, cm^2)."""

    mass_gev: np.ndarray
    limit: np.ndarray
    path: str


@dataclasses.dataclass(frozen=True)
class Comparison:
    """One compared mass."""

    mass_gev: float
    reference: float
    result: float | None  # None: mass not covered by the result
    ratio: float | None
    ok: bool


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def read_curve(path: str | os.PathLike, *, column: str = "limit_cm2") -> Curve:
    """Read a limit curve (see the module docstring).

    Raises:
        InvalidData: unreadable file, missing column, non-numeric or non-positive values, repeated masses.
    """
    p = str(path)
    lines = [
        ln
        for ln in read_text(p, "limit curve").splitlines()
        if ln.strip() and not ln.lstrip().lstrip('"').startswith("#")
    ]
    # comma-separated, or white-space separated where a line has no comma (e.g. digitised curves: mass<TAB>limit)
    rows = [[c.strip() for c in next(csv.reader([ln]))] if "," in ln else ln.split() for ln in lines]
    if not rows:
        raise InvalidData("no data rows", path=p)
    i_mass, i_lim, start = 0, 1, 0
    if not _is_number(rows[0][0]):
        header = rows[0]
        mass_col = "mass" if "mass_gev" not in header and "mass" in header else "mass_gev"  # XENONnT 2026 release
        for name in (mass_col, column):
            if name not in header:
                raise InvalidData(
                    f"required column is missing (columns present: {', '.join(header)})", path=p, field=name
                )
        i_mass, i_lim, start = header.index(mass_col), header.index(column), 1
    masses, limits = [], []
    for n, r in enumerate(rows[start:], start=start + 1):
        try:
            m, v = float(r[i_mass]), float(r[i_lim])
        except (IndexError, ValueError):
            raise InvalidData(f"data row {n}: missing or non-numeric mass or limit", path=p, field=column) from None
        if not (math.isfinite(m) and m > 0 and math.isfinite(v) and v > 0):
            raise InvalidData(f"data row {n}: mass and limit must be positive and finite", path=p, field=column)
        masses.append(m)
        limits.append(v)
    order = np.argsort(masses)
    m_arr, l_arr = np.asarray(masses)[order], np.asarray(limits)[order]
    if np.any(np.diff(m_arr) <= 0):
        raise InvalidData("repeated mass", path=p, field="mass_gev")
    return Curve(m_arr, l_arr, p)


def parse_mass_range(text: str | None) -> tuple[float, float]:
    """``"A:B"`` [GeV] (either side may be empty) -> (A, B); None -> (0, inf)."""
    if text is None:
        return 0.0, math.inf
    parts = text.split(":")
    if len(parts) != 2:
        raise InvalidData(f"expected A:B in GeV, got {text!r}", field="--mass-range")
    try:
        lo = float(parts[0]) if parts[0].strip() else 0.0
        hi = float(parts[1]) if parts[1].strip() else math.inf
    except ValueError:
        raise InvalidData(f"A and B must be numbers, got {text!r}", field="--mass-range") from None
    if math.isnan(lo) or math.isnan(hi) or lo < 0 or hi <= lo:
        raise InvalidData(f"need 0 <= A < B, got {text!r}", field="--mass-range")
    return lo, hi


def compare(
    reference: Curve,
    result: Curve,
    *,
    rtol: float,
    mass_range: tuple[float, float] = (0.0, math.inf),
    require_coverage: bool = True,
) -> list[Comparison]:
    """Compare ``result`` with ``reference`` at the reference masses inside ``mass_range``.

    Args:
        reference: The reference (published) curve.
        result: The curve to check; interpolated in log-log, never extrapolated.
        rtol: Allowed relative deviation |result/reference - 1|.
        mass_range: (low, high) [GeV], inclusive.
        require_coverage: If True, reference masses outside the result's mass range fail; otherwise
            they are skipped.

    Raises:
        InvalidData: bad ``rtol`` or no reference mass to compare.
    """
    if not (math.isfinite(rtol) and rtol >= 0):
        raise InvalidData(f"must be a finite number >= 0, got {rtol!r}", field="--rtol")
    lo, hi = mass_range
    out = []
    lm, ll = np.log(result.mass_gev), np.log(result.limit)
    for m, ref in zip(reference.mass_gev, reference.limit):
        if not lo * (1 - 1e-9) <= m <= hi * (1 + 1e-9):
            continue
        covered = result.mass_gev[0] * (1 - 1e-9) <= m <= result.mass_gev[-1] * (1 + 1e-9)
        if not covered:
            if require_coverage:
                out.append(Comparison(float(m), float(ref), None, None, False))
            continue
        value = float(np.exp(np.interp(np.log(m), lm, ll))) if len(lm) > 1 else float(result.limit[0])
        ratio = value / float(ref)
        out.append(Comparison(float(m), float(ref), value, ratio, abs(ratio - 1.0) <= rtol))
    if not out:
        raise InvalidData("no reference mass inside the compared range", path=reference.path, field="mass_gev")
    return out


def format_table(rows: list[Comparison], *, rtol: float) -> str:
    """A fixed-width table of the comparison (one line per mass, then a summary)."""
    lines = [f"{'mass [GeV]':>12} {'reference':>12} {'result':>12} {'ratio':>9}  status (rtol {rtol:g})"]
    for r in rows:
        res = "-" if r.result is None else f"{r.result:12.4e}"
        ratio = "-" if r.ratio is None else f"{r.ratio:9.5f}"
        status = "ok" if r.ok else ("NOT COVERED" if r.result is None else "FAIL")
        lines.append(f"{r.mass_gev:12.5g} {r.reference:12.4e} {res:>12} {ratio:>9}  {status}")
    n_bad = sum(not r.ok for r in rows)
    ratios = [r.ratio for r in rows if r.ratio is not None]
    worst = max((abs(x - 1) for x in ratios), default=float("nan"))
    lines.append(f"{len(rows) - n_bad}/{len(rows)} masses within tolerance; largest |ratio - 1| = {worst:.3g}")
    return "\n".join(lines)
