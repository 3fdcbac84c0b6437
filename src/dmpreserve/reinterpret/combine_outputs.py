"""Running a combination and writing its outputs (``dmpreserve combine``; docs/combination.md).

Outputs in OUT/ (every JSON with sorted keys, every random stream seeded: reruns are byte-identical):

* ``combined_limits.csv`` -- the combined limits, columns ``dmpreserve.artifacts.limits.LIMIT_COLUMNS``
  (+ ``TOY_COLUMNS`` with toys): both conventions (power-constrained Neyman PLR ``limit_cm2`` /
  unconstrained ``limit_unconstrained_cm2``, and CLs ``limit_cls_cm2``) with their +-1/2 sigma bands;
* ``per_experiment_limits.csv`` -- ``experiment`` + the same columns, each experiment alone (same model, halo,
  nuisance parameters and statistics; a threshold table from toys of its own model);
* ``combined_limits.json`` -- schema ``schemas/combination.schema.json``: method, experiments, rows, the
  threshold table's provenance (digest of the joint workspace it was built from), the halo response table,
  the XENON1T approximation check;
* ``combined_workspace.json`` (background-only) + ``combined_patchset.json`` (``pyhf patchset verify`` passes);
* ``threshold_table.json`` -- the joint model's threshold table (toys only);
* ``halo_response.csv`` -- per experiment and mass, the expected signal per unit strength at the nominal halo
  and at +-1 sigma of each halo parameter;
* ``hepdata_limits.yaml`` -- HEPData table of the combined curve (validated);
* ``combined_limits.png`` / ``combined_limits.pdf`` -- the plot;
* ``combined_likelihood_hs3.json`` -- the joint likelihood in HS3 (:mod:`dmpreserve.publish.hs3`): the combined
  workspace plus the patch of the mass closest to :data:`HS3_REFERENCE_MASS_GEV`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from dmpreserve.artifacts.limits import EXPECTED_COLUMNS, csv_columns
from dmpreserve.artifacts.thresholds import ThresholdTable, write_threshold_table
from dmpreserve.files import atomic_write, dumps_json, write_csv, write_json
from dmpreserve.physics.halo import StandardHalo
from dmpreserve.publish import plots
from dmpreserve.publish.hs3 import workspace_to_hs3, write_hs3
from dmpreserve.publish.plot_limits import LimitCurve, plot_limits
from dmpreserve.reinterpret.combine import (
    Experiment,
    SignalSource,
    StatSettings,
    build_patchset,
    limits_for,
    merge_workspaces,
    signal_table,
)
from dmpreserve.reinterpret.combine_halo import HaloUncertainties
from dmpreserve.reinterpret.combine_x1t import fit_report
from dmpreserve.reinterpret.outputs import NO_SENSITIVITY, _validate_table, hepdata_table
from dmpreserve.schema import validate
from dmpreserve.stats.asymptotic import asymptotic_limits
from dmpreserve.stats.fit import reference_patch
from dmpreserve.stats.limits import MassLimit, method_text
from dmpreserve.stats.model import build_model

LOG = logging.getLogger("dmpreserve")
FORMAT = "dmpreserve-combination"
FORMAT_VERSION = 1
#: Mass [GeV] of the signal patch in the HS3 copy of the joint likelihood (closest in log mass).
HS3_REFERENCE_MASS_GEV = 50.0


@dataclasses.dataclass(frozen=True)
class Combination:
    """Result of :func:`run_combination` (``per_experiment``: name -> (limits, table or None))."""

    experiments: tuple[Experiment, ...]
    source: SignalSource
    halo: StandardHalo
    halo_uncertainties: HaloUncertainties | None
    stats: StatSettings
    cl: float
    workspace: dict[str, Any]
    patchset: dict[str, Any]
    limits: tuple[MassLimit, ...]
    table: ThresholdTable | None
    per_experiment: dict[str, tuple[tuple[MassLimit, ...], ThresholdTable | None]]
    no_sensitivity: tuple[float, ...]
    response: tuple[dict[str, Any], ...]
    binwise_check: tuple[dict[str, Any], ...]


def common_halo(experiments: list[Experiment], src: SignalSource) -> StandardHalo:
    """The model's halo; else the kits' halo where they all agree; else the Baxter et al. (2021) defaults."""
    if src.model is not None and src.model.halo is not None:
        return src.model.halo
    halos = {e.halo for e in experiments}
    if len(halos) == 1:
        return halos.pop()
    LOG.warning(
        "the kits used different halos (%s): every signal is recomputed with the Baxter et al. (2021) halo %s",
        "; ".join(f"{e.name}: {e.halo.as_dict()}" for e in experiments),
        StandardHalo().as_dict(),
    )
    return StandardHalo()


def binwise_check(exp: Experiment, src: SignalSource, table, *, cl: float) -> list[dict[str, Any]]:
    """Per mass: the asymptotic unconstrained limit of the effective Poisson channel alone (no halo nuisances)
    against the release's own binwise method (:meth:`BinwiseLikelihood.upper_limit`, asymptotic threshold)."""
    rows = []
    for i, m in enumerate(src.masses_gev):
        s = table.nominal[exp.name][i]
        if s is None:
            continue
        (ch, sample), ref = s[0][0], s[1]
        data = np.asarray(sample["data"], float)
        s_reco = np.zeros(exp.binwise.ll.shape[0])
        s_reco[exp.effective.bins] = data / exp.effective.signal_scale
        try:
            own = exp.binwise.upper_limit(s_reco, asymptotic=True) * ref
        except Exception as exc:  # beyond the tabulated range
            LOG.warning("binwise check at %g GeV: %s", m, exc)
            continue
        patch = {
            "metadata": {"name": "check", "values": [m]},
            "patch": [{"op": "add", "path": f"/channels/{ch}/samples/-", "value": sample}],
        }
        eff = asymptotic_limits(build_model(exp.workspace, patch), cl=cl).neyman * ref
        rows.append({"mass_gev": float(m), "release_method_cm2": own, "effective_poisson_cm2": eff, "ratio": eff / own})
    return rows


