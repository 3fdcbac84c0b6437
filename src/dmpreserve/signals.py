"""Signal model: SI WIMP recoil spectra folded through the NR response matrix.

The response matrix R[e, k] is the probability that a nuclear recoil of true energy in bin ``e``,
inside the fiducial volume, passes every cut and lands in analysis bin ``k`` (efficiency included).
It is built by the ``response`` step (:mod:`dmpreserve.response`); this module only folds spectra
through it.  The expected signal in bin k is sum_e exposure x (integral of dR/dE over bin e) x R[e, k].
With a signal-efficiency band (external curve) the spectra are also folded through the lower and upper
responses: ``efficiency_lo``/``efficiency_hi`` of each mass = folded total with the lower/upper curve
over the nominal one (the ``signal_efficiency`` normsys of the likelihood).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import numpy as np

from dmpreserve.artifacts.mass_grid import MassGrid
from dmpreserve.artifacts.response import ResponseMatrix
from dmpreserve.artifacts.signal_templates import SignalTemplates
from dmpreserve.config import AnalysisConfig, is_listed
from dmpreserve.errors import InvalidConfig, InvalidSpectrum
from dmpreserve.physics.halo import StandardHalo
from dmpreserve.physics.nr_models import kinematic_breakpoints_kev
from dmpreserve.physics.signal_models import SignalModel
from dmpreserve.physics.wimp import rate_si

#: Cross section at which spectra are tabulated [cm^2].
TABULATION_CROSS_SECTION_CM2 = 1e-45


def counts_per_energy_bin(
    edges_kev: np.ndarray,
    *,
    exposure_t_yr: float,
    rate: Callable[[np.ndarray], np.ndarray] | None = None,
    mass_gev: float | None = None,
    cross_section_cm2: float | None = None,
    halo: StandardHalo | None = None,
    breakpoints_kev: np.ndarray | None = None,
    points_per_bin: int = 9,
) -> np.ndarray:
    """Expected recoils per true-energy bin: exposure [t yr] x integral of ``rate`` [events/(t yr keV)].

    The integral over each bin is a ``points_per_bin``-point Gauss-Legendre rule, applied separately
    on each side of every breakpoint inside the bin (kinks of dR/dE, such as the xenon isotopes'
    kinematic endpoints, which a polynomial rule across the kink integrates to only ~1e-3).
    Without ``rate``, the SI spectrum for ``mass_gev`` [GeV], ``cross_section_cm2`` [cm^2] and
    ``halo`` is used, and its breakpoints by default
    (:func:`dmpreserve.physics.nr_models.kinematic_breakpoints_kev`).
    """
    if rate is None:

        def rate(e: np.ndarray) -> np.ndarray:
            return rate_si(e, mass_gev=mass_gev, cross_section_cm2=cross_section_cm2, halo=halo)

        if breakpoints_kev is None:
            breakpoints_kev = kinematic_breakpoints_kev(mass_gev, halo)
    edges = np.asarray(edges_kev, dtype=float)
    cuts = np.asarray([] if breakpoints_kev is None else breakpoints_kev, dtype=float)
    inside = cuts[(cuts > edges[0]) & (cuts < edges[-1])]
    fine = np.union1d(edges, inside) if inside.size else edges  # no breakpoint inside: the plain per-bin rule
    x, w = np.polynomial.legendre.leggauss(points_per_bin)
    lo, hi = fine[:-1], fine[1:]
    half = 0.5 * (hi - lo)
    e = (0.5 * (hi + lo))[:, None] + half[:, None] * x[None, :]
    values = np.asarray(rate(e.ravel()), dtype=float).reshape(e.shape)
    per_piece = (values * w[None, :]).sum(axis=1) * half
    if len(fine) > len(edges):
        per_piece = np.add.reduceat(per_piece, np.searchsorted(fine, edges[:-1]))
    return exposure_t_yr * per_piece


def reference_cross_section(events_at_1e45: float, target_events: float) -> float:
    """The power of ten nearest (in log) to the cross section giving ``target_events`` [cm^2]."""
    if events_at_1e45 <= 0:
        return 1e-40
    return 10.0 ** round(math.log10(TABULATION_CROSS_SECTION_CM2 * target_events / events_at_1e45))


def scaled_template(template: np.ndarray, *, strength: float, target_events: float) -> tuple[np.ndarray, float]:
    """Rescale a template computed at ``strength`` to the power of ten giving about ``target_events``.

    Returns:
        (template at the new reference strength, the reference strength).
    """
    ref = reference_cross_section(float(np.sum(template)) * TABULATION_CROSS_SECTION_CM2 / strength, target_events)
    return template * (ref / strength), ref


def resolve_mass_grid(cfg: AnalysisConfig, model: SignalModel, *, model_file: str) -> MassGrid:
    """The mass grid, resolved once: the model's own grid if it has one, else the configuration's; the limit
    masses are ``limits.masses_gev`` (each must lie on that grid) or the whole grid.

    Raises:
        InvalidConfig: a mass of ``limits.masses_gev`` off the grid, naming the configuration, the key and the
            model file.
    """
    grid = tuple(model.masses_gev or cfg.masses_gev)
    chosen = cfg["limits"]["masses_gev"] or []
    for i, m in enumerate(chosen):
        if not is_listed(m, grid):
            raise InvalidConfig(
                f"mass {m} GeV is not on the mass grid of the signal model {model_file} "
                f"({len(grid)} masses, {min(grid):.4g}-{max(grid):.4g} GeV)",
                path=cfg.path,
                field=f"$.limits.masses_gev[{i}]",
            )
    limit = sorted({float(g) for g in grid if is_listed(g, chosen)})
    return MassGrid(masses_gev=grid, limit_masses_gev=tuple(limit), model_name=model.model, model_file=model_file)


def build_signal(
    *,
    config: AnalysisConfig,
    response: ResponseMatrix,
    exposure_t_yr: float,
    model: SignalModel | None = None,
    masses_gev: tuple[float, ...] | None = None,
) -> SignalTemplates:
    """Signal templates for the mass grid (the ``signal.json`` contents).

    Args:
        config: The analysis configuration (mass grid, halo, target events at the reference).
        response: The NR response matrix (``response_nr.json``); with an efficiency band, the templates get
            ``efficiency_lo``/``efficiency_hi`` (folded total with the lower/upper curve over the nominal).
        exposure_t_yr: Exposure [t yr].
        model: A :class:`dmpreserve.physics.signal_models.SignalModel` (NR models only); None: SI.
            Its halo and mass grid, where given, replace the configuration's.
        masses_gev: The resolved mass grid [GeV] (``mass_grid.json``); None: the model's or the configuration's.

    Raises:
        InvalidSpectrum: field ``masses_gev``, for masses without sensitivity: no expected signal in the
            analysis region (e.g. every recoil below threshold).  The pipeline refuses them up front
            (the caller names the model or configuration file); ``dmpreserve reinterpret`` skips them.
            Field ``efficiency_lo``: with the lower efficiency curve a mass has no expected signal (a
            normsys factor must be > 0).
    """
    model = SignalModel(model="si") if model is None else model
    if model.is_er:
        raise InvalidSpectrum(
            "the signal step folds NR models only; use dmpreserve reinterpret for er_line", field="model"
        )
    halo = model.halo or config.halo
    target = config["signal"]["target_events_at_reference"]
    masses, refs, expected, templates, band = [], [], [], [], []
    for m in masses_gev or model.masses_gev or config.masses_gev:
        rate = model.rate(mass_gev=m, strength=TABULATION_CROSS_SECTION_CM2, halo=halo)
        per_e = counts_per_energy_bin(
            response.energy_edges_kev,
            rate=rate,
            exposure_t_yr=exposure_t_yr,
            breakpoints_kev=model.breakpoints_kev(mass_gev=m, halo=halo),
        )
        nominal = response.fold(per_e)
        tmpl, ref = scaled_template(nominal, strength=TABULATION_CROSS_SECTION_CM2, target_events=target)
        if response.has_band:
            band.append(response.efficiency_band(per_e))
        masses.append(m)
        refs.append(ref)
        expected.append(float(tmpl.sum()))
        templates.append(tmpl)
    invisible = [f"{m:g}" for m, n in zip(masses, expected) if not (math.isfinite(n) and n > 0)]
    if invisible:
        raise InvalidSpectrum(
            f"no sensitivity at {', '.join(invisible)} GeV: no expected signal in the analysis region (every "
            "recoil below threshold); remove these masses from the mass grid",
            field="masses_gev",
        )
    if band and not all(lo > 0 for lo, _ in band):
        raise InvalidSpectrum(
            "no expected signal with the lower efficiency curve at "
            + ", ".join(f"{m:g}" for m, (lo, _) in zip(masses, band) if not lo > 0)
            + " GeV: the signal_efficiency normsys needs lo > 0 (raise efficiency_lo or drop these masses)",
            field="efficiency_lo",
        )
    return SignalTemplates(
        masses_gev=tuple(masses),
        reference_cross_section_cm2=tuple(refs),
        expected_events=tuple(expected),
        templates=np.asarray(templates, float),
        exposure_t_yr=exposure_t_yr,
        model_name=model.model,
        halo=dataclasses.asdict(halo),
        model=f"{model.model}: {model.strength_unit}, standard halo model "
        "(Baxter et al., EPJC 81 (2021) 907 conventions); see dmpreserve.physics.signal_models",
        units={"expected_events": "events", "reference_cross_section_cm2": model.strength_unit},
        efficiency_lo=tuple(lo for lo, _ in band) if band else None,
        efficiency_hi=tuple(hi for _, hi in band) if band else None,
    )


def spectra_rows(
    config: AnalysisConfig, *, points: int = 200, model: SignalModel | None = None
) -> list[tuple[float, float, float]]:
    """Rows (mass_gev, energy_kev, dr_de) of the tabulated spectra at 1e-45 cm^2 [events/(t yr keV)]."""
    model = SignalModel(model="si") if model is None else model
    halo = model.halo or config.halo
    e = config.signal_energy_edges_kev
    grid = np.linspace(e[0], e[-1], points)
    rows = []
    for m in model.masses_gev or config.masses_gev:
        rate = model.rate(mass_gev=m, strength=TABULATION_CROSS_SECTION_CM2, halo=halo)(grid)
        rows.extend((m, float(x), float(r)) for x, r in zip(grid, rate))
    return rows
