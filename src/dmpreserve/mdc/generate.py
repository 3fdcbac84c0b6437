"""Mock data challenge: reduced data generated reproducibly with NEST.

One science run (ER, radiogenic neutrons, 8B CEvNS, accidental coincidences, wall events and an
optional injected WIMP signal), the ER and NR calibration samples, the NR response simulation and
the isolated-S1/isolated-S2 samples used for the data-driven accidental model.  Truth labels go
to a separate file and never into the reduced data.  The default is modelled on LZ's first
science run: nestpy's LZ_WS2022 detector, 60 live days, ~5.5 t fiducial mass.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from dmpreserve import __version__
from dmpreserve.artifacts.reduced import write_reduced
from dmpreserve.config import AnalysisConfig
from dmpreserve.detector import NestDetector, active_mass_t, fiducial_mass_t
from dmpreserve.files import atomic_write
from dmpreserve.physics.constants import SECONDS_PER_YEAR
from dmpreserve.physics.neutrinos import rate_cevns_8b
from dmpreserve.physics.neutrons import dd_calibration_spectrum_shape, neutron_spectrum_shape
from dmpreserve.physics.wimp import rate_si

#: Random streams (one per sample), combined with the master seed.
STREAMS = {"science": 1, "calib_er": 2, "calib_nr": 3, "sim_nr": 4, "isolated_s1": 5, "isolated_s2": 6}
#: Energy spectra of the populations that make lone S1s and lone S2s (exponential, mean [keV]).
LONE_S1_MEAN_KEV, LONE_S2_MEAN_KEV = 1.0, 2.0
#: Simulation chunk (events) between progress updates.
CHUNK = 20000


@dataclasses.dataclass(frozen=True)
class MdcOutputs:
    """Destinations of the mock-data files (Parquet; sidecars beside them with a ``.json`` suffix)."""

    science: str
    truth: str
    calib_er: str
    calib_nr: str
    sim_nr: str
    isolated_s1: str
    isolated_s2: str


def sample_spectrum(
    shape: Callable[[np.ndarray], np.ndarray],
    emin_kev: float,
    emax_kev: float,
    n: int,
    rng: np.random.Generator,
    *,
    grid_points: int = 20001,
) -> np.ndarray:
    """Draw ``n`` energies [keV] from a differential spectrum by inverse-CDF sampling on a fine grid."""
    grid = np.linspace(emin_kev, emax_kev, grid_points)
    pdf = np.clip(np.asarray(shape(grid), dtype=float), 0.0, None)
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (pdf[1:] + pdf[:-1]) * np.diff(grid))])
    if cdf[-1] <= 0:
        raise ValueError("spectrum has no support in the requested energy range")
    return np.interp(rng.uniform(0.0, cdf[-1], n), cdf, grid)


def integrate_spectrum(
    shape: Callable[[np.ndarray], np.ndarray], emin_kev: float, emax_kev: float, *, grid_points: int = 20001
) -> float:
    """Integral of a differential spectrum over [emin, emax] keV (trapezoid on a fine grid)."""
    grid = np.linspace(emin_kev, emax_kev, grid_points)
    return float(np.trapezoid(shape(grid), grid))


def _simulate(
    det: NestDetector, energy: np.ndarray, species: Any, pos: tuple, rng: np.random.Generator, label: str, **kwargs: Any
) -> dict[str, np.ndarray]:
    """Simulate in chunks with a progress bar; returns all columns (with ``valid``)."""
    n = len(energy)
    parts = []
    species = np.broadcast_to(np.asarray(species), (n,))
    survival = kwargs.get("electron_survival")
    with tqdm(total=n, desc=f"NEST {label}", unit="evt", mininterval=2.0, disable=n < CHUNK) as bar:
        for lo in range(0, n, CHUNK):
            sl = slice(lo, min(n, lo + CHUNK))
            extra = {} if survival is None else {"electron_survival": survival[sl]}
            parts.append(det.simulate(energy[sl], species[sl], pos[0][sl], pos[1][sl], pos[2][sl], rng, **extra))
            bar.update(sl.stop - sl.start)
    if not parts:
        return {
            k: np.zeros(0)
            for k in (
                "s1_phd",
                "s2_phd",
                "cs1_phd",
                "cs2_phd",
                "drift_time_us",
                "x_cm",
                "y_cm",
                "s1_coincidence",
                "valid",
            )
        }
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


REDUCED_COLUMNS = ("s1_phd", "s2_phd", "cs1_phd", "cs2_phd", "drift_time_us", "x_cm", "y_cm", "s1_coincidence")


def _meta(det: NestDetector, kind: str, seed: int, stream: str, **extra: Any) -> dict[str, Any]:
    import nestpy  # for its version

    return {
        "format": "dmpreserve-reduced-data",
        "format_version": 1,
        "kind": kind,
        "detector": det.params.sidecar(),
        "active_volume": det.params.active_volume(),
        "generator": {
            "name": "dmpreserve.mdc",
            "dmpreserve_version": __version__,
            "nest_version": str(getattr(nestpy, "__nest_version__", "unknown")),
            "seed": int(seed),
            "stream": stream,
            "description": "mock-data challenge generated with NEST (nestpy), see dmpreserve.mdc",
        },
        **extra,
    }


def _columns(sim: dict[str, np.ndarray], keep: np.ndarray) -> dict[str, np.ndarray]:
    cols = {"event_id": np.arange(int(keep.sum()), dtype=np.int64)}
    cols.update({k: sim[k][keep] for k in REDUCED_COLUMNS})
    return cols


def _lone_population(
    det: NestDetector, n: int, mean_kev: float, rng: np.random.Generator, label: str, *, signal: str
) -> dict[str, np.ndarray]:
    """``n`` recorded lone S1s (``signal="s1"``) or S2s (``"s2"``): small ER deposits in the active volume.

    Deposits whose S1 (S2) is not seen are not recorded; more are drawn until ``n`` are.
    """
    parts, have = [], 0
    while have < n:
        m = max(16, int(1.3 * (n - have)))
        energy = 0.1 + rng.exponential(mean_kev, m)
        sim = _simulate(det, energy, "er", det.random_positions(m, rng), rng, label)
        ok = sim[f"{signal}_phd"] > 0
        parts.append({k: v[ok] for k, v in sim.items()})
        have += int(ok.sum())
    return (
        {k: np.concatenate([p[k] for p in parts])[:n] for k in parts[0]}
        if parts
        else _simulate(det, np.zeros(0), "er", (np.zeros(0),) * 3, rng, label)
    )


def generate(config: AnalysisConfig, outputs: MdcOutputs) -> dict[str, int]:
    """Generate every mock-data file.

    Args:
        config: Validated analysis configuration (its ``mdc`` and ``seed`` sections are used).
        outputs: Where to write.

    Returns:
        Event counts per science-run component (for the log).
    """
    cfg, seed = config["mdc"], int(config["seed"])
    det = NestDetector(cfg["detector"], cfg.get("nest_parameters"))
    mass_t = active_mass_t(det)
    live_days = float(cfg["live_time_days"])
    live_s = live_days * 86400.0
    exposure_active = mass_t * live_s / SECONDS_PER_YEAR
    comps = cfg["components"]

    def rng_for(stream: str) -> np.random.Generator:
        det.seed(seed * 101 + STREAMS[stream])
        return np.random.default_rng([seed, STREAMS[stream]])

    # ---- science run ----
    rng = rng_for("science")
    energies, species, labels, positions, survival = [], [], [], [], []

    def add(label: str, energy: np.ndarray, kind: str, pos=None, surv=None) -> None:
        n = len(energy)
        energies.append(energy)
        species.append(np.full(n, kind))
        labels.append(np.full(n, label, dtype=object))
        positions.append(pos if pos is not None else det.random_positions(n, rng))
        survival.append(np.ones(n) if surv is None else surv)

    er = comps["er"]
    n_er = rng.poisson(er["rate_per_t_yr_kev"] * (er["energy_max_kev"] - er["energy_min_kev"]) * exposure_active)
    add("er", rng.uniform(er["energy_min_kev"], er["energy_max_kev"], n_er), "er")
    n_n = rng.poisson(comps["neutron"]["rate_per_t_yr"] * exposure_active)
    add("neutron", sample_spectrum(neutron_spectrum_shape, 0.1, 100.0, n_n, rng), "nr")
    cev = comps["cevns_8b"]

    def cevns(e: np.ndarray) -> np.ndarray:
        return rate_cevns_8b(e, flux_cm2_s=cev["flux_per_cm2_s"])

    n_cev = rng.poisson(integrate_spectrum(cevns, cev["energy_min_kev"], 10.0) * exposure_active)
    add("cevns_8b", sample_spectrum(cevns, cev["energy_min_kev"], 10.0, n_cev, rng), "nr")
    sig = cfg["injected_signal"]
    if sig:
        halo = config.halo

        def wimp(e: np.ndarray) -> np.ndarray:
            return rate_si(e, mass_gev=sig["mass_gev"], cross_section_cm2=sig["cross_section_cm2"], halo=halo)

        n_w = rng.poisson(integrate_spectrum(wimp, 0.1, 200.0) * exposure_active)
        add("wimp", sample_spectrum(wimp, 0.1, 200.0, n_w, rng), "nr")
    n_wall = rng.poisson(comps["wall"]["rate_per_day"] * live_days)
    phi = rng.uniform(0, 2 * np.pi, n_wall)
    r_wall = det.params.wall_radius_cm
    wall_pos = (
        r_wall * np.cos(phi),
        r_wall * np.sin(phi),
        rng.uniform(det.params.cathode_mm, det.params.gate_mm, n_wall),
    )
    add(
        "wall",
        rng.uniform(er["energy_min_kev"], er["energy_max_kev"], n_wall),
        "er",
        wall_pos,
        rng.uniform(0.02, 0.5, n_wall),
    )
    sim = _simulate(
        det,
        np.concatenate(energies),
        np.concatenate(species),
        tuple(np.concatenate([p[i] for p in positions]) for i in range(3)),
        rng,
        "science run",
        electron_survival=np.concatenate(survival),
    )
    label = np.concatenate(labels)
    true_e = np.concatenate(energies)
    keep = sim["valid"]
    science = {k: sim[k][keep] for k in REDUCED_COLUMNS}
    label, true_e = label[keep], true_e[keep]
    # accidental coincidences: a lone S1 and a lone S2 within one drift window
    acc = comps["accidental"]
    window_us = det.params.drift_time_max_us
    n_acc = rng.poisson(acc["isolated_s1_rate_hz"] * acc["isolated_s2_rate_hz"] * window_us * 1e-6 * live_s)
    acc_cols = accidental_pairs(det, n_acc, rng, window_us=window_us)
    for k in REDUCED_COLUMNS:
        science[k] = np.concatenate([science[k], acc_cols[k]])
    label = np.concatenate([label, np.full(n_acc, "accidental", dtype=object)])
    true_e = np.concatenate([true_e, np.zeros(n_acc)])
    order = rng.permutation(len(label))  # event ids carry no component information
    science = {k: v[order] for k, v in science.items()}
    label, true_e = label[order], true_e[order]
    n_sci = len(label)
    cols = {"event_id": np.arange(n_sci, dtype=np.int64), **science}
    counts = {str(k): int(v) for k, v in zip(*np.unique(label, return_counts=True))}
    nd = det.det  # the nestpy detector's own fiducial volume defines the nominal exposure
    m_fid = fiducial_mass_t(
        density_g_cm3=det.params.lxe_density_g_cm3,
        drift_velocity_mm_per_us=det.params.drift_velocity_mm_per_us,
        r_max_cm=nd.get_radius() / 10.0,
        drift_time_min_us=nd.get_dt_min(),
        drift_time_max_us=nd.get_dt_max(),
    )
    meta = _meta(
        det,
        "science",
        seed,
        "science",
        live_time_s=live_s,
        exposure={
            "fiducial_mass_t": round(m_fid, 4),
            "live_time_days": live_days,
            "exposure_t_yr": round(m_fid * live_s / SECONDS_PER_YEAR, 6),
        },
    )
    meta["generator"]["components"] = {k: dict(v) for k, v in comps.items()}
    meta["generator"]["injected_signal"] = sig
    write_reduced(outputs.science, cols, meta)
    write_truth(outputs.truth, cols["event_id"], label, true_e)

    # ---- calibrations ----
    rng = rng_for("calib_er")
    n = int(cfg["calibration"]["er_events"])
    sim = _simulate(
        det,
        rng.uniform(er["energy_min_kev"], er["energy_max_kev"], n),
        "er",
        det.random_positions(n, rng),
        rng,
        "ER calibration",
    )
    write_reduced(
        outputs.calib_er,
        _columns(sim, sim["valid"]),
        _meta(det, "calibration_er", seed, "calib_er", energy_range_kev=[er["energy_min_kev"], er["energy_max_kev"]]),
    )
    rng = rng_for("calib_nr")
    n = int(cfg["calibration"]["nr_events"])
    sim = _simulate(
        det,
        sample_spectrum(dd_calibration_spectrum_shape, 0.1, 80.0, n, rng),
        "nr",
        det.random_positions(n, rng),
        rng,
        "NR calibration",
    )
    write_reduced(outputs.calib_nr, _columns(sim, sim["valid"]), _meta(det, "calibration_nr", seed, "calib_nr"))

    # ---- NR response simulation (flat in true energy, truth kept: it is simulation) ----
    rng = rng_for("sim_nr")
    s = cfg["simulation"]
    n = int(s["nr_events"])
    e_true = rng.uniform(s["nr_energy_min_kev"], s["nr_energy_max_kev"], n)
    sim = _simulate(det, e_true, "nr", det.random_positions(n, rng), rng, "NR simulation")
    # invalid (no S1 or no S2) events are kept with zero areas: they count in the acceptance denominator
    cols = {"event_id": np.arange(n, dtype=np.int64), **{k: sim[k] for k in REDUCED_COLUMNS}}
    cols["true_energy_kev"] = e_true
    for k in ("s1_phd", "s2_phd", "cs1_phd", "cs2_phd", "s1_coincidence"):
        cols[k] = np.where(sim["valid"], cols[k], 0).astype(cols[k].dtype)
    write_reduced(
        outputs.sim_nr,
        cols,
        _meta(det, "simulation_nr", seed, "sim_nr", energy_range_kev=[s["nr_energy_min_kev"], s["nr_energy_max_kev"]]),
    )

    # ---- isolated S1 / S2 samples for the accidental model ----
    rng = rng_for("isolated_s1")
    n1 = int(acc["isolated_s1_events"])
    lone = _lone_population(det, n1, LONE_S1_MEAN_KEV, rng, "isolated S1", signal="s1")
    ok = lone["s1_phd"] > 0
    write_reduced(
        outputs.isolated_s1,
        {
            "event_id": np.arange(int(ok.sum()), dtype=np.int64),
            "s1_phd": lone["s1_phd"][ok],
            "s1_coincidence": lone["s1_coincidence"][ok],
        },
        _meta(det, "isolated_s1", seed, "isolated_s1", live_time_s=int(ok.sum()) / acc["isolated_s1_rate_hz"]),
    )
    rng = rng_for("isolated_s2")
    n2 = rng.poisson(acc["isolated_s2_rate_hz"] * live_s)
    lone = _lone_population(det, n2, LONE_S2_MEAN_KEV, rng, "isolated S2", signal="s2")
    ok = lone["s2_phd"] > 0
    write_reduced(
        outputs.isolated_s2,
        {
            "event_id": np.arange(int(ok.sum()), dtype=np.int64),
            "s2_phd": lone["s2_phd"][ok],
            "x_cm": lone["x_cm"][ok],
            "y_cm": lone["y_cm"][ok],
        },
        _meta(det, "isolated_s2", seed, "isolated_s2", live_time_s=live_s),
    )
    return counts


def accidental_pairs(det: NestDetector, n: int, rng: np.random.Generator, *, window_us: float) -> dict[str, np.ndarray]:
    """Accidental coincidences as the detector records them: a lone S1 and a lone S2 at a random drift time.

    The event is reconstructed at the S2's x-y and the random drift time, and corrected with NEST's
    position corrections there.
    """
    s1 = _lone_population(det, n, LONE_S1_MEAN_KEV, rng, "lone S1", signal="s1")
    s2 = _lone_population(det, n, LONE_S2_MEAN_KEV, rng, "lone S2", signal="s2")
    dt = rng.uniform(0.0, window_us, n)
    c1, c2 = det.correction_factors(s2["x_cm"], s2["y_cm"], dt)
    return {
        "s1_phd": s1["s1_phd"],
        "s2_phd": s2["s2_phd"],
        "cs1_phd": s1["s1_phd"] * c1,
        "cs2_phd": s2["s2_phd"] * c2,
        "drift_time_us": dt,
        "x_cm": s2["x_cm"],
        "y_cm": s2["y_cm"],
        "s1_coincidence": s1["s1_coincidence"],
    }


def write_truth(path: str | os.PathLike, event_id: np.ndarray, component: np.ndarray, energy_kev: np.ndarray) -> None:
    """Write the truth labels (event_id, component, true_energy_kev) of the science run (Parquet)."""
    table = pa.table(
        {
            "event_id": pa.array(event_id, pa.int64()),
            "component": pa.array([str(c) for c in component], pa.string()),
            "true_energy_kev": pa.array(np.asarray(energy_kev, dtype=float), pa.float64()),
        }
    )
    with atomic_write(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")
