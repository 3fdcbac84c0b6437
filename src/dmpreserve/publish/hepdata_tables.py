"""Tables of the HEPData record (hepdata-lib objects) and the checks of their input arrays.

Used by :func:`dmpreserve.publish.hepdata.write_submission`.  The limit table carries both statistical
conventions when ``limits.csv`` has them (:data:`PLR_CONVENTION`, :data:`CLS_CONVENTION`), with
their definitions in the table description; the fit tables come from ``results/fit/fit.json``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from dmpreserve.arrays import as_bin_edges, as_finite_array
from dmpreserve.errors import InvalidData

#: Direct-detection convention (limit_cm2 = PCL headline, limit_unconstrained_cm2, expected_* band).
PLR_CONVENTION = (
    "90% CL upper limits from the two-sided profile-likelihood-ratio test statistic t~mu (Cowan et al., EPJC 71 "
    "(2011) 1554, eq. 11) with a Neyman construction: the unconstrained limit is the largest cross section whose "
    "observed t~mu lies below the critical value (the 90% quantile of t~mu from toy Monte Carlo at each tested "
    "signal strength, or the asymptotic chi2(1) value 2.706); the headline limit is power-constrained (PCL) with "
    "critical power 0.16 (Baxter et al., EPJC 81 (2021) 907): it is never below the -1 sigma sensitivity band"
)
#: LHC convention (limit_cls_cm2, expected_cls_* band).
CLS_CONVENTION = "90% CL upper limits with the CLs method and the test statistic q~mu (asymptotic formulae)"
#: Used when limits.csv has only the CLs columns of the first pipeline version.
LEGACY_CONVENTION = "90% CL upper limit, asymptotic CLs with the q~mu test statistic"
#: How the likelihood is used, stated in the descriptions of the data tables.
LIKELIHOOD_USE = "90% CL upper limits (PLR with power constraint, and CLs)"
#: Relative digits kept by hepdata-lib when writing values (it rounds to this many significant digits).
VALUE_DIGITS = 6
#: Keyword names the HEPData submission schema accepts.
ALLOWED_KEYWORDS = ("cmenergies", "observables", "reactions", "phrases")
#: limits.csv columns always required.
LIMIT_COLUMNS = (
    "mass_gev",
    "limit_cm2",
    "expected_cm2",
    "expected_m2sigma_cm2",
    "expected_m1sigma_cm2",
    "expected_p1sigma_cm2",
    "expected_p2sigma_cm2",
)
#: Optional observed-limit columns: (column, HEPData name, method qualifier).
OPTIONAL_LIMITS = (
    (
        "limit_unconstrained_cm2",
        "Unconstrained upper limit on sigma_SI (PLR, Neyman)",
        "PLR t~mu, Neyman construction, no power constraint",
    ),
    ("limit_cls_cm2", "CLs upper limit on sigma_SI", "CLs, q~mu, asymptotic"),
)
#: Optional expected bands: (column prefix, HEPData name, method qualifier).
CLS_BAND = ("expected_cls", "CLs expected (median) upper limit on sigma_SI", "CLs, q~mu, asymptotic")
#: Optional dimensionless columns: (column, HEPData name, description).
DISCOVERY_COLUMNS = (
    (
        "p0",
        "Local p-value p0 (asymptotic)",
        "local discovery p-value of the background-only hypothesis from q0, "
        "asymptotic: 1 - Phi(sqrt(q0)), 0.5 when the best-fit signal is zero",
    ),
    ("z0", "Local significance Z0 (asymptotic)", "sqrt(q0) in standard deviations"),
    ("p0_toys", "Local p-value p0 (toys)", "fraction of background-only toys with q0 >= q0(observed)"),
    ("z0_toys", "Local significance Z0 (toys)", "Phi^-1(1 - p0_toys), clipped at 0"),
)


# --------------------------------------------------------------------------------------------- input checks
def require(mapping: Mapping, key: str, what: str):
    if not isinstance(mapping, Mapping):
        raise InvalidData(f"{what} must be a mapping, got {type(mapping).__name__}", field=what)
    if key not in mapping:
        raise InvalidData(f"missing key {key!r}", field=f"{what}.{key}")
    return mapping[key]


def same_length(what: str, arrays: Mapping[str, Sequence], *, allow_empty: bool = False) -> int:
    lengths = {k: len(v) for k, v in arrays.items()}
    if len(set(lengths.values())) != 1:
        raise InvalidData(f"columns differ in length: {lengths}", field=what)
    n = next(iter(lengths.values()))
    if n == 0 and not allow_empty:
        raise InvalidData("no rows", field=what)
    return n


def check_background(background: Mapping) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray], np.ndarray]:
    x = as_bin_edges("background.cs1_edges_phd", require(background, "cs1_edges_phd", "background"))
    y = as_bin_edges("background.log10_cs2_edges", require(background, "log10_cs2_edges", "background"))
    shape = (len(x) - 1, len(y) - 1)
    components = require(background, "components", "background")
    if not isinstance(components, Mapping) or not components:
        raise InvalidData("must be a non-empty mapping of component name to 2D template", field="background.components")
    comps = {}
    for name in sorted(components):
        arr = as_finite_array(f"background.components.{name}", components[name], ndim=2, nonnegative=True)
        if arr.shape != shape:
            raise InvalidData(
                f"shape {arr.shape} does not match the binning {shape}", field=f"background.components.{name}"
            )
        comps[str(name)] = arr
    observed = as_finite_array(
        "background.observed", require(background, "observed", "background"), ndim=2, nonnegative=True
    )
    if observed.shape != shape:
        raise InvalidData(f"shape {observed.shape} does not match the binning {shape}", field="background.observed")
    if np.any(observed != np.round(observed)):
        raise InvalidData("observed counts must be integers", field="background.observed")
    return x, y, comps, observed


def check_keywords(metadata: Mapping) -> dict[str, list]:
    keywords = metadata.get("keywords") or {}
    if not isinstance(keywords, Mapping):
        raise InvalidData("must be a mapping of keyword name to list of values", field="metadata.keywords")
    out = {}
    for name, values in keywords.items():
        if name not in ALLOWED_KEYWORDS:
            raise InvalidData(
                f"unknown HEPData keyword {name!r} (allowed: {', '.join(ALLOWED_KEYWORDS)})", field="metadata.keywords"
            )
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
            raise InvalidData("keyword values must be a list", field=f"metadata.keywords.{name}")
        out[name] = [v if isinstance(v, (int, float)) else str(v) for v in values]
    return out


# --------------------------------------------------------------------------------------------- tables
def set_keywords(table, common: Mapping[str, list], observables: Sequence[str]) -> None:
    merged = {name: list(values) for name, values in common.items()}
    merged["observables"] = list(dict.fromkeys([*observables, *merged.get("observables", [])]))
    table.keywords = {name: merged[name] for name in sorted(merged) if merged[name]}


def new_table(hdl, name: str, *, description: str, location: str, keywords, observables: Sequence[str]):
    """A hepdata-lib table with its description, location and keywords set."""
    table = hdl.Table(name)
    table.description = description
    table.location = location
    set_keywords(table, keywords, observables)
    return table


def variable(hdl, name: str, *, units: str = "", values, independent: bool, binned: bool = False):
    var = hdl.Variable(
        name, is_independent=independent, is_binned=binned, units=units, zero_uncertainties_warning=False
    )
    var.values = list(values)  # hepdata-lib tests `values` for truthiness: never hand it a numpy array
    var.digits = VALUE_DIGITS
    return var


def events_table(hdl, cs1: np.ndarray, log10_cs2: np.ndarray, keywords):
    table = hdl.Table("Observed events")
    table.description = (
        "Observed science-run events in the final selection (all cuts, region of interest), one row per event: "
        "corrected S1 (cS1) in photons detected [phd] and log10 of the corrected S2 (cS2/phd). These events "
        f"enter the binned likelihood from which the {LIKELIHOOD_USE} are derived."
    )
    table.location = "Analysis-space figure"
    set_keywords(table, keywords, ["N"])
    table.add_variable(variable(hdl, "Event", values=list(range(1, len(cs1) + 1)), independent=True))
    table.add_variable(variable(hdl, "cS1", units="phd", values=cs1.tolist(), independent=False))
    table.add_variable(variable(hdl, "log10(cS2/phd)", values=log10_cs2.tolist(), independent=False))
    return table


def background_table(hdl, x, y, comps, observed, keywords):
    table = hdl.Table("Background expectation")
    table.description = (
        "Expected background events per (cS1 [phd], log10(cS2/phd)) bin for each component, their total, and "
        "the observed event counts. Rows are ordered with the log10(cS2) bin running fastest (k = i_cS1 * n_cS2 "
        "+ j_log10cS2). These templates define the binned likelihood (attached in HistFactory JSON) used for "
        f"the {LIKELIHOOD_USE}."
    )
    table.location = "Analysis-space figure (results/backgrounds/templates.json)"
    set_keywords(table, keywords, ["N"])
    n1, n2 = len(x) - 1, len(y) - 1
    ii, jj = np.meshgrid(np.arange(n1), np.arange(n2), indexing="ij")
    ii, jj = ii.ravel(), jj.ravel()
    table.add_variable(
        variable(
            hdl, "cS1", units="phd", independent=True, binned=True, values=[(float(x[i]), float(x[i + 1])) for i in ii]
        )
    )
    table.add_variable(
        variable(
            hdl, "log10(cS2/phd)", independent=True, binned=True, values=[(float(y[j]), float(y[j + 1])) for j in jj]
        )
    )
    for name, arr in comps.items():
        table.add_variable(
            variable(
                hdl, f"Expected background: {name}", units="events", values=arr.ravel().tolist(), independent=False
            )
        )
    total = np.sum(list(comps.values()), axis=0)
    table.add_variable(
        variable(hdl, "Expected background: total", units="events", values=total.ravel().tolist(), independent=False)
    )
    table.add_variable(
        variable(hdl, "Observed events", units="events", values=[int(v) for v in observed.ravel()], independent=False)
    )
    return table


def cutflow_table(hdl, cutflow: Mapping, keywords):
    cuts = [str(c) for c in require(cutflow, "cut", "cutflow")]
    events = as_finite_array("cutflow.events", require(cutflow, "events", "cutflow"), nonnegative=True)
    eff = as_finite_array(
        "cutflow.efficiency_cumulative", require(cutflow, "efficiency_cumulative", "cutflow"), nonnegative=True
    )
    same_length("cutflow", {"cut": cuts, "events": events, "efficiency_cumulative": eff})
    if np.any(eff > 1.0 + 1e-12):
        raise InvalidData("cumulative efficiency must lie in [0, 1]", field="cutflow.efficiency_cumulative")
    table = hdl.Table("Cut flow")
    table.description = (
        "Events remaining after each selection cut, applied sequentially, and the cumulative "
        "efficiency (fraction of the events before the first cut, dimensionless)."
    )
    table.location = "Cut-flow figure (results/selection/cutflow.csv)"
    set_keywords(table, keywords, ["N"])
    table.add_variable(variable(hdl, "Cut", values=cuts, independent=True))
    counts = [int(v) if float(v).is_integer() else float(v) for v in events]
    table.add_variable(variable(hdl, "Events after cut", units="events", values=counts, independent=False))
    table.add_variable(variable(hdl, "Cumulative efficiency", values=eff.tolist(), independent=False))
    return table


def acceptance_table(hdl, acceptance: Mapping, keywords):
    lo = as_finite_array(
        "acceptance.energy_low_kev", require(acceptance, "energy_low_kev", "acceptance"), nonnegative=True
    )
    hi = as_finite_array("acceptance.energy_high_kev", require(acceptance, "energy_high_kev", "acceptance"))
    acc = as_finite_array("acceptance.acceptance", require(acceptance, "acceptance", "acceptance"), nonnegative=True)
    err = as_finite_array(
        "acceptance.acceptance_err", require(acceptance, "acceptance_err", "acceptance"), nonnegative=True
    )
    same_length("acceptance", {"energy_low_kev": lo, "energy_high_kev": hi, "acceptance": acc, "acceptance_err": err})
    if np.any(hi <= lo):
        raise InvalidData("each energy bin needs energy_high_kev > energy_low_kev", field="acceptance")
    if np.any(acc > 1.0 + 1e-12):
        raise InvalidData("acceptance must lie in [0, 1]", field="acceptance.acceptance")
    table = hdl.Table("Signal efficiency")
    table.description = (
        "Signal acceptance (fraction of nuclear-recoil signal events passing all cuts, including "
        "the region of interest) versus true nuclear-recoil energy [keV_nr]; the uncertainty is "
        "the Monte Carlo statistical (binomial) 1-sigma uncertainty."
    )
    table.location = "Acceptance figure (results/selection/acceptance.csv)"
    set_keywords(table, keywords, ["EFF"])
    table.add_variable(
        variable(
            hdl,
            "True nuclear-recoil energy",
            units="keV",
            independent=True,
            binned=True,
            values=list(zip(lo.tolist(), hi.tolist())),
        )
    )
    var = variable(hdl, "Signal acceptance", values=acc.tolist(), independent=False)
    unc = hdl.Uncertainty("MC stat.", is_symmetric=True)
    unc.values = err.tolist()
    var.add_uncertainty(unc)
    table.add_variable(var)
    return table


# --------------------------------------------------------------------------------------------- limits
def _band_columns(prefix: str) -> tuple[str, str, str, str, str]:
    """(-2σ, -1σ, median, +1σ, +2σ) column names of an expected band, e.g. prefix ``expected_cls``."""
    return (
        f"{prefix}_m2sigma_cm2",
        f"{prefix}_m1sigma_cm2",
        f"{prefix}_cm2",
        f"{prefix}_p1sigma_cm2",
        f"{prefix}_p2sigma_cm2",
    )


def check_limits(limits: Mapping) -> dict[str, np.ndarray]:
    """Check the limits.csv columns: required ones, and the optional conventions/discovery columns if present."""
    if not isinstance(limits, Mapping):
        raise InvalidData("must be a mapping of column name to values", field="limits")
    names = [
        *LIMIT_COLUMNS,
        *(c for c, _, _ in OPTIONAL_LIMITS if c in limits),
        *(c for c in _band_columns(CLS_BAND[0]) if CLS_BAND[0] + "_cm2" in limits),
        *(c for c in ("pcl_threshold_cm2",) if c in limits),
    ]
    cols = {c: as_finite_array(f"limits.{c}", require(limits, c, "limits"), positive=True) for c in names}
    for c in [c for c, _, _ in DISCOVERY_COLUMNS] + ["neyman_threshold", "neyman_threshold_err"]:
        if c in limits:
            cols[c] = as_finite_array(f"limits.{c}", limits[c], nonnegative=True)
            if c.startswith("p0") and np.any(cols[c] > 1.0):
                raise InvalidData("p-values must lie in [0, 1]", field=f"limits.{c}")
    same_length("limits", cols)
    for prefix in ("expected", CLS_BAND[0]):
        band = _band_columns(prefix)
        if band[2] not in cols:
            continue
        for lo, hi in zip(band[:-1], band[1:]):
            if np.any(cols[lo] > cols[hi] * (1.0 + 1e-12)):
                raise InvalidData(
                    "expected band is not ordered -2σ ≤ -1σ ≤ median ≤ +1σ ≤ +2σ", field=f"limits.{prefix}"
                )
    if np.any(np.diff(cols["mass_gev"]) <= 0):
        raise InvalidData("masses must be strictly increasing", field="limits.mass_gev")
    return cols


def _expected_variable(hdl, lim: Mapping[str, np.ndarray], prefix: str, name: str, method: str):
    band = _band_columns(prefix)
    var = variable(hdl, name, units="cm$^{2}$", values=lim[band[2]].tolist(), independent=False)
    var.add_qualifier("CL", "90%")
    var.add_qualifier("Method", method)
    for label, lo, hi in (("1 sigma", band[1], band[3]), ("2 sigma", band[0], band[4])):
        unc = hdl.Uncertainty(label, is_symmetric=False)
        unc.values = [(float(a - m), float(b - m)) for a, b, m in zip(lim[lo], lim[hi], lim[band[2]])]
        var.add_uncertainty(unc)
    return var


def limit_table(hdl, lim: Mapping[str, np.ndarray], keywords):
    """The limit curve: headline limit, the other convention(s), sensitivity bands, discovery p-values."""
    both = "limit_unconstrained_cm2" in lim
    table = hdl.Table("Limit curve")
    if both:
        table.description = (
            "Upper limits on the spin-independent WIMP-nucleon cross section sigma_SI [cm^2] versus WIMP mass "
            f"[GeV/c^2] in two conventions. (1) Direct-detection convention: {PLR_CONVENTION}. The PLR sensitivity "
            "is the median limit from background-only toys (or Asimov asymptotics), with the 68% ('1 sigma') and "
            "95% ('2 sigma') bands as signed offsets [cm^2] from the median. "
            f"(2) LHC convention: {CLS_CONVENTION}, with its expected median and bands. "
            "Discovery: local p-value p0 and significance Z0 = sqrt(q0) per mass from the test statistic q0."
        )
        headline, method = (
            "Power-constrained upper limit on sigma_SI (PCL, headline)",
            "PLR t~mu, Neyman construction, power constraint (critical power 0.16)",
        )
        sensitivity = "PLR sensitivity: median upper limit on sigma_SI"
    else:
        table.description = (
            "Upper limit on the spin-independent WIMP-nucleon cross section sigma_SI [cm^2] versus WIMP mass "
            f"[GeV/c^2]: {LEGACY_CONVENTION}. The expected limit is the median under the background-only "
            "hypothesis; its asymmetric uncertainties '1 sigma' and '2 sigma' are the signed offsets [cm^2] of "
            "the 68% and 95% expected bands from the median (minus <= 0 <= plus)."
        )
        headline, method = "Observed upper limit on sigma_SI", "asymptotic CLs, q~mu test statistic"
        sensitivity = "Expected (median) upper limit on sigma_SI"
    table.location = "Limit figure (results/limits/limits.csv)"
    set_keywords(table, keywords, ["SIG"])
    table.add_variable(variable(hdl, "WIMP mass", units="GeV", values=lim["mass_gev"].tolist(), independent=True))
    obs = variable(hdl, headline, units="cm$^{2}$", values=lim["limit_cm2"].tolist(), independent=False)
    obs.add_qualifier("CL", "90%")
    obs.add_qualifier("Method", method)
    table.add_variable(obs)
    for column, name, qualifier in OPTIONAL_LIMITS:
        if column in lim:
            var = variable(hdl, name, units="cm$^{2}$", values=lim[column].tolist(), independent=False)
            var.add_qualifier("CL", "90%")
            var.add_qualifier("Method", qualifier)
            table.add_variable(var)
    table.add_variable(
        _expected_variable(
            hdl, lim, "expected", sensitivity, "background-only toys / Asimov" if both else "asymptotic CLs, q~mu"
        )
    )
    if CLS_BAND[0] + "_cm2" in lim:
        table.add_variable(_expected_variable(hdl, lim, *CLS_BAND[:1], CLS_BAND[1], CLS_BAND[2]))
    if "pcl_threshold_cm2" in lim:
        table.add_variable(
            variable(
                hdl,
                "PCL floor: sensitivity quantile at critical power 0.16",
                units="cm$^{2}$",
                values=lim["pcl_threshold_cm2"].tolist(),
                independent=False,
            )
        )
    if "neyman_threshold" in lim:
        var = variable(
            hdl,
            "Neyman critical value of t~mu at the unconstrained limit",
            values=lim["neyman_threshold"].tolist(),
            independent=False,
        )
        if "neyman_threshold_err" in lim:
            unc = hdl.Uncertainty("toy MC stat.", is_symmetric=True)
            unc.values = lim["neyman_threshold_err"].tolist()
            var.add_uncertainty(unc)
        table.add_variable(var)
    for column, name, definition in DISCOVERY_COLUMNS:
        if column in lim:
            var = variable(hdl, name, values=lim[column].tolist(), independent=False)
            var.add_qualifier("Definition", definition)
            table.add_variable(var)
    return table


def threshold_table(hdl, thresholds: Mapping, keywords):
    """The Neyman threshold table: critical value of t~mu versus total expected signal, per reference shape.

    Args:
        thresholds: ``{"cl", "signal_events" (J,), "shape_mass_gev" (K,), "shape_b_eff" (K,),
            "thresholds" (K, J), "errors" (K, J)}`` (``threshold_table.json``).
    """
    s = as_finite_array("thresholds.signal_events", require(thresholds, "signal_events", "thresholds"), positive=True)
    masses = as_finite_array("thresholds.shape_mass_gev", require(thresholds, "shape_mass_gev", "thresholds"))
    b_eff = as_finite_array("thresholds.shape_b_eff", require(thresholds, "shape_b_eff", "thresholds"))
    c = as_finite_array("thresholds.thresholds", require(thresholds, "thresholds", "thresholds"), ndim=2)
    err = as_finite_array("thresholds.errors", require(thresholds, "errors", "thresholds"), ndim=2, nonnegative=True)
    if c.shape != (len(masses), len(s)) or err.shape != c.shape or len(b_eff) != len(masses):
        raise InvalidData(
            f"shape {c.shape} does not match {len(masses)} shapes x {len(s)} signal points",
            field="thresholds.thresholds",
        )
    cl = float(require(thresholds, "cl", "thresholds"))
    table = new_table(
        hdl,
        "Neyman threshold table",
        description=(
            f"Critical values of the two-sided profile-likelihood-ratio test statistic t~mu for the {cl:.0%} CL "
            "Neyman construction: the toy-MC quantile of t~mu under the tested signal hypothesis, versus the total "
            "expected signal s [events], for reference signal shapes characterised by their effective background "
            "b_eff = S^2 / sum_k(S_k^2 / B_k) [events]; uncertainties are the toy-MC statistical errors of the "
            "quantile. A signal strength is excluded where t~mu(data) exceeds the critical value interpolated at "
            "its s and b_eff (dmpreserve.artifacts.thresholds). The asymptotic value is 2.706."
        ),
        location="results/toys/threshold_table.json",
        keywords=keywords,
        observables=["CL"],
    )
    table.add_variable(variable(hdl, "Total expected signal", units="events", values=s.tolist(), independent=True))
    for k in range(len(masses)):
        var = variable(hdl, "Critical value of t~mu", values=c[k].tolist(), independent=False)
        var.add_qualifier("Reference signal shape", f"{masses[k]:.4g} GeV WIMP")
        var.add_qualifier("Effective background", f"{b_eff[k]:.4g} events")
        var.add_qualifier("CL", f"{cl:.0%}")
        unc = hdl.Uncertainty("toy MC", is_symmetric=True)
        unc.values = err[k].tolist()
        var.add_uncertainty(unc)
        table.add_variable(var)
    return table
