"""The serialized likelihood passed between steps: a pyhf workspace (``BkgOnly.json``) and patchset.

Both files are pyhf's own JSON formats (schema version 1.0.0), validated with pyhf's schemas plus the
checks pyhf itself skips (observation lengths, patches that apply, the workspace digest) and the
checks of what dmpreserve's statistics support (:func:`check_model`).  This is the one validation of a
likelihood: every reader (``fit``, ``limits``, ``limits-point``, ``hepdata``, ``reinterpret``'s kit,
the fast engine :func:`dmpreserve.stats.model.build_model`) runs it, so a bad likelihood gets the same
one-line error everywhere.  Their builders live in :mod:`dmpreserve.stats.workspace`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jsonpatch
import jsonpointer
import pyhf

from dmpreserve.errors import InvalidWorkspace
from dmpreserve.files import read_json


def validate_workspace(spec: dict[str, Any], *, path: str | None = None, engine: str = "fast") -> None:
    """Validate a workspace against pyhf's schema and :func:`check_model`.

    Args:
        spec: The workspace document.
        path: The file it came from (named in errors).
        engine: ``fast`` (dmpreserve.stats: normsys and the POI normfactor) or ``pyhf`` (limits computed
            with pyhf itself, as for imported template releases: also histosys).

    Raises:
        InvalidWorkspace: naming ``path`` and the JSON path of the first problem.
    """
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
    check_model(spec, path=path, engine=engine)


#: Modifier types each statistics engine supports (normsys: code4 interpolation; normfactor: the POI only;
#: histosys: pyhf's code4p, staterror and free background normfactors, for likelihoods whose limits pyhf computes).
SUPPORTED_MODIFIERS = {
    "fast": ("normsys", "normfactor"),
    "pyhf": ("normsys", "normfactor", "histosys", "staterror"),
}


def check_model(spec: dict[str, Any], *, path: str | None = None, signal: bool = False, engine: str = "fast") -> None:
    """What dmpreserve's statistics (fits, limits, toys) support, for a schema-valid workspace.

    * the first measurement's POI has finite bounds low < high, and no parameter is fixed;
    * modifiers are ``normsys`` with finite factors hi, lo > 0 (lo = 0 is common in converted ROOT
      workspaces and makes ln L undefined) or the POI's ``normfactor``;
    * sample yields and observations are finite and >= 0;
    * with ``signal`` (a workspace with a signal patch applied): some sample carries the POI and the
      signal samples expect more than zero events in total (a mass without sensitivity is refused).

    Raises:
        InvalidWorkspace: naming ``path`` and the JSON path of the first problem.
    """
    config = spec["measurements"][0]["config"]
    poi = config["poi"]
    for k, par in enumerate(config.get("parameters", [])):
        field = f"$.measurements[0].config.parameters[{k}]"
        if par.get("fixed"):
            raise InvalidWorkspace(f"fixed parameter {par['name']!r} is not supported", path=path, field=field)
        if par["name"] == poi and "bounds" in par:
            lo, hi = (float(b) for b in par["bounds"][0])
            if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
                raise InvalidWorkspace(
                    f"POI bounds must be finite with low < high, got {par['bounds'][0]}",
                    path=path,
                    field=field + ".bounds",
                )
    for k, obs in enumerate(spec["observations"]):
        _check_counts(obs["data"], path=path, field=f"$.observations[{k}].data")
    signal_events, has_poi = 0.0, False
    for i, channel in enumerate(spec["channels"]):
        for j, sample in enumerate(channel["samples"]):
            at = f"$.channels[{i}].samples[{j}]"
            _check_counts(sample["data"], path=path, field=at + ".data")
            for k, mod in enumerate(sample["modifiers"]):
                _check_modifier(mod, poi, path=path, field=f"{at}.modifiers[{k}]", engine=engine)
                if mod["type"] == "normfactor":
                    has_poi = True
                    signal_events += float(sum(sample["data"]))
    if signal and not has_poi:
        raise InvalidWorkspace(f"no sample carries the POI normfactor {poi!r}", path=path, field="$.channels")
    if signal and not signal_events > 0:
        raise InvalidWorkspace(
            "the signal expects no events at all: no sensitivity at this mass (such masses are refused; "
            "see docs/statistics.md)",
            path=path,
            field="$.channels",
        )


def _check_modifier(mod: dict[str, Any], poi: str, *, path: str | None, field: str, engine: str) -> None:
    kind = mod["type"]
    if kind not in SUPPORTED_MODIFIERS[engine]:
        raise InvalidWorkspace(
            f"modifier {mod['name']!r}: type {kind!r} is not supported by dmpreserve.stats (normsys and the POI "
            "normfactor are)"
            if engine == "fast"
            else f"modifier {mod['name']!r}: type {kind!r} is not supported (normsys, histosys and the POI "
            "normfactor are)",
            path=path,
            field=field + ".type",
        )
    if kind == "histosys":
        for side in ("hi_data", "lo_data"):
            _check_counts(mod["data"][side], path=path, field=f"{field}.data.{side}")
    if kind == "normfactor" and mod["name"] != poi and engine == "fast":
        raise InvalidWorkspace(
            f"normfactor {mod['name']!r} is not the POI {poi!r} (only the POI may be a normfactor)",
            path=path,
            field=field + ".name",
        )
    if kind == "normsys":
        for side in ("hi", "lo"):
            value = float(mod["data"][side])
            if not (math.isfinite(value) and value > 0):
                raise InvalidWorkspace(
                    f"normsys {mod['name']!r}: factor {side} must be positive and finite, got {value!r}",
                    path=path,
                    field=f"{field}.data.{side}",
                )


def _check_counts(data: list[Any], *, path: str | None, field: str) -> None:
    for b, value in enumerate(data):
        if not (math.isfinite(float(value)) and float(value) >= 0):
            raise InvalidWorkspace(f"bin {b}: must be finite and >= 0, got {value!r}", path=path, field=field)


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
        check_patches(workspace, spec["patches"], path=path)


def check_patches(workspace: dict[str, Any], patches: list[dict[str, Any]], *, path: str | None = None) -> None:
    """Every patch applies to ``workspace`` and the result passes :func:`check_model` with its signal.

    Raises:
        InvalidWorkspace: naming ``path`` (the patchset) and ``$.patches[i]``.
    """
    for i, p in enumerate(patches):  # every patch must apply to the workspace
        try:
            patched = jsonpatch.apply_patch(workspace, p["patch"])  # applies to a copy
        except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as exc:
            raise InvalidWorkspace(
                f"patch does not apply to the workspace: {exc}", path=path, field=f"$.patches[{i}].patch"
            ) from None
        try:
            check_model(patched, signal=True)
        except InvalidWorkspace as exc:
            raise InvalidWorkspace(
                f"patch {p['metadata']['name']!r} (values {p['metadata']['values']}) applied to the workspace: "
                f"{exc.field}: {exc.message}",
                path=path,
                field=f"$.patches[{i}]",
            ) from None
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            raise InvalidWorkspace(
                f"the patched workspace is not a valid pyhf workspace ({type(exc).__name__}: {exc})",
                path=path,
                field=f"$.patches[{i}].patch",
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
