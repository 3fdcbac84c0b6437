"""Subcommands of the tools around the analysis: bulk mock data, dataset clustering, the container image.

Handlers import the library late (see :mod:`dmpreserve.cli.steps`).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from dmpreserve import __version__
from dmpreserve.errors import InvalidConfig

_TAG = f"ghcr.io/dmpreserve/dmpreserve:{__version__}"


def register(sub, add) -> None:
    """Add ``bulk-mdc``, ``cluster`` and ``image build|sif`` to the ``dmpreserve`` parser."""
    p = add(
        sub,
        "bulk-mdc",
        "write GBs of mock reduced data (Parquet dataset) for benchmarks",
        "Bulk mode of the mock-data generator: a Parquet dataset (part-NNNNN.parquet, many row groups, "
        "plus _dataset.json) whose detector response is drawn, vectorized, from tables built with nestpy "
        "(mean and covariance of cS1 [phd] and log10(cS2/phd) per energy bin, NEST position corrections). "
        "Byte-identical for the same seed and size.",
    )
    p.add_argument("--outdir", required=True, metavar="DIR", help="output directory (created)")
    p.add_argument(
        "--size-gb",
        type=float,
        required=True,
        metavar="GB",
        help="approximate total size of the Parquet files [GB = 1e9 bytes]",
    )
    p.add_argument("--seed", type=int, default=20221011, help="master seed")
    p.add_argument("--detector", default="LZ_WS2022", help="nestpy detector")
    p.add_argument("--energy-min-kev", type=float, default=0.5, metavar="KEV", help="lowest deposit energy [keV]")
    p.add_argument("--energy-max-kev", type=float, default=300.0, metavar="KEV", help="highest deposit energy [keV]")
    p.add_argument("--nr-fraction", type=float, default=0.01, help="fraction of nuclear recoils (rest: flat ER)")
    p.add_argument("--rows-per-file", type=int, default=2_000_000, metavar="EVENTS", help="events per file")
    p.add_argument("--row-group-rows", type=int, default=125_000, metavar="EVENTS", help="events per row group")
    p.add_argument(
        "--table-events",
        type=int,
        default=200_000,
        metavar="EVENTS",
        help="NEST-simulated deposits the response tables are built from",
    )
    p.add_argument(
        "--cluster-by",
        choices=("cs1_phd", "cs2_phd", "drift_time_us", "s2_phd", "none"),
        default="cs1_phd",
        help="cluster each file's row groups by this column: events ranked by it and cut into row groups, "
        "event order kept inside each, so scans with pushed-down cuts on it skip row groups "
        "(default: cs1_phd, the energy proxy that the WIMP ROI cuts on); none: plain event order",
    )
    p.add_argument("--compression", default="zstd", choices=("zstd", "snappy", "lz4", "none"), help="Parquet codec")
    p.add_argument("--threads", type=int, default=None, help="files written in parallel (default: min(4, CPUs))")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(handler=run_bulk)

    p = add(
        sub,
        "cluster",
        "rewrite a Parquet dataset with row groups clustered by one column (e.g. cS1)",
        "Rewrite every *.parquet file of a reduced-data dataset directory, one file at a time: its events are "
        "ranked by the column and cut into row groups, keeping event order inside each, so that a selection "
        "that pushes its cuts down (dmpreserve.selection.stream.select_stream) skips the row groups outside the ROI. "
        "Same file names, rows, schema and metadata; the sidecar _dataset.json, if any, is copied with its "
        "layout set. Writes into a new directory; nothing is left there on error.",
    )
    p.add_argument(
        "--input", required=True, metavar="DIR", help="dataset directory (*.parquet, optional _dataset.json)"
    )
    p.add_argument("--outdir", required=True, metavar="DIR", help="new output directory (must not exist or be empty)")
    p.add_argument(
        "--by",
        choices=("cs1_phd", "cs2_phd", "drift_time_us", "s2_phd"),
        default="cs1_phd",
        help="column whose ranges the row groups hold (cs1_phd: the energy proxy the WIMP ROI cuts on)",
    )
    p.add_argument("--row-group-rows", type=int, default=125_000, metavar="EVENTS", help="events per row group")
    p.add_argument("--compression", default="zstd", choices=("zstd", "snappy", "lz4", "none"), help="Parquet codec")
    p.add_argument("--threads", type=int, default=None, help="files rewritten in parallel (None: min(2, CPUs))")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(handler=run_cluster)

    p = add(
        sub,
        "image",
        "build the project image (Docker) and its apptainer SIF",
        "Build the project image from env/Dockerfile with the Docker SDK, or convert it to an apptainer "
        "SIF; each writes a JSON record (image ID, digests, sha256) for provenance. Run from the "
        "repository root.",
    )
    isub = p.add_subparsers(dest="image_command", required=True, metavar="ACTION")

    b = add(
        isub,
        "build",
        "build the image from an offline wheelhouse of the hashed pins",
        "pip wheel --require-hashes of env/requirements.txt on the host (cached), the dmpreserve wheel, a "
        "build context with only these wheels and env/Dockerfile, then docker build (no registry is needed "
        "for Python packages). Sizes in the record are in bytes.",
    )
    b.add_argument("--tag", default=_TAG, help="image reference (the rules' container: is docker://TAG)")
    b.add_argument(
        "--base",
        default="python:3.11-slim-bookworm",
        help="Debian bookworm base image; without a registry: a tag made by "
        "../shared/tools/container-host base-image TAG",
    )
    b.add_argument(
        "--wheelhouse",
        default="build/wheelhouse",
        metavar="DIR",
        help="cache of the pinned wheels (rebuilt when env/requirements.txt changes)",
    )
    b.add_argument("--context", default="build/image-context", metavar="DIR", help="staged build context")
    b.add_argument(
        "--record",
        default="results/image/image.json",
        metavar="JSON",
        help="where to write the image record (ID, repo digests, layers, labels)",
    )
    b.add_argument("--revision", default=None, help="org.opencontainers.image.revision label (default: the git commit)")
    b.add_argument("--no-progress", action="store_true", help="no progress bar")
    b.set_defaults(handler=run_image_build)

    s = add(
        isub,
        "sif",
        "convert the image to an apptainer SIF",
        "docker save (Docker SDK) to a docker-archive, then apptainer build; records the SIF's sha256 "
        "and size (bytes) and the image ID. Needs apptainer on PATH (or --apptainer).",
    )
    s.add_argument("--tag", default=_TAG, help="image to convert")
    s.add_argument(
        "--sif", default=None, metavar="SIF", help=f"output SIF (default: results/image/dmpreserve-{__version__}.sif)"
    )
    s.add_argument("--record", default=None, metavar="JSON", help="record (default: SIF + .json)")
    s.add_argument("--apptainer", default="apptainer", metavar="EXE", help="apptainer executable")
    s.add_argument("--no-progress", action="store_true", help="no progress bar")
    s.set_defaults(handler=run_image_sif)


def run_bulk(args: argparse.Namespace) -> None:
    """``dmpreserve bulk-mdc``."""
    from dmpreserve.mdc.bulk import BulkOptions, generate_bulk

    if not (math.isfinite(args.size_gb) and 0.0 < args.size_gb <= 1e4):
        raise InvalidConfig(
            f"must be a finite size in (0, 10000] GB, got {args.size_gb!r}", path="bulk options", field="size_gb"
        )
    options = BulkOptions(
        target_bytes=int(args.size_gb * 1e9),
        seed=args.seed,
        detector=args.detector,
        energy_min_kev=args.energy_min_kev,
        energy_max_kev=args.energy_max_kev,
        nr_fraction=args.nr_fraction,
        rows_per_file=args.rows_per_file,
        row_group_rows=args.row_group_rows,
        compression=args.compression,
        table_events=args.table_events,
        cluster_by=None if args.cluster_by == "none" else args.cluster_by,
    )
    doc = generate_bulk(args.outdir, options, threads=args.threads, progress=not args.no_progress)
    gen = doc["generator"]
    print(f"wrote {doc['n_events']} events in {gen['files']} files ({gen['bytes'] / 1e9:.2f} GB) to {args.outdir}")


def run_cluster(args: argparse.Namespace) -> None:
    """``dmpreserve cluster``."""
    from dmpreserve.mdc.layout import cluster_dataset

    doc = cluster_dataset(
        args.input,
        args.outdir,
        by=args.by,
        row_group_rows=args.row_group_rows,
        compression=args.compression,
        threads=args.threads,
        progress=not args.no_progress,
    )
    print(
        f"wrote {doc['events']} events in {doc['files']} files ({doc['bytes'] / 1e9:.2f} GB) to {args.outdir}, "
        f"row groups of {args.row_group_rows} events clustered by {args.by}"
    )


def run_image_build(args: argparse.Namespace) -> None:
    """``dmpreserve image build``."""
    from dmpreserve.ops.image import build, repository_root

    rec = build(
        repo=repository_root(),
        tag=args.tag,
        base=args.base,
        wheelhouse=Path(args.wheelhouse),
        context=Path(args.context),
        record=Path(args.record),
        revision=args.revision,
        progress=not args.no_progress,
    )
    print(json.dumps({"tag": rec.tag, "image_id": rec.image_id, "record": args.record}))


def run_image_sif(args: argparse.Namespace) -> None:
    """``dmpreserve image sif``."""
    from dmpreserve.ops.image import build_sif

    sif = Path(args.sif or f"results/image/dmpreserve-{__version__}.sif")
    record = Path(args.record or f"{sif}.json")
    rec = build_sif(tag=args.tag, sif=sif, record=record, apptainer=args.apptainer, progress=not args.no_progress)
    print(json.dumps({"sif": rec.sif, "sha256": rec.sha256, "image_id": rec.image_id, "record": str(record)}))
