"""Safe, reproducible file I/O.

All writers are atomic: they write into a temporary file beside the target and rename it
into place only when the write succeeded, so an interrupted or failing step never leaves a
partial output behind.  JSON is written with sorted keys and no timestamps, so reruns give
byte-identical files.
"""

from __future__ import annotations

import contextlib
import csv
import glob
import gzip
import hashlib
import io
import json
import math
import os
import re
import shutil
import tarfile
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml

from dmpreserve.errors import DmpreserveError, InvalidData

#: Largest JSON/CSV document a reader accepts (bytes); bigger files are refused, not parsed.
MAX_TEXT_BYTES = 512 * 1024 * 1024

#: Deepest nesting of lists/objects accepted in a JSON or YAML document (ours need fewer than 10).
MAX_NESTING = 64


def remove_stale_temporaries(target: str | os.PathLike) -> list[Path]:
    """Remove what killed writers of ``target`` left beside it: ``.<name>.<8 random chars>.part``.

    These are the names :func:`atomic_write` (files) and :func:`dmpreserve.mdc.layout.cluster_dataset`
    (staging directories) create with :mod:`tempfile`; nothing else matches.

    Returns:
        The paths removed.
    """
    target = Path(target)
    pattern = re.compile(rf"\.{re.escape(target.name)}\.[a-z0-9_]{{8}}\.part")
    removed = []
    for p in target.parent.glob(f".{glob.escape(target.name)}.*.part") if target.parent.is_dir() else ():
        if pattern.fullmatch(p.name):
            with contextlib.suppress(FileNotFoundError):
                if p.is_dir() and not p.is_symlink():
                    shutil.rmtree(p)
                else:
                    p.unlink()
            removed.append(p)
    return removed


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the target's directory; rename it to ``path`` on success.

    The parent directory is created if needed.  On any exception the temporary file is
    removed and ``path`` is left untouched.  Temporary files of the same target left by a
    process that was killed (SIGKILL: no chance to clean up) are removed first.

    Args:
        path: Final destination.

    Yields:
        The temporary path to write to.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o644)
        os.replace(tmp_path, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def _jsonable(obj: Any) -> Any:
    """Convert numpy scalars/arrays and tuples to plain JSON types; refuse NaN/inf."""
    if hasattr(obj, "tolist") and not isinstance(obj, (str, bytes)):
        obj = obj.tolist()
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        raise ValueError(f"non-finite number {obj!r} cannot be written to JSON")
    return obj


def dumps_json(obj: Any) -> str:
    """Serialise ``obj`` deterministically (sorted keys, one-space indent, trailing newline)."""
    return json.dumps(_jsonable(obj), sort_keys=True, indent=1, allow_nan=False) + "\n"


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as deterministic JSON to ``path`` atomically."""
    text = dumps_json(obj)
    with atomic_write(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def read_text(path: str | os.PathLike, what: str) -> str:
    """The UTF-8 text of a user file, refused when missing, larger than ``MAX_TEXT_BYTES`` or not UTF-8."""
    p = Path(path)
    if not p.is_file():
        raise InvalidData(f"{what} file not found", path=p)
    size = p.stat().st_size
    if size > MAX_TEXT_BYTES:
        raise InvalidData(f"{what} file is {size} bytes, larger than the {MAX_TEXT_BYTES} byte limit", path=p)
    try:
        return p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidData(f"{what} file is not UTF-8 text ({exc.reason} at byte {exc.start})", path=p) from None


def check_nesting(
    doc: Any,
    *,
    path: str | os.PathLike | None,
    what: str,
    error: type[DmpreserveError] = InvalidData,
    max_depth: int = MAX_NESTING,
) -> None:
    """Refuse documents nested deeper than ``max_depth`` (iteratively: no recursion on hostile input).

    Raises:
        error: naming the file and the JSON path where the limit is exceeded.
    """
    stack: list[tuple[Any, int, str]] = [(doc, 0, "$")]
    while stack:
        node, depth, where = stack.pop()
        if depth > max_depth:
            raise error(f"{what} is nested more than {max_depth} levels deep", path=path, field=where)
        if isinstance(node, dict):
            stack.extend((v, depth + 1, f"{where}.{k}") for k, v in node.items())
        elif isinstance(node, list):
            stack.extend((v, depth + 1, f"{where}[{i}]") for i, v in enumerate(node))


def _unique_keys(path: str | os.PathLike, what: str):
    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                raise InvalidData(f"{what} file has the key {key!r} twice in one object", path=path, field=key)
            out[key] = value
        return out

    return hook


def read_json(path: str | os.PathLike, *, what: str = "JSON") -> Any:
    """Read a JSON document, raising :class:`InvalidData` naming the file on any problem.

    NaN and Infinity literals, duplicate keys in one object and nesting deeper than
    :data:`MAX_NESTING` are rejected.
    """
    text = read_text(path, what)

    def _bad_constant(name: str) -> Any:
        raise InvalidData(f"{what} file contains the non-JSON constant {name}", path=path)

    try:
        doc = json.loads(text, parse_constant=_bad_constant, object_pairs_hook=_unique_keys(path, what))
    except json.JSONDecodeError as exc:
        raise InvalidData(
            f"{what} file is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})", path=path
        ) from None
    except RecursionError:
        raise InvalidData(f"{what} file is nested too deeply to be parsed", path=path) from None
    check_nesting(doc, path=path, what=f"{what} file")
    return doc


class _StrictSafeLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that also refuses aliases (no billion-laughs expansion) and duplicate keys."""

    def compose_node(self, parent, index):  # noqa: D102 (PyYAML hook)
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise yaml.constructor.ConstructorError(
                None, None, "YAML aliases (*name) are not allowed in dmpreserve input files", mark
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):  # noqa: D102 (PyYAML hook)
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
            except TypeError:  # unhashable key: SafeLoader reports it below
                continue
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} in one mapping", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_yaml(
    text: str, *, path: str | os.PathLike | None, what: str = "YAML", error: type[DmpreserveError] = InvalidData
) -> Any:
    """Parse user YAML safely: safe constructors only, no aliases, no duplicate keys, bounded nesting.

    Raises:
        error: naming the file (and the line, in the message) on any problem; never a traceback.
    """
    try:
        doc = yaml.load(text, Loader=_StrictSafeLoader)  # noqa: S506 -- a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise error(f"not valid YAML: {exc}".replace("\n", " "), path=path) from None
    except RecursionError:
        raise error(f"{what} file is nested too deeply to be parsed", path=path) from None
    check_nesting(doc, path=path, what=f"{what} file", error=error)
    return doc


