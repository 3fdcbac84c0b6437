"""A XENONnT template release as a preserved pyhf likelihood, signal patchsets and a reinterpretation kit.

Likelihood (one pyhf channel per science run, its 81 bins flattened C-order over the four observables):

* samples ``ac`` (accidental coincidences), ``er``, ``rg`` (radiogenic neutrons), ``b8`` (solar 8B CEvNS)
  and, per patch, ``signal`` (normfactor ``mu``); expected events = template [/(t yr)] x livetime [t yr];
* rate constraints: normsys (pyhf code4) with the relative uncertainties of the *earlier* XENONnT release
  (XENONnT/light_wimp_data_release ``statistical_model_base.yaml``, commit a09cd8f; PRL 134, 111802).
  The 2026 release states no priors: these are presumed (see :data:`PRIORS`);
* yield nuisances t_ly, t_qy (unit Gaussian): the release gives every NR template on a 7 x 7 grid
  t in {-3, ..., 3}.  Each direction is one pyhf nuisance acting as a normsys (the grid's total-rate
  ratio at t = +-1: exponential extrapolation, so steep threshold signals stay positive) plus a
  histosys (the shape at t = +-1, normalised to the nominal total; code4p).  Effects of t_ly and t_qy
  multiply; :func:`yield_interpolation_check` compares that with the grid at its corners.

NR signals from the mono-energetic efficiency templates eff_k(bin) at E_k (0.5-5.0 keV, 0.1 keV steps):
template(bin) = sum_k w_k eff_k(bin) with w_k = integral dR/dE(E) h_k(E) dE, h_k the piecewise-linear hat
functions on the energy grid (the efficiency is interpolated linearly in E; recoils below the first or
above the last energy are not counted).  This rule is ours: the release says only "convolve".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from dmpreserve.errors import InvalidSpectrum
from dmpreserve.physics.neutrinos import B8_FLUX_CM2_S, rate_cevns_8b
from dmpreserve.reinterpret.release import YIELD_GRID, Release
from dmpreserve.stats.grid import SampleGrid

POI = "mu"
MEASUREMENT = "xenonnt_2026_light_dm"
POI_BOUNDS = (0.0, 1000.0)
#: The yield nuisance parameters (the grid's axes, in the order of its indices).
YIELDS = ("t_ly", "t_qy")
YIELD_BOUNDS = (-3.0, 3.0)
TARGET_EVENTS = 10.0
"""Expected signal events (all runs, nominal yields) at each patch's reference strength (mu = 1)."""
PUBLISHED_SI_MASSES_GEV = (3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0)
GAUSS_POINTS = 16
_I0 = YIELD_GRID.index(0.0)
#: Anchors of the yield interpolation: name -> (t_ly, t_qy) grid point.
ANCHORS = {
    "nominal": (0.0, 0.0),
    "t_ly_hi": (1.0, 0.0),
    "t_ly_lo": (-1.0, 0.0),
    "t_qy_hi": (0.0, 1.0),
    "t_qy_lo": (0.0, -1.0),
}
_EARLIER = "XENONnT/light_wimp_data_release@a09cd8f statistical_model_base.yaml (presumed for the 2026 release)"
#: Gaussian relative rate uncertainties (normsys hi = 1 + u, lo = 1 - u; ER: factor 2 up and down).
PRIORS: dict[str, dict[str, Any]] = {
    "ac_sr0_rate": {"relative": 0.0904, "source": _EARLIER},
    "ac_sr1_rate": {"relative": 0.0576, "source": _EARLIER},
    "ac_sr2_rate": {"relative": 0.0576, "source": "not in any release: the SR1 value is reused (presumed)"},
    "er_rate": {"relative": 1.0, "source": _EARLIER + "; 100% as normsys hi 2, lo 0.5 (log-normal approximation)"},
    "nr_rate": {"relative": 0.58, "source": _EARLIER},
    "b8_rate": {"relative": 0.0381, "source": _EARLIER + " (8B flux, SNO PRC 88 025501)"},
    "t_ly": {"gaussian_sigma": 1.0, "bounds": list(YIELD_BOUNDS), "source": _EARLIER},
    "t_qy": {"gaussian_sigma": 1.0, "bounds": list(YIELD_BOUNDS), "source": _EARLIER},
}
SIGNAL_EFFICIENCY = {"relative": 0.25, "source": _EARLIER + "; shared by the DM signal and 8B (off by default)"}


