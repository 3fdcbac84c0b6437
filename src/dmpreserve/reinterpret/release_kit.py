"""``dmpreserve import-release``: a XENONnT template release as a reinterpretation kit, and its reinterpretation.

The kit (``kit.json`` with ``kind: template_release``, ``format_version: 3``; schema
``schemas/reinterpretation_kit.schema.json``) holds:

* ``BkgOnly.json`` -- background-only pyhf workspace (:func:`dmpreserve.reinterpret.xenonnt.build_workspace`);
* ``mono_templates.json`` -- per run the livetime [t yr] and the mono-energetic NR efficiency templates at
  the five yield anchors (nominal, t_ly = +-1, t_qy = +-1), shape [energy][81 bins];
* ``yield_grids.json`` -- every grid component on the full 7 x 7 (t_ly, t_qy) grid
  (:func:`dmpreserve.reinterpret.xenonnt.grid_document`; new in format 3): the release's own morphing;
* ``patchset_si.json`` -- the SI signal patchset at the published masses (3-12 GeV);
* ``published_limits.csv`` -- the release's SI limit file, unchanged (CC-BY-4.0, arXiv:2604.06002);
* ``likelihood_hs3.json`` -- the likelihood in HS3 (:mod:`dmpreserve.publish.hs3`): ``BkgOnly.json`` plus the
  SI patch at :data:`HS3_REFERENCE_MASS_GEV`;
* ``README.md``.

``dmpreserve reinterpret --kit KIT`` builds any NR model's (or user spectrum's) signal from
``mono_templates.json`` (:func:`dmpreserve.reinterpret.xenonnt.signal_patch`) and computes the limits with
the fast engine (:mod:`dmpreserve.stats`; :func:`patch_limit`).  By default (``yield_morphing="release"``) the
grid components are interpolated bilinearly on ``yield_grids.json``, as the release's own blueice likelihood
does; ``"pyhf"`` evaluates the workspace's normsys + histosys exactly as pyhf (the serialized likelihood).
:mod:`dmpreserve.reinterpret.pyhf_limits` computes the ``"pyhf"`` limits with pyhf itself (the cross-check of
``tests/unit/reinterpret/test_xenonnt_release.py``).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from dmpreserve.artifacts.signal_templates import SignalTemplates
from dmpreserve.errors import InvalidData, InvalidSpectrum
from dmpreserve.files import dumps_json, read_json
from dmpreserve.physics.halo import StandardHalo
from dmpreserve.physics.signal_models import SignalModel, UserSpectra, model_from_dict
from dmpreserve.publish.hs3 import workspace_to_hs3
from dmpreserve.reinterpret.engine import Reinterpretation, toy_stream_index
from dmpreserve.reinterpret.kit import Kit, write_kit
from dmpreserve.reinterpret.release import Release
from dmpreserve.reinterpret.verify import read_curve
from dmpreserve.reinterpret.xenonnt import (
    PRIORS,
    PUBLISHED_SI_MASSES_GEV,
    SIGNAL_EFFICIENCY,
    TARGET_EVENTS,
    YIELDS,
    b8_counts,
    build_workspace,
    efficiency_width,
    grid_document,
    mono_document,
    mono_weights,
    release_grids,
    signal_patch,
    workspace_efficiency_width,
)
from dmpreserve.stats.asymptotic import asymptotic_limits
from dmpreserve.stats.fit import reference_patch
from dmpreserve.stats.grid import SampleGrid
from dmpreserve.stats.limits import MassLimit, limit_for_patch, statistics_record
from dmpreserve.stats.model import build_model
from dmpreserve.stats.toys import ToySettings

LOG = logging.getLogger("dmpreserve")
KIND = "template_release"
#: Kit format written by :func:`import_release` (3: adds ``yield_grids.json``).
KIT_FORMAT = 3
#: Yield morphings of :func:`reinterpret_release`: the release's bilinear grid, or the workspace's pyhf modifiers.
YIELD_MORPHINGS = ("release", "pyhf")
#: WIMP mass [GeV] of the SI patch in the kit's HS3 likelihood (the middle of the published 3-12 GeV).
HS3_REFERENCE_MASS_GEV = 6.0
CL = 0.9
PUBLISHED_SI = Path("limits") / "sr2" / "xenonnt_2026_wimp_si.csv"
SOURCE = (
    "XENON Collaboration, arXiv:2604.06002 (CC-BY-4.0); data release XENONnT/cevns_data_release, "
    "Zenodo 10.5281/zenodo.20576156"
)
#: Toy settings of ``reinterpret --toys`` on a template-release kit: Neyman thresholds from fresh toys of each
#: mass, band from background-only toys, all generated at the nominal model (every nuisance at its constraint's
#: centre), XENON's convention: its inference package alea generates the threshold and sensitivity toys with only
#: the signal expectation set, the other parameters at their nominal values (XENONnT/alea
#: ``alea/examples/configs/unbinned_wimp_running.yaml``, ``computation_options`` ``threshold`` and
#: ``sensitivity``), not at a fit to the data (pyhf's ``ToyCalculator``).  The band's thresholds at 24 mu values
#: from 2000 toys each: with 6 x 400 (until 2026-11-30) the band edges came out up to 20% lower (median at 7 GeV
#: 0.85 instead of 0.97 x published), the thresholds' toy error.  3000 background-only toys: the band edges' bootstrap
#: error 2-4% (1000 toys: 3-8%) for 1.4 x the time per mass.  49 of the published SI limit and band's 60 numbers are
#: within 15% (1000 toys: 49, other misses; 6 x 400: 45; toys at the fit: 35; docs/reinterpretation.md).
#: Critical power of the ``limit_pcl_cm2`` column of a release reinterpretation (max(unconstrained, -1 sigma band),
#: docs/statistics.md), given for comparison only: the headline ``limit_cm2`` is the unconstrained Neyman limit, the
#: release's convention (its observed limit lies below its median at 9 and 12 GeV, so it is not power-constrained
#: at 0.5; docs/reinterpretation.md).
RELEASE_PCL_POWER = 0.16
RELEASE_TOYS = ToySettings(
    mode="toys", toys_background=3000, toys_per_mu=2000, seed=20260401, truth="nominal", band_points=24
)
_MORPHING_TEXT = {
    "release": "yield nuisances t_ly, t_qy by the release's own bilinear interpolation of its 7x7 grid",
    "pyhf": "yield nuisances by the workspace's normsys (code4) + histosys (code4p), as pyhf",
}


def method_text(*, toys: bool, yield_morphing: str) -> str:
    """The statistical method of a release-kit reinterpretation, in words (``limits.json`` ``method``)."""
    if toys:
        stat = (
            "Neyman upper limit of the two-sided PLR t~mu with thresholds from "
            f"{RELEASE_TOYS.toys_per_mu} toys at every evaluated mu, no power constraint; sensitivity band from "
            f"thresholds at {RELEASE_TOYS.band_points} mu values and "
            f"{RELEASE_TOYS.toys_background} background-only toys; all toys at the nominal model "
            "(XENON's alea convention)"
        )
    else:
        stat = (
            "asymptotic Neyman upper limit of the two-sided PLR t~mu (chi2_1 threshold), no power constraint; "
            "Asimov sensitivity band"
        )
    return f"dmpreserve.stats fast engine, {_MORPHING_TEXT[yield_morphing]}: {stat}; asymptotic CLs (q~mu)"


README = """# dmpreserve reinterpretation kit: XENONnT 2026 light-DM / solar 8B release

