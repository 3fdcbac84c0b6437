"""The Neyman threshold table c(s, b_eff) from toys: shards (Parquet), merge, in-process build.

Design (XENON1T / alea practice): the distribution of t~mu under the tested hypothesis depends on
the model mainly through the total expected signal s = mu x S (S = the signal template's total at
mu = 1).  A residual dependence on how much background sits under the signal is carried by a second
coordinate, the effective background b_eff = S^2 / sum_k(S_k^2 / B_k) of the shape (a signal
in a background-free corner, like a 6 GeV WIMP, behaves like a counting experiment with b ~ 0.3
events; heavy WIMPs like one with b ~ 1.2).  The table is built on a log grid of s for a few
reference shapes of the analysis (patches at ``statistics.threshold_table.reference_masses_gev``);
:meth:`~dmpreserve.artifacts.thresholds.ThresholdTable.critical_value` interpolates.

Toys at (shape k, point j): mu = s_j / S_k, nuisances of the background-only fit to the observed data
(:func:`dmpreserve.stats.toys.background_theta`), stream ``SeedSequence([seed, STREAM_TABLE, k,
shard, j])``.  A *shard* is one (shape, shard index) job; it writes every toy's t~mu, mu_hat, stream
key and fit status to Parquet.  :func:`merge_shards` checks the fraction of failed fits per shard
against ``statistics.toy_failure_fraction`` (failed toys are dropped; beyond the fraction the shard
is refused, naming its file) and computes the quantiles.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from dmpreserve.artifacts.thresholds import ATOM_RTOL, ThresholdTable
from dmpreserve.errors import InvalidData
from dmpreserve.stats.model import BinnedModel, build_model
from dmpreserve.stats.toys import STREAM_TABLE, atom_pvalue, background_theta, quantile_with_error, toy_tmu_fits

SHARD_FORMAT_VERSION = 1
METHOD = (
    "t~mu of toys at mu = s / S (S: the reference shape's total signal at mu = 1); Poisson main counts and "
    "Normal auxiliary data around the nuisances of the background-only fit to the observed data; free and "
    "conditional fits by batched Newton (dmpreserve.stats); threshold = cl quantile of the successful toys, "
    "error = 68% order-statistics half-width; atom p-value = fraction of toys with t~mu >= 2 s (1 - atom_rtol) "
    "(the zero-count atom, ties counted); failed fits dropped up to statistics.toy_failure_fraction"
)


@dataclasses.dataclass(frozen=True)
class TableSettings:
    """Settings of the threshold table (config ``statistics.threshold_table`` + ``toy_failure_fraction``)."""

    signal_events: tuple[float, ...]
    reference_masses_gev: tuple[float, ...]
    toys_per_point: int = 1000
    shards: int = 2
    seed: int = 0
    failure_fraction: float = 0.01

    def toys_in_shard(self, shard: int) -> int:
        """Toys per point of shard ``shard`` (the remainder goes to the first shards)."""
        base, extra = divmod(self.toys_per_point, self.shards)
        return base + (1 if shard < extra else 0)


def shape_stats(model: BinnedModel, theta0: np.ndarray) -> tuple[float, float]:
    """(S, b_eff): total signal at mu = 1 and the effective background of the signal shape at ``theta0``."""
    sig = model.nominal[model.signal_mask].sum(axis=0)
    bkg = model.expected(theta0[None])[0]
    total = float(sig.sum())
    fisher = float(np.sum(np.where(bkg > 0, sig**2 / np.where(bkg > 0, bkg, 1.0), 0.0)))
    return total, (total * total / fisher if fisher > 0 else float("inf"))


def atom_stats(model: BinnedModel, theta0: np.ndarray) -> tuple[float, float]:
    """(F, B) of the zero-count atom: P(every atom bin empty) = exp(-s F - B) at s expected signal events.

    Atom bins: signal-to-background S_k / (S B_k) above ATOM_RTOL (a count in any other bin moves t~mu by
    less than ATOM_RTOL x 2 s); F is their fraction of the signal, B their background at ``theta0``.
    """
    sig = model.nominal[model.signal_mask].sum(axis=0)
    bkg = model.expected(theta0[None])[0]
    frac = sig / max(float(sig.sum()), 1e-300)
    atom = (frac > 0) & (frac > ATOM_RTOL * bkg)
    return min(1.0, float(frac[atom].sum())), float(bkg[atom].sum())  # a sum of fractions may round above 1


def reference_patches(patchset: dict[str, Any], masses_gev: tuple[float, ...]) -> list[dict[str, Any]]:
    """The patch closest in log(mass) to each reference mass, in the listed order (one shape per entry)."""
    patches = patchset["patches"]
    masses = np.array([float(p["metadata"]["values"][0]) for p in patches])
    return [patches[int(np.argmin(np.abs(np.log(masses / m))))] for m in masses_gev]


def run_shard(model: BinnedModel, theta0: np.ndarray, settings: TableSettings, *, shape: int, shard: int) -> pa.Table:
    """One shard: t~mu of ``settings.toys_in_shard(shard)`` toys at every grid point for one shape."""
    total, _ = shape_stats(model, theta0)
    n = settings.toys_in_shard(shard)
    cols: dict[str, list[np.ndarray]] = {k: [] for k in ("point", "toy", "signal_events", "mu", "t", "mu_hat", "ok")}
    for j, s in enumerate(settings.signal_events):
        mu = float(s) / total
        theta = theta0.copy()
        theta[0] = mu
        rng = np.random.default_rng(np.random.SeedSequence([settings.seed, STREAM_TABLE, shape, shard, j]))
        t, mu_hat, ok = toy_tmu_fits(model, theta, mu, n, rng)
        cols["point"].append(np.full(n, j, np.int32))
        cols["toy"].append(np.arange(n, dtype=np.int32))
        cols["signal_events"].append(np.full(n, float(s)))
        cols["mu"].append(np.full(n, mu))
        cols["t"].append(t)
        cols["mu_hat"].append(mu_hat)
        cols["ok"].append(ok)
    table = pa.table({k: np.concatenate(v) for k, v in cols.items()})
    return table.append_column("shape", pa.array(np.full(table.num_rows, shape, np.int32))).append_column(
        "shard", pa.array(np.full(table.num_rows, shard, np.int32))
    )


def shard_metadata(
    settings: TableSettings,
    *,
    shape: int,
    shard: int,
    mass_gev: float,
    b_eff: float,
    atom: tuple[float, float] = (1.0, 0.0),
) -> dict:
    """Parquet key-value metadata of a shard (the seed and stream layout, for provenance and the merge)."""
    return {
        "format_version": str(SHARD_FORMAT_VERSION),
        "seed": str(settings.seed),
        "stream": f"SeedSequence([seed, {STREAM_TABLE}, shape, shard, point])",
        "shape": str(shape),
        "shard": str(shard),
        "mass_gev": repr(float(mass_gev)),
        "b_eff": repr(float(b_eff)),
        "atom_signal_fraction": repr(float(atom[0])),
        "atom_background": repr(float(atom[1])),
        "signal_events": ",".join(repr(float(s)) for s in settings.signal_events),
    }


def write_shard(path: str | os.PathLike, table: pa.Table, metadata: dict[str, str]) -> None:
    """Write a shard as Parquet (atomic rename), metadata in the schema."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table.replace_schema_metadata(metadata), tmp)
    os.replace(tmp, path)


