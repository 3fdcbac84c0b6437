"""Fuzz target: likelihood files: pyhf workspace and patchset JSON (schema, digests)."""

from __future__ import annotations

from harness import clean, expect_clean_failure, instrumented, main, scratch_dir

with instrumented(__name__ == "__main__"):
    from dmpreserve.files import read_json
    from dmpreserve.stats.workspace import validate_patchset, validate_workspace

#: A minimal valid workspace that fuzzed patchsets are checked against.
WORKSPACE = {
    "channels": [
        {
            "name": "c",
            "samples": [
                {
                    "name": "b",
                    "data": [1.0, 2.0],
                    "modifiers": [{"name": "n", "type": "normsys", "data": {"hi": 1.1, "lo": 0.9}}],
                }
            ],
        }
    ],
    "observations": [{"name": "c", "data": [1.0, 2.0]}],
    "measurements": [{"name": "m", "config": {"poi": "mu", "parameters": []}}],
    "version": "1.0.0",
}


def test_one_input(data: bytes) -> None:
    """The bytes as a workspace file and as a patchset file."""
    tmp = scratch_dir()
    try:
        path = tmp / "likelihood.json"
        path.write_bytes(data)

        def workspace() -> None:
            validate_workspace(read_json(path, what="pyhf workspace"), path=str(path))

        def patchset() -> None:
            validate_patchset(read_json(path, what="pyhf patchset"), WORKSPACE, path=str(path))

        expect_clean_failure(workspace)
        expect_clean_failure(patchset)
    finally:
        clean(tmp)


if __name__ == "__main__":
    main(test_one_input, "workspace")
