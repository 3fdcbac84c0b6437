"""Provenance: checksums of every input and output, config hash, package versions, commit, image."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dmpreserve import __version__
from dmpreserve.errors import InvalidData
from dmpreserve.io import sha256_file

PACKAGES = ("dmpreserve", "nestpy", "pyhf", "iminuit", "numpy", "scipy", "pyarrow", "matplotlib", "jsonschema",
            "snakemake", "hepdata-lib", "hepdata-validator", "pyyaml")


def package_versions() -> dict[str, str]:
    """Installed versions of the packages the analysis depends on."""
    out = {}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def git_commit(directory: str | os.PathLike = ".") -> str:
    """The commit of the checkout the workflow runs from (``unknown`` outside git), ``-dirty`` if modified."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=directory, capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=directory,
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("-dirty" if dirty else "")


def container_runtime() -> dict[str, Any]:
    """Where the step ran: inside an apptainer/singularity/docker container or not, and the interpreter."""
    inside = None
    for var in ("APPTAINER_CONTAINER", "SINGULARITY_CONTAINER"):
        if os.environ.get(var):
            inside = os.environ[var]
    if inside is None and Path("/.dockerenv").exists():
        inside = "docker"
    return {"inside_container": inside, "python_executable": sys.executable, "python_version": platform.python_version(),
            "platform": platform.platform()}


def checksums(paths: Sequence[str | os.PathLike]) -> dict[str, str]:
    """sha256 of each file, keyed by the path as given."""
    out = {}
    for p in paths:
        if not Path(p).is_file():
            raise InvalidData("file named for provenance does not exist", path=p)
        out[str(p)] = sha256_file(p)
    return out


def build_provenance(*, config_path: str, config_sha256: str, image: str, inputs: Sequence[str],
                     outputs: Sequence[str]) -> dict[str, Any]:
    """The ``provenance.json`` document.  Only ``runtime`` and ``git_commit`` depend on where it ran."""
    return {"dmpreserve_version": __version__, "config": {"path": config_path, "sha256": config_sha256},
            "container_image": image, "git_commit": git_commit(), "runtime": container_runtime(),
            "packages": package_versions(), "inputs": checksums(inputs), "outputs": checksums(outputs)}