def _format_cell(value: Any) -> str:
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"non-finite number {value!r} cannot be written to CSV")
        return repr(float(value))  # float(): np.float64 is a float subclass whose repr is "np.float64(...)"
    if hasattr(value, "item"):
        return _format_cell(value.item())
    return str(value)


def write_csv(path: str | os.PathLike, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Write a CSV file atomically; floats are written with ``repr`` (round-trip exact)."""
    with atomic_write(path) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(list(header))
            for row in rows:
                writer.writerow([_format_cell(v) for v in row])


def read_csv(path: str | os.PathLike, *, required: Sequence[str], what: str = "CSV") -> dict[str, list[str]]:
    """Read a CSV file into columns of strings, checking that ``required`` columns exist.

    Raises:
        InvalidData: naming the file and the missing column, or the line that is malformed.
    """
    text = read_text(path, what)
    if "\x00" in text:
        raise InvalidData(
            f"{what} file contains a NUL byte (line {text[: text.index(chr(0))].count(chr(10)) + 1})", path=path
        )
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    try:
        rows = list(csv.reader(lines))
    except csv.Error as exc:
        raise InvalidData(f"{what} file is not a valid CSV table ({exc})", path=path) from None
    reader = iter(rows)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise InvalidData(f"{what} file is empty", path=path) from None
    for name in required:
        if name not in header:
            raise InvalidData(
                f"required column is missing (columns present: {', '.join(header)})", path=path, field=name
            )
    columns: dict[str, list[str]] = {h: [] for h in header}
    for lineno, row in enumerate(reader, start=2):
        if len(row) != len(header):
            raise InvalidData(f"line {lineno} has {len(row)} fields, expected {len(header)}", path=path)
        for h, v in zip(header, row):
            columns[h].append(v.strip())
    return columns


def sha256_file(path: str | os.PathLike) -> str:
    """Return the hex sha256 digest of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def tar_gz_bytes(members: Sequence[tuple[str, bytes]]) -> bytes:
    """A reproducible tar.gz of ``members`` (name, bytes).

    Members are sorted by name and stored as regular root-owned files with mode 0644 and mtime 0;
    the gzip header carries no timestamp or file name.  The same members give the same bytes.
    """
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            for name, data in sorted(members):
                info = tarfile.TarInfo(name)
                info.size, info.mtime, info.mode = len(data), 0, 0o644
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                info.type = tarfile.REGTYPE
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()
