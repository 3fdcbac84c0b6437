"""Fuzz target: cut definitions (the selection declared as data), through the configuration and both engines.

The input's text becomes a cut's ``variable`` and numbers its bounds; the cut replaces the first cut
of the test configuration, which is then validated (``config_from_dict``) and, when valid, applied
to a small table with the in-memory engine and the streaming (Arrow) engine, which must agree.
Nothing may ever be evaluated: the variable must be one
of the allowed names or the configuration is refused.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

from harness import clean, expect_clean_failure, instrumented, main, scratch_dir

with instrumented(__name__ == "__main__"):
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    import yaml

    from dmpreserve.artifacts.reduced import ReducedData
    from dmpreserve.config import config_from_dict
    from dmpreserve.selection.cuts import Cut, apply_cuts
    from dmpreserve.selection.stream import select_stream

CONFIG = Path(__file__).resolve().parents[2] / "data" / "test_config.yaml"


def _base_config() -> dict:
    return yaml.safe_load(CONFIG.read_text(encoding="utf-8"))


BASE = _base_config()
N = 16
_RNG = np.random.default_rng(1)
TABLE = ReducedData(
    columns={
        "event_id": np.arange(N, dtype=np.int64),
        **{c: _RNG.uniform(0, 2e3, N) for c in ("s1_phd", "s2_phd", "cs1_phd", "cs2_phd", "drift_time_us")},
        "x_cm": _RNG.uniform(-80, 80, N),
        "y_cm": _RNG.uniform(-80, 80, N),
        "s1_coincidence": _RNG.integers(0, 20, N).astype(np.int64),
    },
    meta={"n_events": N, "kind": "science"},
    path="<fuzz>",
)


def _number(raw: bytes) -> float | int | str:
    text = raw.decode("utf-8", "replace")
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def test_one_input(data: bytes) -> None:
    """``variable|min|max|kind`` (missing parts keep the configuration's values)."""
    parts = data.split(b"|")
    doc = copy.deepcopy(BASE)
    cut = doc["selection"]["cuts"][0]
    cut["variable"] = parts[0].decode("utf-8", "replace")
    if len(parts) > 1:
        cut["min"] = _number(parts[1])
    if len(parts) > 2:
        cut["max"] = _number(parts[2])
    if len(parts) > 3:
        cut["kind"] = parts[3].decode("utf-8", "replace")

    def run() -> None:
        cfg = config_from_dict(doc, path="<fuzz>")
        c = cfg.cuts()[0]
        lo, hi = float(c.get("min", -math.inf)), float(c.get("max", math.inf))
        cut_list = [Cut(name=c["name"], kind=c["kind"], variable=c["variable"], lower=lo, upper=hi)]
        mask, flow = apply_cuts(TABLE, cut_list)
        assert flow.events[0] == N and mask.sum() == flow.events[-1]
        tmp = scratch_dir()
        try:
            pq.write_table(pa.table(dict(TABLE.columns)), tmp / "t.parquet")
            streamed = select_stream(str(tmp / "t.parquet"), cut_list, use_threads=False)
        finally:
            clean(tmp)
        assert streamed.n_selected == int(mask.sum()), (streamed.n_selected, int(mask.sum()))

    expect_clean_failure(run)


if __name__ == "__main__":
    main(test_one_input, "cuts")
