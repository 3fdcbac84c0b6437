"""The XENONnT template release's own likelihood, with its yield grid interpolated exactly as the release does.

The release's statistical model (XENONnT/light_wimp_data_release ``test_statistical_model.yaml``: alea
``TemplateSource`` sources in a blueice ``BinnedLogLikelihood``, t_ly and t_qy with ``blueice_anchors``
-3 ... 3) interpolates every grid component's expected counts per bin *linearly* between the 7 x 7 anchors
(blueice's default ``GridInterpolator``).  This module evaluates that likelihood with
``scipy.interpolate.RegularGridInterpolator`` (bilinear) and fits it with ``scipy.optimize.minimize``:
an implementation independent of pyhf's normsys/histosys, used to *measure* how well the kit's pyhf
modifiers approximate the grid (benchmarks/check_release_interpolation.py, tests).

Only the yield treatment differs from the kit's workspace: the rate constraints (normsys, Gaussian
alphas) are taken from the workspace itself and evaluated with pyhf's code4 interpolator.  Limits are
asymptotic (two-sided t~mu, chi2_1 threshold, Asimov median), as :func:`dmpreserve.stats.asymptotic`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pyhf.interpolators import code4
from scipy import optimize, stats
from scipy.interpolate import RegularGridInterpolator

from dmpreserve.reinterpret.release import YIELD_GRID, Release
from dmpreserve.reinterpret.xenonnt import YIELDS, grid_templates

GRID_SAMPLES = ("rg", "b8", "signal")


class ExactReleaseModel:
    """Negative log-likelihood of the release with bilinear yield interpolation.

    Parameters (vector): ``mu``, ``t_ly``, ``t_qy``, then one alpha per rate normsys of the workspace.

    Args:
        release: The release (grids of rg and of the mono templates).
        workspace: The kit's background-only workspace (rate normsys, observations, ac/er templates).
        patch: The signal patch (its nominal total fixes the signal's scale: mu as in the kit).
        signal_weights: Mono weights of the signal spectrum (any normalisation).
        b8_weights: Mono weights of the 8B CEvNS spectrum (as the importer's).
        fix_yields: Hold t_ly = t_qy = 0 (compare with a workspace imported with fixed yields).
    """

    def __init__(
        self,
        release: Release,
        workspace: dict[str, Any],
        patch: dict[str, Any],
        signal_weights: np.ndarray,
        b8_weights: np.ndarray,
        *,
        fix_yields: bool = False,
    ) -> None:
        sig = grid_templates(release, signal_weights)
        patch_total = sum(float(np.sum(op["value"]["data"])) for op in patch["patch"])
        scale = patch_total / sum(float(g[3, 3].sum()) for g in sig)
        grids = {
            "rg": [run.rg * run.livetime_t_yr for run in release.runs],
            "b8": grid_templates(release, b8_weights),
            "signal": [g * scale for g in sig],
        }
        axes = (np.asarray(YIELD_GRID), np.asarray(YIELD_GRID))
        self.rates = sorted(
            {
                m["name"]
                for ch in workspace["channels"]
                for s in ch["samples"]
                for m in s["modifiers"]
                if m["type"] == "normsys" and m["name"] not in YIELDS
            }
        )
        self.observed = [np.asarray(o["data"], float) for o in workspace["observations"]]
        hilo: list[tuple[float, float]] = []  # every rate normsys of every sample, in order
        which: list[int] = []  # its rate parameter
        self.terms = []  # per channel: (template or interpolator, is_signal, indices into hilo)

        def norms(sample: dict[str, Any]) -> list[int]:
            out = []
            for m in sample["modifiers"]:
                if m["type"] == "normsys" and m["name"] not in YIELDS:
                    out.append(len(hilo))
                    hilo.append((m["data"]["lo"], m["data"]["hi"]))
                    which.append(self.rates.index(m["name"]))
            return out

        for i, ch in enumerate(workspace["channels"]):
            self.terms.append(
                [
                    (
                        RegularGridInterpolator(axes, grids[s["name"]][i], method="linear")
                        if s["name"] in GRID_SAMPLES
                        else np.asarray(s["data"], float),
                        False,
                        norms(s),
                    )
                    for s in ch["samples"]
                ]
            )
        for op in patch["patch"]:
            i = int(op["path"].split("/")[2])
            interp = RegularGridInterpolator(axes, grids["signal"][i], method="linear")
            self.terms[i].append((interp, True, norms(op["value"])))
        self._code4 = code4(np.array([[[[lo], [1.0], [hi]]] for lo, hi in hilo]))
        self._which = np.array(which, int)
        self.n_params = 3 + len(self.rates)
        self.bounds = [(0.0, None)] + [(0.0, 0.0) if fix_yields else (-3.0, 3.0)] * 2 + [(-5.0, 5.0)] * len(self.rates)

    def expected(self, theta: np.ndarray) -> list[np.ndarray]:
        """Expected counts per channel at parameters ``theta``."""
        mu, point = theta[0], np.array([[theta[1], theta[2]]])
        factors = np.ravel(self._code4(theta[3 + self._which][:, None]))
        out = []
        for samples in self.terms:
            nu = 0.0
            for shape, is_signal, idx in samples:
                v = shape(point)[0] if callable(shape) else shape
                nu = nu + (mu if is_signal else 1.0) * float(np.prod(factors[idx])) * v
            out.append(nu)
        return out

    def nll(self, theta: np.ndarray, data: list[np.ndarray], aux: np.ndarray) -> float:
        """-ln L (Poisson main terms without ln n!, unit Gaussian constraints around ``aux``)."""
        total = 0.0
        for nu, n in zip(self.expected(theta), data):
            nu = np.clip(nu, 1e-300, None)
            total += float(np.sum(nu - n * np.log(nu)))
        return total + 0.5 * float(np.sum((theta[1:] - aux) ** 2))

    def fit(self, data, aux, mu: float | None = None, start: np.ndarray | None = None) -> tuple[float, np.ndarray]:
        """Minimum of -ln L (mu fixed when given), from ``start`` or the nominal point."""
        x0 = np.zeros(self.n_params) if start is None else np.array(start, float)
        bounds = list(self.bounds)
        if mu is not None:
            x0[0] = mu
            bounds[0] = (mu, mu)
        else:
            x0[0] = max(x0[0], 0.1)
        r = optimize.minimize(
            self.nll, x0, args=(data, aux), method="L-BFGS-B", bounds=bounds, options={"ftol": 1e-12, "gtol": 1e-8}
        )
        return float(r.fun), r.x


def asymptotic_limits(model: ExactReleaseModel, cl: float = 0.9) -> dict[str, float]:
    """Observed two-sided t~mu upper limit and Asimov median [mu], as the fast engine defines them.

    The Asimov dataset is the expectation at mu = 0 and the nuisances of the mu = 0 fit to the observed
    data, with the auxiliary data at those nuisances (pyhf's convention).
    """
    c = float(stats.chi2.ppf(cl, 1))
    aux0 = np.zeros(model.n_params - 1)
    cond0 = model.fit(model.observed, aux0, mu=0.0)[1]
    asimov = model.expected(cond0)
    aux_a = cond0[1:].copy()

    def limit(data, aux) -> float:
        f_hat, x_hat = model.fit(data, aux, start=cond0)
        mu_hat = x_hat[0]

        def g(mu: float) -> float:
            return 2.0 * (model.fit(data, aux, mu=mu, start=x_hat)[0] - f_hat) - c

        hi = max(2.0 * mu_hat, 1.0)
        while g(hi) < 0:
            hi *= 2.0
        return float(optimize.brentq(g, mu_hat, hi, xtol=1e-6, rtol=1e-6))

    return {"observed": limit(model.observed, aux0), "median": limit(asimov, aux_a)}


def si_setup(release: Release, mass_gev: float, *, fix_yields: bool = False) -> dict[str, Any]:
    """The kit's workspace of ``release`` (yields profiled or fixed), the SI patch at ``mass_gev`` (reference
    cross section 1e-45 cm2) and this module's exact model of it, for tests and benchmarks.

    Returns:
        ``workspace``, ``patch``, ``weights`` (mono-energetic template weights of the SI spectrum),
        ``reference`` (the patch's cross section at mu = 1 [cm2]), ``exact`` (:class:`ExactReleaseModel`).
    """
    from dmpreserve.physics.halo import StandardHalo
    from dmpreserve.physics.signal_models import model_from_dict
    from dmpreserve.reinterpret import xenonnt
    from dmpreserve.reinterpret.release_kit import make_patchset, nr_model_weights

    ws = xenonnt.build_workspace(release, fix_yields=fix_yields)
    w = nr_model_weights(model_from_dict({"model": "si"}), mass_gev, StandardHalo(), release.mono_energies_kev)
    ps, refs, _ = make_patchset(
        xenonnt.mono_document(release), [(mass_gev, w, 1e-45)], label="si", signal_efficiency=False
    )
    patch = ps["patches"][0]
    if fix_yields:  # the patch's signal without its yield modifiers
        for op in patch["patch"]:
            op["value"]["modifiers"] = [m for m in op["value"]["modifiers"] if m["name"] not in YIELDS]
    exact = ExactReleaseModel(release, ws, patch, w, xenonnt.b8_weights(release), fix_yields=fix_yields)
    return {"workspace": ws, "patch": patch, "weights": w, "reference": float(refs[0]), "exact": exact}
