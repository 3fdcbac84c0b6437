"""The ``dmpreserve`` command line: one subcommand per step of the analysis.

Every subcommand takes explicit input and output paths (the Snakemake rules pass them), validates
its inputs, writes its outputs atomically and exits non-zero with one clear message naming the
file and field on bad input.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

import importlib

from dmpreserve import __version__
from dmpreserve.errors import DmpreserveError

LOG = logging.getLogger("dmpreserve")

# Subcommands of the later areas live in their own modules, which import only argparse at the top
# (keeps --help fast).  Each has ``register(sub, add)``: it adds its parsers with ``add`` and sets
# ``handler="module:function"`` as the parser default; ``main`` imports the handler late.
_EXTENSIONS = ("dmpreserve.cli_stats", "dmpreserve.cli_reinterpret", "dmpreserve.cli_image", "dmpreserve.cli_bulk")

_EPILOG = "Units: cS1/cS2 in phd (photons detected), energies in keV, masses in GeV/c^2, cross sections in cm^2."


def _add(sub, name: str, help_text: str, description: str) -> argparse.ArgumentParser:
    return sub.add_parser(name, help=help_text, description=description, epilog=_EPILOG,
                          formatter_class=argparse.ArgumentDefaultsHelpFormatter)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    parser = argparse.ArgumentParser(
        prog="dmpreserve",
        description="Reproducible, reinterpretable liquid-xenon WIMP search: mock data -> selections -> "
                    "backgrounds -> signal -> pyhf likelihood -> 90% CL limits -> plots, HEPData, provenance.",
        epilog=_EPILOG)
    parser.add_argument("--version", action="version", version=f"dmpreserve {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = _add(sub, "validate-config", "check a configuration file", "Validate a configuration against "
             "schemas/config.schema.json and the cross-checks a schema cannot express.")
    p.add_argument("--config", required=True)

    p = _add(sub, "mdc", "generate the mock-data challenge with NEST",
             "Generate the science run, calibration samples, NR response simulation and isolated-S1/S2 samples "
             "with nestpy from the configured seed. Each Parquet file gets a JSON sidecar (same stem).")
    p.add_argument("--config", required=True)
    for name in ("science", "truth", "calib-er", "calib-nr", "sim-nr", "isolated-s1", "isolated-s2"):
        p.add_argument(f"--{name}", required=True, metavar="PARQUET")

    p = _add(sub, "select", "apply the selection; cut flow and signal acceptance",
             "Apply the cuts declared in the configuration to the science data and the NR simulation.")
    p.add_argument("--config", required=True)
    p.add_argument("--science", required=True, metavar="PARQUET")
    p.add_argument("--sim-nr", required=True, metavar="PARQUET")
    p.add_argument("--selected", required=True, metavar="PARQUET", help="selected science events (+ .json sidecar)")
    p.add_argument("--cutflow", required=True, metavar="CSV")
    p.add_argument("--acceptance", required=True, metavar="CSV")

    p = _add(sub, "backgrounds", "estimate background templates and counts",
             "Build (cS1, log10 cS2) templates and expected counts for ER, neutrons, 8B CEvNS, accidentals "
             "and wall events, and histogram the observed events.")
    p.add_argument("--config", required=True)
    for name in ("science", "calib-er", "sim-nr", "isolated-s1", "isolated-s2"):
        p.add_argument(f"--{name}", required=True, metavar="PARQUET")
    p.add_argument("--templates", required=True, metavar="JSON")
    p.add_argument("--summary", required=True, metavar="CSV")

    p = _add(sub, "signal", "build the NR response matrix and WIMP signal templates",
             "Fold SI WIMP recoil spectra (standard halo, Helm form factor) through the NR response matrix.")
    p.add_argument("--config", required=True)
    p.add_argument("--sim-nr", required=True, metavar="PARQUET")
    p.add_argument("--templates", required=True, metavar="JSON", help="background templates (for the exposure)")
    p.add_argument("--response", required=True, metavar="JSON")
    p.add_argument("--signal", required=True, metavar="JSON")
    p.add_argument("--spectra", required=True, metavar="CSV")

    p = _add(sub, "spectrum", "write an SI WIMP recoil spectrum",
             "Differential SI WIMP-xenon recoil rate dR/dE in events/(t yr keV) on an energy grid.")
    p.add_argument("--mass", required=True, type=float, metavar="GEV", help="WIMP mass [GeV/c^2]")
    p.add_argument("--cross-section", required=True, type=float, metavar="CM2",
                   help="SI WIMP-nucleon cross section [cm^2]")
    p.add_argument("--energies", required=True, metavar="START:STOP:STEP", help="recoil energies [keV]")
    p.add_argument("--rho0", type=float, default=0.3, metavar="GEV_CM3", help="local DM density [GeV/cm^3]")
    p.add_argument("--v0", type=float, default=238.0, metavar="KM_S", help="circular speed [km/s]")
    p.add_argument("--vesc", type=float, default=544.0, metavar="KM_S", help="escape speed [km/s]")
    p.add_argument("--vearth", type=float, default=250.5, metavar="KM_S", help="Earth speed in the galactic frame [km/s]")
    p.add_argument("-o", "--output", required=True, metavar="CSV")

    p = _add(sub, "likelihood", "write the pyhf workspace and signal patchset",
             "Serialize the likelihood: background-only pyhf workspace and a patchset with one patch per mass.")
    p.add_argument("--config", required=True)
    p.add_argument("--templates", required=True, metavar="JSON")
    p.add_argument("--signal", required=True, metavar="JSON")
    p.add_argument("--workspace", required=True, metavar="JSON")
    p.add_argument("--patchset", required=True, metavar="JSON")

    p = _add(sub, "fit", "maximum-likelihood fits: pulls, correlations, MINOS, POI scan, goodness of fit",
             "iminuit fits of -2 ln L of the pyhf model: background-only (MIGRAD, HESSE, pulls, correlations, "
             "saturated-model goodness of fit with chi2 ndof = bins - free parameters and with toys); with "
             "--patchset also the signal-plus-background fit at the mass closest to --reference-mass (MINOS for "
             "mu, profile-likelihood scan of mu) and mu^ +- HESSE error per mass. Output: schemas/fit.schema.json.")
    p.add_argument("--workspace", required=True, metavar="JSON", help="background-only pyhf workspace")
    p.add_argument("--patchset", metavar="JSON", help="signal patchset (enables the signal-plus-background fits)")
    p.add_argument("--reference-mass", type=float, default=50.0, metavar="GEV",
                   help="WIMP mass [GeV/c^2] of the full signal-plus-background fit (closest patch in log mass)")
    p.add_argument("--scan-points", type=int, default=31, metavar="N",
                   help="points of the profile-likelihood scan of mu (dimensionless signal strength)")
    p.add_argument("--gof-toys", type=int, default=100, metavar="N",
                   help="toys for the goodness-of-fit p-value (0: asymptotic chi2 only)")
    p.add_argument("--seed", type=int, default=20210907, help="seed of the goodness-of-fit toys")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("-o", "--output", required=True, metavar="JSON")

    p = _add(sub, "plots", "make the result plots", "Limit curve (PCL headline, unconstrained PLR and CLs over "
             "the PLR sensitivity band; cross sections in cm^2), analysis space, cut flow, acceptance, and the fit "
             "plots: pulls, correlation matrix, profile-likelihood scan of mu, best-fit cross section per mass.")
    for name in ("limits", "templates", "signal", "selected", "cutflow", "acceptance", "fit"):
        p.add_argument(f"--{name}", required=True)
    p.add_argument("--outdir", required=True, help="writes limits.png/.pdf, analysis_space.png/.pdf, cutflow.png, "
                                                   "acceptance.png, pulls.png, correlation.png, poi_scan.png, "
                                                   "best_fit.png (the last two only for fits with a patchset)")

    p = _add(sub, "hepdata", "build and validate the HEPData record", "HEPData record (hepdata-lib), "
             "validated with hepdata-validator; the likelihood is attached as a HistFactory resource. The limit "
             "table carries both conventions (power-constrained and unconstrained PLR limits with the Neyman "
             "construction, CLs), the sensitivity bands and the discovery p-value; with --fit also the fit results.")
    for name in ("limits", "templates", "selected", "cutflow", "acceptance", "workspace", "patchset"):
        p.add_argument(f"--{name}", required=True)
    p.add_argument("--fit", metavar="JSON", help="fit results (dmpreserve fit) to add as tables")
    p.add_argument("--resource", nargs=2, action="append", metavar=("PATH", "DESCRIPTION"),
                   help="attach a regular file as an additional resource with this description (repeatable; "
                        "at most 100 MiB per file)")
    p.add_argument("-o", "--output", required=True, metavar="TAR_GZ")

    p = _add(sub, "provenance", "record checksums, versions, commit and image", "Write provenance.json.")
    p.add_argument("--config", required=True)
    p.add_argument("--inputs", nargs="+", required=True)
    p.add_argument("--outputs", nargs="+", required=True)
    p.add_argument("-o", "--output", required=True, metavar="JSON")

    for module in _EXTENSIONS:
        importlib.import_module(module).register(sub, _add)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (0 ok, 2 bad input)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    for noisy in ("pyhf", "matplotlib", "jax"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if os.environ.get("SLURM_JOB_ID"):  # scale-out runs: the job id goes into every rule's log
        LOG.info("running in SLURM job %s on node %s", os.environ["SLURM_JOB_ID"], os.environ.get("SLURMD_NODENAME", "?"))
    handler = getattr(args, "handler", None)
    try:
        if handler:  # a subcommand from one of the _EXTENSIONS modules
            module, function = handler.split(":")
            getattr(importlib.import_module(module), function)(args)
        else:
            from dmpreserve import commands  # imported late: keeps --help and --version fast

            getattr(commands, "run_" + args.command.replace("-", "_"))(args)
    except DmpreserveError as exc:
        print(f"dmpreserve {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