def read_shard(path: str | os.PathLike) -> tuple[pa.Table, dict[str, str]]:
    """Read a shard and its metadata.

    Raises:
        InvalidData: unreadable file, wrong format version or missing columns, naming the file.
    """
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise InvalidData(f"cannot read toy shard: {exc}", path=path) from None
    meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
    if meta.get("format_version") != str(SHARD_FORMAT_VERSION):
        raise InvalidData(f"not a toy shard (format {SHARD_FORMAT_VERSION})", path=path, field="format_version")
    missing = {"shape", "shard", "point", "t", "ok", "signal_events"} - set(table.column_names)
    if missing:
        raise InvalidData(f"missing columns {sorted(missing)}", path=path)
    return table, meta


def merge_shards(paths: list[str], *, cl: float, failure_fraction: float) -> ThresholdTable:
    """Build the table from shard files (any order).

    Raises:
        InvalidData: a shard with more failed fits than ``failure_fraction`` (naming it), inconsistent
            shards (seed or signal grid), or a missing (shape, point).
    """
    per_key: dict[tuple[int, int], list[np.ndarray]] = {}
    failed: dict[tuple[int, int], int] = {}
    shapes: dict[int, tuple[float, ...]] = {}
    grid = seed = None
    for path in sorted(paths):
        table, meta = read_shard(path)
        ok = table.column("ok").to_numpy()
        frac = float(np.mean(~ok)) if ok.size else 1.0
        if frac > failure_fraction:
            raise InvalidData(
                f"toy shard {Path(path).name}: {np.sum(~ok)} of {ok.size} fits failed ({frac:.2%}), more than "
                f"statistics.toy_failure_fraction = {failure_fraction:g}",
                path=path,
                field="ok",
            )
        if grid is None:
            grid, seed = meta["signal_events"], meta["seed"]
        elif (meta["signal_events"], meta["seed"]) != (grid, seed):
            raise InvalidData("shard made with another seed or signal grid than the others", path=path, field="seed")
        k = int(meta["shape"])
        shapes[k] = tuple(float(meta[key]) for key in ("mass_gev", "b_eff", "atom_signal_fraction", "atom_background"))
        point, t = table.column("point").to_numpy(), table.column("t").to_numpy()
        for j in np.unique(point):
            sel = point == j
            per_key.setdefault((k, int(j)), []).append(t[sel & ok])
            failed[(k, int(j))] = failed.get((k, int(j)), 0) + int(np.sum(sel & ~ok))
    if grid is None:
        raise InvalidData("no toy shards given", field="--shards")
    s = np.array([float(v) for v in grid.split(",")])
    order = sorted(shapes, key=lambda k: shapes[k][1])
    thr, err = np.zeros((len(order), s.size)), np.zeros((len(order), s.size))
    n_ok, n_bad, atom = np.zeros_like(thr, int), np.zeros_like(thr, int), np.zeros_like(thr)
    for row, k in enumerate(order):
        for j in range(s.size):
            if (k, j) not in per_key:
                raise InvalidData(f"no toys for shape {k} point {j}", path=paths[0], field="--shards")
            t = np.concatenate(per_key[(k, j)])
            if t.size == 0:
                raise InvalidData(f"every toy fit failed for shape {k} point {j}", path=paths[0], field="ok")
            thr[row, j], err[row, j] = quantile_with_error(t, cl)
            n_ok[row, j], n_bad[row, j] = t.size, failed[(k, j)]
            atom[row, j] = atom_pvalue(t, s[j])
    return ThresholdTable(
        cl=cl,
        signal_events=s,
        shape_mass_gev=np.array([shapes[k][0] for k in order]),
        shape_b_eff=np.array([shapes[k][1] for k in order]),
        shape_atom=np.array([shapes[k][2:] for k in order]),
        thresholds=thr,
        errors=err,
        toys=n_ok,
        failed=n_bad,
        atom_pvalues=atom,
        seed=int(seed),
        shards=tuple(Path(p).name for p in sorted(paths)),
        method=METHOD,
    )


