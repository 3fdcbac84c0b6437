"""Small hand-written pyhf likelihoods shared by the unit tests (three bins, one ER background)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def three_bin_workspace() -> dict[str, Any]:
    """A background-only workspace: one channel of three bins, ER with a 10% normsys, POI mu in [0, 20]."""
    return {
        "channels": [
            {
                "name": "ch",
                "samples": [
                    {
                        "name": "er",
                        "data": [20.0, 10.0, 5.0],
                        "modifiers": [{"name": "norm_er", "type": "normsys", "data": {"hi": 1.1, "lo": 1 / 1.1}}],
                    }
                ],
            }
        ],
        "observations": [{"name": "ch", "data": [22.0, 9.0, 7.0]}],
        "measurements": [
            {
                "name": "m",
                "config": {"poi": "mu", "parameters": [{"name": "mu", "bounds": [[0.0, 20.0]], "inits": [1.0]}]},
            }
        ],
        "version": "1.0.0",
    }


def signal_patch(name: str, mass: float, signal: Sequence[float] = (0.5, 2.0, 3.0)) -> dict[str, Any]:
    """A patchset entry adding the ``signal`` sample (normfactor mu) at ``mass`` [GeV], reference 1e-46 cm^2."""
    return {
        "metadata": {"name": name, "values": [mass], "reference_cross_section_cm2": 1e-46},
        "patch": [
            {
                "op": "add",
                "path": "/channels/0/samples/-",
                "value": {
                    "name": "signal",
                    "data": list(signal),
                    "modifiers": [{"name": "mu", "type": "normfactor", "data": None}],
                },
            }
        ],
    }
