"""The Newton minimiser's backtracking (:func:`dmpreserve.stats.newton._halve`) against one halving at a time."""

from __future__ import annotations

import dataclasses

import numpy as np

from dmpreserve.stats.newton import _halve


@dataclasses.dataclass
class _Kinked:
    """NLL |x - 0.3| + 40 |y| on [-1, 2] x [-1, 1]: full Newton-like steps overshoot the kinks by a lot."""

    lower: np.ndarray = dataclasses.field(default_factory=lambda: np.array([-1.0, -1.0]))
    upper: np.ndarray = dataclasses.field(default_factory=lambda: np.array([2.0, 1.0]))
    calls: int = 0

    def nll(self, theta, data, aux):
        self.calls += 1
        return np.abs(theta[:, 0] - 0.3) + 40.0 * np.abs(theta[:, 1]) + 0.0 * data[:, 0] + 0.0 * aux[:, 0]


def _sequential(model, th, step, f0, data, aux):
    """The textbook loop: halve each failing row's step until the NLL does not rise (at most 30 times)."""
    scale = np.ones(th.shape[0])
    new = np.clip(th + step, model.lower, model.upper)
    f_new = model.nll(new, data, aux)
    for _ in range(30):
        bad = ~(f_new <= f0 + 1e-12 * np.abs(f0))
        if not bad.any():
            break
        scale[bad] *= 0.5
        new[bad] = np.clip(th[bad] + scale[bad, None] * step[bad], model.lower, model.upper)
        f_new[bad] = model.nll(new[bad], data[bad], aux[bad])
    return new, f_new, scale


def test_batched_halving_picks_the_same_step_as_one_halving_at_a_time() -> None:
    rng = np.random.default_rng(5)
    n = 200
    th = np.column_stack([rng.uniform(-0.5, 1.0, n), rng.uniform(-1e-3, 1e-3, n)])
    # steps from tiny to 1e7 times too long; some rows cannot improve at all (step away from the minimum)
    step = np.column_stack([rng.normal(0, 1, n), rng.normal(0, 1, n)]) * 10.0 ** rng.uniform(-6, 7, (n, 1))
    step[:10] = np.abs(step[:10]) * np.sign(th[:10] - [0.3, 0.0])
    data, aux = np.zeros((n, 1)), np.zeros((n, 1))
    ref_model, model = _Kinked(), _Kinked()
    f0 = ref_model.nll(th, data, aux)
    want_new, want_f, want_scale = _sequential(ref_model, th, step, f0, data, aux)
    new = np.clip(th + step, model.lower, model.upper)
    f_new = model.nll(new, data, aux)
    scale = np.ones(n)
    _halve(model, th, step, f0, data, aux, new, f_new, scale, model.lower, model.upper)
    np.testing.assert_array_equal(scale, want_scale)
    np.testing.assert_array_equal(new, want_new)
    np.testing.assert_array_equal(f_new, want_f)
    assert (want_scale < 2.0**-10).sum() > 5  # the case the batching is for: many halvings
    assert (want_scale == 2.0**-30).sum() >= 10  # and rows that find no decrease
    assert model.calls < ref_model.calls / 3
