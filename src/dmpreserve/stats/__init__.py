"""Steps 5-7, statistics of the serialized likelihood: limits in the direct-detection and LHC conventions.

* :mod:`.workspace` -- building the pyhf background-only workspace and signal patchset (``likelihood``);
* :mod:`.fit` -- iminuit fits of the pyhf model: pulls, correlations, MINOS, POI scan, goodness of fit (``fit``);
* :mod:`.model` -- the workspace + patch as a vectorized numpy model (normsys code4, POI normfactor), NLL
  with exact derivatives for batches of rows;
* :mod:`.newton` -- batched bounded Newton minimization;
* :mod:`.teststat` -- t~mu, q~mu, q0 and the background-only Asimov dataset;
* :mod:`.asymptotic` -- asymptotic CLs / Neyman limits, bands, p0 (Cowan et al. 2011);
* :mod:`.toys` -- toy Monte Carlo: Neyman thresholds, sensitivity bands, p0;
* :mod:`.reference` -- pyhf's model of the same workspace (validation);
* :mod:`.limits` -- the per-mass results, ``limits.csv`` rows, the scatter/gather point files (``limits``).
"""