def run_combination(
    experiments: list[Experiment],
    src: SignalSource,
    *,
    halo_uncertainties: HaloUncertainties | None,
    stats: StatSettings,
    progress: bool = True,
) -> Combination:
    """Signals, joint workspace and patchset, combined and per-experiment limits (experiments already checked)."""
    experiments = sorted(experiments, key=lambda e: e.name)
    cl = experiments[0].cl
    halo = common_halo(experiments, src)
    table = signal_table(experiments, src, halo, halo_uncertainties, progress=progress)
    ws = merge_workspaces(experiments)
    ps, none = build_patchset(table, experiments, ws, src)
    LOG.info("joint likelihood: %d channels, %d patches", len(ws["channels"]), len(ps["patches"]))
    limits, thr = limits_for(ws, ps, cl=cl, stats=stats, progress=progress)
    per = {}
    for exp in experiments:
        if all(s is None for s in table.nominal[exp.name]):
            LOG.warning("%s expects no signal at any mass", exp.path)
            per[exp.name] = ((), None)
            continue
        ws_e = merge_workspaces([exp])
        ps_e, _ = build_patchset(table, [exp], ws_e, src, own_reference=True)
        lim_e, thr_e = limits_for(ws_e, ps_e, cl=cl, stats=stats, progress=progress)
        per[exp.name] = (tuple(lim_e), thr_e)
    response = tuple(
        {"experiment": e.name, "mass_gev": float(m), **table.response(e.name, i)}
        for e in experiments
        for i, m in enumerate(src.masses_gev)
    )
    checks = []
    for e in experiments:
        if e.kind == "binwise":
            checks += [{"experiment": e.name, **r} for r in binwise_check(e, src, table, cl=cl)]
    return Combination(
        tuple(experiments),
        src,
        halo,
        halo_uncertainties,
        stats,
        cl,
        ws,
        ps,
        tuple(limits),
        thr,
        per,
        none,
        response,
        tuple(checks),
    )


def _table_doc(table: ThresholdTable | None, workspace: dict[str, Any]) -> dict[str, Any] | None:
    if table is None:
        return None
    return {
        "file": "threshold_table.json",
        "sha256": hashlib.sha256(dumps_json(table.to_json()).encode()).hexdigest(),
        "built_from_workspace_sha256": _digest(workspace),
        "shape_mass_gev": [float(m) for m in table.shape_mass_gev],
        "shape_b_eff": [float(b) for b in table.shape_b_eff],
        "seed": int(table.seed),
        "toys_per_point": int(table.toys.min()),
    }


def _digest(doc: dict[str, Any]) -> str:
    import pyhf

    return pyhf.utils.digest(doc, algorithm="sha256")


