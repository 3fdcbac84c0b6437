"""The project image: offline wheelhouse, Docker build (Docker SDK) and apptainer SIF, with records.

``dmpreserve image build`` (``make image``):

1. builds a wheelhouse of every hashed pin in ``env/requirements.txt`` on the host with
   ``pip wheel --require-hashes`` (cached in ``build/wheelhouse`` until the pins change) and checks
   every wheel against the pins' sha256 (``connection-pool`` is published only as an sdist; its
   sdist is hash-checked by pip and the wheel is built locally),
2. builds the dmpreserve wheel from this checkout,
3. stages a build context holding only ``env/Dockerfile``, those wheels and a ``SHA256SUMS``
   manifest (no repository files, credentials, certificates or pip configuration),
4. builds the image through the Docker SDK and writes a JSON record (image ID, repo digests,
   layers, labels, base image) for provenance.

``dmpreserve image sif`` (``make sif``) saves the image through the Docker SDK as a
``docker-archive`` tarball, converts it with ``apptainer build`` and records the SIF's sha256
beside it.  Nothing here is needed to *run* the analysis; it only packages it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from dmpreserve import __version__
from dmpreserve.errors import DmpreserveError
from dmpreserve.files import atomic_write, sha256_file, write_json
from dmpreserve.publish.provenance import git_commit

SOURCE = "https://github.com/dmpreserve/dmpreserve"
#: Pins published only as an sdist: pip checks the sdist's hash, the wheel is built locally.
SDIST_ONLY = ("connection-pool",)
MKSQUASHFS_ARGS = "-comp zstd -Xcompression-level 3"
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")
_HASH = re.compile(r"--hash=sha256:([0-9a-f]{64})")


class ImageError(DmpreserveError):
    """Building or converting the image failed (no Docker, no apptainer, bad pins, build error)."""


@dataclass(frozen=True)
class Pin:
    """One pinned requirement: normalised name, version and its allowed sha256 digests."""

    name: str
    version: str
    hashes: frozenset[str]


@dataclass(frozen=True)
class ImageRecord:
    """What ``image build`` built (written as JSON; no timestamps)."""

    tag: str
    image_id: str
    repo_digests: tuple[str, ...]
    layers: tuple[str, ...]
    labels: dict[str, str]
    base: str
    base_id: str
    size_bytes: int
    requirements_sha256: str
    wheelhouse_sha256: str
    package_sha256: str


@dataclass(frozen=True)
class SifRecord:
    """What ``image sif`` built: the SIF file, its sha256 and the image it came from."""

    sif: str
    sha256: str
    size_bytes: int
    uri: str
    tag: str
    image_id: str
    apptainer_version: str


def normalise(name: str) -> str:
    """PEP 503 project-name normalisation (``Foo_Bar`` -> ``foo-bar``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(requirements: str | os.PathLike) -> dict[str, Pin]:
    """Parse a hash-pinned requirements file (``pip-compile --generate-hashes`` output).

    Raises:
        ImageError: The file is missing, or a pin has no sha256 hash.
    """
    path = Path(requirements)
    if not path.is_file():
        raise ImageError("requirements file not found", path=path)
    pins: dict[str, Pin] = {}
    text = path.read_text(encoding="utf-8").replace("\\\n", " ")
    for line in text.splitlines():
        match = _PIN.match(line.strip())
        if not match:
            continue
        name = normalise(match.group(1))
        hashes = frozenset(_HASH.findall(line))
        if not hashes:
            raise ImageError("pin without --hash=sha256", path=path, field=name)
        pins[name] = Pin(name=name, version=match.group(2), hashes=hashes)
    if not pins:
        raise ImageError("no pinned requirements (name==version --hash=...)", path=path)
    return pins


def wheel_project(wheel: Path) -> tuple[str, str]:
    """(normalised name, version) from a wheel's file name."""
    parts = wheel.name.split("-")
    if len(parts) < 5 or not wheel.name.endswith(".whl"):
        raise ImageError("not a wheel file name", path=wheel)
    return normalise(parts[0]), parts[1]


def check_wheelhouse(wheelhouse: Path, pins: dict[str, Pin]) -> list[Path]:
    """Every pin has exactly its version's wheel, and each downloaded wheel matches a pinned hash.

    Returns:
        The wheels, sorted by file name.

    Raises:
        ImageError: A pin is missing, a wheel is not pinned, or a hash does not match.
    """
    wheels = sorted(wheelhouse.glob("*.whl"))
    seen = {}
    for wheel in wheels:
        name, version = wheel_project(wheel)
        pin = pins.get(name)
        if pin is None or normalise(pin.version) != normalise(version):
            raise ImageError("wheel is not one of the pins", path=wheel)
        if name not in SDIST_ONLY and sha256_file(wheel) not in pin.hashes:
            raise ImageError("sha256 does not match the pinned hashes", path=wheel, field=name)
        seen[name] = wheel
    missing = sorted(set(pins) - set(seen))
    if missing:
        raise ImageError(f"no wheel for pins: {', '.join(missing)}", path=wheelhouse)
    return wheels


def _run(
    cmd: Sequence[str], *, what: str, cwd: str | os.PathLike | None = None, env: dict[str, str] | None = None
) -> str:
    """Run a command; return its stdout.  Its stderr goes to ours, without pip's notes about
    unreadable local index locations.  Failure raises ImageError."""
    try:
        proc = subprocess.run(list(cmd), cwd=cwd, env=env, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise ImageError(f"{what}: cannot run {cmd[0]}: {exc.strerror}", path=cmd[0]) from None
    sys.stderr.writelines(
        line for line in proc.stderr.splitlines(keepends=True) if not line.startswith("WARNING: Location ")
    )
    if proc.returncode != 0:
        raise ImageError(f"{what} failed (exit {proc.returncode}): {' '.join(cmd)}", path=cwd)
    return proc.stdout


def build_wheelhouse(*, requirements: Path, wheelhouse: Path, python: str = sys.executable) -> list[Path]:
    """Fill ``wheelhouse`` with the hashed pins (``pip wheel --require-hashes``) unless it is current.

    The wheelhouse is rebuilt from scratch whenever the requirements file changes (a stamp file
    holds its sha256), so it never holds stale wheels.

    Returns:
        The checked wheels.
    """
    pins = read_pins(requirements)
    stamp = wheelhouse / ".requirements.sha256"
    digest = sha256_file(requirements)
    if not (stamp.is_file() and stamp.read_text(encoding="utf-8").strip() == digest):
        print(
            f"==> building the wheelhouse {wheelhouse} from {requirements} (pip wheel --require-hashes)",
            file=sys.stderr,
        )
        shutil.rmtree(wheelhouse, ignore_errors=True)
        wheelhouse.mkdir(parents=True)
        _run(
            [
                python,
                "-m",
                "pip",
                "wheel",
                "--quiet",
                "--no-input",
                "--disable-pip-version-check",
                "--require-hashes",
                "--only-binary",
                ":all:",
                "--no-binary",
                ",".join(SDIST_ONLY),
                "--no-build-isolation",
                "--wheel-dir",
                str(wheelhouse),
                "-r",
                str(requirements),
            ],
            what="pip wheel of the pins",
        )
        wheels = check_wheelhouse(wheelhouse, pins)
        with atomic_write(stamp) as tmp:
            tmp.write_text(digest + "\n", encoding="utf-8")
        return wheels
    return check_wheelhouse(wheelhouse, pins)


def build_package_wheel(*, repo: Path, outdir: Path, python: str = sys.executable) -> Path:
    """Build the dmpreserve wheel of this checkout into ``outdir`` (no dependencies, no index)."""
    shutil.rmtree(outdir, ignore_errors=True)
    outdir.mkdir(parents=True)
    _run(
        [
            python,
            "-m",
            "pip",
            "wheel",
            "--no-input",
            "--disable-pip-version-check",
            "--no-deps",
            "--no-index",
            "--no-build-isolation",
            "--wheel-dir",
            str(outdir),
            str(repo),
        ],
        what="building the dmpreserve wheel",
    )
    wheels = sorted(outdir.glob("dmpreserve-*.whl"))
    if len(wheels) != 1:
        raise ImageError("expected exactly one dmpreserve wheel", path=outdir)
    return wheels[0]


def _stage_files(files: Sequence[Path], directory: Path) -> str:
    """Hard-link (or copy) ``files`` into ``directory`` with a ``SHA256SUMS``; return the manifest's sha256."""
    directory.mkdir(parents=True)
    lines = []
    for file in sorted(files, key=lambda w: w.name):
        target = directory / file.name
        try:
            os.link(file, target)
        except OSError:
            shutil.copyfile(file, target)
        lines.append(f"{sha256_file(target)}  {file.name}\n")
    manifest = directory / "SHA256SUMS"
    manifest.write_text("".join(lines), encoding="utf-8")
    return sha256_file(manifest)


def stage_context(*, dockerfile: Path, wheels: Sequence[Path], package: Path, context: Path) -> tuple[str, str]:
    """Write the build context: the Dockerfile, ``wheelhouse/`` (the pins) and ``package/`` (dmpreserve).

    Returns:
        The sha256 of the two ``SHA256SUMS`` manifests (fingerprints of everything installed).
    """
    if not dockerfile.is_file():
        raise ImageError("Dockerfile not found", path=dockerfile)
    shutil.rmtree(context, ignore_errors=True)
    context.mkdir(parents=True)
    shutil.copyfile(dockerfile, context / "Dockerfile")
    return _stage_files(wheels, context / "wheelhouse"), _stage_files([package], context / "package")


def docker_client() -> Any:
    """A Docker SDK client for the daemon in the environment (DOCKER_HOST or the local socket)."""
    try:
        import docker
        import docker.errors
    except ImportError:
        raise ImageError("the Docker SDK for Python (package 'docker') is not installed", field="docker") from None
    try:
        client = docker.from_env(timeout=600)
        client.ping()
    except docker.errors.DockerException as exc:
        raise ImageError(
            f"cannot reach the Docker daemon ({exc}); start it (as root: ../shared/tools/container-host docker)",
            path=os.environ.get("DOCKER_HOST", "docker.sock"),
            field="docker",
        ) from None
    return client


def _build_events(client: Any, **kwargs: Any) -> Iterator[dict[str, Any]]:
    import docker.errors

    try:
        yield from client.api.build(decode=True, **kwargs)
    except docker.errors.APIError as exc:
        raise ImageError(f"docker build: {exc.explanation or exc}", path=kwargs.get("path")) from None


def docker_build(
    *, client: Any, context: Path, tag: str, buildargs: dict[str, str], log: Path, progress: bool = True
) -> None:
    """Build ``context`` into ``tag`` (classic builder through the SDK), streaming the log to ``log``."""
    from tqdm import tqdm

    step = re.compile(r"^Step (\d+)/(\d+)")
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w", encoding="utf-8") as fh, tqdm(desc="docker build", unit="step", disable=not progress) as bar:
        for event in _build_events(
            client, path=str(context), tag=tag, buildargs=buildargs, rm=True, forcerm=True, pull=False
        ):
            text = event.get("stream", "")
            fh.write(text)
            match = step.match(text)
            if match:
                bar.total = int(match.group(2))
                bar.update(int(match.group(1)) - bar.n)
            if "error" in event:
                fh.write(event["error"] + "\n")
                hint = ""
                if "pull access denied" in event["error"] or "not found" in event["error"]:
                    hint = (
                        "; without a registry make a base with ../shared/tools/container-host base-image TAG "
                        "and pass --base TAG"
                    )
                raise ImageError(
                    f"docker build failed: {event['error'].strip()}{hint} (log: {log})", path=context / "Dockerfile"
                )


def image_record(
    client: Any, *, tag: str, base: str, requirements_sha256: str, wheelhouse_sha256: str, package_sha256: str
) -> ImageRecord:
    """The provenance record of a built image (ID = sha256 of its config, which names every layer)."""
    import docker.errors

    image = client.images.get(tag)
    try:
        base_id = client.images.get(base).id
    except docker.errors.ImageNotFound:
        base_id = "unknown"
    attrs = image.attrs
    return ImageRecord(
        tag=tag,
        image_id=image.id,
        repo_digests=tuple(attrs.get("RepoDigests") or ()),
        layers=tuple(attrs.get("RootFS", {}).get("Layers") or ()),
        labels=dict(sorted((image.labels or {}).items())),
        base=base,
        base_id=base_id,
        size_bytes=int(attrs.get("Size", 0)),
        requirements_sha256=requirements_sha256,
        wheelhouse_sha256=wheelhouse_sha256,
        package_sha256=package_sha256,
    )


def build(
    *,
    repo: Path,
    tag: str,
    base: str,
    wheelhouse: Path,
    context: Path,
    record: Path,
    revision: str | None = None,
    progress: bool = True,
) -> ImageRecord:
    """Wheelhouse -> staged context -> ``docker build`` -> JSON record.  See the module docstring."""

    requirements = repo / "env" / "requirements.txt"
    client = docker_client()
    wheels = build_wheelhouse(requirements=requirements, wheelhouse=wheelhouse)
    package = build_package_wheel(repo=repo, outdir=context.parent / "dmpreserve-wheel")
    fingerprints = stage_context(
        dockerfile=repo / "env" / "Dockerfile", wheels=wheels, package=package, context=context
    )
    buildargs = {
        "BASE": base,
        "REF": tag,
        "VERSION": __version__,
        "SOURCE": SOURCE,
        "REVISION": revision or git_commit(repo),
    }
    docker_build(
        client=client,
        context=context,
        tag=tag,
        buildargs=buildargs,
        log=context.parent / "image-build.log",
        progress=progress,
    )
    rec = image_record(
        client,
        tag=tag,
        base=base,
        requirements_sha256=sha256_file(requirements),
        wheelhouse_sha256=fingerprints[0],
        package_sha256=fingerprints[1],
    )
    write_json(record, asdict(rec))
    return rec


def save_archive(client: Any, *, tag: str, tarball: Path, progress: bool = True) -> str:
    """``docker save`` through the SDK into ``tarball``; returns the image ID."""
    import docker.errors
    from tqdm import tqdm

    try:
        image = client.images.get(tag)
    except docker.errors.ImageNotFound:
        raise ImageError(
            "image not found in the Docker daemon; run `dmpreserve image build` first", field=tag
        ) from None
    with (
        open(tarball, "wb") as fh,
        tqdm(
            desc="docker save",
            unit="B",
            unit_scale=True,
            total=int(image.attrs.get("Size", 0)) or None,
            disable=not progress,
        ) as bar,
    ):
        for chunk in image.save(named=True):
            fh.write(chunk)
            bar.update(len(chunk))
    return image.id


def build_sif(*, tag: str, sif: Path, record: Path, apptainer: str = "apptainer", progress: bool = True) -> SifRecord:
    """Convert the Docker image ``tag`` to the SIF ``sif`` (atomically) and record its sha256."""
    exe = shutil.which(apptainer)
    if exe is None:
        raise ImageError(
            "apptainer not found; install it (as root: ../shared/tools/container-host apptainer "
            "PREFIX, then put PREFIX/usr/bin on PATH) or pass --apptainer",
            path=apptainer,
        )
    version = _run([exe, "--version"], what="apptainer --version").strip()
    client = docker_client()
    sif = sif.resolve()
    sif.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    with tempfile.TemporaryDirectory(dir=sif.parent, prefix=".sif-") as tmpdir:
        tarball = Path(tmpdir) / "image.tar"
        image_id = save_archive(client, tag=tag, tarball=tarball, progress=progress)
        env.setdefault("APPTAINER_TMPDIR", tmpdir)
        with atomic_write(sif) as tmp:
            _run(
                [
                    exe,
                    "build",
                    "--force",
                    "--mksquashfs-args",
                    MKSQUASHFS_ARGS,
                    str(tmp),
                    f"docker-archive://{tarball}",
                ],
                what="apptainer build",
                env=env,
            )
    rec = SifRecord(
        sif=str(sif),
        sha256=sha256_file(sif),
        size_bytes=sif.stat().st_size,
        uri=f"docker://{tag}",
        tag=tag,
        image_id=image_id,
        apptainer_version=version,
    )
    write_json(record, asdict(rec))
    return rec


def repository_root() -> Path:
    """The repository root of this checkout (the current directory, which must hold env/Dockerfile)."""
    repo = Path.cwd()
    if not (repo / "env" / "Dockerfile").is_file():
        raise ImageError("run from the repository root (env/Dockerfile not found)", path=repo / "env" / "Dockerfile")
    return repo
