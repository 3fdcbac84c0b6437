"""Reduced data: Parquet tables with a JSON sidecar, validated against ``reduced_data.schema.json``.

Every reader in dmpreserve goes through :func:`inspect_reduced`, which checks the sidecar (units,
detector parameters, live time) and the Parquet columns (names, dtypes, row count) against the schema
without loading the data; :func:`read_reduced` then loads it and checks the values (finite,
non-negative areas and times, unique event ids), and the streaming selection checks them batch by
batch (:func:`check_batch_values`).  Each kind of file has required and optional columns
(:func:`column_requirements`).  A dataset is one or more files (or directories of them) that agree
(:func:`read_dataset`, :func:`check_dataset`); its live time is the sum of its files'.  An experiment's
real reduced data is analysed by writing the same two files per Parquet file.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from dmpreserve.errors import InvalidData
from dmpreserve.files import atomic_write, read_json, write_json
from dmpreserve.schema import load_schema, validate

#: Columns whose values must be >= 0 (areas, times, counts, energies).
NON_NEGATIVE = ("s1_phd", "s2_phd", "cs1_phd", "cs2_phd", "drift_time_us", "s1_coincidence", "true_energy_kev")


#: What reading a damaged Parquet file raises (ValueError: e.g. column names that are not UTF-8).
PARQUET_READ_ERRORS = (pa.ArrowException, OSError, ValueError)


def unreadable_parquet(path: str | os.PathLike, exc: BaseException, *, what: str = "file") -> InvalidData:
    """The error for a Parquet file or dataset that the reader refused with ``exc``."""
    return InvalidData(f"not a readable Parquet {what} ({type(exc).__name__}: {exc})", path=path)


def column_catalogue() -> dict[str, dict[str, str]]:
    """Known columns with their dtype, unit and description, from the schema."""
    props = load_schema("reduced_data")["properties"]["columns"]["properties"]
    return {
        name: {
            "dtype": p["properties"]["dtype"]["const"],
            "unit": p["properties"]["unit"]["const"],
            "description": p["description"],
        }
        for name, p in props.items()
    }


def column_requirements(kind: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The columns a file of ``kind`` must have and those it may have, from ``reduced_data.schema.json``.

    Required: the ``columns.required`` of the kind's entry in the schema's ``allOf``; optional: every other
    catalogue column the kind does not forbid (``true_energy_kev`` outside simulations and ER calibration).
    A step that needs an optional column refuses a file without it, naming the file and the column.

    Returns:
        (required, optional), each in catalogue order.

    Raises:
        ValueError: ``kind`` is not a kind of the schema.
    """
    schema = load_schema("reduced_data")
    catalogue = list(schema["properties"]["columns"]["properties"])
    if kind not in schema["properties"]["kind"]["enum"]:
        raise ValueError(f"unknown reduced-data kind {kind!r}")
    required: list[str] = []
    forbidden: list[str] = []
    for entry in schema["allOf"]:
        cond = entry["if"]["properties"]["kind"]
        if kind not in cond.get("enum", [cond.get("const")]):
            continue
        cols = entry["then"].get("properties", {}).get("columns", {})
        required += cols.get("required", [])
        forbidden += cols.get("not", {}).get("required", [])
    req = tuple(c for c in catalogue if c in required)
    return req, tuple(c for c in catalogue if c not in required and c not in forbidden)


def expand_dataset(paths: str | os.PathLike | Sequence[str | os.PathLike]) -> list[str]:
    """The Parquet files of a dataset given as files and/or directories (a directory: its ``*.parquet``, sorted).

    Raises:
        InvalidData: no file at all, or a directory without Parquet files (naming it).
    """
    out: list[str] = []
    for p in [paths] if isinstance(paths, (str, os.PathLike)) else list(paths):
        if Path(p).is_dir():
            found = sorted(str(f) for f in Path(p).glob("*.parquet"))
            if not found:
                raise InvalidData("no Parquet files (*.parquet) in the dataset directory", path=p)
            out += found
        else:
            out.append(str(p))
    if not out:
        raise InvalidData("a dataset needs at least one Parquet file", path="<empty dataset>")
    return out


