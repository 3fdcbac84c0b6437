"""Publication plots of the WIMP search (limit curve, analysis space, cut flow, pulls, acceptance).

Every plotting function takes plain arrays as keyword-only arguments and returns a
:class:`matplotlib.figure.Figure` built with the object-oriented API (no ``pyplot`` global
state, no files written).  Only :func:`save_figure` writes, atomically and with fixed metadata so
that re-running the pipeline gives byte-identical PNG/PDF files.

Conventions: masses in GeV/c², cross sections in cm², cS1/cS2 in photons detected (phd),
recoil energies in keV_nr, background/signal templates as 2D arrays indexed ``[i_cs1][j_log10cs2]``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib import rc_context
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter

from dmpreserve.arrays import as_bin_edges, as_finite_array
from dmpreserve.errors import InvalidData
from dmpreserve.files import atomic_write

#: Axis labels (with units) shared by the plots.
MASS_LABEL = "WIMP mass [GeV/c²]"
XSEC_LABEL = r"SI WIMP–nucleon cross section $\sigma_\mathrm{SI}$ [cm²]"
CS1_LABEL = "cS1 [phd]"
LOG10_CS2_LABEL = r"$\log_{10}$(cS2 / phd)"
ENERGY_LABEL = r"Nuclear recoil energy [keV$_\mathrm{nr}$]"
PULL_LABEL = r"$(\hat{\theta} - \theta_0)\,/\,\Delta\theta$"

#: Brazil-band colours (HEP convention: green ±1σ, yellow ±2σ).
BAND_1SIGMA_COLOR = "#00cc00"
BAND_2SIGMA_COLOR = "#ffcc00"
#: One colour per experiment in every figure (pipeline limit plot, ``plot-limits``, ``combine``): a curve whose
#: label starts with the name (case, spaces, "-" and "_" ignored) is drawn in it; its line style still tells
#: curves of one experiment apart.  Okabe-Ito-like colours, none of them the results' (black, blue, vermillion,
#: green) or the bands' (green, yellow).
EXPERIMENT_COLORS = (
    ("xenonnt", "#56b4e9"),
    ("xenon1t", "#7f7f7f"),
    ("lz", "#e69f00"),
    ("lux", "#8c564b"),
    ("pandax", "#cc79a7"),
    ("darkside", "#882255"),
)
#: Colours of other reference curves (in turn; Paul Tol's muted scheme), none of them an experiment's.
REFERENCE_COLORS = ("#aa4499", "#999933", "#44aa99", "#332288", "#cc6677")

#: Fractions of the total signal enclosed by the signal contours in :func:`plot_analysis_space`.
SIGNAL_CONTOUR_FRACTIONS = (0.5, 0.9)

#: Fixed output settings for :func:`save_figure` (deterministic bytes).
PNG_DPI = 150
#: A log mass axis spanning less than this factor gets plain tick labels (:func:`set_mass_axis`).
PLAIN_TICKS_SPAN = 30.0
PDF_METADATA = {"CreationDate": None, "ModDate": None, "Producer": "dmpreserve", "Creator": "dmpreserve"}
PNG_METADATA = {"Software": None}
SVG_METADATA = {"Date": None, "Creator": "dmpreserve"}
#: SVG settings: fixed salt of the element ids (matplotlib's default is random per run), text kept as text.
SVG_RC = {"svg.hashsalt": "dmpreserve", "svg.fonttype": "none"}


def same_length(**arrays: np.ndarray) -> int:
    """Return the common length of 1D ``arrays``, raising InvalidData if they differ or are empty."""
    lengths = {name: len(arr) for name, arr in arrays.items()}
    if len(set(lengths.values())) != 1:
        raise InvalidData(f"arrays differ in length: {lengths}", field=",".join(lengths))
    n = next(iter(lengths.values()))
    if n == 0:
        raise InvalidData("arrays are empty", field=",".join(lengths))
    return n


#: Extra limit curves drawn by :func:`plot_limit_curve` when given: (keyword, legend label, colour, style).
EXTRA_LIMIT_CURVES = (
    ("limit_unconstrained_cm2", "Unconstrained PLR limit (Neyman, $\\tilde{t}_\\mu$)", "tab:blue", "-."),
    ("limit_cls_cm2", "CLs limit ($\\tilde{q}_\\mu$)", "tab:red", "-"),
    ("expected_cls_cm2", "CLs median expected", "tab:red", ":"),
)
#: The ``limits.csv`` columns :func:`plot_limit_curve` takes (keywords of the same names).
LIMIT_CURVE_COLUMNS = (
    "mass_gev",
    "limit_cm2",
    "expected_cm2",
    "expected_m2sigma_cm2",
    "expected_m1sigma_cm2",
    "expected_p1sigma_cm2",
    "expected_p2sigma_cm2",
    *(c[0] for c in EXTRA_LIMIT_CURVES),
)


def experiment_color(label: str) -> str | None:
    """The fixed colour of the experiment a curve label names (:data:`EXPERIMENT_COLORS`), or None.

    E.g. "LZ WS2022 published", "lz_ws2022 alone" -> LZ's colour; "XENONnT 2026" -> XENONnT's.
    """
    key = "".join(ch for ch in str(label).lower() if ch not in " -_")
    return next((color for name, color in EXPERIMENT_COLORS if key.startswith(name)), None)


def clip_to_range(masses: np.ndarray, limits: np.ndarray, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    """The part of a curve over [lo, hi] [GeV], cut at the ends by log-log interpolation (never extrapolated).

    A curve reaching far beyond the plotted masses (a digitised curve extended to 1e15 GeV) then cannot
    stretch the y axis.  Returns empty arrays where the curve does not overlap the range.
    """
    a, b = max(lo, masses[0]), min(hi, masses[-1])
    if len(masses) < 2 or not a < b:
        inside = (masses >= lo) & (masses <= hi)
        return masses[inside], limits[inside]
    inner = (masses > a) & (masses < b)
    ends = np.array([a, b])
    ends_l = np.exp(np.interp(np.log(ends), np.log(masses), np.log(limits)))
    return np.concatenate([ends[:1], masses[inner], ends[1:]]), np.concatenate([ends_l[:1], limits[inner], ends_l[1:]])


def plot_limit_curve(
    *,
    mass_gev: Sequence[float],
    limit_cm2: Sequence[float],
    expected_cm2: Sequence[float],
    expected_m2sigma_cm2: Sequence[float],
    expected_m1sigma_cm2: Sequence[float],
    expected_p1sigma_cm2: Sequence[float],
    expected_p2sigma_cm2: Sequence[float],
    limit_unconstrained_cm2: Sequence[float] | None = None,
    limit_cls_cm2: Sequence[float] | None = None,
    expected_cls_cm2: Sequence[float] | None = None,
    title: str | None = None,
    label: str = "Observed 90% CL limit",
    band_label: str = "Expected",
    references: Sequence[tuple[str, Sequence[float], Sequence[float]]] = (),
) -> Figure:
    """Plot the headline upper limit over the expected-sensitivity (Brazil) band, log-log.

    With the direct-detection conventions (Baxter et al., EPJC 81 (2021) 907), ``limit_cm2`` is the
    power-constrained limit (PCL), the band is the PLR (Neyman, t̃μ) sensitivity band, and the
    unconstrained PLR limit and the CLs (q̃μ) limit are drawn as extra curves.

    Args:
        mass_gev: WIMP masses [GeV/c²].
        limit_cm2: Headline observed upper limit on σ_SI [cm²] per mass.
        expected_cm2: Median expected limit under the background-only hypothesis [cm²].
        expected_m2sigma_cm2: Lower edge of the ±2σ expected band [cm²].
        expected_m1sigma_cm2: Lower edge of the ±1σ expected band [cm²].
        expected_p1sigma_cm2: Upper edge of the ±1σ expected band [cm²].
        expected_p2sigma_cm2: Upper edge of the ±2σ expected band [cm²].
        limit_unconstrained_cm2: Optional unconstrained PLR limit [cm²].
        limit_cls_cm2: Optional CLs limit [cm²].
        expected_cls_cm2: Optional CLs median expected limit [cm²].
        title: Optional axes title.
        label: Legend entry of the headline limit.
        band_label: Legend prefix of the median and bands (e.g. "PLR sensitivity").
        references: Extra curves ``(label, mass_gev, limit_cm2)``, e.g. published limits.

    Returns:
        The figure.

    Raises:
        InvalidData: Arrays of different length, non-finite or non-positive values.
    """
    given = {
        "mass_gev": mass_gev,
        "limit_cm2": limit_cm2,
        "expected_cm2": expected_cm2,
        "expected_m2sigma_cm2": expected_m2sigma_cm2,
        "expected_m1sigma_cm2": expected_m1sigma_cm2,
        "expected_p1sigma_cm2": expected_p1sigma_cm2,
        "expected_p2sigma_cm2": expected_p2sigma_cm2,
        "limit_unconstrained_cm2": limit_unconstrained_cm2,
        "limit_cls_cm2": limit_cls_cm2,
        "expected_cls_cm2": expected_cls_cm2,
    }
    arrays = {k: as_finite_array(k, v, positive=True) for k, v in given.items() if v is not None}
    same_length(**arrays)
    order = np.argsort(arrays["mass_gev"], kind="stable")
    a = {k: v[order] for k, v in arrays.items()}
    m = a["mass_gev"]

    fig = Figure(figsize=(7.0, 7.0), layout="constrained")
    ax = fig.add_subplot()
    band2 = ax.fill_between(
        m,
        a["expected_m2sigma_cm2"],
        a["expected_p2sigma_cm2"],
        color=BAND_2SIGMA_COLOR,
        linewidth=0,
        label=rf"{band_label} $\pm 2\sigma$",
    )
    band1 = ax.fill_between(
        m,
        a["expected_m1sigma_cm2"],
        a["expected_p1sigma_cm2"],
        color=BAND_1SIGMA_COLOR,
        linewidth=0,
        label=rf"{band_label} $\pm 1\sigma$",
    )
    (median,) = ax.plot(
        m, a["expected_cm2"], color="black", linestyle="--", linewidth=1.2, label=f"{band_label} median"
    )
    extras = []
    for key, extra_label, color, style in EXTRA_LIMIT_CURVES:
        if key in a:
            (line,) = ax.plot(m, a[key], color=color, linestyle=style, linewidth=1.5, label=extra_label, zorder=3)
            extras.append(line)
    (headline,) = ax.plot(
        m, a["limit_cm2"], color="black", linestyle="-", linewidth=2.0, marker="o", markersize=3, label=label
    )

    styles = ("-.", ":", (0, (5, 1, 1, 1)), (0, (3, 1, 1, 1, 1, 1)))
    refs = []
    for idx, ref in enumerate(references):
        try:
            ref_label, ref_mass, ref_limit = ref
        except (TypeError, ValueError):
            raise InvalidData(
                "each reference must be (label, mass_gev, limit_cm2)", field=f"references[{idx}]"
            ) from None
        rm = as_finite_array(f"references[{idx}].mass_gev", ref_mass, positive=True)
        rl = as_finite_array(f"references[{idx}].limit_cm2", ref_limit, positive=True)
        same_length(**{f"references[{idx}].mass_gev": rm, f"references[{idx}].limit_cm2": rl})
        ro = np.argsort(rm, kind="stable")
        rm, rl = rm[ro], rl[ro]
        if len(m) > 1 and len(rm) > 1:
            # only the part over our masses, so that a reference reaching far beyond them (e.g. to 1e15 GeV)
            # cannot stretch the y axis
            rm, rl = clip_to_range(rm, rl, m[0], m[-1])
        (line,) = ax.plot(
            rm,
            rl,
            color=experiment_color(ref_label) or REFERENCE_COLORS[idx % len(REFERENCE_COLORS)],
            linestyle=styles[idx % len(styles)],
            linewidth=1.5,
            label=str(ref_label),
        )
        refs.append(line)

    set_mass_axis(ax, float(m[0]), float(m[-1]))
    ax.set_yscale("log")
    ax.set_xlabel(MASS_LABEL)
    ax.set_ylabel(XSEC_LABEL)
    ax.grid(True, which="major", alpha=0.4)
    ax.grid(True, which="minor", alpha=0.15)
    if title:
        ax.set_title(title)
    # Headline first, then the other conventions, the median and bands, then references.
    handles = [headline, *extras, median, band1, band2, *refs]
    # one column: the headline's entry (convention, exposure, mock-data note) is long
    fig.legend(
        handles, [h.get_label() for h in handles], loc="outside upper center", ncols=1, fontsize="small", frameon=False
    )
    return fig


def set_mass_axis(ax, lo: float, hi: float) -> None:
    """Log mass axis from ``lo`` to ``hi`` [GeV/c²]; over less than ~1.5 decades (e.g. a light-DM search at
    3-12 GeV) the ticks are labelled as plain numbers (3, 4, 6, 10) instead of 3×10⁰."""
    ax.set_xscale("log")
    if lo < hi:
        ax.set_xlim(lo, hi)
        if hi / lo < PLAIN_TICKS_SPAN:
            plain = FuncFormatter(lambda v, _: f"{v:g}")
            ax.xaxis.set_major_formatter(plain)
            ax.xaxis.set_minor_formatter(plain)


def _enclosing_levels(signal: np.ndarray, fractions: Sequence[float]) -> list[tuple[float, float]]:
    """Return ``(fraction, threshold)``: bins above ``threshold`` hold ``fraction`` of the total signal."""
    flat = np.sort(signal.ravel())[::-1]
    cum = np.cumsum(flat) / flat.sum()
    out = []
    for frac in fractions:
        idx = min(int(np.searchsorted(cum, frac)), len(flat) - 1)
        out.append((frac, float(flat[idx])))
    return out


def plot_analysis_space(
    *,
    cs1_edges_phd: Sequence[float],
    log10_cs2_edges: Sequence[float],
    background_expected,
    observed_cs1_phd: Sequence[float],
    observed_log10_cs2: Sequence[float],
    signal_expected=None,
    signal_label: str | None = None,
) -> Figure:
    """Plot the background model in (cS1, log10 cS2) with observed events and signal contours.

    Args:
        cs1_edges_phd: cS1 bin edges [phd], length n1 + 1.
        log10_cs2_edges: log10(cS2/phd) bin edges, length n2 + 1.
        background_expected: Total expected background events per bin, shape (n1, n2).
        observed_cs1_phd: cS1 of each observed event [phd].
        observed_log10_cs2: log10(cS2/phd) of each observed event.
        signal_expected: Optional expected signal events per bin, shape (n1, n2); drawn as contours
            enclosing 50% and 90% of the signal.
        signal_label: Legend prefix of the signal contours (e.g. "50 GeV/c² WIMP").

    Returns:
        The figure.

    Raises:
        InvalidData: Shape mismatch, non-finite or negative values, no positive background bin.
    """
    x_edges = as_bin_edges("cs1_edges_phd", cs1_edges_phd)
    y_edges = as_bin_edges("log10_cs2_edges", log10_cs2_edges)
    bkg = as_finite_array("background_expected", background_expected, ndim=2, nonnegative=True)
    shape = (len(x_edges) - 1, len(y_edges) - 1)
    if bkg.shape != shape:
        raise InvalidData(f"shape {bkg.shape} does not match the binning {shape}", field="background_expected")
    if not np.any(bkg > 0):
        raise InvalidData("has no bin with positive expectation", field="background_expected")
    obs_x = as_finite_array("observed_cs1_phd", observed_cs1_phd)
    obs_y = as_finite_array("observed_log10_cs2", observed_log10_cs2)
    if len(obs_x) != len(obs_y):
        raise InvalidData(f"lengths differ ({len(obs_x)} vs {len(obs_y)})", field="observed_cs1_phd,observed_log10_cs2")

    fig = Figure(figsize=(7.0, 4.8), layout="constrained")
    ax = fig.add_subplot()
    masked = np.ma.masked_less_equal(bkg.T, 0.0)
    positive = bkg[bkg > 0]
    vmin = max(float(positive.min()), float(positive.max()) * 1e-6)
    mesh = ax.pcolormesh(
        x_edges, y_edges, masked, norm=LogNorm(vmin=vmin, vmax=float(positive.max())), cmap="Blues", shading="flat"
    )
    cbar = fig.colorbar(mesh, ax=ax)
    cbar.set_label("expected background events / bin")

    handles = []
    if signal_expected is not None:
        sig = as_finite_array("signal_expected", signal_expected, ndim=2, nonnegative=True)
        if sig.shape != shape:
            raise InvalidData(f"shape {sig.shape} does not match the binning {shape}", field="signal_expected")
        if np.any(sig > 0) and min(shape) >= 2:
            xc = 0.5 * (x_edges[:-1] + x_edges[1:])
            yc = 0.5 * (y_edges[:-1] + y_edges[1:])
            prefix = f"{signal_label}, " if signal_label else "Signal, "
            linestyles = {0.5: "-", 0.9: "--"}
            drawn = set()
            for frac, level in _enclosing_levels(sig, SIGNAL_CONTOUR_FRACTIONS):
                if level <= 0 or level in drawn:
                    continue
                drawn.add(level)
                ls = linestyles.get(frac, ":")
                ax.contour(xc, yc, sig.T, levels=[level], colors="tab:red", linestyles=ls, linewidths=1.5)
                handles.append(
                    Line2D([], [], color="tab:red", linestyle=ls, label=f"{prefix}{frac:.0%} of signal inside")
                )
    (obs_line,) = ax.plot(
        obs_x,
        obs_y,
        linestyle="none",
        marker="o",
        markersize=4,
        markerfacecolor="black",
        markeredgecolor="white",
        markeredgewidth=0.5,
        label=f"Observed events ({len(obs_x)})",
    )
    handles.insert(0, obs_line)

    ax.set_xlim(x_edges[0], x_edges[-1])
    ax.set_ylim(y_edges[0], y_edges[-1])
    ax.set_xlabel(CS1_LABEL)
    ax.set_ylabel(LOG10_CS2_LABEL)
    fig.legend(handles=handles, loc="outside upper center", ncols=min(2, len(handles)), fontsize="small", frameon=False)
    return fig


def plot_cutflow(*, cuts: Sequence[str], events: Sequence[float], efficiency: Sequence[float]) -> Figure:
    """Bar chart of the events surviving each cut (log y), annotated with the cumulative efficiency.

    Args:
        cuts: Cut names, in the order applied.
        events: Events remaining after each cut.
        efficiency: Cumulative efficiency after each cut (fraction of the first entry, 0..1).

    Returns:
        The figure.

    Raises:
        InvalidData: Lengths differ, negative events or efficiency outside [0, 1].
    """
    names = [str(c) for c in cuts]
    ev = as_finite_array("events", events, nonnegative=True)
    eff = as_finite_array("efficiency", efficiency, nonnegative=True)
    same_length(cuts=np.asarray(names, dtype=object), events=ev, efficiency=eff)
    if np.any(eff > 1.0 + 1e-12):
        raise InvalidData("cumulative efficiency must lie in [0, 1]", field="efficiency")

    fig = Figure(figsize=(max(6.4, 0.8 * len(names) + 2.0), 4.8), layout="constrained")
    ax = fig.add_subplot()
    pos = np.arange(len(names))
    ax.bar(pos, np.where(ev > 0, ev, np.nan), width=0.7, color="tab:blue", edgecolor="black", linewidth=0.6)
    ax.set_yscale("log")
    top = float(ev.max()) if np.any(ev > 0) else 1.0
    bottom = float(ev[ev > 0].min()) / 3.0 if np.any(ev > 0) else 0.1
    ax.set_ylim(bottom, top * 8.0)
    for x, n, e in zip(pos, ev, eff):
        y = n if n > 0 else bottom
        count = f"{n:,.0f}" if float(n).is_integer() else f"{n:.4g}"
        ax.annotate(
            f"{count}\nε = {100.0 * e:.3g}%",
            xy=(x, y),
            xytext=(0, 3),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize="x-small",
        )
    ax.set_xticks(pos)
    ax.set_xticklabels(names, rotation=30, ha="right")
    ax.set_xlabel("Selection cut (applied sequentially)")
    ax.set_ylabel("Events after cut")
    ax.grid(True, axis="y", which="major", alpha=0.3)
    return fig


def plot_acceptance(
    *, energy_kev: Sequence[float], acceptance: Sequence[float], acceptance_err: Sequence[float]
) -> Figure:
    """Plot the signal acceptance (all cuts) versus true nuclear-recoil energy.

    Args:
        energy_kev: Nuclear-recoil energies [keV_nr] (bin centres).
        acceptance: Fraction of signal events passing all cuts (0..1).
        acceptance_err: 1σ uncertainty of the acceptance.

    Returns:
        The figure.

    Raises:
        InvalidData: Lengths differ, non-finite values, acceptance outside [0, 1].
    """
    en = as_finite_array("energy_kev", energy_kev, nonnegative=True)
    acc = as_finite_array("acceptance", acceptance, nonnegative=True)
    err = as_finite_array("acceptance_err", acceptance_err, nonnegative=True)
    same_length(energy_kev=en, acceptance=acc, acceptance_err=err)
    if np.any(acc > 1.0 + 1e-12):
        raise InvalidData("acceptance must lie in [0, 1]", field="acceptance")
    order = np.argsort(en, kind="stable")
    en, acc, err = en[order], acc[order], err[order]

    fig = Figure(figsize=(6.4, 4.4), layout="constrained")
    ax = fig.add_subplot()
    ax.fill_between(
        en,
        np.clip(acc - err, 0, None),
        np.clip(acc + err, None, 1.0),
        color="tab:blue",
        alpha=0.25,
        linewidth=0,
        label=r"$\pm 1\sigma$ (MC statistics)",
    )
    ax.errorbar(
        en,
        acc,
        yerr=err,
        fmt="o-",
        color="tab:blue",
        markersize=3,
        linewidth=1.2,
        capsize=0,
        label="Signal acceptance (all cuts)",
    )
    ax.set_xlabel(ENERGY_LABEL)
    ax.set_ylabel("Signal acceptance")
    ax.set_ylim(0.0, 1.05)
    ax.set_xlim(left=0.0)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    return fig


def save_figure(fig: Figure, path: str | os.PathLike) -> None:
    """Write ``fig`` atomically as PNG, PDF or SVG (chosen by the suffix) with deterministic bytes.

    Timestamps and tool versions are removed from the metadata, so saving the same figure twice
    gives identical files.

    Args:
        fig: The figure.
        path: Destination ending in ``.png``, ``.pdf`` or ``.svg``.

    Raises:
        InvalidData: Unsupported suffix.
    """
    target = Path(path)
    fmt = target.suffix.lower().lstrip(".")
    if fmt == "png":
        kwargs = {"dpi": PNG_DPI, "metadata": dict(PNG_METADATA)}
    elif fmt == "pdf":
        kwargs = {"metadata": dict(PDF_METADATA)}
    elif fmt == "svg":
        kwargs = {"metadata": dict(SVG_METADATA)}
    else:
        raise InvalidData(f"unsupported figure format {target.suffix!r} (use .png, .pdf or .svg)", path=target)
    with atomic_write(target) as tmp, rc_context(SVG_RC):
        fig.savefig(tmp, format=fmt, facecolor="white", **kwargs)
