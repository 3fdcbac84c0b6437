"""pyhs3's -ln L of an HS3 copy against pyhf's ``-logpdf`` at >= 5 parameter points (tests of
:mod:`dmpreserve.publish.hs3`: the pipeline's, the releases' and the combinations' likelihoods)."""

from __future__ import annotations

import numpy as np
import pyhf

from dmpreserve.publish import hs3, hs3_eval
from dmpreserve.stats.reference import modifier_settings


def _pyhf(workspace, patch):
    ws = pyhf.Workspace(workspace)
    patches = [pyhf.patchset.Patch(patch)] if patch is not None else []
    model = ws.model(patches=patches, modifier_settings=modifier_settings())
    return model, ws.data(model)


def _hs3_values(model, pars, fixed):
    """pyhf parameters (name -> scalar or per-bin values) as HS3 names; gammas pyhf fixes stay out."""
    kinds = dict(model.config.modifiers)
    out = {}
    for name, value in pars.items():
        n = model.config.param_set(name).n_parameters
        for i, v in enumerate(np.broadcast_to(np.asarray(value, float), (n,))):
            hname = hs3.hs3_parameter_name(name, kinds[name], i)
            if hname not in fixed:
                out[hname] = float(v)
    return out


def _points(model):
    """>= 5 parameter points: nominal, mu, each alpha at +-1 and +-2, normfactors, gammas moved (dicts)."""
    cfg = model.config
    kinds = dict(cfg.modifiers)
    poi = cfg.poi_name
    alphas = [p for p in cfg.par_order if kinds[p] in ("normsys", "histosys")]
    gammas = [p for p in cfg.par_order if kinds[p] in ("staterror", "shapesys")]
    rates = [p for p in cfg.par_order if kinds[p] == "normfactor" and p != poi]
    points = [{}, {poi: 0.0}, {poi: 0.5}, {poi: 3.0}]
    for k, a in enumerate(alphas):
        points.append({a: (1.0, -1.0, 2.0, -2.0, 1.5, -0.4)[k % 6], poi: 1.5})
    if alphas:
        points.append({a: (2.0 if k % 2 else -2.0) for k, a in enumerate(alphas)} | {poi: 2.0})
        points.append({a: 0.3 * (k % 3 - 1) for k, a in enumerate(alphas)})
    for r in rates:
        points.append({r: 0.7})
    for g in gammas:
        n = cfg.param_set(g).n_parameters
        points.append({g: 1.0 + 0.05 * np.cos(np.arange(n)), poi: 0.8})
    return points


def compare_with_pyhf(workspace, patch, *, name, perturb=None):
    """(max relative difference of -ln L, max relative difference of NLL(p) - NLL(p0)) over the points."""
    model, data = _pyhf(workspace, patch)
    doc = hs3.workspace_to_hs3(workspace, patch, name=name)
    nll = hs3_eval.hs3_nll_function(doc)
    fixed = set(hs3.fixed_gammas(workspace, patch))  # const in the document, or in bins it leaves out
    offset = hs3.pyhf_constant_offset(workspace, patch)
    init = np.asarray(model.config.suggested_init(), float)
    pyhf_fixed = np.asarray(model.config.suggested_fixed(), bool)
    ref_pyhf = ref_hs3 = None
    rel_abs, rel_diff = [], []
    for pars in _points(model):
        full = {p: init[model.config.par_slice(p)] for p in model.config.par_order} | pars
        vec = init.copy()
        for p, v in full.items():
            vec[model.config.par_slice(p)] = v
        vec[pyhf_fixed] = init[pyhf_fixed]  # parameters pyhf fixes stay at their init (the gammas at 1)
        full = {p: vec[model.config.par_slice(p)] for p in model.config.par_order}
        a = -float(model.logpdf(vec, data)[0])
        values = _hs3_values(model, full, fixed)
        if perturb is not None:
            values = perturb(values)
        b = nll(values) + offset
        rel_abs.append(abs(b - a) / max(abs(a), 1.0))
        if ref_pyhf is None:
            ref_pyhf, ref_hs3 = a, b
        else:
            rel_diff.append(abs((b - ref_hs3) - (a - ref_pyhf)) / max(abs(a - ref_pyhf), 1.0))
    assert len(rel_abs) >= 5
    return max(rel_abs), max(rel_diff)
