"""Fast statistics of the serialized likelihood (issue 3): limits in the direct-detection and LHC conventions.

* :mod:`dmpreserve.stats.model` -- the workspace + patch as a vectorized numpy model (normsys code4,
  POI normfactor), NLL with exact derivatives for batches of rows;
* :mod:`dmpreserve.stats.newton` -- batched bounded Newton minimization;
* :mod:`dmpreserve.stats.teststat` -- t~mu, q~mu, q0 and the background-only Asimov dataset;
* :mod:`dmpreserve.stats.asymptotic` -- asymptotic CLs / Neyman limits, bands, p0 (Cowan et al. 2011);
* :mod:`dmpreserve.stats.toys` -- toy Monte Carlo: Neyman thresholds, sensitivity bands, p0;
* :mod:`dmpreserve.stats.reference` -- pyhf's model of the same workspace (validation);
* :mod:`dmpreserve.cli.stats_handlers` -- ``dmpreserve limits`` / ``limits-point``.

:mod:`dmpreserve.stats.limits` assembles these into the per-mass results and ``limits.csv``.
"""
