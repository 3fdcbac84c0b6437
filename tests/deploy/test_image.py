"""The project image without Docker: pins, wheelhouse checks, build context, Dockerfile, CLI errors,
and the container part of provenance.  Building the image and the SIF and running the workflow in
it is the CI container stage (.ci/stages/container.sh), which needs root and Docker."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from dmpreserve import __version__
from dmpreserve.cli import main
from dmpreserve.ops.image import SDIST_ONLY, ImageError, check_wheelhouse, read_pins, stage_context, wheel_project
from dmpreserve.publish import provenance

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "env" / "Dockerfile"


def _wheel(directory: Path, name: str, version: str, content: bytes) -> Path:
    path = directory / f"{name}-{version}-py3-none-any.whl"
    path.write_bytes(content)
    return path


def _requirements(path: Path, pins: dict[str, tuple[str, bytes]]) -> Path:
    lines = []
    for name, (version, content) in pins.items():
        lines.append(f"{name}=={version} \\\n    --hash=sha256:{hashlib.sha256(content).hexdigest()}\n")
    path.write_text("# generated\n" + "".join(lines), encoding="utf-8")
    return path


@pytest.fixture()
def house(tmp_path):
    """A wheelhouse of two fake wheels and requirements pinning them by hash."""
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    _wheel(wheels, "foo_bar", "1.0", b"foo")
    _wheel(wheels, "baz", "2.0", b"baz")
    req = _requirements(tmp_path / "requirements.txt", {"Foo.Bar": ("1.0", b"foo"), "baz": ("2.0", b"baz")})
    return wheels, req


def test_project_pins_are_all_hashed():
    """The image installs env/requirements.txt: the analysis runtime, without the tools' pins."""
    pins = read_pins(REPO / "env" / "requirements.txt")
    for needed in ("numpy", "pyhf", "snakemake", "setuptools", *SDIST_ONLY):
        assert needed in pins
    assert all(pin.hashes for pin in pins.values())
    dev = read_pins(REPO / "env" / "requirements-dev.txt")
    for tool in ("pytest", "hypothesis", "atheris", "docker", "snakemake-executor-plugin-slurm", "ruff"):
        assert tool in dev and tool not in pins
    assert all(pin.hashes for pin in dev.values())
    assert all(dev[name].version == pins[name].version for name in dev.keys() & pins.keys())


def test_pins_without_hash_or_file_are_refused(tmp_path):
    bad = tmp_path / "requirements.txt"
    bad.write_text("numpy==2.0.0\n", encoding="utf-8")
    with pytest.raises(ImageError) as err:
        read_pins(bad)
    assert err.value.field == "numpy" and err.value.path == str(bad)
    with pytest.raises(ImageError, match="not found"):
        read_pins(tmp_path / "missing.txt")


def test_wheelhouse_matches_pins(house):
    wheels, req = house
    assert [w.name for w in check_wheelhouse(wheels, read_pins(req))] == [
        "baz-2.0-py3-none-any.whl",
        "foo_bar-1.0-py3-none-any.whl",
    ]
    assert wheel_project(wheels / "foo_bar-1.0-py3-none-any.whl") == ("foo-bar", "1.0")


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda w: (w / "baz-2.0-py3-none-any.whl").write_bytes(b"tampered"), "sha256"),
        (lambda w: (w / "baz-2.0-py3-none-any.whl").unlink(), "no wheel for pins: baz"),
        (lambda w: _wheel(w, "extra", "0.1", b"x"), "not one of the pins"),
        (lambda w: (w / "baz-2.0-py3-none-any.whl").rename(w / "baz-3.0-py3-none-any.whl"), "not one of the pins"),
    ],
)
def test_wheelhouse_mismatch_is_refused(house, change, message):
    wheels, req = house
    change(wheels)
    with pytest.raises(ImageError, match=message):
        check_wheelhouse(wheels, read_pins(req))


def test_sdist_only_pin_is_built_locally(tmp_path):
    """connection-pool's wheel is built from its hash-checked sdist, so its hash is not in the pins."""
    wheels = tmp_path / "w"
    wheels.mkdir()
    _wheel(wheels, "connection_pool", "0.0.3", b"built here")
    req = _requirements(tmp_path / "r.txt", {"connection-pool": ("0.0.3", b"the sdist")})
    assert len(check_wheelhouse(wheels, read_pins(req))) == 1


def test_build_context_holds_only_wheels_and_dockerfile(house, tmp_path):
    wheels, _ = house
    package = _wheel(tmp_path, "dmpreserve", __version__, b"pkg")
    context = tmp_path / "context"
    digests = stage_context(
        dockerfile=DOCKERFILE, wheels=sorted(wheels.glob("*.whl")), package=package, context=context
    )
    files = sorted(str(p.relative_to(context)) for p in context.rglob("*") if p.is_file())
    assert files == sorted(
        [
            "Dockerfile",
            f"package/dmpreserve-{__version__}-py3-none-any.whl",
            "package/SHA256SUMS",
            "wheelhouse/SHA256SUMS",
            "wheelhouse/baz-2.0-py3-none-any.whl",
            "wheelhouse/foo_bar-1.0-py3-none-any.whl",
        ]
    )
    manifest = (context / "wheelhouse" / "SHA256SUMS").read_text(encoding="utf-8")
    assert manifest.splitlines()[0] == f"{hashlib.sha256(b'baz').hexdigest()}  baz-2.0-py3-none-any.whl"
    assert digests[0] == hashlib.sha256(manifest.encode()).hexdigest()
    if shutil.which("sha256sum"):  # the check the Dockerfile runs
        subprocess.run(
            ["sha256sum", "--check", "--strict", "--quiet", "SHA256SUMS"], cwd=context / "wheelhouse", check=True
        )


