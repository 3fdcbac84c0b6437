"""pyhf's own model of a workspace + patch: the reference that dmpreserve.stats is validated against."""

from __future__ import annotations

from typing import Any

import pyhf


def modifier_settings() -> dict[str, dict[str, str]]:
    """pyhf interpolation codes of this project's likelihood (normsys code4), a fresh dict."""
    return {"normsys": {"interpcode": "code4"}, "histosys": {"interpcode": "code4p"}}


def pyhf_model_and_data(workspace: dict[str, Any], patch: dict[str, Any]) -> tuple[Any, Any]:
    """The pyhf model (numpy backend as currently set) of the patched workspace, and its data with auxdata."""
    ws = pyhf.Workspace(workspace)
    model = ws.model(patches=[pyhf.patchset.Patch(patch)], modifier_settings=modifier_settings())
    return model, ws.data(model)
