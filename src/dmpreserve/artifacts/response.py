"""Detector response matrices passed between steps: ``response_nr.json`` and ``response_er.json``.

Schema: ``schemas/response.schema.json``.  ``matrix[e, k]`` is the probability that a recoil of true
energy in bin ``e`` [keV] (NR) or an ER line of energy ``E_e`` [keV], inside the fiducial volume,
passes every cut and lands in analysis bin ``k = i_cs1 * n_log10cs2 + j_log10cs2`` (efficiency included).
Both files are written by the ``response`` step (:mod:`dmpreserve.response`).

Also here: the external signal-efficiency curve (``signal.efficiency: {curve: CSV}``), read and checked by
:func:`read_efficiency_curve`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from dmpreserve.config import Binning
from dmpreserve.errors import InvalidData
from dmpreserve.files import read_csv, read_json, sha256_file, write_json

#: Columns of an efficiency-curve CSV: NR energy [keV], median efficiency and its band (lower, upper).
EFFICIENCY_COLUMNS = ("energy_kev", "efficiency", "efficiency_lo", "efficiency_hi")


@dataclasses.dataclass(frozen=True)
class ResponseMatrix:
    """NR response: true-energy bins x flattened analysis bins (k = i_cs1 * n_log10cs2 + j).

    Attributes:
        energy_edges_kev: True-energy bin edges [keV], length n_energy + 1.
        binning: The analysis binning.
        matrix: Probabilities, shape (n_energy, n_bins).
        matrix_err: Their statistical (simulation) uncertainty, same shape.
        matrix_lo, matrix_hi: The response with the lower and upper signal-efficiency curve (external
            curve with a band), same shape; None without a band.
        efficiency: Where the efficiency came from (``method`` ``simulation`` or ``curve``; for a curve its
            file, sha256 and ``includes_roi``; ``upstream_cuts``: the upstream cuts whose efficiency was
            multiplied in).  None: the simulation's own cuts only (the default, as before issue 14).
    """

    energy_edges_kev: np.ndarray
    binning: Binning
    matrix: np.ndarray  # [n_energy][n_bins]
    matrix_err: np.ndarray
    matrix_lo: np.ndarray | None = None
    matrix_hi: np.ndarray | None = None
    efficiency: Mapping[str, Any] | None = None

    @property
    def energy_centres_kev(self) -> np.ndarray:
        """Centres of the true-energy bins [keV], length n_energy."""
        e = np.asarray(self.energy_edges_kev, float)
        return 0.5 * (e[:-1] + e[1:])

    @property
    def has_band(self) -> bool:
        """Whether the response carries a signal-efficiency band (``matrix_lo``/``matrix_hi``)."""
        return self.matrix_lo is not None and self.matrix_hi is not None

    def fold(self, counts_per_energy_bin: np.ndarray, *, which: str = "nominal") -> np.ndarray:
        """Expected events per analysis bin for expected events per true-energy bin.

        Args:
            counts_per_energy_bin: Expected recoils per true-energy bin, length n_energy.
            which: ``nominal``, or ``lo``/``hi`` for the response with the lower/upper efficiency curve.
        """
        matrix = {"nominal": self.matrix, "lo": self.matrix_lo, "hi": self.matrix_hi}[which]
        if matrix is None:
            raise ValueError(f"this response has no {which} efficiency band")
        return np.asarray(counts_per_energy_bin) @ matrix

    def efficiency_band(self, counts_per_energy_bin: np.ndarray) -> tuple[float, float]:
        """(lo, hi): the expected signal with the lower/upper efficiency curve over the nominal one, for expected
        recoils per true-energy bin (the ``signal_efficiency`` normsys factors); (1, 1) where the nominal
        expectation is zero (such a mass has no sensitivity and is refused or skipped by the caller).

        Raises:
            ValueError: the response has no efficiency band.
        """
        total = float(self.fold(counts_per_energy_bin).sum())
        if not total > 0:
            return 1.0, 1.0
        lo, hi = (float(self.fold(counts_per_energy_bin, which=w).sum()) / total for w in ("lo", "hi"))
        return lo, hi

    def to_json(self) -> dict[str, Any]:
        """Serialisable form (``response_nr.json``; the optional keys only where set)."""
        doc = self._core_json()
        if self.has_band:
            doc["matrix_lo"] = np.asarray(self.matrix_lo).tolist()
            doc["matrix_hi"] = np.asarray(self.matrix_hi).tolist()
        if self.efficiency is not None:
            doc["efficiency"] = dict(self.efficiency)
        return doc

    def _core_json(self) -> dict[str, Any]:
        return {
            "energy_edges_kev": self.energy_edges_kev.tolist(),
            "binning": {
                "cs1_edges_phd": list(self.binning.cs1_edges_phd),
                "log10_cs2_edges": list(self.binning.log10_cs2_edges),
            },
            "matrix": self.matrix.tolist(),
            "matrix_err": self.matrix_err.tolist(),
            "description": "P(pass all cuts and land in analysis bin k | NR of true energy in bin e, fiducial); "
            "k = i_cs1 * n_log10cs2 + j_log10cs2",
        }


@dataclasses.dataclass(frozen=True)
class LineResponse:
    """ER response to monoenergetic lines: ``matrix[j, k]`` = P(pass, analysis bin k | line at energies[j])."""

    line_energies_kev: np.ndarray
    binning: Binning
    matrix: np.ndarray
    matrix_err: np.ndarray

    def row(self, energy_kev: float) -> np.ndarray:
        """Response to a line at ``energy_kev`` (linear interpolation; zero outside the simulated lines)."""
        e = self.line_energies_kev
        if energy_kev < e[0] or energy_kev > e[-1]:
            return np.zeros(self.matrix.shape[1])
        j = int(np.clip(np.searchsorted(e, energy_kev) - 1, 0, len(e) - 2))
        f = (energy_kev - e[j]) / (e[j + 1] - e[j])
        return (1.0 - f) * self.matrix[j] + f * self.matrix[j + 1]

    def to_json(self) -> dict[str, Any]:
        """Serialisable form (``response_er.json``: the NR response's layout, rows per line energy)."""
        doc = ResponseMatrix(self.line_energies_kev, self.binning, self.matrix, self.matrix_err)._core_json()
        doc["line_energies_kev"] = doc.pop("energy_edges_kev")
        doc["description"] = (
            "P(pass all cuts and land in analysis bin k | ER line of energy E_j [keV], fiducial), "
            "NEST simulation; k = i_cs1 * n_log10cs2 + j_log10cs2"
        )
        return doc


def _binning(doc: dict[str, Any]) -> Binning:
    b = doc["binning"]
    return Binning(tuple(b["cs1_edges_phd"]), tuple(b["log10_cs2_edges"]))


def _read(path: str | os.PathLike, cls: type, energies_key: str, what: str):
    """One response file: energies (``energies_key``), binning, matrix and its error (and, for the NR
    response, the optional efficiency band and its description), as ``cls``."""
    doc = read_json(path, what=what)
    try:
        args = [
            np.asarray(doc[energies_key], float),
            _binning(doc),
            np.asarray(doc["matrix"], float),
            np.asarray(doc["matrix_err"], float),
        ]
        if cls is ResponseMatrix:
            band = [np.asarray(doc[k], float) if k in doc else None for k in ("matrix_lo", "matrix_hi")]
            for key, m in zip(("matrix_lo", "matrix_hi"), band):
                if m is not None and m.shape != args[2].shape:
                    raise InvalidData(
                        f"shape {m.shape} differs from the matrix's {args[2].shape}", path=path, field=f"$.{key}"
                    )
            args += [*band, doc.get("efficiency")]
        return cls(*args)
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidData(f"malformed {what} ({exc})", path=path) from None


def read_response(path: str | os.PathLike) -> ResponseMatrix:
    """Read ``response_nr.json``.

    Raises:
        InvalidData: naming ``path`` when a key is missing or an array is malformed.
    """
    return _read(path, ResponseMatrix, "energy_edges_kev", "NR response")


def write_response(path: str | os.PathLike, response: ResponseMatrix | LineResponse) -> None:
    """Write ``response_nr.json`` or ``response_er.json`` atomically (sorted keys)."""
    write_json(path, response.to_json())


def read_line_response(path: str | os.PathLike) -> LineResponse:
    """Read ``response_er.json``.

    Raises:
        InvalidData: naming ``path`` when a key is missing or an array is malformed.
    """
    return _read(path, LineResponse, "line_energies_kev", "ER response")


@dataclasses.dataclass(frozen=True)
class EfficiencyCurve:
    """An external NR signal-efficiency curve with its uncertainty band (``signal.efficiency.curve``).

    Attributes:
        energy_kev: True NR energies [keV], strictly increasing, length n.
        efficiency, efficiency_lo, efficiency_hi: Median efficiency and the lower/upper edge of its band at
            those energies, in [0, 1] with lo <= efficiency <= hi, length n.
        path: The CSV file.
        sha256: Its sha256 (recorded in ``response_nr.json``).
    """

    energy_kev: np.ndarray
    efficiency: np.ndarray
    efficiency_lo: np.ndarray
    efficiency_hi: np.ndarray
    path: str
    sha256: str

    def at(self, energy_kev: np.ndarray, column: str = "efficiency") -> np.ndarray:
        """The curve ``column`` (``efficiency``, ``efficiency_lo``, ``efficiency_hi``) at ``energy_kev`` [keV]
        by linear interpolation (the energies must lie inside the curve: see :meth:`check_covers`)."""
        return np.interp(np.asarray(energy_kev, float), self.energy_kev, getattr(self, column))

    def check_covers(self, energy_kev: np.ndarray) -> None:
        """Refuse energies [keV] outside the curve: no extrapolation.

        Raises:
            InvalidData: naming the file and ``energy_kev`` when the curve does not reach from the lowest to the
                highest of ``energy_kev``.
        """
        e = np.asarray(energy_kev, float)
        lo, hi = float(e.min()), float(e.max())
        if self.energy_kev[0] > lo or self.energy_kev[-1] < hi:
            raise InvalidData(
                f"the curve covers {self.energy_kev[0]:g}-{self.energy_kev[-1]:g} keV, the response needs "
                f"{lo:g}-{hi:g} keV (energy-bin centres of signal.energy_bins_kev); it is not extrapolated: "
                "add points at the ends (e.g. efficiency 0 below threshold)",
                path=self.path,
                field="energy_kev",
            )


def check_curve(
    path: str | os.PathLike,
    energy_kev: np.ndarray,
    efficiencies: Mapping[str, np.ndarray],
    *,
    negative_tolerance: float = 0.0,
) -> None:
    """The checks every efficiency curve passes (a CSV curve here, a released curve in
    :mod:`dmpreserve.artifacts.released`): at least two rows, energies >= 0 and strictly increasing, every
    efficiency column in [0, 1] (down to ``-negative_tolerance``, for digitised curves).

    Args:
        path: The file (for the error message).
        energy_kev: Energies [keV], shape (n,).
        efficiencies: Column name -> efficiencies, each shape (n,).
        negative_tolerance: How far below 0 an efficiency may lie (clipped by the caller).

    Raises:
        InvalidData: naming ``path``, the column and the first bad data row (1-based).
    """
    e = np.asarray(energy_kev, float)
    if e.size < 2:
        raise InvalidData(f"needs at least two rows, got {e.size}", path=path, field="energy_kev")
    steps = np.flatnonzero(np.diff(e) <= 0)
    if e[0] < 0 or steps.size:
        row = int(steps[0]) + 2 if steps.size else 1
        raise InvalidData(
            f"energies must be >= 0 and strictly increasing (data row {row})", path=path, field="energy_kev"
        )
    for name, values in efficiencies.items():
        v = np.asarray(values, float)
        out = np.flatnonzero((v < -negative_tolerance) | (v > 1.0))
        if out.size:
            i = int(out[0])
            raise InvalidData(
                f"efficiency {v[i]:g} at {e[i]:g} keV (data row {i + 1}) is outside [0, 1]", path=path, field=name
            )


def read_efficiency_curve(path: str | os.PathLike) -> EfficiencyCurve:
    """Read and check an efficiency-curve CSV (columns :data:`EFFICIENCY_COLUMNS`; other columns ignored).

    Raises:
        InvalidData: naming the file and the column: a missing column, a value that is not a finite number,
            an efficiency outside [0, 1], ``efficiency_lo <= efficiency <= efficiency_hi`` violated, energies
            negative or not strictly increasing, fewer than two rows.
    """
    cols = read_csv(path, required=EFFICIENCY_COLUMNS, what="efficiency curve")
    values = {}
    for name in EFFICIENCY_COLUMNS:
        try:
            arr = np.array([float(v) for v in cols[name]], dtype=float)
        except ValueError as exc:
            raise InvalidData(f"not a number ({exc})", path=path, field=name) from None
        bad = np.flatnonzero(~np.isfinite(arr))
        if bad.size:
            raise InvalidData(f"not finite in data row {bad[0] + 1}", path=path, field=name)
        values[name] = arr
    check_curve(path, values["energy_kev"], {n: values[n] for n in EFFICIENCY_COLUMNS[1:]})
    for name, bad in (
        ("efficiency_lo", values["efficiency_lo"] > values["efficiency"]),
        ("efficiency_hi", values["efficiency_hi"] < values["efficiency"]),
    ):
        rows = np.flatnonzero(bad)
        if rows.size:
            raise InvalidData(
                f"band does not contain the median in data row {rows[0] + 1} (need efficiency_lo <= efficiency "
                "<= efficiency_hi)",
                path=path,
                field=name,
            )
    return EfficiencyCurve(
        values["energy_kev"],
        values["efficiency"],
        values["efficiency_lo"],
        values["efficiency_hi"],
        str(path),
        sha256_file(path),
    )