def efficiency_width(value: bool | float | None) -> float:
    """Relative width of the shared ``signal_efficiency`` normsys (0: none).

    ``True`` (a flag given without a width, e.g. ``import-release --signal-efficiency``) means the earlier
    release's 0.25 (:data:`SIGNAL_EFFICIENCY`); ``False``/``None`` none; a number is the width itself.

    Raises:
        ValueError: a width outside [0, 1) (the normsys' lower factor 1 - width must stay positive).
    """
    if value is True:
        return float(SIGNAL_EFFICIENCY["relative"])
    if value is None or value is False:
        return 0.0
    width = float(value)
    if not 0.0 <= width < 1.0:
        raise ValueError(f"the shared signal-efficiency width must be in [0, 1), got {width!r}")
    return width


def workspace_efficiency_width(workspace: dict[str, Any]) -> float:
    """The width of the ``signal_efficiency`` normsys a kit's workspace puts on 8B (hi - 1; 0 when there is none):
    the signal patches get the same, whatever an older ``kit.json`` recorded."""
    for channel in workspace["channels"]:
        for sample in channel["samples"]:
            for mod in sample["modifiers"]:
                if mod["name"] == "signal_efficiency" and mod["type"] == "normsys":
                    return efficiency_width(round(float(mod["data"]["hi"]) - 1.0, 12))
    return 0.0


def mono_weights(rate: Callable[[np.ndarray], np.ndarray], energies_kev: np.ndarray) -> np.ndarray:
    """Hat-function weights w_k = integral dR/dE(E) h_k(E) dE [events/(t yr)] on the mono energy grid.

    Args:
        rate: dR/dE [events/(t yr keV)] of the NR energy [keV].
        energies_kev: The mono-energetic template energies (increasing), shape (n,).

    Returns:
        Weights, shape (n,): template(bin) = sum_k w_k eff_k(bin) [events/(t yr)].

    Raises:
        InvalidSpectrum: non-finite or negative rates.
    """
    x, w = np.polynomial.legendre.leggauss(GAUSS_POINTS)
    e = np.asarray(energies_kev, float)
    out = np.zeros(len(e))
    for k in range(len(e) - 1):
        a, b = e[k], e[k + 1]
        xx = 0.5 * (a + b) + 0.5 * (b - a) * x
        r = np.asarray(rate(xx), float)
        if not np.all(np.isfinite(r)) or np.any(r < 0):
            raise InvalidSpectrum(f"dR/dE must be finite and >= 0 on {a:g}-{b:g} keV", field="dr_de")
        f = (xx - a) / (b - a)
        out[k] += 0.5 * (b - a) * np.sum(w * r * (1 - f))
        out[k + 1] += 0.5 * (b - a) * np.sum(w * r * f)
    return out


def grid_templates(release: Release, weights: np.ndarray) -> list[np.ndarray]:
    """Per run, sum_k w_k mono_k x livetime: expected events [events], shape (7, 7, 81) on the yield grid."""
    return [np.einsum("k,kijb->ijb", weights, run.mono) * run.livetime_t_yr for run in release.runs]


def anchors(grid: np.ndarray) -> dict[str, np.ndarray]:
    """The five anchor templates of :data:`ANCHORS` from a (7, 7, n_bins) grid."""
    return {k: grid[_I0 + int(a), _I0 + int(b)] for k, (a, b) in ANCHORS.items()}


