"""Bulk mode of the mock-data generator: gigabytes of reduced data as a Parquet dataset, in minutes.

The full NEST chain of :mod:`dmpreserve.mdc.generate` simulates ~40k events/s, too slow for 10^8 events.
Bulk mode instead draws the detector response from **tables built with nestpy**:

1. A NEST library: ``table_events`` deposits (flat ER over the energy range, plus a fraction of
   flat NR) simulated with :class:`dmpreserve.detector.NestDetector` at random positions.  Per
   energy bin and species it gives the mean and covariance of (cS1, log10 cS2) and the fraction
   of deposits with both an S1 and an S2.
2. NEST's S1 and S2 position corrections on a grid of (radius, drift time).

Each bulk event then gets a true energy and position, a correlated Gaussian (cS1, log10 cS2) from
its energy bin's table (a vectorized parametrisation of NEST, not NEST itself), raw S1/S2 from the
interpolated corrections, a smeared reconstructed x-y and an S1 coincidence.  The Parquet files
carry this description in their key-value metadata (``dmpreserve``) and the dataset's sidecar
``_dataset.json`` (schema ``reduced_data``, kind ``science``) says so in ``generator``.

Layout: by default each file's row groups are clustered by cS1, the energy proxy (events ranked
by cS1 and cut into row groups, event order kept inside each row group), as a columnar store for
low-energy searches would be: the WIMP ROI (a few % of a 0.5-300 keV spectrum) then lies in a few
row groups per file, and a scan with the ROI pushed down skips the rest by their statistics.
``cluster_by=None`` writes plain event order.

Files are written independently (one random stream per file), with many row groups each, so the
dataset is byte-identical for the same seed and size whatever the number of worker threads.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from tqdm import tqdm

from dmpreserve import __version__
from dmpreserve.artifacts.reduced import column_catalogue, sidecar_path
from dmpreserve.detector import NestDetector, active_mass_t, fiducial_mass_t, position_resolution_cm
from dmpreserve.errors import InvalidConfig
from dmpreserve.files import write_json
from dmpreserve.mdc.layout import SIDECAR, layout_doc, write_table
from dmpreserve.physics.constants import SECONDS_PER_YEAR

#: Columns of a bulk file, in order (the science-data columns of the reduced-data schema).
COLUMNS = ("event_id", "s1_phd", "s2_phd", "cs1_phd", "cs2_phd", "drift_time_us", "x_cm", "y_cm", "s1_coincidence")
GENERATOR_DESCRIPTION = (
    "dmpreserve bulk mode: vectorized detector response drawn from tables built with nestpy (NEST) -- per "
    "energy bin the mean and covariance of (cS1, log10 cS2) and the S1/S2 detection probability from a NEST "
    "library, and NEST's S1/S2 position corrections on a (radius, drift time) grid; not a full NEST simulation "
    "per event"
)


@dataclasses.dataclass(frozen=True)
class BulkOptions:
    """What to generate.

    Attributes:
        target_bytes: Approximate total size of the Parquet files [bytes].
        seed: Master seed.
        detector: nestpy detector name.
        energy_min_kev, energy_max_kev: Flat energy range of the deposits [keV].
        nr_fraction: Fraction of NR deposits (the rest is ER).
        rows_per_file: Events per Parquet file.
        row_group_rows: Events per row group.
        table_events: Size of the NEST library the response tables are built from.
        energy_bins: Energy bins of the tables.
        compression: Parquet codec.
        cluster_by: Cluster each file's row groups by this column (default cS1, the energy proxy): the
            file's events are ranked by it and cut into row groups of ``row_group_rows``, so each row
            group holds a contiguous range of it (narrow row-group statistics: scans with pushed-down
            cuts on it, such as the WIMP ROI in cS1, skip row groups); events keep their event order
            inside each row group.  None: plain event order (every row group spans the full range).
        er_rate_per_t_yr_kev: ER rate that sets the nominal live time in the sidecar (``live_time_s``:
            the time a flat ER background of this rate in the active mass takes to give the events).
    """

    target_bytes: int
    seed: int = 20221011
    detector: str = "LZ_WS2022"
    energy_min_kev: float = 0.5
    energy_max_kev: float = 300.0
    nr_fraction: float = 0.01
    rows_per_file: int = 2_000_000
    row_group_rows: int = 125_000
    table_events: int = 200_000
    energy_bins: int = 120
    compression: str = "zstd"
    er_rate_per_t_yr_kev: float = 25.0
    cluster_by: str | None = "cs1_phd"

    def __post_init__(self) -> None:
        checks = {
            "target_bytes": self.target_bytes > 0,
            "rows_per_file": self.rows_per_file > 0,
            "row_group_rows": self.row_group_rows > 0,
            "table_events": self.table_events >= 1000,
            "energy_bins": self.energy_bins >= 1,
            "nr_fraction": 0.0 <= self.nr_fraction <= 1.0,
            "energy_max_kev": 0.0 < self.energy_min_kev < self.energy_max_kev,
            "cluster_by": self.cluster_by is None or self.cluster_by in COLUMNS,
        }
        for field, ok in checks.items():
            if not ok:
                raise InvalidConfig(
                    f"bulk option out of range: {getattr(self, field)!r}", path="bulk options", field=field
                )


@dataclasses.dataclass(frozen=True)
class ResponseTables:
    """NEST response tables (see the module docstring); arrays indexed [species, energy bin]."""

    energy_edges_kev: np.ndarray
    mean: np.ndarray  # (2, n_bins, 2): mean of (cS1 [phd], log10 cS2/phd)
    chol: np.ndarray  # (2, n_bins, 2, 2): Cholesky factor of their covariance
    detected: np.ndarray  # (2, n_bins): fraction with S1 and S2
    r_grid_cm: np.ndarray
    dt_grid_us: np.ndarray
    corr_s1: np.ndarray  # (n_r, n_dt): cS1 / S1
    corr_s2: np.ndarray  # (n_r, n_dt): cS2 / S2
    coincidence_per_phd: float
    wall_radius_cm: float
    drift_time_max_us: float
    active_mass_t: float
    fiducial_mass_t: float
    detector_sidecar: dict[str, Any]
    active_volume: dict[str, float]


def build_tables(options: BulkOptions) -> ResponseTables:
    """Simulate the NEST library and tabulate the response (a few seconds for 200k events)."""
    det = NestDetector(options.detector)
    det.seed(options.seed * 101 + 7)
    rng = np.random.default_rng([options.seed, 7, 0])
    edges = np.linspace(options.energy_min_kev, options.energy_max_kev, options.energy_bins + 1)
    n_bins = options.energy_bins
    mean, chol = np.zeros((2, n_bins, 2)), np.zeros((2, n_bins, 2, 2))
    detected = np.zeros((2, n_bins))
    ratios = []
    for s, species in enumerate(("er", "nr")):
        n = max(20 * n_bins, int(options.table_events * (options.nr_fraction if s else 1 - options.nr_fraction)))
        energy = rng.uniform(options.energy_min_kev, options.energy_max_kev, n)
        sim = det.simulate(energy, species, *det.random_positions(n, rng), rng)
        ok = sim["valid"]
        ratios.append(sim["s1_coincidence"][ok] / sim["s1_phd"][ok])
        idx = np.clip(np.digitize(energy, edges) - 1, 0, n_bins - 1)
        for b in range(n_bins):
            sel = idx == b
            good = sel & ok
            detected[s, b] = good.sum() / max(sel.sum(), 1)
            if good.sum() < 3:
                mean[s, b] = (1.0, 2.0)
                chol[s, b] = np.diag((0.1, 0.01))
                continue
            pts = np.column_stack([sim["cs1_phd"][good], np.log10(sim["cs2_phd"][good])])
            mean[s, b] = pts.mean(axis=0)
            cov = np.cov(pts, rowvar=False) + np.diag((1e-6, 1e-8))
            chol[s, b] = np.linalg.cholesky(cov)
    p = det.params
    r_grid = np.linspace(0.0, p.wall_radius_cm, 17)
    dt_grid = np.linspace(0.0, p.drift_time_max_us, 65)
    rr, tt = np.meshgrid(r_grid, dt_grid, indexing="ij")
    c1, c2 = det.correction_factors(rr.ravel(), np.zeros(rr.size), tt.ravel())
    return ResponseTables(
        edges,
        mean,
        chol,
        detected,
        r_grid,
        dt_grid,
        c1.reshape(rr.shape),
        c2.reshape(rr.shape),
        float(np.clip(np.median(np.concatenate(ratios)), 0.0, 1.0)),
        p.wall_radius_cm,
        p.drift_time_max_us,
        active_mass_t(det),
        _nominal_fiducial_mass_t(det),
        p.sidecar(),
        p.active_volume(),
    )


def _nominal_fiducial_mass_t(det: NestDetector) -> float:
    """The nestpy detector's own fiducial volume (as for the MDC's nominal exposure) [t]."""
    nd = det.det
    return fiducial_mass_t(
        density_g_cm3=det.params.lxe_density_g_cm3,
        drift_velocity_mm_per_us=det.params.drift_velocity_mm_per_us,
        r_max_cm=nd.get_radius() / 10.0,
        drift_time_min_us=nd.get_dt_min(),
        drift_time_max_us=nd.get_dt_max(),
    )


def _bilinear(grid_x: np.ndarray, grid_y: np.ndarray, values: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Bilinear interpolation on a regular grid (points clipped to the grid)."""
    fx = np.clip((x - grid_x[0]) / (grid_x[1] - grid_x[0]), 0.0, len(grid_x) - 1.000001)
    fy = np.clip((y - grid_y[0]) / (grid_y[1] - grid_y[0]), 0.0, len(grid_y) - 1.000001)
    ix, iy = fx.astype(np.int64), fy.astype(np.int64)
    wx, wy = fx - ix, fy - iy
    return (1 - wx) * ((1 - wy) * values[ix, iy] + wy * values[ix, iy + 1]) + wx * (
        (1 - wy) * values[ix + 1, iy] + wy * values[ix + 1, iy + 1]
    )


