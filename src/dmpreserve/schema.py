"""JSON Schemas shipped with the package, and validation that names the JSON path at fault.

The schemas live in the repository's top-level ``schemas/`` directory, which is installed as
package data (``dmpreserve/schemas``), so they are found with :mod:`importlib.resources` in
an editable checkout, a wheel and the container image alike.
"""

from __future__ import annotations

import difflib
import json
from importlib import resources
from typing import Any

import jsonschema

from dmpreserve.errors import DmpreserveError, InvalidData


def load_schema(name: str) -> dict[str, Any]:
    """Return the schema ``schemas/<name>.schema.json`` as a dict (a fresh copy)."""
    return json.loads(_schema_text(name))


def _schema_text(name: str) -> str:
    ref = resources.files("dmpreserve") / "schemas" / f"{name}.schema.json"
    if not ref.is_file():
        raise FileNotFoundError(f"dmpreserve ships no schema named {name!r}")
    return ref.read_text(encoding="utf-8")


def json_path(error: jsonschema.ValidationError) -> str:
    """Render the location of a validation error as a JSON path such as ``$.selection.cuts[2].min``."""
    path = "$"
    for part in error.absolute_path:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _suggestion(error: jsonschema.ValidationError) -> str:
    """``; did you mean 'masses_gev'?`` for an unexpected key close to an allowed one (a typo), else ``""``."""
    if error.validator != "additionalProperties" or not isinstance(error.instance, dict):
        return ""
    allowed = [str(k) for k in (error.schema.get("properties") or {})] if isinstance(error.schema, dict) else []
    hints = []
    for key in sorted(str(k) for k in error.instance if k not in allowed):
        close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.75)
        if close:
            hints.append(f"{key!r}: did you mean {close[0]!r}?")
    return f"; {'; '.join(hints)}" if hints else ""


def validate(instance: Any, name: str, *, path: str | None = None, error: type[DmpreserveError] = InvalidData) -> None:
    """Validate ``instance`` against the named schema.

    Args:
        instance: The decoded JSON/YAML document.
        name: Schema name (``config``, ``reduced_data``, ...).
        path: The file the document came from, named in the error.
        error: Exception class to raise.

    Raises:
        error: For the first (deepest, most relevant) violation, naming its JSON path.
    """
    schema = load_schema(name)
    validator_cls = jsonschema.validators.validator_for(schema)
    validator = validator_cls(schema)
    best = jsonschema.exceptions.best_match(validator.iter_errors(instance))
    if best is not None:
        message = best.message
        shown = repr(best.instance)
        if len(shown) > 60 and shown in message:  # a large object: say "the value" instead of printing it
            message = message.replace(shown, "the value")
        message += _suggestion(best)  # before the description, which may be cut below
        if isinstance(best.schema, dict) and isinstance(best.schema.get("description"), str):
            message += f" ({best.schema['description']})"
        if len(message) > 300:
            message = message[:300] + "..."
        raise error(f"does not match {name}.schema.json: {message}", path=path, field=json_path(best))
