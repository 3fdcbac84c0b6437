"""Reinterpretation of the preserved result under new signal models, and verification of limit curves.

Modules: :mod:`.kit` (assembling and loading the published kit), :mod:`.engine` (templates, patchset,
limits for a new model), :mod:`.outputs`, :mod:`.xenon1t` (binwise approximate likelihood backend),
:mod:`.verify` (curve comparison).  The signal models themselves live in
:mod:`dmpreserve.physics.signal_models`; the subcommands in :mod:`dmpreserve.cli.reinterpret`.
"""
