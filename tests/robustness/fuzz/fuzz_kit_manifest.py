"""Fuzz target: the reinterpretation kit manifest (``kit.json``: schema, file list, sha256 digests)."""

from __future__ import annotations

from harness import clean, expect_clean_failure, instrumented, main, scratch_dir

with instrumented(__name__ == "__main__"):
    try:
        from dmpreserve.reinterpret.kit import load_kit
    except ImportError:  # reinterpretation not installed in this checkout
        load_kit = None


def test_one_input(data: bytes) -> None:
    """The bytes as ``kit.json`` of a kit directory holding one small workspace file."""
    if load_kit is None:
        return
    tmp = scratch_dir()
    try:
        kit = tmp / "kit"
        kit.mkdir()
        (kit / "kit.json").write_bytes(data)
        (kit / "BkgOnly.json").write_text('{"channels": []}')
        expect_clean_failure(lambda: load_kit(kit))
    finally:
        clean(tmp)


if __name__ == "__main__":
    main(test_one_input, "kit_manifest")
