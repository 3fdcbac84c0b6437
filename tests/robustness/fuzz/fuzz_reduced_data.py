"""Fuzz target: reduced data (Parquet file + JSON sidecar), ``dmpreserve.artifacts.reduced.read_reduced``.

The input is split at the first ``\\x00SIDECAR\\x00`` marker (or in the middle): the first part is
mutated into a seed Parquet file (byte flips in a valid file reach the footer and page decoders),
the second is the sidecar text.
"""

from __future__ import annotations

import io

from harness import clean, expect_clean_failure, instrumented, main, scratch_dir

with instrumented(__name__ == "__main__"):
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from dmpreserve.artifacts.reduced import read_reduced

MARKER = b"\x00SIDECAR\x00"


def seed_parquet() -> bytes:
    """A small valid science table (the fuzzer's mutations start from real Parquet structure)."""
    n = 8
    rng = np.random.default_rng(0)
    table = pa.table(
        {
            "event_id": np.arange(n, dtype=np.int64),
            "s1_phd": rng.uniform(1, 50, n),
            "s2_phd": rng.uniform(500, 5e4, n),
            "cs1_phd": rng.uniform(1, 50, n),
            "cs2_phd": rng.uniform(500, 5e4, n),
            "drift_time_us": rng.uniform(0, 900, n),
            "x_cm": rng.uniform(-50, 50, n),
            "y_cm": rng.uniform(-50, 50, n),
            "s1_coincidence": rng.integers(2, 9, n).astype(np.int64),
        }
    )
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def test_one_input(data: bytes) -> None:
    """Parquet bytes and sidecar text from one input."""
    if MARKER in data:
        parquet, sidecar = data.split(MARKER, 1)
    else:
        parquet, sidecar = data[: len(data) // 2], data[len(data) // 2 :]
    tmp = scratch_dir()
    try:
        (tmp / "sample.parquet").write_bytes(parquet)
        (tmp / "sample.json").write_bytes(sidecar)
        expect_clean_failure(lambda: read_reduced(tmp / "sample.parquet"))
    finally:
        clean(tmp)


if __name__ == "__main__":
    main(test_one_input, "reduced_data")
