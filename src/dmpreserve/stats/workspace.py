"""Serialized likelihood: a pyhf background-only workspace plus a signal patchset (one patch per mass).

The workspace has one channel over the flattened analysis bins, one sample per background with its
rate constraint (``normsys`` log-normal, ``histosys`` Gaussian or a free ``normfactor``) and, where its
template comes from a finite simulation or sample, the shared ``staterror``; and the observed counts
(:func:`build_workspace`).  Each patch adds the ``signal`` sample with the normfactor ``mu``; the
cross section is ``mu x reference_cross_section_cm2`` (in the patch metadata).  With a signal-efficiency
band (external efficiency curve, ``signal.json`` ``efficiency_lo``/``efficiency_hi``) the signal sample
also gets the ``normsys`` modifier :data:`SIGNAL_EFFICIENCY` with that mass's hi/lo factors.
"""

from __future__ import annotations

from typing import Any

import jsonpatch
import jsonpointer
import numpy as np
import pyhf

from dmpreserve.artifacts.likelihood import validate_patchset, validate_workspace
from dmpreserve.artifacts.signal_templates import SignalTemplates
from dmpreserve.artifacts.templates import BackgroundTemplates
from dmpreserve.errors import InvalidWorkspace

CHANNEL = "wimp_search"
MEASUREMENT = "wimp_si_limit"
POI = "mu"
#: Name of the signal-efficiency normsys (one nuisance parameter shared by every bin of the signal sample).
SIGNAL_EFFICIENCY = "signal_efficiency"


def patch_name(mass_gev: float, model: str = "si") -> str:
    """Patch name for a mass and signal model, e.g. ``wimp_si_m33p4_GeV``."""
    return f"wimp_{model}_m" + f"{mass_gev:.6g}".replace(".", "p").replace("+", "") + "_GeV"


#: The one staterror modifier shared by every sample with a per-bin statistical uncertainty (pyhf combines them
#: per bin: one gamma per bin with relative width sqrt(sum of sigma^2) / sum of nominal over those samples).
STATERROR = f"staterror_{CHANNEL}"


def rate_parameter(component: str) -> str:
    """Name of the normfactor of a free background rate, e.g. ``rate_ar37``."""
    return f"rate_{component}"


def constraint_parameter(component: str) -> str:
    """Name of the normsys (log-normal) or histosys (Gaussian) rate modifier of a component, e.g. ``norm_er``."""
    return f"norm_{component}"


def _modifiers(name: str, comp, data: np.ndarray) -> list[dict[str, Any]]:
    """pyhf modifiers of one background sample: its rate constraint and its staterror."""
    exp = float(comp.expected_events)
    rel = float(comp.uncertainty_events) / exp if exp > 0 else 1.0
    if comp.constraint == "free":
        mods = [{"name": rate_parameter(name), "type": "normfactor", "data": None}]
    elif comp.constraint == "gaussian":
        if not rel < 1:
            raise InvalidWorkspace(
                f"a Gaussian rate constraint needs a relative width below 1, got {rel:.4g}",
                field=f"components.{name}.uncertainty_events",
            )
        mods = [
            {
                "name": constraint_parameter(name),
                "type": "histosys",
                "data": {"hi_data": (data * (1.0 + rel)).tolist(), "lo_data": (data * (1.0 - rel)).tolist()},
            }
        ]
    else:
        mods = [
            {"name": constraint_parameter(name), "type": "normsys", "data": {"hi": 1.0 + rel, "lo": 1.0 / (1.0 + rel)}}
        ]
    if comp.stat_err is not None:
        err = np.asarray(comp.stat_err, float).ravel()
        if err.shape != data.shape or not np.all(np.isfinite(err)) or np.any(err < 0):
            raise InvalidWorkspace(
                "statistical uncertainties must be finite, >= 0, one per bin", field=f"components.{name}.stat_err"
            )
        mods.append({"name": STATERROR, "type": "staterror", "data": err.tolist()})
    return mods


