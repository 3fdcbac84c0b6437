"""Detector response matrices passed between steps: ``response_nr.json`` and ``response_er.json``.

Schema: ``schemas/response.schema.json``.  ``matrix[e, k]`` is the probability that a recoil of true
energy in bin ``e`` [keV] (NR) or an ER line of energy ``E_e`` [keV], inside the fiducial volume,
passes every cut and lands in analysis bin ``k = i_cs1 * n_log10cs2 + j_log10cs2`` (efficiency included).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np

from dmpreserve.config import Binning
from dmpreserve.errors import InvalidData
from dmpreserve.files import read_json, write_json


@dataclasses.dataclass(frozen=True)
class ResponseMatrix:
    """NR response: true-energy bins x flattened analysis bins (k = i_cs1 * n_log10cs2 + j).

    Attributes:
        energy_edges_kev: True-energy bin edges [keV], length n_energy + 1.
        binning: The analysis binning.
        matrix: Probabilities, shape (n_energy, n_bins).
        matrix_err: Their statistical (simulation) uncertainty, same shape.
    """

    energy_edges_kev: np.ndarray
    binning: Binning
    matrix: np.ndarray  # [n_energy][n_bins]
    matrix_err: np.ndarray

    def fold(self, counts_per_energy_bin: np.ndarray) -> np.ndarray:
        """Expected events per analysis bin for expected events per true-energy bin."""
        return np.asarray(counts_per_energy_bin) @ self.matrix

    def to_json(self) -> dict[str, Any]:
        """Serialisable form (``response_nr.json``)."""
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
        doc = ResponseMatrix(self.line_energies_kev, self.binning, self.matrix, self.matrix_err).to_json()
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
    """One response file: energies (``energies_key``), binning, matrix and its error, as ``cls``."""
    doc = read_json(path, what=what)
    try:
        return cls(
            np.asarray(doc[energies_key], float),
            _binning(doc),
            np.asarray(doc["matrix"], float),
            np.asarray(doc["matrix_err"], float),
        )
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
