"""HS3 copies of the project's pyhf likelihoods: the HEP Statistics Serialization Standard, built with pyhs3.

Every likelihood the project writes as a pyhf workspace (HistFactory JSON, schema 1.0.0) is also written
as an HS3 document (HS3 v0.2, https://hep-statistics-serialization-standard.github.io; pyhs3, Stark et al.,
https://github.com/scipp-atlas/pyhs3).  The document is assembled from pyhs3's own pydantic models
(:class:`pyhs3.distributions.HistFactoryDistChannel`, :class:`pyhs3.data.BinnedData`,
:class:`pyhs3.likelihoods.Likelihood`, :class:`pyhs3.domains.ProductDomain`,
:class:`pyhs3.parameter_points.ParameterSet`, :class:`pyhs3.analyses.Analysis`), validated as one
:class:`pyhs3.Workspace` and serialised with pyhs3's serialisers, so that an invalid mapping fails here and
not in a reader.

Layout of a document named ``N`` (one likelihood: the workspace, plus one signal patch if given):

* ``distributions``: one ``histfactory_dist`` per pyhf channel (same name; axis ``obs_x_<channel>``,
  regular, bins ``0..n``: pyhf carries no binning), samples and modifiers as below, ``barlow_beeston_method``
  ``lite`` (pyhf's staterror);
* ``data``: one ``binned`` datum ``obsData_<channel>`` per channel (the workspace's observations);
* ``likelihoods``: ``N`` pairs each channel with its datum (plus the ``lumi`` constraint, see below);
* ``domains``: ``default_domain``, a ``product_domain`` with the bounds of every parameter (the
  measurement's, else pyhf's defaults: normfactor [0, 10], normsys/histosys [-5, 5], gammas [1e-10, 10]).
  pyhs3 *clips* parameter values to these bounds; pyhf does not (both agree inside them);
* ``parameter_points``: ``default_values`` (the measurement's inits, pyhf's defaults otherwise; ``const``
  for parameters the measurement fixes and for staterror gammas pyhf fixes, see below);
* ``analyses``: ``N`` with the POI of the measurement; ``metadata``: ``hs3_version`` :data:`HS3_VERSION` and
  the packages; ``misc.dmpreserve``: the source (measurement, patch metadata with the reference cross
  section that converts mu into sigma).

Modifier mapping (pyhf -> HS3; parameter names kept, per-bin ones ``<name>_bin_<i>``, :func:`hs3_parameter_name`):

=============  ==============================================================================================
normfactor     ``normfactor`` (parameter = name); the POI ``mu`` and the free rate factors
normsys        ``normsys``, ``interpolation: code4`` (pyhf's code4: 6th-order polynomial for |alpha| < 1,
               exponential outside; this project's setting, :func:`dmpreserve.stats.reference.modifier_settings`),
               Gaussian constraint N(0 | alpha, 1)
histosys       ``histosys``, ``interpolation: code4p`` (polynomial for |alpha| < 1, linear outside), hi/lo
               as absolute yields, Gaussian constraint shared with a normsys of the same name (one per parameter)
staterror      ``staterror`` with ``barlow_beeston_method: lite``: one gamma per bin shared by the channel's
               samples, the sample's uncertainties in its ``data.errors``, constraint N(1 | gamma, sigma_b),
               sigma_b = sqrt(sum_s delta_sb^2) / sum_s N_sb (pyhf ``staterror``)
shapesys       ``shapesys``, Poisson constraint Pois(tau_b | gamma_b tau_b), tau_b = (N_b / delta_b)^2
shapefactor    ``shapefactor`` (free per-bin factors)
lumi           ``normfactor`` on parameter ``lumi`` plus a ``gaussian_dist`` N(aux | lumi, sigma) from the
               measurement's ``auxdata``/``sigmas`` in the likelihood's ``aux_distributions`` (pyhs3 0.4.2 has
               no ``lumi`` modifier; the product is pyhf's term exactly)
=============  ==============================================================================================

What HS3/pyhs3 cannot express exactly (refused with :class:`~dmpreserve.errors.InvalidData`, or stated):

* pyhf keeps a staterror gamma whose sigma_b is 0 (bins without yield or uncertainty) *fixed* at 1 and still
  adds its constraint log N(1 | 1, 1) = -ln(2 pi)/2 to ``logpdf`` (pyhf 0.7.6 FIXME).  pyhs3 drops the
  constraint of bins without yield and cannot evaluate one with yield but zero uncertainty.  Here such gammas
  are ``const`` at 1 and have no constraint, so the HS3 NLL is pyhf's minus ``n_fixed * ln(2 pi) / 2``, a
  constant (:func:`pyhf_constant_offset`); a bin with yield and zero uncertainty is refused.
* shapesys bins with zero yield or zero uncertainty (pyhf fixes those gammas) are refused; more than one
  staterror name in one channel (BB-lite shares one gamma per bin) is refused.
* pyhs3 0.4.2 multiplies the bin probabilities of a channel before taking the logarithm (``log(prod p_b)``);
  for very many bins with small probabilities the product can underflow: :func:`hs3_nll` then returns +inf
  (the agreement test would show it; none of the project's workspaces does).

The likelihood of a document is evaluated with pyhs3 by :mod:`dmpreserve.publish.hs3_eval` (``hs3_nll``).

Sources: pyhf 0.7.6 (modifiers/staterror.py, interpolators code4/code4p); pyhs3 0.4.2
(distributions/histfactory); HS3 standard v0.2, section "HistFactory".
"""

