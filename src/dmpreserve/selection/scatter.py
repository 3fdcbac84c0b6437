"""The ``select`` step scattered over groups of science files: :func:`select_part` per group, :func:`gather`.

One ``select-part`` job per group of science files validates the files without loading them
(:func:`inspect_science`), streams them through the configured cuts with
:func:`~dmpreserve.selection.stream.select_stream` (bounded memory, values checked batch by batch)
and writes the part's selected events (reduced-data format) and its cut flow
(``schemas/select_part.schema.json``: exact integer counts, the files and their live times, the
config sha256).  The ``select`` gather job checks that the parts come from this configuration and
agree, concatenates them in the given order (deterministic), sums the cut flows exactly, and writes
the selected events, ``cutflow.csv``, ``acceptance.csv`` (NR simulation) and ``exposure.json``.

The selected events are the events, in the order, that the cuts select from the concatenation of
the science files in the order given (parts in order, files within a part in order): splitting the
science run into files and the files into parts changes neither the events nor the cut flow.
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
import pyarrow.parquet as pq

from dmpreserve.artifacts.exposure import Exposure, write_exposure
from dmpreserve.artifacts.reduced import (
    PARQUET_READ_ERRORS,
    ReducedFile,
    check_batch_values,
    check_dataset,
    expand_dataset,
    inspect_reduced,
    read_dataset,
    unreadable_parquet,
    validate_sidecar,
)
from dmpreserve.artifacts.tables import Acceptance, CutFlow, PartCutFlow, PartFile
from dmpreserve.config import AnalysisConfig
from dmpreserve.errors import InvalidData
from dmpreserve.files import atomic_write, write_json
from dmpreserve.selection.cuts import ALL_EVENTS, cuts_for, cuts_from_config, exposure_of, nr_acceptance
from dmpreserve.selection.stream import select_stream

#: Rows per row group of ``selected.parquet`` (as :func:`~dmpreserve.artifacts.reduced.write_reduced`).
SELECTED_ROW_GROUP_ROWS = 1 << 20


def inspect_science(paths: str | os.PathLike | Sequence[str | os.PathLike]) -> list[ReducedFile]:
    """Validate the science files of one part without loading their data.

    ``paths``: files and/or directories of ``*.parquet``, in scan order.  Each file's sidecar and
    Parquet schema are checked (:func:`~dmpreserve.artifacts.reduced.inspect_reduced`: kind science,
    dtypes, ``n_events`` = rows) and the files must agree (columns, units, detector, active volume,
    upstream cuts: :func:`~dmpreserve.artifacts.reduced.check_dataset`).

    Raises:
        InvalidData: naming the file and field; an empty list or a directory without Parquet files.
    """
    files = [inspect_reduced(p, kinds=("science",)) for p in expand_dataset(paths)]
    check_dataset(files)
    return files


def _nominal_exposure(exposures: Sequence[dict[str, Any] | None]) -> dict[str, Any] | None:
    """The nominal exposure of several files: one file's as is; several: live time and exposure summed
    (``math.fsum``, exact whatever the grouping), the fiducial mass of the first (None if any is unstated)."""
    if not exposures or any(e is None for e in exposures):
        return None
    if len(exposures) == 1:
        return dict(exposures[0])
    return {
        "fiducial_mass_t": exposures[0]["fiducial_mass_t"],
        "live_time_days": math.fsum(e["live_time_days"] for e in exposures),
        "exposure_t_yr": math.fsum(e["exposure_t_yr"] for e in exposures),
    }


def _selected_meta(
    first: dict[str, Any], config: AnalysisConfig, live_times: Sequence[float], exposures: Sequence[dict | None]
) -> dict[str, Any]:
    """Sidecar of selected events: the first science file's, live time summed over the files, the selection."""
    meta = {k: v for k, v in first.items() if k not in ("columns", "n_events", "exposure", "selection")}
    meta["live_time_s"] = float(math.fsum(live_times))
    nominal = _nominal_exposure(exposures)
    if nominal is not None:
        meta["exposure"] = nominal
    meta["selection"] = {"config_sha256": config.sha256, "cuts": [c["name"] for c in config.cuts()]}
    return meta


