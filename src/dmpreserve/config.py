"""Analysis configuration: YAML validated by JSON Schema plus the checks a schema cannot express."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml

from dmpreserve.config_backgrounds import check_backgrounds, check_range
from dmpreserve.errors import InvalidConfig
from dmpreserve.files import atomic_write, check_nesting, load_yaml
from dmpreserve.physics.grids import log_mass_grid
from dmpreserve.schema import validate

if TYPE_CHECKING:
    from dmpreserve.physics.halo import StandardHalo

#: Maximum size of a configuration file (bytes).
MAX_CONFIG_BYTES = 1024 * 1024

#: The input datasets of the analysis (config section ``inputs``), in the order the workflow lists them.
INPUT_NAMES = ("science", "calibration_er", "calibration_nr", "simulation_nr", "isolated_s1", "isolated_s2")
#: URL scheme of a remote input -> the Snakemake storage plugin that reads it (snakemake-storage-plugin-NAME).
STORAGE_PLUGINS = {"root": "xrootd", "xroot": "xrootd", "http": "http", "https": "http", "s3": "s3", "zenodo": "zenodo"}


@dataclasses.dataclass(frozen=True)
class Binning:
    """The 2D analysis space: cS1 [phd] x log10(cS2/phd)."""

    cs1_edges_phd: tuple[float, ...]
    log10_cs2_edges: tuple[float, ...]

    @property
    def shape(self) -> tuple[int, int]:
        """Number of bins (n_cs1, n_log10cs2)."""
        return len(self.cs1_edges_phd) - 1, len(self.log10_cs2_edges) - 1

    @property
    def n_bins(self) -> int:
        """Total number of analysis bins."""
        n1, n2 = self.shape
        return n1 * n2


@dataclasses.dataclass(frozen=True)
class AnalysisConfig:
    """A validated configuration.

    Attributes:
        raw: The configuration document (treat as read-only).
        path: The file it was read from.
        sha256: Hash of the canonical JSON form of ``raw`` (the config hash of provenance).
    """

    raw: dict[str, Any]
    path: str
    sha256: str

    def __getitem__(self, key: str) -> Any:
        return self.raw[key]

    @property
    def binning(self) -> Binning:
        """The analysis binning."""
        b = self.raw["analysis"]["binning"]
        e1 = np.linspace(b["cs1_phd"]["min"], b["cs1_phd"]["max"], b["cs1_phd"]["bins"] + 1)
        e2 = np.linspace(b["log10_cs2"]["min"], b["log10_cs2"]["max"], b["log10_cs2"]["bins"] + 1)
        return Binning(tuple(float(x) for x in e1), tuple(float(x) for x in e2))

    @property
    def masses_gev(self) -> tuple[float, ...]:
        """The WIMP mass grid (log-spaced) [GeV]."""
        return log_mass_grid(self.raw["signal"]["masses_gev"])

    @property
    def halo(self) -> StandardHalo:
        """The configured standard halo (``signal.halo``)."""
        # imported here: the halo needs SciPy, which the scattered select jobs (they never use the halo) would
        # otherwise import for nothing (~0.2 s per job)
        from dmpreserve.physics.halo import StandardHalo

        h = self.raw["signal"]["halo"]
        return StandardHalo(
            rho0_gev_cm3=h["rho0_gev_cm3"],
            v0_km_s=h["v0_km_s"],
            v_esc_km_s=h["v_esc_km_s"],
            v_earth_km_s=h["v_earth_km_s"],
        )

    @property
    def signal_energy_edges_kev(self) -> np.ndarray:
        """True recoil-energy bin edges of the response matrix [keV], shape (bins + 1,): evenly spaced in energy
        or, with ``spacing: log``, in log(energy)."""
        e = self.raw["signal"]["energy_bins_kev"]
        if e.get("spacing", "linear") == "log":
            return np.geomspace(e["min"], e["max"], e["bins"] + 1)
        return np.linspace(e["min"], e["max"], e["bins"] + 1)

    @property
    def acceptance_energy_edges_kev(self) -> np.ndarray:
        """True recoil-energy bin edges of the acceptance curve [keV]."""
        e = self.raw["selection"]["acceptance_energy_bins"]
        return np.linspace(e["min_kev"], e["max_kev"], e["bins"] + 1)

    @property
    def statistics(self) -> dict[str, Any]:
        """The ``statistics`` section with defaults filled in (absent: fully asymptotic limits)."""
        out = {
            "neyman_threshold": "asymptotic",
            "pcl_power": 0.16,
            "toys_per_mu": 1000,
            "band_points": 24,
            "observed_limit": "root",
            "toys_background": 500,
            "toy_failure_fraction": 0.01,
            "seed": int(self.raw["seed"]),
        }
        table = {
            "signal_events": {"min": 0.5, "max": 40.0, "points": 20},
            "reference_masses_gev": [8.0, 20.0, 100.0],
            "toys_per_point": 1000,
            "shards": 2,
        }
        out.update(self.raw.get("statistics") or {})
        out["threshold_table"] = {**table, **(out.get("threshold_table") or {})}
        return out

    @property
    def inputs(self) -> dict[str, dict[str, Any] | str]:
        """Each input dataset (:data:`INPUT_NAMES`): ``"mdc"`` (the mock-data challenge, the default) or
        the dataset's ``{"location", "files", "sha256", "files_per_job"}`` with defaults filled in
        (``files``: None where the location is one file or a local directory listed at run time)."""
        section = self.raw.get("inputs") or {}
        out: dict[str, dict[str, Any] | str] = {}
        for name in INPUT_NAMES:
            spec = section.get(name, "mdc")
            if spec == "mdc":
                out[name] = "mdc"
                continue
            out[name] = {
                "location": spec["location"],
                "files": list(spec["files"]) if "files" in spec else None,
                "sha256": {k: v.lower() for k, v in (spec.get("sha256") or {}).items()},
                "files_per_job": int(spec.get("files_per_job", 1)),
            }
            if "table" in spec:
                table = spec["table"]
                out[name]["table"] = {"columns": list(table["columns"]), "description": table["description"]}
        return out

    def cuts(self, *, kinds: tuple[str, ...] = ("quality", "fiducial", "roi")) -> list[dict[str, Any]]:
        """The cuts of the given kinds, in declaration order."""
        return [c for c in self.raw["selection"]["cuts"] if c["kind"] in kinds]

    def cut_range(self, variable: str, kind: str) -> tuple[float, float]:
        """Combined [min, max) window of the cuts of ``kind`` on ``variable`` (inf where unbounded)."""
        lo, hi = -math.inf, math.inf
        for c in self.cuts(kinds=(kind,)):
            if c["variable"] == variable:
                lo = max(lo, c.get("min", -math.inf))
                hi = min(hi, c.get("max", math.inf))
        return lo, hi


def canonical_hash(doc: Any) -> str:
    """sha256 of a document's canonical JSON form (sorted keys, no whitespace)."""
    return hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def load_config(path: str | os.PathLike) -> AnalysisConfig:
    """Read, schema-validate and cross-check a YAML configuration.

    Raises:
        InvalidConfig: naming the file and the offending key.
    """
    p = Path(path)
    if not p.is_file():
        raise InvalidConfig("configuration file not found", path=p)
    if p.stat().st_size > MAX_CONFIG_BYTES:
        raise InvalidConfig(f"configuration file is larger than {MAX_CONFIG_BYTES} bytes", path=p)
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidConfig(f"not valid YAML: not UTF-8 text ({exc.reason} at byte {exc.start})", path=p) from None
    doc = load_yaml(text, path=p, what="configuration", error=InvalidConfig)
    return config_from_dict(doc, path=str(p))


