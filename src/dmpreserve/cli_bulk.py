"""Command-line subcommands of the bulk mock data for benchmarks area.

Import-light: only argparse here; the handlers are imported by ``dmpreserve.cli.main``.
"""

from __future__ import annotations


def register(sub, add) -> None:
    """Add this area's subcommands to the ``dmpreserve`` parser."""
    p = add(sub, "bulk-mdc", "write GBs of mock reduced data (Parquet dataset) for benchmarks",
            "Bulk mode of the mock-data generator: a Parquet dataset (part-NNNNN.parquet, many row groups, "
            "plus _dataset.json) whose detector response is drawn, vectorized, from tables built with nestpy "
            "(mean and covariance of cS1 [phd] and log10(cS2/phd) per energy bin, NEST position corrections). "
            "Byte-identical for the same seed and size.")
    p.add_argument("--outdir", required=True, metavar="DIR", help="output directory (created)")
    p.add_argument("--size-gb", type=float, required=True, metavar="GB",
                   help="approximate total size of the Parquet files [GB = 1e9 bytes]")
    p.add_argument("--seed", type=int, default=20221011, help="master seed")
    p.add_argument("--detector", default="LZ_WS2022", help="nestpy detector")
    p.add_argument("--energy-min-kev", type=float, default=0.5, metavar="KEV", help="lowest deposit energy [keV]")
    p.add_argument("--energy-max-kev", type=float, default=300.0, metavar="KEV", help="highest deposit energy [keV]")
    p.add_argument("--nr-fraction", type=float, default=0.01, help="fraction of nuclear recoils (rest: flat ER)")
    p.add_argument("--rows-per-file", type=int, default=2_000_000, metavar="EVENTS", help="events per file")
    p.add_argument("--row-group-rows", type=int, default=125_000, metavar="EVENTS", help="events per row group")
    p.add_argument("--table-events", type=int, default=200_000, metavar="EVENTS",
                   help="NEST-simulated deposits the response tables are built from")
    p.add_argument("--cluster-by", choices=("cs1_phd", "cs2_phd", "drift_time_us", "s2_phd", "none"),
                   default="cs1_phd",
                   help="cluster each file's row groups by this column: events ranked by it and cut into row groups, "
                        "event order kept inside each, so scans with pushed-down cuts on it skip row groups "
                        "(default: cs1_phd, the energy proxy that the WIMP ROI cuts on); none: plain event order")
    p.add_argument("--compression", default="zstd", choices=("zstd", "snappy", "lz4", "none"), help="Parquet codec")
    p.add_argument("--threads", type=int, default=None, help="files written in parallel (default: min(4, CPUs))")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(handler="dmpreserve.bulk:run_bulk")

    p = add(sub, "cluster", "rewrite a Parquet dataset with row groups clustered by one column (e.g. cS1)",
            "Rewrite every *.parquet file of a reduced-data dataset directory, one file at a time: its events are "
            "ranked by the column and cut into row groups, keeping event order inside each, so that a selection "
            "that pushes its cuts down (dmpreserve.selection.select_stream) skips the row groups outside the ROI. "
            "Same file names, rows, schema and metadata; the sidecar _dataset.json, if any, is copied with its "
            "layout set. Writes into a new directory; nothing is left there on error.")
    p.add_argument("--input", required=True, metavar="DIR", help="dataset directory (*.parquet, optional _dataset.json)")
    p.add_argument("--outdir", required=True, metavar="DIR", help="new output directory (must not exist or be empty)")
    p.add_argument("--by", choices=("cs1_phd", "cs2_phd", "drift_time_us", "s2_phd"), default="cs1_phd",
                   help="column whose ranges the row groups hold (cs1_phd: the energy proxy the WIMP ROI cuts on)")
    p.add_argument("--row-group-rows", type=int, default=125_000, metavar="EVENTS", help="events per row group")
    p.add_argument("--compression", default="zstd", choices=("zstd", "snappy", "lz4", "none"), help="Parquet codec")
    p.add_argument("--threads", type=int, default=None, help="files rewritten in parallel (None: min(2, CPUs))")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(handler="dmpreserve.layout:run_cluster")
