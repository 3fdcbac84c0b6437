"""External background templates: a histogram in the analysis binning, as CSV or as HDF5 (inference_interface).

CSV: one row per analysis bin, columns ``cs1_min_phd, cs1_max_phd, log10_cs2_min, log10_cs2_max,
events`` and optionally ``events_err`` (absolute per-bin uncertainty, e.g. the template's simulation
statistics); every bin exactly once, in any order.

HDF5: XENONnT's template format, read with :func:`inference_interface.template_to_multihist`:
datasets ``bins/0`` (cS1 edges [phd]), ``bins/1`` (log10(cS2/phd) edges) and ``templates/<name>``
(the 2D histogram).

Either way the bin edges must equal the analysis binning (to 1e-9 relative); the values are events
per bin (or events/(t yr) per bin with ``normalisation: {template: true}``), finite and >= 0.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from dmpreserve.config import Binning
from dmpreserve.errors import InvalidData
from dmpreserve.files import read_csv

CSV_COLUMNS = ("cs1_min_phd", "cs1_max_phd", "log10_cs2_min", "log10_cs2_max", "events")


@dataclasses.dataclass(frozen=True)
class ExternalTemplate:
    """A template read from a file: values [n_cs1][n_log10cs2] and their absolute uncertainty (None: not given)."""

    values: np.ndarray
    stat_err: np.ndarray | None


def _same_edges(got: np.ndarray, want: tuple[float, ...]) -> bool:
    return got.shape == (len(want),) and bool(np.allclose(got, want, rtol=1e-9, atol=1e-12))


def _check_values(values: np.ndarray, *, path: str, field: str) -> None:
    if not np.all(np.isfinite(values)):
        raise InvalidData("values must be finite (no NaN or inf)", path=path, field=field)
    if np.any(values < 0):
        raise InvalidData("values must be >= 0", path=path, field=field)


def read_csv_template(path: str | os.PathLike, binning: Binning) -> ExternalTemplate:
    """A CSV template (module docstring) on ``binning``.

    Raises:
        InvalidData: naming the file and column: missing file or column, a value that is not a finite number,
            a negative value, a bin that is not a bin of the analysis binning, a bin missing or given twice.
    """
    cols = read_csv(path, required=CSV_COLUMNS, what="background template")
    names = [*CSV_COLUMNS, *(["events_err"] if "events_err" in cols else [])]
    arr = {}
    for name in names:
        try:
            arr[name] = np.asarray([float(v) for v in cols[name]], float)
        except ValueError as exc:
            raise InvalidData(f"not a number ({exc})", path=path, field=name) from None
    e1, e2 = np.asarray(binning.cs1_edges_phd), np.asarray(binning.log10_cs2_edges)
    n1, n2 = binning.shape
    index = []
    for lo_key, hi_key, edges in (("cs1_min_phd", "cs1_max_phd", e1), ("log10_cs2_min", "log10_cs2_max", e2)):
        i = np.clip(np.searchsorted(edges, arr[lo_key], side="right") - 1, 0, len(edges) - 2)
        for key, got, want in ((lo_key, arr[lo_key], edges[i]), (hi_key, arr[hi_key], edges[i + 1])):
            bad = ~np.isclose(got, want, rtol=1e-9, atol=1e-12)
            if np.any(bad):
                row = int(np.argmax(bad))
                raise InvalidData(
                    f"row {row + 2}: {got[row]!r} is not an edge of the analysis binning {edges.tolist()} "
                    "(a template must use the analysis binning)",
                    path=path,
                    field=key,
                )
        index.append(i)
    flat = index[0] * n2 + index[1]
    counts = np.bincount(flat, minlength=n1 * n2)
    if np.any(counts != 1):
        k = int(np.argmax(counts != 1))
        raise InvalidData(
            f"analysis bin (cS1 bin {k // n2}, log10 cS2 bin {k % n2}) appears {int(counts[k])} times; "
            "every bin must appear exactly once",
            path=path,
            field="cs1_min_phd",
        )
    values = np.zeros(n1 * n2)
    values[flat] = arr["events"]
    _check_values(values, path=str(path), field="events")
    err = None
    if "events_err" in arr:
        err = np.zeros(n1 * n2)
        err[flat] = arr["events_err"]
        _check_values(err, path=str(path), field="events_err")
        err = err.reshape(n1, n2)
    return ExternalTemplate(values.reshape(n1, n2), err)


def read_hdf5_template(path: str | os.PathLike, histogram: str, binning: Binning) -> ExternalTemplate:
    """A template in XENONnT's inference_interface HDF5 format (module docstring) on ``binning``.

    Raises:
        InvalidData: naming the file and the HDF5 dataset: not HDF5, not in the inference_interface layout,
            no such histogram, not 2D, edges that differ from the analysis binning, non-finite or negative values.
    """
    import h5py
    from inference_interface import template_to_multihist

    path = str(path)
    if not os.path.isfile(path):
        raise InvalidData("template file not found", path=path)
    try:
        with h5py.File(path, "r") as f:
            for group in ("bins", "templates"):
                if group not in f:
                    raise InvalidData(
                        f"not an inference_interface template: no group {group!r}", path=path, field=group
                    )
            if histogram not in f["templates"]:
                raise InvalidData(
                    f"no such histogram (the file has {', '.join(sorted(f['templates'])) or 'none'})",
                    path=path,
                    field=f"templates/{histogram}",
                )
        hist = template_to_multihist(path, histogram)
    except InvalidData:
        raise
    except (OSError, KeyError, ValueError, TypeError, AttributeError) as exc:
        raise InvalidData(
            f"not a readable inference_interface template ({type(exc).__name__}: {exc})",
            path=path,
            field=f"templates/{histogram}",
        ) from None
    edges = [np.asarray(b, float) for b in getattr(hist, "bin_edges", [])]
    if len(edges) != 2:
        raise InvalidData(
            f"a template in (cS1, log10 cS2) must be 2D, this one has {len(edges)} axes", path=path, field="bins"
        )
    for i, (got, want) in enumerate(zip(edges, (binning.cs1_edges_phd, binning.log10_cs2_edges))):
        if not _same_edges(got, want):
            raise InvalidData(
                f"edges {got.tolist()} differ from the analysis binning {list(want)} "
                "(a template must use the analysis binning)",
                path=path,
                field=f"bins/{i}",
            )
    values = np.asarray(hist.histogram, float)
    _check_values(values, path=path, field=f"templates/{histogram}")
    return ExternalTemplate(values, None)
