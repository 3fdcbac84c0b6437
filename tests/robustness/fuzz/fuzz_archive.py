"""Fuzz target: archives (HEPData submission / kit tarballs): the safe extractor of ``dmpreserve.publish.hepdata``.

Besides failing cleanly, extraction must never write outside its destination directory.
"""

from __future__ import annotations

from harness import clean, expect_clean_failure, instrumented, main, scratch_dir

with instrumented(__name__ == "__main__"):
    from dmpreserve.publish import hepdata


def test_one_input(data: bytes) -> None:
    """The bytes as a (possibly gzip-compressed) tar archive."""
    tmp = scratch_dir()
    try:
        archive = tmp / "archive.tar.gz"
        archive.write_bytes(data)
        dest = tmp / "inner" / "dest"
        dest.mkdir(parents=True)
        expect_clean_failure(lambda: hepdata._safe_extract(archive, dest))
        outside = [p for p in tmp.rglob("*") if p != archive and dest not in (p, *p.parents) and p != dest.parent]
        assert outside == [], f"extraction wrote outside its destination: {outside}"
        links = [p for p in dest.rglob("*") if p.is_symlink()]
        assert links == [], f"extraction created links: {links}"
    finally:
        clean(tmp)


if __name__ == "__main__":
    main(test_one_input, "archive")
