"""``threshold_table.json``: Neyman critical values of t~mu as a function of the expected signal.

Schema: ``schemas/threshold_table.schema.json``.  Built once per analysis by ``dmpreserve thresholds``
from the toy shards of ``dmpreserve toys-shard`` (see :mod:`dmpreserve.stats.thresholds`), stored in
the reinterpretation kit and the HEPData record, and used by ``limits`` and ``reinterpret``.

The table is c(s, b_eff): the ``cl`` quantile of t~mu under the tested hypothesis, on a log grid of
the total expected signal s [events] (``signal_events``) for a few reference signal shapes, each
characterised by its effective background b_eff = S^2 / sum_k(S_k^2 / B_k) (the background of the
one-bin counting experiment with the same Fisher information for the signal strength at mu = 0).
Interpolation: log c linear in log s (exact both for a constant c and for c = 2 s, the zero-count atom
below), then linear in log b_eff; held constant beyond the grid's ends.

Atoms (format version 2): where the signal sits in a nearly background-free corner, every outcome
without counts under the signal has t~mu = 2 s exactly (the zero-count atom, probability ~ e^{-s-B}).
While that probability exceeds 1 - cl the ``cl`` quantile *is* the atom, and an outcome on it is not
excluded (its p-value P(T >= 2 s) counts the ties).  The table therefore also stores, per point, the
atom's p-value ``atom_pvalues`` = P(T >= 2 s (1 - ATOM_RTOL)) of the toys, and per shape the atom's
(F, B): P(every atom bin empty) = exp(-s F - B).  The atom's size depends on the background under the
signal, not on b_eff, so :meth:`atom_pvalue` takes it analytically from the tested mass's own (F, B)
and only the remainder P(T >= 2 s) - exp(-s F_k - B_k) of the reference shapes (outcomes with t~mu
above the atom) from the table (linear in s, then in log b_eff).  The exclusion rule is
:func:`dmpreserve.stats.toys.exclusion_gap`.
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
FORMAT_VERSION = 2
#: Relative width of the zero-count atom at t~mu = 2 s: toys and observations with t >= 2 s (1 - ATOM_RTOL)
#: are on it (outcomes with counts only where the signal is ~1e-3 of its peak sit just below 2 s).
ATOM_RTOL = 1e-3


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
        atom_pvalues: P(T >= 2 s (1 - ATOM_RTOL)), the p-value of the zero-count atom, shape (K, J).
        shape_atom: (F, B) of each shape's atom (see :func:`dmpreserve.stats.thresholds.atom_stats`), shape (K, 2).
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
    atom_pvalues: np.ndarray
    shape_atom: np.ndarray
    seed: int
    shards: tuple[str, ...] = ()
    method: str = ""

    def _mix(self, per_shape: list[np.ndarray], b_eff: float) -> np.ndarray:
        """Linear interpolation in log b_eff between the per-shape values (clipped to the shapes)."""
        if self.shape_b_eff.size == 1:
            return per_shape[0]
        lb = np.log(self.shape_b_eff)
        x = float(np.clip(np.log(b_eff), lb[0], lb[-1]))
        k = int(np.clip(np.searchsorted(lb, x) - 1, 0, lb.size - 2))
        w = (x - lb[k]) / (lb[k + 1] - lb[k]) if lb[k + 1] > lb[k] else 0.0
        return (1 - w) * per_shape[k] + w * per_shape[k + 1]

    def critical_value(self, signal_events, b_eff: float) -> tuple[np.ndarray, np.ndarray]:
        """c and its error at total expected signal ``signal_events`` (array) for a shape with ``b_eff``.

        log c is interpolated linearly in log s: exact on the zero-count atom c = 2 s and for constant c.
        """
        s = np.log(np.clip(np.asarray(signal_events, float), 1e-300, None))
        grid = np.log(self.signal_events)
        logc = np.log(np.clip(self.thresholds, 1e-300, None))
        c = self._mix([np.exp(np.interp(s, grid, logc[k])) for k in range(self.shape_b_eff.size)], b_eff)
        e = self._mix([np.interp(s, grid, self.errors[k]) for k in range(self.shape_b_eff.size)], b_eff)
        return c, e

    def atom_pvalue(self, signal_events, b_eff: float, atom: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
        """p-value P(T >= 2 s) of the zero-count atom and its binomial toy error, at ``signal_events``.

        exp(-s F - B) of this mass's atom ``atom`` = (F, B), plus the reference shapes' remainder above the atom.
        """
        s = np.asarray(signal_events, float)
        n = max(int(self.toys.min()), 1)
        rest = []
        for k in range(self.shape_b_eff.size):
            f_k, b_k = self.shape_atom[k]
            r = np.clip(self.atom_pvalues[k] - np.exp(-self.signal_events * f_k - b_k), 0.0, None)
            rest.append(np.interp(s, self.signal_events, r))
        p = np.clip(np.exp(-s * atom[0] - atom[1]) + self._mix(rest, b_eff), 0.0, 1.0)
        return p, np.sqrt(np.clip(p * (1 - p), 0.25 / n, None) / n)

    def to_json(self) -> dict[str, Any]:
        """The ``threshold_table.json`` document."""
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "cl": float(self.cl),
            "statistic": "t~mu: two-sided profile-likelihood ratio with mu_hat >= 0 (Baxter et al. 2021)",
            "signal_events": [float(v) for v in self.signal_events],
            "shapes": [
                {
                    "mass_gev": float(m),
                    "b_eff": float(b),
                    "atom_signal_fraction": float(a[0]),
                    "atom_background": float(a[1]),
                }
                for m, b, a in zip(self.shape_mass_gev, self.shape_b_eff, self.shape_atom)
            ],
            "thresholds": self.thresholds.tolist(),
            "threshold_errors": self.errors.tolist(),
            "toys": self.toys.astype(int).tolist(),
            "failed_toys": self.failed.astype(int).tolist(),
            "atom_pvalues": self.atom_pvalues.tolist(),
            "atom_rtol": ATOM_RTOL,
            "seed": int(self.seed),
            "shards": list(self.shards),
            "method": self.method,
            "interpolation": (
                "log thresholds linear in log signal_events, log atom_pvalues linear in signal_events; then linear "
                "in log b_eff; constant beyond the grid"
            ),
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
        arrays = {
            k: np.asarray(doc[k], float)
            for k in ("thresholds", "threshold_errors", "toys", "failed_toys", "atom_pvalues")
        }
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
            shape_atom=np.array([[sh["atom_signal_fraction"], sh["atom_background"]] for sh in doc["shapes"]], float),
            thresholds=arrays["thresholds"],
            errors=arrays["threshold_errors"],
            toys=arrays["toys"].astype(int),
            failed=arrays["failed_toys"].astype(int),
            atom_pvalues=arrays["atom_pvalues"],
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