def yield_modifiers(anc: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """normsys (total-rate ratio) + histosys (normalised shape) for t_ly and t_qy from the anchors."""
    nominal = np.asarray(anc["nominal"], float)
    n0 = float(nominal.sum())
    mods = []
    for par in ("t_ly", "t_qy"):
        hi, lo = np.asarray(anc[f"{par}_hi"], float), np.asarray(anc[f"{par}_lo"], float)
        fh, fl = float(hi.sum()) / n0, float(lo.sum()) / n0
        mods.append({"name": par, "type": "normsys", "data": {"hi": fh, "lo": fl}})
        mods.append(
            {"name": par, "type": "histosys", "data": {"hi_data": (hi / fh).tolist(), "lo_data": (lo / fl).tolist()}}
        )
    return mods


def grid_document(release: Release, *, b8_mono_weights: np.ndarray | None = None) -> dict[str, Any]:
    """The kit's ``yield_grids.json``: every grid component of every run on the full (t_ly, t_qy) grid.

    Per run: ``rg`` and ``b8`` [events] and the mono-energetic efficiencies ``mono`` (dimensionless), shapes
    (7, 7, 81) and (energy, 7, 7, 81); read back by :func:`release_grids`.  ``b8_mono_weights``: the 8B
    component's weights on the mono templates (default :func:`b8_weights`, the project's 8B spectrum).
    """
    b8 = grid_templates(release, b8_weights(release) if b8_mono_weights is None else b8_mono_weights)
    return {
        "parameters": list(YIELDS),
        "axis": list(YIELD_GRID),
        "energies_kev": release.mono_energies_kev.tolist(),
        "runs": [
            {"name": run.name, "livetime_t_yr": run.livetime_t_yr, "rg": (run.rg * run.livetime_t_yr).tolist()}
            | {"b8": g8.tolist(), "mono": run.mono.tolist()}
            for run, g8 in zip(release.runs, b8)
        ],
        "units": {
            "rg": "events per bin [t_ly][t_qy][bin]",
            "b8": "events per bin [t_ly][t_qy][bin]",
            "mono": "detection efficiency per bin [energy][t_ly][t_qy][bin]",
            "livetime_t_yr": "t yr",
        },
    }


def release_grids(
    doc: dict[str, Any], patch: dict[str, Any] | None = None, signal_weights: np.ndarray | None = None
) -> dict[tuple[str, str], SampleGrid]:
    """The release's own yield morphing for :func:`dmpreserve.stats.model.build_model` (``grids=``).

    rg and b8 of every run, and the signal of ``patch`` (built with :func:`signal_patch` from ``signal_weights``,
    scaled as the patch: mu as in the kit) when given, on the (t_ly, t_qy) grid of ``doc``
    (:func:`grid_document`): the fast engine interpolates them bilinearly, as the release's blueice likelihood
    does (``blueice_anchors`` -3 ... 3), instead of through the workspace's normsys + histosys.

    Returns:
        (run name, sample name) -> grid of expected counts [events], shape (7, 7, 81).
    """
    axis = np.asarray(doc["axis"], float)
    params = tuple(doc["parameters"])
    out: dict[tuple[str, str], SampleGrid] = {}
    sig = []
    for run in doc["runs"]:
        for name in ("rg", "b8"):
            out[(run["name"], name)] = SampleGrid(params, axis, np.asarray(run[name], float))
        if patch is not None:
            mono = np.asarray(run["mono"], float)
            sig.append((run["name"], np.einsum("k,kijb->ijb", signal_weights, mono) * float(run["livetime_t_yr"])))
    if sig:
        centre = int(np.argmin(np.abs(axis)))
        total = sum(float(np.sum(op["value"]["data"])) for op in patch["patch"])
        scale = total / sum(float(g[centre, centre].sum()) for _, g in sig)
        for name, g in sig:
            out[(name, "signal")] = SampleGrid(params, axis, g * scale)
    return out


def _normsys(name: str, rel: float) -> dict[str, Any]:
    if name == "er_rate":
        return {"name": name, "type": "normsys", "data": {"hi": 1.0 + rel, "lo": 1.0 / (1.0 + rel)}}
    return {"name": name, "type": "normsys", "data": {"hi": 1.0 + rel, "lo": 1.0 - rel}}


def _sample(
    name: str, anc: dict[str, np.ndarray], modifiers: list[dict[str, Any]], *, fix_yields: bool
) -> dict[str, Any]:
    mods = modifiers + ([] if fix_yields else yield_modifiers(anc))
    return {"name": name, "data": np.asarray(anc["nominal"], float).tolist(), "modifiers": mods}


def b8_weights(release: Release, *, flux_cm2_s: float = B8_FLUX_CM2_S) -> np.ndarray:
    """Mono weights of the project's 8B CEvNS spectrum (:func:`dmpreserve.physics.neutrinos.rate_cevns_8b`)."""
    return mono_weights(lambda e: rate_cevns_8b(e, flux_cm2_s=flux_cm2_s), release.mono_energies_kev)


def b8_counts(release: Release) -> dict[str, float]:
    """Expected 8B CEvNS events per run at nominal yields [events] (8B flux ``B8_FLUX_CM2_S``)."""
    w = b8_weights(release)
    return {run.name: float(g[_I0, _I0].sum()) for run, g in zip(release.runs, grid_templates(release, w))}


def build_workspace(
    release: Release,
    *,
    signal_efficiency: bool | float = False,
    fix_yields: bool = False,
    b8_mono_weights: np.ndarray | None = None,
) -> dict[str, Any]:
    """The background-only pyhf workspace of the release (8B CEvNS is a background here).

    Args:
        release: The checked release.
        signal_efficiency: Relative width of a ``signal_efficiency`` normsys shared by 8B and the signal
            (:func:`efficiency_width`: ``True`` = the earlier release's 25%; ``False`` or 0: none).
        fix_yields: Leave out t_ly/t_qy (yields fixed at nominal; for the approximation study).
        b8_mono_weights: The 8B component's weights on the mono templates (default :func:`b8_weights`).

    Returns:
        A pyhf workspace (HistFactory JSON): one channel per run, 81 bins each.
    """
    w8 = b8_weights(release) if b8_mono_weights is None else b8_mono_weights
    b8 = [anchors(g) for g in grid_templates(release, w8)]
    width = efficiency_width(signal_efficiency)
    eff = [_normsys("signal_efficiency", width)] if width else []
    channels, observations = [], []
    for run, b8a in zip(release.runs, b8):
        lt = run.livetime_t_yr
        rg = {k: v * lt for k, v in anchors(run.rg).items()}
        ac_name = f"ac_{run.name}_rate"
        ac_rel = PRIORS.get(ac_name, PRIORS["ac_sr2_rate"])["relative"]
        samples = [
            {"name": "ac", "data": (run.ac * lt).tolist(), "modifiers": [_normsys(ac_name, ac_rel)]},
            {
                "name": "er",
                "data": (run.er * lt).tolist(),
                "modifiers": [_normsys("er_rate", PRIORS["er_rate"]["relative"])],
            },
            _sample("rg", rg, [_normsys("nr_rate", PRIORS["nr_rate"]["relative"])], fix_yields=fix_yields),
            _sample("b8", b8a, [_normsys("b8_rate", PRIORS["b8_rate"]["relative"]), *eff], fix_yields=fix_yields),
        ]
        channels.append({"name": run.name, "samples": samples})
        observations.append({"name": run.name, "data": run.observed.tolist()})
    params: list[dict[str, Any]] = [{"name": POI, "bounds": [list(POI_BOUNDS)]}]
    if not fix_yields:
        params += [{"name": p, "bounds": [list(YIELD_BOUNDS)]} for p in ("t_ly", "t_qy")]
    return {
        "channels": channels,
        "observations": observations,
        "measurements": [{"name": MEASUREMENT, "config": {"poi": POI, "parameters": params}}],
        "version": "1.0.0",
    }


def mono_document(release: Release) -> dict[str, Any]:
    """The kit's ``mono_templates.json``: per run the livetime and the anchor efficiency templates."""
    return {
        "energies_kev": release.mono_energies_kev.tolist(),
        "anchors": {k: list(v) for k, v in ANCHORS.items()},
        "runs": [
            {
                "name": run.name,
                "livetime_t_yr": run.livetime_t_yr,
                "templates": {k: v.tolist() for k, v in anchors(np.moveaxis(run.mono, 0, 2)).items()},
            }
            for run in release.runs
        ],
        "units": {
            "energies_kev": "keV",
            "livetime_t_yr": "t yr",
            "templates": "detection efficiency per bin [energy][bin]",
        },
    }


def signal_anchors(mono: dict[str, Any], weights: np.ndarray) -> list[dict[str, np.ndarray]]:
    """Per run of ``mono_templates.json``: anchor templates [events] of a spectrum with mono weights ``weights``."""
    return [
        {k: float(run["livetime_t_yr"]) * (weights @ np.asarray(t, float)) for k, t in run["templates"].items()}
        for run in mono["runs"]
    ]


def signal_patch(
    mono: dict[str, Any],
    weights: np.ndarray,
    *,
    name: str,
    values: Sequence[float],
    signal_efficiency: bool | float,
) -> tuple[dict[str, Any], float, float]:
    """One patch adding the ``signal`` sample to every run, scaled to :data:`TARGET_EVENTS` at mu = 1.

    Args:
        mono: ``mono_templates.json``.
        weights: Mono weights of the spectrum at strength 1 (any unit) [events/(t yr) per unit].
        name: Patch name; ``values``: its metadata values (mass [GeV]).
        signal_efficiency: Width of the shared ``signal_efficiency`` normsys (:func:`efficiency_width`).

    Returns:
        (patch, scale, total): the patch, the strength at mu = 1 in units of ``weights``' strength,
        and the expected events (nominal) at strength 1.

    Raises:
        InvalidSpectrum: the spectrum gives no signal in the analysis region.
    """
    anc = signal_anchors(mono, weights)
    total = float(sum(a["nominal"].sum() for a in anc))
    if not (math.isfinite(total) and total > 0):
        raise InvalidSpectrum(f"{name}: no expected signal in the analysis region (0.5-5 keV NR)", field="mass_gev")
    scale = TARGET_EVENTS / total
    width = efficiency_width(signal_efficiency)
    eff = [_normsys("signal_efficiency", width)] if width else []
    ops = []
    for i, a in enumerate(anc):
        scaled = {k: v * scale for k, v in a.items()}
        sample = _sample("signal", scaled, [{"name": POI, "type": "normfactor", "data": None}, *eff], fix_yields=False)
        ops.append({"op": "add", "path": f"/channels/{i}/samples/-", "value": sample})
    return {"metadata": {"name": name, "values": [float(v) for v in values]}, "patch": ops}, scale, total


def yield_interpolation_check(release: Release, weights: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """Total expected events at the grid's corners: the pyhf model (product of the two directions) vs the grid.

    Args:
        release: The release.
        weights: Component name -> mono weights (signal spectra, 8B); ``rg`` is added.

    Returns:
        Rows ``{component, t_ly, t_qy, grid, model, ratio}`` at (+-1, +-1) and (+-3, +-3), totals over runs.
    """
    grids = {name: sum(g for g in grid_templates(release, w)) for name, w in weights.items()}
    grids["rg"] = sum(run.rg * run.livetime_t_yr for run in release.runs)
    rows = []
    for name, g in grids.items():
        tot = g.sum(axis=-1)
        n0 = tot[_I0, _I0]
        f = {
            "ly": (tot[_I0 + 1, _I0] / n0, tot[_I0 - 1, _I0] / n0),
            "qy": (tot[_I0, _I0 + 1] / n0, tot[_I0, _I0 - 1] / n0),
        }
        for a in (-3.0, -1.0, 1.0, 3.0):
            for b in (-3.0, -1.0, 1.0, 3.0):
                if abs(a) != abs(b):
                    continue
                model = n0 * _code4(a, *f["ly"]) * _code4(b, *f["qy"])
                grid = float(tot[_I0 + int(a), _I0 + int(b)])
                rows.append(
                    {"component": name, "t_ly": a, "t_qy": b, "grid": grid, "model": model, "ratio": model / grid}
                )
    return rows


def _code4(alpha: float, hi: float, lo: float) -> float:
    """pyhf normsys code4 factor at |alpha| >= 1 (exponential extrapolation; the checks use +-1, +-3)."""
    return float(hi**alpha if alpha >= 0 else lo ** (-alpha))
