"""Combination of preserved results: the joint likelihood of several experiments for one signal model.

Inputs (``dmpreserve combine --kit A --kit B ...``): pipeline kits (:mod:`dmpreserve.reinterpret.kit`),
template-release kits (:mod:`dmpreserve.reinterpret.release_kit`) and the XENON1T binwise release directory
(:mod:`dmpreserve.reinterpret.xenon1t`, as an effective Poisson channel: :mod:`.combine_x1t`).

Joint likelihood = the product of the experiments' likelihoods, as ONE pyhf workspace (:func:`merge_workspaces`):

* every channel and every nuisance parameter of experiment ``e`` is renamed ``e__<name>`` (:data:`SEP`), so
  no nuisance parameter is shared by accident; the observations are each experiment's own;
* one POI ``mu``: at each mass every experiment's ``signal`` sample carries the normfactor ``mu`` and is built
  with the experiment's own code (:mod:`.engine` for pipeline kits, :mod:`.release_kit` for template releases,
  the migration matrix for XENON1T), then rescaled so that mu = 1 is the same cross section sigma_ref in every
  experiment (sigma_ref = the smallest of the experiments' own reference strengths at that mass);
* optionally the halo nuisance parameters ``halo_rho0``, ``halo_v0``, ``halo_vesc`` shared by every signal
  sample (:mod:`.combine_halo`).

The limits are the project's statistics (:func:`dmpreserve.stats.limits.compute_limits`) on the joint
workspace and patchset; the Neyman thresholds come from a threshold table built from toys of the JOINT model
(:func:`dmpreserve.stats.thresholds.build_table`), or asymptotic (:class:`StatSettings`).
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pyhf

from dmpreserve.artifacts.likelihood import validate_patchset, validate_workspace
from dmpreserve.artifacts.thresholds import ThresholdTable
from dmpreserve.errors import InvalidData, InvalidSpectrum
from dmpreserve.files import dumps_json
from dmpreserve.physics.halo import StandardHalo
from dmpreserve.reinterpret.combine_halo import MODIFIERS
from dmpreserve.reinterpret.combine_signals import (  # noqa: F401 (re-exported)
    SIGNAL,
    Samples,
    SignalSource,
    SignalTable,
    _per_strength,
    experiment_signals,
    signal_table,
)
from dmpreserve.reinterpret.combine_x1t import EffectiveBinwise, binwise_digest, effective_poisson
from dmpreserve.reinterpret.kit import Kit, load_kit
from dmpreserve.reinterpret.release_kit import is_release_kit
from dmpreserve.reinterpret.xenon1t import PUBLISHED_MASSES_GEV, BinwiseLikelihood, is_binwise_release, load_binwise
from dmpreserve.stats.limits import MassLimit, compute_limits
from dmpreserve.stats.thresholds import TableSettings, build_table
from dmpreserve.stats.toys import ToySettings
from dmpreserve.stats.workspace import POI

LOG = logging.getLogger("dmpreserve")
#: Separator between an experiment's name and its own channel / nuisance-parameter names.
SEP = "__"
MEASUREMENT = "combination"
KINDS = ("pipeline", "template_release", "binwise")
#: XENON1T 2018 exposure [t yr] (278.8 live days x 1.3 t; PRL 121, 111302): the binwise release records none.
XENON1T_EXPOSURE_T_YR = 1.0


@dataclasses.dataclass(frozen=True)
class Experiment:
    """One preserved result in a combination.

    Attributes:
        name: Prefix of its channels and nuisance parameters ([a-z0-9_]).
        path: The kit or release directory.
        kind: ``pipeline``, ``template_release`` or ``binwise``.
        workspace: Its background-only pyhf workspace (own names; binwise: the effective Poisson channel).
        cl: Its confidence level.
        digest: sha256 of its observed data (pyhf observations, or the binwise likelihood table).
        halo: The halo its own result used.
        masses_gev: Its default mass grid.
        pcl_power: The critical power its pipeline used (None: not recorded).
        exposure_t_yr: Its exposure [t yr] (pipeline kits: ``kit.json``; template releases: the runs' livetimes
            summed; XENON1T 2018: 1.0, PRL 121, 111302); None if not recorded.
        mock: True for mock data (a pipeline kit of the NEST mock-data challenge, ``kit.json`` ``data.mock``).
        kit, binwise, effective: The loaded kit, or the binwise release and its effective channel.
    """

    name: str
    path: str
    kind: str
    workspace: dict[str, Any]
    cl: float
    digest: str
    halo: StandardHalo
    masses_gev: tuple[float, ...]
    pcl_power: float | None = None
    exposure_t_yr: float | None = None
    mock: bool = False
    kit: Kit | None = None
    binwise: BinwiseLikelihood | None = None
    effective: EffectiveBinwise | None = None

    def describe(self) -> dict[str, Any]:
        """The ``experiments`` entry of ``combined_limits.json``."""
        return {"name": self.name, "path": self.path, "kind": self.kind, "observed_sha256": self.digest}


def observed_digest(workspace: dict[str, Any]) -> str:
    """sha256 of a workspace's observations (sorted by channel name; the channel names themselves excluded)."""
    obs = sorted(workspace["observations"], key=lambda o: o["name"])
    return hashlib.sha256(dumps_json([o["data"] for o in obs]).encode()).hexdigest()


