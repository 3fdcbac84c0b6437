"""90% CL upper limits on the SI cross section from the serialized likelihood.

For now the LHC convention: asymptotic CLs with the q~mu test statistic, computed with pyhf's
``upper_limit`` (TOMS 748 root finding of CLs = 1 - CL) on the background-only workspace patched
with each mass's signal.  The cross-section limit is mu_limit x the patch's reference cross section.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pyhf
from tqdm import tqdm

from dmpreserve.errors import InvalidWorkspace

LIMIT_COLUMNS = ("mass_gev", "limit_cm2", "expected_cm2", "expected_m2sigma_cm2", "expected_m1sigma_cm2",
                 "expected_p1sigma_cm2", "expected_p2sigma_cm2")
METHOD = "asymptotic CLs, test statistic q~mu (pyhf.infer.intervals.upper_limits.toms748_scan)"


@dataclasses.dataclass(frozen=True)
class MassLimit:
    """Limits at one mass; cross sections in cm^2, signal strengths relative to the reference."""

    mass_gev: float
    reference_cross_section_cm2: float
    mu_limit: float
    mu_expected: tuple[float, float, float, float, float]  # -2, -1, median, +1, +2 sigma

    def row(self) -> dict[str, float]:
        """The ``limits.csv`` row."""
        ref = self.reference_cross_section_cm2
        m2, m1, med, p1, p2 = (float(v) * ref for v in self.mu_expected)
        return {"mass_gev": self.mass_gev, "limit_cm2": self.mu_limit * ref, "expected_cm2": med,
                "expected_m2sigma_cm2": m2, "expected_m1sigma_cm2": m1, "expected_p1sigma_cm2": p1,
                "expected_p2sigma_cm2": p2}


def _model_and_data(workspace: dict[str, Any], patch: dict[str, Any]):
    ws = pyhf.Workspace(workspace)
    model = ws.model(patches=[pyhf.patchset.Patch(patch)],
                     modifier_settings={"normsys": {"interpcode": "code4"}, "histosys": {"interpcode": "code4p"}})
    return model, ws.data(model)


def limit_for_patch(workspace: dict[str, Any], patch: dict[str, Any], *, cl: float) -> MassLimit:
    """Observed and expected upper limits for one patch."""
    model, data = _model_and_data(workspace, patch)
    lo, hi = model.config.suggested_bounds()[model.config.poi_index]
    # toms748_scan directly: pyhf 0.7.6's upper_limit(scan=None) drops ``level`` and always
    # computes 95% CL limits (scikit-hep/pyhf#2563).
    field = f"patches[{patch['metadata']['name']}]"
    try:
        obs, exp = pyhf.infer.intervals.upper_limits.toms748_scan(data, model, lo, hi, level=1.0 - cl)
    except ValueError as exc:  # pyhf widens the bracket beyond the bounds when a limit lies outside them
        raise InvalidWorkspace(f"limit not bracketed by the POI bounds [{lo}, {hi}]; widen likelihood.poi_bounds "
                               f"({exc})", field=field) from None
    values = [float(obs), *(float(e) for e in exp)]
    if not all(np.isfinite(values)) or max(values) >= hi * (1 - 1e-6):
        raise InvalidWorkspace(f"limit not bracketed by the POI bounds [{lo}, {hi}]", field=field)
    return MassLimit(mass_gev=float(patch["metadata"]["values"][0]),
                     reference_cross_section_cm2=float(patch["metadata"]["reference_cross_section_cm2"]),
                     mu_limit=float(obs), mu_expected=tuple(float(e) for e in exp))


def compute_limits(workspace: dict[str, Any], patchset: dict[str, Any], *, cl: float = 0.9,
                   masses_gev: list[float] | None = None, progress: bool = True) -> list[MassLimit]:
    """Limits for every patch (or only the listed masses), sorted by mass."""
    pyhf.set_backend("numpy", pyhf.optimize.scipy_optimizer())
    patches = patchset["patches"]
    if masses_gev:
        patches = [p for p in patches if np.any(np.isclose(masses_gev, p["metadata"]["values"][0], rtol=1e-4))]
    out = []
    for p in tqdm(patches, desc="limits", unit="mass", disable=not progress, mininterval=1.0):
        out.append(limit_for_patch(workspace, p, cl=cl))
    return sorted(out, key=lambda r: r.mass_gev)


def cls_at(workspace: dict[str, Any], patch: dict[str, Any], mu: float) -> float:
    """Observed CLs at signal strength ``mu`` (asymptotic, q~mu) -- used to cross-check the limits."""
    model, data = _model_and_data(workspace, patch)
    return float(pyhf.infer.hypotest(mu, data, model, test_stat="qtilde", calctype="asymptotics"))
