"""Recoil-energy spectra of background components, from the configuration's ``spectrum`` entry.

A :class:`Spectrum` is either continuous (``rate(E)`` [events/(t yr keV)] on a support, with the
energies where it has kinks or steps) or a set of monoenergetic lines (energy [keV], intensity
[events/(t yr)]).  ``absolute`` says whether those numbers are rates (``normalisation: {spectrum:
true}``) or only a shape (normalised by ``rate_per_t_yr``, ``expected_events`` or a sideband).
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable
from typing import Any

import numpy as np

from dmpreserve.errors import InvalidConfig, InvalidData, InvalidSpectrum
from dmpreserve.files import read_csv
from dmpreserve.physics.double_beta import XE136_Q_KEV, rate_xe136_2vbb
from dmpreserve.physics.neutrinos import rate_cevns_8b
from dmpreserve.physics.neutrons import NEUTRON_WINDOW_KEV, neutron_spectrum_shape

#: Support of the 8B CEvNS recoil spectrum [keV]: the 8B endpoint (16.4 MeV) gives E_r < 4.9 keV on 124Xe.
CEVNS_8B_SUPPORT_KEV = (0.0, 10.0)
#: Gauss-Legendre points per smooth piece of a spectrum (integrals in :func:`integrate`).
POINTS_PER_PIECE = 9


@dataclasses.dataclass(frozen=True)
class Spectrum:
    """A component's energy spectrum.

    Attributes:
        label: One line for the component's description.
        absolute: The values are rates (events/(t yr keV), lines events/(t yr)), not only a shape.
        rate: dR/dE [events/(t yr keV)] of a continuous spectrum (None for lines).
        support_kev: [lo, hi] outside which ``rate`` is zero [keV].
        breakpoints_kev: Energies inside the support where ``rate`` has a kink or step [keV].
        lines: ((energy [keV], intensity [events/(t yr)]), ...) of a line spectrum (empty when continuous).
    """

    label: str
    absolute: bool
    rate: Callable[[np.ndarray], np.ndarray] | None = None
    support_kev: tuple[float, float] = (0.0, 0.0)
    breakpoints_kev: tuple[float, ...] = ()
    lines: tuple[tuple[float, float], ...] = ()

    def integrate(
        self, lo_kev: float, hi_kev: float, weight: Callable[[np.ndarray], np.ndarray] | None = None
    ) -> float:
        """Integral of rate(E) x weight(E) over [lo, hi] clipped to the support [events/(t yr)].

        Gauss-Legendre (:data:`POINTS_PER_PIECE` points) on each piece between breakpoints: exact for the
        piecewise-linear CSV spectra and a flat spectrum times a linear weight.
        """
        if self.rate is None:
            raise InvalidSpectrum("a line spectrum has no continuous part", field="lines")
        a, b = max(lo_kev, self.support_kev[0]), min(hi_kev, self.support_kev[1])
        if not a < b:
            return 0.0
        inner = [x for x in self.breakpoints_kev if a < x < b]
        nodes = np.asarray([a, *inner, b], float)
        x, w = np.polynomial.legendre.leggauss(POINTS_PER_PIECE)
        half = 0.5 * np.diff(nodes)
        e = (0.5 * (nodes[1:] + nodes[:-1]))[:, None] + half[:, None] * x[None, :]
        values = np.asarray(self.rate(e.ravel()), float).reshape(e.shape)
        if weight is not None:
            values = values * np.asarray(weight(e), float)
        return float(((values * w[None, :]).sum(axis=1) * half).sum())

    def total(self) -> float:
        """Integral of the whole spectrum [events/(t yr)] (lines: the sum of the intensities)."""
        if self.rate is None:
            return float(math.fsum(i for _, i in self.lines))
        return self.integrate(*self.support_kev)


def spectrum_from_config(spec: dict[str, Any], *, field: str) -> Spectrum:
    """The :class:`Spectrum` of a schema-valid, checked ``spectrum`` entry (``config.check_backgrounds``).

    Args:
        spec: ``{flat: ...}``, ``{lines: ...}``, ``{csv: {path}}`` or ``{builtin: {name, ...}}``.
        field: Its JSON path in the configuration (for errors).

    Raises:
        InvalidData: a CSV spectrum that is missing or malformed (naming the file and column).
        InvalidConfig: built-in parameters the physics module refuses.
    """
    kind, p = next(iter(spec.items()))
    if kind == "flat":
        lo, hi = float(p["energy_min_kev"]), float(p["energy_max_kev"])
        value = float(p.get("rate_per_t_yr_kev", 1.0))
        return Spectrum(
            label=f"flat {lo:g}-{hi:g} keV" + (f", {value:g} /(t yr keV)" if "rate_per_t_yr_kev" in p else ""),
            absolute="rate_per_t_yr_kev" in p,
            rate=lambda e: np.full(np.shape(e), value),
            support_kev=(lo, hi),
        )
    if kind == "lines":
        lines = tuple((float(e), float(i)) for e, i in zip(p["energies_kev"], p["intensities"]))
        return Spectrum(label="lines at " + ", ".join(f"{e:g}" for e, _ in lines) + " keV", absolute=True, lines=lines)
    if kind == "csv":  # relative to the working directory (where Snakemake runs); errors name the absolute path
        return read_csv_spectrum(os.path.abspath(p["path"]))
    name = p["name"]
    try:
        if name == "cevns_8b":
            flux = float(p.get("flux_per_cm2_s", 5.16e6))
            rate_cevns_8b(np.array([1.0]), flux_cm2_s=flux)  # parameter check
            return Spectrum(
                label=f"8B CEvNS, flux {flux:.4g} /(cm2 s)",
                absolute=True,
                rate=lambda e: rate_cevns_8b(e, flux_cm2_s=flux),
                support_kev=CEVNS_8B_SUPPORT_KEV,
            )
        if name == "radiogenic_neutrons":
            e_fold = float(p.get("e_fold_kev", 20.0))
            neutron_spectrum_shape(np.array([1.0]), e_fold_kev=e_fold)
            return Spectrum(
                label=f"radiogenic neutrons, exp(-E / {e_fold:g} keV)",
                absolute=False,
                rate=lambda e: neutron_spectrum_shape(e, e_fold_kev=e_fold),
                support_kev=(0.0, NEUTRON_WINDOW_KEV),
            )
        kw = {k: float(p[k]) for k in ("half_life_yr", "abundance") if k in p}
        rate_xe136_2vbb(np.array([1.0]), **kw)
        return Spectrum(
            label="136Xe 2vbb" + "".join(f", {k} {v:g}" for k, v in kw.items()),
            absolute=True,
            rate=lambda e: rate_xe136_2vbb(e, **kw),
            support_kev=(0.0, XE136_Q_KEV),
        )
    except InvalidSpectrum as exc:
        raise InvalidConfig(exc.message, field=f"{field}.builtin.{exc.field}") from None


def read_csv_spectrum(path: str | os.PathLike) -> Spectrum:
    """A tabulated spectrum: CSV columns ``energy_kev`` (strictly increasing) and ``rate_per_t_yr_kev`` (>= 0).

    Linear interpolation between the rows, zero outside [first, last energy].

    Raises:
        InvalidData: naming the file and the column: missing file or column, fewer than 2 rows, a value that is
            not a finite number, a negative rate or energies that do not increase.
    """
    cols = read_csv(path, required=("energy_kev", "rate_per_t_yr_kev"), what="spectrum")
    arrays = {}
    for name in ("energy_kev", "rate_per_t_yr_kev"):
        try:
            arr = np.asarray([float(v) for v in cols[name]], float)
        except ValueError as exc:
            raise InvalidData(f"not a number ({exc})", path=path, field=name) from None
        if not np.all(np.isfinite(arr)):
            raise InvalidData("values must be finite (no NaN or inf)", path=path, field=name)
        arrays[name] = arr
    e, r = arrays["energy_kev"], arrays["rate_per_t_yr_kev"]
    if len(e) < 2:
        raise InvalidData("a tabulated spectrum needs at least 2 rows", path=path, field="energy_kev")
    if np.any(np.diff(e) <= 0):
        raise InvalidData("energies must increase strictly", path=path, field="energy_kev")
    if np.any(e < 0):
        raise InvalidData("energies must be >= 0 keV", path=path, field="energy_kev")
    if np.any(r < 0):
        raise InvalidData("rates must be >= 0", path=path, field="rate_per_t_yr_kev")
    return Spectrum(
        label=f"tabulated ({os.path.basename(path)}, {len(e)} points)",
        absolute=True,
        rate=lambda x: np.interp(x, e, r, left=0.0, right=0.0),
        support_kev=(float(e[0]), float(e[-1])),
        breakpoints_kev=tuple(float(x) for x in e[1:-1]),
    )