def method(stats: StatSettings) -> str:
    """The ``method`` text (joint toys or asymptotic)."""
    text = method_text(toys=None if stats.asymptotic else "table", pcl_power=stats.pcl_power)
    if not stats.asymptotic:
        text += "; the threshold table is built from toys of the joint model (combined_workspace.json)"
    return text


def data_record(experiments) -> dict[str, Any]:
    """The ``data`` entry of ``combined_limits.json``: mock (any experiment mock data), legend text, summed exposure."""
    mock = [e.name for e in experiments if e.mock]
    exposures = [e.exposure_t_yr for e in experiments]
    doc: dict[str, Any] = {
        "mock": bool(mock),
        "description": "combination of "
        + ", ".join(e.name for e in experiments)
        + (f" (mock data: {', '.join(mock)})" if mock else ""),
    }
    if all(x is not None for x in exposures):
        doc["exposure_t_yr"] = float(sum(exposures))
    return doc


def _plot(comb: Combination, rows: list[dict[str, float]], per_rows: dict[str, list[dict[str, float]]]):
    """The combined curves (power-constrained with its band, CLs) and each experiment alone, with
    :func:`dmpreserve.publish.plot_limits.plot_limits` (legends state exposure, convention, mock data)."""
    exposures = [e.exposure_t_yr for e in comb.experiments]
    total = None if any(x is None for x in exposures) else float(sum(exposures))
    mock = any(e.mock for e in comb.experiments)
    m = [r["mass_gev"] for r in rows]
    band = [[r[k] for r in rows] for k in EXPECTED_COLUMNS]
    common = {"cl": comb.cl, "exposure_t_yr": total, "mock": mock}
    curves = [
        LimitCurve(
            label="combined",
            masses_gev=m,
            limits=[r["limit_cm2"] for r in rows],
            convention="pcl",
            pcl_power=comb.stats.pcl_power,
            band=band,
            **common,
        ),
        LimitCurve(
            label="combined", masses_gev=m, limits=[r["limit_cls_cm2"] for r in rows], convention="cls", **common
        ),
    ]
    by_name = {e.name: e for e in comb.experiments}
    alone = [
        LimitCurve(
            label=f"{name} alone",
            masses_gev=[r["mass_gev"] for r in rs],
            limits=[r["limit_cm2"] for r in rs],
            convention="pcl",
            pcl_power=comb.stats.pcl_power,
            exposure_t_yr=by_name[name].exposure_t_yr,
            mock=by_name[name].mock,
            cl=comb.cl,
        )
        for name, rs in sorted(per_rows.items())
        if rs
    ]
    unit = comb.source.strength_unit
    si = unit == "cm^2" or unit.startswith("cm^2 (SI")
    ylabel = plots.XSEC_LABEL if si else f"{comb.cl:.0%} CL upper limit [{unit}]"
    model = "SI WIMP-nucleon" if si else comb.source.label
    title = f"{model}, {comb.cl:.0%} CL: " + " + ".join(e.name for e in comb.experiments)
    return plot_limits(curves, alone, ylabel=ylabel, title=title)


def _clean(v):
    return None if isinstance(v, float) and not math.isfinite(v) else v


