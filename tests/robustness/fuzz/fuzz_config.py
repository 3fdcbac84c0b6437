"""Fuzz target: the analysis configuration (YAML -> schema -> cross-checks), ``dmpreserve.config.load_config``."""

from __future__ import annotations

from harness import clean, expect_clean_failure, instrumented, main, scratch_dir

with instrumented(__name__ == "__main__"):
    from dmpreserve.config import load_config


def test_one_input(data: bytes) -> None:
    """One YAML document as the configuration file."""
    tmp = scratch_dir()
    try:
        path = tmp / "config.yaml"
        path.write_bytes(data)
        expect_clean_failure(lambda: load_config(path))
    finally:
        clean(tmp)


if __name__ == "__main__":
    main(test_one_input, "config")
