"""``mass_grid.json``: the dark-matter mass grid, resolved once (``mass-grid`` step) and read by ``signal``.

Schema: ``schemas/mass_grid.schema.json``.  The grid is the signal model's own ``masses_gev`` if it has
one, else the configuration's ``signal.masses_gev``; the limit masses are ``limits.masses_gev`` (each
on the grid) or the whole grid.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from dmpreserve.files import read_json, write_json
from dmpreserve.schema import validate


@dataclasses.dataclass(frozen=True, kw_only=True)
class MassGrid:
    """The resolved mass grid.

    Attributes:
        masses_gev: Masses the signal templates are built for [GeV/c^2], ascending as given by the model or
            configuration.
        limit_masses_gev: Masses the limits are computed at [GeV/c^2], ascending, each on ``masses_gev``.
        model_name: The signal model (``si``, ``sd_neutron``, ...).
        model_file: The signal-model file it came from.
    """

    masses_gev: tuple[float, ...]
    limit_masses_gev: tuple[float, ...]
    model_name: str
    model_file: str

    def to_json(self) -> dict[str, Any]:
        """The ``mass_grid.json`` document."""
        return {
            "masses_gev": list(self.masses_gev),
            "limit_masses_gev": list(self.limit_masses_gev),
            "model_name": self.model_name,
            "model_file": self.model_file,
            "units": {"masses_gev": "GeV/c^2"},
        }


def read_mass_grid(path: str | os.PathLike) -> MassGrid:
    """Read ``mass_grid.json``.

    Raises:
        InvalidData: naming ``path`` and the JSON path of the first schema violation.
    """
    doc = read_json(path, what="mass grid")
    validate(doc, "mass_grid", path=path)
    return MassGrid(
        masses_gev=tuple(float(m) for m in doc["masses_gev"]),
        limit_masses_gev=tuple(float(m) for m in doc["limit_masses_gev"]),
        model_name=doc["model_name"],
        model_file=doc["model_file"],
    )


def write_mass_grid(path: str | os.PathLike, grid: MassGrid) -> None:
    """Write ``mass_grid.json`` atomically (sorted keys)."""
    write_json(path, grid.to_json())