def default_name(path: str | os.PathLike) -> str:
    """Prefix of an experiment from its directory: its name, or its parent's for ``reinterpretation``/``kit``."""
    p = Path(path).resolve()
    stem = p.parent.name if p.name in ("reinterpretation", "kit", "") else p.name
    return re.sub(r"[^a-z0-9_]", "_", stem.lower()).strip("_") or "experiment"


def load_experiment(path: str | os.PathLike, *, name: str | None = None) -> Experiment:
    """Load a pipeline kit, a template-release kit or a binwise release directory.

    Raises:
        InvalidData: unreadable or modified kit (naming the file).
    """
    name = name or default_name(path)
    if not re.fullmatch(r"[a-z0-9_]+", name) or SEP in name:
        raise InvalidData(f"experiment name {name!r}: use [a-z0-9_] without {SEP!r}", path=path, field="--kit")
    if is_binwise_release(path):
        bw = load_binwise(path)
        eff = effective_poisson(bw)
        return Experiment(
            name=name,
            path=str(path),
            kind="binwise",
            workspace=eff.workspace(),
            cl=0.9,
            digest=binwise_digest(bw),
            halo=StandardHalo.shm_2018(),
            masses_gev=PUBLISHED_MASSES_GEV,
            exposure_t_yr=XENON1T_EXPOSURE_T_YR,
            binwise=bw,
            effective=eff,
        )
    kit = load_kit(path)
    if kit.unbinned:
        LOG.warning(
            "%s: the kit's limits are those of its unbinned likelihood; the combination uses its binned workspace",
            path,
        )
    st = kit.manifest.get("statistics_settings") or {}
    release = is_release_kit(kit)
    exposure = (
        sum(float(r["livetime_t_yr"]) for r in kit.manifest["runs"]) if release else kit.manifest.get("exposure_t_yr")
    )
    return Experiment(
        name=name,
        path=str(path),
        kind="template_release" if release else "pipeline",
        workspace=kit.workspace,
        cl=float(kit.manifest["cl"]),
        digest=observed_digest(kit.workspace),
        halo=StandardHalo(**kit.manifest["halo"]),
        masses_gev=tuple(float(m) for m in kit.manifest["masses_gev"]),
        pcl_power=float(st["pcl_power"]) if "pcl_power" in st else None,
        exposure_t_yr=None if exposure is None else float(exposure),
        mock=bool((kit.manifest.get("data") or {}).get("mock", False)),
        kit=kit,
    )


def check_experiments(experiments: list[Experiment]) -> None:
    """Refuse the same data twice (same observed-data digest, whatever the paths), duplicate names, mixed CL.

    Raises:
        InvalidData: one line naming both files.
    """
    seen: dict[str, Experiment] = {}
    names: dict[str, Experiment] = {}
    for e in experiments:
        if e.digest in seen:
            other = seen[e.digest]
            raise InvalidData(
                f"{other.path} and {e.path} hold the same observed data (sha256 {e.digest[:12]}...): "
                "an experiment cannot be combined with itself",
                path=e.path,
                field="--kit",
            )
        if e.name in names:
            raise InvalidData(
                f"{names[e.name].path} and {e.path} have the same name {e.name!r}: name them with --kit NAME=DIR",
                path=e.path,
                field="--kit",
            )
        seen[e.digest], names[e.name] = e, e
    cls = {e.cl for e in experiments}
    if len(cls) > 1:
        detail = ", ".join(f"{e.path}: {e.cl:g}" for e in experiments)
        raise InvalidData(f"the kits have different confidence levels ({detail})", path=experiments[0].path, field="cl")


# ---------------------------------------------------------------- the joint workspace


def _rename(name: str, exp: str) -> str:
    return name if name == POI or name in MODIFIERS.values() else f"{exp}{SEP}{name}"


def _prefixed_sample(sample: dict[str, Any], exp: str) -> dict[str, Any]:
    out = copy.deepcopy(sample)
    for mod in out["modifiers"]:
        mod["name"] = _rename(mod["name"], exp)
    return out


