"""90% CL upper limits on the SI cross section from the serialized likelihood, in two conventions.

* Direct detection (Baxter et al., EPJC 81 (2021) 907): the two-sided profile-likelihood ratio
  t~mu with a Neyman construction -- critical values from the toy threshold table c(s, b_eff)
  (:mod:`.thresholds`), from toys of each mass at the mu the root finder evaluates, or the asymptotic
  chi2_1 quantile (2.706 at 90% CL) -- giving the *unconstrained* limit (:mod:`.neyman`); the *power-constrained*
  limit (PCL) max(unconstrained, sensitivity quantile at the critical power 0.16) is the headline
  ``limit_cm2``.  Median sensitivity and +-1/2 sigma bands from background-only pseudo-datasets shared by all masses
  (or Asimov).
* LHC convention: asymptotic CLs with q~mu (identical to pyhf's ``upper_limit`` at the same level).
* Discovery: q0, local p0 and z0, asymptotic and (with toys) from background-only toys.

Everything is computed by :mod:`dmpreserve.stats` (vectorized numpy, validated against pyhf).
The cross section is mu x the patch's ``reference_cross_section_cm2``.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm import tqdm

from dmpreserve.artifacts.limits import EXPECTED_CLS_COLUMNS, EXPECTED_COLUMNS, LIMIT_COLUMNS
from dmpreserve.artifacts.thresholds import ThresholdTable
from dmpreserve.config import AnalysisConfig, is_listed
from dmpreserve.errors import InvalidData, InvalidWorkspace
from dmpreserve.files import read_json
from dmpreserve.stats.asymptotic import asymptotic_limits, observed_setup
from dmpreserve.stats.grid import SampleGrid
from dmpreserve.stats.model import build_model
from dmpreserve.stats.neyman import (
    BandCritical,
    TableCritical,
    ToyCritical,
    mass_shape,
    observed_limit,
    sensitivity,
)
from dmpreserve.stats.regression import regression_limit
from dmpreserve.stats.thresholds import TableSettings
from dmpreserve.stats.toys import ToySettings
from dmpreserve.stats.unbinned import build_unbinned_model

LOG = logging.getLogger("dmpreserve")

if TYPE_CHECKING:
    from dmpreserve.artifacts.unbinned import UnbinnedTemplates

_OPTIONAL = (
    "p0_toys",
    "z0_toys",
    "n_toys",
    "mu_grid",
    "thresholds",
    "threshold_errors",
    "mu_unconstrained_err",
    "signal_events_per_mu",
    "b_eff",
)
_METHOD_TEMPLATE = (
    "headline limit_cm2: power-constrained (critical power {power}) Neyman-constructed upper limit "
    "of the two-sided PLR t~mu, thresholds {threshold}; also asymptotic CLs with q~mu and discovery q0"
)


@dataclasses.dataclass(frozen=True)
class MassLimit:
    """Limits at one mass; signal strengths mu relative to the reference cross section [cm^2].

    Attributes:
        mass_gev: WIMP mass [GeV].
        reference_cross_section_cm2: sigma at mu = 1.
        mu_limit: Headline (PCL) limit.
        mu_expected: PLR sensitivity (-2, -1, median, +1, +2 sigma).
        mu_unconstrained, mu_pcl, mu_cls: Unconstrained Neyman, power-constrained and CLs limits.
        mu_cls_expected: CLs expected limits (-2 .. +2 sigma).
        mu_pcl_threshold: Sensitivity quantile at the critical power.
        p0, z0: Asymptotic discovery p-value and significance.
        neyman_threshold, neyman_threshold_err: t~mu threshold at the unconstrained limit and its MC error.
        mu_hat: Best-fit mu (>= 0).
        p0_toys, z0_toys: Toy-based discovery p-value and significance (None without toys).
        mu_unconstrained_err: Uncertainty of the unconstrained limit from the threshold's toy error.
        signal_events_per_mu, b_eff: Total expected signal at mu = 1 and the shape's effective background
            (the coordinates of the threshold table).
        n_toys: Toys fitted for this mass (0: asymptotic; table mode: the shared background-only toys).
        mu_grid, thresholds, threshold_errors: ``toys`` mode: the mu evaluated with toys and c(mu) there.
    """

    mass_gev: float
    reference_cross_section_cm2: float
    mu_limit: float
    mu_expected: tuple[float, float, float, float, float]
    mu_unconstrained: float = math.nan
    mu_pcl: float = math.nan
    mu_cls: float = math.nan
    mu_cls_expected: tuple[float, ...] = (math.nan,) * 5
    mu_pcl_threshold: float = math.nan
    p0: float = math.nan
    z0: float = math.nan
    neyman_threshold: float = math.nan
    neyman_threshold_err: float = 0.0
    mu_hat: float = math.nan
    mu_unconstrained_err: float = 0.0
    signal_events_per_mu: float = 0.0
    b_eff: float = 0.0
    p0_toys: float | None = None
    z0_toys: float | None = None
    n_toys: int = 0
    mu_grid: tuple[float, ...] = ()
    thresholds: tuple[float, ...] = ()
    threshold_errors: tuple[float, ...] = ()

    def row(self) -> dict[str, float]:
        """The ``limits.csv`` row (``LIMIT_COLUMNS``, plus ``TOY_COLUMNS`` with toys)."""
        ref = self.reference_cross_section_cm2
        out = {
            "mass_gev": self.mass_gev,
            "limit_cm2": self.mu_limit * ref,
            "limit_unconstrained_cm2": self.mu_unconstrained * ref,
            "limit_pcl_cm2": self.mu_pcl * ref,
            "limit_cls_cm2": self.mu_cls * ref,
        }
        out.update({c: float(v) * ref for c, v in zip(EXPECTED_COLUMNS, self.mu_expected)})
        out.update({c: float(v) * ref for c, v in zip(EXPECTED_CLS_COLUMNS, self.mu_cls_expected)})
        out.update(
            {
                "p0": self.p0,
                "z0": self.z0,
                "neyman_threshold": self.neyman_threshold,
                "neyman_threshold_err": self.neyman_threshold_err,
                "pcl_threshold_cm2": self.mu_pcl_threshold * ref,
            }
        )
        row = {c: float(out[c]) for c in LIMIT_COLUMNS}
        if self.p0_toys is not None:
            row.update(
                {
                    "p0_toys": float(self.p0_toys),
                    "z0_toys": float(self.z0_toys),
                    "limit_unconstrained_err_cm2": float(self.mu_unconstrained_err) * ref,
                }
            )
        return row

    def to_json(self) -> dict[str, Any]:
        """All fields as a JSON-able dict (the per-mass point file)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, doc: Any, *, path: str) -> MassLimit:
        """Inverse of :meth:`to_json`, checking the fields.

        Raises:
            InvalidData: naming ``path`` and the bad field.
        """
        if not isinstance(doc, dict):
            raise InvalidData("not a JSON object", path=path)
        kwargs = {}
        for f in dataclasses.fields(cls):
            if f.name not in doc:
                if f.name in _OPTIONAL:
                    continue
                raise InvalidData("missing field", path=path, field=f.name)
            value = doc[f.name]
            values = value if isinstance(value, list) else [value]
            if value is None and f.name in ("p0_toys", "z0_toys"):
                kwargs[f.name] = None
                continue
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values):
                raise InvalidData("must be finite number(s)", path=path, field=f.name)
            kwargs[f.name] = tuple(float(v) for v in value) if isinstance(value, list) else value
        return cls(**kwargs)


