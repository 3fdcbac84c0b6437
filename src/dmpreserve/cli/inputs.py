"""Subcommands of the input datasets: ``inputs-manifest`` (rule inputs_manifest) and ``partition``.

Handlers import the library late (see :mod:`dmpreserve.cli.steps`).
"""

from __future__ import annotations

import argparse


def register(sub, add) -> None:
    """Add ``inputs-manifest`` and ``partition`` to the ``dmpreserve`` parser."""
    p = add(
        sub,
        "inputs-manifest",
        "check and record the dataset inputs (sha256, location, storage plugin)",
        "Hash every file of the dataset inputs (config section inputs; for a URL the local copy the Snakemake "
        "storage plugin made), check each sha256 the configuration declares (a mismatch: exit 2 naming the "
        "input, file and field, nothing written) and write the manifest: per input and file the location or "
        "URL, the local path, the sha256 and size of the local copy, and the storage plugin and its version.",
    )
    p.add_argument("--config", required=True, metavar="YAML", help="the resolved configuration")
    p.add_argument(
        "--file",
        nargs=3,
        action="append",
        required=True,
        metavar=("INPUT", "LOCATION", "LOCAL"),
        help="one file of an input: the input's name (science, calibration_er, ...), the file's location as "
        "configured (path or URL) and its local path (repeatable; Parquet files and sidecars)",
    )
    p.add_argument("-o", "--output", required=True, metavar="JSON", help="the manifest (results/inputs/manifest.json)")
    p.set_defaults(handler=run_inputs_manifest)

    p = add(
        sub,
        "partition",
        "split a reduced-data file into a dataset of several files",
        "Write OUTDIR/part-000.parquet ... with their JSON sidecars: the events of one reduced-data file in N "
        "contiguous slices (file order kept), each sidecar with the part's n_events and live_time_s (the live "
        "times sum exactly to the original's). A directory input (config inputs.NAME.location) of these parts "
        "gives the same analysis as the single file.",
    )
    p.add_argument("--input", required=True, metavar="PARQUET", help="the reduced-data file (sidecar beside it)")
    p.add_argument("--parts", required=True, type=int, metavar="N", help="number of parts")
    p.add_argument("--outdir", required=True, metavar="DIR")
    p.set_defaults(handler=run_partition)


def run_inputs_manifest(args: argparse.Namespace) -> None:
    """``dmpreserve inputs-manifest``."""
    from dmpreserve.config import load_config
    from dmpreserve.files import write_json
    from dmpreserve.publish.inputs import build_inputs_manifest

    cfg = load_config(args.config)
    write_json(args.output, build_inputs_manifest(cfg, [tuple(f) for f in args.file]))


def run_partition(args: argparse.Namespace) -> None:
    """``dmpreserve partition``."""
    from dmpreserve.artifacts.partition import partition_reduced

    for path in partition_reduced(args.input, args.parts, args.outdir):
        print(path)