from __future__ import annotations

import copy
import logging
import math
import os
import sys
from collections.abc import Mapping
from typing import Any

import jsonpatch
import numpy as np

from dmpreserve.errors import InvalidData
from dmpreserve.files import write_json

#: HS3 standard version the documents declare (the release pyhs3 0.4.2 and ROOT 6.32 read and write).
HS3_VERSION = "0.2"

#: pyhs3 interpolation codes of this project's likelihood (pyhf: normsys code4, histosys code4p).
INTERPOLATION = {"normsys": "code4", "histosys": "code4p"}

#: pyhf modifier types with one parameter per bin (HS3 names ``<name>_bin_<i>``).
PER_BIN = ("staterror", "shapesys", "shapefactor")

#: Name of the document's single domain and parameter point.
DOMAIN = "default_domain"
PARAMETER_POINT = "default_values"

_DEFAULT_BOUNDS = {
    "normfactor": (0.0, 10.0),
    "normsys": (-5.0, 5.0),
    "histosys": (-5.0, 5.0),
    "staterror": (1e-10, 10.0),
    "shapesys": (1e-10, 10.0),
    "shapefactor": (0.0, 10.0),
}
_DEFAULT_INIT = {"normsys": 0.0, "histosys": 0.0}


def import_pyhs3():
    """Import pyhs3 without letting it reconfigure this process's logging, and return the module.

    pyhs3 0.4.2 runs ``logging.config.dictConfig`` at import (``pyhs3/logging.py``, ``disable_existing_loggers:
    True``, root level WARNING with its own handlers): every logger created before, ``dmpreserve``'s included,
    would fall silent for the rest of the process.  The root logger's handlers and level and every logger's
    ``disabled`` flag are put back as they were.  Every use of pyhs3 in this package goes through here first.
    """
    if "pyhs3" in sys.modules:
        return sys.modules["pyhs3"]
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    loggers = logging.Logger.manager.loggerDict
    disabled = {name: lg.disabled for name, lg in loggers.items() if isinstance(lg, logging.Logger)}
    try:
        import pyhs3
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        for name, lg in list(loggers.items()):
            if isinstance(lg, logging.Logger):
                lg.disabled = disabled.get(name, False)
    return pyhs3