def draw_events(
    tables: ResponseTables, n: int, rng: np.random.Generator, *, nr_fraction: float, first_id: int = 0
) -> dict[str, np.ndarray]:
    """Draw up to ``n`` detected events (deposits without S1 or S2 are dropped), vectorized.

    Returns:
        The reduced-data columns of :data:`COLUMNS`; ids are consecutive from ``first_id``.
    """
    edges = tables.energy_edges_kev
    species = (rng.random(n) < nr_fraction).astype(np.int64)
    energy = rng.uniform(edges[0], edges[-1], n)
    b = np.clip(np.searchsorted(edges, energy, side="right") - 1, 0, len(edges) - 2)
    keep = rng.random(n) < tables.detected[species, b]
    species, b = species[keep], b[keep]
    m = len(b)
    z = rng.standard_normal((m, 2))
    pts = tables.mean[species, b] + np.einsum("nij,nj->ni", tables.chol[species, b], z)
    cs1 = np.abs(pts[:, 0]) + 1e-3  # reflect the rare negative draws of tiny S1s
    cs2 = 10.0 ** pts[:, 1]
    r = tables.wall_radius_cm * np.sqrt(rng.random(m))
    phi = rng.uniform(0.0, 2.0 * np.pi, m)
    dt = rng.uniform(0.0, tables.drift_time_max_us, m)
    s1 = cs1 / _bilinear(tables.r_grid_cm, tables.dt_grid_us, tables.corr_s1, r, dt)
    s2 = cs2 / _bilinear(tables.r_grid_cm, tables.dt_grid_us, tables.corr_s2, r, dt)
    sigma = position_resolution_cm(np.maximum(s2, 1.0))
    x = r * np.cos(phi) + sigma * rng.standard_normal(m)
    y = r * np.sin(phi) + sigma * rng.standard_normal(m)
    coinc = rng.binomial(np.maximum(np.rint(s1), 1.0).astype(np.int64), tables.coincidence_per_phd)
    return {
        "event_id": np.arange(first_id, first_id + m, dtype=np.int64),
        "s1_phd": s1,
        "s2_phd": s2,
        "cs1_phd": cs1,
        "cs2_phd": cs2,
        "drift_time_us": dt,
        "x_cm": x,
        "y_cm": y,
        "s1_coincidence": coinc.astype(np.int64),
    }


