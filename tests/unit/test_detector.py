"""dmpreserve.detector: configured NEST model vectors (mdc.nest_parameters) reach nestpy's GetYields/GetQuanta."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import yaml

from dmpreserve.detector import NestDetector, _nest_vectors

REPO = Path(__file__).resolve().parents[2]
LZ_CONFIG = REPO / "workflow/analyses/lz_ws2024/config.yaml"  # WS2024 uses both tuned vectors (WS2022 the ER one only)
N_EVENTS = 200
ENERGY_KEV = 20.0


def _nestpy_default(function: str, keyword: str) -> list[float]:
    """A default vector of a nestpy binding, read from its signature (the compiled module's docstring)."""
    import nestpy

    doc = getattr(nestpy.NESTcalc, function).__doc__
    match = re.search(rf"{keyword}: [^=]+= \[([^\]]*)\]", doc)
    assert match, doc
    return [float(v) for v in match.group(1).split(",")]


def _lz_nest_parameters() -> dict:
    return yaml.safe_load(LZ_CONFIG.read_text(encoding="utf-8"))["mdc"]["nest_parameters"]


def test_nest_vectors_maps_the_configured_vectors() -> None:
    assert _nest_vectors({}) == ({}, {})
    assert _nest_vectors({"source": "a paper"}) == ({}, {})
    nr, er = list(range(12)), [0.5] * 10
    yk, qk = _nest_vectors({"nr_yields": nr, "er_yields": er, "source": "x"})
    assert yk == {"nr_parameters": [float(v) for v in nr], "er_parameters": er} and qk == {}
    assert all(isinstance(v, float) for v in yk["nr_parameters"])


def test_eleven_widths_are_completed_with_nestpys_last_two_defaults() -> None:
    default = _nestpy_default("GetQuanta", "nr_er_width_parameters")
    assert len(default) == 13
    _, qk = _nest_vectors({"nr_er_widths": default[:11]})
    assert qk == {"nr_er_width_parameters": default}  # 11 + nestpy's own tail = nestpy's default vector
    thirteen = [float(v) for v in range(13)]
    assert _nest_vectors({"nr_er_widths": thirteen})[1] == {"nr_er_width_parameters": thirteen}  # kept as given
    twelve = [1.0] * 12
    assert _nest_vectors({"nr_er_widths": twelve})[1]["nr_er_width_parameters"] == twelve + default[12:]


def _mean_cs2(nest_parameters: dict | None, seed: int = 17) -> np.ndarray:
    det = NestDetector("LZ_WS2022", nest_parameters)
    det.seed(seed)
    rng = np.random.default_rng(seed)
    x, y, z = det.random_positions(N_EVENTS, rng, r_max_cm=30.0)
    out = det.simulate(np.full(N_EVENTS, ENERGY_KEV), "nr", x, y, z, rng)
    return out["cs2_phd"]


def test_lz_nr_yields_change_the_simulated_charge() -> None:
    nominal = _mean_cs2(None)
    # the same vectors as nestpy's defaults, given explicitly: the same events, bit for bit (seeded)
    explicit = {
        "nr_yields": _nestpy_default("GetYields", "nr_parameters"),
        "nr_er_widths": _nestpy_default("GetQuanta", "nr_er_width_parameters"),
    }
    np.testing.assert_array_equal(_mean_cs2(explicit), nominal)
    # LZ's tuned NR yields (alpha 10.19 instead of 11.0: fewer quanta): a clearly different mean cS2
    lz = _mean_cs2({"nr_yields": _lz_nest_parameters()["nr_yields"]})
    diff = lz.mean() - nominal.mean()
    sem = np.hypot(lz.std(), nominal.std()) / np.sqrt(N_EVENTS)
    assert abs(diff) > 3 * sem, (lz.mean(), nominal.mean(), sem)
    assert abs(diff) / nominal.mean() > 0.02


def test_lz_configuration_carries_its_nest_parameters() -> None:
    params = _lz_nest_parameters()
    assert len(params["nr_yields"]) == 12 and len(params["er_yields"]) == 10
    assert params["source"]
    yk, _ = _nest_vectors(params)
    assert yk["nr_parameters"] != _nestpy_default("GetYields", "nr_parameters")
