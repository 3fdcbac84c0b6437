"""Command-line subcommands of the statistics area (limits, toys, discovery).

Import-light: only argparse here; the handlers are imported by ``dmpreserve.cli.main``.
"""

from __future__ import annotations


def register(sub, add) -> None:
    """Add this area's subcommands to the ``dmpreserve`` parser."""
    p = add(sub, "limits", "90%% CL upper limits per mass",
            "Asymptotic CLs (q~mu) upper limits with expected bands from the serialized likelihood.")
    p.add_argument("--config", required=True)
    p.add_argument("--workspace", required=True, metavar="JSON")
    p.add_argument("--patchset", required=True, metavar="JSON")
    p.add_argument("--csv", required=True, metavar="CSV")
    p.add_argument("--json", required=True, metavar="JSON")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(handler="dmpreserve.commands:run_limits")
