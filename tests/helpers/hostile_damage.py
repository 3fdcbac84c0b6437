"""Damage helpers of the hostile-input table (``test_hostile.py``): each writes a damaged copy of a
good input into a destination folder and returns the file the error message must name."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

Damage = Callable[[Path, Path], Path]


def copy_reduced(src: Path, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(src, dest / src.name)
    shutil.copy(src.with_suffix(".json"), dest / src.with_suffix(".json").name)
    return dest / src.name


def parquet(
    mutate: Callable[[dict[str, np.ndarray]], Any], smut: Callable[[dict], Any] | None = None
) -> Callable[[Path, Path], Path]:
    """Rewrite the Parquet table with ``mutate(columns)`` applied (and the sidecar with ``smut``)."""

    def damage(src: Path, dest: Path) -> Path:
        out = copy_reduced(src, dest)
        table = pq.read_table(out)
        cols = {n: table.column(n).to_numpy() for n in table.column_names}
        result = mutate(cols)
        pq.write_table(result if isinstance(result, pa.Table) else pa.table(cols), out)
        if smut is not None:
            side = out.with_suffix(".json")
            doc = json.loads(side.read_text())
            smut(doc)
            side.write_text(json.dumps(doc))
        return out

    return damage


def raw_bytes(fn: Callable[[bytes], bytes]) -> Callable[[Path, Path], Path]:
    """Replace a file's bytes (a reduced-data file keeps its sidecar)."""

    def damage(src: Path, dest: Path) -> Path:
        if src.suffix == ".parquet":
            out = copy_reduced(src, dest)
        else:
            dest.mkdir(parents=True, exist_ok=True)
            out = dest / src.name
        out.write_bytes(fn(src.read_bytes()))
        return out

    return damage


def sidecar(mutate: Callable[[dict], Any] | None = None, *, text: str | None = None) -> Callable[[Path, Path], Path]:
    """Rewrite the reduced-data sidecar (the returned path is the sidecar's)."""

    def damage(src: Path, dest: Path) -> Path:
        side = copy_reduced(src, dest).with_suffix(".json")
        if text is not None:
            side.write_text(text, encoding="utf-8")
        else:
            doc = json.loads(side.read_text())
            mutate(doc)
            side.write_text(json.dumps(doc))
        return side

    return damage


def json_doc(mutate: Callable[[dict], Any]) -> Callable[[Path, Path], Path]:
    """Rewrite a JSON document with ``mutate(doc)`` applied in place."""

    def damage(src: Path, dest: Path) -> Path:
        dest.mkdir(parents=True, exist_ok=True)
        out = dest / src.name
        doc = json.loads(src.read_text())
        mutate(doc)
        out.write_text(json.dumps(doc, allow_nan=True))
        return out

    return damage


def config(mutate: Callable[[dict], Any] | None = None, *, text: str | None = None) -> Callable[[Path, Path], Path]:
    """Write a damaged configuration (YAML)."""

    def damage(src: Path, dest: Path) -> Path:
        dest.mkdir(parents=True, exist_ok=True)
        out = dest / "bad_config.yaml"
        if text is not None:
            out.write_text(text, encoding="utf-8")
        else:
            doc = yaml.safe_load(src.read_text(encoding="utf-8"))
            mutate(doc)
            out.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
        return out

    return damage


def csv_text(fn: Callable[[str], str]) -> Callable[[Path, Path], Path]:
    """Rewrite a CSV table's text."""

    def damage(src: Path, dest: Path) -> Path:
        dest.mkdir(parents=True, exist_ok=True)
        out = dest / src.name
        out.write_text(fn(src.read_text(encoding="utf-8")), encoding="utf-8")
        return out

    return damage


def setitem(obj: Any, keys: tuple, value: Any) -> None:
    """``obj[k0][k1]...[kn] = value``."""
    for k in keys[:-1]:
        obj = obj[k]
    obj[keys[-1]] = value


def sets(*keys: Any, value: Any) -> Callable[[Any], None]:
    return lambda doc: setitem(doc, keys, value)


def col(name: str, fn: Callable[[np.ndarray], np.ndarray]) -> Callable[[dict], None]:
    def mutate(cols: dict) -> None:
        cols[name] = fn(cols[name].copy())

    return mutate


