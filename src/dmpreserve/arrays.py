"""Validation of array inputs (shared by the plotting and HEPData modules)."""

from __future__ import annotations

import numpy as np

from dmpreserve.errors import InvalidData


def as_finite_array(
    field: str, values, *, ndim: int = 1, positive: bool = False, nonnegative: bool = False
) -> np.ndarray:
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