def merge_workspaces(experiments: list[Experiment]) -> dict[str, Any]:
    """The joint background-only workspace: every experiment's channels, observations and parameter settings,
    renamed ``<experiment>__<name>``; one measurement with the POI ``mu`` (bounds: the widest of the kits').

    Raises:
        InvalidWorkspace: the merged document fails pyhf's schema or the project's model checks.
    """
    channels, observations, parameters = [], [], []
    hi = 0.0
    for exp in experiments:
        ws = exp.workspace
        for ch in ws["channels"]:
            channels.append(
                {
                    "name": f"{exp.name}{SEP}{ch['name']}",
                    "samples": [_prefixed_sample(s, exp.name) for s in ch["samples"]],
                }
            )
        for obs in ws["observations"]:
            observations.append({"name": f"{exp.name}{SEP}{obs['name']}", "data": list(obs["data"])})
        for par in ws["measurements"][0]["config"].get("parameters", []):
            if par["name"] == POI:
                hi = max(hi, float(par["bounds"][0][1]))
                continue
            parameters.append({**copy.deepcopy(par), "name": _rename(par["name"], exp.name)})
    parameters.insert(0, {"name": POI, "bounds": [[0.0, hi or 50.0]], "inits": [1.0]})
    spec = {
        "channels": channels,
        "observations": observations,
        "measurements": [{"name": MEASUREMENT, "config": {"poi": POI, "parameters": parameters}}],
        "version": "1.0.0",
    }
    validate_workspace(spec)
    return spec


def channel_offsets(experiments: list[Experiment]) -> dict[str, int]:
    """Index of each experiment's first channel in the joint workspace."""
    out, k = {}, 0
    for exp in experiments:
        out[exp.name] = k
        k += len(exp.workspace["channels"])
    return out


def _halo_sample(
    sample: dict[str, Any],
    factor: float,
    per_strength: np.ndarray,
    variants: list[tuple[str, np.ndarray, np.ndarray]],
    rho0: tuple[float, float] | None,
) -> dict[str, Any]:
    """The sample scaled by ``factor`` with the halo modifiers (``variants``: (name, +1 sigma, -1 sigma) per unit
    strength, aligned with ``per_strength``)."""
    out = copy.deepcopy(sample)
    out["data"] = (np.asarray(out["data"], float) * factor).tolist()
    for mod in out["modifiers"]:
        if mod["type"] == "histosys":
            mod["data"] = {k: (np.asarray(v, float) * factor).tolist() for k, v in mod["data"].items()}
    if rho0 is not None:
        out["modifiers"].append(
            {"name": MODIFIERS["rho0_gev_cm3"], "type": "normsys", "data": {"hi": rho0[0], "lo": rho0[1]}}
        )
    t0 = float(per_strength.sum())
    nominal = np.asarray(out["data"], float)
    for name, up, down in variants:
        if not t0 > 0:
            continue
        sides = {}
        for side, v in (("hi", up), ("lo", down)):
            t = float(v.sum())
            sides[side] = (max(t / t0, 1e-6), v * (t0 / t) * (nominal.sum() / t0) if t > 0 else nominal)
        out["modifiers"].append({"name": name, "type": "normsys", "data": {"hi": sides["hi"][0], "lo": sides["lo"][0]}})
        out["modifiers"].append(
            {
                "name": name,
                "type": "histosys",
                "data": {
                    "hi_data": np.asarray(sides["hi"][1]).tolist(),
                    "lo_data": np.asarray(sides["lo"][1]).tolist(),
                },
            }
        )
    return out


def mass_patch(
    table: SignalTable,
    experiments: list[Experiment],
    index: int,
    *,
    mass: float,
    label: str,
    strength: float | None = None,
) -> dict[str, Any] | None:
    """The patch of mass ``index`` on the joint workspace of ``experiments``, mu x ``strength`` (default: the
    smallest of the experiments' reference strengths); None if no experiment expects signal."""
    present = [e for e in experiments if table.nominal[e.name][index] is not None]
    if not present:
        return None
    sigma = strength if strength is not None else min(table.nominal[e.name][index][1] for e in present)
    offsets = channel_offsets(experiments)
    ops = []
    for exp in present:
        samples, ref = table.nominal[exp.name][index]
        n = len(samples)
        variants = [
            (name, _per_strength(up[index], n), _per_strength(dn[index], n))
            for name, up, dn in table.shifted.get(exp.name, [])
        ]
        base = _per_strength(table.nominal[exp.name][index], n)
        for j, (ch, sample) in enumerate(samples):
            var = [
                (
                    name,
                    u[j] if u[j] is not None else np.zeros_like(base[j]),
                    d[j] if d[j] is not None else np.zeros_like(base[j]),
                )
                for name, u, d in variants
            ]
            s = _halo_sample(_prefixed_sample(sample, exp.name), sigma / ref, base[j], var, table.rho0)
            ops.append({"op": "add", "path": f"/channels/{offsets[exp.name] + ch}/samples/-", "value": s})
    tag = f"{mass:.6g}".replace(".", "p").replace("-", "m").replace("+", "")
    name = re.sub(r"[^a-zA-Z0-9_]", "_", f"{label}_m{tag}_GeV")
    return {
        "metadata": {"name": name, "values": [float(mass)], "reference_cross_section_cm2": float(sigma)},
        "patch": ops,
    }


