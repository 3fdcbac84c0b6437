"""A pipeline reinterpretation kit assembled from a chain's outputs, with asymptotic limits (SI model).

Shared by tests/unit/reinterpret/test_combine.py and benchmarks/check_combine_exposure.py.
"""

from __future__ import annotations

from pathlib import Path

from dmpreserve.artifacts.limits import LIMIT_COLUMNS
from dmpreserve.artifacts.response import read_line_response, read_response
from dmpreserve.artifacts.templates import read_templates
from dmpreserve.files import read_json, write_csv
from dmpreserve.physics.signal_models import load_model
from dmpreserve.reinterpret.kit import assemble_kit
from dmpreserve.stats.limits import compute_limits


def assemble_si_kit(
    kit: Path,
    *,
    config,
    workspace: Path,
    patchset: Path,
    templates: Path,
    response_nr: Path,
    response_er: Path,
    acceptance: Path,
    workdir: Path,
) -> Path:
    """Write the kit of one pipeline run into ``kit`` (no tarball); returns ``kit``.

    The limits (90% CL, the workspace's asymptotic limits of every patch) and the model file
    (``model: si``) are written into ``workdir`` first, then copied into the kit with the chain's files.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    model = workdir / "si.yaml"
    model.write_text("model: si\n")
    limits = compute_limits(read_json(workspace), read_json(patchset), cl=0.9, progress=False)
    write_csv(workdir / "limits.csv", LIMIT_COLUMNS, [[x.row()[k] for k in LIMIT_COLUMNS] for x in limits])
    assemble_kit(
        kit,
        tarball=None,
        config=config,
        model=load_model(model),
        templates=read_templates(templates),
        nr_response=read_response(response_nr),
        er_response=read_line_response(response_er),
        files={
            "BkgOnly.json": workspace,
            "response_nr.json": response_nr,
            "response_er.json": response_er,
            "efficiency.csv": acceptance,
            "limits.csv": workdir / "limits.csv",
            "signal_model.yaml": model,
        },
    )
    return kit
