"""Physical constants and unit conversions used by :mod:`dmpreserve.physics`.

Every name carries its unit. Values are CODATA 2018 (exact SI definitions where they exist)
and PDG; the source of each is given next to it. Nothing here is mutable.
"""

from __future__ import annotations

import math

# --- exact SI definitions -------------------------------------------------------------
SPEED_OF_LIGHT_M_S = 299_792_458.0
"""Speed of light in vacuum [m/s] (exact)."""
SPEED_OF_LIGHT_KM_S = SPEED_OF_LIGHT_M_S / 1e3
"""Speed of light in vacuum [km/s]."""
ELEMENTARY_CHARGE_C = 1.602_176_634e-19
"""Elementary charge [C] (exact); also joules per electronvolt."""
KEV_TO_J = ELEMENTARY_CHARGE_C * 1e3
"""Joules per keV [J/keV]."""
GEV_TO_J = ELEMENTARY_CHARGE_C * 1e9
"""Joules per GeV [J/GeV]."""
AVOGADRO_PER_MOL = 6.022_140_76e23
"""Avogadro constant [1/mol] (exact)."""

# --- masses ------------------------------------------------------------------------------
GEV_TO_KG = GEV_TO_J / SPEED_OF_LIGHT_M_S**2
"""Mass of 1 GeV/c^2 in kilograms [kg per GeV/c^2] (= 1.78266192e-27)."""
AMU_GEV = 0.931_494_102_42
"""Atomic mass unit [GeV/c^2] (CODATA 2018)."""
AMU_KG = 1.660_539_066_60e-27
"""Atomic mass unit [kg] (CODATA 2018)."""
PROTON_MASS_GEV = 0.938_272_088_16
"""Proton mass [GeV/c^2] (CODATA 2018)."""
NEUTRON_MASS_GEV = 0.939_565_420_52
"""Neutron mass [GeV/c^2] (CODATA 2018)."""

# --- quantum / electroweak -------------------------------------------------------------
HBAR_C_GEV_FM = 0.197_326_980_4
"""hbar * c [GeV fm] (CODATA 2018)."""
HBAR_C_GEV_CM = HBAR_C_GEV_FM * 1e-13
"""hbar * c [GeV cm]."""
HBAR_C_SQ_GEV2_CM2 = HBAR_C_GEV_CM**2
"""(hbar c)^2 [GeV^2 cm^2] (= 0.3893794e-27); converts GeV^-2 to cm^2."""
FERMI_CONSTANT_GEV_M2 = 1.166_378_7e-5
"""Fermi constant G_F / (hbar c)^3 [GeV^-2] (PDG)."""
SIN2_THETA_W_LOW_Q2 = 0.2387
"""Weak mixing angle sin^2(theta_W) in the MS-bar scheme at Q^2 -> 0 (the low-momentum-transfer
value appropriate for CEvNS; PDG quotes sin^2(theta_W)(0) = 0.23857(5), and 0.2387 is the rounded
value used for CEvNS backgrounds in Baxter et al., EPJC 81 (2021) 907). The difference changes the
xenon weak charge by < 0.1 %."""
XENON_ATOMIC_NUMBER = 54
"""Proton number Z of xenon."""

# --- time / exposure -------------------------------------------------------------------
SECONDS_PER_DAY = 86_400.0
"""Seconds per day [s]."""
DAYS_PER_YEAR = 365.25
"""Julian year [days]."""
SECONDS_PER_YEAR = DAYS_PER_YEAR * SECONDS_PER_DAY
"""Seconds per Julian year [s] (= 31 557 600)."""
TONNE_KG = 1000.0
"""Kilograms per metric tonne [kg]."""

SQRT_PI = math.sqrt(math.pi)
"""sqrt(pi), dimensionless."""