def _check_finite(node: Any, *, path: str, where: str = "$") -> None:
    """Reject NaN and infinities anywhere (JSON Schema bounds let NaN through)."""
    if isinstance(node, float) and not math.isfinite(node):
        raise InvalidConfig(f"non-finite number {node!r}", path=path, field=where)
    if isinstance(node, int) and not isinstance(node, bool) and abs(node) > 2**63:
        raise InvalidConfig("integer too large (more than 2^63 in magnitude)", path=path, field=where)
    if isinstance(node, dict):
        for k, v in node.items():
            _check_finite(v, path=path, where=f"{where}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            _check_finite(v, path=path, where=f"{where}[{i}]")


def config_from_dict(doc: Any, *, path: str = "<config>") -> AnalysisConfig:
    """Validate a configuration document (schema + cross-checks) and wrap it."""
    check_nesting(doc, path=path, what="configuration", error=InvalidConfig)
    _check_finite(doc, path=path)
    validate(doc, "config", path=path, error=InvalidConfig)
    check_config(doc, path=path)
    return AnalysisConfig(raw=doc, path=path, sha256=canonical_hash(doc))


def url_scheme(location: str) -> str | None:
    """The URL scheme of an input location (``root``, ``https``, ...), or None for a local path."""
    head, sep, _ = location.partition("://")
    return head.lower() if sep and head.replace("+", "").replace("-", "").replace(".", "").isalnum() else None


def check_inputs(doc: dict[str, Any], *, path: str) -> None:
    """The checks of the ``inputs`` section a schema cannot express.

    A URL's scheme must have a storage plugin (:data:`STORAGE_PLUGINS`); a remote directory (a URL not
    ending in ``.parquet``) must list its ``files``; a single-file location takes no ``files``; every
    ``sha256`` key must name a listed file or its sidecar (where ``files`` is listed, or the location's
    own file); ``files_per_job`` is a science-only key (schema) of at least 1 (schema).

    Raises:
        InvalidConfig: naming the key as a JSON path (``$.inputs.NAME.FIELD``).
    """
    for name, spec in (doc.get("inputs") or {}).items():
        if not isinstance(spec, dict):
            continue
        field = f"$.inputs.{name}"
        location = spec["location"]
        scheme = url_scheme(location)
        if scheme is not None and scheme not in STORAGE_PLUGINS:
            raise InvalidConfig(
                f"unknown URL scheme {scheme!r} in {location!r} (known: {', '.join(sorted(STORAGE_PLUGINS))})",
                path=path,
                field=field + ".location",
            )
        if "table" in spec:  # a released event table: one text file, imported by rule import_events
            _check_table_input(spec, path=path, field=field)
            continue
        single = location.rstrip("/").endswith(".parquet") and not location.endswith("/")
        files = spec.get("files")
        if single and files is not None:
            raise InvalidConfig(
                "'files' lists the files of a directory, but the location is one .parquet file",
                path=path,
                field=field + ".files",
            )
        if scheme is not None and not single and files is None:
            raise InvalidConfig(
                "a remote directory needs 'files' (the names of its Parquet files): a URL cannot be listed",
                path=path,
                field=field + ".files",
            )
        if single:
            files = [location.rstrip("/").rsplit("/", 1)[-1]]
        if files is None:  # a local directory: listed by the workflow at run time
            continue
        known = set(files) | {f[: -len(".parquet")] + ".json" for f in files}
        for key in spec.get("sha256") or {}:
            if key not in known:
                raise InvalidConfig(
                    f"names no file of the input (files: {', '.join(files)}, and their .json sidecars)",
                    path=path,
                    field=f"{field}.sha256.{key}",
                )


def _check_table_input(spec: dict[str, Any], *, path: str, field: str) -> None:
    """A released table input: one text file (not Parquet, not a directory), no ``files``, sha256 keys naming it."""
    location = spec["location"]
    if location.endswith((".parquet", "/")):
        raise InvalidConfig(
            "a released table is one text file (not Parquet, not a directory)", path=path, field=field + ".location"
        )
    if "files" in spec:
        raise InvalidConfig("a released table is one file: 'files' does not apply", path=path, field=field + ".files")
    base = location.rsplit("/", 1)[-1]
    for key in spec.get("sha256") or {}:
        if key != base:
            raise InvalidConfig(
                f"names no file of the input (the table is {base})", path=path, field=f"{field}.sha256.{key}"
            )


def check_config(doc: dict[str, Any], *, path: str) -> None:
    """The consistency checks a JSON Schema cannot express.

    Raises:
        InvalidConfig: naming the offending key as a JSON path.
    """
    check_inputs(doc, path=path)
    mdc = doc["mdc"]
    er = mdc["components"]["er"]
    check_range(er["energy_min_kev"], er["energy_max_kev"], path=path, field="$.mdc.components.er")
    sim = mdc["simulation"]
    check_range(sim["nr_energy_min_kev"], sim["nr_energy_max_kev"], path=path, field="$.mdc.simulation")
    names = set()
    for i, cut in enumerate(doc["selection"]["cuts"]):
        field = f"$.selection.cuts[{i}]"
        if cut["name"] in names:
            raise InvalidConfig(f"duplicate cut name {cut['name']!r}", path=path, field=field + ".name")
        names.add(cut["name"])
        if "min" in cut and "max" in cut:
            check_range(cut["min"], cut["max"], path=path, field=field)
    cuts = doc["selection"]["cuts"]

    def window(variable: str, kind: str) -> tuple[float, float]:
        lo, hi = -math.inf, math.inf
        for c in cuts:
            if c["kind"] == kind and c["variable"] == variable:
                lo, hi = max(lo, c.get("min", -math.inf)), min(hi, c.get("max", math.inf))
        return lo, hi

    r_fid = window("r_cm", "fiducial")
    dt_fid = window("drift_time_us", "fiducial")
    # No fiducial cut at all: the data provider applied it upstream and its sidecars state the fiducial mass
    # (exposure.fiducial_mass_t).  Otherwise the configured cuts define the fiducial mass and must bound it.
    has_fiducial = any(c["kind"] == "fiducial" for c in cuts)
    if has_fiducial and not math.isfinite(r_fid[1]):
        raise InvalidConfig(
            "a fiducial cut with a maximum on r_cm is required (it defines the fiducial mass)",
            path=path,
            field="$.selection.cuts",
        )
    if has_fiducial and not (math.isfinite(dt_fid[0]) and math.isfinite(dt_fid[1])):
        raise InvalidConfig(
            "fiducial cuts must bound drift_time_us on both sides (they define the fiducial mass)",
            path=path,
            field="$.selection.cuts",
        )
    for kind in ("fiducial",):
        for c in cuts:
            if c["kind"] == kind and c["variable"] not in ("r_cm", "drift_time_us"):
                raise InvalidConfig(
                    "fiducial cuts may only act on r_cm and drift_time_us",
                    path=path,
                    field=f"$.selection.cuts[{cuts.index(c)}].variable",
                )
    binning = doc["analysis"]["binning"]
    for key, var in (("cs1_phd", "cs1_phd"), ("log10_cs2", "log10_cs2")):
        b = binning[key]
        check_range(b["min"], b["max"], path=path, field=f"$.analysis.binning.{key}")
        lo, hi = window(var, "roi")
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise InvalidConfig(
                f"the ROI needs a cut bounding {var} on both sides", path=path, field="$.selection.cuts"
            )
        if b["min"] < lo - 1e-9 or b["max"] > hi + 1e-9:
            raise InvalidConfig(
                f"binning [{b['min']}, {b['max']}] leaves the ROI [{lo}, {hi}] of {var}",
                path=path,
                field=f"$.analysis.binning.{key}",
            )
    acc = doc["selection"]["acceptance_energy_bins"]
    check_range(acc["min_kev"], acc["max_kev"], path=path, field="$.selection.acceptance_energy_bins")
    check_backgrounds(doc["backgrounds"], path=path, cs1_roi_max=window("cs1_phd", "roi")[1], r_fid_max=r_fid[1])
    sig = doc["signal"]
    check_range(sig["masses_gev"]["min"], sig["masses_gev"]["max"], path=path, field="$.signal.masses_gev")
    e = sig["energy_bins_kev"]
    check_range(e["min"], e["max"], path=path, field="$.signal.energy_bins_kev")
    if e.get("spacing") == "log" and e["min"] <= 0:
        raise InvalidConfig("log-spaced bins need min > 0 keV", path=path, field="$.signal.energy_bins_kev.min")
    if e["min"] < sim["nr_energy_min_kev"] - 1e-9 or e["max"] > sim["nr_energy_max_kev"] + 1e-9:
        raise InvalidConfig(
            "signal energy bins reach outside the simulated NR energy range "
            f"[{sim['nr_energy_min_kev']}, {sim['nr_energy_max_kev']}] keV",
            path=path,
            field="$.signal.energy_bins_kev",
        )
    halo = sig["halo"]
    if halo["v_esc_km_s"] <= halo["v0_km_s"]:
        raise InvalidConfig("escape speed must exceed v0", path=path, field="$.signal.halo.v_esc_km_s")
    lo, hi = doc["likelihood"]["poi_bounds"]
    check_range(lo, hi, path=path, field="$.likelihood.poi_bounds")
    if doc["likelihood"].get("unbinned") is not None:
        mode = (doc.get("statistics") or {}).get("neyman_threshold", "asymptotic")
        if mode not in ("toys", "asymptotic"):
            raise InvalidConfig(
                f"likelihood.unbinned needs neyman_threshold 'toys' or 'asymptotic', not {mode!r}: the threshold "
                "table is built from the binned likelihood",
                path=path,
                field="$.statistics.neyman_threshold",
            )
    grid = log_mass_grid(sig["masses_gev"])
    for i, m in enumerate(doc["limits"]["masses_gev"] or []):
        if not is_listed(m, grid):
            raise InvalidConfig(
                f"mass {m} GeV is not on the signal mass grid", path=path, field=f"$.limits.masses_gev[{i}]"
            )


def is_listed(mass_gev: float, masses_gev: Sequence[float] | None) -> bool:
    """Whether ``mass_gev`` [GeV/c^2] is one of ``masses_gev`` (relative tolerance 1e-4, as ``limits.masses_gev`` is
    matched to the signal mass grid), or the list is None or empty (meaning all masses)."""
    return not masses_gev or bool(np.any(np.isclose(np.asarray(masses_gev, float), float(mass_gev), rtol=1e-4)))


def write_resolved_config(path: str | os.PathLike, cfg: AnalysisConfig) -> None:
    """Write the resolved configuration as YAML (sorted keys, block style), atomically."""
    text = yaml.safe_dump(cfg.raw, sort_keys=True, default_flow_style=False, allow_unicode=True)
    with atomic_write(path) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")
