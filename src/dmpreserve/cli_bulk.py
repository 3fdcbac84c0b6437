"""Command-line subcommands of the bulk mock data for benchmarks area.

Import-light: only argparse here; the handlers are imported by ``dmpreserve.cli.main``.
"""

from __future__ import annotations


def register(sub, add) -> None:
    """Add this area's subcommands to the ``dmpreserve`` parser (none yet)."""