def write_combination(outdir: str | os.PathLike, comb: Combination, *, source_doc: dict[str, Any]) -> dict[str, str]:
    """Write every output (see the module docstring); returns name -> path."""
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    rows = [r.row() for r in comb.limits]
    cols = csv_columns(rows)
    per_rows = {name: [r.row() for r in lim] for name, (lim, _) in comb.per_experiment.items()}
    paths = {
        k: out / v
        for k, v in {
            "limits_csv": "combined_limits.csv",
            "limits_json": "combined_limits.json",
            "per_experiment": "per_experiment_limits.csv",
            "workspace": "combined_workspace.json",
            "patchset": "combined_patchset.json",
            "response": "halo_response.csv",
            "hepdata": "hepdata_limits.yaml",
            "png": "combined_limits.png",
            "pdf": "combined_limits.pdf",
            "table_md": "limits_table.md",
            "hs3": "combined_likelihood_hs3.json",
        }.items()
    }
    write_csv(paths["limits_csv"], cols, [[r[c] for c in cols] for r in rows])
    write_csv(
        paths["per_experiment"],
        ("experiment", *cols),
        [[name, *(r.get(c, float("nan")) for c in cols)] for name, rs in sorted(per_rows.items()) for r in rs],
    )
    write_json(paths["workspace"], comb.workspace)
    write_json(paths["patchset"], comb.patchset)
    if comb.table is not None:
        paths["thresholds"] = out / "threshold_table.json"
        write_threshold_table(paths["thresholds"], comb.table)
    resp_cols = sorted({k for r in comb.response for k in r} - {"experiment", "mass_gev"})
    write_csv(
        paths["response"],
        ("experiment", "mass_gev", *resp_cols),
        [[r["experiment"], r["mass_gev"], *(r.get(c, 0.0) for c in resp_cols)] for r in comb.response],
    )
    binwise = [e for e in comb.experiments if e.kind == "binwise"]
    doc = {
        "headline_convention": "pcl",
        "data": data_record(comb.experiments),
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "cl": comb.cl,
        "method": method(comb.stats),
        "statistics": {
            "asymptotic": comb.stats.asymptotic,
            "pcl_power": comb.stats.pcl_power,
            "toys_background": comb.stats.toys_background,
            "seed": comb.stats.seed,
        },
        "units": {"limit_cm2": comb.source.strength_unit, "mass_gev": "GeV/c^2"},
        "source": source_doc,
        "halo": comb.halo.as_dict(),
        "halo_uncertainties": None if comb.halo_uncertainties is None else comb.halo_uncertainties.to_json(),
        "experiments": [e.describe() for e in comb.experiments],
        "workspace_sha256": _digest(comb.workspace),
        "limits": rows,
        "per_experiment": dict(sorted(per_rows.items())),
        "per_experiment_threshold_tables": {
            name: _table_doc(t, {}) if t is not None else None for name, (_, t) in sorted(comb.per_experiment.items())
        },
        "threshold_table": _table_doc(comb.table, comb.workspace),
        "reference_strength": [float(p["metadata"]["reference_cross_section_cm2"]) for p in comb.patchset["patches"]],
        "no_sensitivity": [{"mass_gev": m, "reason": NO_SENSITIVITY} for m in comb.no_sensitivity],
        "binwise_approximation": {e.name: fit_report(e.effective) for e in binwise},
        "binwise_check": list(comb.binwise_check),
    }
    for t in doc["per_experiment_threshold_tables"].values():
        if t is not None:
            t.pop("built_from_workspace_sha256", None)
    doc = _json_clean(doc)
    validate(doc, "combination", path=str(paths["limits_json"]))
    write_json(paths["limits_json"], doc)
    table = hepdata_table(
        rows,
        strength_unit=comb.source.strength_unit,
        description=f"{comb.source.label}: combination of " + ", ".join(e.name for e in comb.experiments),
        cl=comb.cl,
        no_sensitivity=comb.no_sensitivity,
    )
    _validate_table(paths["hepdata"], table)
    with atomic_write(paths["hepdata"]) as tmp:
        Path(tmp).write_text(yaml.safe_dump(table, sort_keys=True, allow_unicode=True), encoding="utf-8")
    with atomic_write(paths["table_md"]) as tmp:
        Path(tmp).write_text(markdown_table(comb, rows, per_rows), encoding="utf-8")
    hs3_patch = reference_patch(comb.patchset, HS3_REFERENCE_MASS_GEV)
    write_hs3(paths["hs3"], workspace_to_hs3(comb.workspace, hs3_patch, name="combination"))
    fig = _plot(comb, rows, per_rows)
    plots.save_figure(fig, paths["png"])
    plots.save_figure(fig, paths["pdf"])
    return {k: str(v) for k, v in paths.items()}


def markdown_table(comb: Combination, rows, per_rows) -> str:
    """``limits_table.md``: per mass, each experiment alone and the combination (PCL headline; unconstrained,
    CLs and the median expected of the combination) [strength unit], 3 significant digits."""
    names = sorted(per_rows)
    per = {n: {r["mass_gev"]: r["limit_cm2"] for r in per_rows[n]} for n in names}
    head = ["mass [GeV]", *(f"{n} alone" for n in names), "combined (PCL)", "unconstrained", "CLs", "expected"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        m = r["mass_gev"]
        cells = [f"{m:.4g}", *(f"{per[n][m]:.3g}" if m in per[n] else "-" for n in names)]
        cells += [f"{r[c]:.3g}" for c in ("limit_cm2", "limit_unconstrained_cm2", "limit_cls_cm2", "expected_cm2")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _json_clean(obj):
    if isinstance(obj, dict):
        return {k: _json_clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_clean(v) for v in obj]
    return _clean(obj)
