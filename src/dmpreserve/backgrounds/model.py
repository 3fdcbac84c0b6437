"""The background model declared in the configuration (``backgrounds.components``) made into templates.

Each component is a shape (``nest``: a spectrum folded through the NEST response; ``template``: an external
histogram; ``isolated_pairs`` / ``radial_sideband``: data-driven), a normalisation (``expected_events``,
``rate_per_t_yr``, ``spectrum``, ``sideband``, ``data_driven`` or ``template``) and a rate constraint
(``lognormal``, ``gaussian`` or ``free``).  See docs/physics.md for every key and its units.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any

import numpy as np

from dmpreserve.artifacts.exposure import Exposure
from dmpreserve.artifacts.reduced import ReducedData
from dmpreserve.artifacts.response import LineResponse, ResponseMatrix
from dmpreserve.artifacts.templates import BackgroundComponent, BackgroundTemplates
from dmpreserve.backgrounds.datadriven import (
    ScienceRun,
    accidentals,
    er_sideband_counts,
    histogram,
    wall_events,
)
from dmpreserve.backgrounds.external import read_csv_template, read_hdf5_template
from dmpreserve.backgrounds.folding import fold_er, fold_nr
from dmpreserve.backgrounds.spectra import spectrum_from_config
from dmpreserve.config import AnalysisConfig, Binning
from dmpreserve.config_backgrounds import NORMALISATION_SOURCES, shape_kind
from dmpreserve.errors import InvalidConfig, InvalidData

#: Bounds of a free rate multiplier when the configuration gives none.
FREE_BOUNDS_DEFAULT = (0.0, 10.0)


@dataclasses.dataclass(frozen=True)
class BackgroundInputs:
    """Everything the components may read (the ``backgrounds`` step's inputs).

    Attributes:
        science: The science dataset (sidecars only; sidebands are streamed from its files).
        selected: The ``select`` step's selected events: the observed histogram.
        calib_er: The ER calibration (sideband normalisation, accidentals' position correction); None: absent.
        isolated_s1, isolated_s2: Isolated S1s and S2s (accidentals); None: absent.
        response_nr, response_er: The NEST NR response matrix and ER line response; None: absent.
        response_nr_path, response_er_path: Their files (for errors).
        exposure: The ``select`` step's exposure [t yr].
    """

    science: ScienceRun
    selected: ReducedData
    exposure: Exposure
    calib_er: ReducedData | None = None
    isolated_s1: ReducedData | None = None
    isolated_s2: ReducedData | None = None
    response_nr: ResponseMatrix | None = None
    response_er: LineResponse | None = None
    response_nr_path: str = "response_nr.json"
    response_er_path: str = "response_er.json"


def _need(value: Any, option: str, name: str, config: AnalysisConfig) -> Any:
    if value is None:
        raise InvalidConfig(
            f"component {name!r} needs the input {option}, which was not given",
            path=config.path,
            field=f"$.backgrounds.components.{name}",
        )
    return value


def _check_binning(binning: Binning, want: Binning, *, path: str) -> None:
    for key in ("cs1_edges_phd", "log10_cs2_edges"):
        got, ref = np.asarray(getattr(binning, key)), np.asarray(getattr(want, key))
        if got.shape != ref.shape or not np.allclose(got, ref, rtol=1e-9, atol=1e-12):
            raise InvalidData(
                "the response was built on another binning than the configuration's analysis binning",
                path=path,
                field=f"binning.{key}",
            )


def _shape(name: str, comp: dict[str, Any], inputs: BackgroundInputs, config: AnalysisConfig):
    """The shape: (raw template [n_cs1][n_log10cs2], its stat error or None, normalisation stat rel, spectrum
    total [events/(t yr)] or None, method, description)."""
    field = f"$.backgrounds.components.{name}"
    binning = config.binning
    shape = shape_kind(comp["shape"])
    exposure = inputs.exposure.exposure_t_yr
    if shape == "nest":
        try:
            spectrum = spectrum_from_config(comp["spectrum"], field=f"{field}.spectrum")
        except InvalidConfig as exc:
            raise InvalidConfig(exc.message, path=config.path, field=exc.field) from None
        common = {"config_path": config.path, "field": f"{field}.spectrum"}
        if comp["kind"] == "NR":
            resp = _need(inputs.response_nr, "--response-nr", name, config)
            _check_binning(resp.binning, binning, path=inputs.response_nr_path)
            folded = fold_nr(spectrum, resp, exposure, response_path=inputs.response_nr_path, **common)
        else:
            resp = _need(inputs.response_er, "--response-er", name, config)
            _check_binning(resp.binning, binning, path=inputs.response_er_path)
            folded = fold_er(spectrum, resp, exposure, response_path=inputs.response_er_path, **common)
        n1, n2 = binning.shape
        text = f"{comp['kind']} {spectrum.label}, folded through the NEST {comp['kind']} response"
        return (
            folded.template.reshape(n1, n2),
            folded.stat_err.reshape(n1, n2),
            0.0,
            spectrum.total(),
            f"NEST {comp['kind']} response x spectrum",
            text,
        )
    if shape == "template":
        src = comp["shape"]["template"]
        if "csv" in src:  # paths relative to the working directory; errors name the absolute path
            ext, where = read_csv_template(os.path.abspath(src["csv"]), binning), src["csv"]
        else:
            ext = read_hdf5_template(os.path.abspath(src["hdf5"]["path"]), src["hdf5"]["histogram"], binning)
            where = f"{src['hdf5']['path']}:{src['hdf5']['histogram']}"
        return ext.values, ext.stat_err, 0.0, None, "external template", f"external template {where}"
    if shape == "isolated_pairs":
        dd = accidentals(
            inputs.science,
            _need(inputs.isolated_s1, "--isolated-s1", name, config),
            _need(inputs.isolated_s2, "--isolated-s2", name, config),
            _need(inputs.calib_er, "--calib-er", name, config),
            config,
            pairs=int(comp["shape"]["isolated_pairs"]["pairs"]),
        )
        return dd.template, dd.stat_err, dd.norm_stat_rel, None, "data-driven random pairing", dd.description
    dd = wall_events(inputs.science, config, r_min_cm=float(comp["shape"]["radial_sideband"]["r_min_cm"]))
    return (
        dd.template,
        dd.stat_err,
        dd.norm_stat_rel,
        None,
        "high-radius sideband with leakage weights",
        dd.description,
    )


def build_component(name: str, comp: dict[str, Any], inputs: BackgroundInputs, config: AnalysisConfig):
    """One configured component as a :class:`BackgroundComponent` (template, rate, constraint, stat error).

    Raises:
        InvalidConfig: a normalisation that cannot be applied (empty shape, zero spectrum), naming the key.
        InvalidData: a bad input file (see the shape readers), naming the file and field.
    """
    field = f"$.backgrounds.components.{name}.normalisation"
    norm = comp["normalisation"]
    source = next(k for k in NORMALISATION_SOURCES if k in norm)
    raw, err, stat_rel, spectrum_total, method, text = _shape(name, comp, inputs, config)
    raw_sum = float(raw.sum())
    if source == "spectrum" or source == "data_driven":
        scale, how = 1.0, "absolute spectrum x exposure" if source == "spectrum" else "data-driven estimate"
    elif source == "template":
        scale, how = inputs.exposure.exposure_t_yr, "template [events/(t yr)] x exposure"
    elif source == "rate_per_t_yr":
        if not spectrum_total or spectrum_total <= 0:
            raise InvalidConfig("the spectrum integrates to 0: cannot normalise it", path=config.path, field=field)
        scale, how = norm["rate_per_t_yr"] / spectrum_total, f"{norm['rate_per_t_yr']:g} events/(t yr) before cuts"
    else:
        if source == "expected_events":
            target, how = float(norm["expected_events"]), f"{norm['expected_events']:g} expected events"
        else:
            sb = norm["sideband"]["cs1_phd"]
            calib = _need(inputs.calib_er, "--calib-er", name, config)
            n_sci, n_cal_sb, n_cal_roi = er_sideband_counts(inputs.science, calib, config, sb)
            target = n_sci * n_cal_roi / n_cal_sb
            stat_rel = math.sqrt(1 / max(n_sci, 1) + 1 / n_cal_sb + 1 / n_cal_roi)
            how = (
                f"{n_sci} science events in the sideband {sb['min']} <= cS1 < {sb['max']} phd x ({n_cal_roi} "
                f"calibration events in the ROI / {n_cal_sb} in the sideband)"
            )
        if raw_sum <= 0:
            raise InvalidConfig(
                "the shape has no events in the analysis region: cannot normalise it", path=config.path, field=field
            )
        scale = target / raw_sum
    template = raw * scale
    stat_err = None if err is None or not np.any(err > 0) else err * scale
    expected = float(template.sum())
    constraint = norm["constraint"]
    ctype = next(iter(constraint))
    bounds = None
    if ctype == "free":
        bounds = tuple(constraint["free"].get("bounds", FREE_BOUNDS_DEFAULT))
        unc, ctext = 0.0, f"free rate in [{bounds[0]:g}, {bounds[1]:g}]"
    else:
        rel = math.hypot(float(constraint[ctype]), stat_rel)
        if ctype == "gaussian" and rel >= 1:
            raise InvalidConfig(
                f"the Gaussian width with the statistical part ({rel:.3g}) must stay below 1",
                path=config.path,
                field=f"{field}.constraint.gaussian",
            )
        unc, ctext = expected * rel, f"{ctype} constraint {rel:.3g}"
    return BackgroundComponent(
        name,
        expected,
        unc,
        template,
        f"{method}; {how}",
        f"{comp.get('description') or text}; normalised by {how}; {ctext}",
        constraint=ctype,
        bounds=bounds,
        stat_err=stat_err,
    )


def estimate_backgrounds(config: AnalysisConfig, inputs: BackgroundInputs) -> BackgroundTemplates:
    """Every configured component, the observed histogram and the exposure (the ``templates.json`` contents).

    Raises:
        InvalidData: an analysis bin with observed events where no component expects any (its likelihood
            would be 0): the background model must cover every populated bin.
        InvalidConfig, InvalidData: see :func:`build_component`.
    """
    binning = config.binning
    sel = inputs.selected
    observed = histogram(sel.columns["cs1_phd"], sel.variable("log10_cs2"), binning).astype(int)
    comps = {
        name: build_component(name, comp, inputs, config)
        for name, comp in sorted(config["backgrounds"]["components"].items())
    }
    total = np.sum([c.template for c in comps.values()], axis=0)
    empty = (total <= 0) & (observed > 0)
    if np.any(empty):
        i, j = (int(x[0]) for x in np.nonzero(empty))
        e1, e2 = binning.cs1_edges_phd, binning.log10_cs2_edges
        raise InvalidData(
            f"{int(empty.sum())} analysis bins hold observed events but no background component expects any "
            f"(first: cS1 {e1[i]:.4g}-{e1[i + 1]:.4g} phd, log10 cS2 {e2[j]:.4g}-{e2[j + 1]:.4g}, "
            f"{int(observed[i, j])} events): the likelihood would be 0 there; add a component covering these bins",
            path=config.path,
            field="$.backgrounds.components",
        )
    return BackgroundTemplates(
        cs1_edges_phd=tuple(binning.cs1_edges_phd),
        log10_cs2_edges=tuple(binning.log10_cs2_edges),
        observed=observed,
        exposure_t_yr=inputs.exposure.exposure_t_yr,
        components=comps,
    )