def shard_for_patch(
    workspace: dict[str, Any], patchset: dict[str, Any], settings: TableSettings, *, shape: int, shard: int
) -> tuple[pa.Table, dict[str, str]]:
    """Run shard ``shard`` of reference shape ``shape`` (index into :func:`reference_patches`)."""
    patches = reference_patches(patchset, settings.reference_masses_gev)
    if not 0 <= shape < len(patches):
        raise InvalidData(f"shape index {shape} outside 0..{len(patches) - 1}", field="--shape")
    if not 0 <= shard < settings.shards:
        raise InvalidData(f"shard index {shard} outside 0..{settings.shards - 1}", field="--shard")
    patch = patches[shape]
    model = build_model(workspace, patch)
    theta0 = background_theta(model)
    _, b_eff = shape_stats(model, theta0)
    table = run_shard(model, theta0, settings, shape=shape, shard=shard)
    meta = shard_metadata(
        settings,
        shape=shape,
        shard=shard,
        mass_gev=float(patch["metadata"]["values"][0]),
        b_eff=b_eff,
        atom=atom_stats(model, theta0),
    )
    return table, meta


def build_table(
    workspace: dict[str, Any],
    patchset: dict[str, Any],
    settings: TableSettings,
    *,
    cl: float,
    workdir: str | os.PathLike,
    progress: bool = True,
) -> ThresholdTable:
    """Every shard in this process (written under ``workdir``; a progress bar per shard), then the merge."""
    paths = []
    n_shapes = len(reference_patches(patchset, settings.reference_masses_gev))
    jobs = [(k, i) for k in range(n_shapes) for i in range(settings.shards)]
    for k, i in tqdm(jobs, desc="threshold table", unit="shard", disable=not progress, mininterval=1.0):
        table, meta = shard_for_patch(workspace, patchset, settings, shape=k, shard=i)
        path = Path(workdir) / f"shape{k}_shard{i}.parquet"
        write_shard(path, table, meta)
        paths.append(str(path))
    return merge_shards(paths, cl=cl, failure_fraction=settings.failure_fraction)