def sidecar_path(parquet_path: str | os.PathLike) -> Path:
    """The sidecar belonging to a Parquet file: same stem, ``.json``."""
    return Path(parquet_path).with_suffix(".json")


@dataclasses.dataclass(frozen=True)
class ReducedData:
    """A validated reduced-data table.

    Attributes:
        columns: Column name -> read-only numpy array.
        meta: The sidecar document.
        path: The Parquet file.
    """

    columns: dict[str, np.ndarray]
    meta: dict[str, Any]
    path: str

    def __len__(self) -> int:
        return int(self.meta["n_events"])

    @property
    def kind(self) -> str:
        """The kind of sample (science, calibration_er, ...)."""
        return self.meta["kind"]

    def variable(self, name: str) -> np.ndarray:
        """A column or a derived quantity (``r_cm``, ``log10_cs2``)."""
        if name == "r_cm":  # sqrt(x*x + y*y), not hypot: the same IEEE operations as the streaming engine
            x, y = self.columns["x_cm"], self.columns["y_cm"]
            return np.sqrt(x * x + y * y)
        if name == "log10_cs2":
            with np.errstate(divide="ignore"):
                return np.log10(self.columns["cs2_phd"])
        if name not in self.columns:
            raise InvalidData(
                f"column needed by the analysis is missing (kind {self.kind})", path=self.path, field=name
            )
        return self.columns[name]


def write_reduced(
    parquet_path: str | os.PathLike,
    columns: dict[str, np.ndarray],
    meta: dict[str, Any],
    *,
    sidecar: str | os.PathLike | None = None,
) -> None:
    """Write a reduced-data table and its sidecar atomically, validating them first.

    Args:
        parquet_path: Destination Parquet file.
        columns: Column arrays (names from the schema's catalogue).
        meta: Sidecar fields except ``columns`` and ``n_events``, which are filled in here.
        sidecar: Sidecar destination (default: same stem, ``.json``).
    """
    catalogue = column_catalogue()
    n = len(next(iter(columns.values()))) if columns else 0
    arrays, fields = [], []
    for name, values in columns.items():
        dtype = np.dtype(catalogue[name]["dtype"])
        values = np.asarray(values).astype(dtype, copy=False)
        if len(values) != n:
            raise ValueError(f"column {name} has {len(values)} rows, expected {n}")
        arrays.append(pa.array(values))
        fields.append(name)
    doc = dict(meta)
    doc["n_events"] = int(n)
    doc["columns"] = {k: {"unit": catalogue[k]["unit"], "description": catalogue[k]["description"]} for k in fields}
    _validate_doc(doc, {k: catalogue[k]["dtype"] for k in fields}, path=str(sidecar or sidecar_path(parquet_path)))
    check_values({k: a.to_numpy() for k, a in zip(fields, arrays)}, path=str(parquet_path))
    table = pa.table(arrays, names=fields)
    with atomic_write(parquet_path) as tmp:
        pq.write_table(table, tmp, compression="zstd", row_group_size=1 << 20)
    write_json(sidecar or sidecar_path(parquet_path), doc)


def validate_sidecar(doc: dict[str, Any], schema: pa.Schema, *, path: str) -> None:
    """Validate a sidecar against the reduced-data schema, with the column dtypes of a Parquet ``schema``.

    Raises:
        InvalidData: naming the file and the JSON path.
    """
    _validate_doc(doc, {f.name: _dtype_name(f.type) for f in schema}, path=path)


def _validate_doc(doc: dict[str, Any], dtypes: dict[str, str], *, path: str) -> None:
    check = {**doc, "columns": {k: {**v, "dtype": dtypes.get(k, "missing")} for k, v in doc.get("columns", {}).items()}}
    validate(check, "reduced_data", path=path, error=InvalidData)


