"""Evaluate an HS3 document's likelihood with pyhs3: the cross-check of :mod:`dmpreserve.publish.hs3`.

:func:`hs3_nll` / :func:`hs3_nll_function` give ``-ln L`` (pyhf's ``-logpdf`` convention: Poisson terms with
ln n!, constraints with their normalisations) of a document written by
:func:`dmpreserve.publish.hs3.workspace_to_hs3`.  The document is read and validated by
:class:`pyhs3.Workspace`; every factor of the likelihood is pyhs3's own (channel Poisson terms, modifier
interpolation, constraints).  Two things are ours, both forced by pyhs3 0.4.2 and both fixed upstream after
that release:

* the assembly of the channels' terms (:func:`_log_likelihood`): pyhs3 0.4.2's ``Model`` calls
  ``make_constraint`` on staterror modifiers in BB-lite mode, which raises (scipp-atlas/pyhs3 PR #260);
* the logarithm is pushed through pyhs3's products (:func:`_log`): pyhs3 0.4.2 multiplies probabilities,
  which underflows/overflows for ~10^3 bins (upstream moved to log space, PRs #267 and #281).
"""

from __future__ import annotations

import copy
import functools
import operator
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from dmpreserve.errors import InvalidData
from dmpreserve.publish.hs3 import import_pyhs3


def _log(x: Any) -> Any:
    """ln x with the logarithm pushed through pyhs3's products, quotients and exponentials (exact algebra).

    pyhs3 0.4.2 builds probabilities, not log-probabilities: a channel's Poisson term is
    ``prod_b exp(ln p_b)`` and its BB-lite constraint ``prod_b N_b``; over ~10^3 bins the first underflows
    and the second overflows in float64 (NaN for the pipeline's 1584-bin workspace).  Here
    ``ln prod_b f_b = sum_b ln f_b``, ``ln exp(y) = y``, ``ln(a b) = ln a + ln b`` and
    ``ln(a / b) = ln a - ln b`` are applied to pyhs3's own graph; any other node is logged as it is.
    (Upstream pyhs3 moved to log space after 0.4.2: scipp-atlas/pyhs3 PRs #267 and #281.)
    """
    import pytensor.scalar as ps
    import pytensor.tensor as pt
    from pytensor.tensor.basic import MakeVector
    from pytensor.tensor.elemwise import Elemwise
    from pytensor.tensor.math import Prod

    node = x.owner
    if node is None:
        return pt.log(x)
    op = node.op
    if isinstance(op, Prod):
        return pt.sum(_log(node.inputs[0]), axis=op.axis)
    if isinstance(op, MakeVector):
        return pt.stack([_log(i) for i in node.inputs])
    if isinstance(op, Elemwise):
        scalar = op.scalar_op
        if isinstance(scalar, ps.Exp):
            return pt.cast(node.inputs[0], x.dtype)
        if isinstance(scalar, ps.Mul):
            return functools.reduce(operator.add, [_log(i) for i in node.inputs])
        if isinstance(scalar, ps.TrueDiv):
            return _log(node.inputs[0]) - _log(node.inputs[1])
    return pt.log(x)


def _log_likelihood(ws: Any, likelihood: Any, params: Mapping[str, Any]) -> Any:
    """ln L of ``likelihood`` (a resolved :class:`pyhs3.likelihoods.Likelihood`) as a PyTensor expression.

    Every factor is pyhs3's own: each channel's main Poisson term (``HistFactoryDistChannel.likelihood``),
    each modifier's constraint (``make_constraint``; one per nuisance parameter across all channels, as
    ``pyhs3.Model.log_prob``), the channel's BB-lite staterror constraint and the aux distributions.  Only the
    assembly is ours: pyhs3 0.4.2's ``Model`` calls ``make_constraint`` on staterror modifiers in BB-lite mode,
    which raises (fixed upstream after 0.4.2, scipp-atlas/pyhs3 PR #260, "build BB-lite staterror
    constraints in Model channel assembly"); this mirrors the fixed assembly.
    """
    import pytensor.tensor as pt

    import_pyhs3()
    from pyhs3.context import Context
    from pyhs3.distributions import HistFactoryDistChannel
    from pyhs3.distributions.histfactory.modifiers import StatErrorModifier

    context = dict(params)
    for dist, datum in zip(likelihood.distributions, likelihood.data, strict=True):
        context[f"{dist.name}_observed"] = pt.constant(np.asarray(datum.contents, dtype=float))
    ctx = Context(context)
    terms, seen = [], set()
    for dist in likelihood.distributions:
        if not isinstance(dist, HistFactoryDistChannel):
            raise InvalidData(f"distribution {dist.name!r} is not a histfactory_dist", field="distributions")
        terms.append(_log(dist.likelihood(ctx)))
        for key, modifier, sample_data in dist.constraint_specs():
            if dist.barlow_beeston_method == "lite" and isinstance(modifier, StatErrorModifier):
                continue
            if key is not None:
                if key in seen:
                    continue
                seen.add(key)
            terms.append(_log(modifier.make_constraint(ctx, sample_data)))
        if dist.barlow_beeston_method == "lite":
            lite = dist._make_barlow_beeston_lite_constraint(ctx)  # noqa: SLF001 (pyhs3's BB-lite term)
            if lite is not None:
                terms.append(_log(lite))
    for aux in likelihood.aux_distributions or []:
        terms.append(_log(aux.expression(Context({**context, **aux.constants}))))
    return pt.sum(pt.stack(terms))