def select_patches(patchset: dict[str, Any], masses_gev: list[float] | None = None) -> list[dict[str, Any]]:
    """The patches of the listed masses (all if None), sorted by mass; list index = Snakemake mass index."""
    patches = [p for p in patchset["patches"] if is_listed(p["metadata"]["values"][0], masses_gev)]
    return sorted(patches, key=lambda p: float(p["metadata"]["values"][0]))


def limit_for_patch(
    workspace: dict[str, Any],
    patch: dict[str, Any],
    *,
    cl: float,
    pcl_power: float = 0.16,
    toys: ToySettings | None = None,
    table: ThresholdTable | None = None,
    mass_index: int = 0,
    progress: bool = False,
    grids: Mapping[tuple[str, str], SampleGrid] | None = None,
    unbinned: UnbinnedTemplates | None = None,
) -> MassLimit:
    """All limits of one patch: asymptotic, plus the toy-based Neyman construction if ``toys`` is given.

    ``grids``: samples interpolated on a grid of two parameters (:func:`dmpreserve.stats.model.build_model`).
    ``unbinned``: fine templates; the limits are then those of the unbinned likelihood of the observed events
    (:func:`dmpreserve.stats.unbinned.build_unbinned_model`, the workspace's parameters and normalisations), with
    thresholds from per-mass toys (``toys.mode == "toys"``) or asymptotic ones.

    With ``toys.mode == "table"`` the critical values come from ``table`` (required); with ``"toys"``
    from fresh toys of this mass at every mu the root finder evaluates (``progress``: log its stages).  The band,
    PCL floor and toy p0 come from the background-only pseudo-datasets shared by all masses.

    Raises:
        InvalidWorkspace: unsupported modifiers, or a limit outside the POI bounds.
    """
    if unbinned is None:
        model = build_model(workspace, patch, grids=grids)
    else:
        if toys is not None and toys.mode == "table":
            raise InvalidWorkspace(
                "the threshold table is binned: an unbinned likelihood (likelihood.unbinned) needs "
                "statistics.neyman_threshold 'toys' or 'asymptotic'",
                field="statistics.neyman_threshold",
            )
        model = build_unbinned_model(workspace, patch, unbinned)
    setup = observed_setup(model)
    a = asymptotic_limits(model, cl=cl, pcl_power=pcl_power, setup=setup)
    fields: dict[str, Any] = {
        "mu_unconstrained": a.neyman,
        "mu_expected": a.neyman_expected,
        "mu_pcl_threshold": a.pcl_threshold,
        "neyman_threshold": a.threshold,
        "neyman_threshold_err": 0.0,
    }
    if toys is not None:
        theta0 = toys.theta(model)
        total, b_eff, atom = mass_shape(model, theta0)
        if toys.mode == "table":
            if table is None:
                raise InvalidWorkspace("statistics.neyman_threshold is 'table' but no threshold table was given")
            critical = TableCritical(table, total, b_eff, atom)
            obs = observed_limit(model, setup, a, critical, scan=True)
            band_critical = critical
            extra: dict[str, Any] = {"n_toys": toys.toys_background}
        else:
            mass, start = float(patch["metadata"]["values"][0]), time.monotonic()
            if progress:  # per-mass toys take minutes: say what is being done
                LOG.info("m = %g GeV: observed limit, thresholds from %d toys per mu", mass, toys.toys_per_mu)
            critical = ToyCritical(model, theta0, toys, mass_index=mass_index, cl=cl)
            if toys.observed == "regression":
                obs, pts = regression_limit(model, setup, a, toys, theta0, mass_index=mass_index, cl=cl)
            else:
                obs, pts = observed_limit(model, setup, a, critical, scan=False), None
            if progress:
                LOG.info(
                    "m = %g GeV: observed limit done (%.0f s); sensitivity band: thresholds at %d mu values, "
                    "limits of %d background-only toys",
                    mass,
                    time.monotonic() - start,
                    toys.band_points,
                    toys.toys_background,
                )
            band_critical = BandCritical(critical, a, model.poi_bounds[1], points=toys.band_points)
            if pts is None:  # the mu values of the root finder and of the band
                mus = sorted(critical.cache)
                grid = (mus, [critical.cache[m][0] for m in mus], [critical.cache[m][1] for m in mus], 0)
            else:  # the regression's mu values
                grid = (pts.mus, pts.c, pts.c_err, pts.mus.size * toys.toys_per_mu)
            extra = {
                "mu_grid": tuple(float(v) for v in grid[0]),
                "thresholds": tuple(float(v) for v in grid[1]),
                "threshold_errors": tuple(float(v) for v in grid[2]),
                "n_toys": critical.n_toys + grid[3] + toys.toys_background,
            }
        sens = sensitivity(model, setup, a, band_critical, theta0, toys, pcl_power=pcl_power)
        fields = {
            "mu_unconstrained": obs.mu,
            "mu_unconstrained_err": obs.mu_err,
            "mu_expected": sens.expected,
            "mu_pcl_threshold": sens.pcl_threshold,
            "neyman_threshold": obs.threshold,
            "neyman_threshold_err": obs.threshold_err,
            "signal_events_per_mu": total,
            "b_eff": b_eff,
        }
        extra.update({"p0_toys": sens.p0, "z0_toys": sens.z0})
    else:
        extra = {}
    pcl = max(fields["mu_unconstrained"], fields["mu_pcl_threshold"])
    return MassLimit(
        mass_gev=float(patch["metadata"]["values"][0]),
        reference_cross_section_cm2=float(patch["metadata"]["reference_cross_section_cm2"]),
        mu_limit=pcl,
        mu_pcl=pcl,
        mu_cls=a.cls,
        mu_cls_expected=a.cls_expected,
        p0=a.p0,
        z0=a.z0,
        mu_hat=a.mu_hat,
        **fields,
        **extra,
    )


