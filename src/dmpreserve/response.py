"""Detector responses: the NR response matrix and the ER line response (the ``response`` step).

The NR response ``R[e, k]`` is the probability that a nuclear recoil of true energy in bin ``e`` (edges
``signal.energy_bins_kev``), inside the fiducial volume, passes every cut and lands in analysis bin ``k``
(``k = i_cs1 * n_log10cs2 + j_log10cs2``; efficiency included).  Its signal efficiency comes from one of
two places (``signal.efficiency``):

* ``simulation`` (default): every configured cut (quality, fiducial, ROI) is applied to the NR simulation
  (:func:`build_response`); the denominator is the number of simulated recoils whose true position is
  fiducial (events per energy bin x fiducial-volume fraction).
* ``{curve: CSV, includes_roi: BOOL}``: an external efficiency curve eps(E) (median and band; published
  releases, where no NR simulation of the selection exists), and ``R[e, k] = eps(E_e) x P(k | E_e)``
  (:func:`response_from_curve`).  Taken from the curve: every cut the analysis made (quality, fiducial
  selection efficiency, and the ROI acceptance if ``includes_roi``).  Taken from the NR simulation (NEST
  through the configured detector): only the analysis-space distribution P(k | E), i.e. the fraction of
  all simulated recoils of the energy bin that fall inside the ROI cuts (kind ``roi``) and the analysis
  binning, with no quality or fiducial cut (the detector response is averaged over the simulated
  volume), among the recoils NEST detects (an S1 passing the coincidence and an S2) when the curve
  contains the detection threshold (``includes_threshold``, default true, as LZ's released curves do:
  otherwise the threshold would count twice), else among all simulated recoils.  With ``includes_roi: true``
  the curve already contains the ROI acceptance, so P is normalised to the ROI:
  ``P(k | E, in ROI) = P(k | E) / sum_k P(k | E)`` (rows with no simulated event in the ROI are zero).
  The curve is evaluated at the energy-bin centres by linear interpolation and
  must cover them (no extrapolation).  ``matrix_lo``/``matrix_hi`` use the band's edges instead.

Upstream cuts (:func:`apply_upstream_cuts`): a cut the data provider applied before the reduced data
was written (sidecar ``upstream_cuts`` of the selected events) that is not one of the configured cuts
(those the simulation applies itself) and states an efficiency multiplies every response row (nominal,
lo, hi and the error) by its efficiency at the energy-bin centre.

The ER response to monoenergetic lines (:func:`simulate_er_response`) is simulated with NEST here too,
with every configured cut (no external curve: the efficiency curve is an NR one).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from tqdm import tqdm

from dmpreserve.artifacts.reduced import ReducedData, UpstreamCut
from dmpreserve.artifacts.response import EfficiencyCurve, LineResponse, ResponseMatrix
from dmpreserve.config import AnalysisConfig
from dmpreserve.detector import NestDetector
from dmpreserve.errors import InvalidConfig
from dmpreserve.selection.cuts import Cut, apply_cuts, cuts_from_config, fiducial_volume_fraction

#: Random stream of the ER line simulation (distinct from the MDC streams).
ER_STREAM = 7919
#: Default ER line energies [keV] (START:STOP:STEP) and NEST events per line.
ER_LINES_KEV = "0.5:30:0.5"
ER_EVENTS_PER_LINE = 2000


def efficiency_setting(config: AnalysisConfig) -> dict[str, Any] | None:
    """The ``signal.efficiency`` setting: None for ``simulation`` (also when absent), else the curve's
    mapping ``{curve: PATH, includes_roi: BOOL, includes_threshold: BOOL}`` (defaults false and true)."""
    eff = config["signal"].get("efficiency", "simulation")
    if eff == "simulation":
        return None
    return {
        "curve": eff["curve"],
        "includes_roi": bool(eff.get("includes_roi", False)),
        "includes_threshold": bool(eff.get("includes_threshold", True)),
    }


def _bin_counts(
    sim: ReducedData, config: AnalysisConfig, cuts: Sequence[Cut], edges: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Passing events per (true-energy bin, analysis bin) and generated events per energy bin."""
    binning = config.binning
    mask, _ = apply_cuts(sim, cuts)
    e = sim.columns["true_energy_kev"]
    n1, n2 = binning.shape
    i = np.digitize(sim.columns["cs1_phd"], binning.cs1_edges_phd) - 1
    j = np.digitize(sim.variable("log10_cs2"), binning.log10_cs2_edges) - 1
    inside = mask & (i >= 0) & (i < n1) & (j >= 0) & (j < n2)
    k = i * n2 + j
    ebin = np.digitize(e, edges) - 1
    ok = inside & (ebin >= 0) & (ebin < len(edges) - 1)
    counts = np.zeros((len(edges) - 1, n1 * n2))
    np.add.at(counts, (ebin[ok], k[ok]), 1.0)
    n_gen, _ = np.histogram(e, bins=edges)
    return counts, n_gen


