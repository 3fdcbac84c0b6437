"""Subcommands of the input datasets: ``inputs-manifest`` (rule inputs_manifest), ``partition``, and the imports of
released text tables: ``import-events`` (rule import_events) and ``import-efficiency`` (rule import_efficiency).

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
    p.add_argument(
        "--outdir",
        required=True,
        metavar="DIR",
        help="directory to write the parts to: part-000.parquet, part-001.parquet, ... with their .json sidecars",
    )
    p.set_defaults(handler=run_partition)

    p = add(
        sub,
        "import-events",
        "convert a released event table (text) into reduced data",
        "Read a collaboration's released events after all cuts (headerless text, one event per row, columns as "
        "the configuration's inputs.NAME.table.columns name them, e.g. cs1_phd [phd] and log10_cs2 "
        "[log10(phd)]), check every row (field count, finite numbers, inside the configured ROI) and write a "
        "reduced-data Parquet file with its sidecar; the sidecar's live time, exposure, upstream cuts and "
        "detector come from the table's description file (inputs.NAME.table.description). Exit 2 naming the "
        "file and row on bad input, nothing written.",
    )
    p.add_argument("--config", required=True, metavar="YAML", help="the resolved configuration")
    p.add_argument("--input", required=True, metavar="NAME", help="the input's name (science, ...)")
    p.add_argument("--table", required=True, metavar="TEXT", help="the released table (local copy)")
    p.add_argument("--parquet", required=True, metavar="PARQUET", help="the reduced-data file (sidecar beside it)")
    p.set_defaults(handler=run_import_events)

    p = add(
        sub,
        "import-efficiency",
        "combine a released efficiency curve (median, lower, upper files) into one CSV",
        "Read a released NR signal-efficiency curve given as three headerless two-column files (true NR energy "
        "[keV], efficiency), check them (finite, energies strictly increasing, efficiencies in [0, 1]), "
        "interpolate the lower and upper curves onto the median's energies and write the CSV that "
        "signal.efficiency.curve reads (energy_kev, efficiency, efficiency_lo, efficiency_hi).",
    )
    p.add_argument(
        "--median",
        required=True,
        metavar="TEXT",
        help="the median curve: headerless, two columns, true NR energy [keV] and efficiency "
        "(signal.efficiency.curve.median)",
    )
    p.add_argument(
        "--lower",
        required=True,
        metavar="TEXT",
        help="the lower edge of the band, same format (signal.efficiency.curve.lower; becomes efficiency_lo)",
    )
    p.add_argument(
        "--upper",
        required=True,
        metavar="TEXT",
        help="the upper edge of the band, same format (signal.efficiency.curve.upper; becomes efficiency_hi)",
    )
    p.add_argument(
        "--extend-flat-to-kev",
        type=float,
        metavar="KEV",
        help="continue the curve at its last values up to this energy [keV] "
        "(signal.efficiency.curve.extend_flat_to_kev)",
    )
    p.add_argument("-o", "--output", required=True, metavar="CSV", help="the efficiency curve to write")
    p.set_defaults(handler=run_import_efficiency)


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


def run_import_events(args: argparse.Namespace) -> None:
    """``dmpreserve import-events``."""
    from dmpreserve.artifacts.released import import_event_table
    from dmpreserve.config import load_config
    from dmpreserve.errors import InvalidConfig
    from dmpreserve.files import sha256_file

    cfg = load_config(args.config)
    spec = cfg.inputs.get(args.input)
    if not isinstance(spec, dict) or "table" not in spec:
        raise InvalidConfig(f"inputs.{args.input} is not a released table (no 'table' key)", path=args.config)
    n = import_event_table(
        args.table,
        spec["table"]["columns"],
        spec["table"]["description"],
        args.parquet,
        roi=cfg.cuts(kinds=("roi",)),
        sha256=sha256_file(args.table),
    )
    print(f"{args.input}: {n} events from {args.table} -> {args.parquet}")


def run_import_efficiency(args: argparse.Namespace) -> None:
    """``dmpreserve import-efficiency``."""
    from dmpreserve.artifacts.released import read_efficiency_triplet
    from dmpreserve.artifacts.response import EFFICIENCY_COLUMNS
    from dmpreserve.files import write_csv

    curve = read_efficiency_triplet(args.median, args.lower, args.upper, extend_flat_to_kev=args.extend_flat_to_kev)
    write_csv(args.output, EFFICIENCY_COLUMNS, curve.rows())
    print(
        f"{len(curve.energy_kev)} points, {curve.energy_kev[0]:g}-{curve.energy_kev[-1]:g} keV; band widened to "
        f"contain the median at {curve.widened} point(s) -> {args.output}"
    )
