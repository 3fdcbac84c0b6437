"""Each experiment's signal of one model, with the project's own per-kit code (:mod:`.combine`).

* pipeline kits: :func:`dmpreserve.reinterpret.engine.model_signal` / ``spectrum_signal`` and the pipeline's
  signal modifiers (:func:`dmpreserve.stats.workspace.signal_modifiers`: ``mu``, ``signal_efficiency``);
* template-release kits: :func:`dmpreserve.reinterpret.release_kit.nr_model_weights` /
  :func:`~dmpreserve.reinterpret.release_kit.make_patchset` (the release's yield histosys on the signal);
* the XENON1T binwise release: the migration matrix (:meth:`BinwiseLikelihood.fold`) into the effective
  Poisson channel (:mod:`.combine_x1t`).

Each result is per mass a list of (channel index, ``signal`` sample) at the experiment's own reference
strength (:data:`Samples`), or None where the experiment expects no signal.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm import tqdm

from dmpreserve.errors import InvalidSpectrum
from dmpreserve.files import read_json
from dmpreserve.physics.halo import StandardHalo
from dmpreserve.physics.signal_models import SignalModel, UserSpectra
from dmpreserve.reinterpret.combine_halo import HaloUncertainties
from dmpreserve.reinterpret.engine import model_signal, spectrum_signal
from dmpreserve.reinterpret.release_kit import make_patchset, nr_model_weights, warn_outside_range
from dmpreserve.reinterpret.xenonnt import mono_weights, workspace_efficiency_width
from dmpreserve.signals import scaled_template
from dmpreserve.stats.workspace import POI, signal_modifiers

if TYPE_CHECKING:
    from dmpreserve.reinterpret.combine import Experiment

SIGNAL = "signal"
#: Expected events at the reference strength of a binwise experiment's signal (as the pipeline's kits).
TARGET_EVENTS = 10.0


@dataclasses.dataclass(frozen=True)
class SignalSource:
    """The tested signal: a built-in model (at ``masses_gev``) or user spectra at ``reference_cross_section_cm2``."""

    masses_gev: tuple[float, ...]
    model: SignalModel | None = None
    spectra: UserSpectra | None = None
    reference_cross_section_cm2: float = 1e-45

    @property
    def label(self) -> str:
        """Patch-name label (the model's name, or ``spectrum``)."""
        return self.model.model if self.model is not None else "spectrum"

    @property
    def strength_unit(self) -> str:
        """Unit of the limits."""
        return self.model.strength_unit if self.model is not None else "cm^2 (user spectrum)"


#: One experiment's signal at one mass: [(channel index, sample)], reference strength of the samples.
Samples = tuple[list[tuple[int, dict[str, Any]]], float]


def _refuse(exp: Experiment, what: str) -> InvalidSpectrum:
    return InvalidSpectrum(f"{exp.path} ({exp.kind}) cannot test {what}", path=exp.path, field="model")


def _pipeline_signals(exp: Experiment, src: SignalSource, halo: StandardHalo) -> list[Samples | None]:
    kit = exp.kit
    if src.model is not None:
        model = dataclasses.replace(src.model, halo=halo)

        def one(masses):
            return model_signal(kit, model, masses_gev=masses)

        try:
            docs = [one(src.masses_gev)]
        except (InvalidSpectrum, ValueError, ZeroDivisionError, OverflowError):  # a mass without signal: one by one
            docs = []
            for m in src.masses_gev:
                try:
                    docs.append(one((m,)))
                except InvalidSpectrum as exc:
                    if "outside the kit's ER lines" in exc.message:
                        raise _refuse(exp, f"this ER line ({exc.message})") from None
                    docs.append(None)
                except (ValueError, ZeroDivisionError, OverflowError):
                    docs.append(None)
    else:
        docs = [spectrum_signal(kit, src.spectra, reference_cross_section_cm2=src.reference_cross_section_cm2)]
    out: list[Samples | None] = []
    for doc in docs:
        if doc is None:
            out.append(None)
            continue
        for i, tmpl in enumerate(doc.templates):
            total = float(np.sum(tmpl))
            if not (np.isfinite(total) and total > 0):
                out.append(None)
                continue
            sample = {"name": SIGNAL, "data": np.asarray(tmpl, float).tolist(), "modifiers": signal_modifiers(doc, i)}
            out.append(([(0, sample)], float(doc.reference_cross_section_cm2[i])))
    return out


def _release_signals(exp: Experiment, src: SignalSource, halo: StandardHalo) -> list[Samples | None]:
    kit = exp.kit
    mono = read_json(kit.file("mono_templates.json"), what="mono-energetic templates")
    energies = np.asarray(mono["energies_kev"], float)
    sig_eff = workspace_efficiency_width(kit.workspace)
    out: list[Samples | None] = []
    for i, m in enumerate(src.masses_gev):
        if src.model is not None:
            if src.model.is_er:
                raise _refuse(exp, "an ER line (NR templates only)")
            item = (m, nr_model_weights(src.model, m, halo, energies), 1e-45)
        else:
            item = (m, mono_weights(src.spectra.rate(i), energies), src.reference_cross_section_cm2)
        try:
            ps, refs, _ = make_patchset(mono, [item], label=src.label, signal_efficiency=sig_eff)
        except InvalidSpectrum:
            out.append(None)
            continue
        ops = [(int(op["path"].split("/")[2]), op["value"]) for op in ps["patches"][0]["patch"]]
        out.append((ops, float(refs[0])))
    return out


def _binwise_signals(exp: Experiment, src: SignalSource, halo: StandardHalo) -> list[Samples | None]:
    out: list[Samples | None] = []
    for i, m in enumerate(src.masses_gev):
        if src.model is not None:
            if src.model.is_er:
                raise _refuse(exp, "an ER line (the binwise likelihood is NR only)")
            rate, bp, strength = (
                src.model.rate(mass_gev=m, strength=1e-45, halo=halo),
                src.model.breakpoints_kev(mass_gev=m, halo=halo),
                1e-45,
            )
        else:
            rate, bp, strength = src.spectra.rate(i), src.spectra.breakpoints_kev(i), src.reference_cross_section_cm2
        data = exp.effective.signal(exp.binwise.fold(rate, breakpoints_kev=bp))
        total = float(np.sum(data))
        if not (np.isfinite(total) and total > 0):
            out.append(None)
            continue
        tmpl, ref = scaled_template(data, strength=strength, target_events=TARGET_EVENTS)
        sample = {
            "name": SIGNAL,
            "data": tmpl.tolist(),
            "modifiers": [{"name": POI, "type": "normfactor", "data": None}],
        }
        out.append(([(0, sample)], float(ref)))
    return out


def experiment_signals(exp: Experiment, src: SignalSource, halo: StandardHalo) -> list[Samples | None]:
    """The experiment's signal samples at every mass of ``src`` (None where it expects no signal).

    Raises:
        InvalidSpectrum: a model the experiment cannot test (an ER line on a release or binwise result).
    """
    build = {"pipeline": _pipeline_signals, "template_release": _release_signals, "binwise": _binwise_signals}
    if src.model is not None and src.model.halo is not None:
        # a model's own halo would override ``halo`` in SignalModel.rate: the common (or shifted) halo must win
        src = dataclasses.replace(src, model=dataclasses.replace(src.model, halo=halo))
    return build[exp.kind](exp, src, halo)


@dataclasses.dataclass(frozen=True)
class SignalTable:
    """Every experiment's signal at every mass, nominal and at the shifted halos.

    Attributes:
        nominal: experiment name -> per mass Samples or None.
        shifted: experiment name -> [(modifier, per mass +1 sigma Samples, per mass -1 sigma Samples)].
        rho0: (hi, lo) factors of ``halo_rho0`` or None.
        halo: The common halo.
    """

    nominal: dict[str, list[Samples | None]]
    shifted: dict[str, list[tuple[str, list[Samples | None], list[Samples | None]]]]
    rho0: tuple[float, float] | None
    halo: StandardHalo

    def response(self, exp: str, index: int) -> dict[str, float]:
        """Total expected signal per unit strength (events per cm^2) at the nominal and shifted halos."""
        out = {"nominal": _total(self.nominal[exp][index])}
        for name, up, down in self.shifted.get(exp, []):
            out[f"{name}_hi"], out[f"{name}_lo"] = _total(up[index]), _total(down[index])
        return out


def _per_strength(s: Samples | None, n: int) -> list[np.ndarray]:
    if s is None:
        return [None] * n
    return [np.asarray(sample["data"], float) / s[1] for _, sample in s[0]]


def _total(s: Samples | None) -> float:
    return 0.0 if s is None else float(sum(np.sum(v) for v in _per_strength(s, 0)))


def signal_table(
    experiments: list[Experiment],
    src: SignalSource,
    halo: StandardHalo,
    halo_unc: HaloUncertainties | None,
    *,
    progress: bool = True,
) -> SignalTable:
    """Build every experiment's signal (nominal, and at +-1 sigma of v0 and v_esc when ``halo_unc`` is given)."""
    nominal, shifted = {}, {}
    for exp in experiments:
        if exp.kind == "template_release" and src.model is not None:
            mono = read_json(exp.kit.file("mono_templates.json"), what="mono-energetic templates")
            warn_outside_range(exp.kit, src.masses_gev, np.asarray(mono["energies_kev"], float))
    variants = halo_unc.variations(halo) if halo_unc is not None else []
    jobs = [(e, None, halo) for e in experiments] + [(e, (n, up, dn)) for e in experiments for n, up, dn in variants]
    for job in tqdm(jobs, desc="signals", unit="halo", disable=not progress):
        exp = job[0]
        if job[1] is None:
            nominal[exp.name] = experiment_signals(exp, src, halo)
        else:
            name, up, dn = job[1]
            shifted.setdefault(exp.name, []).append(
                (name, experiment_signals(exp, src, up), experiment_signals(exp, src, dn))
            )
    return SignalTable(nominal, shifted, halo_unc.rho0_factors(halo) if halo_unc is not None else None, halo)