def build_response(
    sim: ReducedData, config: AnalysisConfig, *, energy_edges_kev: np.ndarray | None = None
) -> ResponseMatrix:
    """Build a response matrix from a simulation with true energies (flat in energy), every configured cut.

    Args:
        sim: Simulated events with ``true_energy_kev`` (events without S1 or S2 kept, with zero areas),
            generated uniformly in ``meta["active_volume"]``.
        config: The analysis configuration (cuts, binning).
        energy_edges_kev: True-energy bin edges [keV]; default ``signal.energy_bins_kev``.

    Returns:
        ``R[e, k]`` = passing events in (e, k) / (generated events in e x fiducial-volume fraction), shape
        (n_energy, n_bins), with the Poisson error ``sqrt(count) / denominator``.
    """
    edges = config.signal_energy_edges_kev if energy_edges_kev is None else np.asarray(energy_edges_kev, float)
    cuts = cuts_from_config(config)
    counts, n_gen = _bin_counts(sim, config, cuts, edges)
    f_vol = fiducial_volume_fraction(sim.meta["active_volume"], cuts)
    denom = np.maximum(n_gen * f_vol, 1e-300)[:, None]
    return ResponseMatrix(np.asarray(edges), config.binning, counts / denom, np.sqrt(counts) / denom)