@dataclasses.dataclass(frozen=True)
class ReducedFile:
    """A reduced-data file whose sidecar and Parquet schema were validated, its data not loaded.

    Attributes:
        path: The Parquet file.
        sidecar: Its JSON sidecar.
        meta: The sidecar document (schema-valid, ``n_events`` equal to the file's rows).
        schema: The Parquet file's Arrow schema (column names in file order, dtypes checked).
    """

    path: str
    sidecar: str
    meta: dict[str, Any]
    schema: pa.Schema

    @property
    def column_names(self) -> tuple[str, ...]:
        """The columns in file order."""
        return tuple(self.schema.names)

    @property
    def n_events(self) -> int:
        """Rows of the file."""
        return int(self.meta["n_events"])


def inspect_reduced(
    parquet_path: str | os.PathLike, *, sidecar: str | os.PathLike | None = None, kinds: tuple[str, ...] | None = None
) -> ReducedFile:
    """Validate a reduced-data file without loading its data: the sidecar against the schema, the Parquet
    columns (names, dtypes) against the sidecar, ``n_events`` against the file's row count, and the
    sidecar's ``upstream_cuts``.  The values are checked by the readers (:func:`read_reduced`, or batch by
    batch with :func:`check_batch_values`).

    Args:
        parquet_path: The Parquet file.
        sidecar: Its JSON sidecar (default: same stem, ``.json``).
        kinds: Accepted values of the sidecar's ``kind`` (None: any).

    Raises:
        InvalidData: naming the file and the field.
    """
    ppath = Path(parquet_path)
    spath = Path(sidecar) if sidecar is not None else sidecar_path(ppath)
    if not ppath.is_file():
        raise InvalidData("reduced-data file not found", path=ppath)
    meta = read_json(spath, what="reduced-data sidecar")
    if not isinstance(meta, dict):
        raise InvalidData("sidecar must be a JSON object", path=spath)
    if not isinstance(meta.get("columns", {}), dict):
        raise InvalidData(
            "must be an object mapping column names to unit and description", path=spath, field="$.columns"
        )
    if kinds is not None and meta.get("kind") not in kinds:
        raise InvalidData(
            f"expected a file of kind {' or '.join(kinds)}, got {meta.get('kind')!r}", path=spath, field="$.kind"
        )
    try:
        with pq.ParquetFile(ppath) as pfile:
            schema, num_rows = pfile.schema_arrow, pfile.metadata.num_rows
    except PARQUET_READ_ERRORS as exc:
        raise unreadable_parquet(ppath, exc) from None
    names = schema.names
    twice = sorted({c for c in names if names.count(c) > 1})
    if twice:
        raise InvalidData("column appears twice in the Parquet file", path=ppath, field=twice[0])
    dtypes = {name: _dtype_name(schema.field(name).type) for name in names}
    missing_in_sidecar = [c for c in names if c not in meta.get("columns", {})]
    if missing_in_sidecar:
        raise InvalidData(
            "column is in the Parquet file but not described in the sidecar",
            path=spath,
            field=f"$.columns.{missing_in_sidecar[0]}",
        )
    missing_in_file = [c for c in meta.get("columns", {}) if c not in dtypes]
    if missing_in_file:
        raise InvalidData(
            "column described in the sidecar is missing from the Parquet file", path=ppath, field=missing_in_file[0]
        )
    _validate_doc(meta, dtypes, path=str(spath))
    if num_rows != meta["n_events"]:
        raise InvalidData(
            f"sidecar says {meta['n_events']} events, the file has {num_rows}", path=spath, field="$.n_events"
        )
    upstream_cuts(meta, path=spath)
    return ReducedFile(path=str(ppath), sidecar=str(spath), meta=meta, schema=schema)


