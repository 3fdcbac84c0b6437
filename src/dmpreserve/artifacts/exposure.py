"""``exposure.json``: the science run's exposure, computed once by the ``select`` step.

Schema: ``schemas/exposure.schema.json``.  Exposure = fiducial mass [t] (from the fiducial cuts and the
detector geometry in the science sidecars, or their nominal fiducial mass when the configuration has no
fiducial cut: :func:`dmpreserve.selection.cuts.exposure_of`) x the science files' summed live time [s] /
(365.25 x 86400 s/yr).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from dmpreserve.files import read_json, write_json
from dmpreserve.schema import validate


@dataclasses.dataclass(frozen=True, kw_only=True)
class Exposure:
    """Exposure of the selected science data.

    Attributes:
        fiducial_mass_t: Fiducial mass [t].
        live_time_s: Live time [s].
        exposure_t_yr: Fiducial mass x live time [t yr] (Julian years).
    """

    fiducial_mass_t: float
    live_time_s: float
    exposure_t_yr: float

    def to_json(self) -> dict[str, Any]:
        """The ``exposure.json`` document."""
        return {
            "fiducial_mass_t": self.fiducial_mass_t,
            "live_time_s": self.live_time_s,
            "exposure_t_yr": self.exposure_t_yr,
            "units": {"fiducial_mass_t": "t", "live_time_s": "s", "exposure_t_yr": "t yr (Julian year)"},
        }


def read_exposure(path: str | os.PathLike) -> Exposure:
    """Read ``exposure.json``.

    Raises:
        InvalidData: naming ``path`` and the JSON path of the first schema violation.
    """
    doc = read_json(path, what="exposure")
    validate(doc, "exposure", path=path)
    return Exposure(
        fiducial_mass_t=float(doc["fiducial_mass_t"]),
        live_time_s=float(doc["live_time_s"]),
        exposure_t_yr=float(doc["exposure_t_yr"]),
    )


def write_exposure(path: str | os.PathLike, exposure: Exposure) -> None:
    """Write ``exposure.json`` atomically (sorted keys)."""
    write_json(path, exposure.to_json())