Imported with `dmpreserve import-release` from the XENONnT binned template release (arXiv:2604.06002,
CC-BY-4.0; cite the paper and the release, Zenodo 10.5281/zenodo.20576156).

    dmpreserve reinterpret --kit . --model my_model.yaml -o out/
    dmpreserve reinterpret --kit . --spectrum my_spectra.csv --reference-cross-section 1e-45 -o out/

Any NR model (si, sd_neutron, sd_proton, light_mediator, inelastic) or user NR spectrum is folded with the
mono-energetic efficiency templates (0.5-5 keV; mono_templates.json); limits are asymptotic (--toys: from toys).
The yield nuisances t_ly, t_qy act as in the release's own likelihood (bilinear interpolation of its 7x7 grid,
yield_grids.json) unless --yield-morphing pyhf; BkgOnly.json and patchset_si.json are the pyhf form of the
likelihood, with normsys + histosys for them (an approximation, measured in the docs).
Nuisance-parameter priors are NOT given by the 2026 release: the kit uses those of the earlier release
(kit.json, nuisance_parameters), presumed.  See docs/reinterpretation.md of dmpreserve.
"""


def nr_model_weights(model: SignalModel, mass_gev: float, halo: StandardHalo, energies: np.ndarray) -> np.ndarray:
    """Mono weights [events/(t yr)] of a built-in NR model at 1e-45 (its strength unit)."""
    if model.is_er:
        raise InvalidSpectrum("a template release has NR templates only; er_line cannot be tested", field="model")
    return mono_weights(model.rate(mass_gev=mass_gev, strength=1e-45, halo=halo), energies)


def _patch_name(label: str, mass: float) -> str:
    tag = f"{mass:.6g}".replace(".", "p").replace("-", "m").replace("+", "")
    return re.sub(r"[^a-zA-Z0-9_]", "_", f"{label}_m{tag}_GeV")


def make_patchset(
    mono: dict[str, Any],
    items: list[tuple[float, np.ndarray, float]],
    *,
    label: str,
    signal_efficiency: bool | float,
) -> tuple[dict[str, Any], list[float], list[float]]:
    """A patchset of (mass [GeV], mono weights at ``strength``, strength) items.

    Returns:
        (patchset, reference strength at mu = 1 per item, expected events at the reference per item).
    """
    patches, refs, events = [], [], []
    for mass, w, strength in items:
        patch, scale, _total = signal_patch(
            mono, w, name=_patch_name(label, mass), values=[mass], signal_efficiency=signal_efficiency
        )
        patches.append(patch)
        refs.append(scale * strength)
        events.append(TARGET_EVENTS)
    doc = {
        "metadata": {
            "name": f"{label}_signal",
            "description": f"signal hypotheses ({label}); strength = mu x reference; values = [mass in GeV]",
            "digests": {},
            "labels": ["mass_gev"],
            "references": {},
        },
        "patches": patches,
        "version": "1.0.0",
    }
    return doc, refs, events


def import_release(
    release: Release,
    outdir: str | os.PathLike,
    *,
    signal_efficiency: bool | float = False,
    halo: StandardHalo | None = None,
) -> dict[str, Any]:
    """Write the kit of ``release`` into ``outdir`` (all files built in memory first, then written).

    Args:
        release: The checked release (:func:`dmpreserve.reinterpret.release.read_release`).
        outdir: Kit directory.
        signal_efficiency: Relative width of a signal-efficiency normsys shared by 8B and the signal
            (``True``: the earlier release's 25%; ``False`` or 0: none), recorded in ``kit.json``.
        halo: Halo of the SI patchset and the kit's default (Baxter et al. 2021 if None).

    Returns:
        The manifest written to ``kit.json``.
    """
    halo = halo or StandardHalo()
    width = efficiency_width(signal_efficiency)
    ws = build_workspace(release, signal_efficiency=width)
    mono = mono_document(release)
    si = model_from_dict({"model": "si"})
    items = [(m, nr_model_weights(si, m, halo, release.mono_energies_kev), 1e-45) for m in PUBLISHED_SI_MASSES_GEV]
    ps, _refs, _ = make_patchset(mono, items, label="si", signal_efficiency=width)
    published = Path(release.path) / PUBLISHED_SI
    files = {"BkgOnly.json": dumps_json(ws).encode(), "mono_templates.json": dumps_json(mono).encode()}
    files["patchset_si.json"] = dumps_json(ps).encode()
    files["yield_grids.json"] = dumps_json(grid_document(release)).encode()
    hs3_patch = reference_patch(ps, HS3_REFERENCE_MASS_GEV)
    files["likelihood_hs3.json"] = dumps_json(workspace_to_hs3(ws, hs3_patch, name="xenonnt_2026_si")).encode()
    if published.is_file():
        files["published_limits.csv"] = published.read_bytes()
    files["README.md"] = README.encode()
    nuisances = dict(PRIORS)
    if width:
        nuisances["signal_efficiency"] = {**SIGNAL_EFFICIENCY, "relative": width}
        if width != SIGNAL_EFFICIENCY["relative"]:
            nuisances["signal_efficiency"]["source"] = (
                f"width {width:g} chosen at import (--signal-efficiency), instead of "
                f"{SIGNAL_EFFICIENCY['relative']:g} of: "
                f"{SIGNAL_EFFICIENCY['source']}"
            )
    manifest = {
        "format": "dmpreserve-reinterpretation-kit",
        "format_version": KIT_FORMAT,
        "kind": KIND,
        "source": SOURCE,
        "cl": CL,
        "poi_bounds": ws["measurements"][0]["config"]["parameters"][0]["bounds"][0],
        "inspire_id": "arXiv:2604.06002",
        "target_events_at_reference": TARGET_EVENTS,
        "runs": [
            {"name": r.name, "livetime_t_yr": r.livetime_t_yr, "n_bins": int(r.observed.size)} for r in release.runs
        ],
        "analysis_binning": {
            r.name: {"axes": list(r.axis_names), "edges": [e.tolist() for e in r.edges], "flattening": "C order"}
            for r in release.runs
        },
        "mono_energies_kev": release.mono_energies_kev.tolist(),
        "halo": halo.as_dict(),
        "masses_gev": list(PUBLISHED_SI_MASSES_GEV),
        "statistics": method_text(toys=False, yield_morphing="release"),
        "nuisance_parameters": nuisances,
        "signal_efficiency": width,
        "b8_expected_events": b8_counts(release),
        "units": {"livetime_t_yr": "t yr", "energies": "keV", "masses_gev": "GeV/c^2", "limits": "cm^2"},
    }
    write_kit(outdir, files=files, manifest=manifest)
    return manifest


def patch_limit(
    workspace: dict[str, Any],
    patch: dict[str, Any],
    *,
    reference: float,
    cl: float = CL,
    toys: ToySettings | None = None,
    mass_index: int = 0,
    grids: Mapping[tuple[str, str], SampleGrid] | None = None,
    progress: bool = False,
) -> MassLimit:
    """Limits of one signal patch with the fast engine, in units of mu (headline without power constraint).

    The conventions of :func:`dmpreserve.reinterpret.pyhf_limits.patch_limit` (``mu_limit`` = the
    unconstrained Neyman limit, ``mu_pcl_threshold`` = the -1 sigma sensitivity, ``mu_pcl`` the larger of the two:
    the PCL at :data:`RELEASE_PCL_POWER`, for comparison), with every limit solved
    exactly (:func:`dmpreserve.stats.asymptotic.asymptotic_limits`) instead of interpolated on a grid.
    With ``toys`` (mode ``toys``): the Neyman threshold from fresh toys of this mass at every mu the root
    finder evaluates and the sensitivity band from ``toys.toys_background`` background-only toys
    (:func:`dmpreserve.stats.limits.limit_for_patch`; stream keyed by ``mass_index``; ``progress``: log the toys'
    stages, which take minutes).  With ``grids``
    (:func:`dmpreserve.reinterpret.xenonnt.release_grids`) the yield morphing is the release's own bilinear one.

    Raises:
        InvalidWorkspace: a limit beyond the POI bounds.
    """
    if toys is not None:
        tagged = {**patch, "metadata": {**patch["metadata"], "reference_cross_section_cm2": float(reference)}}
        t = limit_for_patch(workspace, tagged, cl=cl, toys=toys, mass_index=mass_index, grids=grids, progress=progress)
        return dataclasses.replace(
            t,
            mu_limit=t.mu_unconstrained,
            mu_pcl=max(t.mu_unconstrained, t.mu_expected[1]),
            mu_pcl_threshold=t.mu_expected[1],
        )
    a = asymptotic_limits(build_model(workspace, patch, grids=grids), cl=cl)
    return MassLimit(
        mass_gev=float(patch["metadata"]["values"][0]),
        reference_cross_section_cm2=float(reference),
        mu_limit=a.neyman,
        mu_expected=a.neyman_expected,
        mu_unconstrained=a.neyman,
        mu_pcl=max(a.neyman, a.neyman_expected[1]),
        mu_cls=a.cls,
        mu_cls_expected=a.cls_expected,
        mu_pcl_threshold=a.neyman_expected[1],
        p0=a.p0,
        z0=a.z0,
        neyman_threshold=a.threshold,
        mu_hat=a.mu_hat,
    )


def warn_outside_range(kit: Kit, masses_gev, energies_kev: np.ndarray) -> None:
    """Log a warning for masses above the release's own (its templates cover only ``energies_kev``: a heavier
    WIMP's recoils above the last template are not counted, which is conservative)."""
    top = max(float(m) for m in kit.manifest["masses_gev"])
    above = [float(m) for m in masses_gev if float(m) > top]
    if above:
        LOG.warning(
            "%s: the release's NR templates cover %g-%g keV and its own masses end at %g GeV; at %s GeV only "
            "recoils below %g keV are counted (a conservative limit)",
            kit.path,
            float(energies_kev[0]),
            float(energies_kev[-1]),
            top,
            ", ".join(f"{m:g}" for m in above),
            float(energies_kev[-1]),
        )


def read_yield_grids(path: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """Read and check ``yield_grids.json`` (:func:`dmpreserve.reinterpret.xenonnt.grid_document`).

    Checks: the two parameters, an increasing axis, every run of ``kit.json`` with ``rg``/``b8`` of shape
    (n, n, bins) and ``mono`` of shape (energies, n, n, bins), all finite and >= 0.

    Raises:
        InvalidData: naming the file and the JSON field.
    """
    doc = read_json(path, what="yield grids")
    try:
        axis = np.asarray(doc["axis"], float)
        if tuple(doc["parameters"]) != YIELDS or axis.ndim != 1 or not np.all(np.diff(axis) > 0):
            raise InvalidData("parameters must be [t_ly, t_qy] on an increasing axis", path=path, field="axis")
        runs = {r["name"]: r for r in doc["runs"]}
        n_e = len(doc["energies_kev"])
    except (KeyError, TypeError, ValueError):
        raise InvalidData("not a yield-grid document", path=path, field="runs") from None
    for i, run in enumerate(manifest["runs"]):
        if run["name"] not in runs:
            raise InvalidData(f"run {run['name']!r} of kit.json missing", path=path, field="runs")
        n = axis.size
        for key, shape in (
            ("rg", (n, n, run["n_bins"])),
            ("b8", (n, n, run["n_bins"])),
            ("mono", (n_e, n, n, run["n_bins"])),
        ):
            try:
                values = np.asarray(runs[run["name"]][key], float)
            except (KeyError, TypeError, ValueError):
                values = np.zeros(0)
            if values.shape != shape or not np.all(np.isfinite(values)) or np.any(values < 0):
                raise InvalidData(f"must be finite, >= 0 and of shape {shape}", path=path, field=f"runs[{i}].{key}")
    return doc


def is_release_kit(kit: Kit) -> bool:
    """True for a kit imported from a template release."""
    return kit.manifest.get("kind") == KIND


def published_si_reference(kit: Kit) -> tuple[tuple[str, tuple[float, ...], tuple[float, ...]], ...]:
    """The release's published SI limit (``published_limits.csv``, column ``upper_limit``) as a plot reference
    ``(label, masses [GeV], limits [cm^2])``; none where the kit has no copy of it.

    Raises:
        InvalidData: a damaged copy (naming the file and column).
    """
    if "published_limits.csv" not in kit.manifest["files"]:
        return ()
    curve = read_curve(kit.file("published_limits.csv"), column="upper_limit")
    label = "XENONnT 2026 published (SI, arXiv:2604.06002)"
    return ((label, tuple(float(m) for m in curve.mass_gev), tuple(float(v) for v in curve.limit)),)


def reinterpret_release(
    kit: Kit,
    *,
    model: SignalModel | None = None,
    spectra: UserSpectra | None = None,
    reference_cross_section_cm2: float = 1e-45,
    masses_gev: tuple[float, ...] | None = None,
    source: dict[str, Any],
    progress: bool = True,
    toys: bool = False,
    yield_morphing: str = "release",
) -> Reinterpretation:
    """Limits of a built-in NR model or of user spectra on an imported template-release kit.

    ``toys``: Neyman thresholds and sensitivity bands from toys (:data:`RELEASE_TOYS`; about 3.5-6 minutes
    per mass on one core) instead of asymptotics.  ``yield_morphing``: ``"release"`` (the release's bilinear
    interpolation of the (t_ly, t_qy) grid, its own likelihood) or ``"pyhf"`` (the workspace's normsys +
    histosys, the serialized pyhf likelihood; docs/reinterpretation.md compares them).

    Raises:
        InvalidSpectrum: an ER model, or a spectrum with no signal in 0.5-5 keV.
        InvalidData: a malformed ``mono_templates.json``, or a kit of format 2 (no ``yield_grids.json``)
            with ``yield_morphing="release"``.
    """
    if yield_morphing not in YIELD_MORPHINGS:
        raise ValueError(f"yield_morphing must be one of {YIELD_MORPHINGS}, got {yield_morphing!r}")
    grid_doc = None
    if yield_morphing == "release":
        if kit.manifest.get("format_version", 2) < KIT_FORMAT:
            raise InvalidData(
                "kit of format 2 has no yield_grids.json: import the release again, or use --yield-morphing pyhf",
                path=kit.file("kit.json"),
                field="format_version",
            )
        grid_doc = read_yield_grids(kit.file("yield_grids.json"), kit.manifest)
    mono = read_json(kit.file("mono_templates.json"), what="mono-energetic templates")
    try:
        energies = np.asarray(mono["energies_kev"], float)
    except (KeyError, TypeError, ValueError):
        raise InvalidData("missing energies", path=kit.file("mono_templates.json"), field="energies_kev") from None
    sig_eff = workspace_efficiency_width(kit.workspace)
    if model is not None:
        halo = model.halo or StandardHalo(**kit.manifest["halo"])
        masses = masses_gev or model.masses_gev or tuple(kit.manifest["masses_gev"])
        items = [(m, nr_model_weights(model, m, halo, energies), 1e-45) for m in masses]
        label, unit, halo_doc = model.model, model.strength_unit, halo.as_dict()
    else:
        items = [
            (m, mono_weights(spectra.rate(i), energies), reference_cross_section_cm2)
            for i, m in enumerate(spectra.masses_gev)
        ]
        label, unit, halo_doc = "spectrum", "cm^2 (user spectrum)", None
    warn_outside_range(kit, [m for m, _, _ in items], energies)
    ps, refs, events = make_patchset(mono, items, label=label, signal_efficiency=sig_eff)
    settings = RELEASE_TOYS if toys else None
    stream = toy_stream_index(kit)  # a kit mass keeps its own toys whichever masses are asked for
    limits = [
        patch_limit(
            kit.workspace,
            patch,
            reference=ref,
            cl=float(kit.manifest["cl"]),
            toys=settings,
            mass_index=stream(i, mass),
            grids=None if grid_doc is None else release_grids(grid_doc, patch, weights),
            progress=progress,
        )
        for i, (patch, ref, (mass, weights, _)) in enumerate(
            tqdm(
                list(zip(ps["patches"], refs, items)),
                disable=not progress,
                desc="limits",
                unit="mass",
            )
        )
    ]
    n_bins = sum(r["n_bins"] for r in kit.manifest["runs"])
    signal = SignalTemplates(
        masses_gev=tuple(float(m) for m, _, _ in items),
        reference_cross_section_cm2=tuple(refs),
        expected_events=tuple(events),
        templates=np.zeros((len(items), n_bins)),
        exposure_t_yr=float(sum(r["livetime_t_yr"] for r in kit.manifest["runs"])),
        model_name=label,
        model=f"{label} ({unit}), XENONnT 2026 template release",
        halo=halo_doc,
        units={"expected_events": "events", "reference_cross_section_cm2": unit},
    )
    return Reinterpretation(
        signal,
        ps,
        tuple(limits),
        unit,
        source,
        method_text(toys=toys, yield_morphing=yield_morphing),
        statistics=statistics_record(settings, pcl_power=RELEASE_PCL_POWER)
        | {"yield_morphing": yield_morphing, "signal_efficiency": sig_eff},
        headline="unconstrained",
        references=published_si_reference(kit) if model is not None and model.model == "si" else (),
        analysis=f"XENONnT 2026 template release ({', '.join(r['name'].upper() for r in kit.manifest['runs'])})",
    )