def select_part(
    config: AnalysisConfig,
    science: Sequence[str | os.PathLike],
    *,
    selected: str | os.PathLike,
    cutflow: str | os.PathLike,
    progress: bool = False,
) -> PartCutFlow:
    """Select one part of the science run: the events of ``science`` (in order) passing the configured cuts.

    Writes ``selected`` (+ its sidecar: the first file's, ``live_time_s`` = the part's summed live time,
    ``selection``) and ``cutflow`` (JSON, ``schemas/select_part.schema.json``).  Memory is bounded by the
    streaming engine's batches whatever the size of the files.

    Raises:
        InvalidData: a bad file (sidecar, schema, values naming the file and column), files that disagree,
            or a configured cut on a column the files lack and do not declare applied upstream.  Nothing
            is left at ``selected`` or ``cutflow``.

    Returns:
        The part's cut flow.
    """
    files = inspect_science(science)
    first = files[0]
    effective = cuts_for(cuts_from_config(config), first.meta, first.column_names, first.path)
    live = [float(f.meta["live_time_s"]) for f in files]
    meta = _selected_meta(first.meta, config, live, [f.meta.get("exposure") for f in files])
    res = select_stream(
        [f.path for f in files],
        effective.applied,
        output=selected,
        sidecar_meta=meta,
        cutflow=True,
        check_values=True,
        progress=progress,
    )
    flow = effective.cutflow(res.n_events, res.cutflow.events[1:], all_description=ALL_EVENTS)
    upstream = set(effective.upstream_names)
    part = PartCutFlow(
        config_sha256=config.sha256,
        selected=Path(selected).name,
        cutflow=flow,
        applied_upstream=tuple(n in upstream for n in flow.cuts),
        live_time_s=meta["live_time_s"],
        files=tuple(PartFile(f.path, f.sidecar, f.n_events, t, f.meta.get("exposure")) for f, t in zip(files, live)),
    )
    part.write(cutflow)
    return part


@dataclasses.dataclass(frozen=True)
class Part:
    """One checked part: its selected events (validated sidecar and schema) and its cut flow."""

    selected: ReducedFile
    cutflow_path: str
    flow: PartCutFlow


def read_parts(
    config: AnalysisConfig, parts: Sequence[str | os.PathLike], cutflows: Sequence[str | os.PathLike]
) -> list[Part]:
    """Read and check the parts of a scattered selection (data not loaded).

    Each part's cut flow must follow ``schemas/select_part.schema.json``, name the part given at the same
    position, come from ``config`` (config sha256, also in the part's sidecar ``selection``), and agree with
    the part's row count; the parts must agree with each other (columns, units, detector, active volume,
    upstream cuts, the cut-flow rows) and scan no science file twice.

    Raises:
        InvalidData: naming the part or cut-flow file and the field.
    """
    if not parts:
        raise InvalidData("the scattered selection has no part", path="<no parts>", field="--parts")
    if len(parts) != len(cutflows):
        raise InvalidData(
            f"{len(parts)} parts but {len(cutflows)} part cut flows", path=str(cutflows[0]), field="--part-cutflows"
        )
    out: list[Part] = []
    seen: dict[str, str] = {}
    for part, cpath in zip(parts, cutflows):
        flow = PartCutFlow.read(cpath)
        if flow.config_sha256 != config.sha256:
            raise InvalidData(
                f"part selected with another configuration (sha256 {flow.config_sha256[:12]}..., this one "
                f"{config.sha256[:12]}...)",
                path=cpath,
                field="$.config_sha256",
            )
        if flow.selected != Path(part).name:
            raise InvalidData(
                f"cut flow of part {flow.selected!r}, given with part {Path(part).name!r}",
                path=cpath,
                field="$.selected",
            )
        selected = inspect_reduced(part, kinds=("science",))
        sha = selected.meta.get("selection", {}).get("config_sha256")
        if sha != config.sha256:
            raise InvalidData(
                "part selected with another configuration", path=selected.sidecar, field="$.selection.config_sha256"
            )
        if selected.n_events != flow.n_selected:
            raise InvalidData(
                f"the part has {selected.n_events} events, its cut flow says {flow.n_selected} selected",
                path=cpath,
                field="$.n_selected",
            )
        for f in flow.files:
            if f.path in seen:
                raise InvalidData(f"science file {f.path} is also in part {seen[f.path]}", path=cpath, field="$.files")
            seen[f.path] = str(part)
        if out:
            ref = out[0].flow
            if (flow.cutflow.cuts, flow.cutflow.descriptions, flow.applied_upstream) != (
                ref.cutflow.cuts,
                ref.cutflow.descriptions,
                ref.applied_upstream,
            ):
                raise InvalidData(f"cuts differ from those of {out[0].cutflow_path}", path=cpath, field="$.cuts")
        out.append(Part(selected, str(cpath), flow))
    check_dataset([p.selected for p in out])
    return out


def sum_cutflows(parts: Sequence[Part]) -> CutFlow:
    """The cut flow of the whole science run: the parts' counts summed exactly (integers)."""
    ref = parts[0].flow.cutflow
    events = [sum(p.flow.cutflow.events[i] for p in parts) for i in range(len(ref.cuts))]
    return CutFlow(ref.cuts, ref.descriptions, tuple(events))


