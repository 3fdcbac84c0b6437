"""Spectra folded through the NEST detector response: the ``nest`` shapes.

NR components use the NR response matrix (``response_nr.json``: true-energy bins x analysis bins);
ER components the ER line response (``response_er.json``: monoenergetic lines x analysis bins,
linearly interpolated between lines as :meth:`~dmpreserve.artifacts.response.LineResponse.row`).
Both give the probability that a fiducial recoil passes every cut and lands in an analysis bin, so

    template[k] = exposure x sum_e w_e R[e, k],      sigma[k] = exposure x sqrt(sum_e w_e^2 dR[e, k]^2)

with w_e the spectrum's integral over energy bin e (NR) or its interpolation weight on line e (ER),
and dR the simulation's statistical uncertainty (each row is an independent simulation).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from dmpreserve.artifacts.response import LineResponse, ResponseMatrix
from dmpreserve.backgrounds.spectra import Spectrum
from dmpreserve.errors import InvalidData

#: Largest analysis-region probability of the response's first/last energy for which the part of a spectrum
#: beyond the response's energy range may be dropped (it would land outside the analysis region).
EDGE_ACCEPTANCE_MAX = 1e-3


@dataclasses.dataclass(frozen=True)
class Folded:
    """A folded spectrum: expected events per analysis bin and its simulation uncertainty (flattened, [n_bins])."""

    template: np.ndarray
    stat_err: np.ndarray


def _check_range(
    spectrum: Spectrum,
    matrix: np.ndarray,
    lo_kev: float,
    hi_kev: float,
    *,
    path: str,
    response_path: str,
    field: str,
    what: str,
) -> None:
    """Refuse a line outside the response's energy range, or a continuous spectrum reaching beyond it where the
    edge row still lands in the ROI."""
    for i, (e, _) in enumerate(spectrum.lines):
        if not lo_kev <= e <= hi_kev:
            raise InvalidData(
                f"line energy {e:g} keV is outside the energy range of the {what} {response_path} "
                f"({lo_kev:g}-{hi_kev:g} keV)",
                path=path,
                field=f"{field}.lines.energies_kev[{i}]",
            )
    if spectrum.lines:
        return
    for side, (a, b), row in (
        ("below", (spectrum.support_kev[0], lo_kev), matrix[0]),
        ("above", (hi_kev, spectrum.support_kev[1]), matrix[-1]),
    ):
        if a < b and spectrum.integrate(a, b) > 0 and float(row.sum()) > EDGE_ACCEPTANCE_MAX:
            raise InvalidData(
                f"the spectrum reaches {side} the energy range of the {what} {response_path} "
                f"({lo_kev:g}-{hi_kev:g} keV), whose edge still puts {float(row.sum()):.3g} of the events in the "
                "analysis region: extend the response or restrict the spectrum",
                path=path,
                field=field,
            )


def fold_nr(
    spectrum: Spectrum,
    response: ResponseMatrix,
    exposure_t_yr: float,
    *,
    config_path: str,
    response_path: str,
    field: str,
) -> Folded:
    """An NR spectrum [events/(t yr keV)] through the NR response matrix, x exposure [t yr].

    Lines put their intensity into the energy bin that contains them.

    Raises:
        InvalidData: naming the configuration file and the spectrum's key (and the response file), for a line
            outside the response's energy range or a continuous spectrum beyond it where the edge bin is not
            negligible.
    """
    edges = np.asarray(response.energy_edges_kev, float)
    where = {"path": config_path, "response_path": response_path, "field": field, "what": "NR response"}
    _check_range(spectrum, response.matrix, float(edges[0]), float(edges[-1]), **where)
    if spectrum.lines:
        w = np.zeros(len(edges) - 1)
        for e, intensity in spectrum.lines:
            w[min(int(np.searchsorted(edges, e, side="right")) - 1, len(w) - 1)] += intensity
    else:
        w = np.asarray([spectrum.integrate(a, b) for a, b in zip(edges[:-1], edges[1:])])
    w = w * exposure_t_yr
    return Folded(w @ response.matrix, np.sqrt((w**2) @ (response.matrix_err**2)))


def line_weights(spectrum: Spectrum, line_energies_kev: np.ndarray) -> np.ndarray:
    """Weight of each simulated line [events/(t yr)] such that sum_j w_j R_j = integral of rate(E) R(E) dE.

    R(E) is interpolated linearly between lines, so line j gets the integral of rate(E) times the hat
    function that is 1 at E_j and 0 at its neighbours; a monoenergetic line splits its intensity between
    the two simulated lines around it in the same proportions as :meth:`LineResponse.row`.
    """
    e = np.asarray(line_energies_kev, float)
    w = np.zeros(len(e))
    if spectrum.lines:
        for energy, intensity in spectrum.lines:
            j = int(np.clip(np.searchsorted(e, energy) - 1, 0, len(e) - 2))
            f = (energy - e[j]) / (e[j + 1] - e[j])
            w[j] += (1.0 - f) * intensity
            w[j + 1] += f * intensity
        return w
    for j in range(len(e) - 1):
        a, b = e[j], e[j + 1]
        w[j] += spectrum.integrate(a, b, lambda x, a=a, b=b: (b - x) / (b - a))
        w[j + 1] += spectrum.integrate(a, b, lambda x, a=a, b=b: (x - a) / (b - a))
    return w


def fold_er(
    spectrum: Spectrum,
    response: LineResponse,
    exposure_t_yr: float,
    *,
    config_path: str,
    response_path: str,
    field: str,
) -> Folded:
    """An ER spectrum [events/(t yr keV)] through the NEST ER line response, x exposure [t yr].

    Raises:
        InvalidData: as :func:`fold_nr`, for the ER line response's range (first to last line).
    """
    e = np.asarray(response.line_energies_kev, float)
    if len(e) < 2 or np.any(np.diff(e) <= 0):
        raise InvalidData("needs at least two increasing line energies", path=response_path, field="line_energies_kev")
    where = {"path": config_path, "response_path": response_path, "field": field, "what": "ER line response"}
    _check_range(spectrum, response.matrix, float(e[0]), float(e[-1]), **where)
    w = line_weights(spectrum, e) * exposure_t_yr
    return Folded(w @ response.matrix, np.sqrt((w**2) @ (response.matrix_err**2)))
