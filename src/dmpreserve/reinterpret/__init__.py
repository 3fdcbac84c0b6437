"""Reinterpretation of the preserved result under new signal models, and verification of limit curves.

Modules: :mod:`~dmpreserve.physics.signal_models` (built-in models, user spectra),
:mod:`~dmpreserve.reinterpret.kit` (the published kit), :mod:`~dmpreserve.reinterpret.engine`
(templates, patchset, limits), :mod:`~dmpreserve.reinterpret.outputs`,
:mod:`~dmpreserve.reinterpret.xenon1t` (binwise approximate likelihood backend),
:mod:`~dmpreserve.reinterpret.verify` (curve comparison), :mod:`~dmpreserve.cli.reinterpret_handlers` (CLI).
"""
