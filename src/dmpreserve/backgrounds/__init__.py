"""Background estimation: the components declared in ``backgrounds.components`` as templates in
(cS1, log10 cS2) with expected counts, rate constraints and per-bin statistical uncertainties.

* :mod:`.spectra` -- recoil-energy spectra (flat, lines, CSV, built-in physics spectra)
* :mod:`.folding` -- spectra through the NEST NR response matrix and ER line response (``nest`` shapes)
* :mod:`.external` -- external templates (CSV, HDF5 in XENONnT's inference_interface format)
* :mod:`.datadriven` -- science sidebands (streamed), accidental coincidences, wall events
* :mod:`.model` -- the configured components, normalisations and constraints: :func:`estimate_backgrounds`
"""

from __future__ import annotations

import os

from dmpreserve.artifacts.templates import BackgroundTemplates
from dmpreserve.backgrounds.datadriven import ScienceRun, histogram, science_run
from dmpreserve.backgrounds.model import BackgroundInputs, build_component, estimate_backgrounds
from dmpreserve.files import write_csv

__all__ = [
    "BackgroundInputs",
    "ScienceRun",
    "build_component",
    "estimate_backgrounds",
    "histogram",
    "science_run",
    "write_summary",
]


def write_summary(path: str | os.PathLike, templates: BackgroundTemplates) -> None:
    """``summary.csv``: component, expected_events, uncertainty_events [events], constraint, method (sorted)."""
    write_csv(
        path,
        ("component", "expected_events", "uncertainty_events", "constraint", "method"),
        [
            (name, c.expected_events, c.uncertainty_events, c.constraint, c.method)
            for name, c in sorted(templates.components.items())
        ],
    )
