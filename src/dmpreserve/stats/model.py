"""A vectorized binned-Poisson model read from a pyhf workspace plus one signal patch.

Supported modifiers (pyhf's conventions, numpy backend, default interpolation codes):

* ``normfactor``: the POI and any number of free rate factors (bounds and inits from the
  measurement's parameter config, pyhf's (0, 10) and 1 otherwise);
* ``normsys``: code4 interpolation, Gaussian constraint N(aux | alpha, 1);
* ``histosys``: code4p interpolation (pyhf's default), additive on the sample's nominal yields,
  sharing its alpha with a ``normsys`` of the same name as pyhf does;
* ``staterror``: one gamma per bin shared by the samples carrying a staterror of that name, constraint
  N(aux | gamma, sigma_b) with sigma_b = sqrt(sum_s delta_sb^2) / sum_s N_sb over the samples carrying
  the modifier (pyhf ``staterror_builder``).  Bins with sigma_b = 0 (no uncertainty or no yield) have
  their gamma *fixed* at 1 by pyhf (``suggested_fixed``); here they have no gamma at all.  At most one
  staterror name may act on a bin (:func:`dmpreserve.artifacts.likelihood.check_model`);
* beyond pyhf, *grid samples* (``build_model(grids=...)``, :mod:`dmpreserve.stats.grid`): a sample's counts
  interpolated bilinearly on a grid of two alphas (a template release's own morphing).

The model itself, its negative log-likelihood and derivatives: :mod:`dmpreserve.stats.binned`
(:class:`BinnedModel`, re-exported here).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import jsonpatch
import numpy as np

from dmpreserve.artifacts.likelihood import check_model
from dmpreserve.errors import InvalidWorkspace
from dmpreserve.stats.binned import MAX_ROWS, TINY, BinnedModel
from dmpreserve.stats.grid import SampleGrid, grid_terms
from dmpreserve.stats.interpolation import code4_coefficients, code4p_basis, staterror_gammas

__all__ = ["ALPHA_BOUNDS", "MAX_ROWS", "TINY", "BinnedModel", "build_model", "without_staterror"]

#: Bounds of a ``normsys`` parameter (pyhf's default).
ALPHA_BOUNDS = (-5.0, 5.0)


def without_staterror(spec: dict[str, Any]) -> dict[str, Any]:
    """A copy of a pyhf workspace spec with every ``staterror`` modifier removed (the unbinned likelihood's
    workspace, :mod:`dmpreserve.stats.unbinned`; the checks against pyhf's own fits, which are slow with one
    staterror gamma per bin)."""
    spec = copy.deepcopy(spec)
    for channel in spec["channels"]:
        for sample in channel["samples"]:
            sample["modifiers"] = [m for m in sample["modifiers"] if m["type"] != "staterror"]
    return spec


def _parameter_config(measurement: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in measurement.get("parameters", [])}


def _scalar_setting(config: dict[str, dict[str, Any]], name: str, bounds: tuple[float, float], init: float):
    par = config.get(name, {})
    lo, hi = (float(b) for b in par["bounds"][0]) if "bounds" in par else bounds
    return lo, hi, float(par["inits"][0]) if "inits" in par else init


def build_model(
    workspace: dict[str, Any],
    patch: dict[str, Any] | None,
    *,
    background_only: bool = False,
    grids: Mapping[tuple[str, str], SampleGrid] | None = None,
) -> BinnedModel:
    """The model of a pyhf workspace with one patch of a patchset applied (``None``: as is).

    With ``background_only`` a model without any sample carrying the POI is accepted (the POI is then
    a parameter without effect; :mod:`dmpreserve.stats.fit` profiles the gammas of such a model).
    ``grids`` (channel name, sample name) -> :class:`~dmpreserve.stats.grid.SampleGrid`: those samples' counts
    are interpolated bilinearly on their grid instead (their normsys/histosys of the grid's two parameters are
    dropped, their other modifiers kept): a template release's own likelihood, not expressible in pyhf.

    Raises:
        InvalidWorkspace: what the shared likelihood validation refuses
            (:func:`dmpreserve.artifacts.likelihood.check_model`: unsupported or invalid modifiers, fixed
            parameters, no signal), or a missing POI.
    """
    # apply_patch works on a copy (in_place=False), so the caller's workspace is never changed
    spec = copy.deepcopy(workspace) if patch is None else jsonpatch.apply_patch(workspace, patch["patch"])
    check_model(spec, signal=patch is not None)
    measurement = spec["measurements"][0]["config"]
    poi = measurement["poi"]
    config = _parameter_config(measurement)
    channels = sorted(spec["channels"], key=lambda ch: ch["name"])  # pyhf orders channels by name
    obs = {o["name"]: np.asarray(o["data"], float) for o in spec["observations"]}
    offsets, n_bins = {}, 0
    for ch in channels:
        offsets[ch["name"]] = n_bins
        n_bins += len(ch["samples"][0]["data"])
    rows = [(ch["name"], sample) for ch in channels for sample in ch["samples"]]
    nominal = np.zeros((len(rows), n_bins))
    factors, alphas, terms, hists = {poi}, set(), [], []
    grids = grids or {}
    for i, (ch, sample) in enumerate(rows):
        sl = slice(offsets[ch], offsets[ch] + len(sample["data"]))
        nominal[i, sl] = sample["data"]
        on_grid = grids[(ch, sample["name"])].parameters if (ch, sample["name"]) in grids else ()
        alphas.update(on_grid)
        for mod in sample["modifiers"]:
            if mod["name"] in on_grid:
                continue
            if mod["type"] == "normfactor":
                factors.add(mod["name"])
            elif mod["type"] == "normsys":
                terms.append((i, mod["name"], float(mod["data"]["hi"]), float(mod["data"]["lo"])))
                alphas.add(mod["name"])
            elif mod["type"] == "histosys":
                hi, lo = np.zeros(n_bins), np.zeros(n_bins)
                hi[sl], lo[sl] = mod["data"]["hi_data"], mod["data"]["lo_data"]
                hists.append((i, mod["name"], code4p_basis(nominal[i], hi, lo)))
                alphas.add(mod["name"])
    factor_names = (poi, *sorted(factors - {poi}))
    fidx = {n: j for j, n in enumerate(factor_names)}
    incidence = np.zeros((len(rows), len(factor_names)))
    for i, (_, sample) in enumerate(rows):
        for mod in sample["modifiers"]:
            if mod["type"] == "normfactor":
                incidence[i, fidx[mod["name"]]] = 1.0
    signal_mask = incidence[:, 0] > 0
    if not signal_mask.any() and not background_only:
        raise InvalidWorkspace(f"no sample carries the POI normfactor {poi!r}", field="channels")
    names = tuple(sorted(alphas))
    index = {n: k for k, n in enumerate(names)}
    settings = [_scalar_setting(config, n, (0.0, 10.0), 1.0) for n in factor_names]
    settings += [_scalar_setting(config, n, ALPHA_BOUNDS, 0.0) for n in names]
    stat_mask, gammas = staterror_gammas(offsets, n_bins, rows)
    return BinnedModel(
        nominal=nominal,
        signal_mask=signal_mask,
        factor_names=factor_names,
        factor_incidence=incidence,
        alpha_names=names,
        term_sample=np.array([t[0] for t in terms], int),
        term_alpha=np.array([index[t[1]] for t in terms], int),
        term_coef=np.array([code4_coefficients(t[2], t[3]) for t in terms]).reshape(-1, 6),
        term_log_hi=np.log([t[2] for t in terms]),
        term_log_lo=np.log([t[3] for t in terms]),
        hist_sample=np.array([h[0] for h in hists], int),
        hist_alpha=np.array([index[h[1]] for h in hists], int),
        hist_basis=np.array([h[2] for h in hists]).reshape(-1, 4, n_bins),
        stat_mask=stat_mask,
        gamma_bins=np.array([g[0] for g in gammas], int),
        gamma_sigma=np.array([g[1] for g in gammas], float),
        gamma_names=tuple(g[2] for g in gammas),
        observed=np.concatenate([obs[ch["name"]] for ch in channels]),
        lower=np.array([s[0] for s in settings]),
        upper=np.array([s[1] for s in settings]),
        init=np.array([s[2] for s in settings]),
        grid=grid_terms(rows, offsets, n_bins, grids, index),
    )
