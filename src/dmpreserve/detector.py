"""Detector response with NEST (nestpy): true energy deposits -> reduced-data quantities.

The microphysics (quanta, recombination, fluctuations) and the detector response (g1, g2,
electron lifetime, S1 light collection, S2 extraction and gain) are nestpy's, with one of its
bundled detectors (default ``LZ_WS2022``, LZ's first science run).  On top of NEST we add the
reconstructed x-y position, smeared with a radial resolution that worsens for small S2s,
sigma = a * sqrt(1000 phd / S2) + b per coordinate.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

#: Radial position-resolution parameters [cm] (sigma per coordinate at S2 = 1000 phd, and floor).
POSITION_RESOLUTION_CM = {"a_cm": 1.2, "b_cm": 0.1}
MOLAR_MASS_XE = 131.293
Z_XE = 54.0


def _nestpy():
    import nestpy  # heavy import, only where NEST is needed

    return nestpy


@dataclasses.dataclass(frozen=True)
class DetectorParameters:
    """Parameters of a TPC as NEST models it (units in the names)."""

    name: str
    g1_phd_per_photon: float
    g2_phd_per_electron: float
    electron_lifetime_us: float
    drift_velocity_mm_per_us: float
    drift_field_v_per_cm: float
    lxe_density_g_cm3: float
    wall_radius_cm: float
    gate_mm: float
    cathode_mm: float

    @property
    def drift_time_max_us(self) -> float:
        """Drift time from the cathode to the gate [us]."""
        return (self.gate_mm - self.cathode_mm) / self.drift_velocity_mm_per_us

    def sidecar(self) -> dict[str, Any]:
        """The ``detector`` section of a reduced-data sidecar."""
        d = {k: v for k, v in dataclasses.asdict(self).items() if k not in ("gate_mm", "cathode_mm")}
        d["position_resolution_cm"] = dict(POSITION_RESOLUTION_CM)
        return d

    def active_volume(self) -> dict[str, float]:
        """The ``active_volume`` section of a sidecar."""
        return {"r_max_cm": self.wall_radius_cm, "drift_time_min_us": 0.0, "drift_time_max_us": self.drift_time_max_us}


#: nestpy's default NRERWidthsParam (13 values); an 11-value vector (NEST v2.4.0) is completed with the last two.
_NESTPY_WIDTHS_TAIL = (0.0, 0.0)


def _nest_vectors(params: dict[str, Any]) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Keyword arguments of nestpy's GetYields and GetQuanta for the configured NEST vectors."""
    yk: dict[str, list[float]] = {}
    qk: dict[str, list[float]] = {}
    if "nr_yields" in params:
        yk["nr_parameters"] = [float(v) for v in params["nr_yields"]]
    if "er_yields" in params:
        yk["er_parameters"] = [float(v) for v in params["er_yields"]]
    if "nr_er_widths" in params:
        widths = [float(v) for v in params["nr_er_widths"]]
        qk["nr_er_width_parameters"] = widths + list(_NESTPY_WIDTHS_TAIL[: max(0, 13 - len(widths))])
    return yk, qk


