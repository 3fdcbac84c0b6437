"""Maximum-likelihood fits of the serialized likelihood (background-only), with pulls."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyhf


def fit_background_only(workspace: dict[str, Any]) -> dict[str, Any]:
    """Background-only fit with MINUIT (MIGRAD + HESSE) through pyhf.

    Returns:
        ``{"parameters": [{name, value, error, prefit_value, prefit_error, pull}], "twice_nll": float}``;
        the pull of a constrained parameter is (value - prefit) / prefit_error.
    """
    pyhf.set_backend("numpy", pyhf.optimize.minuit_optimizer(tolerance=1e-3, strategy=1))
    ws = pyhf.Workspace(workspace)
    model = ws.model(poi_name=None, modifier_settings={"normsys": {"interpcode": "code4"},
                                                        "histosys": {"interpcode": "code4p"}})
    data = ws.data(model)
    result, twice_nll = pyhf.infer.mle.fit(data, model, return_uncertainties=True, return_fitted_val=True)
    params = []
    inits = model.config.suggested_init()
    for name in model.config.par_order:
        sl = model.config.par_slice(name)
        par = model.config.param_set(name)
        sigmas = getattr(par, "width", lambda: [1.0] * (sl.stop - sl.start))()
        for k, idx in enumerate(range(sl.start, sl.stop)):
            value, error = (float(v) for v in result[idx])
            prefit, width = float(inits[idx]), float(sigmas[k])
            params.append({"name": name if sl.stop - sl.start == 1 else f"{name}[{k}]", "value": value,
                           "error": error, "prefit_value": prefit, "prefit_error": width,
                           "pull": (value - prefit) / width})
    pyhf.set_backend("numpy", pyhf.optimize.scipy_optimizer())
    return {"parameters": params, "twice_nll": float(np.asarray(twice_nll)),
            "method": "background-only maximum-likelihood fit, pyhf + iminuit (MIGRAD, HESSE)"}