def hs3_parameter_name(name: str, kind: str, index: int = 0) -> str:
    """The HS3 name of pyhf parameter ``name`` (component ``index``) of a modifier of type ``kind``.

    Per-bin modifiers (:data:`PER_BIN`) have one HS3 parameter per bin, ``<name>_bin_<index>``; the others
    keep pyhf's name (``mu``, ``norm_er``, ``lumi``).
    """
    return f"{name}_bin_{index}" if kind in PER_BIN else name


def apply_patch(workspace: Mapping[str, Any], patch: Any = None) -> dict[str, Any]:
    """A deep copy of ``workspace`` with ``patch`` applied (a PatchSet entry ``{"patch": [...]}`` or a list
    of JSON-patch operations, RFC 6902, as pyhf's PatchSet applies them); the workspace itself if None."""
    spec = copy.deepcopy(dict(workspace))
    if patch is None:
        return spec
    ops = patch.get("patch") if isinstance(patch, Mapping) else patch
    try:
        return jsonpatch.apply_patch(spec, ops)
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError) as exc:
        raise InvalidData(f"the signal patch does not apply to the workspace: {exc}", field="patch") from None


def _measurement(spec: Mapping[str, Any]) -> dict[str, Any]:
    measurements = spec.get("measurements") or []
    if not measurements:
        raise InvalidData("the workspace has no measurement", field="measurements")
    return measurements[0]


def kept_bins(channel: Mapping[str, Any], observed: Any) -> np.ndarray:
    """Indices of the pyhf bins the HS3 channel keeps: those with observed events or any expectation.

    A bin where every sample's nominal yield and histosys variations are 0 and nothing is observed
    contributes exactly 0 to pyhf's ln L at every parameter point (xlogy(0, 0) = 0); pyhs3 0.4.2 evaluates
    ``n ln(nu)`` there as 0 * (-inf) = NaN, so such bins are left out (their staterror gammas are ones
    pyhf fixes, see :func:`pyhf_constant_offset`).
    """
    any_yield = np.asarray(observed, float) > 0
    for sample in channel["samples"]:
        any_yield |= np.asarray(sample["data"], float) != 0
        for mod in sample["modifiers"]:
            if mod["type"] == "histosys":
                any_yield |= np.asarray(mod["data"]["hi_data"], float) != 0
                any_yield |= np.asarray(mod["data"]["lo_data"], float) != 0
    return np.flatnonzero(any_yield)