def hs3_nll_function(
    doc: Mapping[str, Any], *, analysis: str | None = None, mode: str = "FAST_COMPILE"
) -> Callable[[Mapping[str, float]], float]:
    """A compiled ``parameters -> -ln L`` of the document's analysis (the first one if ``analysis`` is None).

    The document is read by :class:`pyhs3.Workspace` (validation and references) and ln L assembled from
    pyhs3's distributions (:func:`_log_likelihood`): Poisson terms with ln n!, constraints with their
    normalisations, i.e. pyhf's ``logpdf`` convention.  Parameters are PyTensor scalars bounded (clipped) to
    the analysis domain as pyhs3 does; those not given take the document's ``default_values``; ``const``
    ones are constants.  ``mode``: the PyTensor compilation mode (``FAST_COMPILE``: seconds to compile a
    likelihood of thousands of bins, where the default numba backend of PyTensor 3 takes minutes).

    Raises:
        InvalidData: unknown parameter name, or a value for a constant parameter that differs from it.
    """
    import pytensor

    pyhs3 = import_pyhs3()
    from pyhs3.tensorutils import create_bounded_tensor

    ws = pyhs3.Workspace(**copy.deepcopy(dict(doc)))
    target = ws.analyses[analysis or 0]
    domain = target.domains[0]
    point = ws.parameter_points[target.init] if target.init else None
    defaults = {p.name: float(p.value) for p in point or []}
    consts = {p.name for p in point or [] if p.const}
    names = sorted(
        {n for d in target.likelihood.distributions for n in d.parameters}
        - {f"{d.name}_observed" for d in target.likelihood.distributions}
        | ({a.mean for a in target.likelihood.aux_distributions or []})
    )
    missing = sorted(set(names) - set(defaults))
    if missing:
        raise InvalidData(f"parameters without a value in the parameter point: {missing[:5]}", field="parameter_points")
    free = [n for n in names if n not in consts]
    leaves = {}
    params = {}
    for n in names:
        if n in consts:
            import pytensor.tensor as pt

            params[n] = pt.constant(np.float64(defaults[n]), name=n)
        else:
            bounded = create_bounded_tensor(n, domain.get(n, (None, None)))
            leaves[n] = next(v for v in pytensor.graph.traversal.explicit_graph_inputs([bounded]) if v.name == n)
            params[n] = bounded
    # no canonicalisation: it flattens the sum of ~10^3 constraint terms into one Add, which PyTensor's
    # Python backend cannot run (NumPy ufuncs take at most 32 operands)
    compiled_mode = pytensor.compile.mode.get_mode(mode).excluding("canonicalize")
    log_l = _log_likelihood(ws, target.likelihood, params)
    fn = pytensor.function([leaves[n] for n in free], log_l, mode=compiled_mode)

    def nll(parameters: Mapping[str, float]) -> float:
        values = dict(defaults)
        for key, value in parameters.items():
            if key not in values:
                raise InvalidData(f"unknown HS3 parameter {key!r}", field="parameters")
            if key in consts and float(value) != values[key]:
                raise InvalidData(f"HS3 parameter {key!r} is constant at {values[key]}", field="parameters")
            values[key] = float(value)
        return -float(np.asarray(fn(*[np.float64(values[n]) for n in free])).reshape(-1)[0])

    return nll


def hs3_nll(doc: Mapping[str, Any], parameters: Mapping[str, float]) -> float:
    """Negative log-likelihood ``-ln L`` of the HS3 document at ``parameters`` (pyhs3; see :func:`hs3_nll_function`)."""
    return hs3_nll_function(doc)(parameters)