class NestDetector:
    """A nestpy detector plus the calculator that simulates events in it.

    Args:
        name: A nestpy bundled detector (``LZ_WS2022``, ``LZ_WS2024``, ``LUX_Run03``, ``DetectorExample_XENON10``).
        nest_parameters: Optional NEST model vectors replacing nestpy's defaults (config ``mdc.nest_parameters``):
            ``nr_yields`` (NEST's NRYieldsParam, 12 values), ``er_yields`` (ERYieldsParam, 10 values),
            ``nr_er_widths`` (NRERWidthsParam: 11 values as NEST v2.4.0 and LZ's detector files give them, or
            nestpy's 13; 11 are completed with nestpy's last two defaults).  E.g. LZ's calibration-tuned
            vectors from the header released with WS2024 (LZ_WS2024.hh).
    """

    def __init__(self, name: str, nest_parameters: dict[str, Any] | None = None):
        nestpy = _nestpy()
        self._nestpy = nestpy
        self._yield_kwargs, self._quanta_kwargs = _nest_vectors(nest_parameters or {})
        self.det = getattr(nestpy.detectors, name)()
        self.calc = nestpy.NESTcalc(self.det)
        det = self.det
        self.density = self.calc.GetDensity(T=det.get_T_Kelvin(), P=det.get_p_bar(), inGas=False)
        self.g2_params = list(self.calc.CalculateG2(0))
        centre_mm = 0.5 * (det.get_gate() + det.get_cathode())
        field = det.FitEF(0.0, 0.0, centre_mm)
        self.drift_velocity = self.calc.SetDriftVelocity(det.get_T_Kelvin(), self.density, field, det.get_p_bar())
        self.params = DetectorParameters(
            name=name,
            g1_phd_per_photon=float(det.get_g1()),
            g2_phd_per_electron=float(self.g2_params[3]),
            electron_lifetime_us=float(det.get_eLife_us()),
            drift_velocity_mm_per_us=float(self.drift_velocity),
            drift_field_v_per_cm=float(field),
            lxe_density_g_cm3=float(self.density),
            wall_radius_cm=float(det.get_radmax()) / 10.0,
            gate_mm=float(det.get_gate()),
            cathode_mm=float(det.get_cathode()),
        )

    def seed(self, seed: int) -> None:
        """Seed NEST's (global) random generator."""
        self._nestpy.RandomGen.rndm().set_seed(int(seed))

    def _interaction(self, species: str):
        it = self._nestpy.interactions
        return {"er": it.beta, "nr": it.NR}[species]

    def random_positions(
        self, n: int, rng: np.random.Generator, *, r_max_cm: float | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Positions uniform in the active volume (or a cylinder of radius ``r_max_cm``): x, y [cm], z [mm]."""
        r_max = self.params.wall_radius_cm if r_max_cm is None else r_max_cm
        r = r_max * np.sqrt(rng.uniform(0.0, 1.0, n))
        phi = rng.uniform(0.0, 2 * np.pi, n)
        z_mm = rng.uniform(self.params.cathode_mm, self.params.gate_mm, n)
        return r * np.cos(phi), r * np.sin(phi), z_mm

    def simulate(
        self,
        energy_kev: np.ndarray,
        species: str | np.ndarray,
        x_cm: np.ndarray,
        y_cm: np.ndarray,
        z_mm: np.ndarray,
        rng: np.random.Generator,
        *,
        electron_survival: np.ndarray | None = None,
    ) -> dict[str, np.ndarray]:
        """Simulate S1 and S2 of single-scatter deposits.

        Args:
            energy_kev: Deposited energies [keV] (keVee for ER, keVnr for NR).
            species: ``"er"`` or ``"nr"`` (scalar or one per event).
            x_cm, y_cm, z_mm: True positions (z from the cathode, in mm as NEST wants it).
            rng: Generator for the position reconstruction.
            electron_survival: Optional per-event fraction of electrons surviving (charge loss at the wall).

        Returns:
            Columns ``s1_phd, s2_phd, cs1_phd, cs2_phd, drift_time_us, x_cm, y_cm, s1_coincidence`` and a
            boolean ``valid`` (both an S1 and an S2 were seen).
        """
        nestpy, calc, det = self._nestpy, self.calc, self.det
        n = len(energy_kev)
        species_arr = np.broadcast_to(np.asarray(species), (n,))
        out = {k: np.zeros(n) for k in ("s1_phd", "s2_phd", "cs1_phd", "cs2_phd", "drift_time_us")}
        out["s1_coincidence"] = np.zeros(n, dtype=np.int64)
        dv, gate = self.drift_velocity, self.params.gate_mm
        s1_mode, s2_mode = nestpy.S1CalculationMode.Hybrid, nestpy.S2CalculationMode.Full
        wf_t, wf_a = [0], [0.0]
        kinds = {s: self._interaction(s) for s in np.unique(species_arr)}
        survival = np.ones(n) if electron_survival is None else np.asarray(electron_survival)
        for i in range(n):
            e = float(energy_kev[i])
            itype = kinds[species_arr[i]]
            xm, ym, zm = 10.0 * float(x_cm[i]), 10.0 * float(y_cm[i]), float(z_mm[i])
            field = det.FitEF(xm, ym, zm)
            yields = calc.GetYields(itype, e, self.density, field, MOLAR_MASS_XE, Z_XE, **self._yield_kwargs)
            quanta = calc.GetQuanta(yields, self.density, **self._quanta_kwargs)
            dt = (gate - zm) / dv
            electrons = quanta.electrons
            if survival[i] < 1.0:
                electrons = int(rng.binomial(max(electrons, 0), survival[i]))
            s1 = calc.GetS1(quanta, xm, ym, zm, xm, ym, zm, dv, dv, itype, i, field, e, s1_mode, 0, wf_t, wf_a)
            s2 = calc.GetS2(electrons, xm, ym, zm, xm, ym, zm, dt, dv, i, field, s2_mode, 0, wf_t, wf_a, self.g2_params)
            out["s1_coincidence"][i] = int(s1[0])
            out["s1_phd"][i], out["cs1_phd"][i] = s1[4], s1[5]
            out["s2_phd"][i], out["cs2_phd"][i] = s2[6], s2[7]
            out["drift_time_us"][i] = dt
        out["x_cm"], out["y_cm"] = self.reconstruct_xy(x_cm, y_cm, out["s2_phd"], rng)
        out["valid"] = (out["s1_phd"] > 0) & (out["s2_phd"] > 0) & (out["cs1_phd"] > 0) & (out["cs2_phd"] > 0)
        return out

    def reconstruct_xy(
        self, x_cm: np.ndarray, y_cm: np.ndarray, s2_phd: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Smear true x-y [cm] with the S2-dependent position resolution."""
        sigma = position_resolution_cm(np.maximum(s2_phd, 1.0))
        return (
            np.asarray(x_cm) + sigma * rng.standard_normal(len(sigma)),
            np.asarray(y_cm) + sigma * rng.standard_normal(len(sigma)),
        )

    def correction_factors(
        self, x_cm: np.ndarray, y_cm: np.ndarray, drift_time_us: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """NEST's S1 and S2 position corrections (corrected / raw) at reconstructed positions.

        Evaluated with a large ER deposit so that the ratio is free of counting noise.
        """
        nestpy, calc, det = self._nestpy, self.calc, self.det
        itype = nestpy.interactions.beta
        c1, c2 = np.ones(len(x_cm)), np.ones(len(x_cm))
        for i in range(len(x_cm)):
            xm, ym = 10.0 * float(x_cm[i]), 10.0 * float(y_cm[i])
            zm = self.params.gate_mm - float(drift_time_us[i]) * self.drift_velocity
            field = det.FitEF(xm, ym, zm)
            quanta = calc.GetQuanta(
                calc.GetYields(itype, 200.0, self.density, field, MOLAR_MASS_XE, Z_XE), self.density
            )
            s1 = calc.GetS1(
                quanta,
                xm,
                ym,
                zm,
                xm,
                ym,
                zm,
                self.drift_velocity,
                self.drift_velocity,
                itype,
                i,
                field,
                200.0,
                nestpy.S1CalculationMode.Hybrid,
                0,
                [0],
                [0.0],
            )
            s2 = calc.GetS2(
                quanta.electrons,
                xm,
                ym,
                zm,
                xm,
                ym,
                zm,
                float(drift_time_us[i]),
                self.drift_velocity,
                i,
                field,
                nestpy.S2CalculationMode.Full,
                0,
                [0],
                [0.0],
                self.g2_params,
            )
            c1[i] = s1[5] / s1[4] if s1[4] > 0 else 1.0
            c2[i] = s2[7] / s2[6] if s2[6] > 0 else 1.0
        return c1, c2


def position_resolution_cm(
    s2_phd: np.ndarray, *, a_cm: float = POSITION_RESOLUTION_CM["a_cm"], b_cm: float = POSITION_RESOLUTION_CM["b_cm"]
) -> np.ndarray:
    """Per-coordinate position resolution [cm] for raw S2 areas [phd]."""
    return a_cm * np.sqrt(1000.0 / np.asarray(s2_phd, dtype=float)) + b_cm


def fiducial_mass_t(
    *,
    density_g_cm3: float,
    drift_velocity_mm_per_us: float,
    r_max_cm: float,
    drift_time_min_us: float,
    drift_time_max_us: float,
) -> float:
    """Mass of a cylindrical fiducial volume defined by radius and drift-time cuts [t].

    Args:
        density_g_cm3: Liquid-xenon density [g/cm^3].
        drift_velocity_mm_per_us: Electron drift velocity [mm/us] (drift time -> depth).
        r_max_cm: Fiducial radius [cm].
        drift_time_min_us, drift_time_max_us: Drift-time window [us].
    """
    height_cm = (drift_time_max_us - drift_time_min_us) * drift_velocity_mm_per_us / 10.0
    return density_g_cm3 * np.pi * r_max_cm**2 * height_cm / 1e6


def active_mass_t(det: NestDetector) -> float:
    """Mass of liquid xenon between cathode and gate inside the wall [t]."""
    p = det.params
    height_cm = (p.gate_mm - p.cathode_mm) / 10.0
    return p.lxe_density_g_cm3 * np.pi * p.wall_radius_cm**2 * height_cm / 1e6
