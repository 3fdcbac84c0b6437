"""``unbinned_templates.h5``: fine, smoothed templates for an unbinned likelihood (``unbinned-templates`` step).

Written by ``dmpreserve unbinned-templates`` (:mod:`dmpreserve.unbinned`) when the configuration has
``likelihood.unbinned``; read by ``dmpreserve limits-point --unbinned``.  The likelihood evaluates the density of
every observed event from these shapes, as XENON's blueice does: every background component and the signal of
every mass rebuilt on a fine (cS1, log10 cS2) grid over the analysis ROI (``analysis.binning``'s min/max) and
smoothed by a Gaussian of ``smoothing_bins`` fine bins.  Only the *shapes* are stored (each row sums to 1); the
normalisations, constraints and the signal's reference cross sections stay in the pyhf workspace and patchset.

Layout (HDF5, one file; every dataset at the root; reruns give byte-identical files: no timestamps):

=====================  ===========================  =========================================================
dataset                shape, dtype                 content
=====================  ===========================  =========================================================
``cs1_edges_phd``      (n1 + 1,) float64            fine cS1 bin edges [phd], ascending
``log10_cs2_edges``    (n2 + 1,) float64            fine log10(cS2/phd) bin edges, ascending
``sample_names``       (n_samples,) UTF-8 string    background samples, as named in the pyhf workspace
``backgrounds``        (n_samples, n1 n2) float64   background shapes, each row sums to 1
``masses_gev``         (n_masses,) float64          signal masses [GeV/c^2], ascending
``signal``             (n_masses, n1 n2) float64    signal shapes, each row sums to 1
``observed_bins``      (n_events,) int64            flat fine-bin index of every selected event
``nr_energy_edges_kev``  (n_e + 1,) float64          optional: true NR energy bin edges [keV] of ``nr_response``
``nr_response``        (n_e, n1 n2) float64         optional: the fine NR response, P(pass all cuts, land in fine
                                                    bin k | NR in energy bin e), unsmoothed (as the response step's
                                                    ``response_nr.json`` on the fine grid)
``er_line_energies_kev``  (n_l,) float64            optional: ER line energies [keV] of ``er_response``, ascending
``er_response``        (n_l, n1 n2) float64         optional: the fine ER line response, unsmoothed
=====================  ===========================  =========================================================

The optional responses let a reinterpretation kit build the fine signal of any NR model (or ER line) exactly as
the step built the pipeline's own (fold, then smooth): :func:`dmpreserve.unbinned.with_signal`.

Root attributes: ``format`` (:data:`FORMAT`), ``format_version`` (:data:`FORMAT_VERSION`), ``smoothing_bins``
(Gaussian sigma in fine bins, 0: none) and ``description``.  The flat bin index is ``k = i_cs1 * n2 + j_log10cs2``
(row-major, as the analysis templates); bins are half open ``[lo, hi)`` but for the last, closed one of each axis
(NumPy's ``histogram2d``).  A density per unit area of the (cS1, log10 cS2) plane is ``shape[k] / area[k]``.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from dmpreserve.artifacts.response import LineResponse, ResponseMatrix
from dmpreserve.config import Binning
from dmpreserve.errors import InvalidData
from dmpreserve.files import atomic_write

FORMAT = "dmpreserve-unbinned-templates"
FORMAT_VERSION = 1
#: Largest deviation of a shape's sum from 1 the reader accepts.
SUM_TOLERANCE = 1e-9
#: Relative tolerance of :meth:`UnbinnedTemplates.signal_shape`'s mass match (as the limit masses' match).
MASS_RTOL = 1e-4

_FLOAT_DATASETS = ("cs1_edges_phd", "log10_cs2_edges", "backgrounds", "masses_gev", "signal")
_DATASETS = (*_FLOAT_DATASETS, "sample_names", "observed_bins")
#: Optional datasets: the fine responses (a kit's reinterpretation builds new signals from them).
_OPTIONAL_FLOAT_DATASETS = ("nr_energy_edges_kev", "nr_response", "er_line_energies_kev", "er_response")


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class UnbinnedTemplates:
    """Contents of ``unbinned_templates.h5`` (the module docstring gives the layout).

    Attributes:
        cs1_edges: Fine cS1 bin edges [phd], shape (n1 + 1,), ascending.
        log10_cs2_edges: Fine log10(cS2/phd) bin edges, shape (n2 + 1,), ascending.
        smoothing_bins: Gaussian sigma of the smoothing [fine bins] (0: none).
        sample_names: Background sample names, as in the pyhf workspace (the configuration's component names,
            sorted), length n_samples.
        backgrounds: Background shapes, shape (n_samples, n1 * n2); each row sums to 1; flat index
            ``k = i_cs1 * n2 + j_log10cs2``.
        masses_gev: Signal masses [GeV/c^2], ascending (the signal step's mass grid), length n_masses.
        signal: Signal shapes, shape (n_masses, n1 * n2); each row sums to 1.
        observed_bins: Flat fine-bin index of every selected (observed) event, shape (n_events,), int64.
        nr_energy_edges_kev: True NR energy bin edges [keV] of ``nr_response``, shape (n_e + 1,), or None.
        nr_response: The unsmoothed fine NR response [probability per recoil], shape (n_e, n1 * n2), or None.
        er_line_energies_kev: ER line energies [keV] of ``er_response``, shape (n_l,), or None.
        er_response: The unsmoothed fine ER line response [probability per event], shape (n_l, n1 * n2), or None.
        path: The file it was read from (named in errors), if any.
    """

    cs1_edges: np.ndarray
    log10_cs2_edges: np.ndarray
    smoothing_bins: float
    sample_names: tuple[str, ...]
    backgrounds: np.ndarray
    masses_gev: tuple[float, ...]
    signal: np.ndarray
    observed_bins: np.ndarray
    nr_energy_edges_kev: np.ndarray | None = None
    nr_response: np.ndarray | None = None
    er_line_energies_kev: np.ndarray | None = None
    er_response: np.ndarray | None = None
    path: str | None = None

    @property
    def shape(self) -> tuple[int, int]:
        """Number of fine bins (n1, n2) in cS1 and log10 cS2."""
        return len(self.cs1_edges) - 1, len(self.log10_cs2_edges) - 1

    @property
    def bin_areas(self) -> np.ndarray:
        """Area of every fine bin [phd x dex], shape (n1 * n2,) (a shape / area is a density per phd per dex)."""
        return np.outer(np.diff(self.cs1_edges), np.diff(self.log10_cs2_edges)).ravel()

    def fine_responses(self) -> tuple[ResponseMatrix, LineResponse | None]:
        """The fine NR response and ER line response (None when the file has none) as response objects on the
        fine binning (their simulation errors are not stored: zeros).

        Raises:
            InvalidData: the file has no fine NR response (written before they were stored).
        """
        if self.nr_response is None:
            raise InvalidData(
                "no fine NR response (nr_response): rebuild the file with this dmpreserve's unbinned-templates "
                "(snakemake --forcerun unbinned_templates)",
                path=self.path,
                field="nr_response",
            )
        binning = Binning(tuple(float(x) for x in self.cs1_edges), tuple(float(x) for x in self.log10_cs2_edges))
        nr = ResponseMatrix(
            np.asarray(self.nr_energy_edges_kev, float),
            binning,
            self.nr_response,
            np.broadcast_to(0.0, np.shape(self.nr_response)),
        )
        if self.er_response is None:
            return nr, None
        er = LineResponse(
            np.asarray(self.er_line_energies_kev, float),
            binning,
            self.er_response,
            np.broadcast_to(0.0, np.shape(self.er_response)),
        )
        return nr, er

    def shape_of(self, sample: str) -> np.ndarray:
        """The shape of background sample ``sample``, shape (n1 * n2,), summing to 1.

        Raises:
            InvalidData: no such sample (naming it and the samples there are).
        """
        if sample not in self.sample_names:
            raise InvalidData(
                f"no background sample {sample!r} (the file has {', '.join(self.sample_names) or 'none'}): the "
                "unbinned templates were built for another background model than the workspace's",
                path=self.path,
                field="sample_names",
            )
        return self.backgrounds[self.sample_names.index(sample)]

    def signal_shape(self, mass_gev: float) -> np.ndarray:
        """The signal shape of mass ``mass_gev`` [GeV/c^2] (matched with rtol 1e-4), shape (n1 * n2,), summing to 1.

        Raises:
            InvalidData: no such mass (naming it and the masses there are).
        """
        hit = np.flatnonzero(np.isclose(np.asarray(self.masses_gev, float), float(mass_gev), rtol=MASS_RTOL, atol=0))
        if hit.size == 0:
            raise InvalidData(
                f"no signal shape for {float(mass_gev):g} GeV (the file has "
                f"{', '.join(f'{m:g}' for m in self.masses_gev) or 'none'} GeV)",
                path=self.path,
                field="masses_gev",
            )
        return self.signal[int(hit[0])]


def check_unbinned_templates(t: UnbinnedTemplates, *, path: str | os.PathLike | None = None) -> None:
    """The consistency checks of the reader and the writer.

    Raises:
        InvalidData: naming ``path`` and the dataset at fault: edges not 1D, with fewer than 3 entries, not
            finite or not ascending; array shapes that disagree with the edges or with the names and masses;
            duplicate names; masses not finite, positive and ascending; shapes not finite, negative or not
            summing to 1 (within :data:`SUM_TOLERANCE`); observed bins not integers in [0, n1 * n2).
    """
    path = None if path is None else str(path)

    def bad(message: str, field: str) -> InvalidData:
        return InvalidData(message, path=path, field=field)

    for field, edges in (("cs1_edges_phd", t.cs1_edges), ("log10_cs2_edges", t.log10_cs2_edges)):
        e = np.asarray(edges)
        if e.ndim != 1 or e.size < 3:
            raise bad(f"shape {e.shape}: need a 1D array of at least 3 edges (2 bins)", field)
        if not np.all(np.isfinite(e)) or np.any(np.diff(e) <= 0):
            raise bad("edges must be finite and strictly ascending", field)
    n_bins = (len(t.cs1_edges) - 1) * (len(t.log10_cs2_edges) - 1)
    s = t.smoothing_bins
    if (
        isinstance(s, bool)
        or not isinstance(s, (int, float, np.floating, np.integer))
        or not (np.isfinite(s) and s >= 0)
    ):
        raise bad(f"{s!r}: must be a finite number >= 0", "smoothing_bins")
    if len(set(t.sample_names)) != len(t.sample_names) or not all(isinstance(n, str) and n for n in t.sample_names):
        raise bad(f"sample names must be distinct, non-empty strings: {list(t.sample_names)}", "sample_names")
    m = np.asarray(t.masses_gev, float)
    if m.ndim != 1 or not np.all(np.isfinite(m)) or np.any(m <= 0) or np.any(np.diff(m) <= 0):
        raise bad("masses must be finite, > 0 and strictly ascending", "masses_gev")
    for field, rows, n_rows, what in (
        ("backgrounds", t.backgrounds, len(t.sample_names), "sample_names"),
        ("signal", t.signal, m.size, "masses_gev"),
    ):
        a = np.asarray(rows)
        if a.shape != (n_rows, n_bins):
            raise bad(
                f"shape {a.shape}, expected ({n_rows}, {n_bins}): one row per {what} entry, one column per bin", field
            )
        if not np.issubdtype(a.dtype, np.floating) or not np.all(np.isfinite(a)):
            raise bad("shapes must be finite floating-point numbers", field)
        if np.any(a < 0):
            row = int(np.nonzero(np.any(a < 0, axis=1))[0][0])
            raise bad(f"negative entries (first in row {row})", field)
        dev = np.abs(a.sum(axis=1) - 1.0) if n_rows else np.zeros(0)
        if np.any(dev > SUM_TOLERANCE):
            row = int(np.argmax(dev))
            raise bad(
                f"row {row} sums to {a[row].sum()!r}, not 1 (within {SUM_TOLERANCE:g}): shapes are normalised", field
            )
    for axis, matrix, what in (
        ("nr_energy_edges_kev", "nr_response", "energy bin"),
        ("er_line_energies_kev", "er_response", "line"),
    ):
        _check_response(getattr(t, axis), getattr(t, matrix), axis, matrix, what, n_bins, bad)
    obs = np.asarray(t.observed_bins)
    if obs.ndim != 1 or not np.issubdtype(obs.dtype, np.integer):
        raise bad(f"must be a 1D integer array, got shape {obs.shape} of {obs.dtype}", "observed_bins")
    if obs.size and (obs.min() < 0 or obs.max() >= n_bins):
        raise bad(f"bin indices must lie in [0, {n_bins}), found {int(obs.min())}..{int(obs.max())}", "observed_bins")


def _check_response(axis, matrix, axis_field: str, matrix_field: str, what: str, n_bins: int, bad) -> None:
    """An optional fine response: both or neither given; the axis 1D, finite, positive and ascending; the matrix
    finite, in [0, 1], one row per energy bin (edges: one more) or line."""
    if axis is None and matrix is None:
        return
    if axis is None or matrix is None:
        raise bad(f"given without {axis_field if axis is None else matrix_field}: both or neither", matrix_field)
    x = np.asarray(axis, float)
    if x.ndim != 1 or x.size < 2 or not np.all(np.isfinite(x)) or np.any(x <= 0) or np.any(np.diff(x) <= 0):
        raise bad("must be a 1D array of at least 2 finite, positive, strictly ascending energies", axis_field)
    rows = x.size - 1 if axis_field.endswith("edges_kev") else x.size
    m = np.asarray(matrix)
    if m.shape != (rows, n_bins):
        raise bad(f"shape {m.shape}, expected ({rows}, {n_bins}): one row per {what}, one column per bin", matrix_field)
    if not np.issubdtype(m.dtype, np.floating) or not np.all(np.isfinite(m)) or np.any(m < 0) or np.any(m > 1):
        raise bad("must hold finite probabilities in [0, 1]", matrix_field)


def write_unbinned_templates(path: str | os.PathLike, t: UnbinnedTemplates) -> None:
    """Check and write ``unbinned_templates.h5`` atomically, byte-identical on a rerun (no timestamps).

    Raises:
        InvalidData: see :func:`check_unbinned_templates` (naming ``path``).
    """
    import h5py

    check_unbinned_templates(t, path=path)
    opts = {"track_times": False}
    packed = {"compression": "gzip", "compression_opts": 4, "shuffle": True, **opts}
    with atomic_write(path) as tmp, h5py.File(tmp, "w", libver="earliest", track_order=False) as f:
        f.attrs["format"] = FORMAT
        f.attrs["format_version"] = FORMAT_VERSION
        f.attrs["smoothing_bins"] = float(t.smoothing_bins)
        f.attrs["description"] = (
            "fine (cS1 [phd], log10 cS2/phd) templates for an unbinned likelihood: shapes summing to 1 per row, "
            "flat bin index k = i_cs1 * n_log10cs2 + j_log10cs2; normalisations in the pyhf workspace"
        )
        f.create_dataset("cs1_edges_phd", data=np.asarray(t.cs1_edges, np.float64), **opts)
        f.create_dataset("log10_cs2_edges", data=np.asarray(t.log10_cs2_edges, np.float64), **opts)
        f.create_dataset("sample_names", data=np.array(list(t.sample_names), dtype=h5py.string_dtype("utf-8")), **opts)
        f.create_dataset("backgrounds", data=np.asarray(t.backgrounds, np.float64), **packed)
        f.create_dataset("masses_gev", data=np.asarray(t.masses_gev, np.float64), **opts)
        f.create_dataset("signal", data=np.asarray(t.signal, np.float64), **packed)
        f.create_dataset("observed_bins", data=np.asarray(t.observed_bins, np.int64), **opts)
        for name in _OPTIONAL_FLOAT_DATASETS:
            if getattr(t, name) is not None:
                value = np.asarray(getattr(t, name), np.float64)
                f.create_dataset(name, data=value, **(packed if value.ndim == 2 else opts))


def _frozen(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


def read_unbinned_templates(path: str | os.PathLike) -> UnbinnedTemplates:
    """Read and check ``unbinned_templates.h5``.

    Raises:
        InvalidData: naming ``path`` and the dataset or attribute at fault: no such file, not HDF5, another
            format or version, a missing dataset, and every check of :func:`check_unbinned_templates`.
    """
    import h5py

    path = str(path)
    if not Path(path).is_file():
        raise InvalidData("unbinned templates file not found", path=path)
    arrays = {}
    try:
        with h5py.File(path, "r") as f:
            fmt = f.attrs.get("format")
            fmt = fmt.decode() if isinstance(fmt, bytes) else fmt
            if fmt != FORMAT:
                raise InvalidData(
                    f"not an unbinned-templates file (format {fmt!r}, expected {FORMAT!r})", path=path, field="format"
                )
            version = f.attrs.get("format_version")
            if version != FORMAT_VERSION:
                raise InvalidData(
                    f"format version {version!r}, this dmpreserve reads {FORMAT_VERSION}",
                    path=path,
                    field="format_version",
                )
            if "smoothing_bins" not in f.attrs:
                raise InvalidData("missing attribute", path=path, field="smoothing_bins")
            smoothing = f.attrs["smoothing_bins"]
            for name in _DATASETS:
                if name not in f:
                    raise InvalidData("missing dataset", path=path, field=name)
                if not isinstance(f[name], h5py.Dataset):
                    raise InvalidData("not a dataset", path=path, field=name)
            optional = [name for name in _OPTIONAL_FLOAT_DATASETS if name in f]
            for name in optional:
                if not isinstance(f[name], h5py.Dataset):
                    raise InvalidData("not a dataset", path=path, field=name)
            for name in (*_FLOAT_DATASETS, *optional):
                if f[name].dtype.kind not in "fiu":
                    raise InvalidData(f"must hold numbers, not {f[name].dtype}", path=path, field=name)
                arrays[name] = np.asarray(f[name][()], np.float64)
            if f["observed_bins"].dtype.kind not in "iu":
                raise InvalidData(
                    f"must hold integers, not {f['observed_bins'].dtype}", path=path, field="observed_bins"
                )
            arrays["observed_bins"] = np.asarray(f["observed_bins"][()]).astype(np.int64)
            names = f["sample_names"]
            if names.ndim != 1 or h5py.check_string_dtype(names.dtype) is None:
                raise InvalidData("must be a 1D array of strings", path=path, field="sample_names")
            sample_names = tuple(names.asstr()[()])
    except InvalidData:
        raise
    except (OSError, KeyError, ValueError, TypeError, UnicodeDecodeError) as exc:
        raise InvalidData(f"not a readable HDF5 file ({type(exc).__name__}: {exc})", path=path) from None
    if np.ndim(smoothing) != 0 or np.asarray(smoothing).dtype.kind not in "fiu":
        raise InvalidData(f"{smoothing!r}: must be a number", path=path, field="smoothing_bins")
    if arrays["masses_gev"].ndim != 1:
        raise InvalidData(f"shape {arrays['masses_gev'].shape}: must be 1D", path=path, field="masses_gev")
    t = UnbinnedTemplates(
        cs1_edges=_frozen(arrays["cs1_edges_phd"]),
        log10_cs2_edges=_frozen(arrays["log10_cs2_edges"]),
        smoothing_bins=float(smoothing),
        sample_names=sample_names,
        backgrounds=_frozen(arrays["backgrounds"]),
        masses_gev=tuple(float(m) for m in arrays["masses_gev"]),
        signal=_frozen(arrays["signal"]),
        observed_bins=_frozen(arrays["observed_bins"]),
        **{name: _frozen(arrays[name]) for name in _OPTIONAL_FLOAT_DATASETS if name in arrays},
        path=path,
    )
    check_unbinned_templates(t, path=path)
    return t
