"""A synthetic released event-table description (the YAML sidecar of ``inputs.NAME.table.description``).

Shared by the unit tests of :mod:`dmpreserve.artifacts.released` and the hostile-input table: one day
of LZ-like data (5.5 t fiducial), inside the test configuration's ROI.
"""

from __future__ import annotations

import copy
from typing import Any

_DESCRIPTION: dict[str, Any] = {
    "kind": "science",
    "live_time_s": 86400.0,
    "exposure": {"fiducial_mass_t": 5.5, "live_time_days": 1.0, "exposure_t_yr": 5.5 / 365.0},
    "detector": "LZ_WS2022",
    "active_volume": {"r_max_cm": 68.8, "drift_time_min_us": 86.0, "drift_time_max_us": 936.5},
    "upstream_cuts": [{"name": "single_scatter", "definition": "one S1 and one S2"}],
    "source": {"release": "synthetic test table"},
}


def event_description(**overrides: Any) -> dict[str, Any]:
    """A fresh copy of the synthetic description with top-level keys replaced by ``overrides``."""
    doc = copy.deepcopy(_DESCRIPTION)
    doc.update(copy.deepcopy(overrides))
    return doc
