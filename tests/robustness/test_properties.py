"""Property-based tests (hypothesis): selection engine, spectrum folding, workspace building.

Properties, for arbitrary (generated) inputs:

* selection: the mask of all cuts is the AND of the single-cut masks and does not depend on the
  order of the cuts; the cut flow starts at the number of events and never increases; every cut keeps
  exactly ``min <= value < max``; the streaming (Arrow) engine selects the same events and counts the
  same cut flow as the in-memory engine;
* folding: folding through the response matrix is linear, non-negative and never creates events
  (rows of the matrix are probabilities); the per-energy-bin integral is additive when a bin is split
  and scales with exposure;
* workspaces: any non-negative templates give a pyhf-valid workspace whose background-only expected
  data is the sum of the templates, and a patchset whose digest verifies and whose patches give
  valid signal-plus-background workspaces.
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pyhf
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from dmpreserve.artifacts.reduced import ReducedData
from dmpreserve.artifacts.signal_templates import SignalTemplates
from dmpreserve.artifacts.templates import BackgroundTemplates
from dmpreserve.config import Binning
from dmpreserve.errors import InvalidWorkspace
from dmpreserve.selection.cuts import VARIABLES, Cut, apply_cuts
from dmpreserve.signals import ResponseMatrix, counts_per_energy_bin
from dmpreserve.stats.workspace import apply_patch, build_patchset, build_workspace, validate_workspace

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

finite = st.floats(min_value=-1e4, max_value=1e4, allow_nan=False, allow_infinity=False)
positive = st.floats(min_value=1e-3, max_value=1e4, allow_nan=False, allow_infinity=False)


@st.composite
def reduced_data(draw) -> ReducedData:
    """A science-like table with every column a cut may use (values chosen to hit the cut edges)."""
    n = draw(st.integers(min_value=0, max_value=60))
    grid = st.sampled_from([0.0, 1.0, 2.5, 10.0, 100.0, 1000.0])  # repeated values: ties at cut edges
    value = st.one_of(grid, st.floats(min_value=0.0, max_value=2e3, allow_nan=False))
    cols = {
        name: np.asarray(draw(st.lists(value, min_size=n, max_size=n)), dtype=float)
        for name in ("s1_phd", "s2_phd", "cs1_phd", "cs2_phd", "drift_time_us")
    }
    signed = st.one_of(grid, st.floats(min_value=-80.0, max_value=80.0, allow_nan=False))
    for name in ("x_cm", "y_cm"):
        cols[name] = np.asarray(draw(st.lists(signed, min_size=n, max_size=n)), dtype=float)
    cols["s1_coincidence"] = np.asarray(draw(st.lists(st.integers(0, 30), min_size=n, max_size=n)), dtype=np.int64)
    cols["event_id"] = np.arange(n, dtype=np.int64)
    return ReducedData(columns=cols, meta={"n_events": n, "kind": "science"}, path="<generated>")


@st.composite
def cuts(draw, *, min_size: int = 0) -> list[Cut]:
    out = []
    for i in range(draw(st.integers(min_value=min_size, max_value=5))):
        lo = draw(st.one_of(st.just(-math.inf), finite))
        hi = draw(st.one_of(st.just(math.inf), finite))
        out.append(Cut(name=f"c{i}", kind="quality", variable=draw(st.sampled_from(VARIABLES)), lower=lo, upper=hi))
    return out


# ----------------------------------------------------------------------------------- selection


@SETTINGS
@given(data=reduced_data(), cut_list=cuts(), seed=st.integers(0, 2**32 - 1))
def test_selection_is_the_and_of_cuts_in_any_order(data: ReducedData, cut_list: list[Cut], seed: int) -> None:
    mask, flow = apply_cuts(data, cut_list)
    expected = np.ones(len(data), bool)
    for cut in cut_list:
        values = data.variable(cut.variable)
        single = cut.mask(data)
        with np.errstate(invalid="ignore"):
            np.testing.assert_array_equal(single, (values >= cut.lower) & (values < cut.upper))
        expected &= single
    np.testing.assert_array_equal(mask, expected)
    shuffled = list(np.random.default_rng(seed).permutation(len(cut_list))) if cut_list else []
    mask2, _ = apply_cuts(data, [cut_list[i] for i in shuffled])
    np.testing.assert_array_equal(mask, mask2)
    assert flow.events[0] == len(data)
    assert all(a >= b for a, b in zip(flow.events, flow.events[1:]))
    assert flow.events[-1] == int(mask.sum())
    assert all(0.0 <= e <= 1.0 for e in flow.efficiency_cumulative + flow.efficiency_step)


@SETTINGS
@given(data=reduced_data(), cut_list=cuts(min_size=1))
def test_streaming_engine_agrees_with_in_memory_engine(
    tmp_path_factory, data: ReducedData, cut_list: list[Cut]
) -> None:
    from dmpreserve.selection.stream import select_stream

    path = tmp_path_factory.mktemp("stream") / "data.parquet"
    pq.write_table(pa.table(dict(data.columns)), path)
    mask, flow = apply_cuts(data, cut_list)
    result = select_stream(str(path), cut_list, batch_rows=7, use_threads=False)
    assert result.n_events == len(data)
    assert result.n_selected == int(mask.sum())
    assert tuple(result.cutflow.events) == tuple(flow.events)
    np.testing.assert_array_equal(np.sort(result.table.column("event_id").to_numpy()), data.columns["event_id"][mask])


@SETTINGS
@given(variable=st.sampled_from(["eval", "__import__('os')", "r_cm; rm -rf /", "cs1_phd or True", ""]))
def test_cut_on_unknown_variable_is_refused(variable: str) -> None:
    from dmpreserve.errors import InvalidConfig

    with pytest.raises(InvalidConfig):
        Cut(name="x", kind="quality", variable=variable)


# ------------------------------------------------------------------------------------- folding


@st.composite
def responses(draw) -> ResponseMatrix:
    n_e = draw(st.integers(1, 8))
    n1, n2 = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    probs = draw(hnp.arrays(float, (n_e, n1 * n2 + 1), elements=st.floats(0.0, 1.0)))
    # each row: P(pass and land in bin k); the extra column is P(fail) -> rows sum to at most 1
    total = probs.sum(axis=1, keepdims=True)
    matrix = np.where(total > 0, probs / np.where(total > 0, total, 1.0), 0.0)[:, :-1]
    binning = Binning(tuple(np.linspace(0.0, 10.0, n1 + 1)), tuple(np.linspace(2.0, 4.0, n2 + 1)))
    return ResponseMatrix(np.linspace(1.0, 50.0, n_e + 1), binning, matrix, np.zeros_like(matrix))


@SETTINGS
@given(resp=responses(), data=st.data())
def test_folding_is_linear_non_negative_and_creates_no_events(resp: ResponseMatrix, data) -> None:
    n_e = resp.matrix.shape[0]
    counts = st.floats(0.0, 1e6, allow_nan=False)
    x = data.draw(hnp.arrays(float, n_e, elements=counts))
    y = data.draw(hnp.arrays(float, n_e, elements=counts))
    a, b = data.draw(positive), data.draw(positive)
    fx, fy = resp.fold(x), resp.fold(y)
    assert fx.shape == (resp.binning.n_bins,)
    assert np.all(fx >= 0)
    assert fx.sum() <= x.sum() * (1 + 1e-12) + 1e-300
    np.testing.assert_allclose(resp.fold(a * x + b * y), a * fx + b * fy, rtol=1e-9, atol=1e-9 * (a + b) * 1e6)


def _flat(e: np.ndarray) -> np.ndarray:
    return 3.0 + 0.0 * e


def _falling(e: np.ndarray) -> np.ndarray:
    return 50.0 * np.exp(-e / 7.0)


@SETTINGS
@given(
    lo=st.floats(0.0, 50.0),
    width=st.floats(0.01, 50.0),
    split=st.floats(0.05, 0.95),
    exposure=st.floats(1e-3, 1e3),
    rate=st.sampled_from([_flat, _falling]),
)
def test_energy_bin_integral_is_additive_and_scales_with_exposure(
    lo: float, width: float, split: float, exposure: float, rate
) -> None:
    edges = np.array([lo, lo + width])
    whole = counts_per_energy_bin(edges, exposure_t_yr=exposure, rate=rate)
    parts = counts_per_energy_bin(np.array([lo, lo + split * width, lo + width]), exposure_t_yr=exposure, rate=rate)
    np.testing.assert_allclose(parts.sum(), whole[0], rtol=1e-9)
    np.testing.assert_allclose(
        counts_per_energy_bin(edges, exposure_t_yr=2 * exposure, rate=rate), 2 * whole, rtol=1e-12
    )
    if rate is _flat:
        np.testing.assert_allclose(whole[0], 3.0 * width * exposure, rtol=1e-12)


# ------------------------------------------------------------------------------------ workspace


@st.composite
def templates_docs(draw) -> dict:
    n1, n2 = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    names = draw(
        st.lists(
            st.sampled_from(["er", "neutron", "cevns_8b", "accidental", "wall"]), min_size=1, max_size=5, unique=True
        )
    )
    level = st.floats(0.0, 1e3, allow_nan=False)
    comps = {}
    for name in names:
        tmpl = draw(hnp.arrays(float, (n1, n2), elements=level))
        tmpl[0, 0] += 1e-3  # no all-zero sample
        exp = float(tmpl.sum())
        kind = draw(st.sampled_from(["lognormal", "gaussian", "free"]))
        comps[name] = {
            "template": tmpl.tolist(),
            "expected_events": exp,
            "uncertainty_events": exp * draw(st.floats(0.0, 0.95 if kind == "gaussian" else 2.0)),
            "method": "generated",
            "description": "generated",
            "constraint": {"type": kind, **({"bounds": [0.0, 10.0]} if kind == "free" else {})},
        }
        if draw(st.booleans()):  # a finite-sample shape: per-bin statistical uncertainty (staterror)
            comps[name]["stat_err"] = draw(hnp.arrays(float, (n1, n2), elements=st.floats(0.0, 10.0))).tolist()
    observed = draw(hnp.arrays(np.int64, (n1, n2), elements=st.integers(0, 1000)))
    return {
        "binning": {
            "cs1_edges_phd": np.linspace(0, 10, n1 + 1).tolist(),
            "log10_cs2_edges": np.linspace(2, 4, n2 + 1).tolist(),
        },
        "observed": observed.tolist(),
        "components": comps,
        "exposure_t_yr": 1.0,
    }


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=templates_docs(), data=st.data())
def test_workspace_and_patchset_from_any_templates(doc: dict, data) -> None:
    ws = build_workspace(BackgroundTemplates.from_json(doc, path="<generated>"), poi_bounds=(0.0, 50.0))
    validate_workspace(ws)
    n_bins = int(np.size(doc["observed"]))
    assert ws["observations"][0]["data"] == np.ravel(doc["observed"]).astype(float).tolist()
    assert [s["name"] for s in ws["channels"][0]["samples"]] == sorted(doc["components"])
    model = pyhf.Workspace(ws).model(poi_name=None)
    expected = model.expected_actualdata(model.config.suggested_init())
    total = np.sum([np.ravel(c["template"]) for c in doc["components"].values()], axis=0)
    np.testing.assert_allclose(expected, total, rtol=1e-9, atol=1e-12)

    n_masses = data.draw(st.integers(1, 3))
    masses = sorted(data.draw(st.lists(st.floats(1.0, 1e4), min_size=n_masses, max_size=n_masses, unique=True)))
    masses = [float(f"{m:.6g}") for m in masses]
    if len(set(masses)) != len(masses):
        return
    templates = np.array([data.draw(hnp.arrays(float, n_bins, elements=st.floats(0.0, 100.0))) for _ in masses])
    signal = SignalTemplates(
        masses_gev=tuple(masses),
        reference_cross_section_cm2=(1e-45,) * n_masses,
        expected_events=tuple(templates.sum(axis=1).tolist()),
        templates=templates,
        exposure_t_yr=1.0,
        model="generated",
        halo=None,
        units={},
    )
    if np.any(templates.sum(axis=1) <= 0):  # a mass without expected signal is refused, never published
        with pytest.raises(InvalidWorkspace, match="no sensitivity"):
            build_patchset(ws, signal, inspire_id="ins0000000")
        return
    ps = build_patchset(ws, signal, inspire_id="ins0000000")
    patchset = pyhf.PatchSet(ps)
    patchset.verify(pyhf.Workspace(ws))
    for patch in ps["patches"]:
        sb = apply_patch(ws, ps, patch["metadata"]["name"])
        validate_workspace(sb)
        assert [s["name"] for s in sb["channels"][0]["samples"]][-1] == "signal"


@pytest.mark.parametrize(
    ("lower", "upper"),
    [
        (-1707.2, 1.77),
        (1000.0, math.inf),
        (-math.inf, 309.0),
        (2.0, 400.0),
        (3.507996737497185e-19, math.inf),
        (-math.inf, -1e-300),
    ],
    ids=[
        "lower_underflows",
        "lower_overflows",
        "upper_overflows",
        "both_extreme",
        "lower_rounds_to_one",
        "upper_rounds_to_one",
    ],
)
def test_streaming_log10_bounds_beyond_float_range(tmp_path, lower: float, upper: float) -> None:
    """Regression (found by the property above): 10**bound overflowed (crash) or underflowed to 0,
    so that cS2 = 0 (log10 = -inf) passed a finite lower bound in the streaming engine; and
    10**3.5e-19 rounds to 1, so that cS2 = 1 (log10 = 0) passed ``log10_cs2 >= 3.5e-19``."""
    cs2 = np.array([0.0, 1.0, 100.0, 1e300, 5e-324])
    cols = {"event_id": np.arange(5, dtype=np.int64), "cs2_phd": cs2}
    _assert_engines_agree(tmp_path, cols, Cut(name="c", kind="roi", variable="log10_cs2", lower=lower, upper=upper))


def _assert_engines_agree(tmp_path, cols: dict[str, np.ndarray], cut: Cut) -> None:
    """The streaming engine selects the same events as the in-memory one."""
    from dmpreserve.selection.stream import select_stream

    n = len(cols["event_id"])
    data = ReducedData(columns=cols, meta={"n_events": n, "kind": "science"}, path="<regression>")
    path = tmp_path / "d.parquet"
    pq.write_table(pa.table(cols), path)
    mask, _ = apply_cuts(data, [cut])
    result = select_stream(str(path), [cut], use_threads=False)
    assert result.n_selected == int(mask.sum())
    np.testing.assert_array_equal(np.sort(result.table.column("event_id").to_numpy()), cols["event_id"][mask])


@pytest.mark.parametrize(
    ("lower", "upper"),
    [(-math.inf, 5.343473091756556e-306), (1e-200, math.inf), (-math.inf, 1e200), (1e160, 1e200), (-1.0, 0.0)],
    ids=[
        "upper_squared_underflows",
        "lower_squared_underflows",
        "upper_squared_overflows",
        "both_beyond_squares",
        "upper_zero",
    ],
)
def test_streaming_radius_bounds_beyond_float_range(tmp_path, lower: float, upper: float) -> None:
    """Regression (found by the property above): squaring an r_cm bound underflowed to 0 (r = 0 failed
    ``r < 5e-306``) or overflowed; both engines now compute r = sqrt(x*x + y*y) with the same operations."""
    x = np.array([0.0, 1e-307, 3.0, 1e-180, 1e170, 1e190, 1e300])
    cols = {"event_id": np.arange(len(x), dtype=np.int64), "x_cm": x, "y_cm": np.zeros(len(x))}
    _assert_engines_agree(tmp_path, cols, Cut(name="c", kind="fiducial", variable="r_cm", lower=lower, upper=upper))
