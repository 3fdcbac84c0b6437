"""Background estimation: templates in (cS1, log10 cS2) and expected counts with uncertainties.

* ER: shape from the ER calibration sample; normalisation extrapolated from an ER-only sideband in
  cS1 above the ROI (science/calibration ratio, assuming the flat beta spectrum).
* Radiogenic neutrons and 8B CEvNS: the NR response simulation weighted by their spectra and
  normalised with the configured rate (assay) or flux.
* Accidental coincidences: data-driven, random pairings of isolated S1s and isolated S2s with a
  random drift time, corrected with position-correction maps measured on the ER calibration sample.
* Wall events: events reconstructed outside the wall (a pure wall sample), each weighted with the
  probability that the position resolution at its S2 moves it into the fiducial volume.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable

import numpy as np
from scipy.special import ndtr

from dmpreserve.artifacts.exposure import Exposure
from dmpreserve.artifacts.reduced import ReducedData
from dmpreserve.artifacts.templates import BackgroundComponent, BackgroundTemplates
from dmpreserve.config import AnalysisConfig, Binning
from dmpreserve.files import write_csv
from dmpreserve.physics.neutrinos import rate_cevns_8b
from dmpreserve.physics.neutrons import neutron_spectrum_shape
from dmpreserve.selection.cuts import Cut, apply_cuts, cuts_from_config, fiducial_volume_fraction

COMPONENTS = ("er", "neutron", "cevns_8b", "accidental", "wall")
ACCIDENTAL_STREAM = 7


def histogram(
    cs1_phd: np.ndarray, log10_cs2: np.ndarray, binning: Binning, weights: np.ndarray | None = None
) -> np.ndarray:
    """2D histogram in the analysis space, [n_cs1][n_log10cs2]."""
    h, _, _ = np.histogram2d(
        cs1_phd,
        log10_cs2,
        bins=[np.asarray(binning.cs1_edges_phd), np.asarray(binning.log10_cs2_edges)],
        weights=weights,
    )
    return h


def _analysis_hist(data: ReducedData, mask: np.ndarray, binning: Binning, weights: np.ndarray | None = None):
    return histogram(
        data.columns["cs1_phd"][mask],
        data.variable("log10_cs2")[mask],
        binning,
        None if weights is None else weights[mask],
    )


def estimate_er(
    science: ReducedData, calib: ReducedData, config: AnalysisConfig, binning: Binning
) -> BackgroundComponent:
    """ER template from calibration, normalised by the science/calibration ratio in the cS1 sideband."""
    pre = cuts_from_config(config, kinds=("quality", "fiducial"))
    roi = cuts_from_config(config, kinds=("roi",))
    sb = config["backgrounds"]["er"]["sideband_cs1_phd"]
    side = Cut(name="er_sideband", kind="roi", variable="cs1_phd", lower=sb["min"], upper=sb["max"])
    cal_pre, _ = apply_cuts(calib, pre)
    sci_pre, _ = apply_cuts(science, pre)
    cal_roi = cal_pre & apply_cuts(calib, roi)[0]
    n_cal_sb = int((cal_pre & side.mask(calib)).sum())
    n_sci_sb = int((sci_pre & side.mask(science)).sum())
    if n_cal_sb == 0:
        raise ValueError(f"no ER calibration events in the sideband cS1 {sb['min']}-{sb['max']} phd")
    shape = _analysis_hist(calib, cal_roi, binning)
    scale = n_sci_sb / n_cal_sb
    template = shape * scale
    expected = float(template.sum())
    rel = math.sqrt(
        1 / max(n_sci_sb, 1)
        + 1 / n_cal_sb
        + 1 / max(shape.sum(), 1)
        + config["backgrounds"]["er"]["systematic_rel"] ** 2
    )
    floor = config["backgrounds"]["template_floor_events"]
    template = template + floor
    return BackgroundComponent(
        "er",
        float(template.sum()),
        expected * rel,
        template,
        "calibration shape, sideband normalisation",
        f"ER (flat beta): shape from {int(cal_roi.sum())} ER calibration events in the ROI; "
        f"normalised with {n_sci_sb} science / {n_cal_sb} calibration events in the sideband "
        f"{sb['min']} <= cS1 < {sb['max']} phd; floor {floor} events per bin",
    )


def nr_weighted(
    sim: ReducedData,
    config: AnalysisConfig,
    binning: Binning,
    rate: Callable[[np.ndarray], np.ndarray],
    exposure: float,
) -> tuple[np.ndarray, float]:
    """Template [events/bin] of an NR spectrum ``rate(E)`` [events/(t yr keV)] folded through the NR simulation.

    Each selected simulated event of true energy E carries the weight
    rate(E) x exposure x (E_max - E_min) / (N_generated x fiducial volume fraction).
    """
    cuts = cuts_from_config(config)
    mask, _ = apply_cuts(sim, cuts)
    e = sim.columns["true_energy_kev"]
    e_lo, e_hi = sim.meta["energy_range_kev"]
    f_vol = fiducial_volume_fraction(sim.meta["active_volume"], cuts)
    grid = np.linspace(e_lo, e_hi, 4001)  # rate tabulated on a 25 eV grid, interpolated per event
    w = np.interp(e, grid, np.asarray(rate(grid), float)) * exposure * (e_hi - e_lo) / (len(sim) * f_vol)
    template = _analysis_hist(sim, mask, binning, w)
    return template, float(template.sum())


def correction_map(calib: ReducedData, *, dt_bins: int = 12, r2_bins: int = 6):
    """Position-correction maps (median cS1/S1 and cS2/S2 in drift-time x r^2 bins) from calibration data."""
    dt, r2 = calib.columns["drift_time_us"], calib.variable("r_cm") ** 2
    dt_edges = np.linspace(0.0, calib.meta["active_volume"]["drift_time_max_us"], dt_bins + 1)
    r2_edges = np.linspace(0.0, calib.meta["active_volume"]["r_max_cm"] ** 2, r2_bins + 1)
    i = np.clip(np.digitize(dt, dt_edges) - 1, 0, dt_bins - 1)
    j = np.clip(np.digitize(r2, r2_edges) - 1, 0, r2_bins - 1)
    c1, c2 = np.ones((dt_bins, r2_bins)), np.ones((dt_bins, r2_bins))
    ok = (calib.columns["s1_phd"] > 0) & (calib.columns["s2_phd"] > 0)
    for a in range(dt_bins):
        for b in range(r2_bins):
            sel = ok & (i == a) & (j == b)
            if sel.sum() >= 5:
                c1[a, b] = np.median(calib.columns["cs1_phd"][sel] / calib.columns["s1_phd"][sel])
                c2[a, b] = np.median(calib.columns["cs2_phd"][sel] / calib.columns["s2_phd"][sel])

    def lookup(drift_time_us: np.ndarray, r_cm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        a = np.clip(np.digitize(drift_time_us, dt_edges) - 1, 0, dt_bins - 1)
        b = np.clip(np.digitize(r_cm**2, r2_edges) - 1, 0, r2_bins - 1)
        return c1[a, b], c2[a, b]

    return lookup


def estimate_accidental(
    science: ReducedData,
    iso_s1: ReducedData,
    iso_s2: ReducedData,
    calib: ReducedData,
    config: AnalysisConfig,
    binning: Binning,
) -> BackgroundComponent:
    """Accidental coincidences from random pairings of isolated S1s and S2s."""
    cfg = config["backgrounds"]["accidental"]
    rng = np.random.default_rng([int(config["seed"]), ACCIDENTAL_STREAM])
    n = int(cfg["pairs"])
    window = float(science.meta["active_volume"]["drift_time_max_us"])
    i1 = rng.integers(0, len(iso_s1), n)
    i2 = rng.integers(0, len(iso_s2), n)
    dt = rng.uniform(0.0, window, n)
    x, y = iso_s2.columns["x_cm"][i2], iso_s2.columns["y_cm"][i2]
    c1, c2 = correction_map(calib)(dt, np.hypot(x, y))
    s1, s2 = iso_s1.columns["s1_phd"][i1], iso_s2.columns["s2_phd"][i2]
    pairs = ReducedData(
        columns={
            "event_id": np.arange(n),
            "s1_phd": s1,
            "s2_phd": s2,
            "cs1_phd": s1 * c1,
            "cs2_phd": s2 * c2,
            "drift_time_us": dt,
            "x_cm": x,
            "y_cm": y,
            "s1_coincidence": iso_s1.columns["s1_coincidence"][i1],
        },
        meta={"n_events": n, "kind": "accidental_pairs"},
        path="<random pairs>",
    )
    mask, _ = apply_cuts(pairs, cuts_from_config(config))
    r1 = len(iso_s1) / iso_s1.meta["live_time_s"]
    r2 = len(iso_s2) / iso_s2.meta["live_time_s"]
    total = r1 * r2 * window * 1e-6 * science.meta["live_time_s"]
    frac = mask.sum() / n
    template = _analysis_hist(pairs, mask, binning) * total / n
    expected = float(template.sum())
    rel = math.sqrt(1 / max(mask.sum(), 1) + 1 / len(iso_s1) + 1 / len(iso_s2) + cfg["systematic_rel"] ** 2)
    return BackgroundComponent(
        "accidental",
        expected,
        expected * rel,
        template,
        "data-driven random pairing",
        f"accidental coincidences: isolated-S1 rate {r1:.4g} Hz x isolated-S2 rate {r2:.4g} Hz x "
        f"{window:.1f} us window x live time = {total:.4g} before cuts; {frac:.4g} of {n} random "
        "pairings pass all cuts",
    )


def estimate_wall(science: ReducedData, config: AnalysisConfig, binning: Binning) -> BackgroundComponent:
    """Wall events from the r > R_wall sideband, weighted by their leakage probability into the fiducial volume."""
    cfg = config["backgrounds"]["wall"]
    det = science.meta["detector"]
    cuts = cuts_from_config(config)
    r_fid = min(c.upper for c in cuts if c.kind == "fiducial" and c.variable == "r_cm")
    keep = [c for c in cuts if not (c.kind == "fiducial" and c.variable == "r_cm")]
    mask, _ = apply_cuts(science, keep)
    r = science.variable("r_cm")
    side = mask & (r >= cfg["sideband_r_min_cm"])
    res = det["position_resolution_cm"]
    sigma = res["a_cm"] * np.sqrt(1000.0 / np.maximum(science.columns["s2_phd"], 1.0)) + res["b_cm"]
    r_wall = det["wall_radius_cm"]
    # P(r_rec < r_fid) / P(r_rec > r_wall) for a point on the wall, radial Gaussian smearing
    w = ndtr((r_fid - r_wall) / sigma) / np.maximum(ndtr((r_wall - cfg["sideband_r_min_cm"]) / sigma), 1e-12)
    template = _analysis_hist(science, side, binning, w)
    expected = float(template.sum())
    stat = float(np.sqrt(np.sum(w[side & _in_roi(science, binning)] ** 2)))
    unc = math.hypot(stat, expected * cfg["systematic_rel"])
    return BackgroundComponent(
        "wall",
        expected,
        unc,
        template,
        "high-radius sideband with leakage weights",
        f"wall events: {int(side.sum())} science events reconstructed at r >= "
        f"{cfg['sideband_r_min_cm']} cm, weighted by the probability that the S2-dependent position "
        f"resolution moves a wall event (r = {r_wall} cm) inside r < {r_fid} cm",
    )


def _in_roi(data: ReducedData, binning: Binning) -> np.ndarray:
    c = data.columns["cs1_phd"]
    l2 = data.variable("log10_cs2")
    return (
        (c >= binning.cs1_edges_phd[0])
        & (c < binning.cs1_edges_phd[-1])
        & (l2 >= binning.log10_cs2_edges[0])
        & (l2 < binning.log10_cs2_edges[-1])
    )


def estimate_backgrounds(
    *,
    config: AnalysisConfig,
    science: ReducedData,
    selected: ReducedData,
    calib_er: ReducedData,
    sim_nr: ReducedData,
    isolated_s1: ReducedData,
    isolated_s2: ReducedData,
    exposure: Exposure,
) -> BackgroundTemplates:
    """All components, the observed histogram and the exposure (the ``templates.json`` contents).

    Args:
        config: The analysis configuration (cuts, binning, background settings).
        science: The whole science run: its ER and wall sidebands normalise those components.
        selected: The ``select`` step's selected science events: the observed histogram.
        calib_er, sim_nr, isolated_s1, isolated_s2: The control samples (ER calibration, NR simulation,
            isolated S1s and S2s); the configured cuts are applied to them here, as to the sidebands.
        exposure: The ``select`` step's exposure [t yr].
    """
    binning = config.binning
    exposure_t_yr = exposure.exposure_t_yr
    observed = histogram(selected.columns["cs1_phd"], selected.variable("log10_cs2"), binning).astype(int)
    b = config["backgrounds"]
    comps = [estimate_er(science, calib_er, config, binning)]
    tmpl, n = nr_weighted(
        sim_nr, config, binning, lambda e: b["neutron"]["rate_per_t_yr"] * neutron_spectrum_shape(e), exposure_t_yr
    )
    comps.append(
        BackgroundComponent(
            "neutron",
            n,
            n * b["neutron"]["uncertainty_rel"],
            tmpl,
            "NR simulation x assay rate",
            f"radiogenic neutrons: {b['neutron']['rate_per_t_yr']} single scatters /(t yr) "
            "(material assay), spectrum folded through the NR simulation",
        )
    )
    tmpl, n = nr_weighted(
        sim_nr, config, binning, lambda e: rate_cevns_8b(e, flux_cm2_s=b["cevns_8b"]["flux_per_cm2_s"]), exposure_t_yr
    )
    comps.append(
        BackgroundComponent(
            "cevns_8b",
            n,
            n * b["cevns_8b"]["uncertainty_rel"],
            tmpl,
            "NR simulation x 8B flux",
            f"8B solar-neutrino CEvNS, flux {b['cevns_8b']['flux_per_cm2_s']:.4g} /(cm2 s), "
            "folded through the NR simulation",
        )
    )
    comps.append(estimate_accidental(science, isolated_s1, isolated_s2, calib_er, config, binning))
    comps.append(estimate_wall(science, config, binning))
    return BackgroundTemplates(
        cs1_edges_phd=tuple(binning.cs1_edges_phd),
        log10_cs2_edges=tuple(binning.log10_cs2_edges),
        observed=observed,
        exposure_t_yr=exposure_t_yr,
        components={c.name: c for c in comps},
    )


def write_summary(path: str | os.PathLike, templates: BackgroundTemplates) -> None:
    """``summary.csv``: component, expected_events, uncertainty_events [events], method (sorted by component)."""
    write_csv(
        path,
        ("component", "expected_events", "uncertainty_events", "method"),
        [(name, c.expected_events, c.uncertainty_events, c.method) for name, c in sorted(templates.components.items())],
    )