def read_reduced(
    parquet_path: str | os.PathLike, *, sidecar: str | os.PathLike | None = None, kinds: tuple[str, ...] | None = None
) -> ReducedData:
    """Read and validate a reduced-data table (:func:`inspect_reduced`, then the values: :func:`check_values`).

    Args:
        parquet_path: The Parquet file.
        sidecar: Its JSON sidecar (default: same stem, ``.json``).
        kinds: Accepted values of the sidecar's ``kind`` (None: any).

    Raises:
        InvalidData: naming the file and the field for any schema or value problem.
    """
    info = inspect_reduced(parquet_path, sidecar=sidecar, kinds=kinds)
    try:
        table = pq.read_table(info.path)
    except PARQUET_READ_ERRORS as exc:
        raise unreadable_parquet(info.path, exc) from None
    columns = {}
    for name in table.column_names:
        col = table.column(name)
        if col.null_count:
            raise InvalidData(f"{col.null_count} null values", path=info.path, field=name)
        columns[name] = col.to_numpy()
    check_values(columns, path=info.path)
    for arr in columns.values():
        arr.setflags(write=False)
    return ReducedData(columns=columns, meta=info.meta, path=info.path)


def check_values(columns: dict[str, np.ndarray], *, path: str) -> None:
    """Value checks a schema cannot express: finite, non-negative where physical, unique event ids.

    Raises:
        InvalidData: naming the file and the column.
    """
    for name, arr in columns.items():
        if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
            bad = int(np.count_nonzero(~np.isfinite(arr)))
            raise InvalidData(f"{bad} NaN or infinite values", path=path, field=name)
        if name in NON_NEGATIVE and arr.size and arr.min() < 0:
            raise InvalidData(
                f"negative values (minimum {arr.min().item()!r}) in a non-negative quantity", path=path, field=name
            )
    ids = columns.get("event_id")
    if ids is not None and len(np.unique(ids)) != len(ids):
        raise InvalidData("duplicate event ids", path=path, field="event_id")


def check_batch_values(batch: pa.RecordBatch | pa.Table, *, path: str) -> None:
    """The value checks of :func:`check_values` on one streamed batch, with Arrow compute (no copy): no nulls,
    finite floats, non-negative physical quantities.  Event-id uniqueness needs the whole dataset and is
    left to the caller.

    Raises:
        InvalidData: naming the file and the column.
    """
    for name, col in zip(batch.schema.names, batch.columns):
        if col.null_count:
            raise InvalidData(f"{col.null_count} null values", path=path, field=name)
        if pa.types.is_floating(col.type):
            bad = len(col) - (pc.sum(pc.is_finite(col)).as_py() or 0)
            if bad:
                raise InvalidData(f"{bad} NaN or infinite values", path=path, field=name)
        if name in NON_NEGATIVE and len(col):
            low = pc.min(col).as_py()
            if low < 0:
                raise InvalidData(
                    f"negative values (minimum {low!r}) in a non-negative quantity", path=path, field=name
                )


def _dtype_name(arrow_type: pa.DataType) -> str:
    try:
        return str(np.dtype(arrow_type.to_pandas_dtype()))
    except (NotImplementedError, TypeError):
        return str(arrow_type)


@dataclasses.dataclass(frozen=True)
class UpstreamCut:
    """A cut the data provider applied before writing a file (sidecar ``upstream_cuts``).

    Attributes:
        name: The cut's name; a configured cut of the same name is not applied again to this data.
        definition: What the cut keeps, in words.
        efficiency: Its NR signal efficiency, constant (None: not stated, or given as a curve).
        energy_kev, efficiency_curve: Its NR signal efficiency vs true recoil energy [keV] (empty: none).
    """

    name: str
    definition: str
    efficiency: float | None = None
    energy_kev: tuple[float, ...] = ()
    efficiency_curve: tuple[float, ...] = ()

    def efficiency_at(self, energy_kev: np.ndarray) -> np.ndarray:
        """Signal efficiency at the given recoil energies [keV], shape of ``energy_kev`` (1 when not stated).

        The curve is interpolated linearly and held constant beyond its ends.
        """
        e = np.asarray(energy_kev, float)
        if self.energy_kev:
            return np.interp(e, self.energy_kev, self.efficiency_curve)
        return np.full_like(e, 1.0 if self.efficiency is None else self.efficiency)


