"""The files passed between the steps: one module per file (mirroring ``schemas/``), each with its
frozen dataclass, its reader (schema + semantic checks, errors naming the file and field) and writer.

* :mod:`.reduced` -- reduced per-event data (Parquet + JSON sidecar): ``mdc`` -> ``select`` -> ...
* :mod:`.exposure` -- ``exposure.json`` (``select``)
* :mod:`.tables` -- ``cutflow.csv``, ``acceptance.csv`` (``select``)
* :mod:`.templates` -- ``templates.json`` (``backgrounds``)
* :mod:`.response` -- ``response_nr.json``, ``response_er.json`` (``signal``)
* :mod:`.signal_templates` -- ``signal.json`` (``signal``)
* :mod:`.likelihood` -- ``BkgOnly.json`` + ``patchset.json`` (``likelihood``; pyhf's formats)
* :mod:`.unbinned` -- ``unbinned_templates.h5`` (``unbinned-templates``; fine templates of ``likelihood.unbinned``)
* :mod:`.fit` -- ``fit.json`` (``fit``)
* :mod:`.limits` -- ``limits.csv`` (``limits``, ``reinterpret``)
"""