def _file_metadata(options: BulkOptions, index: int) -> dict[bytes, bytes]:
    doc = {
        "generator": "dmpreserve.mdc.bulk",
        "description": GENERATOR_DESCRIPTION,
        "seed": options.seed,
        "file_index": index,
        "dmpreserve_version": __version__,
    }
    return {b"dmpreserve": json.dumps(doc, sort_keys=True).encode()}


def write_file(tables: ResponseTables, options: BulkOptions, index: int, path: Path) -> int:
    """Write bulk file number ``index`` (its own random stream); returns its number of events."""
    rng = np.random.default_rng([options.seed, 7, index + 1])
    cols = draw_events(
        tables, options.rows_per_file, rng, nr_fraction=options.nr_fraction, first_id=index * options.rows_per_file
    )
    table = pa.table({k: cols[k] for k in COLUMNS}).replace_schema_metadata(_file_metadata(options, index))
    return write_table(
        table,
        path,
        cluster_by=options.cluster_by,
        row_group_rows=options.row_group_rows,
        compression=options.compression,
    )


def generate_bulk(
    outdir: str | os.PathLike, options: BulkOptions, *, threads: int | None = None, progress: bool = True
) -> dict[str, Any]:
    """Write a dataset of about ``options.target_bytes`` to ``outdir`` (``part-NNNNN.parquet`` + sidecar).

    The number of files follows from the size of the first one (deterministic for a seed).

    Returns:
        The sidecar document (also written to ``outdir/_dataset.json``).
    """
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    tables = build_tables(options)
    first = out / "part-00000.parquet"
    counts = [write_file(tables, options, 0, first)]
    n_files = max(1, math.ceil(options.target_bytes / first.stat().st_size))
    workers = threads or min(4, os.cpu_count() or 1)
    with (
        tqdm(total=n_files, initial=1, desc="bulk files", unit="file", disable=not progress) as bar,
        concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool,
    ):
        futures = [
            pool.submit(write_file, tables, options, i, out / f"part-{i:05d}.parquet") for i in range(1, n_files)
        ]
        for fut in futures:
            counts.append(fut.result())
            bar.update(1)
    for stale in sorted(out.glob("part-*.parquet"))[n_files:]:  # a smaller rerun into the same directory
        stale.unlink()
    catalogue = column_catalogue()
    n_events = int(sum(counts))
    er_per_s = (
        options.er_rate_per_t_yr_kev
        * (options.energy_max_kev - options.energy_min_kev)
        * tables.active_mass_t
        / SECONDS_PER_YEAR
    )
    live_s = round(max(n_events, 1) / er_per_s, 3)
    doc = {
        "format": "dmpreserve-reduced-data",
        "format_version": 1,
        "kind": "science",
        "n_events": n_events,
        "live_time_s": live_s,
        "exposure": {
            "fiducial_mass_t": round(tables.fiducial_mass_t, 4),
            "live_time_days": live_s / 86400.0,
            "exposure_t_yr": round(tables.fiducial_mass_t * live_s / SECONDS_PER_YEAR, 6),
        },
        "detector": tables.detector_sidecar,
        "active_volume": tables.active_volume,
        "columns": {k: {"unit": catalogue[k]["unit"], "description": catalogue[k]["description"]} for k in COLUMNS},
        "energy_range_kev": [options.energy_min_kev, options.energy_max_kev],
        "layout": layout_doc(options.cluster_by, options.row_group_rows),
        "generator": {
            "name": "dmpreserve.mdc.bulk",
            "dmpreserve_version": __version__,
            "seed": options.seed,
            "description": GENERATOR_DESCRIPTION,
            "files": n_files,
            "rows_per_file": options.rows_per_file,
            "row_group_rows": options.row_group_rows,
            "compression": options.compression,
            "nr_fraction": options.nr_fraction,
            "table_events": options.table_events,
            "energy_bins": options.energy_bins,
            "bytes": int(sum(p.stat().st_size for p in out.glob("part-*.parquet"))),
        },
    }
    write_json(out / SIDECAR, doc)
    return doc


def dataset_files(outdir: str | os.PathLike) -> list[str]:
    """The Parquet files of a bulk dataset, in order."""
    return [str(p) for p in sorted(Path(outdir).glob("part-*.parquet"))]


def bulk_sidecar(outdir: str | os.PathLike) -> Path:
    """The sidecar of a bulk dataset directory (``sidecar_path`` is for single files)."""
    return Path(outdir) / SIDECAR if Path(outdir).is_dir() else sidecar_path(outdir)