def upstream_cuts(meta: dict[str, Any], *, path: str | os.PathLike) -> tuple[UpstreamCut, ...]:
    """The cuts a (schema-valid) sidecar declares applied upstream, checked beyond the schema.

    Raises:
        InvalidData: a name declared twice, or an efficiency curve whose arrays differ in length or whose
            energies do not increase (naming the sidecar and the JSON path).
    """
    out: list[UpstreamCut] = []
    for i, cut in enumerate(meta.get("upstream_cuts", ())):
        where = f"$.upstream_cuts[{i}]"
        if any(c.name == cut["name"] for c in out):
            raise InvalidData(f"cut {cut['name']!r} declared twice", path=path, field=f"{where}.name")
        eff = cut.get("efficiency")
        if isinstance(eff, dict):
            e, v = eff["energy_kev"], eff["efficiency"]
            if len(e) != len(v):
                raise InvalidData(
                    f"{len(e)} energies but {len(v)} efficiencies", path=path, field=f"{where}.efficiency"
                )
            if np.any(np.diff(e) <= 0):
                raise InvalidData("energies must increase", path=path, field=f"{where}.efficiency.energy_kev")
            out.append(UpstreamCut(cut["name"], cut["definition"], None, tuple(map(float, e)), tuple(map(float, v))))
        else:
            out.append(UpstreamCut(cut["name"], cut["definition"], None if eff is None else float(eff)))
    return tuple(out)


#: Sidecar fields every file of one dataset must share (besides the columns and their units).
DATASET_SHARED = ("kind", "detector", "active_volume", "energy_range_kev", "upstream_cuts")


def check_dataset(files: Sequence[ReducedFile]) -> None:
    """Check that the files of one dataset agree: the same columns in the same order, the same units, and
    the same :data:`DATASET_SHARED` sidecar fields.

    Raises:
        InvalidData: naming the first file that differs from the first file, and the field.
    """
    if not files:
        raise InvalidData("a dataset needs at least one Parquet file", path="<empty dataset>")
    first = files[0]
    for part in files[1:]:
        if part.column_names != first.column_names:
            raise InvalidData(
                f"columns {list(part.column_names)} differ from those of {first.path} ({list(first.column_names)})",
                path=part.sidecar,
                field="$.columns",
            )
        for name in first.column_names:
            if part.meta["columns"][name].get("unit") != first.meta["columns"][name].get("unit"):
                raise InvalidData(
                    f"unit differs from {first.path} in the same dataset",
                    path=part.sidecar,
                    field=f"$.columns.{name}.unit",
                )
        for key in DATASET_SHARED:
            if part.meta.get(key) != first.meta.get(key):
                raise InvalidData(f"differs from {first.path} in the same dataset", path=part.sidecar, field=f"$.{key}")


def read_dataset(
    paths: str | os.PathLike | Sequence[str | os.PathLike], *, kinds: tuple[str, ...] | None = None
) -> ReducedData:
    """Read a dataset of one or more reduced-data files (each with its sidecar) as one table.

    ``paths``: files and/or directories of ``*.parquet`` (:func:`expand_dataset`).  The files must agree
    (:func:`check_dataset`); event ids must be unique across the dataset.  The columns are concatenated in
    the given file order; the returned sidecar is the first file's with ``n_events`` and ``live_time_s``
    summed over the files (a dataset's live time is the sum of its files', :func:`math.fsum`).

    Raises:
        InvalidData: naming the file and field, for any problem of one file (:func:`read_reduced`), an
            empty list or directory, or files that disagree.
    """
    files = expand_dataset(paths)
    check_dataset([inspect_reduced(p, kinds=kinds) for p in files])
    parts = [read_reduced(p, kinds=kinds) for p in files]
    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    columns = {name: np.concatenate([p.columns[name] for p in parts]) for name in first.columns}
    ids = columns.get("event_id")
    if ids is not None and len(np.unique(ids)) != len(ids):
        raise InvalidData("duplicate event ids across the files of the dataset", path=first.path, field="event_id")
    for arr in columns.values():
        arr.setflags(write=False)
    meta = dict(first.meta)
    meta["n_events"] = int(sum(len(p) for p in parts))
    if "live_time_s" in first.meta:
        meta["live_time_s"] = float(math.fsum(float(p.meta["live_time_s"]) for p in parts))
    return ReducedData(columns=columns, meta=meta, path=first.path)
