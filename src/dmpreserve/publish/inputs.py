"""The manifest of the analysis's dataset inputs (``results/inputs/manifest.json``, rule ``inputs_manifest``).

Every file of every input that is not the mock-data challenge (config section ``inputs``) -- the local
copy Snakemake's storage plugin made of a URL, or the local file itself -- is hashed; a ``sha256`` the
configuration declares for it must match before any step reads the file.  The manifest records per input
and file the configured location (path or URL), the local path, the sha256 of the local copy and the
storage plugin with its version (``importlib.metadata``); :mod:`dmpreserve.publish.provenance` embeds it.
"""

from __future__ import annotations

import importlib.metadata
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dmpreserve.config import STORAGE_PLUGINS, AnalysisConfig, url_scheme
from dmpreserve.errors import InvalidData
from dmpreserve.files import sha256_file

MANIFEST_FORMAT = "dmpreserve-inputs-manifest"


def storage_plugin(location: str) -> dict[str, str] | None:
    """The Snakemake storage plugin that retrieves ``location`` and its installed version (None: a local path).

    Returns:
        ``{"name": "snakemake-storage-plugin-NAME", "version": VERSION}`` (version ``not installed`` where the
        package is absent from this environment).
    """
    scheme = url_scheme(location)
    if scheme is None:
        return None
    name = f"snakemake-storage-plugin-{STORAGE_PLUGINS[scheme]}"
    try:
        version = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        version = "not installed"
    return {"name": name, "version": version}


def build_inputs_manifest(cfg: AnalysisConfig, files: Sequence[tuple[str, str, str | os.PathLike]]) -> dict[str, Any]:
    """Hash each input file, check the declared digests and build the manifest document.

    Args:
        cfg: The resolved configuration (its ``inputs`` give the declared ``sha256`` per file name).
        files: ``(input name, configured location of the file, local path)`` per file, Parquet files and
            their sidecars, in the workflow's order.

    Returns:
        ``{"format", "format_version", "inputs": {NAME: {"location", "plugin", "files": [{"name", "location",
        "local_path", "sha256", "size_bytes", "declared_sha256"}]}}}`` (schemas/provenance.schema.json,
        ``$defs.inputs_manifest``).

    Raises:
        InvalidData: naming the local file and the ``$.inputs.NAME...`` field: an input that is not a dataset
            of the configuration, a missing local copy, a digest that differs from the declared one, or a
            declared digest of a file the input does not have.
    """
    inputs = cfg.inputs
    out: dict[str, dict[str, Any]] = {}
    for name, location, local in files:
        spec = inputs.get(name)
        if not isinstance(spec, dict):
            raise InvalidData(
                f"is not a dataset input of the configuration {cfg.path}", path=local, field=f"$.inputs.{name}"
            )
        path = Path(local)
        file_name = location.rstrip("/").rsplit("/", 1)[-1]
        if not path.is_file():
            raise InvalidData(f"local copy of {location} not found", path=path, field=f"$.inputs.{name}.location")
        digest = sha256_file(path)
        declared = spec["sha256"].get(file_name)
        if declared is not None and declared != digest:
            raise InvalidData(
                f"sha256 of the file is {digest}, the configuration declares {declared}",
                path=path,
                field=f"$.inputs.{name}.sha256.{file_name}",
            )
        entry = out.setdefault(name, {"location": spec["location"], "plugin": storage_plugin(location), "files": []})
        entry["files"].append(
            {
                "name": file_name,
                "location": location,
                "local_path": str(path),
                "sha256": digest,
                "size_bytes": path.stat().st_size,
                "declared_sha256": declared,
            }
        )
    for name, entry in out.items():
        seen = {f["name"] for f in entry["files"]}
        for file_name in inputs[name]["sha256"]:
            if file_name not in seen:
                raise InvalidData(
                    f"a sha256 is declared for {file_name}, which is not a file of the input",
                    path=cfg.path,
                    field=f"$.inputs.{name}.sha256.{file_name}",
                )
    return {"format": MANIFEST_FORMAT, "format_version": 1, "inputs": out}