def analysis_space_probability(
    sim: ReducedData, config: AnalysisConfig, *, includes_roi: bool, includes_threshold: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """P(analysis bin k | true energy bin e) from the NR simulation with only the ROI cuts and the binning.

    Args:
        sim: The NR simulation (flat in true energy).
        config: The analysis configuration (ROI cuts, binning, ``signal.energy_bins_kev``).
        includes_roi: Normalise each row to the events inside the ROI (the efficiency curve already contains
            the ROI acceptance) instead of to the simulated events of the energy bin.
        includes_threshold: The curve contains the detection threshold (the S1 coincidence and the S2
            trigger, as LZ's "trigger + S1 threshold + SS + analysis cuts" curves do): normalise each row to
            the simulated events that NEST detects (an S1 and an S2: ``cs1_phd > 0`` and ``cs2_phd > 0``),
            so that the threshold is not applied twice.  False: to every simulated event of the energy bin.

    Returns:
        (P, its Poisson error), each of shape (n_energy, n_bins); rows without events are zero.
    """
    edges = config.signal_energy_edges_kev
    counts, n_gen = _bin_counts(sim, config, cuts_from_config(config, kinds=("roi",)), edges)
    if includes_roi:
        denom = counts.sum(axis=1)
    elif includes_threshold:
        detected = (sim.columns["cs1_phd"] > 0) & (sim.columns["cs2_phd"] > 0)
        denom, _ = np.histogram(sim.columns["true_energy_kev"][detected], bins=edges)
        denom = denom.astype(float)
    else:
        denom = n_gen.astype(float)
    scale = np.divide(1.0, denom, out=np.zeros(len(denom)), where=denom > 0)[:, None]
    return counts * scale, np.sqrt(counts) * scale


def response_from_curve(
    sim: ReducedData,
    config: AnalysisConfig,
    curve: EfficiencyCurve,
    *,
    includes_roi: bool,
    includes_threshold: bool = True,
) -> ResponseMatrix:
    """The NR response from an external efficiency curve: ``eps(E_e) x P(k | E_e)`` (module docstring).

    Args:
        sim: The NR simulation through the configured detector (for P only).
        config: The analysis configuration.
        curve: The efficiency curve; evaluated at the energy-bin centres (nominal, lo, hi).
        includes_roi: Whether the curve contains the ROI acceptance (P normalised to the ROI).
        includes_threshold: Whether the curve contains the detection threshold (P among the recoils NEST
            detects; config ``signal.efficiency.includes_threshold``).

    Raises:
        InvalidData: the curve does not cover the energy-bin centres (naming the CSV and ``energy_kev``).
    """
    edges = config.signal_energy_edges_kev
    centres = 0.5 * (edges[:-1] + edges[1:])
    curve.check_covers(centres)
    p, p_err = analysis_space_probability(sim, config, includes_roi=includes_roi, includes_threshold=includes_threshold)
    eff = {c: curve.at(centres, c)[:, None] for c in ("efficiency", "efficiency_lo", "efficiency_hi")}
    return ResponseMatrix(
        np.asarray(edges),
        config.binning,
        eff["efficiency"] * p,
        eff["efficiency"] * p_err,
        eff["efficiency_lo"] * p,
        eff["efficiency_hi"] * p,
        {
            "method": "curve",
            "curve": os.fspath(curve.path),
            "curve_sha256": curve.sha256,
            "includes_roi": includes_roi,
            "includes_threshold": includes_threshold,
            "upstream_cuts": [],
        },
    )


def apply_upstream_cuts(
    response: ResponseMatrix, cuts: Iterable[UpstreamCut], *, configured: Iterable[str]
) -> ResponseMatrix:
    """Multiply the response rows by the efficiency of each upstream cut that is not configured.

    Args:
        response: The NR response.
        cuts: The cuts declared applied upstream (:func:`dmpreserve.artifacts.reduced.upstream_cuts`).
        configured: Names of the configured cuts (applied by the simulation itself: skipped here).

    Returns:
        The response with every row ``e`` (nominal, lo, hi, error) multiplied by the product of the
        efficiencies at the bin centre ``E_e`` of the cuts that are not configured and state an efficiency
        (a value or a curve); the names of those cuts recorded in ``efficiency["upstream_cuts"]``.  The
        response unchanged when there are none.
    """
    names = set(configured)
    used = [c for c in cuts if c.name not in names and (c.efficiency is not None or c.energy_kev)]
    if not used:
        return response
    centres = response.energy_centres_kev
    factor = np.prod([c.efficiency_at(centres) for c in used], axis=0)[:, None]
    info = dict(response.efficiency or {"method": "simulation"})
    info["upstream_cuts"] = [
        *info.get("upstream_cuts", []),
        *({"name": c.name, "definition": c.definition} for c in used),
    ]
    return ResponseMatrix(
        response.energy_edges_kev,
        response.binning,
        response.matrix * factor,
        response.matrix_err * factor,
        None if response.matrix_lo is None else response.matrix_lo * factor,
        None if response.matrix_hi is None else response.matrix_hi * factor,
        info,
    )


def nr_response(
    sim: ReducedData,
    config: AnalysisConfig,
    *,
    curve: EfficiencyCurve | None = None,
    upstream: Sequence[UpstreamCut] = (),
) -> ResponseMatrix:
    """The NR response of the configured analysis (``response_nr.json``).

    Args:
        sim: The NR simulation.
        config: The analysis configuration; ``signal.efficiency`` chooses simulation or curve.
        curve: The efficiency curve, required exactly when ``signal.efficiency`` names one.
        upstream: Upstream cuts of the selected events (:func:`apply_upstream_cuts`).

    Raises:
        InvalidConfig: a curve configured but none given, or the reverse (field ``$.signal.efficiency``).
        InvalidData: a curve not covering the energy range.
    """
    setting = efficiency_setting(config)
    if (setting is None) != (curve is None):
        raise InvalidConfig(
            "signal.efficiency is 'simulation' but an efficiency curve was given"
            if setting is None
            else f"signal.efficiency names the curve {setting['curve']} but none was given (--efficiency-curve)",
            path=config.path,
            field="$.signal.efficiency",
        )
    if setting is None:
        response = build_response(sim, config)
    else:
        response = response_from_curve(
            sim,
            config,
            curve,
            includes_roi=setting["includes_roi"],
            includes_threshold=setting["includes_threshold"],
        )
    return apply_upstream_cuts(response, upstream, configured=(c["name"] for c in config.cuts()))


def simulate_er_lines(
    config: AnalysisConfig,
    *,
    line_energies_kev: np.ndarray,
    events_per_line: int = ER_EVENTS_PER_LINE,
    progress: bool = True,
) -> ReducedData:
    """NEST events of monoenergetic ER lines through the configured detector (before any cut).

    Events are uniform in the active volume.  Seeded from the configuration's ``seed`` (stream
    :data:`ER_STREAM`): reruns are identical.  ``true_energy_kev`` holds the line index + 0.5 (unit bins: one
    response row per line, :func:`er_line_response`); events NEST does not detect keep zero areas.

    Returns:
        The simulation (``len(line_energies_kev) x events_per_line`` events, line by line).
    """
    seed = int(config["seed"])
    det = NestDetector(config["mdc"]["detector"], config["mdc"].get("nest_parameters"))
    det.seed(seed * 101 + ER_STREAM)
    rng = np.random.default_rng([seed, ER_STREAM])
    lines = np.asarray(line_energies_kev, dtype=float)
    parts = []
    for e in tqdm(lines, desc="NEST ER lines", unit="line", disable=not progress, mininterval=2.0):
        pos = det.random_positions(events_per_line, rng)
        sim = det.simulate(np.full(events_per_line, e), "er", *pos, rng)
        parts.append(sim)
    cols = {
        k: np.concatenate([p[k] for p in parts])
        for k in ("cs1_phd", "cs2_phd", "s1_phd", "s2_phd", "drift_time_us", "x_cm", "y_cm", "s1_coincidence")
    }
    valid = np.concatenate([p["valid"] for p in parts])
    for k in ("s1_phd", "s2_phd", "cs1_phd", "cs2_phd"):
        cols[k] = np.where(valid, cols[k], 0.0)
    # the line index + 0.5 as "true energy", with unit bins: build_response then gives one row per line
    cols["true_energy_kev"] = np.repeat(np.arange(len(lines)) + 0.5, events_per_line)
    return ReducedData(
        columns=cols,
        meta={"kind": "simulation_er", "n_events": len(valid), "active_volume": det.params.active_volume()},
        path="<ER line simulation>",
    )


def er_line_response(
    sim: ReducedData, config: AnalysisConfig, line_energies_kev: np.ndarray, *, log10_cs2_shift: float = 0.0
) -> LineResponse:
    """The ER line response from :func:`simulate_er_lines`: every configured cut, the analysis binning.

    Args:
        sim: The line simulation (``true_energy_kev`` = line index + 0.5).
        config: The analysis configuration (cuts, binning).
        line_energies_kev: The simulated line energies [keV].
        log10_cs2_shift: Shift every event's log10(cS2/phd) by this many dex (cS2 x 10**shift) before the
            cuts and the binning (a shifted ER band, as in benchmarks/er_band_nuisance.py).  Only cS2 moves
            (raw S2 and cS1 stay as simulated).
    """
    lines = np.asarray(line_energies_kev, dtype=float)
    if log10_cs2_shift:
        cols = dict(sim.columns)
        cols["cs2_phd"] = np.asarray(cols["cs2_phd"]) * 10.0**log10_cs2_shift
        sim = ReducedData(columns=cols, meta=sim.meta, path=sim.path)
    resp = build_response(sim, config, energy_edges_kev=np.arange(len(lines) + 1, dtype=float))
    return LineResponse(lines, resp.binning, resp.matrix, resp.matrix_err)


def simulate_er_response(
    config: AnalysisConfig,
    *,
    line_energies_kev: np.ndarray,
    events_per_line: int = ER_EVENTS_PER_LINE,
    progress: bool = True,
) -> LineResponse:
    """Simulate monoenergetic ER lines with NEST and fold them through the configured cuts and binning.

    Events are uniform in the active volume; the fiducial-volume fraction is divided out as for the NR
    response.  Seeded from the configuration's ``seed`` (stream :data:`ER_STREAM`): reruns are identical.
    """
    sim = simulate_er_lines(
        config, line_energies_kev=line_energies_kev, events_per_line=events_per_line, progress=progress
    )
    return er_line_response(sim, config, line_energies_kev)
