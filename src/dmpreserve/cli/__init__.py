"""The ``dmpreserve`` command line: one subcommand per step of the analysis, one dispatch.

Every subcommand takes explicit input and output paths (the Snakemake rules pass them), validates
its inputs, writes its outputs atomically and exits 2 with one clear message naming the file and
field on bad input.  Each module of this package (:mod:`~dmpreserve.cli.steps`, :mod:`~dmpreserve.cli.inputs`,
:mod:`~dmpreserve.cli.select`, :mod:`~dmpreserve.cli.signal`, :mod:`~dmpreserve.cli.backgrounds`,
:mod:`~dmpreserve.cli.stats`, :mod:`~dmpreserve.cli.unbinned`, :mod:`~dmpreserve.cli.publish`,
:mod:`~dmpreserve.cli.plotlimits`,
:mod:`~dmpreserve.cli.reinterpret`, :mod:`~dmpreserve.cli.combine`, :mod:`~dmpreserve.cli.tools`)
defines its subcommands' parsers next to their handlers (``register(sub, add)`` sets
``handler=function``); :func:`main` calls ``args.handler(args)``.
"""

from __future__ import annotations

import argparse
import ctypes
import logging
import os
import sys
from collections.abc import Sequence

from dmpreserve import __version__
from dmpreserve.cli import (
    backgrounds,
    combine,
    inputs,
    plotlimits,
    publish,
    reinterpret,
    select,
    signal,
    stats,
    steps,
    tools,
    toys,
    unbinned,
)
from dmpreserve.errors import DmpreserveError

LOG = logging.getLogger("dmpreserve")

_EPILOG = "Units: cS1/cS2 in phd (photons detected), energies in keV, masses in GeV/c^2, cross sections in cm^2."


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Appends "(default: ...)" only where it tells something: not for None or False (an option that is off or
    whose help text already says what happens without it), nor where the help states its default itself."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if action.default is None or action.default is False or "default" in text:
            return action.help
        return super()._get_help_string(action)


def _add(sub, name: str, help_text: str, description: str) -> argparse.ArgumentParser:
    return sub.add_parser(name, help=help_text, description=description, epilog=_EPILOG, formatter_class=HelpFormatter)


#: glibc ``mallopt`` parameters (malloc.h): M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD.
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3


def tune_allocator() -> bool:
    """Keep freed memory in the process's heap instead of handing it back to the kernel (glibc only).

    The statistics steps allocate and free the same large temporaries (toys x bins arrays of a few MB) thousands
    of times.  With glibc's defaults each of them is an ``mmap``/``munmap`` pair whose pages the kernel zeroes
    again on first touch: a third of a ``limits-point`` job's time was system time.  Serving them from the heap
    (mmap threshold 32 MiB, glibc's largest; trim threshold 512 MiB) leaves every result bit for bit the same
    and made ``limits-point`` and ``toys-shard`` of the default analysis 1.5x faster
    (benchmarks/bench_allocator.py).  A ``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_`` or
    ``MALLOC_TOP_PAD_`` in the environment is the user's choice and is kept.  Returns whether the settings were
    applied (False then, and on a C library without ``mallopt``, e.g. macOS).
    """
    if any(os.environ.get(f"MALLOC_{name}_") for name in ("MMAP_THRESHOLD", "TRIM_THRESHOLD", "TOP_PAD")):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return all(
        mallopt(param, value) == 1
        for param, value in ((_M_MMAP_THRESHOLD, 32 << 20), (_M_TRIM_THRESHOLD, 512 << 20), (_M_TOP_PAD, 16 << 20))
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    parser = argparse.ArgumentParser(
        prog="dmpreserve",
        description="Reproducible, reinterpretable liquid-xenon WIMP search: mock data -> selections -> "
        "backgrounds -> signal -> pyhf likelihood -> 90% CL limits -> plots, HEPData, provenance.",
        epilog=_EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"dmpreserve {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    for module in (
        steps,
        inputs,
        select,
        backgrounds,
        signal,
        stats,
        toys,
        unbinned,
        publish,
        plotlimits,
        reinterpret,
        combine,
        tools,
    ):
        module.register(sub, _add)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (0 ok, 2 bad input)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("pyhf", "matplotlib", "jax", "pytensor"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if os.environ.get("SLURM_JOB_ID"):  # scale-out runs: the job id goes into every rule's log
        LOG.info(
            "running in SLURM job %s on node %s", os.environ["SLURM_JOB_ID"], os.environ.get("SLURMD_NODENAME", "?")
        )
    # One BLAS thread per job: our matrices are small (a few hundred bins), Snakemake already runs one job per
    # core, and OpenBLAS's own threads then only contend (up to 40x slower batched toy fits measured on a
    # loaded 2-core machine).  Set before the handler imports numpy; an explicit setting is kept.  Not
    # OMP_NUM_THREADS: Arrow sizes its scan thread pool from it, and the streaming selection uses those threads.
    for var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    tune_allocator()
    try:
        args.handler(args)
    except DmpreserveError as exc:
        print(f"dmpreserve {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
