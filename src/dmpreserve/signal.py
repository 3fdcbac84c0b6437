"""Signal model: SI WIMP recoil spectra folded through the NR response matrix.

The response matrix R[e, k] is the probability that a nuclear recoil of true energy in bin ``e``,
inside the fiducial volume, passes every cut and lands in analysis bin ``k`` (efficiency included).
It is built from the NR response simulation.  The expected signal in bin k is
sum_e exposure x (integral of dR/dE over bin e) x R[e, k].
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from dmpreserve.config import AnalysisConfig, Binning
from dmpreserve.data import ReducedData
from dmpreserve.physics.halo import StandardHalo
from dmpreserve.physics.wimp import rate_si
from dmpreserve.selection import apply_cuts, cuts_from_config, fiducial_volume_fraction

#: Cross section at which spectra are tabulated [cm^2].
TABULATION_CROSS_SECTION_CM2 = 1e-45


@dataclasses.dataclass(frozen=True)
class ResponseMatrix:
    """NR response: true-energy bins x flattened analysis bins (k = i_cs1 * n_log10cs2 + j)."""

    energy_edges_kev: np.ndarray
    binning: Binning
    matrix: np.ndarray  # [n_energy][n_bins]
    matrix_err: np.ndarray

    def fold(self, counts_per_energy_bin: np.ndarray) -> np.ndarray:
        """Expected events per analysis bin for expected events per true-energy bin."""
        return np.asarray(counts_per_energy_bin) @ self.matrix

    def to_json(self) -> dict[str, Any]:
        """Serialisable form (``response_nr.json``)."""
        return {"energy_edges_kev": self.energy_edges_kev.tolist(),
                "binning": {"cs1_edges_phd": list(self.binning.cs1_edges_phd),
                            "log10_cs2_edges": list(self.binning.log10_cs2_edges)},
                "matrix": self.matrix.tolist(), "matrix_err": self.matrix_err.tolist(),
                "description": "P(pass all cuts and land in analysis bin k | NR of true energy in bin e, fiducial); "
                               "k = i_cs1 * n_log10cs2 + j_log10cs2"}


def build_response(sim: ReducedData, config: AnalysisConfig) -> ResponseMatrix:
    """Build the NR response matrix from the NR simulation."""
    binning = config.binning
    edges = config.signal_energy_edges_kev
    cuts = cuts_from_config(config)
    mask, _ = apply_cuts(sim, cuts)
    e = sim.columns["true_energy_kev"]
    f_vol = fiducial_volume_fraction(sim.meta["active_volume"], cuts)
    n1, n2 = binning.shape
    i = np.digitize(sim.columns["cs1_phd"], binning.cs1_edges_phd) - 1
    j = np.digitize(sim.variable("log10_cs2"), binning.log10_cs2_edges) - 1
    inside = mask & (i >= 0) & (i < n1) & (j >= 0) & (j < n2)
    k = i * n2 + j
    ebin = np.digitize(e, edges) - 1
    ok = inside & (ebin >= 0) & (ebin < len(edges) - 1)
    counts = np.zeros((len(edges) - 1, n1 * n2))
    np.add.at(counts, (ebin[ok], k[ok]), 1.0)
    n_gen, _ = np.histogram(e, bins=edges)
    denom = np.maximum(n_gen * f_vol, 1e-300)[:, None]
    return ResponseMatrix(np.asarray(edges), binning, counts / denom, np.sqrt(counts) / denom)


def halo_from_config(config: AnalysisConfig) -> StandardHalo:
    """The configured standard halo."""
    h = config["signal"]["halo"]
    return StandardHalo(rho0_gev_cm3=h["rho0_gev_cm3"], v0_km_s=h["v0_km_s"], v_esc_km_s=h["v_esc_km_s"],
                        v_earth_km_s=h["v_earth_km_s"])


def counts_per_energy_bin(edges_kev: np.ndarray, *, mass_gev: float, cross_section_cm2: float, halo: StandardHalo,
                          exposure_t_yr: float, points_per_bin: int = 9) -> np.ndarray:
    """Expected recoils per true-energy bin: exposure x integral of dR/dE (Gauss-Legendre per bin)."""
    x, w = np.polynomial.legendre.leggauss(points_per_bin)
    lo, hi = edges_kev[:-1], edges_kev[1:]
    half = 0.5 * (hi - lo)
    e = (0.5 * (hi + lo))[:, None] + half[:, None] * x[None, :]
    rate = rate_si(e.ravel(), mass_gev=mass_gev, cross_section_cm2=cross_section_cm2, halo=halo).reshape(e.shape)
    return exposure_t_yr * (rate * w[None, :]).sum(axis=1) * half


def reference_cross_section(events_at_1e45: float, target_events: float) -> float:
    """The power of ten nearest (in log) to the cross section giving ``target_events`` [cm^2]."""
    if events_at_1e45 <= 0:
        return 1e-40
    return 10.0 ** round(math.log10(TABULATION_CROSS_SECTION_CM2 * target_events / events_at_1e45))


def build_signal(*, config: AnalysisConfig, response: ResponseMatrix, exposure_t_yr: float) -> dict[str, Any]:
    """Signal templates for the mass grid (``signal.json`` document)."""
    halo = halo_from_config(config)
    target = config["signal"]["target_events_at_reference"]
    masses, refs, expected, templates = [], [], [], []
    for m in config.masses_gev:
        per_e = counts_per_energy_bin(response.energy_edges_kev, mass_gev=m, cross_section_cm2=TABULATION_CROSS_SECTION_CM2,
                                      halo=halo, exposure_t_yr=exposure_t_yr)
        tmpl45 = response.fold(per_e)
        ref = reference_cross_section(float(tmpl45.sum()), target)
        tmpl = tmpl45 * (ref / TABULATION_CROSS_SECTION_CM2)
        masses.append(m)
        refs.append(ref)
        expected.append(float(tmpl.sum()))
        templates.append(tmpl.tolist())
    return {"masses_gev": masses, "reference_cross_section_cm2": refs, "expected_events": expected,
            "templates": templates, "exposure_t_yr": exposure_t_yr,
            "halo": dataclasses.asdict(halo), "model": "spin-independent elastic WIMP-nucleon scattering, "
            "standard halo model, Helm form factor (Baxter et al., EPJC 81 (2021) 907)",
            "units": {"expected_events": "events", "reference_cross_section_cm2": "cm^2 (WIMP-nucleon)"}}


def spectra_rows(config: AnalysisConfig, *, points: int = 200) -> list[tuple[float, float, float]]:
    """Rows (mass_gev, energy_kev, dr_de) of the tabulated spectra at 1e-45 cm^2 [events/(t yr keV)]."""
    halo = halo_from_config(config)
    e = config.signal_energy_edges_kev
    grid = np.linspace(e[0], e[-1], points)
    rows = []
    for m in config.masses_gev:
        rate = rate_si(grid, mass_gev=m, cross_section_cm2=TABULATION_CROSS_SECTION_CM2, halo=halo)
        rows.extend((m, float(x), float(r)) for x, r in zip(grid, rate))
    return rows
