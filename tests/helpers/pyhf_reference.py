"""The pipeline's likelihood for checks against pyhf's own fits: without the ``staterror`` modifiers.

pyhf's SLSQP fits of the pipeline workspace take minutes with one staterror gamma per bin (about a hundred in
the test configuration), so the checks of the limit machinery against pyhf's calculators (CLs, t~mu, p-values,
toys) use the same workspace and patchset with the staterror modifiers removed, on both sides.  The engine's
staterror itself is checked against pyhf on small workspaces (tests/unit/stats/test_engine_modifiers.py,
test_fit_staterror.py).
"""

from __future__ import annotations

import copy
from typing import Any

import pyhf
import pytest

from dmpreserve.stats.model import without_staterror

__all__ = ["patchset_for", "without_staterror", "without_staterror_fixtures"]


def patchset_for(patchset: dict[str, Any], workspace: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``patchset`` whose digest is that of ``workspace`` (e.g. :func:`without_staterror`'s)."""
    out = copy.deepcopy(patchset)
    out["metadata"]["digests"] = {"sha256": pyhf.utils.digest(workspace, algorithm="sha256")}
    return out


def without_staterror_fixtures():
    """``(workspace, patchset)`` module fixtures overriding the conftest's: the pipeline's likelihood without
    staterror, for a test module that compares with pyhf's own fits (``workspace, patchset =
    without_staterror_fixtures()`` at module level)."""

    @pytest.fixture(scope="module")
    def workspace(workspace):
        return without_staterror(workspace)

    @pytest.fixture(scope="module")
    def patchset(patchset, workspace):
        return patchset_for(patchset, workspace)

    return workspace, patchset
