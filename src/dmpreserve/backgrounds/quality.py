"""How well a template's shape is sampled: the no-floor criterion of the background model.

A template made from N simulated (or sampled) events has a per-bin statistical uncertainty
sigma_k; for events of equal weight the bin rests on n_k = (t_k / sigma_k)^2 raw events (Kish's
effective number for weighted ones).  A shape is *well sampled* when the bins resting on fewer than
:data:`MIN_EVENTS_PER_BIN` events carry less than :data:`MAX_POORLY_SAMPLED_FRACTION` of its expected
events.  This replaces the old per-bin floor: nothing is added to any bin; instead a component with
more than one expected event must pass this test (tests/unit/backgrounds/test_default_shapes.py runs it
on the default configuration's outputs).
"""

from __future__ import annotations

import numpy as np

#: Effective simulated events below which a bin counts as poorly sampled.
MIN_EVENTS_PER_BIN = 10
#: Largest fraction of a component's expected events allowed in poorly sampled bins.
MAX_POORLY_SAMPLED_FRACTION = 0.01


def effective_events(template: np.ndarray, stat_err: np.ndarray) -> np.ndarray:
    """(t / sigma)^2 per bin: the raw events a bin rests on (inf where sigma is 0 and t > 0; 0 where t is 0)."""
    t, s = np.ravel(np.asarray(template, float)), np.ravel(np.asarray(stat_err, float))
    with np.errstate(divide="ignore", invalid="ignore"):
        n = np.where(s > 0, (t / np.where(s > 0, s, 1.0)) ** 2, np.inf)
    return np.where(t > 0, n, 0.0)


def poorly_sampled_fraction(
    template: np.ndarray, stat_err: np.ndarray | None, *, min_events: float = MIN_EVENTS_PER_BIN
) -> float:
    """Fraction of the template's expected events in bins resting on fewer than ``min_events`` raw events.

    Returns 0 for a template without statistical uncertainty (None) or without events.
    """
    if stat_err is None:
        return 0.0
    t = np.ravel(np.asarray(template, float))
    total = float(t.sum())
    if total <= 0:
        return 0.0
    return float(t[effective_events(t, stat_err) < min_events].sum() / total)
