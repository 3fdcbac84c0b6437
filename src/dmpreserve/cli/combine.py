"""``dmpreserve combine``: the joint likelihood of several preserved results for one signal model.

Handlers import the library late (see :mod:`dmpreserve.cli.steps`).
"""

from __future__ import annotations

import argparse
import logging

from dmpreserve.cli.reinterpret import _masses, add_signal_source, read_signal_source
from dmpreserve.errors import InvalidData

LOG = logging.getLogger("dmpreserve")


def register(sub, add) -> None:
    """Add ``combine`` to the ``dmpreserve`` parser."""
    p = add(
        sub,
        "combine",
        "combined limits of several preserved results (joint likelihood)",
        "Build one signal model's signal in every experiment (pipeline kits, template-release kits, the XENON1T "
        "binwise release as an effective Poisson channel), merge the likelihoods into one pyhf workspace (channels "
        "and nuisance parameters prefixed NAME__, one POI mu = the same cross section everywhere, optional shared "
        "halo nuisance parameters halo_rho0, halo_v0, halo_vesc) and compute the combined and per-experiment "
        "limits in both conventions (power-constrained Neyman PLR and CLs) with bands. The Neyman thresholds come "
        "from toys of the joint model (threshold table) unless --asymptotic. Refuses the same data twice and kits "
        "with different CL (exit 2, nothing written). Limits are upper limits at the kits' CL (90%) on the model's "
        "strength (cm^2 for SI/SD cross sections), masses in GeV/c^2. The default toys take tens of minutes on "
        "2 cores with LZ-sized kits; --asymptotic takes minutes. See docs/combination.md.",
    )
    p.add_argument(
        "--kit",
        action="append",
        required=True,
        metavar="[NAME=]DIR",
        help="kit or binwise release directory (repeat); NAME prefixes its channels and parameters "
        "(default: the directory's name, its parent's for .../reinterpretation)",
    )
    add_signal_source(p, masses_help="mass grid [GeV] (default: the model's, else the first kit's)")
    halo = p.add_mutually_exclusive_group()
    halo.add_argument(
        "--halo-uncertainties",
        metavar="YAML",
        help="halo one-sigma shifts (schemas/halo_uncertainties.schema.json); default: the documented defaults",
    )
    halo.add_argument("--no-halo-nuisances", action="store_true", help="no shared halo nuisance parameters")
    p.add_argument(
        "--asymptotic", action="store_true", help="chi2_1 thresholds and Asimov bands instead of joint-model toys"
    )
    p.add_argument(
        "--pcl-power",
        type=float,
        default=None,
        help="critical power of the PCL (default: the kits' if they agree, else 0.16)",
    )
    p.add_argument("--toys-background", type=int, default=200, help="shared background-only toys (bands, PCL floor)")
    p.add_argument("--toys-per-point", type=int, default=500, help="toys per threshold-table point (joint model)")
    p.add_argument(
        "--reference-masses",
        default=None,
        metavar="GEV,GEV,...",
        help="threshold-table reference shapes: the combination's masses nearest to these (default 8,40,1000)",
    )
    p.add_argument("--seed", type=int, default=20260101, help="master seed of every toy")
    p.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="DIR",
        help="output directory (created; files of the same names are replaced): combined_limits.csv/.json, "
        "per_experiment_limits.csv, combined_workspace.json, combined_patchset.json, combined_likelihood_hs3.json, "
        "hepdata_limits.yaml, combined_limits.png/.pdf, limits_table.md",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(handler=run_combine)


def _kit_args(values: list[str]) -> list[tuple[str | None, str]]:
    out = []
    for v in values:
        name, sep, path = v.partition("=")
        out.append((name, path) if sep and "/" not in name else (None, v))
    return out


def run_combine(args: argparse.Namespace) -> None:
    """``dmpreserve combine``."""
    from dmpreserve.reinterpret.combine import SignalSource, StatSettings, check_experiments, load_experiment
    from dmpreserve.reinterpret.combine_halo import default_uncertainties, load_uncertainties
    from dmpreserve.reinterpret.combine_outputs import run_combination, write_combination

    for opt in ("toys_background", "toys_per_point"):
        if getattr(args, opt) < 1:
            raise InvalidData("must be >= 1", field="--" + opt.replace("_", "-"))
    model, spectra, ref, masses, source = read_signal_source(args)
    ref_masses = _masses(args.reference_masses)
    experiments = [load_experiment(path, name=name) for name, path in _kit_args(args.kit)]
    check_experiments(experiments)
    if spectra is not None:
        grid, halo_unc = tuple(spectra.masses_gev), None
        if not args.no_halo_nuisances:
            LOG.info("user spectra carry no halo: no halo nuisance parameters")
    else:
        grid = masses or model.masses_gev or experiments[0].masses_gev
        halo_unc = (
            None
            if args.no_halo_nuisances or model.is_er
            else load_uncertainties(args.halo_uncertainties)
            if args.halo_uncertainties
            else default_uncertainties()
        )
    powers = {e.pcl_power for e in experiments if e.pcl_power is not None}
    pcl = args.pcl_power if args.pcl_power is not None else (powers.pop() if len(powers) == 1 else 0.16)
    stats = StatSettings(
        asymptotic=args.asymptotic,
        pcl_power=pcl,
        toys_background=args.toys_background,
        seed=args.seed,
        toys_per_point=args.toys_per_point,
        reference_masses_gev=ref_masses,
    )
    src = SignalSource(masses_gev=tuple(grid), model=model, spectra=spectra, reference_cross_section_cm2=ref)
    comb = run_combination(experiments, src, halo_uncertainties=halo_unc, stats=stats, progress=not args.no_progress)
    for r in comb.limits:
        row = r.row()
        LOG.info(
            "m = %8.4g GeV: combined limit %.4e (unconstrained %.4e, CLs %.4e, expected %.4e) %s",
            row["mass_gev"],
            row["limit_cm2"],
            row["limit_unconstrained_cm2"],
            row["limit_cls_cm2"],
            row["expected_cm2"],
            src.strength_unit,
        )
    write_combination(args.output, comb, source_doc=source)
    LOG.info("combination written to %s", args.output)
