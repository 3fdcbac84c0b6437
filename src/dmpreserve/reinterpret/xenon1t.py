"""Binwise approximate NR likelihood backend (XENON1T 2018 one-tonne-year release format).

Reads the files of the XENON Collaboration's public release
``XENON1T/xenon1t_approximate_nuclear_recoil_likelihood`` (``xe_likelihood/data/xe1t_nr_1ty_result/``;
cite arXiv:1805.12562 and arXiv:2210.07231):

* ``XENON1T_binwise_NR_MM.json`` -- migration matrix M[t][r]: probability that a recoil in true-energy
  bin t (``Xedges``, keV) is reconstructed in energy bin r (``Yedges``, keV), efficiency and exposure
  included (a spectrum in events/(t yr keV) integrated over a true bin, times M, gives events);
* ``XENON1T_binwise_NR_LL.json`` -- per reconstructed bin r, the binwise likelihood lambda_r(s) on a grid
  of signal expectations s (``Yedges`` bin centres, 0 to 3 events), in -2 ln L units;
* ``threshold_using_lines_90pct.json`` -- toy-MC Neyman threshold on the likelihood ratio versus the total
  signal expectation (``X``/``Y``); beyond the table the asymptotic chi2(1) 90% quantile 2.706.

Method (as the release's ``BinwiseInference``): fold the spectrum, s_r(x) = x * sum_t N_t M[t][r]; the
likelihood ratio is LLR(x) = sum_r lambda_r(s_r(x)) - min_x' (same); the 90% upper limit is the smallest
x above the best fit where LLR(x) = threshold(x * sum_r s_r(1)).  The limit on sigma is x times the
spectrum's cross section.  The files are read from where the user downloaded them; none is shipped.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
from scipy.optimize import brentq

from dmpreserve.errors import InvalidData
from dmpreserve.files import read_json
from dmpreserve.signals import counts_per_energy_bin

MM_FILE = "XENON1T_binwise_NR_MM.json"
LL_FILE = "XENON1T_binwise_NR_LL.json"
THRESHOLD_FILE = "threshold_using_lines_90pct.json"
ASYMPTOTIC_THRESHOLD_90 = 2.705543454095404  # chi2(1).isf(0.1)
#: Masses of the published XENON1T 2018 curve [GeV] (the default grid of a model without one).
PUBLISHED_MASSES_GEV = (
    6.0,
    8.0,
    9.0,
    10.0,
    15.0,
    20.0,
    30.0,
    40.0,
    50.0,
    70.0,
    100.0,
    150.0,
    200.0,
    400.0,
    1000.0,
    10000.0,
)


def is_binwise_release(path: str | os.PathLike) -> bool:
    """True if ``path`` is a directory holding the binwise release files."""
    p = Path(path)
    return p.is_dir() and (p / MM_FILE).is_file() and (p / LL_FILE).is_file()


def _edges(doc: dict, key: str, path: Path) -> np.ndarray:
    try:
        e = doc[key]
        edges = np.linspace(float(e["low_edge"]), float(e["high_edge"]), int(e["N"]))
    except (KeyError, TypeError, ValueError):
        raise InvalidData("missing or malformed bin edges", path=path, field=key) from None
    if len(edges) < 2 or not np.all(np.isfinite(edges)):
        raise InvalidData("need at least two finite edges", path=path, field=key)
    return edges


def _matrix(doc: dict, path: Path, shape: tuple[int, int]) -> np.ndarray:
    try:
        z = np.asarray(doc["Z"]["Data"]["0"], dtype=float)
    except (KeyError, TypeError, ValueError):
        raise InvalidData("missing or non-numeric matrix", path=path, field="Z.Data.0") from None
    if z.shape != shape:
        raise InvalidData(f"matrix has shape {z.shape}, the edges imply {shape}", path=path, field="Z.Data.0")
    if not np.all(np.isfinite(z)):
        raise InvalidData("matrix has non-finite entries", path=path, field="Z.Data.0")
    return z


@dataclasses.dataclass(frozen=True)
class BinwiseLikelihood:
    """A binwise approximate likelihood (arrays read-only by convention)."""

    true_edges_kev: np.ndarray
    reco_edges_kev: np.ndarray
    migration: np.ndarray  # [true][reco]
    signal_grid: np.ndarray  # expected signal events per bin
    ll: np.ndarray  # [reco][signal_grid], -2 ln L
    threshold_x: np.ndarray | None
    threshold_y: np.ndarray | None

    def fold(self, rate, *, breakpoints_kev: np.ndarray | None = None) -> np.ndarray:
        """Expected signal per reconstructed bin for dR/dE ``rate`` [events/(t yr keV)] (release exposure).

        ``breakpoints_kev``: kinks of the spectrum, where the bin integrals are split.
        """
        return (
            counts_per_energy_bin(self.true_edges_kev, rate=rate, exposure_t_yr=1.0, breakpoints_kev=breakpoints_kev)
            @ self.migration
        )

    def llr(self, x: np.ndarray, s_reco: np.ndarray) -> np.ndarray:
        """sum_r lambda_r(x s_r) for signal multiples ``x`` (inf beyond the tabulated signal range)."""
        x = np.atleast_1d(np.asarray(x, float))
        total = np.zeros(len(x))
        for r, s in enumerate(s_reco):
            total += np.interp(x * s, self.signal_grid, self.ll[r], right=np.inf)
        return total

    def threshold(self, total_signal: np.ndarray, *, asymptotic: bool = False) -> np.ndarray:
        """Critical value of the likelihood ratio at total signal expectations ``total_signal``."""
        t = np.asarray(total_signal, float)
        if asymptotic or self.threshold_x is None:
            return np.full(t.shape, ASYMPTOTIC_THRESHOLD_90)
        return np.interp(t, self.threshold_x, self.threshold_y, right=ASYMPTOTIC_THRESHOLD_90)

    def upper_limit(self, s_reco: np.ndarray, *, asymptotic: bool = False, grid_points: int = 4000) -> float:
        """90% CL upper limit on the signal multiple x of ``s_reco`` (signal per reconstructed bin at x = 1)."""
        s_reco = np.asarray(s_reco, float)
        s_max = float(s_reco.max())
        if s_max <= 0:
            raise InvalidData("the spectrum gives no signal in the analysis bins", field="spectrum")
        x_max = float(self.signal_grid[-1]) / s_max
        xs = np.linspace(0.0, x_max, grid_points)
        llr = self.llr(xs, s_reco)
        i_min = int(np.argmin(llr))
        ll_min = float(llr[i_min])
        mutot = float(s_reco.sum())

        def g(x: float) -> float:
            return float(self.llr(x, s_reco)[0] - ll_min - self.threshold(x * mutot, asymptotic=asymptotic))

        gs = llr - ll_min - self.threshold(xs * mutot, asymptotic=asymptotic)
        above = np.nonzero(gs[i_min:] > 0)[0]
        if len(above) == 0:
            raise InvalidData(
                "limit lies beyond the tabulated signal range of the binwise likelihood", field="spectrum"
            )
        j = i_min + int(above[0])
        if j == 0:
            return 0.0
        return float(brentq(g, xs[j - 1], xs[j], xtol=1e-12 * x_max, rtol=1e-10))


def load_binwise(directory: str | os.PathLike) -> BinwiseLikelihood:
    """Read and check the binwise release files in ``directory``.

    Raises:
        InvalidData: missing files, malformed or inconsistent binning (naming file and field).
    """
    d = Path(directory)
    mm_path, ll_path, th_path = d / MM_FILE, d / LL_FILE, d / THRESHOLD_FILE
    mm = read_json(mm_path, what="binwise migration matrix")
    ll = read_json(ll_path, what="binwise likelihood")
    true_edges, reco_edges = _edges(mm, "Xedges", mm_path), _edges(mm, "Yedges", mm_path)
    migration = _matrix(mm, mm_path, (len(true_edges) - 1, len(reco_edges) - 1))
    ll_reco, sig_edges = _edges(ll, "Xedges", ll_path), _edges(ll, "Yedges", ll_path)
    if not np.allclose(ll_reco, reco_edges):
        raise InvalidData("reconstructed-energy bins differ from the migration matrix's", path=ll_path, field="Xedges")
    lam = _matrix(ll, ll_path, (len(ll_reco) - 1, len(sig_edges) - 1))
    grid = 0.5 * (sig_edges[1:] + sig_edges[:-1])
    tx = ty = None
    if th_path.is_file():
        th = read_json(th_path, what="Neyman threshold")
        try:
            tx, ty = np.asarray(th["X"]["Data"], float), np.asarray(th["Y"]["Data"], float)
        except (KeyError, TypeError, ValueError):
            raise InvalidData("missing or non-numeric threshold table", path=th_path, field="X.Data/Y.Data") from None
        if tx.shape != ty.shape or tx.ndim != 1 or len(tx) < 2 or np.any(np.diff(tx) <= 0):
            raise InvalidData(
                "threshold table must be two equal-length columns, X increasing", path=th_path, field="X.Data"
            )
    return BinwiseLikelihood(true_edges, reco_edges, migration, grid, lam, tx, ty)
