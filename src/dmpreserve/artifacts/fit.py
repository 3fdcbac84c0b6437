"""``fit.json``: maximum-likelihood fit results (``fit`` step).

Schema: ``schemas/fit.schema.json``.  The background-only fit sits at the top level; with a patchset
the signal-plus-background fit at the reference mass and the best-fit signal strength per mass are
added.  Parameter values are dimensionless (normsys nuisance parameters in units of their prior
width; ``mu`` in units of the patch's reference cross section).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

from dmpreserve.files import read_json, write_json
from dmpreserve.schema import validate


@dataclasses.dataclass(frozen=True, kw_only=True)
class FitResults:
    """Contents of ``fit.json``.

    Attributes:
        twice_nll: -2 ln L at the background-only minimum.
        method: How the fits were made (minimizer, errors, goodness of fit).
        valid: Whether MIGRAD converged for the background-only fit.
        parameters: Per parameter: name, value, error, prefit value and error, pull.
        yields: Per background sample: expected events before and after the background-only fit, with the
            postfit uncertainty (:func:`dmpreserve.stats.yields.sample_yields`); None in older files.
        correlation: ``names`` and ``matrix`` of the background-only fit.
        goodness_of_fit: Saturated-model test statistic, ndof and p-values.
        signal_plus_background: The fit at the reference mass (POI with MINOS errors, scan), or None.
        best_fit_per_mass: Best-fit signal strength and cross section per mass, or None.
    """

    twice_nll: float
    method: str
    valid: bool | None = None
    parameters: tuple[Mapping[str, Any], ...]
    yields: tuple[Mapping[str, Any], ...] | None = None
    correlation: Mapping[str, Any] | None = None
    goodness_of_fit: Mapping[str, Any] | None = None
    signal_plus_background: Mapping[str, Any] | None = None
    best_fit_per_mass: tuple[Mapping[str, Any], ...] | None = None

    def pulled_parameters(self) -> list[Mapping[str, Any]]:
        """The parameters that have a pull (constrained nuisance parameters)."""
        return [p for p in self.parameters if p.get("pull") is not None]

    def to_json(self) -> dict[str, Any]:
        """The ``fit.json`` document (keys that are None are left out)."""
        doc = {
            "twice_nll": self.twice_nll,
            "method": self.method,
            "valid": self.valid,
            "parameters": [dict(p) for p in self.parameters],
            "yields": None if self.yields is None else [dict(y) for y in self.yields],
            "correlation": self.correlation,
            "goodness_of_fit": self.goodness_of_fit,
            "signal_plus_background": self.signal_plus_background,
            "best_fit_per_mass": None if self.best_fit_per_mass is None else list(self.best_fit_per_mass),
        }
        return {k: v for k, v in doc.items() if v is not None}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> FitResults:
        """From a schema-valid ``fit.json`` document."""
        best = doc.get("best_fit_per_mass")
        return cls(
            twice_nll=doc["twice_nll"],
            method=doc["method"],
            valid=doc.get("valid"),
            parameters=tuple(doc["parameters"]),
            yields=None if doc.get("yields") is None else tuple(doc["yields"]),
            correlation=doc.get("correlation"),
            goodness_of_fit=doc.get("goodness_of_fit"),
            signal_plus_background=doc.get("signal_plus_background"),
            best_fit_per_mass=None if best is None else tuple(best),
        )


def read_fit(path: str | os.PathLike) -> FitResults:
    """Read ``fit.json`` and check it against ``schemas/fit.schema.json``.

    Raises:
        InvalidData: naming ``path`` and the JSON path of the first schema violation.
    """
    doc = read_json(path, what="fit result")
    validate(doc, "fit", path=path)
    return FitResults.from_json(doc)


def write_fit(path: str | os.PathLike, fit: FitResults) -> None:
    """Validate and write ``fit.json`` atomically (sorted keys)."""
    doc = fit.to_json()
    validate(doc, "fit", path=path)
    write_json(path, doc)
