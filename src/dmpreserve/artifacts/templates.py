"""``templates.json``: background templates, expected counts and the observed histogram (``backgrounds`` step).

Schema: ``schemas/templates.schema.json``.  Every histogram lives on the analysis binning in
(cS1 [phd], log10(cS2/phd)), indexed ``[i_cs1][j_log10cs2]``; its flattening for the likelihood is
``k = i_cs1 * n_log10cs2 + j_log10cs2``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import numpy as np

from dmpreserve.arrays import as_bin_edges, as_finite_array
from dmpreserve.errors import InvalidData
from dmpreserve.files import read_json, write_json
from dmpreserve.schema import validate


@dataclasses.dataclass(frozen=True)
class BackgroundComponent:
    """One background component.

    Attributes:
        name: Component name (e.g. ``er``, ``neutron``, ``cevns_8b``, ``accidental``, ``wall``).
        expected_events: Expected events in the analysis region [events].
        uncertainty_events: Absolute 1-sigma uncertainty of ``expected_events`` [events].
        template: Expected events per bin, shape (n_cs1, n_log10cs2).
        method: How it was estimated (one line).
        description: Physics description.
        constraint: The rate constraint in the likelihood: ``lognormal`` (pyhf normsys), ``gaussian``
            (pyhf histosys) with relative width ``uncertainty_events / expected_events``, or ``free`` (an
            unconstrained normfactor; ``uncertainty_events`` is 0).
        bounds: For ``free``: the bounds of the rate multiplier.
        stat_err: Absolute 1-sigma statistical uncertainty of each bin of ``template`` from the finite
            simulation or sample it was made from [events], same shape; None: none (pyhf staterror).
    """

    name: str
    expected_events: float
    uncertainty_events: float
    template: np.ndarray
    method: str
    description: str
    constraint: str = "lognormal"
    bounds: tuple[float, float] | None = None
    stat_err: np.ndarray | None = None

    def to_json(self) -> dict[str, Any]:
        """The component's entry in ``templates.json``."""
        constraint: dict[str, Any] = {"type": self.constraint}
        if self.bounds is not None:
            constraint["bounds"] = [float(b) for b in self.bounds]
        doc = {
            "expected_events": float(self.expected_events),
            "uncertainty_events": float(self.uncertainty_events),
            "template": np.asarray(self.template).tolist(),
            "method": self.method,
            "description": self.description,
            "constraint": constraint,
        }
        if self.stat_err is not None:
            doc["stat_err"] = np.asarray(self.stat_err).tolist()
        return doc


@dataclasses.dataclass(frozen=True, kw_only=True)
class BackgroundTemplates:
    """Contents of ``templates.json``.

    Attributes:
        cs1_edges_phd: cS1 bin edges [phd], length n_cs1 + 1.
        log10_cs2_edges: log10(cS2/phd) bin edges, length n_log10cs2 + 1.
        observed: Observed events per bin (int), shape (n_cs1, n_log10cs2).
        exposure_t_yr: Exposure (fiducial mass x live time) [t yr].
        components: Components by name.
    """

    cs1_edges_phd: tuple[float, ...]
    log10_cs2_edges: tuple[float, ...]
    observed: np.ndarray
    exposure_t_yr: float
    components: Mapping[str, BackgroundComponent]

    def __post_init__(self) -> None:
        object.__setattr__(self, "components", MappingProxyType(dict(self.components)))

    @property
    def shape(self) -> tuple[int, int]:
        """Binning shape (n_cs1, n_log10cs2)."""
        return len(self.cs1_edges_phd) - 1, len(self.log10_cs2_edges) - 1

    @property
    def n_bins(self) -> int:
        """Number of analysis bins."""
        return self.shape[0] * self.shape[1]

    def total_background(self) -> np.ndarray:
        """Sum of the component templates, shape (n_cs1, n_log10cs2) [events]."""
        return np.sum([np.asarray(c.template) for c in self.components.values()], axis=0)

    def to_json(self) -> dict[str, Any]:
        """The ``templates.json`` document."""
        return {
            "binning": {"cs1_edges_phd": list(self.cs1_edges_phd), "log10_cs2_edges": list(self.log10_cs2_edges)},
            "observed": np.asarray(self.observed).tolist(),
            "exposure_t_yr": self.exposure_t_yr,
            "components": {name: c.to_json() for name, c in self.components.items()},
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any], *, path: str | os.PathLike) -> BackgroundTemplates:
        """From a schema-valid document, with the shape checks a JSON Schema cannot express.

        Raises:
            InvalidData: naming ``path`` and the JSON path of the first inconsistent array.
        """
        edges = []
        for key in ("cs1_edges_phd", "log10_cs2_edges"):
            try:
                edges.append(as_bin_edges(f"$.binning.{key}", doc["binning"][key]))
            except InvalidData as exc:
                raise InvalidData(exc.message, path=path, field=exc.field) from None
        shape = (len(edges[0]) - 1, len(edges[1]) - 1)
        _grid(doc["observed"], path=path, field="$.observed", shape=shape)  # checked; kept as read (counts)
        comps = {}
        for name, comp in doc["components"].items():
            constraint = comp["constraint"]
            bounds = constraint.get("bounds")
            if (constraint["type"] == "free") != (bounds is not None):
                raise InvalidData(
                    "bounds are required for, and only for, a free rate",
                    path=path,
                    field=f"$.components.{name}.constraint.bounds",
                )
            if bounds is not None and not bounds[0] < bounds[1]:
                raise InvalidData(
                    f"inverted bounds {bounds}", path=path, field=f"$.components.{name}.constraint.bounds"
                )
            err = comp.get("stat_err")
            comps[name] = BackgroundComponent(
                name,
                float(comp["expected_events"]),
                float(comp["uncertainty_events"]),
                _grid(comp["template"], path=path, field=f"$.components.{name}.template", shape=shape),
                comp.get("method", ""),
                comp.get("description", ""),
                constraint=constraint["type"],
                bounds=None if bounds is None else (float(bounds[0]), float(bounds[1])),
                stat_err=None
                if err is None
                else _grid(err, path=path, field=f"$.components.{name}.stat_err", shape=shape),
            )
        return cls(
            cs1_edges_phd=tuple(doc["binning"]["cs1_edges_phd"]),
            log10_cs2_edges=tuple(doc["binning"]["log10_cs2_edges"]),
            observed=np.asarray(doc["observed"]),
            exposure_t_yr=float(doc["exposure_t_yr"]),
            components=comps,
        )


def _grid(values, *, path, field: str, shape: tuple[int, ...]) -> np.ndarray:
    """A finite, non-negative array of exactly ``shape`` (ragged nesting is refused, not broadcast)."""
    try:
        arr = as_finite_array(field, values, ndim=len(shape), nonnegative=True)
    except InvalidData as exc:
        raise InvalidData(exc.message, path=path, field=field) from None
    if arr.shape != shape:
        raise InvalidData(f"shape {arr.shape} does not match the binning {shape}", path=path, field=field)
    return arr


def read_templates(path: str | os.PathLike) -> BackgroundTemplates:
    """Read ``templates.json`` (schema and shape checks).

    Raises:
        InvalidData: naming ``path`` and the first offending field.
    """
    doc = read_json(path, what="background templates")
    validate(doc, "templates", path=path)
    return BackgroundTemplates.from_json(doc, path=path)


def write_templates(path: str | os.PathLike, templates: BackgroundTemplates) -> None:
    """Write ``templates.json`` atomically (sorted keys)."""
    write_json(path, templates.to_json())