def test_dockerfile_rules():
    text = DOCKERFILE.read_text(encoding="utf-8")
    code = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    froms = [i for i, line in enumerate(code) if line.startswith("FROM ")]
    assert code[0].startswith("ARG BASE=") and "bookworm" in code[0] and "3.11" in code[0]
    assert len(froms) >= 2 and code[froms[0]].startswith("FROM ${BASE} AS ")
    stages = {code[i].split(" AS ")[-1] for i in froms if " AS " in code[i]}
    assert all(code[i].split()[1] in stages | {"${BASE}"} for i in froms), "every stage starts from BASE"
    assert not re.search(r"^# *syntax=", text, flags=re.M), "a syntax line pulls a frontend from a registry"
    assert not any("--mount" in line or line.startswith("ADD ") for line in code)
    copies = [line for line in code if line.startswith("COPY ")]
    assert all(re.match(r"COPY (--from=deps /opt/dmpreserve |wheelhouse/ |package/ )", c) for c in copies), copies
    assert [line for line in code if line.startswith("USER ")][-1] != "USER root"
    assert "--no-index" in text and "sha256sum --check" in text
    for label in ("version", "source", "revision"):
        assert f"org.opencontainers.image.{label}=" in text
    assert "dmpreserve --version" in text


def test_image_build_without_docker_exits_2(monkeypatch, capsys):
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    assert main(["image", "build", "--record", "/nonexistent/x.json"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("dmpreserve image: error:") and "Docker daemon" in err[0]


def test_image_build_outside_repo_exits_2(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["image", "build"]) == 2
    assert "env/Dockerfile" in capsys.readouterr().err


def test_image_sif_without_apptainer_exits_2(tmp_path, capsys):
    assert main(["image", "sif", "--apptainer", str(tmp_path / "no-apptainer"), "--sif", str(tmp_path / "x.sif")]) == 2
    assert "apptainer not found" in capsys.readouterr().err
    assert not (tmp_path / "x.sif").exists()


def test_image_help_names_units_and_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["image", "sif", "--help"])
    out = capsys.readouterr().out
    assert "bytes" in out and f"dmpreserve-{__version__}.sif" in out


def test_provenance_in_apptainer(tmp_path):
    labels = tmp_path / "labels.json"
    labels.write_text(
        json.dumps(
            {"org.opencontainers.image.version": __version__, "org.opencontainers.image.revision": "abc", "other": "x"}
        ),
        encoding="utf-8",
    )
    sif = tmp_path / "x.simg"
    sif.write_bytes(b"sif")
    info = provenance.container_info(
        {"APPTAINER_CONTAINER": str(sif), "APPTAINER_NAME": "x.simg"},
        labels_file=labels,
        image_info=tmp_path / "none",
        dockerenv=tmp_path / "none",
    )
    assert info == {
        "engine": "apptainer",
        "image": str(sif),
        "image_sha256": hashlib.sha256(b"sif").hexdigest(),
        "name": "x.simg",
        "labels": {"org.opencontainers.image.version": __version__, "org.opencontainers.image.revision": "abc"},
    }


def test_provenance_project_image_and_bare_host(tmp_path):
    image = tmp_path / "image.json"
    image.write_text(json.dumps({"ref": "ghcr.io/x/y:1", "org.opencontainers.image.version": "1"}), encoding="utf-8")
    kw = {"labels_file": tmp_path / "none", "dockerenv": tmp_path / "none"}
    info = provenance.container_info({"SINGULARITY_CONTAINER": "/y.sif"}, image_info=image, **kw)
    assert info["engine"] == "singularity" and info["labels"] == {"org.opencontainers.image.version": "1"}
    assert info["image_sha256"] is None  # the SIF is not visible inside
    info = provenance.container_info({}, image_info=image, **kw)
    assert info["engine"] == "container" and info["image"] == "ghcr.io/x/y:1"
    assert provenance.container_info({}, image_info=tmp_path / "none", **kw) is None
    runtime = provenance.container_runtime({"APPTAINER_CONTAINER": "/y.sif"})
    assert runtime["inside_container"] == "/y.sif" and runtime["python_executable"]


def test_git_commit_without_git_executable(tmp_path, monkeypatch):
    git = tmp_path / ".git"
    (git / "refs" / "heads").mkdir(parents=True)
    (git / "HEAD").write_text("ref: refs/heads/main\n", encoding="utf-8")
    (git / "refs" / "heads" / "main").write_text("a" * 40 + "\n", encoding="utf-8")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert provenance.git_commit(tmp_path) == "a" * 40 + "-unchecked"
    (git / "refs" / "heads" / "main").unlink()
    (git / "packed-refs").write_text(f"# pack-refs\n{'b' * 40} refs/heads/main\n", encoding="utf-8")
    assert provenance.git_commit(tmp_path) == "b" * 40 + "-unchecked"
    assert provenance.git_commit(tmp_path / "nowhere") == "unknown"
