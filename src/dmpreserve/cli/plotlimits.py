"""Subcommand ``plot-limits``: results against published curves (the field's plot).

Handlers import the library late (see :mod:`dmpreserve.cli.steps`).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from dmpreserve.publish.references import DEFAULT_REFERENCE_DIR, PUBLISHED, REFERENCE_DIR_ENV

LOG = logging.getLogger("dmpreserve")


def _published_help() -> str:
    return "; ".join(
        f"{c.name}: {c.experiment}, {c.exposure_t_yr:g} t yr, {c.convention} ({c.file})" for c in PUBLISHED.values()
    )


def register(sub, add) -> None:
    """Add ``plot-limits`` to the ``dmpreserve`` parser."""
    p = add(
        sub,
        "plot-limits",
        "draw results against published limit curves",
        "Draw one or more limit results (with their +-1/2 sigma sensitivity bands) against published curves, "
        "log-log: WIMP mass [GeV/c^2] versus the SI WIMP-nucleon cross section [cm^2] (or the results' strength "
        "unit).  Each legend entry states the label, the exposure [t yr] and the convention (unconstrained, "
        "power-constrained at pi_crit, CLs); mock data are labelled 'mock data (NEST MDC)' (from limits.json's "
        "data record).  Reruns give byte-identical files.  Example: dmpreserve plot-limits --result "
        "'this work=results/limits/limits.json' --published lz-ws2022-pcl --published xenon1t-2018 -o field.pdf",
    )
    p.add_argument(
        "--result",
        action="append",
        default=[],
        metavar="[LABEL=]PATH",
        help="a result: limits.json of the pipeline (results/limits/limits.json), of 'dmpreserve reinterpret' or "
        "of a combination, or its output directory; repeatable.  LABEL defaults to the directory's name",
    )
    p.add_argument(
        "--convention",
        choices=("unconstrained", "pcl", "cls"),
        default=None,
        help="which curve of each result to draw: unconstrained Neyman (PLR), power-constrained (PCL) or CLs "
        "(default: each result's headline limit_cm2)",
    )
    p.add_argument(
        "--published",
        action="append",
        default=[],
        choices=tuple(PUBLISHED),
        metavar="NAME",
        help="a published curve by name (repeatable), read from --reference-dir: " + _published_help(),
    )
    p.add_argument(
        "--reference",
        action="append",
        default=[],
        metavar="LABEL=CSV",
        help="any other curve: a CSV or white-space file of mass [GeV], limit [cm^2] rows (header mass_gev/mass "
        "and limit_cm2, or none; '#' comments), as 'dmpreserve verify' reads it; repeatable",
    )
    p.add_argument(
        "--reference-dir",
        default=None,
        metavar="DIR",
        help=f"folder of the published curves (default: ${REFERENCE_DIR_ENV}, else {DEFAULT_REFERENCE_DIR} "
        "relative to the working directory, i.e. the repository root)",
    )
    p.add_argument("--mass-range", metavar="A:B", help="x-axis range [GeV] (default: the results' masses)")
    p.add_argument("--title", default=None, help="plot title (default: 'SI WIMP-nucleon, 90%% CL upper limits')")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="the figure: .pdf, .png or .svg")
    p.set_defaults(handler=run_plot_limits)


def _split_label(item: str, option: str) -> tuple[str | None, str]:
    """``LABEL=PATH`` -> (label, path); an existing path containing '=' is a path."""
    if "=" not in item or Path(item).exists():
        return None, item
    label, _, path = item.partition("=")
    from dmpreserve.errors import InvalidData

    if not label.strip() or not path:
        raise InvalidData(f"expected LABEL=PATH, got {item!r}", field=option)
    return label.strip(), path


def _result_file(path: str) -> Path:
    from dmpreserve.errors import InvalidData

    p = Path(path)
    if p.is_dir():
        for candidate in (p / "limits.json", p / "limits" / "limits.json", p / "combined_limits.json"):
            if candidate.is_file():
                return candidate
        raise InvalidData(
            "no limits.json in this directory (nor in its limits/) and no combined_limits.json",
            path=p,
            field="--result",
        )
    return p


def result_curves(items: list[str], convention: str | None):
    """:class:`~dmpreserve.publish.plot_limits.LimitCurve` per ``--result`` and the results' strength units."""
    from dmpreserve.artifacts.limits import read_limit_result
    from dmpreserve.publish.plot_limits import LimitCurve

    curves, units = [], []
    for item in items:
        label, path = _split_label(item, "--result")
        file = _result_file(path)
        res = read_limit_result(file)
        conv, limits, band = res.curve(convention)
        if res.exposure_t_yr is None:
            LOG.warning("%s records no exposure: the legend says 'exposure not stated'", file)
        default_label = file.parent.name if file.parent.name != "limits" else file.parent.parent.name
        curves.append(
            LimitCurve(
                label=label or default_label or str(file),
                masses_gev=res.table.mass_gev,
                limits=limits,
                convention=conv,
                band=band,
                exposure_t_yr=res.exposure_t_yr,
                mock=res.mock,
                pcl_power=res.pcl_power if conv == "pcl" else None,
                cl=res.cl,
            )
        )
        units.append(res.strength_unit)
    return curves, units