def at(i: int, value: Any) -> Callable[[np.ndarray], np.ndarray]:
    def fn(arr: np.ndarray) -> np.ndarray:
        arr[i] = value
        return arr

    return fn


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def replace_cell(column: str, value: str) -> Callable[[str], str]:
    """Set ``column`` of the first data row of a CSV text to ``value``."""

    def fn(text: str) -> str:
        lines = text.splitlines()
        header = lines[0].split(",")
        row = lines[1].split(",")
        row[header.index(column)] = value
        lines[1] = ",".join(row)
        return "\n".join(lines) + "\n"

    return fn


def kit_dir(mutate: Callable[[Path], Path]) -> Callable[[Path, Path], Path]:
    """Copy the reinterpretation kit directory and damage it; ``mutate(kit)`` returns the file to be named."""

    def damage(src: Path, dest: Path) -> Path:
        kit = dest / "kit"
        shutil.copytree(src, kit)
        return mutate(kit)

    return damage


def manifest_entry(name: str, content: bytes) -> Callable[[Path], Path]:
    def mutate(kit: Path) -> Path:
        doc = json.loads((kit / "kit.json").read_text())
        doc["files"][name] = {"description": "smuggled", "sha256": hashlib.sha256(content).hexdigest()}
        (kit / "kit.json").write_text(json.dumps(doc))
        return kit / "kit.json"

    return mutate


def outside_link(kit: Path) -> Path:
    outside = kit.parent / "README_outside.md"
    shutil.copy(kit / "README.md", outside)  # identical bytes: only the link itself is wrong
    (kit / "README.md").unlink()
    (kit / "README.md").symlink_to(outside)
    return kit / "README.md"


def sparse_member(name: str, size: int) -> Callable[[Path], Path]:
    def mutate(kit: Path) -> Path:
        os.truncate(kit / name, size)  # sparse: no disk space used, must be refused before reading
        return kit / name

    return mutate


def rehashed(name: str, mutate: Callable[[dict], Any]) -> Callable[[Path], Path]:
    """Change the kit's JSON member ``name`` with ``mutate`` and record its new sha256 in kit.json (a
    consistent kit whose content is bad, not a tampered one)."""

    def damage(kit: Path) -> Path:
        member = kit / name
        doc = json.loads(member.read_text())
        mutate(doc)
        member.write_text(json.dumps(doc))
        manifest = json.loads((kit / "kit.json").read_text())
        manifest["files"][name]["sha256"] = hashlib.sha256(member.read_bytes()).hexdigest()
        (kit / "kit.json").write_text(json.dumps(manifest))
        return member

    return damage


def tamper(name: str) -> Callable[[Path], Path]:
    def mutate(kit: Path) -> Path:
        with open(kit / name, "a", encoding="utf-8") as fh:
            fh.write("\n")
        return kit / name

    return mutate


def sparse_file(size: int) -> Callable[[Path, Path], Path]:
    """A sparse file of ``size`` bytes in place of the input (refused by size, never read)."""

    def damage(src: Path, dest: Path) -> Path:
        dest.mkdir(parents=True, exist_ok=True)
        out = dest / src.name
        out.write_bytes(b"")
        os.truncate(out, size)
        return out

    return damage


def unlink_file(path: Path) -> Path:
    path.unlink()
    return path


def in_dir(name: str, damage: Damage) -> Damage:
    """Copy a dataset directory and apply ``damage`` to its file ``name`` (the returned path: the file to name)."""

    def fn(src: Path, dest: Path) -> Path:
        copy = dest / src.name
        shutil.copytree(src, copy)
        return damage(src / name, copy)

    return fn


def empty_dir(src: Path, dest: Path) -> Path:
    """A dataset directory without Parquet files (only a stray sidecar)."""
    out = dest / src.name
    out.mkdir(parents=True)
    (out / "README.json").write_text("{}")
    return out


def split_reduced(src: Path, dest: Path, n_files: int) -> Path:
    """Write the reduced-data file ``src`` as ``n_files`` files ``part-<i>.parquet`` (+ sidecars, live time split)
    in the directory ``dest``; returns ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    table = pq.read_table(src)
    meta = json.loads(src.with_suffix(".json").read_text())
    bounds = np.linspace(0, table.num_rows, n_files + 1).astype(int)
    for i, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:])):
        pq.write_table(table.slice(lo, hi - lo), dest / f"part-{i}.parquet")
        doc = {**meta, "n_events": int(hi - lo), "live_time_s": meta["live_time_s"] / n_files}
        doc.pop("exposure", None)
        (dest / f"part-{i}.json").write_text(json.dumps(doc))
    return dest
