"""``signal.json``: the signal model's templates on the analysis binning, one per mass (``signal`` step).

Schema: ``schemas/signal.schema.json``.  Each template is the expected signal per analysis bin
(flattened, ``k = i_cs1 * n_log10cs2 + j_log10cs2``) at the mass's ``reference_cross_section_cm2``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import numpy as np

from dmpreserve.errors import InvalidData
from dmpreserve.files import read_json, write_json
from dmpreserve.schema import validate


@dataclasses.dataclass(frozen=True, kw_only=True)
class SignalTemplates:
    """Contents of ``signal.json``.

    Attributes:
        masses_gev: Dark-matter masses [GeV/c^2], length n_mass.
        reference_cross_section_cm2: Signal strength of each template (unit in ``units``), length n_mass.
        expected_events: Total expected signal of each template [events], length n_mass.
        templates: Expected signal per analysis bin, shape (n_mass, n_bins) [events].
        exposure_t_yr: Exposure [t yr].
        model_name: Signal model (``si``, ``sd_neutron``, ...; names the likelihood patches).
        model: One-line description of the model and conventions.
        halo: Halo parameters (GeV/cm^3, km/s); None for user spectra.
        units: Units of ``expected_events`` and ``reference_cross_section_cm2``.
        efficiency_lo, efficiency_hi: Expected signal with the lower/upper signal-efficiency curve over the
            nominal one, length n_mass (the ``signal_efficiency`` normsys); None without an efficiency band.
    """

    masses_gev: tuple[float, ...]
    reference_cross_section_cm2: tuple[float, ...]
    expected_events: tuple[float, ...]
    templates: np.ndarray
    exposure_t_yr: float
    model_name: str = "si"
    model: str
    halo: Mapping[str, float] | None
    units: Mapping[str, str]
    efficiency_lo: tuple[float, ...] | None = None
    efficiency_hi: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.halo is not None:
            object.__setattr__(self, "halo", MappingProxyType(dict(self.halo)))
        object.__setattr__(self, "units", MappingProxyType(dict(self.units)))

    @property
    def strength_unit(self) -> str:
        """Unit of ``reference_cross_section_cm2`` (cm^2 unless the model says otherwise)."""
        return self.units.get("reference_cross_section_cm2", "cm^2")

    def to_json(self) -> dict[str, Any]:
        """The ``signal.json`` document."""
        doc = {
            "masses_gev": list(self.masses_gev),
            "reference_cross_section_cm2": list(self.reference_cross_section_cm2),
            "expected_events": list(self.expected_events),
            "templates": np.asarray(self.templates).tolist(),
            "exposure_t_yr": self.exposure_t_yr,
            "model_name": self.model_name,
            "halo": None if self.halo is None else dict(self.halo),
            "model": self.model,
            "units": dict(self.units),
        }
        if self.efficiency_lo is not None and self.efficiency_hi is not None:
            doc["efficiency_lo"] = list(self.efficiency_lo)
            doc["efficiency_hi"] = list(self.efficiency_hi)
        return doc

    @classmethod
    def from_json(cls, doc: dict[str, Any], *, path: str | os.PathLike, n_bins: int | None = None) -> SignalTemplates:
        """From a schema-valid document: one entry per mass everywhere, equal template lengths.

        Args:
            doc: The signal document.
            path: The file it came from (named in errors).
            n_bins: Required template length (the analysis bins), if known.

        Raises:
            InvalidData: naming ``path`` and the inconsistent key.
        """
        n = len(doc["masses_gev"])
        if ("efficiency_lo" in doc) != ("efficiency_hi" in doc):
            raise InvalidData("efficiency_lo and efficiency_hi come together", path=path, field="$.efficiency_hi")
        for key in ("reference_cross_section_cm2", "expected_events", "templates", "efficiency_lo", "efficiency_hi"):
            if key in doc and len(doc[key]) != n:
                raise InvalidData(
                    f"has {len(doc[key])} entries, masses_gev has {n}: array length mismatch",
                    path=path,
                    field=f"$.{key}",
                )
        length = n_bins if n_bins is not None else len(doc["templates"][0])
        for i, tmpl in enumerate(doc["templates"]):
            if len(tmpl) != length:
                raise InvalidData(
                    f"template has {len(tmpl)} bins, expected {length}", path=path, field=f"$.templates[{i}]"
                )
            if not sum(tmpl) > 0:  # the schema makes every entry finite and >= 0
                raise InvalidData(
                    f"mass {doc['masses_gev'][i]:g} GeV has no expected signal (all-zero template): no "
                    "sensitivity; such masses are refused (docs/statistics.md)",
                    path=path,
                    field=f"$.templates[{i}]",
                )
        return cls(
            masses_gev=tuple(doc["masses_gev"]),
            reference_cross_section_cm2=tuple(doc["reference_cross_section_cm2"]),
            expected_events=tuple(doc["expected_events"]),
            templates=np.asarray(doc["templates"], float).reshape(n, length),
            exposure_t_yr=float(doc["exposure_t_yr"]),
            model_name=doc.get("model_name", "si"),
            model=doc["model"],
            halo=doc["halo"],
            units=doc["units"],
            efficiency_lo=tuple(doc["efficiency_lo"]) if "efficiency_lo" in doc else None,
            efficiency_hi=tuple(doc["efficiency_hi"]) if "efficiency_hi" in doc else None,
        )


def read_signal(path: str | os.PathLike, *, n_bins: int | None = None) -> SignalTemplates:
    """Read ``signal.json`` (schema and array-length checks).

    Raises:
        InvalidData: naming ``path`` and the first offending field.
    """
    doc = read_json(path, what="signal templates")
    validate(doc, "signal", path=path)
    return SignalTemplates.from_json(doc, path=path, n_bins=n_bins)


def write_signal(path: str | os.PathLike, signal: SignalTemplates) -> None:
    """Write ``signal.json`` atomically (sorted keys)."""
    write_json(path, signal.to_json())