def compute_limits(
    workspace: dict[str, Any],
    patchset: dict[str, Any],
    *,
    cl: float = 0.9,
    masses_gev: list[float] | None = None,
    progress: bool = True,
    pcl_power: float = 0.16,
    toys: ToySettings | None = None,
    table: ThresholdTable | None = None,
    unbinned: UnbinnedTemplates | None = None,
    stream_index: Callable[[int, float], int] | None = None,
) -> list[MassLimit]:
    """Limits for every patch (or only the listed masses), sorted by mass.

    Without ``toys`` everything is asymptotic (about 50 ms per mass).  With ``toys`` in ``table`` mode
    the critical values come from ``table``; the background-only pseudo-datasets are the same for
    every mass (and for a reinterpretation with the same settings).  The per-mass toys of the i-th mass (sorted)
    use stream index i (the pipeline's ``limits-point --index``), or ``stream_index(i, mass_gev)`` where given
    (a reinterpretation gives a mass of the pipeline's its pipeline index, so it gets the pipeline's toys).
    """
    patches = select_patches(patchset, masses_gev)
    index = stream_index or (lambda i, _mass: i)
    return [
        limit_for_patch(
            workspace,
            p,
            cl=cl,
            pcl_power=pcl_power,
            toys=toys,
            table=table,
            mass_index=index(i, float(p["metadata"]["values"][0])),
            unbinned=unbinned,
        )
        for i, p in enumerate(tqdm(patches, desc="limits", unit="mass", disable=not progress, mininterval=1.0))
    ]