def _channel(channel: Mapping[str, Any], params: dict[str, dict[str, Any]], keep: np.ndarray):
    """The pyhs3 channel of one pyhf channel restricted to bins ``keep``; ``params`` collects its parameters."""
    import_pyhs3()
    from pyhs3.distributions import HistFactoryDistChannel

    name = channel["name"]
    n_bins = len(keep)

    def cut(values: Any) -> list[float]:
        return [float(x) for x in np.asarray(values, float)[keep]]

    stat_names = {m["name"] for s in channel["samples"] for m in s["modifiers"] if m["type"] == "staterror"}
    if len(stat_names) > 1:
        raise InvalidData(
            f"staterror modifiers {sorted(stat_names)} act on channel {name!r}; HS3 BB-lite has one gamma per bin",
            field=f"channels[{name}]",
        )
    samples = []
    for sample in channel["samples"]:
        mods, errors = [], None
        for mod in sample["modifiers"]:
            kind, mname, data = mod["type"], mod["name"], mod.get("data")
            where = f"channels[{name}].samples[{sample['name']}].modifiers[{mname}]"
            if kind == "normfactor":
                mods.append({"type": "normfactor", "name": mname, "parameter": mname})
            elif kind == "lumi":
                mods.append({"type": "normfactor", "name": mname, "parameter": mname})
            elif kind == "normsys":
                mods.append(
                    {
                        "type": "normsys",
                        "name": mname,
                        "parameter": mname,
                        "constraint": "Gauss",
                        "data": {"hi": data["hi"], "lo": data["lo"], "interpolation": INTERPOLATION["normsys"]},
                    }
                )
            elif kind == "histosys":
                mods.append(
                    {
                        "type": "histosys",
                        "name": mname,
                        "parameter": mname,
                        "constraint": "Gauss",
                        "data": {
                            "hi": {"contents": cut(data["hi_data"])},
                            "lo": {"contents": cut(data["lo_data"])},
                            "interpolation": INTERPOLATION["histosys"],
                        },
                    }
                )
            elif kind == "staterror":
                errors = cut(data)
                pars = [hs3_parameter_name(mname, kind, int(i)) for i in keep]
                mods.append({"type": "staterror", "name": mname, "parameters": pars, "constraint": "Gauss"})
            elif kind == "shapesys":
                nominal, vals = np.asarray(cut(sample["data"])), np.asarray(cut(data))
                if np.any((nominal <= 0) | (vals <= 0)):
                    raise InvalidData(
                        "shapesys bins with zero yield or zero uncertainty (pyhf fixes their gamma) have no HS3 "
                        "equivalent in pyhs3 0.4.2",
                        field=where,
                    )
                pars = [hs3_parameter_name(mname, kind, int(i)) for i in keep]
                mods.append(
                    {
                        "type": "shapesys",
                        "name": mname,
                        "parameters": pars,
                        "constraint": "Poisson",
                        "data": {"vals": vals.tolist()},
                    }
                )
            elif kind == "shapefactor":
                pars = [hs3_parameter_name(mname, kind, int(i)) for i in keep]
                mods.append({"type": "shapefactor", "name": mname, "parameters": pars})
            else:
                raise InvalidData(f"pyhf modifier type {kind!r} has no HS3 mapping here", field=where)
            entry = params.setdefault(
                mname, {"kind": kind, "index": [int(i) for i in keep] if kind in PER_BIN else [0]}
            )
            if kind in ("normsys", "histosys") and entry["kind"] in ("normsys", "histosys"):
                continue
            if entry["kind"] != kind:
                raise InvalidData(
                    f"modifier name {mname!r} is used for types {entry['kind']!r} and {kind!r}", field=where
                )
        sample_data: dict[str, Any] = {"contents": cut(sample["data"])}
        if errors is not None:
            sample_data["errors"] = errors
        samples.append({"name": sample["name"], "data": sample_data, "modifiers": mods})
    _check_staterror(name, channel, stat_names, keep)
    axis = {"name": f"obs_x_{name}", "min": 0.0, "max": float(n_bins), "nbins": n_bins}
    return HistFactoryDistChannel(name=name, axes=[axis], samples=samples, barlow_beeston_method="lite")


