"""Signal models for reinterpretation: built-in models (YAML) and user spectra (CSV).

A model file (``schemas/signal_model.schema.json``) names one built-in model::

    model: sd_neutron            # si | sd_neutron | sd_proton | light_mediator | inelastic | er_line
    halo: {rho0_gev_cm3: 0.3, v0_km_s: 238.0, v_esc_km_s: 544.0, v_earth_km_s: 250.5}   # optional
    masses_gev: {min: 6, max: 10000, count: 50}   # or a list; optional (default: the kit's grid)
    mediator_mass_mev: 10.0      # light_mediator only (optional reference_momentum_mev, default 0)
    delta_kev: 50.0              # inelastic only
    reference_rate_per_t_yr: 1.0 # er_line only

Formulas and references: :mod:`dmpreserve.physics.wimp` (SI), :mod:`dmpreserve.physics.nr_models`
(SD, light mediator, inelastic) and :func:`er_line_rate` below.  Every model's spectrum is a
function of the recoil energy for one mass at one reference strength: the cross section [cm^2]
for the NR models, the line rate [events/(t yr)] for ``er_line``.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.interpolate import PchipInterpolator

from dmpreserve.errors import InvalidSpectrum
from dmpreserve.files import load_yaml, read_csv
from dmpreserve.physics.grids import log_mass_grid
from dmpreserve.physics.halo import StandardHalo
from dmpreserve.physics.nr_models import Interaction, kinematic_breakpoints_kev, rate_nr
from dmpreserve.schema import validate

MODELS = ("si", "sd_neutron", "sd_proton", "light_mediator", "inelastic", "er_line")
SPECTRUM_COLUMNS = ("mass_gev", "energy_kev", "dr_de")
MAX_MODEL_BYTES = 1 << 20
MAX_SPECTRUM_ROWS = 2_000_000
Rate = Callable[[np.ndarray], np.ndarray]


@dataclasses.dataclass(frozen=True, kw_only=True)
class SignalModel:
    """A validated built-in signal model.

    Attributes:
        model: The model name (one of :data:`MODELS`).
        halo: Halo (None: use the kit's/configuration's halo).
        masses_gev: Mass grid [GeV/c^2] (None: the kit's grid); for ``er_line`` the boson mass, whose
            absorption gives a line at E = m c^2.
        interaction: The NR interaction (unused for ``er_line``).
        reference_rate_per_t_yr: Line rate at the reference strength (``er_line``) [events/(t yr)].
        description: Free text.
    """

    model: str
    halo: StandardHalo | None = None
    masses_gev: tuple[float, ...] | None = None
    interaction: Interaction = Interaction()
    reference_rate_per_t_yr: float = 1.0
    description: str = ""

    @property
    def is_er(self) -> bool:
        """True for the electronic-recoil line model (uses the ER response)."""
        return self.model == "er_line"

    @property
    def strength_unit(self) -> str:
        """Unit of the reported limit (the ``limit_cm2`` column)."""
        if self.is_er:
            return "events/(t yr) in the line"
        return {"sd_neutron": "cm^2 (SD WIMP-neutron)", "sd_proton": "cm^2 (SD WIMP-proton)"}.get(
            self.model, "cm^2 (SI WIMP-nucleon)"
        )

    def rate(self, *, mass_gev: float, strength: float, halo: StandardHalo) -> Rate:
        """dR/dE [events/(t yr keV)] as a function of energy [keV] for one mass at ``strength``."""
        if self.is_er:
            raise InvalidSpectrum("er_line has no recoil spectrum; use line_energy_kev", field="model")
        h = self.halo or halo
        inter = self.interaction
        return lambda e: rate_nr(e, mass_gev=mass_gev, cross_section_cm2=strength, halo=h, interaction=inter)

    def breakpoints_kev(self, *, mass_gev: float, halo: StandardHalo) -> np.ndarray:
        """Recoil energies [keV] where this model's dR/dE has kinks (for quadrature over energy bins)."""
        if self.is_er:
            return np.zeros(0)
        return kinematic_breakpoints_kev(mass_gev, self.halo or halo, delta_kev=self.interaction.delta_kev)

    def line_energy_kev(self, mass_gev: float) -> float:
        """Energy of the absorption line of a boson of mass ``mass_gev`` [keV] (E = m c^2)."""
        return mass_gev * 1e6

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable description (for limits.json and the HEPData table)."""
        return {
            "model": self.model,
            "halo": None if self.halo is None else self.halo.as_dict(),
            "masses_gev": None if self.masses_gev is None else list(self.masses_gev),
            "interaction": dataclasses.asdict(self.interaction),
            "reference_rate_per_t_yr": self.reference_rate_per_t_yr,
            "description": self.description,
        }


def _mass_grid(spec: Any) -> tuple[float, ...] | None:
    if spec is None:
        return None
    if isinstance(spec, dict):
        return log_mass_grid(spec)
    return tuple(float(x) for x in spec)


def model_from_dict(doc: Any, *, path: str | None = None) -> SignalModel:
    """Validate a model document (schema and cross-checks) and build the :class:`SignalModel`."""
    validate(doc, "signal_model", path=path, error=InvalidSpectrum)
    name = doc["model"]
    need = {"light_mediator": "mediator_mass_mev", "inelastic": "delta_kev"}.get(name)
    if need and need not in doc:
        raise InvalidSpectrum(f"model {name} needs {need}", path=path, field=need)
    m = doc.get("masses_gev")
    if isinstance(m, dict) and m["max"] < m["min"]:
        raise InvalidSpectrum("max must be >= min", path=path, field="masses_gev.max")
    halo = None
    if doc.get("halo") is not None:
        try:
            halo = StandardHalo(**doc["halo"])
        except Exception as exc:  # InvalidConfig with the field name
            raise InvalidSpectrum(str(exc), path=path, field="halo") from None
    coupling = {"sd_neutron": "sd_n", "sd_proton": "sd_p"}.get(name, "si")
    inter = Interaction(
        coupling=coupling,
        mediator_mass_mev=doc.get("mediator_mass_mev"),
        reference_momentum_mev=float(doc.get("reference_momentum_mev", 0.0)),
        delta_kev=float(doc.get("delta_kev", 0.0)),
    )
    return SignalModel(
        model=name,
        halo=halo,
        masses_gev=_mass_grid(m),
        interaction=inter,
        reference_rate_per_t_yr=float(doc.get("reference_rate_per_t_yr", 1.0)),
        description=str(doc.get("description", "")),
    )


def load_model(path: str | os.PathLike) -> SignalModel:
    """Read a model YAML file and validate it (``dmpreserve.files.load_yaml``: safe loader, no aliases; <= 1 MiB)."""
    p = str(path)
    try:
        with open(p, "rb") as fh:
            raw = fh.read(MAX_MODEL_BYTES + 1)
    except OSError as exc:
        raise InvalidSpectrum(f"cannot read signal model: {exc.strerror}", path=p) from None
    if len(raw) > MAX_MODEL_BYTES:
        raise InvalidSpectrum("signal model file is larger than 1 MiB", path=p)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidSpectrum(f"not valid YAML: not UTF-8 text ({exc.reason} at byte {exc.start})", path=p) from None
    doc = load_yaml(text, path=p, what="signal model", error=InvalidSpectrum)  # safe, no aliases, bounded depth
    return model_from_dict(doc, path=p)


#: Interpolation rule of tabulated user spectra (limits.json records it).
INTERPOLATION_RULE = (
    "between table nodes where dR/dE > 0 at both ends: monotone cubic (PCHIP) interpolation of ln(dR/dE) "
    "in energy, exact for exponentials, without overshoot; in an interval with dR/dE = 0 at one "
    "end: linear; zero outside the table; integrated over each table interval separately (Gauss-Legendre "
    "between nodes)"
)


def _log_interpolant(e: np.ndarray, r: np.ndarray, *, cubic: bool = True) -> Rate:
    """The interpolant of :data:`INTERPOLATION_RULE` of one tabulated spectrum (nodes ``e``, values ``r``).

    ``cubic=False``: ln(dR/dE) linear instead of PCHIP between positive nodes (the first-order rule).
    """
    pos = r > 0
    idx = np.flatnonzero(pos)
    runs = [run for run in np.split(idx, np.flatnonzero(np.diff(idx) > 1) + 1) if len(run) >= 2]
    pieces = []
    for run in runs:  # maximal runs of consecutive positive nodes: PCHIP of ln r on each
        ee, lr = e[run], np.log(r[run])
        fn = PchipInterpolator(ee, lr, extrapolate=False) if cubic and len(run) > 2 else None
        pieces.append((ee[0], ee[-1], ee, lr, fn))

    def rate(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        out = np.interp(x, e, r, left=0.0, right=0.0)  # linear: right in intervals with a zero end
        for lo, hi, ee, lr, fn in pieces:
            sel = (x >= lo) & (x <= hi)
            if np.any(sel):
                out[sel] = np.exp(np.interp(x[sel], ee, lr) if fn is None else fn(x[sel]))
        return out

    return rate


@dataclasses.dataclass(frozen=True)
class UserSpectra:
    """Tabulated user spectra: per mass, energies [keV] and dR/dE [events/(t yr keV)] at the reference σ.

    The spectrum between table nodes follows :data:`INTERPOLATION_RULE` (:meth:`rate`); the nodes are
    the interpolant's kinks, to be passed as quadrature breakpoints (:meth:`breakpoints_kev`).
    """

    masses_gev: tuple[float, ...]
    energies_kev: tuple[np.ndarray, ...]
    dr_de: tuple[np.ndarray, ...]
    path: str | None = None

    def rate(self, index: int, *, scale: float = 1.0, rule: str = "log_pchip") -> Rate:
        """The interpolated ``index``-th spectrum (zero outside its table), times ``scale``.

        Args:
            index: Which mass.
            scale: Factor applied to dR/dE.
            rule: ``log_pchip`` (:data:`INTERPOLATION_RULE`, the default), or the cruder rules used to
                estimate how well the grid resolves the spectrum: ``log_linear`` (ln dR/dE linear between
                positive nodes) and ``linear`` (dR/dE linear everywhere).
        """
        e, r = self.energies_kev[index], self.dr_de[index]
        if rule in ("log_pchip", "log_linear"):
            fn = _log_interpolant(e, r, cubic=rule == "log_pchip")
        elif rule == "linear":
            return lambda x: scale * np.interp(x, e, r, left=0.0, right=0.0)
        else:
            raise ValueError(f"unknown interpolation rule {rule!r}")
        return lambda x: scale * fn(x)

    def breakpoints_kev(self, index: int) -> np.ndarray:
        """The table energies of the ``index``-th spectrum [keV] (where the interpolant may have kinks)."""
        return self.energies_kev[index]


def read_spectrum_csv(path: str | os.PathLike) -> UserSpectra:
    """Read and validate a user spectrum CSV (``mass_gev,energy_kev,dr_de``).

    Validated against ``schemas/signal_spectrum.schema.json`` (row by row), then: for every mass the
    energies must be strictly increasing with at least two points and some dR/dE > 0.

    Raises:
        InvalidSpectrum: naming the file and the column or row at fault.
    """
    p = str(path)
    cols = read_csv(p, required=SPECTRUM_COLUMNS, what="signal spectrum")
    n = len(cols["mass_gev"])
    if n > MAX_SPECTRUM_ROWS:
        raise InvalidSpectrum(f"more than {MAX_SPECTRUM_ROWS} rows", path=p)
    arrays = {}
    for c in SPECTRUM_COLUMNS:
        try:
            arrays[c] = np.array([float(v) for v in cols[c]], dtype=float)
        except ValueError:
            raise InvalidSpectrum("non-numeric value", path=p, field=c) from None
    doc = {
        "columns": list(SPECTRUM_COLUMNS),
        "rows": [
            {c: (arrays[c][i].item() if math.isfinite(arrays[c][i]) else str(arrays[c][i])) for c in SPECTRUM_COLUMNS}
            for i in range(n)
        ],
    }
    validate(doc, "signal_spectrum", path=p, error=InvalidSpectrum)
    masses, energies, rates = [], [], []
    for m in sorted(set(arrays["mass_gev"].tolist())):
        sel = arrays["mass_gev"] == m
        e, r = arrays["energy_kev"][sel], arrays["dr_de"][sel]
        if len(e) < 2 or np.any(np.diff(e) <= 0):
            raise InvalidSpectrum(
                f"energies of mass {m:g} GeV must be strictly increasing (at least 2 rows, in file order)",
                path=p,
                field="energy_kev",
            )
        if not np.any(r > 0):
            raise InvalidSpectrum(f"spectrum of mass {m:g} GeV is zero everywhere", path=p, field="dr_de")
        masses.append(float(m))
        energies.append(e)
        rates.append(r)
    return UserSpectra(tuple(masses), tuple(energies), tuple(rates), path=p)