def method_text(*, toys: str | None, pcl_power: float, unbinned: bool = False, observed: str = "root") -> str:
    """The ``method`` string of limits.json (``toys``: the Neyman threshold mode, None for asymptotic;
    ``unbinned``: the limits are those of the unbinned likelihood, likelihood.unbinned; ``observed``: how the
    observed limit is found from per-mass toys, statistics.observed_limit)."""
    threshold = {
        "table": "from the toy-MC threshold table c(s, b_eff) at the expected signal of the limit",
        "toys": "from toy Monte Carlo of each mass at every mu the root finder evaluates",
    }.get(toys or "", "asymptotic (chi2_1 quantile)")
    text = _METHOD_TEMPLATE.format(power=pcl_power, threshold=threshold)
    if toys == "toys" and observed == "regression":
        text += (
            "; the observed limit where a logistic regression (in ln mu) of the per-mass toys' p-values "
            "P(t~mu >= t~mu(data)) at independent mu values crosses 1 - CL"
        )
    if unbinned:
        text += (
            "; unbinned likelihood of the observed events with fine, smoothed templates "
            "(the pyhf workspace is its binned serialization)"
        )
    return text


#: The method of the default (asymptotic) limits.
METHOD = method_text(toys=None, pcl_power=0.16)


#: Format version of the per-mass files of ``dmpreserve limits-point``.
POINT_FORMAT_VERSION = 1


def toy_settings(cfg: AnalysisConfig) -> ToySettings | None:
    """The configured :class:`~dmpreserve.stats.toys.ToySettings`, or None for asymptotic thresholds."""
    st = cfg.statistics
    if st["neyman_threshold"] == "asymptotic":
        return None
    return ToySettings(
        mode=st["neyman_threshold"],
        toys_background=int(st["toys_background"]),
        toys_per_mu=int(st["toys_per_mu"]),
        seed=int(st["seed"]),
        band_points=int(st["band_points"]),
        observed=str(st["observed_limit"]),
    )


