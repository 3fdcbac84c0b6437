"""Safe, reproducible file I/O.

All writers are atomic: they write into a temporary file beside the target and rename it
into place only when the write succeeded, so an interrupted or failing step never leaves a
partial output behind.  JSON is written with sorted keys and no timestamps, so reruns give
byte-identical files.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import math
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from dmpreserve.errors import InvalidData

#: Largest JSON/CSV document a reader accepts (bytes); bigger files are refused, not parsed.
MAX_TEXT_BYTES = 512 * 1024 * 1024


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the target's directory; rename it to ``path`` on success.

    The parent directory is created if needed.  On any exception the temporary file is
    removed and ``path`` is left untouched.

    Args:
        path: Final destination.

    Yields:
        The temporary path to write to.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
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


def _read_text(path: str | os.PathLike, what: str) -> str:
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


def read_json(path: str | os.PathLike, *, what: str = "JSON") -> Any:
    """Read a JSON document, raising :class:`InvalidData` naming the file on any problem.

    NaN and Infinity literals are rejected (they are not JSON).
    """
    text = _read_text(path, what)

    def _bad_constant(name: str) -> Any:
        raise InvalidData(f"{what} file contains the non-JSON constant {name}", path=path)

    try:
        return json.loads(text, parse_constant=_bad_constant)
    except json.JSONDecodeError as exc:
        raise InvalidData(f"{what} file is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})",
                          path=path) from None


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
    text = _read_text(path, what)
    reader = csv.reader(line for line in text.splitlines() if line.strip() and not line.startswith("#"))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise InvalidData(f"{what} file is empty", path=path) from None
    for name in required:
        if name not in header:
            raise InvalidData(f"required column is missing (columns present: {', '.join(header)})",
                              path=path, field=name)
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
