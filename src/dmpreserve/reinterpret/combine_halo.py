"""Correlated astrophysics in a combination: halo nuisance parameters shared by every experiment.

Three nuisance parameters, each with a unit Gaussian constraint, act on the signal sample of every channel of
every experiment (the modifier names are the same everywhere, so pyhf and :mod:`dmpreserve.stats` give them
one parameter each):

* ``halo_rho0`` -- the local density: every signal is proportional to rho0, a ``normsys`` with
  hi = 1 + sigma_hi / rho0, lo = 1 - sigma_lo / rho0 (code4: exact at alpha = +-1, smooth in between);
* ``halo_v0`` and ``halo_vesc`` -- the most probable speed and the escape speed change the recoil spectrum:
  each experiment's signal is *recomputed* with the experiment's own response at the shifted halo (a
  tabulated response per experiment, channel and mass), and enters as a ``normsys`` (hi/lo = total signal at
  +-1 sigma over the nominal) plus a shape-only ``histosys`` (the shifted template rescaled to the nominal
  total).  At alpha = +-1 the expected signal is exactly the recomputed one (normsys code4 and histosys
  code4p reproduce their anchors); between and beyond, pyhf's interpolation.  When v0 moves, the Earth's
  speed moves with it (v_E = |v_LSR + v_pec|, Baxter et al. 2021, section 2), by the same amount.

Default uncertainties (:data:`DEFAULT_UNCERTAINTIES`, schema ``schemas/halo_uncertainties.schema.json``):

* rho0 = 0.3 GeV/cm^3 (Baxter et al., EPJC 81 (2021) 907, section 2, recommend 0.3 as a *convention*, not a
  measurement); +-0.1 GeV/cm^3 is this project's choice spanning the usual 0.2-0.4 range of local
  determinations (Read, J. Phys. G 41 (2014) 063101, review) -- presumed, replace with your own;
* v0 = 238 km/s (Baxter et al. 2021, section 2); +-1.5 km/s as the brief of this feature states (presumed:
  not re-checked against the paper);
* v_esc = 544 km/s (Smith et al., MNRAS 379 (2007) 755, RAVE, the value Baxter et al. adopt), whose 90%
  interval 498-608 km/s (+64 / -46) becomes a Gaussian one sigma of +38.9 / -28.0 km/s (divided by 1.645).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from dmpreserve.errors import InvalidData
from dmpreserve.files import load_yaml, read_text
from dmpreserve.physics.halo import StandardHalo
from dmpreserve.schema import validate

#: Modifier name of each halo parameter (StandardHalo field -> name).
MODIFIERS = {"rho0_gev_cm3": "halo_rho0", "v0_km_s": "halo_v0", "v_esc_km_s": "halo_vesc"}
#: One-sigma (hi, lo) shifts used without ``--halo-uncertainties`` (see the module docstring for the sources).
DEFAULT_UNCERTAINTIES = {
    "rho0_gev_cm3": {"sigma_hi": 0.1, "sigma_lo": 0.1},
    "v0_km_s": {"sigma_hi": 1.5, "sigma_lo": 1.5},
    "v_esc_km_s": {"sigma_hi": 64.0 / 1.6448536269514722, "sigma_lo": 46.0 / 1.6448536269514722},
    "sources": {
        "rho0_gev_cm3": "0.3 GeV/cm^3: Baxter et al., EPJC 81 (2021) 907, sec. 2 (convention); +-0.1: presumed "
        "(range of local determinations, Read, J. Phys. G 41 (2014) 063101)",
        "v0_km_s": "238 km/s: Baxter et al. 2021, sec. 2; +-1.5 km/s: presumed",
        "v_esc_km_s": "544 km/s, 90% interval 498-608 km/s: Smith et al., MNRAS 379 (2007) 755 (as Baxter et al. "
        "2021); one sigma = the 90% half-widths / 1.645",
    },
}


@dataclasses.dataclass(frozen=True)
class HaloUncertainties:
    """One-sigma shifts of the halo parameters (field of :class:`StandardHalo` -> (sigma_hi, sigma_lo))."""

    shifts: tuple[tuple[str, float, float], ...]
    sources: tuple[tuple[str, str], ...] = ()
    path: str | None = None  # the --halo-uncertainties file (error messages); None for the defaults

    @classmethod
    def from_doc(cls, doc: Any, *, path: str | None = None) -> HaloUncertainties:
        """Validate a document (schema ``halo_uncertainties``) and build the shifts.

        Raises:
            InvalidData: schema violation, naming ``path`` and the field.
        """
        validate(doc, "halo_uncertainties", path=path)
        shifts = tuple(
            (name, float(doc[name]["sigma_hi"]), float(doc[name]["sigma_lo"])) for name in MODIFIERS if name in doc
        )
        return cls(shifts, tuple(sorted((doc.get("sources") or {}).items())), path)

    def to_json(self) -> dict[str, Any]:
        """The document (as ``--halo-uncertainties`` takes it), with the modifier names."""
        out: dict[str, Any] = {
            name: {"sigma_hi": hi, "sigma_lo": lo, "modifier": MODIFIERS[name]} for name, hi, lo in self.shifts
        }
        out["sources"] = dict(self.sources)
        return out

    def variations(self, halo: StandardHalo) -> list[tuple[str, StandardHalo, StandardHalo]]:
        """(modifier, halo at +1 sigma, halo at -1 sigma) of every shape-changing parameter (v0, v_esc).

        Raises:
            InvalidData: a shift that makes the halo invalid (e.g. v_E >= v_esc).
        """
        out = []
        for name, hi, lo in self.shifts:
            if name == "rho0_gev_cm3":
                continue
            try:
                out.append((MODIFIERS[name], _shift(halo, name, hi), _shift(halo, name, -lo)))
            except Exception as exc:  # InvalidConfig of StandardHalo
                raise InvalidData(
                    f"the halo shifted by one sigma is invalid: {exc}", path=self.path, field=name
                ) from None
        return out

    def rho0_factors(self, halo: StandardHalo) -> tuple[float, float] | None:
        """(hi, lo) factors of the ``halo_rho0`` normsys, or None without a rho0 uncertainty.

        Raises:
            InvalidData: sigma_lo >= rho0 (the lower factor must stay positive).
        """
        for name, hi, lo in self.shifts:
            if name == "rho0_gev_cm3":
                if lo >= halo.rho0_gev_cm3:
                    raise InvalidData(
                        f"sigma_lo {lo:g} must be below rho0 = {halo.rho0_gev_cm3:g} GeV/cm^3 (the density stays > 0)",
                        path=self.path,
                        field="rho0_gev_cm3.sigma_lo",
                    )
                return 1.0 + hi / halo.rho0_gev_cm3, 1.0 - lo / halo.rho0_gev_cm3
        return None


def _shift(halo: StandardHalo, name: str, delta: float) -> StandardHalo:
    values = halo.as_dict()
    values[name] += delta
    if name == "v0_km_s":  # v_E = |v_LSR + v_pec|: the Earth's speed moves with v_LSR = v0
        values["v_earth_km_s"] += delta
    return StandardHalo(**values)


def default_uncertainties() -> HaloUncertainties:
    """The documented defaults (:data:`DEFAULT_UNCERTAINTIES`)."""
    return HaloUncertainties.from_doc(DEFAULT_UNCERTAINTIES)


def load_uncertainties(path: str | os.PathLike) -> HaloUncertainties:
    """Read ``--halo-uncertainties`` (YAML or JSON).

    Raises:
        InvalidData: unreadable file or schema violation, naming the file and field.
    """
    doc = load_yaml(read_text(path, what="halo uncertainties"), path=path, what="halo uncertainties")
    return HaloUncertainties.from_doc(doc, path=str(path))
