"""Fine, smoothed templates for an unbinned likelihood (the ``unbinned-templates`` step, ``likelihood.unbinned``).

An unbinned likelihood evaluates the density of every observed event, as XENON's blueice and LZ's analyses do.  The
densities come from the same model as the binned likelihood, rebuilt on a fine grid (``likelihood.unbinned.binning``
bins over ``analysis.binning``'s ROI) and smoothed by a Gaussian of ``smoothing_bins`` fine bins
(:func:`scipy.ndimage.gaussian_filter`, reflecting at the ROI's edges, so no probability leaves it):

* every background component of ``backgrounds.components`` by :func:`dmpreserve.backgrounds.build_component`,
  the NEST responses rebuilt on the fine grid: the NR one from the NR simulation (with the efficiency curve and the
  upstream cuts, as the response step), the ER lines resimulated with the response step's seed (so that with the
  response step's ``events_per_line`` the events are the response step's own) -- data-driven shapes
  (accidentals, wall events) are histogrammed on the fine grid; an external template, given on the analysis
  binning, cannot be refined and is refused;
* the signal of every mass of the signal step (:func:`dmpreserve.signals.build_signal` on the fine NR response);
* the selected events' fine bins.

Only shapes are kept (each sums to 1 over the fine grid): the normalisations, rate constraints and reference cross
sections are the pyhf workspace's.  Measured on LZ WS2022 in ``benchmarks/lz_unbinned.py`` (docs/analyses.md).
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from dmpreserve.artifacts.reduced import ReducedData, UpstreamCut
from dmpreserve.artifacts.response import EfficiencyCurve
from dmpreserve.artifacts.unbinned import UnbinnedTemplates
from dmpreserve.backgrounds import BackgroundInputs, build_component
from dmpreserve.config import AnalysisConfig, Binning
from dmpreserve.config_backgrounds import shape_kind
from dmpreserve.errors import InvalidConfig, InvalidData
from dmpreserve.physics.signal_models import SignalModel
from dmpreserve.response import ER_EVENTS_PER_LINE, er_line_response, nr_response, simulate_er_lines
from dmpreserve.signals import build_signal

LOG = logging.getLogger("dmpreserve")


def unbinned_setting(config: AnalysisConfig) -> dict[str, Any]:
    """``likelihood.unbinned`` with its default filled in (``er_events_per_line``: the response step's 2000).

    Raises:
        InvalidConfig: the configuration has no ``likelihood.unbinned`` (field ``$.likelihood.unbinned``).
    """
    setting = config["likelihood"].get("unbinned")
    if setting is None:
        raise InvalidConfig(
            "no likelihood.unbinned section: nothing to build the unbinned templates from",
            path=config.path,
            field="$.likelihood.unbinned",
        )
    return {"er_events_per_line": ER_EVENTS_PER_LINE, **setting}


def fine_config(config: AnalysisConfig) -> AnalysisConfig:
    """``config`` with ``analysis.binning`` replaced by the fine grid of ``likelihood.unbinned`` (same ROI)."""
    b = config["analysis"]["binning"]
    fine = unbinned_setting(config)["binning"]
    raw = copy.deepcopy(config.raw)
    raw["analysis"]["binning"] = {
        "cs1_phd": {**b["cs1_phd"], "bins": int(fine["cs1_phd"]["bins"])},
        "log10_cs2": {**b["log10_cs2"], "bins": int(fine["log10_cs2"]["bins"])},
    }
    return dataclasses.replace(config, raw=raw)


def fine_bins(cs1_phd: np.ndarray, log10_cs2: np.ndarray, binning: Binning) -> np.ndarray:
    """Flat bin index ``i_cs1 * n2 + j_log10cs2`` of every event inside ``binning`` (int64; events outside are
    dropped), with NumPy's ``histogram2d`` convention: bins ``[lo, hi)``, the last one of each axis closed."""
    e1, e2 = np.asarray(binning.cs1_edges_phd), np.asarray(binning.log10_cs2_edges)
    x, y = np.asarray(cs1_phd, float), np.asarray(log10_cs2, float)
    inside = (x >= e1[0]) & (x <= e1[-1]) & (y >= e2[0]) & (y <= e2[-1])
    x, y = x[inside], y[inside]
    n1, n2 = binning.shape
    i = np.minimum(np.searchsorted(e1, x, side="right") - 1, n1 - 1)
    j = np.minimum(np.searchsorted(e2, y, side="right") - 1, n2 - 1)
    return (i * n2 + j).astype(np.int64)


def smoothed_shape(values: np.ndarray, shape: tuple[int, int], sigma_bins: float) -> np.ndarray:
    """``values`` (n1 * n2 or (n1, n2)) smoothed by a Gaussian of ``sigma_bins`` bins and normalised to sum 1,
    flattened; all zeros stay all zeros (the caller refuses them)."""
    from scipy.ndimage import gaussian_filter

    a = np.asarray(values, float).reshape(shape)
    if sigma_bins > 0:
        a = gaussian_filter(a, float(sigma_bins), mode="reflect")
    a = np.clip(a, 0.0, None).ravel()
    total = float(a.sum())
    return a / total if total > 0 else a


def build_unbinned_templates(
    config: AnalysisConfig,
    inputs: BackgroundInputs,
    *,
    sim_nr: ReducedData,
    curve: EfficiencyCurve | None,
    upstream: Sequence[UpstreamCut],
    er_line_energies_kev: np.ndarray,
    masses_gev: Sequence[float],
    model: SignalModel | None = None,
    progress: bool = False,
) -> UnbinnedTemplates:
    """The fine templates of ``likelihood.unbinned`` (module docstring).

    Args:
        config: The analysis configuration, with ``likelihood.unbinned``.
        inputs: The backgrounds step's inputs: science run, selected events (the observed events), exposure and
            the datasets of the data-driven shapes; its responses are not used (rebuilt on the fine grid).
        sim_nr: The NR simulation (the response step's input).
        curve: The efficiency curve of ``signal.efficiency``, None with ``simulation``.
        upstream: The upstream cuts of the selected events' sidecar (as the response step).
        er_line_energies_kev: The ER line energies of the response step [keV] (``response_er.json``).
        masses_gev: The signal step's masses [GeV/c^2] (``mass_grid.json``).
        model: The signal model (None: SI), as the signal step's.
        progress: Progress bar for the ER line simulation.

    Raises:
        InvalidData: a component or signal mass whose fine template is all zero (naming the configuration and
            the component, or the mass); a background template given on the analysis binning (external).
        InvalidConfig: see :func:`dmpreserve.backgrounds.build_component`, :func:`dmpreserve.response.nr_response`.
    """
    setting = unbinned_setting(config)
    sigma = float(setting["smoothing_bins"])
    fine = fine_config(config)
    binning = fine.binning
    shape = binning.shape
    lines = np.asarray(er_line_energies_kev, float)
    components = config["backgrounds"]["components"]
    kinds = {comp.get("kind") for comp in components.values() if shape_kind(comp["shape"]) == "nest"}
    response_er = None
    if "ER" in kinds:
        er_sim = simulate_er_lines(
            config, line_energies_kev=lines, events_per_line=int(setting["er_events_per_line"]), progress=progress
        )
        response_er = er_line_response(er_sim, fine, lines)
    response_nr = nr_response(sim_nr, fine, curve=curve, upstream=upstream)
    fine_inputs = dataclasses.replace(
        inputs,
        response_nr=response_nr,
        response_er=response_er,
        response_nr_path="<NR response on the fine grid>",
        response_er_path="<ER line response on the fine grid>",
    )
    names, rows = [], []
    for name, comp in sorted(components.items()):
        try:
            template = build_component(name, comp, fine_inputs, fine).template
        except InvalidData as exc:
            if shape_kind(comp["shape"]) != "template":
                raise
            raise InvalidData(
                f"an external template is given on the analysis binning and cannot be refined for "
                f"likelihood.unbinned ({exc.message})",
                path=exc.path,
                field=exc.field,
            ) from None
        row = smoothed_shape(template, shape, sigma)
        if not row.sum() > 0:
            raise InvalidData(
                "the component's template on the fine grid of likelihood.unbinned is all zero: no density for "
                "the unbinned likelihood",
                path=config.path,
                field=f"$.backgrounds.components.{name}",
            )
        names.append(name)
        rows.append(row)
        LOG.debug("unbinned template of %s: %d of %d fine bins > 0", name, int(np.count_nonzero(row)), row.size)
    signal = build_signal(
        config=fine,
        response=response_nr,
        exposure_t_yr=inputs.exposure.exposure_t_yr,
        model=model,
        masses_gev=tuple(masses_gev),
    )
    order = np.argsort(signal.masses_gev, kind="stable")
    signal_rows = []
    for k in order:
        row = smoothed_shape(signal.templates[k], shape, sigma)
        if not row.sum() > 0:  # build_signal refuses masses without signal; kept as a guard
            raise InvalidData(
                f"the signal of {signal.masses_gev[k]:g} GeV is all zero on the fine grid",
                path=config.path,
                field="$.likelihood.unbinned",
            )
        signal_rows.append(row)
    sel = inputs.selected
    observed = fine_bins(sel.variable("cs1_phd"), sel.variable("log10_cs2"), binning)
    return UnbinnedTemplates(
        cs1_edges=np.asarray(binning.cs1_edges_phd, float),
        log10_cs2_edges=np.asarray(binning.log10_cs2_edges, float),
        smoothing_bins=sigma,
        sample_names=tuple(names),
        backgrounds=np.asarray(rows, float).reshape(len(rows), binning.n_bins),
        masses_gev=tuple(float(signal.masses_gev[k]) for k in order),
        signal=np.asarray(signal_rows, float).reshape(len(signal_rows), binning.n_bins),
        observed_bins=observed,
        nr_energy_edges_kev=np.asarray(response_nr.energy_edges_kev, float),
        nr_response=np.asarray(response_nr.matrix, float),
        er_line_energies_kev=None if response_er is None else np.asarray(response_er.line_energies_kev, float),
        er_response=None if response_er is None else np.asarray(response_er.matrix, float),
    )


def with_signal(templates: UnbinnedTemplates, masses_gev: Sequence[float], fine: np.ndarray) -> UnbinnedTemplates:
    """``templates`` with its signal replaced: the expected counts ``fine`` of each mass on the fine grid (shape
    (n_masses, n1 * n2), the signal folded through ``templates.nr_response`` or ``er_response``, unsmoothed),
    smoothed and normalised as the step smooths the pipeline's own signal, sorted by mass.

    Used by ``dmpreserve reinterpret`` on a kit with the unbinned likelihood: the pipeline's SI masses give the
    step's own shapes (tests/unit/reinterpret/test_unbinned_kit.py).

    Raises:
        InvalidData: a mass whose signal is all zero on the fine grid, or masses that are not distinct.
    """
    masses = np.asarray(masses_gev, float)
    order = np.argsort(masses, kind="stable")
    rows = [smoothed_shape(np.asarray(fine[k], float), templates.shape, templates.smoothing_bins) for k in order]
    for k, row in zip(order, rows):
        if not row.sum() > 0:
            raise InvalidData(
                f"the signal of {masses[k]:g} GeV is all zero on the fine grid of the unbinned likelihood",
                path=templates.path,
                field="masses_gev",
            )
    if np.any(np.diff(masses[order]) <= 0):
        raise InvalidData("signal masses must be distinct", path=templates.path, field="masses_gev")
    return dataclasses.replace(
        templates,
        masses_gev=tuple(float(m) for m in masses[order]),
        signal=np.asarray(rows, float).reshape(len(rows), -1),
    )
