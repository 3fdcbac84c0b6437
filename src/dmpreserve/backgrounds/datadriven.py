"""Data-driven inputs: sideband counts of the science run (streamed, never loaded whole), accidental
coincidences from isolated S1s and S2s, and wall events from the radial sideband.

* Accidental coincidences: random pairings of isolated S1s and isolated S2s with a random drift time,
  corrected with position-correction maps measured on the ER calibration sample; the rate is
  (isolated-S1 rate) x (isolated-S2 rate) x (drift window) x (live time).
* Wall events: events reconstructed outside the wall (a pure wall sample), each weighted with the
  probability that the position resolution at its S2 moves it into the fiducial volume.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.special import ndtr

from dmpreserve.artifacts.reduced import ReducedData, check_dataset, inspect_reduced
from dmpreserve.config import AnalysisConfig, Binning
from dmpreserve.errors import InvalidData
from dmpreserve.selection.cuts import Cut, apply_cuts, cuts_from_config
from dmpreserve.selection.stream import select_stream

#: Random stream of the accidental pairings (derived from the configuration's seed).
ACCIDENTAL_STREAM = 7


def histogram(
    cs1_phd: np.ndarray, log10_cs2: np.ndarray, binning: Binning, weights: np.ndarray | None = None
) -> np.ndarray:
    """2D histogram in the analysis space, [n_cs1][n_log10cs2] (weights: sum of weights per bin)."""
    h, _, _ = np.histogram2d(
        cs1_phd,
        log10_cs2,
        bins=[np.asarray(binning.cs1_edges_phd), np.asarray(binning.log10_cs2_edges)],
        weights=weights,
    )
    return h


@dataclasses.dataclass(frozen=True)
class ScienceRun:
    """The science dataset as files plus the sidecar fields the backgrounds need (no events in memory).

    Attributes:
        files: The Parquet files.
        meta: The first file's sidecar (detector, active volume; shared by all files).
        live_time_s: Live time summed over the files [s].
    """

    files: tuple[str, ...]
    meta: dict[str, Any]
    live_time_s: float


def science_run(paths: Sequence[str | os.PathLike]) -> ScienceRun:
    """The science dataset from its files' sidecars, validated against each file's Parquet schema and row count
    (:func:`~dmpreserve.artifacts.reduced.inspect_reduced`, kind ``science``) and against each other
    (:func:`~dmpreserve.artifacts.reduced.check_dataset`); the events are not read.

    Raises:
        InvalidData: naming the file or sidecar and the field.
    """
    files = [inspect_reduced(p, kinds=("science",)) for p in paths]
    check_dataset(files)
    return ScienceRun(
        tuple(f.path for f in files), files[0].meta, float(math.fsum(f.meta["live_time_s"] for f in files))
    )


def count_science(run: ScienceRun, cuts: Sequence[Cut]) -> int:
    """Science events passing ``cuts`` (streamed with :func:`~dmpreserve.selection.stream.select_stream`)."""
    return select_stream(list(run.files), cuts, columns=["cs1_phd"], cutflow=False, collect=False).n_selected


def er_sideband_counts(
    run: ScienceRun, calib: ReducedData, config: AnalysisConfig, cs1_phd: dict[str, float]
) -> tuple[int, int, int]:
    """(science events in the sideband, calibration events in the sideband, calibration events in the ROI).

    The sideband is the quality and fiducial cuts plus ``min <= cS1 < max``; the ROI is every cut.

    Raises:
        InvalidData: no calibration events in the sideband or the ROI.
    """
    pre = cuts_from_config(config, kinds=("quality", "fiducial"))
    side = Cut(name="er_sideband", kind="roi", variable="cs1_phd", lower=cs1_phd["min"], upper=cs1_phd["max"])
    n_sci = count_science(run, (*pre, side))
    n_cal_sb = int(apply_cuts(calib, (*pre, side))[0].sum())
    n_cal_roi = int(apply_cuts(calib, cuts_from_config(config))[0].sum())
    for n, where in ((n_cal_sb, f"the sideband cS1 {cs1_phd['min']}-{cs1_phd['max']} phd"), (n_cal_roi, "the ROI")):
        if n == 0:
            raise InvalidData(f"no ER calibration events in {where}", path=calib.path, field="cs1_phd")
    return n_sci, n_cal_sb, n_cal_roi


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


@dataclasses.dataclass(frozen=True)
class DataDriven:
    """A data-driven estimate: expected events per bin, its statistical uncertainty per bin, the relative
    statistical uncertainty of the normalisation that the per-bin one does not carry, and a description."""

    template: np.ndarray
    stat_err: np.ndarray
    norm_stat_rel: float
    description: str


def accidentals(
    run: ScienceRun,
    iso_s1: ReducedData,
    iso_s2: ReducedData,
    calib: ReducedData,
    config: AnalysisConfig,
    *,
    pairs: int,
) -> DataDriven:
    """Accidental coincidences from ``pairs`` random pairings of isolated S1s and S2s (seeded).

    Per-bin uncertainty: sqrt(pairings in the bin) x (rate per pairing); the isolated samples' sizes give
    the normalisation's relative uncertainty sqrt(1/N_S1 + 1/N_S2).
    """
    for sample in (iso_s1, iso_s2):
        if len(sample) == 0:
            raise InvalidData("no isolated pulses: accidentals cannot be estimated", path=sample.path, field="n_events")
    rng = np.random.default_rng([int(config["seed"]), ACCIDENTAL_STREAM])
    window = float(run.meta["active_volume"]["drift_time_max_us"])
    i1 = rng.integers(0, len(iso_s1), pairs)
    i2 = rng.integers(0, len(iso_s2), pairs)
    dt = rng.uniform(0.0, window, pairs)
    x, y = iso_s2.columns["x_cm"][i2], iso_s2.columns["y_cm"][i2]
    c1, c2 = correction_map(calib)(dt, np.hypot(x, y))
    s1, s2 = iso_s1.columns["s1_phd"][i1], iso_s2.columns["s2_phd"][i2]
    data = ReducedData(
        columns={
            "event_id": np.arange(pairs),
            "s1_phd": s1,
            "s2_phd": s2,
            "cs1_phd": s1 * c1,
            "cs2_phd": s2 * c2,
            "drift_time_us": dt,
            "x_cm": x,
            "y_cm": y,
            "s1_coincidence": iso_s1.columns["s1_coincidence"][i1],
        },
        meta={"n_events": pairs, "kind": "accidental_pairs"},
        path="<random pairs>",
    )
    mask, _ = apply_cuts(data, cuts_from_config(config))
    r1 = len(iso_s1) / iso_s1.meta["live_time_s"]
    r2 = len(iso_s2) / iso_s2.meta["live_time_s"]
    total = r1 * r2 * window * 1e-6 * run.live_time_s
    counts = histogram(data.columns["cs1_phd"][mask], data.variable("log10_cs2")[mask], config.binning)
    per_pair = total / pairs
    return DataDriven(
        counts * per_pair,
        np.sqrt(counts) * per_pair,
        math.sqrt(1 / len(iso_s1) + 1 / len(iso_s2)),
        f"accidental coincidences: isolated-S1 rate {r1:.4g} Hz x isolated-S2 rate {r2:.4g} Hz x "
        f"{window:.1f} us window x live time = {total:.4g} before cuts; {mask.sum() / pairs:.4g} of {pairs} "
        "random pairings pass all cuts",
    )


def wall_events(run: ScienceRun, config: AnalysisConfig, *, r_min_cm: float) -> DataDriven:
    """Wall events from the science events at r >= ``r_min_cm`` passing every other cut, each weighted with
    P(r_rec < r_fid) / P(r_rec > r_min) for a point on the wall (radial Gaussian smearing with the
    detector's S2-dependent position resolution).  Per-bin uncertainty: sqrt(sum of squared weights).
    """
    det = run.meta["detector"]
    cuts = cuts_from_config(config)
    r_fid = min(c.upper for c in cuts if c.kind == "fiducial" and c.variable == "r_cm")
    keep = [c for c in cuts if not (c.kind == "fiducial" and c.variable == "r_cm")]
    side = Cut(name="wall_sideband", kind="fiducial", variable="r_cm", lower=r_min_cm)
    table = select_stream(list(run.files), (*keep, side), columns=["cs1_phd", "cs2_phd", "s2_phd"], cutflow=False).table
    cs1, cs2, s2 = (table.column(c).to_numpy() for c in ("cs1_phd", "cs2_phd", "s2_phd"))
    for name, arr in (("cs1_phd", cs1), ("cs2_phd", cs2), ("s2_phd", s2)):
        if not np.all(np.isfinite(arr)):
            raise InvalidData("NaN or infinite values among the wall-sideband events", path=run.files[0], field=name)
    res = det["position_resolution_cm"]
    sigma = res["a_cm"] * np.sqrt(1000.0 / np.maximum(s2, 1.0)) + res["b_cm"]
    r_wall = det["wall_radius_cm"]
    w = ndtr((r_fid - r_wall) / sigma) / np.maximum(ndtr((r_wall - r_min_cm) / sigma), 1e-12)
    with np.errstate(divide="ignore"):
        l2 = np.log10(cs2)
    template = histogram(cs1, l2, config.binning, w)
    err = np.sqrt(histogram(cs1, l2, config.binning, w**2))
    return DataDriven(
        template,
        err,
        0.0,
        f"wall events: {len(cs1)} science events reconstructed at r >= {r_min_cm} cm, weighted by the probability "
        f"that the S2-dependent position resolution moves a wall event (r = {r_wall} cm) inside r < {r_fid} cm",
    )