def concatenate_parts(parts: Sequence[Part], output: str | os.PathLike, meta: dict[str, Any]) -> int:
    """Write the parts' events, in order, to ``output`` (+ sidecar ``meta`` with ``n_events``, ``columns``).

    One part in memory at a time (plus at most one row group of :data:`SELECTED_ROW_GROUP_ROWS` not yet
    written: the file's row groups, hence its bytes, do not depend on how the science run was split into
    files and parts); values checked (naming the part and column) and event ids unique across the parts.
    Atomic: nothing is left at ``output`` on error.

    Returns:
        The number of events written.
    """
    first = parts[0].selected
    schema = pa.schema([first.schema.field(c) for c in first.column_names])
    total = sum(p.selected.n_events for p in parts)
    sidecar = Path(output).with_suffix(".json")
    doc = {**meta, "n_events": total, "columns": {c: first.meta["columns"][c] for c in first.column_names}}
    validate_sidecar(doc, schema, path=str(sidecar))
    ids: list[np.ndarray] = []
    n = 0
    pending = schema.empty_table()  # rows not yet written: row groups do not depend on how the run was split
    with atomic_write(output) as tmp, pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
        for part in parts:
            try:
                table = pq.read_table(part.selected.path).select(list(first.column_names))
            except PARQUET_READ_ERRORS as exc:
                raise unreadable_parquet(part.selected.path, exc) from None
            check_batch_values(table, path=part.selected.path)
            if "event_id" in table.column_names:
                ids.append(table.column("event_id").to_numpy())
            pending = pa.concat_tables([pending, table.cast(schema)])
            n += table.num_rows
            while pending.num_rows >= SELECTED_ROW_GROUP_ROWS:
                writer.write_table(pending.slice(0, SELECTED_ROW_GROUP_ROWS).combine_chunks())
                pending = pending.slice(SELECTED_ROW_GROUP_ROWS)
        if pending.num_rows:
            writer.write_table(pending.combine_chunks(), row_group_size=SELECTED_ROW_GROUP_ROWS)
        if ids:
            sel = np.concatenate(ids)
            if len(np.unique(sel)) != len(sel):
                raise InvalidData(
                    "duplicate event ids across the parts", path=parts[-1].selected.path, field="event_id"
                )
        if n == 0:
            writer.write_table(schema.empty_table())
    write_json(sidecar, doc)
    return n


@dataclasses.dataclass(frozen=True)
class GatherResult:
    """What the gather step wrote: the summed cut flow, the acceptance, the exposure, the selected count."""

    cutflow: CutFlow
    acceptance: Acceptance
    exposure: Exposure
    n_selected: int


def gather(
    config: AnalysisConfig,
    parts: Sequence[str | os.PathLike],
    part_cutflows: Sequence[str | os.PathLike],
    sim_nr: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    selected: str | os.PathLike,
    cutflow: str | os.PathLike,
    acceptance: str | os.PathLike,
    exposure: str | os.PathLike,
) -> GatherResult:
    """The ``select`` gather step: selected events, cut flow, NR acceptance and exposure of the science run.

    Checks the parts (:func:`read_parts`); computes the acceptance from the NR simulation (one or more
    files: :func:`~dmpreserve.artifacts.reduced.read_dataset`) and the exposure (fiducial mass x the
    science files' summed live time: :func:`~dmpreserve.selection.cuts.exposure_of`); then writes
    ``selected`` (parts concatenated in order; sidecar: the first part's with the summed live time, the
    selection and the science files' ``upstream_cuts``), ``cutflow`` (CSV, summed exactly),
    ``acceptance`` (CSV) and ``exposure`` (JSON).

    Raises:
        InvalidData: naming the file and field.  Every check that can fail runs before the first output
            is written; ``selected`` is written atomically first, the small tables after it.
    """
    cuts = cuts_from_config(config)
    checked = read_parts(config, parts, part_cutflows)
    flow = sum_cutflows(checked)
    acc = nr_acceptance(read_dataset(sim_nr, kinds=("simulation_nr",)), cuts, config.acceptance_energy_edges_kev)
    files = [f for p in checked for f in p.flow.files]
    live = [f.live_time_s for f in files]
    first = checked[0].selected.meta
    expo = exposure_of(
        cuts,
        detector=first["detector"],
        live_time_s=math.fsum(live),
        nominal_masses=[
            (f.sidecar, None if f.nominal_exposure is None else f.nominal_exposure["fiducial_mass_t"]) for f in files
        ],
    )
    meta = _selected_meta(first, config, live, [f.nominal_exposure for f in files])
    n = concatenate_parts(checked, selected, meta)
    if n != flow.events[-1]:  # read_parts checked each part's rows against its cut flow
        raise AssertionError(f"{n} selected events written, the cut flow says {flow.events[-1]}")
    flow.write(cutflow)
    acc.write(acceptance)
    write_exposure(exposure, expo)
    return GatherResult(cutflow=flow, acceptance=acc, exposure=expo, n_selected=n)
