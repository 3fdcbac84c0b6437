"""Physics inputs of the analysis: dark-matter halo, WIMP and neutrino recoil spectra, neutron shapes.

Conventions (halo parameters, units, normalisations) are documented in each module and in
docs/physics.md. All rates are per tonne of natural xenon, per Julian year, per keV of nuclear-recoil
energy.

Import from the modules (``dmpreserve.physics.halo``, ``.wimp``, ``.neutrinos``, ...): this package
imports none of them, so that a step needing only the mass grid (:mod:`dmpreserve.physics.grids`, via
the configuration) does not pay for SciPy (about 0.5 s per scattered ``select-part`` job, measured with
``python -X importtime``).
"""
