"""Fuzz target: CSV tables and spectra: ``read_csv``, the limits table reader and the user-spectrum reader."""

from __future__ import annotations

from harness import clean, expect_clean_failure, instrumented, main, scratch_dir

with instrumented(__name__ == "__main__"):
    from dmpreserve.artifacts.limits import read_limits
    from dmpreserve.files import read_csv

    try:
        from dmpreserve.physics.signal_models import read_spectrum_csv
    except ImportError:  # reinterpretation not installed in this checkout
        read_spectrum_csv = None


def test_one_input(data: bytes) -> None:
    """The same bytes as a generic table, a limits.csv and a user signal spectrum."""
    tmp = scratch_dir()
    try:
        path = tmp / "table.csv"
        path.write_bytes(data)
        expect_clean_failure(lambda: read_csv(path, required=("mass_gev",)))
        expect_clean_failure(lambda: read_limits(str(path)))
        if read_spectrum_csv is not None:
            expect_clean_failure(lambda: read_spectrum_csv(path))
    finally:
        clean(tmp)


if __name__ == "__main__":
    main(test_one_input, "csv")