def _staterror_sigmas(channel: Mapping[str, Any], stat_name: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-bin total nominal and absolute uncertainty of the samples carrying ``stat_name`` (pyhf's sums)."""
    n_bins = len(channel["samples"][0]["data"])
    nominal, variance = np.zeros(n_bins), np.zeros(n_bins)
    for sample in channel["samples"]:
        for mod in sample["modifiers"]:
            if mod["type"] == "staterror" and mod["name"] == stat_name:
                nominal += np.asarray(sample["data"], float)
                variance += np.square(np.asarray(mod["data"], float))
    return nominal, np.sqrt(variance)


def _check_staterror(name: str, channel: Mapping[str, Any], stat_names: set[str], keep: np.ndarray) -> None:
    for stat in stat_names:
        nominal, sigma = _staterror_sigmas(channel, stat)
        bad = keep[(nominal[keep] > 0) & (sigma[keep] <= 0)]
        if bad.size:
            raise InvalidData(
                f"staterror {stat!r}: bins {bad[:5].tolist()} have a yield but zero uncertainty; pyhf fixes their "
                "gamma, pyhs3 0.4.2 cannot evaluate that constraint",
                field=f"channels[{name}]",
            )


def fixed_gammas(workspace: Mapping[str, Any], patch: Any = None) -> list[str]:
    """HS3 names of the gammas pyhf fixes at 1: staterror bins whose total yield is zero, shapesys bins with
    zero yield or zero uncertainty (pyhf 0.7.6 ``staterror``/``shapesys`` ``required_parset``)."""
    spec = apply_patch(workspace, patch)
    out = []
    for channel in spec["channels"]:
        for stat in sorted({m["name"] for s in channel["samples"] for m in s["modifiers"] if m["type"] == "staterror"}):
            nominal, _ = _staterror_sigmas(channel, stat)
            out += [hs3_parameter_name(stat, "staterror", int(i)) for i in np.flatnonzero(nominal <= 0)]
        for sample in channel["samples"]:
            for mod in sample["modifiers"]:
                if mod["type"] == "shapesys":
                    bad = (np.asarray(sample["data"], float) <= 0) | (np.asarray(mod["data"], float) <= 0)
                    out += [hs3_parameter_name(mod["name"], "shapesys", int(i)) for i in np.flatnonzero(bad)]
    return out


def pyhf_constant_offset(workspace: Mapping[str, Any], patch: Any = None) -> float:
    """pyhf's NLL minus the HS3 NLL, a constant: pyhf keeps the constraint terms of the gammas it fixes,
    ``ln(2 pi) / 2`` per staterror gamma (N(1 | 1, 1)) and ``1`` per shapesys gamma (Pois(1 | 1), continuous)."""
    fixed = fixed_gammas(workspace, patch)
    n_shapesys = sum(1 for name in fixed if _kind_of(apply_patch(workspace, patch), name) == "shapesys")
    return (len(fixed) - n_shapesys) * 0.5 * math.log(2 * math.pi) + n_shapesys * 1.0


def _kind_of(spec: Mapping[str, Any], hname: str) -> str | None:
    for channel in spec["channels"]:
        for sample in channel["samples"]:
            for mod in sample["modifiers"]:
                if hname.startswith(f"{mod['name']}_bin_"):
                    return mod["type"]
    return None


def _parameter_table(params: dict[str, dict[str, Any]], cfg: Mapping[str, Any], fixed: set[str]):
    """(domain axes, parameter points, lumi constraint or None) from the measurement config and pyhf defaults."""
    by_name = {p["name"]: p for p in cfg.get("parameters", [])}
    axes, points, lumi = [], [], None
    for pname in sorted(params):
        kind, index = params[pname]["kind"], params[pname]["index"]
        n = len(index)
        p = by_name.get(pname, {})
        bounds = p.get("bounds") or [_DEFAULT_BOUNDS.get(kind, (-5.0, 5.0))] * n
        inits = p.get("inits") or [1.0 if kind not in _DEFAULT_INIT else _DEFAULT_INIT[kind]] * n
        if kind == "lumi":
            if "auxdata" not in p or "sigmas" not in p:
                raise InvalidData(
                    "the lumi parameter needs auxdata and sigmas", field=f"measurements[0].config.{pname}"
                )
            bounds = p.get("bounds") or [(0.0, 10.0)]
            lumi = (pname, float(p["auxdata"][0]), float(p["sigmas"][0]))
        for pyhf_index in index:
            hname = hs3_parameter_name(pname, kind, pyhf_index)
            lo, hi = (float(b) for b in bounds[min(pyhf_index, len(bounds) - 1)])
            axes.append({"name": hname, "min": lo, "max": hi})
            point = {"name": hname, "value": float(inits[min(pyhf_index, len(inits) - 1)])}
            if bool(p.get("fixed", False)) or hname in fixed:
                point["const"] = True
                point["value"] = 1.0 if hname in fixed else point["value"]
            points.append(point)
    return axes, points, lumi


def workspace_to_hs3(workspace: Mapping[str, Any], patch: Any = None, *, name: str) -> dict[str, Any]:
    """The HS3 document of a pyhf workspace, optionally with one signal patch applied.

    Args:
        workspace: pyhf workspace (HistFactory JSON dict; first measurement used).
        patch: a PatchSet entry (``{"metadata": {...}, "patch": [...]}``) or a list of JSON-patch operations;
            None: the workspace as it is (background only).
        name: name of the document's likelihood and analysis.

    Returns:
        The HS3 document (plain JSON types; validated by :class:`pyhs3.Workspace`), layout and modifier
        mapping in the module docstring.

    Raises:
        InvalidData: the patch does not apply, or a modifier has no exact HS3 mapping (module docstring).
    """
    pyhs3 = import_pyhs3()
    from pyhs3.analyses import Analysis
    from pyhs3.data import BinnedData
    from pyhs3.distributions import GaussianDist
    from pyhs3.domains import ProductDomain
    from pyhs3.likelihoods import Likelihood
    from pyhs3.metadata import Metadata
    from pyhs3.parameter_points import ParameterSet

    spec = apply_patch(workspace, patch)
    cfg = _measurement(spec).get("config", {})
    params: dict[str, dict[str, Any]] = {}
    observed = {o["name"]: o["data"] for o in spec.get("observations", [])}
    channels, data, kept = [], [], {}
    for ch in spec["channels"]:
        if ch["name"] not in observed:
            raise InvalidData(f"no observation for channel {ch['name']!r}", field="observations")
        keep = kept_bins(ch, observed[ch["name"]])
        kept[ch["name"]] = [int(i) for i in keep]
        channels.append(_channel(ch, params, keep))
        n = len(keep)
        axis = {"name": f"obs_x_{ch['name']}", "min": 0.0, "max": float(n), "nbins": n}
        contents = [float(x) for x in np.asarray(observed[ch["name"]], float)[keep]]
        data.append(BinnedData(name=f"obsData_{ch['name']}", contents=contents, axes=[axis]))
    axes, points, lumi = _parameter_table(params, cfg, set(fixed_gammas(spec)))
    aux = []
    if lumi is not None:
        aux.append(GaussianDist(name=f"{lumi[0]}_constraint", x=lumi[1], mean=lumi[0], sigma=lumi[2]))
    likelihood = Likelihood(
        name=name,
        distributions=[c.name for c in channels],
        data=[d.name for d in data],
        **({"aux_distributions": [a.name for a in aux]} if aux else {}),
    )
    poi = cfg.get("poi")
    meta = (patch or {}).get("metadata") if isinstance(patch, Mapping) else None
    ws = pyhs3.Workspace(
        metadata=Metadata(
            hs3_version=HS3_VERSION,
            packages=[{"name": "pyhs3", "version": pyhs3.__version__}],
            description=f"dmpreserve likelihood {name!r}: pyhf workspace"
            + (f" + signal patch {meta.get('name')!r}" if meta else "")
            + " (HistFactory), converted by dmpreserve.publish.hs3",
        ),
        distributions=[*channels, *aux],
        data=data,
        likelihoods=[likelihood],
        domains=[ProductDomain(name=DOMAIN, axes=axes)],
        parameter_points=[ParameterSet(name=PARAMETER_POINT, parameters=points)],
        analyses=[
            Analysis(
                name=name,
                likelihood=name,
                parameters_of_interest=[poi] if poi else None,
                domains=[DOMAIN],
                init=PARAMETER_POINT,
            )
        ],
        misc={
            "dmpreserve": {
                "source": "pyhf workspace (HistFactory JSON 1.0.0)",
                "measurement": _measurement(spec).get("name"),
                "patch": meta,
                "interpolation": dict(INTERPOLATION),
                "kept_bins": kept,
            }
        },
    )
    return ws.model_dump(mode="json", by_alias=True, exclude_none=True)


def write_hs3(path: str | os.PathLike, doc: Mapping[str, Any]) -> None:
    """Write an HS3 document as sorted JSON, atomically (:func:`dmpreserve.files.write_json`)."""
    write_json(path, doc)
