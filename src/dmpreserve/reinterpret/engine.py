"""Reinterpretation: signal templates for a new model from the kit, a new patchset, limits.

For an NR model (built-in or a user spectrum) the expected signal in analysis bin k is
exposure x sum_e (integral of dR/dE over true-energy bin e) x R_NR[e, k]; for an ER line of
rate r [events/(t yr)] at energy E it is exposure x r x R_ER(E)[k] (linear interpolation between the
simulated lines).  Each mass becomes one pyhf patch adding the ``signal`` sample with normfactor
``mu``; the strength limit is mu_limit x the patch's reference strength.  Limits come from
:func:`dmpreserve.stats.limits.compute_limits` with the pipeline's own statistics (the kit's threshold table
and shared background-only pseudo-datasets when it has them, else asymptotic).  A kit with the unbinned
likelihood (``likelihood: unbinned``) also folds the model through its fine responses onto the fine grid
(``model_signal(..., fine=...)``), and the limits are those of the unbinned likelihood of the observed events
(:func:`dmpreserve.unbinned.with_signal`, :func:`dmpreserve.stats.unbinned.build_unbinned_model`), with the
pipeline's per-mass toys where it used them.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Callable
from typing import Any

import numpy as np

from dmpreserve.artifacts.response import LineResponse, ResponseMatrix, read_line_response, read_response
from dmpreserve.artifacts.signal_templates import SignalTemplates
from dmpreserve.artifacts.thresholds import read_threshold_table
from dmpreserve.artifacts.unbinned import UnbinnedTemplates, read_unbinned_templates
from dmpreserve.config import is_listed
from dmpreserve.errors import InvalidData, InvalidSpectrum
from dmpreserve.physics.halo import StandardHalo
from dmpreserve.physics.signal_models import Rate, SignalModel, UserSpectra
from dmpreserve.reinterpret.kit import UNBINNED_FILE, Kit
from dmpreserve.signals import counts_per_energy_bin, scaled_template
from dmpreserve.stats.limits import compute_limits, method_text, statistics_record
from dmpreserve.stats.toys import ToySettings
from dmpreserve.stats.workspace import build_patchset, validate_patchset
from dmpreserve.unbinned import with_signal

LOG = logging.getLogger("dmpreserve")
#: Band threshold points of kits whose ``statistics_settings`` predate ``band_points`` (made with that value).
LEGACY_BAND_POINTS = 6


@dataclasses.dataclass(frozen=True)
class Reinterpretation:
    """Result of one reinterpretation.

    Attributes:
        signal: The signal templates (masses, reference strengths, templates, expected events).
        patchset: The pyhf patchset (validated against the kit's workspace).
        limits: ``dmpreserve.stats.limits.MassLimit`` per mass, sorted by mass.
        strength_unit: Unit of the reported limits (``limit_cm2`` column).
        source: Description of the model or spectrum file.
        method: The statistical method (``limits.json``).
        no_sensitivity: Masses without any expected signal: no limit (listed in ``limits.json``).
        statistics: The statistical settings, structured (``limits.json`` ``statistics``;
            :func:`dmpreserve.stats.limits.statistics_record`).
        headline: Convention of ``limit_cm2`` (``limits.json`` ``headline_convention``): ``pcl`` (the pipeline's
            kits) or ``unconstrained`` (a template release's convention).
        references: Published curves drawn on the limit plot, ``(label, masses [GeV], limits)``.
        analysis: The analysis the kit preserves, for the plot's title (e.g. ``XENONnT 2026 template release
            (SR0, SR1, SR2)``); empty where the kit names none.
    """

    signal: SignalTemplates
    patchset: dict[str, Any]
    limits: tuple[Any, ...]
    strength_unit: str
    source: dict[str, Any]
    method: str = ""
    no_sensitivity: tuple[float, ...] = ()
    statistics: dict[str, Any] = dataclasses.field(default_factory=dict)
    headline: str = "pcl"
    references: tuple[tuple[str, tuple[float, ...], tuple[float, ...]], ...] = ()
    analysis: str = ""


def read_nr_response(kit: Kit) -> ResponseMatrix:
    """The kit's NR response matrix."""
    return read_response(kit.file("response_nr.json"))


def kit_halo(kit: Kit) -> StandardHalo:
    """The halo the pipeline used (the default for models without one)."""
    return StandardHalo(**kit.manifest["halo"])


def _signal(
    masses, refs, templates, *, exposure: float, unit: str, description: str, halo, band=None
) -> SignalTemplates:
    return SignalTemplates(
        masses_gev=tuple(float(m) for m in masses),
        reference_cross_section_cm2=tuple(float(r) for r in refs),
        expected_events=tuple(float(np.sum(t)) for t in templates),
        templates=np.asarray([np.asarray(t, float) for t in templates]),
        exposure_t_yr=exposure,
        halo=halo,
        model=description,
        units={"expected_events": "events", "reference_cross_section_cm2": unit},
        efficiency_lo=tuple(lo for lo, _ in band) if band else None,
        efficiency_hi=tuple(hi for _, hi in band) if band else None,
    )


def efficiency_band(resp: ResponseMatrix, per_energy_bin: np.ndarray) -> tuple[float, float]:
    """(lo, hi) of the kit response's efficiency band (:meth:`ResponseMatrix.efficiency_band`), as the pipeline's
    ``signal_efficiency`` normsys.

    Raises:
        InvalidSpectrum: no expected signal with the lower curve (the normsys needs lo > 0).
    """
    lo, hi = resp.efficiency_band(per_energy_bin)
    if not lo > 0:
        raise InvalidSpectrum(
            "no expected signal with the kit's lower efficiency curve (the signal_efficiency normsys needs lo > 0)",
            field="masses_gev",
        )
    return lo, hi


def read_unbinned(kit: Kit) -> UnbinnedTemplates:
    """The unbinned likelihood of a kit with ``likelihood: unbinned`` (its fine templates and responses).

    Raises:
        InvalidData: the kit has no unbinned likelihood, or its file has no fine NR response.
    """
    if not kit.unbinned:
        raise InvalidData("the kit has no unbinned likelihood", path=kit.file("kit.json"), field="likelihood")
    templates = read_unbinned_templates(kit.file(UNBINNED_FILE))
    templates.fine_responses()  # refuses a file without the fine NR response
    return templates


def _fine_er(fine: UnbinnedTemplates) -> LineResponse:
    er = fine.fine_responses()[1]
    if er is None:
        raise InvalidSpectrum(
            "the kit's unbinned likelihood has no fine ER line response (its background model has no ER line "
            "shapes): reinterpret ER lines with --binned",
            path=fine.path,
            field="er_response",
        )
    return er


def model_signal(
    kit: Kit,
    model: SignalModel,
    *,
    masses_gev: tuple[float, ...] | None = None,
    fine: UnbinnedTemplates | None = None,
) -> SignalTemplates:
    """Signal templates of a built-in model on the kit (NR or ER response).

    ``fine``: the kit's unbinned likelihood (:func:`read_unbinned`); the templates are then the expected counts
    per fine bin of its grid (folded through its fine responses, unsmoothed: :func:`dmpreserve.unbinned.with_signal`
    smooths them) instead of per analysis bin.
    """
    exposure = float(kit.manifest["exposure_t_yr"])
    target = float(kit.manifest["target_events_at_reference"])
    masses = masses_gev or model.masses_gev or tuple(kit.manifest["masses_gev"])
    halo = model.halo or kit_halo(kit)
    refs, templates, band = [], [], []  # band: the NR response's efficiency band (ER lines have none)
    if model.is_er:
        resp = _fine_er(fine) if fine is not None else read_line_response(kit.file("response_er.json"))
        lo, hi = resp.line_energies_kev[0], resp.line_energies_kev[-1]
        for m in masses:
            e = model.line_energy_kev(m)
            if not lo <= e <= hi:
                raise InvalidSpectrum(
                    f"line at {e:g} keV (mass {m:g} GeV) outside the kit's ER lines {lo:g}-{hi:g} keV",
                    field="masses_gev",
                )
            tmpl = exposure * model.reference_rate_per_t_yr * resp.row(e)
            t, r = scaled_template(tmpl, strength=model.reference_rate_per_t_yr, target_events=target)
            refs.append(r)
            templates.append(t)
    else:
        resp = fine.fine_responses()[0] if fine is not None else read_nr_response(kit)
        for m in masses:
            rate = model.rate(mass_gev=m, strength=1e-45, halo=halo)
            per_e = counts_per_energy_bin(
                resp.energy_edges_kev,
                rate=rate,
                exposure_t_yr=exposure,
                breakpoints_kev=model.breakpoints_kev(mass_gev=m, halo=halo),
            )
            t, r = scaled_template(resp.fold(per_e), strength=1e-45, target_events=target)
            refs.append(r)
            templates.append(t)
            if resp.has_band:
                band.append(efficiency_band(resp, per_e))
    return _signal(
        masses,
        refs,
        templates,
        exposure=exposure,
        unit=model.strength_unit,
        description=f"{model.model} ({model.strength_unit})",
        halo=halo.as_dict(),
        band=band,
    )


#: Relative change of a user spectrum's expected signal between interpolation rules above which the
#: energy grid is said not to resolve the spectrum (a warning is logged and recorded in limits.json).
GRID_RESOLUTION_RTOL = 0.01


def spectrum_signal(
    kit: Kit, spectra: UserSpectra, *, reference_cross_section_cm2: float, fine: UnbinnedTemplates | None = None
) -> SignalTemplates:
    """Signal templates of user spectra (dR/dE at ``reference_cross_section_cm2``) folded through the NR response.

    Each spectrum is interpolated by :data:`dmpreserve.physics.signal_models.INTERPOLATION_RULE` and
    integrated per table interval.  Where the expected signal of the first-order rule (ln dR/dE linear)
    differs from it by more than :data:`GRID_RESOLUTION_RTOL`, the grid does not resolve the spectrum
    and a warning names the file and mass (:func:`grid_resolution`).  ``fine``: as :func:`model_signal` (the
    resolution check is then left to the analysis-binned call).
    """
    exposure = float(kit.manifest["exposure_t_yr"])
    target = float(kit.manifest["target_events_at_reference"])
    resp = fine.fine_responses()[0] if fine is not None else read_nr_response(kit)
    refs, templates, band = [], [], []
    for i, _m in enumerate(spectra.masses_gev):

        def per_energy_bin(rate, i=i):
            return counts_per_energy_bin(
                resp.energy_edges_kev, rate=rate, exposure_t_yr=exposure, breakpoints_kev=spectra.breakpoints_kev(i)
            )

        per_e = per_energy_bin(spectra.rate(i))
        if fine is None:
            grid_resolution(spectra, i, lambda rate, f=per_energy_bin: float(np.sum(resp.fold(f(rate)))))
        t, r = scaled_template(resp.fold(per_e), strength=reference_cross_section_cm2, target_events=target)
        refs.append(r)
        templates.append(t)
        if resp.has_band:
            band.append(efficiency_band(resp, per_e))
    return _signal(
        spectra.masses_gev,
        refs,
        templates,
        exposure=exposure,
        unit="cm^2 (user spectrum)",
        description="user spectrum (NR)",
        halo=None,
        band=band,
    )


def grid_resolution(spectra: UserSpectra, index: int, expected: Callable[[Rate], float]) -> float:
    """|expected(first-order rule) / expected(default rule) - 1| for the ``index``-th spectrum.

    ``expected`` maps a rate to the expected signal (folded through the detector response).  Logs a
    warning naming the spectrum file and mass when the value exceeds :data:`GRID_RESOLUTION_RTOL`.
    """
    best = expected(spectra.rate(index))
    crude = expected(spectra.rate(index, rule="log_linear"))
    change = abs(crude / best - 1.0) if best > 0 else 0.0
    if change > GRID_RESOLUTION_RTOL:
        LOG.warning(
            "%s: mass %g GeV: the energy grid does not resolve the spectrum: its expected signal changes by "
            "%.1f%% between interpolation rules (log-PCHIP vs log-linear); tabulate it on a finer grid",
            spectra.path or "user spectrum",
            spectra.masses_gev[index],
            100 * change,
        )
    return change


def split_visible(signal: SignalTemplates) -> tuple[SignalTemplates, tuple[float, ...]]:
    """The masses with expected signal, and the masses without sensitivity (no expected signal at all).

    Policy (docs/reinterpretation.md): a mass whose signal never reaches the analysis region (e.g.
    every recoil below threshold) has no limit; it is skipped with a warning and listed in
    ``limits.json`` (``no_sensitivity``).  The pipeline's ``signal`` step refuses such masses.

    Raises:
        InvalidSpectrum: no mass has any expected signal (field ``masses_gev``; the caller adds the file).
    """
    total = np.sum(signal.templates, axis=1)
    visible = np.isfinite(total) & (total > 0)
    invisible = tuple(float(m) for m, v in zip(signal.masses_gev, visible) if not v)
    if not np.any(visible):
        raise InvalidSpectrum(
            f"no mass gives expected signal in the analysis region (masses {_list(invisible)} GeV)",
            field="masses_gev",
        )
    if invisible:
        LOG.warning(
            "no sensitivity at %s GeV (no expected signal in the analysis region): no limit, listed in limits.json",
            _list(invisible),
        )
    keep = np.flatnonzero(visible)
    return (
        dataclasses.replace(
            signal,
            masses_gev=tuple(signal.masses_gev[i] for i in keep),
            reference_cross_section_cm2=tuple(signal.reference_cross_section_cm2[i] for i in keep),
            expected_events=tuple(signal.expected_events[i] for i in keep),
            templates=np.asarray(signal.templates)[keep],
            efficiency_lo=None if signal.efficiency_lo is None else tuple(signal.efficiency_lo[i] for i in keep),
            efficiency_hi=None if signal.efficiency_hi is None else tuple(signal.efficiency_hi[i] for i in keep),
        ),
        invisible,
    )


def _list(masses) -> str:
    return ", ".join(f"{m:g}" for m in masses)


def limit_options(kit: Kit, *, mode: str = "kit", unbinned: bool = False) -> tuple[dict[str, Any], str]:
    """Keyword options of :func:`dmpreserve.stats.limits.compute_limits` and the method text.

    ``mode``: ``kit`` (default) -- the pipeline's own method as recorded in the kit: with the kit's
    ``threshold_table.json`` the toy-MC Neyman critical values c(s, b_eff) and the same shared
    background-only pseudo-datasets (seed, count), so the pipeline's masses give its limits; with the unbinned
    likelihood (``unbinned``) and per-mass toys the pipeline's per-mass toys (same seed and streams: the pipeline's
    masses give its limits); without either (an asymptotic pipeline, or an old kit) asymptotic.
    ``asymptotic``: chi2_1 threshold and Asimov bands.  ``toys``: fresh toys of each mass at every mu the root
    finder evaluates (or, with ``statistics_settings.observed_limit: regression``, at the regression's mu values).
    """
    st = kit.manifest.get("statistics_settings") or {"neyman_threshold": "asymptotic", "pcl_power": 0.16}
    opts: dict[str, Any] = {"pcl_power": float(st["pcl_power"])}
    has_table = "threshold_table.json" in kit.manifest["files"]
    observed = str(st.get("observed_limit", "root"))
    if mode == "kit" and unbinned:
        mode = "toys" if st["neyman_threshold"] == "toys" else "asymptotic"
    elif mode == "kit":
        mode = "table" if has_table and st["neyman_threshold"] != "asymptotic" else "asymptotic"
    if mode != "asymptotic":
        if st["neyman_threshold"] == "asymptotic":
            raise InvalidSpectrum(
                "the kit records no toy settings (the pipeline's limits were asymptotic)",
                path=kit.file("kit.json"),
                field="statistics_settings",
            )
        opts["toys"] = ToySettings(
            mode=mode,
            toys_background=int(st["toys_background"]),
            toys_per_mu=int(st.get("toys_per_mu", 1000)),
            seed=int(st["seed"]),
            band_points=int(st.get("band_points", LEGACY_BAND_POINTS)),
            observed=observed,
        )
        if mode == "table":
            opts["table"] = read_threshold_table(kit.file("threshold_table.json"))
    method = method_text(
        toys=None if mode == "asymptotic" else mode, pcl_power=opts["pcl_power"], unbinned=unbinned, observed=observed
    )
    return opts, method


def toy_stream_index(kit: Kit) -> Callable[[int, float], int]:
    """The per-mass toy stream of a reinterpreted mass: a mass of the kit (the pipeline's limit masses) gets its
    index there, the pipeline's own stream, whatever other masses are asked for (so ``--masses 46.2295`` alone
    gives the pipeline's 46.2295 GeV limit); any other mass gets ``n_kit + i`` (i: its place among the masses
    asked for), a stream of its own."""
    kit_masses = sorted(float(m) for m in kit.manifest["masses_gev"])

    def index(i: int, mass_gev: float) -> int:
        hit = [k for k, m in enumerate(kit_masses) if is_listed(mass_gev, [m])]
        return hit[0] if hit else len(kit_masses) + i

    return index


def reinterpret(
    kit: Kit,
    signal: SignalTemplates,
    *,
    strength_unit: str,
    source: dict[str, Any],
    progress: bool = True,
    mode: str = "kit",
    unbinned: tuple[UnbinnedTemplates, SignalTemplates] | None = None,
) -> Reinterpretation:
    """Build the patchset for ``signal`` and compute the limits with the pipeline's statistics.

    Masses without expected signal are skipped and reported (:func:`split_visible`).  With ``unbinned`` (the kit's
    unbinned likelihood and the same model's signal on its fine grid, ``model_signal(..., fine=...)``) the limits
    are those of the unbinned likelihood of the observed events, the patchset giving the signal's normalisation
    and efficiency nuisance as in the pipeline.

    Args:
        kit: The loaded kit.
        signal: Signal document (:func:`model_signal` or :func:`spectrum_signal`).
        strength_unit: Unit of the limits.
        source: Model or spectrum description (limits.json).
        progress: Progress bar.
        mode: ``kit`` (the kit's method: threshold table if present), ``asymptotic`` or ``toys``
            (see :func:`limit_options`).
    """
    all_masses = signal.masses_gev
    signal, invisible = split_visible(signal)
    fine = None
    if unbinned is not None:
        templates, fine_signal = unbinned
        keep = [i for i, m in enumerate(all_masses) if m not in invisible]
        fine = with_signal(templates, signal.masses_gev, np.asarray(fine_signal.templates)[keep])
    # build with placeholder masses (patch names must match [a-zA-Z0-9_]+), then name each patch after
    # the model and its mass
    placeholder = dataclasses.replace(signal, masses_gev=tuple(range(1, len(signal.masses_gev) + 1)))
    ps = build_patchset(kit.workspace, placeholder, inspire_id=kit.manifest["inspire_id"])
    label = re.sub(r"[^a-zA-Z0-9_]", "_", str(source.get("model", "spectrum")))
    for patch, mass in zip(ps["patches"], signal.masses_gev):
        patch["metadata"]["values"] = [float(mass)]
        patch["metadata"]["name"] = (
            f"{label}_m" + f"{mass:.6g}".replace(".", "p").replace("-", "m").replace("+", "") + "_GeV"
        )
    validate_patchset(ps, kit.workspace)
    ps["metadata"]["name"] = "reinterpretation"
    ps["metadata"]["description"] = (
        f"signal hypotheses of {source.get('model', 'a user spectrum')}; strength = "
        f"mu x reference_cross_section_cm2 of each patch [{strength_unit}]; "
        "values = [mass in GeV]"
    )
    opts, method = limit_options(kit, mode=mode, unbinned=fine is not None)
    limits = compute_limits(
        kit.workspace,
        ps,
        cl=float(kit.manifest["cl"]),
        progress=progress,
        unbinned=fine,
        stream_index=toy_stream_index(kit),
        **opts,
    )
    statistics = statistics_record(opts.get("toys"), pcl_power=opts["pcl_power"], unbinned=fine is not None)
    return Reinterpretation(signal, ps, tuple(limits), strength_unit, source, method, invisible, statistics)
