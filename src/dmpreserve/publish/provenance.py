"""Provenance: checksums of every input and output, config hash, package versions, commit, image."""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dmpreserve import __version__
from dmpreserve.errors import InvalidData
from dmpreserve.files import read_json, sha256_file
from dmpreserve.schema import validate

PACKAGES = (
    "dmpreserve",
    "nestpy",
    "pyhf",
    "iminuit",
    "numpy",
    "scipy",
    "pyarrow",
    "matplotlib",
    "jsonschema",
    "snakemake",
    "hepdata-lib",
    "hepdata-validator",
    "pyyaml",
)


def package_versions() -> dict[str, str]:
    """Installed versions of the packages the analysis depends on."""
    out = {}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def _git_head(directory: Path) -> str:
    """The commit ``.git/HEAD`` points at, read without git (e.g. in an image that has no git)."""
    git = directory / ".git"
    try:
        head = (git / "HEAD").read_text(encoding="utf-8").strip()
        if not head.startswith("ref: "):
            return head
        ref = head[5:]
        if (git / ref).is_file():
            return (git / ref).read_text(encoding="utf-8").strip()
        for line in (git / "packed-refs").read_text(encoding="utf-8").splitlines():
            if line.endswith(" " + ref):
                return line.split()[0]
    except OSError:
        pass
    return "unknown"


def git_commit(directory: str | os.PathLike = ".") -> str:
    """The commit of the checkout the workflow runs from (``unknown`` outside git), ``-dirty`` if modified.

    Without a git executable (the project image has none) the commit is read from ``.git`` and the
    dirty state cannot be known: the suffix is then ``-unchecked``.
    """
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=directory, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=directory,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except FileNotFoundError:
        head = _git_head(Path(directory))
        return head if head == "unknown" else head + "-unchecked"
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("-dirty" if dirty else "")


#: Image labels recorded in provenance: apptainer keeps the Docker labels in the first file; the
#: project image (env/Dockerfile) also writes them, with its reference, to the second one.
APPTAINER_LABELS = Path("/.singularity.d/labels.json")
IMAGE_INFO = Path("/opt/dmpreserve/image.json")
_LABEL_KEYS = (
    "org.opencontainers.image.version",
    "org.opencontainers.image.revision",
    "org.opencontainers.image.source",
    "org.opencontainers.image.base.name",
)


def _read_labels(*files: Path) -> dict[str, str]:
    """The recorded OCI labels from the first readable JSON object among ``files``."""
    for file in files:
        try:
            raw = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(raw, dict):
            return {k: str(raw[k]) for k in _LABEL_KEYS if k in raw}
    return {}


def container_info(
    environ: Mapping[str, str] | None = None,
    *,
    labels_file: Path = APPTAINER_LABELS,
    image_info: Path = IMAGE_INFO,
    dockerenv: Path = Path("/.dockerenv"),
) -> dict[str, Any] | None:
    """The container this process runs in, or ``None`` on the bare host.

    Apptainer/Singularity set ``APPTAINER_CONTAINER``/``SINGULARITY_CONTAINER`` to the image file
    (the SIF path on the host) and keep the image's OCI labels in ``/.singularity.d/labels.json``;
    Docker leaves ``/.dockerenv``; the project image carries ``/opt/dmpreserve/image.json`` (its
    reference and labels), which also identifies it under other engines (REANA's Kubernetes pods).

    Returns:
        ``{"engine", "image", "image_sha256", "name", "labels"}`` (labels: the OCI version, revision,
        source, base; ``image_sha256``: of the SIF file when it is readable inside, else ``None``).
    """
    env = os.environ if environ is None else environ
    engine = image = None
    for var, name in (("APPTAINER_CONTAINER", "apptainer"), ("SINGULARITY_CONTAINER", "singularity")):
        if env.get(var):
            engine, image = name, env[var]
            break
    try:
        ref = json.loads(image_info.read_text(encoding="utf-8")).get("ref")
    except (OSError, ValueError, AttributeError):
        ref = None
    if engine is None and (ref or dockerenv.exists()):
        engine, image = ("docker" if dockerenv.exists() else "container"), ref
    if engine is None:
        return None
    name = env.get("APPTAINER_NAME") or env.get("SINGULARITY_NAME") or ref
    # The SIF itself is visible inside only where it is bound (e.g. under /tmp): then its digest
    # ties the run to the record of `dmpreserve image sif`.
    digest = sha256_file(image) if engine in ("apptainer", "singularity") and Path(image).is_file() else None
    return {
        "engine": engine,
        "image": image,
        "image_sha256": digest,
        "name": name,
        "labels": _read_labels(labels_file, image_info),
    }


def container_runtime(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Where the step ran: the container (``inside_container``: image path, ``docker`` or ``None``;
    ``container``: engine, image, labels), the interpreter path and version, and the platform."""
    info = container_info(environ)
    inside = (
        None if info is None else (info["image"] if info["engine"] in ("apptainer", "singularity") else info["engine"])
    )
    return {
        "inside_container": inside,
        "container": info,
        "python_executable": sys.executable,
        "python_version": platform.python_version(),
        "platform": platform.platform(),
        "batch_system": batch_job(environ),
    }


def batch_job(environ: Mapping[str, str] | None = None) -> dict[str, str] | None:
    """The SLURM job the step ran in (``SLURM_JOB_ID`` etc. from the environment); None outside SLURM."""
    env = os.environ if environ is None else environ
    if not env.get("SLURM_JOB_ID"):
        return None
    keys = ("SLURM_JOB_ID", "SLURM_JOB_NAME", "SLURM_CLUSTER_NAME", "SLURM_JOB_PARTITION", "SLURMD_NODENAME")
    return {"system": "slurm", **{k.lower(): env[k] for k in keys if env.get(k)}}


def checksums(paths: Sequence[str | os.PathLike]) -> dict[str, str]:
    """sha256 of each file, keyed by the path as given."""
    out = {}
    for p in paths:
        if not Path(p).is_file():
            raise InvalidData("file named for provenance does not exist", path=p)
        out[str(p)] = sha256_file(p)
    return out


def read_inputs_manifest(path: str | os.PathLike) -> dict[str, Any]:
    """The dataset inputs' manifest (:mod:`dmpreserve.publish.inputs`), validated against
    ``inputs_manifest.schema.json``.

    Raises:
        InvalidData: naming the file and the JSON path.
    """
    doc = read_json(path, what="inputs manifest")
    validate(doc, "inputs_manifest", path=str(path), error=InvalidData)
    return doc


def build_provenance(
    *,
    config_path: str,
    config_sha256: str,
    image: str,
    inputs: Sequence[str],
    outputs: Sequence[str],
    inputs_manifest: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """The ``provenance.json`` document.  Only ``runtime`` and ``git_commit`` depend on where it ran.

    With ``inputs_manifest`` (results/inputs/manifest.json) its ``inputs`` are embedded as ``input_datasets``
    (per dataset input: location or URL, storage plugin and version, and per file the local path and sha256),
    and the manifest file itself is checksummed among the inputs.
    """
    extra = {}
    if inputs_manifest is not None:
        extra["input_datasets"] = read_inputs_manifest(inputs_manifest)["inputs"]
        inputs = sorted({*inputs, str(inputs_manifest)})
    return {
        **extra,
        "dmpreserve_version": __version__,
        "config": {"path": config_path, "sha256": config_sha256},
        "container_image": image,
        "git_commit": git_commit(),
        "runtime": container_runtime(),
        "packages": package_versions(),
        "inputs": checksums(inputs),
        "outputs": checksums(outputs),
    }