def table_settings(cfg: AnalysisConfig) -> TableSettings:
    """The configured :class:`~dmpreserve.stats.thresholds.TableSettings`."""
    st = cfg.statistics
    tt = st["threshold_table"]
    grid = tt["signal_events"]
    return TableSettings(
        signal_events=tuple(float(v) for v in np.geomspace(grid["min"], grid["max"], int(grid["points"]))),
        reference_masses_gev=tuple(float(m) for m in tt["reference_masses_gev"]),
        toys_per_point=int(tt["toys_per_point"]),
        shards=int(tt["shards"]),
        seed=int(st["seed"]),
        failure_fraction=float(st["toy_failure_fraction"]),
    )


def statistics_record(toys: ToySettings | None, *, pcl_power: float | None, unbinned: bool = False) -> dict[str, Any]:
    """The statistics settings as ``limits.json`` (``statistics``) and the limit point files record them.

    Args:
        toys: The toy settings (None: asymptotic thresholds and Asimov bands).
        pcl_power: Critical power of the power constraint (None: no power constraint).
        unbinned: The limits came from the unbinned likelihood.

    Returns:
        ``neyman_threshold`` (``asymptotic``, ``table`` or ``toys``) and ``pcl_power``; with toys also
        ``toys_background`` and ``seed``, in ``toys`` mode ``toys_per_mu`` and ``band_points``, ``observed_limit``
        unless ``root``; ``toy_truth`` for toys not at the background-only fit (pyhf's convention);
        ``likelihood: unbinned``.
    """
    doc: dict[str, Any] = {
        "neyman_threshold": "asymptotic" if toys is None else toys.mode,
        "pcl_power": None if pcl_power is None else float(pcl_power),
    }
    if toys is not None:
        doc.update(toys_background=int(toys.toys_background), seed=int(toys.seed))
        if toys.mode == "toys":
            doc.update(toys_per_mu=int(toys.toys_per_mu), band_points=int(toys.band_points))
            if toys.observed != "root":
                doc["observed_limit"] = toys.observed
        if toys.truth != "fit":
            doc["toy_truth"] = toys.truth
    if unbinned:
        doc["likelihood"] = "unbinned"
    return doc


def statistics_doc(cfg: AnalysisConfig) -> dict[str, Any]:
    """The configured statistics settings as recorded in limits.json and the limit point files
    (:func:`statistics_record`)."""
    return statistics_record(
        toy_settings(cfg),
        pcl_power=float(cfg.statistics["pcl_power"]),
        unbinned=bool(cfg["likelihood"].get("unbinned")),
    )


def read_points(paths: list[str], *, cl: float, n_expected: int, statistics: dict[str, Any]) -> list[MassLimit]:
    """Read the per-mass files of ``dmpreserve limits-point`` (one per selected mass), in mass order.

    Raises:
        InvalidData: naming the file and field of a point computed with other settings, a bad or duplicate
            mass index, or a missing mass.
    """
    out = {}
    for path in paths:
        doc = read_json(path, what="limit point")
        if not isinstance(doc, dict) or doc.get("version") != POINT_FORMAT_VERSION:
            raise InvalidData(f"not a limit point file (version {POINT_FORMAT_VERSION})", path=path, field="version")
        if doc.get("cl") != cl:
            raise InvalidData(f"computed at CL {doc.get('cl')}, the configuration says {cl}", path=path, field="cl")
        if doc.get("statistics") != statistics:
            raise InvalidData(
                "computed with other statistics settings than the configuration's", path=path, field="statistics"
            )
        index = doc.get("mass_index")
        if not isinstance(index, int) or not 0 <= index < n_expected or index in out:
            raise InvalidData(
                f"bad or duplicate mass index (expected 0..{n_expected - 1})", path=path, field="mass_index"
            )
        out[index] = MassLimit.from_json(doc.get("limit"), path=path)
    if len(out) != n_expected:
        raise InvalidData(
            f"{len(out)} limit points given, {n_expected} masses selected",
            path=paths[0] if paths else None,
            field="--points",
        )
    return [out[i] for i in sorted(out)]
