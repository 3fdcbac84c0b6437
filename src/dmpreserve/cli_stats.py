"""Command-line subcommands of the statistics area (limits, toys, discovery).

Import-light: only argparse here; the handlers are imported by ``dmpreserve.cli.main``.
"""

from __future__ import annotations

_CONVENTIONS = (
    "Direct-detection convention (Baxter et al., EPJC 81 (2021) 907): Neyman-constructed upper limit of the "
    "two-sided PLR t~mu (thresholds from toys at each tested mu, or the asymptotic 2.706 at 90% CL; config "
    "statistics.neyman_threshold) and the power-constrained limit (critical power statistics.pcl_power), "
    "with the median sensitivity and +-1/2 sigma bands; LHC convention: asymptotic CLs with q~mu; discovery: "
    "q0, p0, z0. Cross sections in cm^2, masses in GeV/c^2.")


def _likelihood_args(p) -> None:
    p.add_argument("--config", required=True, metavar="YAML")
    p.add_argument("--workspace", required=True, metavar="JSON", help="background-only pyhf workspace")
    p.add_argument("--patchset", required=True, metavar="JSON", help="signal patchset (one patch per mass)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def register(sub, add) -> None:
    """Add this area's subcommands to the ``dmpreserve`` parser."""
    p = add(sub, "limits", "90%% CL upper limits per mass (gather)",
            "Write limits.csv and limits.json: gather the per-mass files of 'limits-point' (--points), or "
            "compute every mass in this process. " + _CONVENTIONS)
    _likelihood_args(p)
    p.add_argument("--points", nargs="*", metavar="JSON", default=None,
                   help="per-mass results of 'dmpreserve limits-point' (all selected masses)")
    p.add_argument("--csv", required=True, metavar="CSV", help="limits.csv (columns: see README; cm^2)")
    p.add_argument("--json", required=True, metavar="JSON", help="limits.json (rows, settings, mu values)")
    p.set_defaults(handler="dmpreserve.stats.commands:run_limits")

    p = add(sub, "limits-point", "all limits of one mass (scatter job)",
            "Limits, sensitivity bands and discovery significance for the mass with index --index (0-based, "
            "in ascending mass order of the selected masses), including the toys if configured. " + _CONVENTIONS)
    _likelihood_args(p)
    p.add_argument("--index", required=True, type=int, metavar="N", help="mass index (0 .. number of masses - 1)")
    p.add_argument("-o", "--output", required=True, metavar="JSON", help="point file for 'dmpreserve limits --points'")
    p.set_defaults(handler="dmpreserve.stats.commands:run_limits_point")
