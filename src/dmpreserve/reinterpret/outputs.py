"""Outputs of a reinterpretation: limits.csv/.json, patchset.json, limit plot and a HEPData table."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from hepdata_validator.data_file_validator import DataFileValidator

from dmpreserve.artifacts.limits import csv_columns
from dmpreserve.errors import InvalidData
from dmpreserve.files import atomic_write, write_csv, write_json
from dmpreserve.publish import plots

HEPDATA_TABLE = "hepdata_limits.yaml"
#: Why a mass has no limit (``limits.json`` ``no_sensitivity`` and the HEPData table's qualifier).
NO_SENSITIVITY = "no expected signal in the analysis region (no limit)"
# Both conventions (Baxter et al., EPJC 81 (2021) 907): Neyman-constructed two-sided PLR t~mu limits, and CLs.
_CONVENTIONS = (
    ("limit_unconstrained_cm2", "Observed upper limit, unconstrained (Neyman construction, PLR t~mu)"),
    ("limit_cls_cm2", "Observed upper limit, CLs (asymptotic, q~mu)"),
)
#: The headline column's name per convention of ``limit_cm2``.
_HEADLINES = {
    "pcl": "Observed upper limit (headline: power-constrained, PCL)",
    "unconstrained": "Observed upper limit (headline: unconstrained, Neyman construction, PLR t~mu; no PCL)",
}


def limit_rows(limits) -> list[dict[str, float]]:
    """``limits.csv`` rows (``dmpreserve.artifacts.limits.csv_columns``) of a list of MassLimit."""
    return [r.row() for r in limits]


def hepdata_table(
    rows: list[dict[str, float]],
    *,
    strength_unit: str,
    description: str,
    cl: float,
    no_sensitivity: tuple[float, ...] = (),
    headline: str = "pcl",
) -> dict[str, Any]:
    """A HEPData data-table document (``independent_variables``/``dependent_variables``).

    ``headline``: the convention of ``limit_cm2`` (``pcl`` or ``unconstrained``), which names the first column;
    the other conventions follow.  Masses without sensitivity have no row; a qualifier lists them.
    """

    def values(col: str) -> list[dict[str, float]]:
        return [{"value": float(f"{r[col]:.6g}")} for r in rows]

    expected = values("expected_cm2")
    for v, r in zip(expected, rows):
        m = r["expected_cm2"]
        v["errors"] = [
            {
                "label": "1 sigma",
                "asymerror": {
                    "minus": float(f"{r['expected_m1sigma_cm2'] - m:.6g}"),
                    "plus": float(f"{r['expected_p1sigma_cm2'] - m:.6g}"),
                },
            },
            {
                "label": "2 sigma",
                "asymerror": {
                    "minus": float(f"{r['expected_m2sigma_cm2'] - m:.6g}"),
                    "plus": float(f"{r['expected_p2sigma_cm2'] - m:.6g}"),
                },
            },
        ]
    quals = [{"name": "CL", "value": f"{cl:.0%}"}, {"name": "Model", "value": description}]
    if no_sensitivity:
        masses = ", ".join(f"{m:g}" for m in no_sensitivity)
        quals.append({"name": "No sensitivity", "value": f"{masses} GeV: {NO_SENSITIVITY}"})
    return {
        "independent_variables": [{"header": {"name": "Mass", "units": "GeV"}, "values": values("mass_gev")}],
        "dependent_variables": [
            {
                "header": {"name": _HEADLINES[headline], "units": strength_unit},
                "qualifiers": quals,
                "values": values("limit_cm2"),
            },
            *(
                {"header": {"name": name, "units": strength_unit}, "qualifiers": quals, "values": values(col)}
                for col, name in _CONVENTIONS
                if col in rows[0] and not (headline == "unconstrained" and col == "limit_unconstrained_cm2")
            ),
            {
                "header": {"name": "Expected (median) upper limit", "units": strength_unit},
                "qualifiers": quals,
                "values": expected,
            },
        ],
    }


def _validate_table(path: Path, doc: dict[str, Any]) -> None:
    v = DataFileValidator()
    if not v.validate(file_path=str(path), data=doc):
        msgs = "; ".join(m.message for ms in v.get_messages().values() for m in ms)
        raise InvalidData(f"HEPData table does not validate: {msgs}", path=path)


#: How the Neyman thresholds were found (``statistics.neyman_threshold``), as the plot title says it.
_THRESHOLDS = {"asymptotic": "asymptotic", "table": "threshold table", "toys": "toys"}


def plot_title(result: Any, cl: float) -> str:
    """The limit plot's title of a :class:`~dmpreserve.reinterpret.engine.Reinterpretation`: the kit's analysis (or
    "Reinterpretation"), the model (or "user spectrum"), the CL (a fraction, e.g. 0.9) and how the thresholds were
    found (asymptotic, threshold table, toys)."""
    how = _THRESHOLDS.get(str(result.statistics.get("neyman_threshold")), "")
    return f"{result.analysis or 'Reinterpretation'}: {result.source.get('model', 'user spectrum')}, {cl:.0%} CL" + (
        f", {how}" if how else ""
    )


def write_outputs(
    outdir: str | os.PathLike, result, *, cl: float, method: str, data: dict[str, Any] | None = None
) -> dict[str, str]:
    """Write ``limits.csv``, ``limits.json``, ``patchset.json``, ``limits.png`` and the HEPData table.

    ``limits.json`` records the kit's ``data`` (mock or real data; None: not recorded by the kit) with the
    exposure of the reinterpreted signal (``data.exposure_t_yr``, for plot legends), the halo the signal was
    computed with (``halo``: the model's, else the kit's; null for user spectra), the structured statistics and
    the convention of ``limit_cm2`` (``headline_convention``).

    Returns:
        Output name -> path.
    """
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    rows = limit_rows(result.limits)
    paths = {
        "limits_csv": out / "limits.csv",
        "limits_json": out / "limits.json",
        "patchset": out / "patchset.json",
        "plot": out / "limits.png",
        "hepdata": out / HEPDATA_TABLE,
    }
    columns = csv_columns(rows)
    write_csv(paths["limits_csv"], columns, [[r[c] for c in columns] for r in rows])
    write_json(
        paths["limits_json"],
        {
            "cl": cl,
            "method": method,
            "statistics": result.statistics,
            "headline_convention": result.headline,
            "units": {"limit_cm2": result.strength_unit, "mass_gev": "GeV/c^2"},
            "source": result.source,
            "halo": None if result.signal.halo is None else dict(result.signal.halo),
            "limits": rows,
            "expected_events_at_reference": list(result.signal.expected_events),
            "reference_strength": list(result.signal.reference_cross_section_cm2),
            "no_sensitivity": [{"mass_gev": m, "reason": NO_SENSITIVITY} for m in result.no_sensitivity],
            "data": {**(data or {}), "exposure_t_yr": float(result.signal.exposure_t_yr)},
        },
    )
    write_json(paths["patchset"], result.patchset)
    cols = {c: np.array([r[c] for r in rows]) for c in plots.LIMIT_CURVE_COLUMNS if c in rows[0]}
    power = result.statistics.get("pcl_power")
    if result.headline == "unconstrained":  # the headline is that curve: not drawn twice
        cols.pop("limit_unconstrained_cm2", None)
        label = f"Observed {cl:.0%} CL limit (no power constraint)"
    else:
        label = f"Observed {cl:.0%} CL limit (power-constrained" + (f", π_crit = {power:g})" if power else ")")
    fig = plots.plot_limit_curve(
        **cols,
        title=plot_title(result, cl),
        label=label,
        references=result.references,
    )
    si = result.source.get("model") == "si"
    fig.axes[0].set_ylabel(plots.XSEC_LABEL if si else f"upper limit [{result.strength_unit.replace('^2', '²')}]")
    plots.save_figure(fig, paths["plot"])
    table = hepdata_table(
        rows,
        strength_unit=result.strength_unit,
        description=str(result.source.get("model", "user spectrum")),
        cl=cl,
        no_sensitivity=result.no_sensitivity,
        headline=result.headline,
    )
    text = yaml.safe_dump(table, sort_keys=True, allow_unicode=True)
    _validate_table(paths["hepdata"], table)
    with atomic_write(paths["hepdata"]) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")
    return {k: str(v) for k, v in paths.items()}