def build_patchset(
    table: SignalTable,
    experiments: list[Experiment],
    workspace: dict[str, Any],
    src: SignalSource,
    *,
    own_reference: bool = False,
) -> tuple[dict[str, Any], tuple[float, ...]]:
    """The joint patchset (validated against ``workspace``) and the masses without any expected signal.

    ``own_reference``: mu x the (single) experiment's own reference strength instead of the common one.
    """
    patches, none = [], []
    for i, m in enumerate(src.masses_gev):
        strength = None
        if own_reference and table.nominal[experiments[0].name][i] is not None:
            strength = table.nominal[experiments[0].name][i][1]
        p = mass_patch(table, experiments, i, mass=m, label=src.label, strength=strength)
        (patches.append(p) if p is not None else none.append(float(m)))
    if not patches:
        raise InvalidSpectrum("no mass gives expected signal in any experiment", field="masses_gev")
    ps = {
        "metadata": {
            "name": f"combination_{src.label}",
            "description": f"signal hypotheses ({src.label}) of the combination of "
            + ", ".join(e.name for e in experiments)
            + f"; strength = mu x reference_cross_section_cm2 of each patch [{src.strength_unit}]"
            + "; values = [mass in GeV]",
            "digests": {"sha256": pyhf.utils.digest(workspace, algorithm="sha256")},
            "labels": ["mass_gev"],
            "references": {"hepdata": "ins0000000"},  # unpublished (pyhf requires an entry)
        },
        "patches": patches,
        "version": "1.0.0",
    }
    validate_patchset(ps, workspace)
    return ps, tuple(none)


# ---------------------------------------------------------------- statistics


@dataclasses.dataclass(frozen=True)
class StatSettings:
    """Statistics of the combination (the pipeline's conventions, docs/statistics.md).

    ``asymptotic``: chi2_1 thresholds and Asimov bands; else the Neyman thresholds come from a threshold table
    built from toys of the workspace the limits are computed on (the joint one for the combination),
    with ``table`` settings, and the bands from ``toys_background`` shared background-only toys.
    """

    asymptotic: bool = False
    pcl_power: float = 0.16
    toys_background: int = 200
    seed: int = 20260101
    signal_events: tuple[float, ...] = tuple(float(v) for v in np.geomspace(0.5, 40.0, 12))
    toys_per_point: int = 500
    reference_masses_gev: tuple[float, ...] | None = None  # None: the masses nearest to 8, 40 and 1000 GeV
    failure_fraction: float = 0.01

    def table_settings(self, masses: tuple[float, ...]) -> TableSettings:
        """Threshold-table settings with the reference shapes at (a few of) ``masses``."""
        wanted = self.reference_masses_gev or (8.0, 40.0, 1000.0)
        arr = np.asarray(masses, float)
        refs = sorted({float(arr[int(np.argmin(np.abs(np.log(arr / w))))]) for w in wanted})
        return TableSettings(
            signal_events=self.signal_events,
            reference_masses_gev=tuple(refs),
            toys_per_point=self.toys_per_point,
            shards=1,
            seed=self.seed,
            failure_fraction=self.failure_fraction,
        )


def limits_for(
    workspace: dict[str, Any], patchset: dict[str, Any], *, cl: float, stats: StatSettings, progress: bool = True
) -> tuple[list[MassLimit], ThresholdTable | None]:
    """The limits of every patch, with a threshold table from toys of THIS workspace's model (or asymptotic)."""
    if stats.asymptotic:
        return compute_limits(workspace, patchset, cl=cl, pcl_power=stats.pcl_power, progress=progress), None
    masses = tuple(float(p["metadata"]["values"][0]) for p in patchset["patches"])
    settings = stats.table_settings(masses)
    with tempfile.TemporaryDirectory(prefix="dmpreserve-combine-") as tmp:
        LOG.info(
            "threshold table from toys of this model: %d shapes (%s GeV) x %d points x %d toys",
            len(settings.reference_masses_gev),
            ", ".join(f"{m:g}" for m in settings.reference_masses_gev),
            len(settings.signal_events),
            settings.toys_per_point,
        )
        table = build_table(workspace, patchset, settings, cl=cl, workdir=tmp, progress=progress)
    toys = ToySettings(mode="table", toys_background=stats.toys_background, toys_per_mu=1, seed=stats.seed)
    limits = compute_limits(
        workspace, patchset, cl=cl, pcl_power=stats.pcl_power, toys=toys, table=table, progress=progress
    )
    return limits, table
