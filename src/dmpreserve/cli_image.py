"""Command-line subcommands of the container image area: ``dmpreserve image build|sif``.

Import-light: only argparse here; the handlers (``dmpreserve.image``) are imported by
``dmpreserve.cli.main``.
"""

from __future__ import annotations

from dmpreserve import __version__

_TAG = f"ghcr.io/dmpreserve/dmpreserve:{__version__}"


def register(sub, add) -> None:
    """Add ``image build`` and ``image sif`` to the ``dmpreserve`` parser."""
    p = add(sub, "image", "build the project image (Docker) and its apptainer SIF",
            "Build the project image from env/Dockerfile with the Docker SDK, or convert it to an apptainer "
            "SIF; each writes a JSON record (image ID, digests, sha256) for provenance. Run from the "
            "repository root.")
    isub = p.add_subparsers(dest="image_command", required=True, metavar="ACTION")

    b = add(isub, "build", "build the image from an offline wheelhouse of the hashed pins",
            "pip wheel --require-hashes of env/requirements.txt on the host (cached), the dmpreserve wheel, a "
            "build context with only these wheels and env/Dockerfile, then docker build (no registry is needed "
            "for Python packages). Sizes in the record are in bytes.")
    b.add_argument("--tag", default=_TAG, help="image reference (the rules' container: is docker://TAG)")
    b.add_argument("--base", default="python:3.11-slim-bookworm",
                   help="Debian bookworm base image; without a registry: a tag made by "
                        "../shared/tools/container-host base-image TAG")
    b.add_argument("--wheelhouse", default="build/wheelhouse", metavar="DIR",
                   help="cache of the pinned wheels (rebuilt when env/requirements.txt changes)")
    b.add_argument("--context", default="build/image-context", metavar="DIR", help="staged build context")
    b.add_argument("--record", default="results/image/image.json", metavar="JSON",
                   help="where to write the image record (ID, repo digests, layers, labels)")
    b.add_argument("--revision", default=None,
                   help="org.opencontainers.image.revision label (default: the git commit)")
    b.add_argument("--no-progress", action="store_true", help="no progress bar")
    b.set_defaults(handler="dmpreserve.image:run_build")

    s = add(isub, "sif", "convert the image to an apptainer SIF",
            "docker save (Docker SDK) to a docker-archive, then apptainer build; records the SIF's sha256 "
            "and size (bytes) and the image ID. Needs apptainer on PATH (or --apptainer).")
    s.add_argument("--tag", default=_TAG, help="image to convert")
    s.add_argument("--sif", default=None, metavar="SIF",
                   help=f"output SIF (default: results/image/dmpreserve-{__version__}.sif)")
    s.add_argument("--record", default=None, metavar="JSON", help="record (default: SIF + .json)")
    s.add_argument("--apptainer", default="apptainer", metavar="EXE", help="apptainer executable")
    s.add_argument("--no-progress", action="store_true", help="no progress bar")
    s.set_defaults(handler="dmpreserve.image:run_sif")

