"""Maximum-likelihood fits of the serialized likelihood with iminuit: pulls, correlations, MINOS, scans, GoF.

The objective is ``-2 ln L`` of the pyhf model (numpy backend, ``normsys`` code4 / ``histosys`` code4p
interpolation, the same model the limits use), minimized directly with iminuit (``errordef = 1``).
Staterror gammas (one per bin, hundreds) are not MINUIT parameters: at every evaluation they are set to
their analytic profile of the fast engine (:meth:`dmpreserve.stats.model.BinnedModel.gammas`), so MINUIT
minimizes the profile likelihood over the other parameters (same minimum, and HESSE of the profile
likelihood gives the errors and correlations of the listed parameters with the gammas profiled out).
Gammas are not listed in the parameter table, pulls or correlation matrix, nor counted as free
parameters of the goodness of fit (each has its own auxiliary measurement).

* **background-only fit**: MIGRAD + HESSE; post-fit values, errors, pulls (θ̂ − θ₀)/Δθ of the
  constrained parameters (Δθ = pre-fit constraint width) and the correlation matrix;
* **signal-plus-background fit** at a reference mass: the same plus MINOS for the POI ``mu`` and a
  profile-likelihood scan Δ(−2 ln L)(μ) = −2 ln λ(μ) (nuisance parameters refitted at each μ);
* **best-fit signal strength per mass**: μ̂ ± HESSE error, σ̂ = μ̂ × reference cross section;
* **goodness of fit, saturated model**: t_sat = −2 ln [L(θ̂) / L_sat], where the saturated model sets
  every bin's expectation to its observed count (and every constraint to its maximum). Asymptotically
  t_sat ~ χ² with ndof = number of bins − number of free (not fixed) parameters of the fit.  With few
  events per bin this approximation is poor, so the p-value is also computed from seeded toys
  (Poisson main-bin counts drawn from the best fit, auxiliary data held at their observed values,
  every toy refitted).

Numbers in the output are rounded to :data:`DIGITS` significant digits, so the JSON is byte-stable.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pyhf
from iminuit import Minuit
from scipy import stats
from tqdm import tqdm

from dmpreserve.artifacts.fit import FitResults
from dmpreserve.artifacts.likelihood import check_model, check_patches
from dmpreserve.errors import InvalidWorkspace
from dmpreserve.stats.limits import select_patches
from dmpreserve.stats.model import build_model

#: Significant digits kept in the JSON output (iminuit's last digits are not meaningful).
DIGITS = 7
#: Default number of points of the POI profile-likelihood scan.
SCAN_POINTS = 31
#: Default number of toys for the goodness-of-fit p-value (0: asymptotic χ² only).
GOF_TOYS = 100
#: Fitted values, errors and correlations below this magnitude are MINUIT noise and written as 0.
NOISE = 1e-7
MODIFIER_SETTINGS = {"normsys": {"interpcode": "code4"}, "histosys": {"interpcode": "code4p"}}
GOF_DEFINITION = (
    "saturated-model goodness of fit: t_sat = -2 ln[L(best fit) / L(saturated)], saturated = "
    "every bin's expectation equal to its observed count and every constraint at its maximum; "
    "p_value_chi2 = P(chi2(ndof) >= t_sat) with ndof = n_bins - n_free_parameters (free = not "
    "fixed in the fit, constrained nuisance parameters included); p_value_toys from Poisson toys "
    "of the main bins drawn from the best fit (auxiliary data held at the observed values), each "
    "refitted"
)


def rounded(value: float, digits: int = DIGITS, *, atol: float = 0.0) -> float:
    """``value`` rounded to ``digits`` significant digits (as a float); 0.0 if ``|value| < atol``."""
    value = float(value)
    return 0.0 if abs(value) < atol else float(f"{value:.{digits - 1}e}")


def _clean(value: float) -> float:
    """A fitted quantity of order one: rounded, and numerical noise below :data:`NOISE` set to 0."""
    return rounded(value, atol=NOISE)


@dataclasses.dataclass(frozen=True)
class MinuitMinimum:
    """One MIGRAD + HESSE minimum of ``-2 ln L`` (values in the model's parameter order)."""

    names: tuple[str, ...]
    values: tuple[float, ...]
    errors: tuple[float, ...]
    correlation: tuple[tuple[float, ...], ...]
    twice_nll: float
    valid: bool
    free: tuple[bool, ...]


class FitModel:
    """A pyhf model with its data, and iminuit fits of ``-2 ln L``.

    Args:
        workspace: Background-only workspace spec.
        patch: Optional signal patch (pyhf patchset entry); then ``mu`` is the POI.
        data: Optional data (main bins + auxiliary data) replacing the observed data.
    """

    def __init__(self, workspace: dict[str, Any], patch: dict[str, Any] | None = None, data=None):
        if pyhf.tensorlib.name != "numpy":
            pyhf.set_backend("numpy")
        ws = pyhf.Workspace(workspace)
        if patch is None:
            self.model = ws.model(poi_name=None, modifier_settings=MODIFIER_SETTINGS)
        else:
            self.model = ws.model(patches=[pyhf.patchset.Patch(patch)], modifier_settings=MODIFIER_SETTINGS)
        self.data = np.asarray(ws.data(self.model) if data is None else data, dtype=float)
        cfg = self.model.config
        self.full_init = np.asarray(cfg.suggested_init(), dtype=float)
        stat = {name for name, kind in cfg.modifiers if kind == "staterror"}
        names = list(cfg.par_names)
        self._keep = [i for i, n in enumerate(names) if n.split("[")[0] not in stat]
        self._engine = build_model(workspace, patch, background_only=patch is None) if stat else None
        if self._engine is not None:
            self._theta_at = [names.index(n) if n in names else -1 for n in self._engine.param_names]
            self._gamma_at = [names.index(n) for n in self._engine.gamma_names]
            aux_names = []
            for name in cfg.auxdata_order:
                sl = cfg.par_slice(name)
                aux_names.extend(names[sl] if name in stat else [name] * (sl.stop - sl.start))
            wanted = self._engine.alpha_names + self._engine.gamma_names
            self._aux_at = [aux_names.index(n) for n in wanted]
        self.names = tuple(names[i] for i in self._keep)
        self.init = self.full_init[self._keep]
        bounds = [tuple(float(b) for b in bound) for bound in cfg.suggested_bounds()]
        self.bounds = [bounds[i] for i in self._keep]
        self.fixed = tuple(bool(cfg.suggested_fixed()[i]) for i in self._keep)
        self.poi_index = None if cfg.poi_index is None else self._keep.index(cfg.poi_index)
        widths = []
        for name in cfg.par_order:
            sl = cfg.par_slice(name)
            par = cfg.param_set(name)
            width = par.width() if hasattr(par, "width") else [None] * (sl.stop - sl.start)
            widths.extend(None if w is None else float(w) for w in width)
        self.prefit_width = tuple(widths[i] for i in self._keep)
        self.prefit_value = tuple(float(v) for v in self.init)

    def expand(self, pars, data=None) -> np.ndarray:
        """pyhf's full parameter vector: ``pars`` (the listed parameters) and the profiled staterror gammas."""
        pars = np.asarray(pars, dtype=float)
        if self._engine is None:
            return pars
        d = self.data if data is None else np.asarray(data, dtype=float)
        full = self.full_init.copy()
        full[self._keep] = pars
        theta = np.array([full[i] if i >= 0 else 0.0 for i in self._theta_at])
        n_main = self.model.config.nmaindata
        aux = d[n_main:][self._aux_at]
        full[self._gamma_at] = self._engine.gammas(theta[None], d[:n_main][None], aux[None])[0]
        return full

    def twice_nll(self, pars, data=None) -> float:
        """``-2 ln L`` at ``pars`` (the model's data unless ``data`` is given)."""
        d = self.data if data is None else data
        value = -2.0 * float(self.model.logpdf(self.expand(pars, d), d)[0])
        return value if np.isfinite(value) else 1e300

    def minuit(self, *, data=None, start=None, fix: dict[int, float] | None = None) -> Minuit:
        """A Minuit object on ``-2 ln L`` (errordef 1), minimized with MIGRAD; ``fix`` maps index -> value."""
        d = self.data if data is None else np.asarray(data, dtype=float)
        x0 = np.array(self.init if start is None else start, dtype=float)
        for idx, val in (fix or {}).items():
            x0[idx] = val
        m = Minuit(lambda p: self.twice_nll(p, d), x0, name=self.names)
        m.errordef = Minuit.LEAST_SQUARES
        m.strategy = 1
        m.tol = 0.01
        m.print_level = 0
        m.limits = self.bounds
        for idx, is_fixed in enumerate(self.fixed):
            m.fixed[idx] = is_fixed or idx in (fix or {})
        m.migrad()
        return m

    def fit(self, *, data=None, start=None, fix: dict[int, float] | None = None, hesse: bool = True) -> MinuitMinimum:
        """MIGRAD (+ HESSE) fit; raises InvalidWorkspace when MINUIT finds no valid minimum."""
        m = self.minuit(data=data, start=start, fix=fix)
        if hesse:
            m.hesse()
        n = len(self.names)
        free = tuple(not m.fixed[i] for i in range(n))
        corr = np.eye(n)
        if hesse and m.covariance is not None:
            cov = np.asarray(m.covariance, dtype=float)
            sd = np.sqrt(np.clip(np.diag(cov), 0.0, None))
            with np.errstate(invalid="ignore", divide="ignore"):
                corr = np.where(np.outer(sd, sd) > 0, cov / np.outer(sd, sd), 0.0)
            np.fill_diagonal(corr, 1.0)
        return MinuitMinimum(
            names=self.names,
            values=tuple(float(v) for v in m.values),
            errors=tuple(float(e) if f else 0.0 for e, f in zip(m.errors, free)),
            correlation=tuple(tuple(float(c) for c in row) for row in corr),
            twice_nll=float(m.fval),
            valid=bool(m.valid),
            free=free,
        )

    def saturated_statistic(self, pars, data=None) -> float:
        """t_sat = -2 ln[L(pars)/L_sat] for ``data`` whose auxiliary part is the nominal auxiliary data."""
        d = self.data if data is None else np.asarray(data, dtype=float)
        n_main = self.model.config.nmaindata
        n = d[:n_main]
        full = self.expand(pars, d)
        nu = np.asarray(self.model.expected_actualdata(full), dtype=float)[:n_main]
        if np.any((nu <= 0) & (n > 0)):
            raise InvalidWorkspace(
                "a bin with observed events has zero expectation; the saturated-model goodness of fit is undefined",
                field="observations",
            )
        with np.errstate(divide="ignore", invalid="ignore"):
            log_term = np.where(n > 0, n * np.log(np.where(n > 0, n, 1.0) / np.where(nu > 0, nu, 1.0)), 0.0)
        main = 2.0 * float(np.sum(nu - n + log_term))
        aux = d[n_main:]
        constraint = -2.0 * (
            float(np.sum(self.model.constraint_logpdf(aux, full)))
            - float(np.sum(self.model.constraint_logpdf(aux, self.full_init)))
        )
        return max(main + constraint, 0.0)


def _parameter_rows(lik: FitModel, result: MinuitMinimum, *, skip: tuple[int, ...] = ()) -> list[dict[str, Any]]:
    rows = []
    for idx, name in enumerate(result.names):
        if idx in skip:
            continue
        value, error = _clean(result.values[idx]), _clean(result.errors[idx])
        prefit, width = lik.prefit_value[idx], lik.prefit_width[idx]
        rows.append(
            {
                "name": name,
                "value": value,
                "error": error,
                "prefit_value": rounded(prefit),
                "prefit_error": None if width is None else rounded(width),
                "pull": None if width is None else _clean((value - prefit) / width),
                "fixed": not result.free[idx],
            }
        )
    return rows


def _correlation(result: MinuitMinimum) -> dict[str, Any]:
    keep = [i for i, f in enumerate(result.free) if f]
    return {
        "names": [result.names[i] for i in keep],
        "matrix": [[_clean(result.correlation[i][j]) for j in keep] for i in keep],
    }


def goodness_of_fit(
    lik: FitModel, result: MinuitMinimum, *, toys: int = 0, seed: int = 0, progress: bool = False
) -> dict[str, Any]:
    """Saturated-model goodness of fit of ``result`` (see the module docstring).

    Args:
        lik: The likelihood that was fitted.
        result: Its best fit.
        toys: Number of toys for the toy-based p-value (0: none).
        seed: Seed of the toys (numpy ``default_rng``).
        progress: Show a progress bar.

    Returns:
        ``{t_sat, n_bins, n_free_parameters, ndof, p_value_chi2, toys, p_value_toys, p_value_toys_error,
        seed, definition}`` (p_value_toys null without toys).
    """
    t_obs = lik.saturated_statistic(result.values)
    n_bins = int(lik.model.config.nmaindata)
    n_free = int(sum(result.free))
    ndof = n_bins - n_free
    out = {
        "t_sat": rounded(t_obs),
        "n_bins": n_bins,
        "n_free_parameters": n_free,
        "ndof": ndof,
        "p_value_chi2": rounded(float(stats.chi2.sf(t_obs, ndof))) if ndof > 0 else None,
        "toys": int(toys),
        "seed": int(seed),
        "p_value_toys": None,
        "p_value_toys_error": None,
        "definition": GOF_DEFINITION,
    }
    if toys > 0:
        rng = np.random.default_rng(seed)
        n_main = lik.model.config.nmaindata
        nu = np.asarray(lik.model.expected_actualdata(lik.expand(result.values)), dtype=float)[:n_main]
        aux = lik.data[n_main:]
        counts = rng.poisson(np.clip(nu, 0.0, None), size=(toys, n_main)).astype(float)
        above = 0
        for row in tqdm(counts, desc="GoF toys", unit="toy", disable=not progress, mininterval=1.0):
            data = np.concatenate([row, aux])
            toy_fit = lik.fit(data=data, start=result.values, hesse=False)
            above += lik.saturated_statistic(toy_fit.values, data) >= t_obs
        p = above / toys
        out["p_value_toys"] = rounded(p)
        out["p_value_toys_error"] = rounded(np.sqrt(max(p * (1 - p), 1.0 / toys) / toys))
    return out


def fit_background_only(
    workspace: dict[str, Any], *, gof_toys: int = 0, seed: int = 0, progress: bool = False
) -> dict[str, Any]:
    """Background-only fit with MINUIT (MIGRAD + HESSE), pulls, correlations and goodness of fit.

    Returns:
        ``{"parameters": [{name, value, error, prefit_value, prefit_error, pull, fixed}], "yields": [{sample,
        prefit_events, postfit_events, postfit_error}] (:func:`dmpreserve.stats.yields.sample_yields`), "twice_nll",
        "valid", "correlation": {names, matrix}, "goodness_of_fit": {...}, "method"}``; the pull of a
        constrained parameter is (value - prefit) / prefit_error (null for unconstrained ones).
    """
    from dmpreserve.stats.yields import sample_yields

    lik = FitModel(workspace)
    result = lik.fit()
    yields = [
        {k: (rounded(v) if isinstance(v, float) else v) for k, v in row.items()} for row in sample_yields(lik, result)
    ]
    return {
        "parameters": _parameter_rows(lik, result),
        "yields": yields,
        "twice_nll": rounded(result.twice_nll),
        "valid": result.valid,
        "correlation": _correlation(result),
        "goodness_of_fit": goodness_of_fit(lik, result, toys=gof_toys, seed=seed, progress=progress),
        "method": "background-only maximum-likelihood fit of -2 ln L (pyhf model, numpy backend) with "
        "iminuit: MIGRAD, HESSE",
    }


def _scan(lik: FitModel, best: MinuitMinimum, *, lo: float, hi: float, points: int) -> dict[str, Any]:
    """Profile-likelihood scan of the POI: -2 ln lambda(mu) on ``points`` equidistant values in [lo, hi]."""
    poi = lik.poi_index
    mus = np.linspace(lo, hi, points)
    deltas = []
    start = np.array(best.values)
    for mu in mus:
        fitted = lik.fit(start=start, fix={poi: float(mu)}, hesse=False)
        deltas.append(max(fitted.twice_nll - best.twice_nll, 0.0))
    return {
        "mu": [rounded(v) for v in mus],
        "delta_twice_nll": [_clean(v) for v in deltas],
        "definition": "-2 ln lambda(mu) = -2 ln L(mu, profiled nuisance parameters) + 2 ln L(best fit)",
    }


def _minos(m: Minuit, name: str) -> dict[str, Any]:
    try:
        m.minos(name)
        err = m.merrors[name]
    except (RuntimeError, KeyError, ValueError):
        return {
            "minos_lower": None,
            "minos_upper": None,
            "minos_valid": False,
            "minos_at_lower_limit": False,
            "minos_at_upper_limit": False,
        }
    return {
        "minos_lower": _clean(err.lower),
        "minos_upper": _clean(err.upper),
        "minos_valid": bool(err.is_valid),
        "minos_at_lower_limit": bool(err.at_lower_limit),
        "minos_at_upper_limit": bool(err.at_upper_limit),
    }


def _patch_info(patch: dict[str, Any]) -> tuple[str, float, float]:
    meta = patch["metadata"]
    return str(meta["name"]), float(meta["values"][0]), float(meta["reference_cross_section_cm2"])


def fit_signal_plus_background(
    workspace: dict[str, Any], patch: dict[str, Any], *, scan_points: int = SCAN_POINTS
) -> dict[str, Any]:
    """Signal-plus-background fit for one patch: MIGRAD, HESSE, MINOS for ``mu``, scan and GoF (χ² only).

    Returns:
        ``{patch, mass_gev, reference_cross_section_cm2, poi: {name, value, error, minos_*, cross_section_cm2,
        cross_section_error_cm2}, parameters, twice_nll, valid, correlation, delta_twice_nll_mu0, scan,
        goodness_of_fit}``; ``delta_twice_nll_mu0`` = -2 ln lambda(0), the discovery statistic q0 when mu^ > 0.
    """
    name, mass, ref = _patch_info(patch)
    lik = FitModel(workspace, patch)
    poi = lik.poi_index
    m = lik.minuit()
    m.hesse()
    best = lik.fit(start=np.array(m.values))
    poi_name = lik.names[poi]
    mu_hat, mu_err = _clean(best.values[poi]), _clean(best.errors[poi])
    minos = _minos(m, poi_name)
    reach = max(mu_err, minos["minos_upper"] or 0.0, 1e-3 * (lik.bounds[poi][1] - lik.bounds[poi][0]))
    lo, hi = lik.bounds[poi][0], min(lik.bounds[poi][1], mu_hat + 3.5 * reach)
    at_zero = lik.fit(start=np.array(best.values), fix={poi: max(0.0, lo)}, hesse=False)
    return {
        "patch": name,
        "mass_gev": rounded(mass),
        "reference_cross_section_cm2": ref,
        "poi": {
            "name": poi_name,
            "value": mu_hat,
            "error": mu_err,
            **minos,
            "cross_section_cm2": rounded(mu_hat * ref),
            "cross_section_error_cm2": rounded(mu_err * ref),
        },
        "parameters": _parameter_rows(lik, best, skip=(poi,)),
        "twice_nll": rounded(best.twice_nll),
        "valid": best.valid,
        "correlation": _correlation(best),
        "delta_twice_nll_mu0": _clean(max(at_zero.twice_nll - best.twice_nll, 0.0)),
        "scan": _scan(lik, best, lo=lo, hi=hi, points=scan_points),
        "goodness_of_fit": goodness_of_fit(lik, best, toys=0),
    }


def best_fit_per_mass(
    workspace: dict[str, Any], patches: list[dict[str, Any]], *, progress: bool = False
) -> list[dict[str, Any]]:
    """mu^ +- HESSE error and sigma^ = mu^ x reference cross section [cm^2] for every patch, sorted by mass."""
    rows = []
    for patch in tqdm(patches, desc="S+B fits", unit="mass", disable=not progress, mininterval=1.0):
        name, mass, ref = _patch_info(patch)
        lik = FitModel(workspace, patch)
        best = lik.fit()
        poi = lik.poi_index
        at_zero = lik.fit(start=np.array(best.values), fix={poi: max(0.0, lik.bounds[poi][0])}, hesse=False)
        mu_hat, mu_err = _clean(best.values[poi]), _clean(best.errors[poi])
        rows.append(
            {
                "patch": name,
                "mass_gev": rounded(mass),
                "reference_cross_section_cm2": ref,
                "mu_hat": mu_hat,
                "mu_hat_error": mu_err,
                "cross_section_hat_cm2": rounded(mu_hat * ref),
                "cross_section_hat_error_cm2": rounded(mu_err * ref),
                "delta_twice_nll_mu0": _clean(max(at_zero.twice_nll - best.twice_nll, 0.0)),
                "valid": best.valid,
            }
        )
    return sorted(rows, key=lambda r: r["mass_gev"])


def reference_patch(patchset: dict[str, Any], mass_gev: float) -> dict[str, Any]:
    """The patch whose mass is closest to ``mass_gev`` in log(mass)."""
    patches = patchset["patches"]
    if not patches:
        raise InvalidWorkspace("patchset has no patches", field="$.patches")
    if not np.isfinite(mass_gev) or mass_gev <= 0:
        raise InvalidWorkspace(
            f"reference mass must be positive and finite, got {mass_gev!r}", field="--reference-mass"
        )
    masses = np.array([float(p["metadata"]["values"][0]) for p in patches])
    return patches[int(np.argmin(np.abs(np.log(masses / mass_gev))))]


def fit_all(
    workspace: dict[str, Any],
    patchset: dict[str, Any] | None = None,
    *,
    reference_mass_gev: float = 50.0,
    scan_points: int = SCAN_POINTS,
    gof_toys: int = GOF_TOYS,
    seed: int = 0,
    progress: bool = False,
    masses_gev: list[float] | None = None,
) -> FitResults:
    """Everything written to ``results/fit/fit.json`` (schema ``fit``).

    The background-only fit is at the top level (``parameters``, ``twice_nll``, ``correlation``,
    ``goodness_of_fit``); with a patchset, ``signal_plus_background`` holds the full fit at the patch
    closest to ``reference_mass_gev`` and ``best_fit_per_mass`` the best-fit signal strength per mass (the
    patches of ``masses_gev`` [GeV/c^2], as ``limits.masses_gev`` selects them, or every patch).
    Fits whose MINUIT minimum is not valid keep their values in fit.json, flagged ``valid: false``;
    plots and HEPData leave them out.

    Raises:
        InvalidWorkspace: the shared likelihood checks fail (:func:`dmpreserve.artifacts.likelihood.check_model`
            and ``check_patches``; ``read_likelihood`` runs them, with the document checks, for the CLI).
    """
    check_model(workspace)
    if patchset is not None:
        check_patches(workspace, patchset["patches"])
    if scan_points < 3:
        raise InvalidWorkspace(f"need at least 3 scan points, got {scan_points}", field="--scan-points")
    if gof_toys < 0:
        raise InvalidWorkspace(f"must not be negative, got {gof_toys}", field="--gof-toys")
    doc = fit_background_only(workspace, gof_toys=gof_toys, seed=seed, progress=progress)
    if patchset is not None:
        patch = reference_patch(patchset, reference_mass_gev)
        doc["signal_plus_background"] = fit_signal_plus_background(workspace, patch, scan_points=scan_points)
        patches = select_patches(patchset, masses_gev)
        if not patches:
            raise InvalidWorkspace(f"no patch at the masses {masses_gev} GeV", field="--masses")
        doc["best_fit_per_mass"] = best_fit_per_mass(workspace, patches, progress=progress)
        doc["method"] += (
            "; signal-plus-background fits (mu = signal strength, sigma_SI = mu x reference cross "
            "section): MIGRAD, HESSE, MINOS for mu, profile-likelihood scan of mu"
        )
    return FitResults.from_json(doc)
