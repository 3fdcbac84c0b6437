"""Command-line subcommands of the reinterpretation area: kit, reinterpret, verify.

Import-light: only argparse here; the handlers are imported by ``dmpreserve.cli.main``.
"""

from __future__ import annotations


def register(sub, add) -> None:
    """Add this area's subcommands to the ``dmpreserve`` parser (and ``--model`` to ``signal``)."""
    signal = sub.choices.get("signal")
    if signal is not None:
        signal.add_argument("--model", metavar="YAML", default=None,
                            help="signal model file (schemas/signal_model.schema.json; NR models); default: SI "
                                 "with the configuration's halo and mass grid")

    p = add(sub, "kit", "assemble the reinterpretation kit",
            "Copy the background-only workspace, NR response, signal efficiency and limits into a kit directory, "
            "simulate the ER response to monoenergetic lines with NEST (seeded), write kit.json (sha256 of every "
            "file) and a deterministic kit.tar.gz.")
    p.add_argument("--config", required=True)
    p.add_argument("--signal-model", required=True, metavar="YAML")
    for name in ("workspace", "response", "templates", "acceptance", "limits"):
        p.add_argument(f"--{name}", required=True)
    p.add_argument("--outdir", required=True, help="kit directory")
    p.add_argument("--tarball", default=None, metavar="TAR_GZ", help="archive path (default OUTDIR/kit.tar.gz)")
    p.add_argument("--er-lines", default="0.5:30:0.5", metavar="START:STOP:STEP",
                   help="energies of the simulated ER lines [keV]")
    p.add_argument("--er-events-per-line", type=int, default=2000, metavar="N", help="NEST events per ER line")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(handler="dmpreserve.reinterpret.commands:run_kit")

    p = add(sub, "reinterpret", "limits for a new signal model from the kit",
            "Fold a built-in model (--model YAML) or a user spectrum (--spectrum CSV: mass_gev,energy_kev,dr_de in "
            "events/(t yr keV) at --reference-cross-section) through the kit's response, build a pyhf patchset and "
            "compute 90%% CL limits (asymptotic). Writes limits.csv, limits.json, patchset.json, limits.png and "
            "hepdata_limits.yaml. With --kit pointing at a binwise release (XENON1T format), uses that likelihood "
            "and writes limits.csv and limits.json.")
    p.add_argument("--kit", required=True, metavar="DIR", help="reinterpretation kit, or binwise release directory")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", metavar="YAML", help="built-in model (schemas/signal_model.schema.json)")
    src.add_argument("--spectrum", metavar="CSV", help="user spectra (schemas/signal_spectrum.schema.json)")
    p.add_argument("--reference-cross-section", type=float, default=1e-45, metavar="CM2",
                   help="cross section of the --spectrum rates [cm^2]; limits are reported in it")
    p.add_argument("--masses", default=None, metavar="GEV,GEV,...", help="override the model's mass grid [GeV]")
    p.add_argument("--backend", choices=("auto", "kit", "binwise"), default="auto",
                   help="auto: binwise if --kit holds XENON1T_binwise_NR_*.json, else the pyhf kit")
    p.add_argument("--toys", action="store_true",
                   help="kit backend: Neyman thresholds and bands from toys with the kit's recorded settings (as "
                        "the pipeline); default asymptotic")
    p.add_argument("--asymptotic", action="store_true",
                   help="binwise backend: asymptotic threshold 2.706 instead of the toy-MC Neyman threshold")
    p.add_argument("-o", "--output", required=True, metavar="DIR")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(handler="dmpreserve.reinterpret.commands:run_reinterpret")

    p = add(sub, "verify", "compare a limit curve with a reference curve",
            "Interpolate the result in log(mass)-log(limit) at the reference masses, print the ratios and exit 1 "
            "if any |ratio - 1| > rtol (exit 2 on bad input).")
    p.add_argument("--reference", required=True, metavar="CSV", help="reference curve (limits.csv or mass,limit rows)")
    p.add_argument("--result", required=True, metavar="CSV", help="curve to check")
    p.add_argument("--rtol", type=float, default=1e-6, help="allowed relative deviation")
    p.add_argument("--mass-range", default=None, metavar="A:B", help="compare only masses A..B [GeV]")
    p.add_argument("--column", default="limit_cm2", help="limit column of the result")
    p.add_argument("--reference-column", default="limit_cm2", help="limit column of the reference")
    p.add_argument("--allow-uncovered", action="store_true",
                   help="skip reference masses outside the result's mass range instead of failing")
    p.set_defaults(handler="dmpreserve.reinterpret.commands:run_verify")
