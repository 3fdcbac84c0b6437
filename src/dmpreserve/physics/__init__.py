"""Physics inputs of the analysis: dark-matter halo, WIMP and neutrino recoil spectra, neutron shapes.

Conventions (halo parameters, units, normalisations) are documented in each module and in the
README section "Physics conventions". All rates are per tonne of natural xenon, per Julian year,
per keV of nuclear-recoil energy.
"""

from dmpreserve.physics.halo import StandardHalo, mean_inverse_speed, speed_distribution
from dmpreserve.physics.neutrinos import (
    B8_FLUX_CM2_S,
    b8_cevns_kernel,
    b8_mean_energy_mev,
    b8_spectrum,
    rate_cevns_8b,
    weak_charge,
)
from dmpreserve.physics.neutrons import (
    NEUTRON_E_FOLD_KEV,
    dd_calibration_spectrum_shape,
    dd_max_recoil_kev,
    neutron_spectrum_shape,
)
from dmpreserve.physics.wimp import (
    XENON_ISOTOPES,
    Isotope,
    SpectrumTable,
    helm_form_factor_sq,
    max_recoil_energy_kev,
    parse_energy_range,
    rate_si,
    rate_si_isotope,
    reduced_mass_gev,
    spectrum_table,
    xenon_mass_fractions,
)

__all__ = [
    "B8_FLUX_CM2_S",
    "NEUTRON_E_FOLD_KEV",
    "XENON_ISOTOPES",
    "Isotope",
    "SpectrumTable",
    "StandardHalo",
    "b8_cevns_kernel",
    "b8_mean_energy_mev",
    "b8_spectrum",
    "dd_calibration_spectrum_shape",
    "dd_max_recoil_kev",
    "helm_form_factor_sq",
    "max_recoil_energy_kev",
    "mean_inverse_speed",
    "neutron_spectrum_shape",
    "parse_energy_range",
    "rate_cevns_8b",
    "rate_si",
    "rate_si_isotope",
    "reduced_mass_gev",
    "spectrum_table",
    "speed_distribution",
    "weak_charge",
    "xenon_mass_fractions",
]
