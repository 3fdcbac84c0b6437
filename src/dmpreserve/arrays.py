"""Validation of array inputs (shared by the plotting and HEPData modules)."""

from __future__ import annotations

import numpy as np

from dmpreserve.errors import InvalidData


def as_finite_array(field: str, values, *, ndim: int = 1, positive: bool = False,
                    nonnegative: bool = False) -> np.ndarray:
    """Convert ``values`` to a finite float array of dimension ``ndim``.

    Raises:
        InvalidData: naming ``field`` if the values are not numbers, have the wrong dimension, are
            not finite, or violate ``positive``/``nonnegative``.
    """
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise InvalidData(f"cannot be converted to numbers ({exc})", field=field) from None
    if arr.ndim != ndim:
        raise InvalidData(f"expected a {ndim}-dimensional array, got shape {arr.shape}", field=field)
    if not np.all(np.isfinite(arr)):
        raise InvalidData("contains NaN or infinite values", field=field)
    if positive and np.any(arr <= 0):
        raise InvalidData("must be strictly positive", field=field)
    if nonnegative and np.any(arr < 0):
        raise InvalidData("must not be negative", field=field)
    return arr


def as_bin_edges(field: str, values) -> np.ndarray:
    """Bin edges: at least two strictly increasing finite numbers."""
    edges = as_finite_array(field, values)
    if len(edges) < 2 or np.any(np.diff(edges) <= 0):
        raise InvalidData("bin edges must be at least two strictly increasing numbers", field=field)
    return edges


def _grid(values, *, path, field: str, shape: tuple[int, ...]) -> np.ndarray:
    """A finite, non-negative array of exactly ``shape`` (ragged nesting is refused, not broadcast)."""
    try:
        arr = as_finite_array(field, values, ndim=len(shape), nonnegative=True)
    except InvalidData as exc:
        raise InvalidData(exc.message, path=path, field=field) from None
    if arr.shape != shape:
        raise InvalidData(f"shape {arr.shape} does not match the binning {shape}", path=path, field=field)
    return arr


def check_templates(doc: dict, *, path) -> tuple[int, int]:
    """Shape checks of a schema-valid ``templates.json`` document that a JSON Schema cannot express.

    Returns:
        The binning shape (n_cs1, n_log10cs2).

    Raises:
        InvalidData: naming ``path`` and the JSON path of the first inconsistent array.
    """
    edges = []
    for key in ("cs1_edges_phd", "log10_cs2_edges"):
        try:
            edges.append(as_bin_edges(f"$.binning.{key}", doc["binning"][key]))
        except InvalidData as exc:
            raise InvalidData(exc.message, path=path, field=exc.field) from None
    shape = (len(edges[0]) - 1, len(edges[1]) - 1)
    _grid(doc["observed"], path=path, field="$.observed", shape=shape)
    for name, comp in doc["components"].items():
        _grid(comp["template"], path=path, field=f"$.components.{name}.template", shape=shape)
    return shape


def check_signal(doc: dict, *, path, n_bins: int | None = None) -> None:
    """Consistency of a schema-valid ``signal.json``: one entry per mass everywhere, equal template lengths.

    Args:
        doc: The signal document.
        path: The file it came from (named in errors).
        n_bins: Required template length (the analysis bins), if known.

    Raises:
        InvalidData: naming ``path`` and the inconsistent key.
    """
    n = len(doc["masses_gev"])
    for key in ("reference_cross_section_cm2", "expected_events", "templates"):
        if len(doc[key]) != n:
            raise InvalidData(f"has {len(doc[key])} entries, masses_gev has {n}: array length mismatch", path=path,
                              field=f"$.{key}")
    length = n_bins if n_bins is not None else len(doc["templates"][0])
    for i, tmpl in enumerate(doc["templates"]):
        if len(tmpl) != length:
            raise InvalidData(f"template has {len(tmpl)} bins, expected {length}", path=path,
                              field=f"$.templates[{i}]")
