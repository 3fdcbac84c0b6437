"""The published limit curves the project reads (CI verification, ``dmpreserve plot-limits --published``).

One table, :data:`PUBLISHED`, names each curve: its file below the reference directory (the public
third-party data in ``../shared/reference/`` of the repository, see that folder's README; never copied
into the repository), the columns to read, the experiment, exposure and statistical convention stated in
plot legends, and the citation.  The CI verify stage (``make lz-ws2022``), the tests and
``docs/reinterpretation.md`` name the same files.

The reference directory is ``--reference-dir``, else the environment variable :data:`REFERENCE_DIR_ENV`,
else :data:`DEFAULT_REFERENCE_DIR` (relative to the working directory: the repository root, where the
configurations' ``../shared/reference/...`` paths are resolved too).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

#: Environment variable naming the reference directory.
REFERENCE_DIR_ENV = "DMPRESERVE_REFERENCE_DIR"
#: Reference directory when neither ``--reference-dir`` nor :data:`REFERENCE_DIR_ENV` is given.
DEFAULT_REFERENCE_DIR = "../shared/reference"


@dataclasses.dataclass(frozen=True, kw_only=True)
class PublishedCurve:
    """A published 90% CL SI WIMP-nucleon limit curve (masses in GeV/c^2, cross sections in cm^2).

    Attributes:
        name: Key of :data:`PUBLISHED` (``--published NAME``).
        file: Path below the reference directory.
        limit_column: Header of the limit column for files with a header row; None for header-less files
            (mass first, limit second), as :func:`dmpreserve.reinterpret.verify.read_curve` reads them.
        experiment: Experiment and data set, as the legend names it.
        exposure_t_yr: Exposure [t yr] stated by the publication or its data release.
        convention: The statistical convention of the curve (legend text).
        citation: Publication (and data source) to cite.
    """

    name: str
    file: str
    limit_column: str | None
    experiment: str
    exposure_t_yr: float
    convention: str
    citation: str

    def path(self, reference_dir: str | os.PathLike) -> Path:
        """The curve's file below ``reference_dir``."""
        return Path(reference_dir) / self.file


_CURVES = (
    PublishedCurve(
        name="xenon1t-2018",
        file="xenon1t_2018/xenon1t_1ty.csv",
        limit_column=None,  # header-less: mass [GeV], published limit [cm^2], then the sensitivity band
        experiment="XENON1T 2018",
        # 278.8 live days x 1.3 t fiducial mass (arXiv:1805.12562)
        exposure_t_yr=1.0,
        # at 6 GeV the published limit equals the -1 sigma sensitivity of the same file (2.49e-44 vs 2.47e-44)
        convention="power-constrained at -1σ (π_crit = 0.16)",
        citation="XENON Collaboration, PRL 121, 111302 (2018), arXiv:1805.12562; file from "
        "XENON1T/xenon1t_approximate_nuclear_recoil_likelihood (MIT)",
    ),
    PublishedCurve(
        name="lz-ws2022-unconstrained",
        file="lz_ws2022/LZ_2022_non-power-constrained.txt",
        limit_column=None,
        experiment="LZ WS2022",
        exposure_t_yr=0.9,  # 60 live days x 5.5 t (arXiv:2207.03764)
        convention="unconstrained",
        citation="LZ Collaboration, PRL 131, 041002 (2023), arXiv:2207.03764, Fig. 4; digitised by "
        "cajohare/DirectDetectionPlots",
    ),
    PublishedCurve(
        name="lz-ws2022-pcl",
        file="lz_ws2022/LZ_2022_power-constrained.txt",
        limit_column=None,
        experiment="LZ WS2022",
        exposure_t_yr=0.9,
        # flat at the median sensitivity from 34 to 42 GeV (docs/analyses.md, "Critical power")
        convention="power-constrained (π_crit = 0.5)",
        citation="LZ Collaboration, PRL 131, 041002 (2023), arXiv:2207.03764, Fig. 4; digitised by "
        "cajohare/DirectDetectionPlots",
    ),
    PublishedCurve(
        name="xenonnt-2026-light-dm",
        file="xenonnt_2026_light_dm/limits/sr2/xenonnt_2026_wimp_si.csv",
        limit_column="upper_limit",
        experiment="XENONnT 2026 light DM",
        # SR0 + SR1 + SR2 livetimes of the release's plot.ipynb, used there as exposures [t yr]
        exposure_t_yr=6.77,
        # below the median at 9 and 12 GeV, never below -1 sigma (docs/reinterpretation.md)
        convention="unconstrained or PCL at π_crit = 0.16 (not stated)",
        citation="XENON Collaboration, arXiv:2604.06002; data release XENONnT/cevns_data_release, "
        "Zenodo 10.5281/zenodo.20576156 (CC-BY-4.0)",
    ),
)

#: Named published curves: name -> :class:`PublishedCurve` (read-only).
PUBLISHED: Mapping[str, PublishedCurve] = MappingProxyType({c.name: c for c in _CURVES})


def reference_dir(explicit: str | os.PathLike | None = None) -> Path:
    """The reference directory: ``explicit``, else ``$DMPRESERVE_REFERENCE_DIR``, else ``../shared/reference``."""
    if explicit is not None:
        return Path(explicit)
    return Path(os.environ.get(REFERENCE_DIR_ENV) or DEFAULT_REFERENCE_DIR)
