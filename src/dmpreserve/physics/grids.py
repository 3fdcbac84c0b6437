"""Grids of the analysis that need only NumPy (imported by the configuration of every step)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np


def log_mass_grid(spec: Mapping[str, Any]) -> tuple[float, ...]:
    """The log-spaced mass grid ``{min, max, count}`` [GeV], each mass rounded to 6 significant digits."""
    grid = np.geomspace(spec["min"], spec["max"], spec["count"]) if spec["count"] > 1 else np.array([spec["min"]])
    return tuple(float(f"{x:.6g}") for x in grid)
