"""Read and check a XENONnT binned template release (format of XENONnT/cevns_data_release, 2026).

The release (XENON Collaboration, arXiv:2604.06002, CC-BY-4.0, Zenodo 10.5281/zenodo.20576156) holds,
per science run ``<run>``:

* ``binning/<run>.yaml`` -- bin edges of the four observables (cS2, S2-shadow quantile, S1 BDT score,
  S2 BDT score), 3 bins each, 81 bins in all;
* ``data/<run>.csv`` -- the observed events (one row per event, the four observables);
* ``templates/<run>/ac/``, ``er/`` -- accidental-coincidence and ER templates [events/(t yr) per bin];
* ``templates/<run>/rg/..._tly_<a>_tqy_<b>.h5`` -- radiogenic-neutron templates [events/(t yr) per bin]
  on the 7 x 7 grid of light-yield (t_ly) and charge-yield (t_qy) nuisances, a, b in -3 ... 3;
* ``templates/<run>/mono/..._mono_<E>_cevns_tly_<a>_tqy_<b>.h5`` -- mono-energetic NR detection
  efficiency per bin (dimensionless) at NR energies E [keV] on the same grid.

Every template file is read with the collaboration's own reader,
``inference_interface.template_to_multihist(path, hist_name="template")`` (a ``multihist.Histdd``),
and checked: four axes whose edges equal the run's binning YAML, shape (3, 3, 3, 3), finite and
non-negative contents.  Mono-energetic templates must form a complete, evenly spaced energy grid with
every (t_ly, t_qy) grid point present.  Any problem raises :class:`~dmpreserve.errors.InvalidData`
naming the file and the field, before anything is written (the importer builds in memory).

Livetimes [t yr] are not in the release's data files; the defaults are the values of the release's
``plot.ipynb`` (``livetimes``), which multiplies the ``/t/y`` templates by them to get events.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from pathlib import Path

import inference_interface
import numpy as np

from dmpreserve.errors import InvalidData
from dmpreserve.files import load_yaml, read_csv, read_text

#: Livetimes [t yr] of the release's ``plot.ipynb`` (``livetimes`` dict; used as exposures there).
DEFAULT_LIVETIMES_T_YR = {"sr0": 1.174398, "sr1": 2.342593, "sr2": 3.249665}
#: Grid values of the yield nuisances t_ly and t_qy (file names ``tly_<a>_tqy_<b>``).
YIELD_GRID = (-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0)
#: Background components with one template per run (``templates/<run>/<c>/template_XENONnT_<run>_<c>_cevns.h5``).
FLAT_COMPONENTS = ("ac", "er")
N_AXES = 4
ENERGY_STEP_RTOL = 1e-6
#: Template and YAML edges must agree to this relative tolerance (the earlier release writes 1/3 as 0.33333333).
EDGE_RTOL = 1e-7
_MONO = re.compile(
    r"^template_XENONnT_(?P<run>\w+?)_mono_(?P<e>[0-9.]+)_cevns_tly_(?P<a>-?[0-9.]+)_tqy_(?P<b>-?[0-9.]+)\.h5$"
)


@dataclasses.dataclass(frozen=True)
class RunTemplates:
    """The templates and data of one science run (arrays flattened C-order over the 3x3x3x3 bins).

    Attributes:
        name: Run name (``sr0`` ...).
        livetime_t_yr: Exposure [t yr] the ``/t/y`` templates are multiplied by.
        edges: Bin edges of the four observables (binning YAML order).
        axis_names: The binning YAML's axis names.
        observed: Observed events per bin, shape (81,).
        ac, er: Templates [events/(t yr) per bin], shape (81,).
        rg: Neutron templates [events/(t yr) per bin], shape (7, 7, 81), index [t_ly, t_qy] on :data:`YIELD_GRID`.
        mono: Efficiency templates (dimensionless), shape (n_energies, 7, 7, 81).
    """

    name: str
    livetime_t_yr: float
    edges: tuple[np.ndarray, ...]
    axis_names: tuple[str, ...]
    observed: np.ndarray
    ac: np.ndarray
    er: np.ndarray
    rg: np.ndarray
    mono: np.ndarray


@dataclasses.dataclass(frozen=True)
class Release:
    """A checked template release: runs and the common mono-energetic NR energy grid [keV]."""

    path: str
    runs: tuple[RunTemplates, ...]
    mono_energies_kev: np.ndarray


def _edges_from_yaml(path: Path) -> tuple[tuple[str, ...], tuple[np.ndarray, ...]]:
    doc = load_yaml(read_text(path, "binning YAML"), path=path, what="binning YAML")
    if not isinstance(doc, dict) or len(doc) != N_AXES:
        raise InvalidData(f"expected a mapping of {N_AXES} axes to bin edges", path=path)
    edges = []
    for name, values in doc.items():
        try:
            e = np.asarray(values, dtype=float)
        except (TypeError, ValueError):
            raise InvalidData("bin edges must be numbers", path=path, field=str(name)) from None
        if e.ndim != 1 or len(e) < 2 or not np.all(np.isfinite(e)) or np.any(np.diff(e) <= 0):
            raise InvalidData("bin edges must be finite and strictly increasing", path=path, field=str(name))
        edges.append(e)
    return tuple(str(k) for k in doc), tuple(edges)


def read_template(path: Path, edges: tuple[np.ndarray, ...], binning_path: Path) -> np.ndarray:
    """One template via ``inference_interface.template_to_multihist``, checked, flattened (C order).

    Args:
        path: The ``.h5`` template file.
        edges: The run's bin edges (from its binning YAML).
        binning_path: The binning YAML (named in the error).

    Returns:
        Bin contents, shape (prod(n_bins),).

    Raises:
        InvalidData: unreadable file, binning different from the YAML, negative or non-finite bins.
    """
    if not path.is_file():
        raise InvalidData("template file not found", path=path)
    try:
        hist = inference_interface.template_to_multihist(str(path), hist_name="template")
        content = np.asarray(hist.histogram, dtype=float)
        bins = [np.asarray(b, dtype=float) for b in hist.bin_edges]
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise InvalidData(f"cannot read template: {exc}", path=path, field="templates/template") from None
    if len(bins) != len(edges):
        raise InvalidData(
            f"{len(bins)} axes, the binning YAML {binning_path} has {len(edges)}", path=path, field="bins"
        )
    for i, (b, e) in enumerate(zip(bins, edges)):
        if b.shape != e.shape or not np.allclose(b, e, rtol=EDGE_RTOL, atol=1e-12):
            raise InvalidData(
                f"bin edges {b.tolist()} differ from {binning_path} ({e.tolist()})", path=path, field=f"bins/{i}"
            )
    if content.shape != tuple(len(e) - 1 for e in edges):
        raise InvalidData(
            f"template shape {content.shape} does not match the binning", path=path, field="templates/template"
        )
    if not np.all(np.isfinite(content)):
        raise InvalidData("template has NaN or infinite bins", path=path, field="templates/template")
    if np.any(content < 0):
        raise InvalidData("template has negative bins", path=path, field="templates/template")
    return content.ravel()


def _observed(path: Path, names: tuple[str, ...], edges: tuple[np.ndarray, ...]) -> np.ndarray:
    cols = read_csv(path, required=names, what="observed events")
    try:
        x = np.column_stack([np.asarray([float(v) for v in cols[n]], dtype=float) for n in names])
    except ValueError:
        raise InvalidData("non-numeric observable", path=path) from None
    if len(x) and not np.all(np.isfinite(x)):
        raise InvalidData("non-finite observable", path=path)
    counts, _ = np.histogramdd(x.reshape(-1, len(names)), bins=list(edges))
    if counts.sum() != len(x):
        raise InvalidData(f"{len(x) - int(counts.sum())} events lie outside the binning", path=path)
    return counts.ravel()


def _mono_grid(directory: Path, run: str) -> np.ndarray:
    """The energies [keV] of the mono templates in ``directory``; checks completeness and even spacing."""
    if not directory.is_dir():
        raise InvalidData("mono-energetic template directory not found", path=directory)
    points: dict[str, set[tuple[float, float]]] = {}
    for p in directory.iterdir():
        m = _MONO.match(p.name)
        if m is None or m["run"] != run:
            continue
        points.setdefault(m["e"], set()).add((float(m["a"]), float(m["b"])))
    if len(points) < 2:
        raise InvalidData("fewer than two mono-energetic NR energies", path=directory, field="mono")
    full = {(a, b) for a in YIELD_GRID for b in YIELD_GRID}
    for e, have in sorted(points.items()):
        if have != full:
            missing = sorted(full - have)[:3]
            raise InvalidData(
                f"energy {e} keV lacks {len(full - have)} (t_ly, t_qy) grid points, e.g. {missing}",
                path=directory,
                field="mono",
            )
    energies = np.array(sorted(float(e) for e in points))
    steps = np.diff(energies)
    if np.any(np.abs(steps - steps[0]) > ENERGY_STEP_RTOL * energies[-1]):
        i = int(np.argmax(np.abs(steps - steps[0])))
        raise InvalidData(
            f"mono-energetic energies have a gap: {energies[i]:.3f} -> {energies[i + 1]:.3f} keV (step {steps[0]:.3f})",
            path=directory,
            field="mono",
        )
    return energies


def read_release(path: str | os.PathLike, livetimes_t_yr: dict[str, float] | None = None) -> Release:
    """Read and check a template release (everything in memory; nothing is written).

    Args:
        path: Release directory (``binning/``, ``data/``, ``templates/``).
        livetimes_t_yr: Run name -> livetime [t yr]; the runs to import, in this order
            (default :data:`DEFAULT_LIVETIMES_T_YR`).

    Returns:
        The :class:`Release`; templates in ``/t/y`` (mono: dimensionless).

    Raises:
        InvalidData: a run absent from the release, a template whose binning disagrees with the binning
            YAML, a negative or NaN template bin, gaps in the mono-energetic energies or grid -- naming
            the file and the field.
    """
    root = Path(path)
    lts = dict(DEFAULT_LIVETIMES_T_YR if livetimes_t_yr is None else livetimes_t_yr)
    if not lts:
        raise InvalidData("no science run to import", field="runs")
    runs, energies = [], None
    for run, lt in lts.items():
        if not (isinstance(lt, (int, float)) and math.isfinite(lt) and lt > 0):
            raise InvalidData(f"livetime must be a positive number of t yr, got {lt!r}", field=f"runs.{run}")
        binning = root / "binning" / f"{run}.yaml"
        tdir = root / "templates" / run
        for need in (binning, root / "data" / f"{run}.csv", tdir):
            if not need.exists():
                raise InvalidData(f"science run {run!r} is not in the release", path=need, field=f"runs.{run}")
        names, edges = _edges_from_yaml(binning)
        flat = {
            c: read_template(tdir / c / f"template_XENONnT_{run}_{c}_cevns.h5", edges, binning) for c in FLAT_COMPONENTS
        }
        e_run = _mono_grid(tdir / "mono", run)
        if energies is None:
            energies = e_run
        elif e_run.shape != energies.shape or not np.allclose(e_run, energies):
            raise InvalidData("mono-energetic energies differ from the first run's", path=tdir / "mono", field="mono")
        nb = int(np.prod([len(e) - 1 for e in edges]))
        rg = np.zeros((len(YIELD_GRID), len(YIELD_GRID), nb))
        mono = np.zeros((len(energies), len(YIELD_GRID), len(YIELD_GRID), nb))
        for i, a in enumerate(YIELD_GRID):
            for j, b in enumerate(YIELD_GRID):
                tag = f"tly_{a:.1f}_tqy_{b:.1f}"
                rg[i, j] = read_template(tdir / "rg" / f"template_XENONnT_{run}_rg_cevns_{tag}.h5", edges, binning)
                for k, e in enumerate(energies):
                    mono[k, i, j] = read_template(
                        tdir / "mono" / f"template_XENONnT_{run}_mono_{e:.3f}_cevns_{tag}.h5", edges, binning
                    )
        obs = _observed(root / "data" / f"{run}.csv", names, edges)
        runs.append(RunTemplates(run, float(lt), edges, names, obs, flat["ac"], flat["er"], rg, mono))
    return Release(str(root), tuple(runs), energies)
