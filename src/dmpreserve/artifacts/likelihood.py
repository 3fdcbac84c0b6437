"""The serialized likelihood passed between steps: a pyhf workspace (``BkgOnly.json``) and patchset.

Both files are pyhf's own JSON formats (schema version 1.0.0), validated with pyhf's schemas plus the
checks pyhf itself skips (observation lengths, patches that apply, the workspace digest).  Their
builders live in :mod:`dmpreserve.stats.workspace`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jsonpatch
import jsonpointer
import pyhf

from dmpreserve.errors import InvalidWorkspace
from dmpreserve.files import read_json


def validate_workspace(spec: dict[str, Any], *, path: str | None = None) -> None:
    """Validate a workspace against pyhf's schema, raising :class:`InvalidWorkspace` with the JSON path."""
    _check_document(spec, "workspace", path=path)
    try:
        pyhf.schema.validate(spec, "workspace.json")
    except pyhf.exceptions.InvalidSpecification as exc:
        raise InvalidWorkspace(f"not a valid pyhf workspace: {exc}", path=path) from None
    channels = {c["name"]: (i, c) for i, c in enumerate(spec["channels"])}
    for k, obs in enumerate(spec["observations"]):  # pyhf itself accepts mismatched lengths silently
        if obs["name"] not in channels:
            raise InvalidWorkspace(
                "observation of a channel that does not exist", path=path, field=f"$.observations[{k}].name"
            )
        i, channel = channels[obs["name"]]
        for j, sample in enumerate(channel["samples"]):
            if len(sample["data"]) != len(obs["data"]):
                raise InvalidWorkspace(
                    f"sample has {len(sample['data'])} bins, its observation {len(obs['data'])}",
                    path=path,
                    field=f"$.channels[{i}].samples[{j}].data",
                )


def _check_document(spec: Any, what: str, *, path: str | None) -> None:
    """A JSON object of pyhf schema version 1.0.0 (pyhf fails with a traceback on other versions)."""
    if not isinstance(spec, dict):
        raise InvalidWorkspace(f"a pyhf {what} must be a JSON object", path=path, field="$")
    if spec.get("version") != "1.0.0":
        raise InvalidWorkspace(
            f"unsupported pyhf schema version {spec.get('version')!r} (1.0.0 expected)", path=path, field="$.version"
        )


def validate_patchset(
    spec: dict[str, Any], workspace: dict[str, Any] | None = None, *, path: str | None = None
) -> None:
    """Validate a patchset (schema, and digest against ``workspace`` if given)."""
    _check_document(spec, "patchset", path=path)
    try:
        ps = pyhf.PatchSet(spec)
    except (
        pyhf.exceptions.InvalidSpecification,
        pyhf.exceptions.InvalidPatchSet,
        jsonpatch.JsonPatchException,
        jsonpointer.JsonPointerException,
    ) as exc:
        raise InvalidWorkspace(f"not a valid pyhf patchset: {exc}", path=path) from None
    if workspace is not None:
        try:
            ps.verify(pyhf.Workspace(workspace))
        except pyhf.exceptions.PatchSetVerificationError as exc:
            raise InvalidWorkspace(
                f"patchset does not belong to this workspace: {exc}", path=path, field="$.metadata.digests"
            ) from None
        for i, p in enumerate(spec["patches"]):  # every patch must apply to the workspace
            try:
                jsonpatch.apply_patch(workspace, p["patch"])  # applies to a copy
            except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as exc:
                raise InvalidWorkspace(
                    f"patch does not apply to the workspace: {exc}", path=path, field=f"$.patches[{i}].patch"
                ) from None


@dataclasses.dataclass(frozen=True, kw_only=True)
class Likelihood:
    """A validated background-only workspace and its signal patchset (pyhf JSON documents)."""

    workspace: dict[str, Any]
    patchset: dict[str, Any] | None
    workspace_path: str
    patchset_path: str | None = None


def read_workspace(path: str) -> dict[str, Any]:
    """Read and validate a background-only pyhf workspace.

    Raises:
        InvalidWorkspace: naming ``path`` and the JSON path of the first problem.
    """
    ws = read_json(path, what="pyhf workspace")
    validate_workspace(ws, path=path)
    return ws


def read_likelihood(workspace: str, patchset: str | None) -> Likelihood:
    """Read the workspace and (if given) the patchset, validating the patchset against the workspace.

    Raises:
        InvalidWorkspace: naming the file and JSON path of the first problem.
    """
    ws = read_workspace(workspace)
    ps = None
    if patchset is not None:
        ps = read_json(patchset, what="pyhf patchset")
        validate_patchset(ps, ws, path=patchset)
    return Likelihood(
        workspace=ws,
        patchset=ps,
        workspace_path=str(workspace),
        patchset_path=None if patchset is None else str(patchset),
    )