def build_workspace(templates: BackgroundTemplates, *, poi_bounds: tuple[float, float]) -> dict[str, Any]:
    """The background-only pyhf workspace from the background templates (``templates.json``).

    One channel (:data:`CHANNEL`) over the flattened analysis bins; one sample per component with
    standard pyhf modifiers:

    * log-normal rate constraint (relative width r = uncertainty / expected): ``normsys`` ``norm_<component>``,
      hi = 1 + r, lo = 1 / (1 + r);
    * Gaussian rate constraint: ``histosys`` ``norm_<component>`` with hi_data = nominal x (1 + r) and
      lo_data = nominal x (1 - r) (pyhf's default interpolation is linear in the parameter: a Gaussian rate);
    * free rate: ``normfactor`` ``rate_<component>``, its bounds in the measurement's parameters;
    * per-bin statistical uncertainty of the template (``stat_err``): ``staterror`` :data:`STATERROR`
      (data = absolute uncertainty per bin; one modifier shared by all such samples, as pyhf expects).

    The measurement declares the POI ``mu`` and its bounds; ``mu`` enters the model through a patch
    (build a background-only model with ``workspace.model(poi_name=None)``).

    Raises:
        InvalidWorkspace: a template or uncertainty that is negative or not finite, a Gaussian width >= 1.
    """
    samples = []
    parameters = [{"name": POI, "bounds": [[float(poi_bounds[0]), float(poi_bounds[1])]], "inits": [1.0]}]
    for name in sorted(templates.components):
        comp = templates.components[name]
        data = np.asarray(comp.template, float).ravel()
        if not np.all(np.isfinite(data)) or np.any(data < 0):
            raise InvalidWorkspace("template has negative or non-finite entries", field=f"components.{name}.template")
        samples.append({"name": name, "data": data.tolist(), "modifiers": _modifiers(name, comp, data)})
        if comp.constraint == "free":
            lo, hi = comp.bounds
            parameters.append({"name": rate_parameter(name), "bounds": [[float(lo), float(hi)]], "inits": [1.0]})
    observed = np.asarray(templates.observed, float).ravel()
    spec = {
        "channels": [{"name": CHANNEL, "samples": samples}],
        "observations": [{"name": CHANNEL, "data": observed.tolist()}],
        "measurements": [{"name": MEASUREMENT, "config": {"poi": POI, "parameters": parameters}}],
        "version": "1.0.0",
    }
    validate_workspace(spec, engine="pyhf")
    return spec


def signal_modifiers(signal: SignalTemplates, index: int) -> list[dict[str, Any]]:
    """The modifiers of the signal sample of mass ``index``: the normfactor ``mu``, and with an efficiency band
    the normsys :data:`SIGNAL_EFFICIENCY` (hi/lo = expected signal with the upper/lower efficiency curve over
    the nominal one)."""
    modifiers: list[dict[str, Any]] = [{"name": POI, "type": "normfactor", "data": None}]
    if signal.efficiency_lo is not None and signal.efficiency_hi is not None:
        hi, lo = float(signal.efficiency_hi[index]), float(signal.efficiency_lo[index])
        modifiers.append({"name": SIGNAL_EFFICIENCY, "type": "normsys", "data": {"hi": hi, "lo": lo}})
    return modifiers


def build_patchset(workspace: dict[str, Any], signal: SignalTemplates, *, inspire_id: str) -> dict[str, Any]:
    """The signal patchset (pyhf schema), with the background-only workspace's sha256 digest.

    Each patch adds the ``signal`` sample with :func:`signal_modifiers` (``mu``; with an efficiency band also
    the ``signal_efficiency`` normsys).
    """
    n_bins = len(workspace["observations"][0]["data"])
    model = signal.model_name  # signal model (dmpreserve.physics.signal_models); names the patches
    patches = []
    for index, (mass, ref, tmpl) in enumerate(
        zip(signal.masses_gev, signal.reference_cross_section_cm2, signal.templates)
    ):
        data = np.asarray(tmpl, float)
        if data.size != n_bins:
            raise InvalidWorkspace(
                f"signal template has {data.size} bins, the workspace {n_bins}", field=f"templates[{mass}]"
            )
        patches.append(
            {
                "metadata": {"name": patch_name(mass, model), "values": [mass], "reference_cross_section_cm2": ref},
                "patch": [
                    {
                        "op": "add",
                        "path": "/channels/0/samples/-",
                        "value": {
                            "name": "signal",
                            "data": data.tolist(),
                            "modifiers": signal_modifiers(signal, index),
                        },
                    }
                ],
            }
        )
    description = (
        "SI WIMP signal hypotheses; sigma_SI = mu x reference_cross_section_cm2 of each patch; "
        "values = [WIMP mass in GeV]"
        if model == "si"
        else f"{model} signal hypotheses; signal strength = mu x reference_cross_section_cm2 of each patch "
        f"(unit: {signal.strength_unit}); "
        "values = [dark-matter mass in GeV]"
    )
    spec = {
        "metadata": {
            "name": f"wimp_{model}",
            "description": description,
            "digests": {"sha256": pyhf.utils.digest(workspace, algorithm="sha256")},
            "labels": ["mass_gev"],
            "references": {"hepdata": inspire_id},
        },
        "patches": patches,
        "version": "1.0.0",
    }
    validate_patchset(spec, workspace)
    return spec


def apply_patch(workspace: dict[str, Any], patchset: dict[str, Any], name: str) -> dict[str, Any]:
    """The signal-plus-background workspace spec for one patch."""
    for p in patchset["patches"]:
        if p["metadata"]["name"] == name:
            try:
                return jsonpatch.apply_patch(workspace, p["patch"])  # a patched copy
            except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as exc:
                raise InvalidWorkspace(
                    f"patch {name!r} does not apply to the workspace: {exc}", field="$.patches"
                ) from None
    raise InvalidWorkspace(f"no patch named {name!r}", field="$.patches")
