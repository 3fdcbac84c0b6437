"""Handlers of ``dmpreserve limits`` and ``dmpreserve limits-point`` (scatter/gather over masses)."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from dmpreserve.config import AnalysisConfig, load_config
from dmpreserve.errors import InvalidData, InvalidWorkspace
from dmpreserve.io import read_json, write_csv, write_json
from dmpreserve.schemas import validate

LOG = logging.getLogger("dmpreserve")
POINT_VERSION = 1


def toy_settings(cfg: AnalysisConfig):
    """The configured :class:`~dmpreserve.stats.toys.ToySettings`, or None for asymptotic thresholds."""
    from dmpreserve.stats.toys import ToySettings

    st = cfg.statistics
    if st["neyman_threshold"] != "toys":
        return None
    return ToySettings(toys_per_mu=int(st["toys_per_mu"]), toys_background=int(st["toys_background"]),
                       mu_points=int(st["mu_points"]), seed=int(st["seed"]))


def _statistics_doc(cfg: AnalysisConfig) -> dict[str, Any]:
    st = cfg.statistics
    doc = {"neyman_threshold": st["neyman_threshold"], "pcl_power": float(st["pcl_power"])}
    if st["neyman_threshold"] == "toys":
        doc.update({k: int(st[k]) for k in ("toys_per_mu", "toys_background", "mu_points", "seed")})
    return doc


def run_limits_point(args: argparse.Namespace) -> None:
    """``dmpreserve limits-point``: all limits of the mass with the given index (one Snakemake job)."""
    from dmpreserve.commands import _read_likelihood
    from dmpreserve.limits import limit_for_patch, select_patches

    cfg = load_config(args.config)
    ws, ps = _read_likelihood(args.workspace, args.patchset)
    patches = select_patches(ps, cfg["limits"]["masses_gev"])
    if not 0 <= args.index < len(patches):
        raise InvalidWorkspace(f"mass index {args.index} outside 0..{len(patches) - 1}", path=args.patchset,
                               field="--index")
    cl = float(cfg["limits"]["cl"])
    patch = patches[args.index]
    try:
        result = limit_for_patch(ws, patch, cl=cl, pcl_power=float(cfg.statistics["pcl_power"]),
                                 toys=toy_settings(cfg), mass_index=args.index, progress=not args.no_progress)
    except InvalidWorkspace as exc:
        if exc.path is not None:
            raise
        raise InvalidWorkspace(exc.message, path=args.patchset,
                               field=f"patches[{patch['metadata']['name']}] {exc.field or ''}".strip()) from None
    row = result.row()
    LOG.info("m = %.6g GeV: PCL %.3e cm2 (unconstrained %.3e, CLs %.3e), z0 = %.2f", result.mass_gev,
             row["limit_cm2"], row["limit_unconstrained_cm2"], row["limit_cls_cm2"], result.z0)
    write_json(args.output, {"version": POINT_VERSION, "cl": cl, "mass_index": args.index,
                             "statistics": _statistics_doc(cfg), "limit": result.to_json()})


def _read_points(paths: list[str], *, cl: float, n_expected: int, statistics: dict[str, Any]):
    from dmpreserve.limits import MassLimit

    out = {}
    for path in paths:
        doc = read_json(path, what="limit point")
        if not isinstance(doc, dict) or doc.get("version") != POINT_VERSION:
            raise InvalidData(f"not a limit point file (version {POINT_VERSION})", path=path, field="version")
        if doc.get("cl") != cl:
            raise InvalidData(f"computed at CL {doc.get('cl')}, the configuration says {cl}", path=path, field="cl")
        if doc.get("statistics") != statistics:
            raise InvalidData("computed with other statistics settings than the configuration's", path=path,
                              field="statistics")
        index = doc.get("mass_index")
        if not isinstance(index, int) or not 0 <= index < n_expected or index in out:
            raise InvalidData(f"bad or duplicate mass index (expected 0..{n_expected - 1})", path=path,
                              field="mass_index")
        out[index] = MassLimit.from_json(doc.get("limit"), path=path)
    if len(out) != n_expected:
        raise InvalidData(f"{len(out)} limit points given, {n_expected} masses selected",
                          path=paths[0] if paths else None, field="--points")
    return [out[i] for i in sorted(out)]


def run_limits(args: argparse.Namespace) -> None:
    """``dmpreserve limits``: gather the per-mass points (or compute all masses here) into limits.csv/json."""
    from dmpreserve.commands import _read_likelihood
    from dmpreserve.limits import LIMIT_COLUMNS, TOY_COLUMNS, compute_limits, method_text, select_patches

    cfg = load_config(args.config)
    cl = float(cfg["limits"]["cl"])
    toys = toy_settings(cfg)
    ws, ps = _read_likelihood(args.workspace, args.patchset)
    if args.points:
        results = _read_points(args.points, cl=cl, n_expected=len(select_patches(ps, cfg["limits"]["masses_gev"])),
                               statistics=_statistics_doc(cfg))
    else:
        try:
            results = compute_limits(ws, ps, cl=cl, masses_gev=cfg["limits"]["masses_gev"],
                                     pcl_power=float(cfg.statistics["pcl_power"]), toys=toys,
                                     progress=not args.no_progress)
        except InvalidWorkspace as exc:
            if exc.path is not None:
                raise
            raise InvalidWorkspace(exc.message, path=args.patchset, field=exc.field) from None
    rows = [r.row() for r in results]
    columns = LIMIT_COLUMNS + (TOY_COLUMNS if rows and "p0_toys" in rows[0] else ())
    for r in rows:
        LOG.info("m = %8.4g GeV: PCL %.3e cm2, unconstrained %.3e, CLs %.3e (sensitivity %.3e), z0 %.2f",
                 r["mass_gev"], r["limit_cm2"], r["limit_unconstrained_cm2"], r["limit_cls_cm2"], r["expected_cm2"],
                 r["z0"])
    doc = {"cl": cl, "method": method_text(toys=toys is not None, pcl_power=float(cfg.statistics["pcl_power"])),
           "statistics": _statistics_doc(cfg), "limits": rows, "mu": [r.to_json() for r in results]}
    validate(doc, "limits", path=args.json)
    write_csv(args.csv, columns, [[r[c] for c in columns] for r in rows])
    write_json(args.json, doc)
