"""``threshold_table.json``: Neyman critical values of t~mu as a function of the expected signal.

Schema: ``schemas/threshold_table.schema.json``.  Built once per analysis by ``dmpreserve thresholds``
from the toy shards of ``dmpreserve toys-shard`` (see :mod:`dmpreserve.stats.thresholds`), stored in
the reinterpretation kit and the HEPData record, and used by ``limits`` and ``reinterpret``.

The table is c(s, b_eff): the ``cl`` quantile of t~mu under the tested hypothesis, on a log grid of
the total expected signal s [events] (``signal_events``) for a few reference signal shapes, each
characterised by its effective background b_eff = S^2 / sum_k(S_k^2 / B_k) (the background of the
one-bin counting experiment with the same Fisher information for the signal strength at mu = 0).
Interpolation: linear in (log s, log b_eff), held constant beyond the grid's ends.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np

from dmpreserve.errors import InvalidData
from dmpreserve.files import read_json, write_json
from dmpreserve.schema import validate

FORMAT = "dmpreserve-threshold-table"
FORMAT_VERSION = 1


@dataclasses.dataclass(frozen=True, eq=False)
class ThresholdTable:
    """Critical values c(s, b_eff) of t~mu with their toy-MC errors.

    Attributes:
        cl: Confidence level (the quantile of t~mu).
        signal_events: Grid of total expected signal events s, ascending, shape (J,).
        shape_mass_gev: Mass of each reference signal shape, shape (K,), ordered by ``shape_b_eff``.
        shape_b_eff: Effective background of each shape [events], ascending, shape (K,).
        thresholds: The ``cl`` quantile of t~mu, shape (K, J).
        errors: Its statistical error (order-statistics 68% half-width), shape (K, J).
        toys: Successful toys per point, shape (K, J).
        failed: Failed toy fits per point (excluded), shape (K, J).
        seed: Master seed of the toys.
        shards: File names of the merged toy shards (provenance).
        method: How the toys were generated and fitted.
    """

    cl: float
    signal_events: np.ndarray
    shape_mass_gev: np.ndarray
    shape_b_eff: np.ndarray
    thresholds: np.ndarray
    errors: np.ndarray
    toys: np.ndarray
    failed: np.ndarray
    seed: int
    shards: tuple[str, ...] = ()
    method: str = ""

    def critical_value(self, signal_events, b_eff: float) -> tuple[np.ndarray, np.ndarray]:
        """c and its error at total expected signal ``signal_events`` (array) for a shape with ``b_eff``."""
        s = np.log(np.clip(np.asarray(signal_events, float), 1e-300, None))
        grid = np.log(self.signal_events)
        per_shape = [
            (np.interp(s, grid, self.thresholds[k]), np.interp(s, grid, self.errors[k]))
            for k in range(self.shape_b_eff.size)
        ]
        if self.shape_b_eff.size == 1:
            return per_shape[0]
        lb = np.log(self.shape_b_eff)
        x = float(np.clip(np.log(b_eff), lb[0], lb[-1]))
        k = int(np.clip(np.searchsorted(lb, x) - 1, 0, lb.size - 2))
        w = (x - lb[k]) / (lb[k + 1] - lb[k]) if lb[k + 1] > lb[k] else 0.0
        c = (1 - w) * per_shape[k][0] + w * per_shape[k + 1][0]
        e = (1 - w) * per_shape[k][1] + w * per_shape[k + 1][1]
        return c, e

    def to_json(self) -> dict[str, Any]:
        """The ``threshold_table.json`` document."""
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "cl": float(self.cl),
            "statistic": "t~mu: two-sided profile-likelihood ratio with mu_hat >= 0 (Baxter et al. 2021)",
            "signal_events": [float(v) for v in self.signal_events],
            "shapes": [
                {"mass_gev": float(m), "b_eff": float(b)} for m, b in zip(self.shape_mass_gev, self.shape_b_eff)
            ],
            "thresholds": self.thresholds.tolist(),
            "threshold_errors": self.errors.tolist(),
            "toys": self.toys.astype(int).tolist(),
            "failed_toys": self.failed.astype(int).tolist(),
            "seed": int(self.seed),
            "shards": list(self.shards),
            "method": self.method,
            "interpolation": "linear in (log signal_events, log b_eff), constant beyond the grid",
            "units": {"signal_events": "events", "b_eff": "events", "thresholds": "t~mu (dimensionless)"},
        }

    @classmethod
    def from_json(cls, doc: Any, *, path: str | None = None) -> ThresholdTable:
        """Inverse of :meth:`to_json` (validated against the schema).

        Raises:
            InvalidData: schema violations or inconsistent array shapes, naming ``path`` and the field.
        """
        validate(doc, "threshold_table", path=path)
        s = np.asarray(doc["signal_events"], float)
        b = np.array([sh["b_eff"] for sh in doc["shapes"]], float)
        arrays = {k: np.asarray(doc[k], float) for k in ("thresholds", "threshold_errors", "toys", "failed_toys")}
        for name, arr in arrays.items():
            if arr.shape != (b.size, s.size):
                raise InvalidData(f"shape {arr.shape}, expected ({b.size}, {s.size})", path=path, field=name)
        if np.any(np.diff(s) <= 0) or np.any(np.diff(b) < 0):
            raise InvalidData("signal_events and shapes[].b_eff must be ascending", path=path, field="signal_events")
        return cls(
            cl=float(doc["cl"]),
            signal_events=s,
            shape_mass_gev=np.array([sh["mass_gev"] for sh in doc["shapes"]], float),
            shape_b_eff=b,
            thresholds=arrays["thresholds"],
            errors=arrays["threshold_errors"],
            toys=arrays["toys"].astype(int),
            failed=arrays["failed_toys"].astype(int),
            seed=int(doc["seed"]),
            shards=tuple(doc.get("shards", ())),
            method=str(doc.get("method", "")),
        )


def read_threshold_table(path: str | os.PathLike) -> ThresholdTable:
    """Read and validate ``threshold_table.json``."""
    return ThresholdTable.from_json(read_json(path, what="threshold table"), path=str(path))


def write_threshold_table(path: str | os.PathLike, table: ThresholdTable) -> None:
    """Validate and write ``threshold_table.json`` atomically."""
    doc = table.to_json()
    validate(doc, "threshold_table", path=str(path))
    write_json(path, doc)