def reference_curves(published: list[str], references: list[str], reference_dir: str | None):
    """:class:`~dmpreserve.publish.plot_limits.LimitCurve` per ``--published`` name and ``--reference``."""
    from dmpreserve.errors import InvalidData
    from dmpreserve.publish.plot_limits import LimitCurve
    from dmpreserve.publish.references import reference_dir as resolve
    from dmpreserve.reinterpret.verify import read_curve

    out = []
    folder = resolve(reference_dir)
    for name in published:
        entry = PUBLISHED[name]
        path = entry.path(folder)
        if not path.is_file():
            raise InvalidData(
                f"published curve {name!r} not found (reference directory {folder}: set --reference-dir or "
                f"${REFERENCE_DIR_ENV}; ../shared/reference/README.md says where the files come from)",
                path=path,
                field="--published",
            )
        curve = read_curve(path, column=entry.limit_column or "limit_cm2")
        out.append(
            LimitCurve(
                label=f"{entry.experiment} (published)",
                masses_gev=curve.mass_gev,
                limits=curve.limit,
                convention=entry.convention,
                exposure_t_yr=entry.exposure_t_yr,
            )
        )
    for item in references:
        label, sep, path = item.partition("=")
        if not sep or not label.strip() or not path:
            raise InvalidData(f"expected LABEL=CSV, got {item!r}", field="--reference")
        curve = read_curve(path)
        out.append(
            LimitCurve(label=label.strip(), masses_gev=curve.mass_gev, limits=curve.limit, convention="as given")
        )
    return out


def common_unit(units: list[str]) -> str | None:
    """The one unit of the results, e.g. ``cm^2`` and ``cm^2 (SI WIMP-nucleon)`` -> ``cm^2 (SI WIMP-nucleon)``:
    the same base unit, and at most one qualifier in parentheses (an SI and an SD limit never share an axis).

    Raises:
        InvalidData: results in different units (field ``--result``).
    """
    if not units:
        return None
    bases = {u.split(" (", 1)[0].strip() for u in units}
    qualified = {u for u in units if " (" in u}
    if len(bases) > 1 or len(qualified) > 1:
        from dmpreserve.errors import InvalidData

        raise InvalidData(
            f"results in different units cannot share an axis: {', '.join(sorted(set(units)))}", field="--result"
        )
    return qualified.pop() if qualified else units[0]


def run_plot_limits(args: argparse.Namespace) -> None:
    """``dmpreserve plot-limits``."""
    from dmpreserve.errors import InvalidData
    from dmpreserve.publish.plot_limits import plot_limits
    from dmpreserve.publish.plots import XSEC_LABEL, save_figure
    from dmpreserve.reinterpret.verify import parse_mass_range

    suffix = Path(args.output).suffix.lower()
    if suffix not in (".pdf", ".png", ".svg"):
        raise InvalidData(f"unsupported figure format {suffix!r} (use .pdf, .png or .svg)", field="--output")
    if not args.result and not args.published and not args.reference:
        raise InvalidData("nothing to draw: give --result, --published or --reference", field="--result")
    mass_range = parse_mass_range(args.mass_range) if args.mass_range else None
    if mass_range is not None and not (mass_range[0] > 0 and mass_range[1] < float("inf")):
        raise InvalidData(f"need 0 < A < B < inf, got {args.mass_range!r}", field="--mass-range")
    curves, units = result_curves(args.result, args.convention)
    refs = reference_curves(args.published, args.reference, args.reference_dir)
    distinct = common_unit(units)
    unit = distinct or "cm^2"
    si = unit == "cm^2" or unit.startswith("cm^2 (SI")
    ylabel = XSEC_LABEL if si else f"upper limit [{unit}]"
    if not si and refs:
        LOG.warning("results in %r drawn against cm^2 curves: compare only where the units agree", unit)
    fig = plot_limits(curves, refs, ylabel=ylabel, title=args.title, mass_range=mass_range)
    save_figure(fig, args.output)
    LOG.info("wrote %s (%d results, %d reference curves)", args.output, len(curves), len(refs))
