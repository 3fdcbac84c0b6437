"""HEPData record of the WIMP search, built with hepdata-lib and checked with hepdata-validator.

:func:`write_submission` turns the result arrays (limit curve, observed events, background
templates, cut flow, signal efficiency) and the pyhf likelihood files into a HEPData submission
tarball.  hepdata-lib writes into the current working directory, so it is run inside a private
temporary directory; its files are then repacked into a deterministic ``tar.gz`` (sorted members,
zero mtimes/owners, no gzip timestamp), validated with :func:`validate_submission`, and only then
renamed into place.  Reruns on the same inputs give byte-identical tarballs.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import shutil
import stat
import tarfile
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath

import numpy as np

from dmpreserve.arrays import as_finite_array
from dmpreserve.artifacts.fit import FitResults
from dmpreserve.artifacts.limits import LimitTable
from dmpreserve.artifacts.reduced import ReducedData
from dmpreserve.artifacts.tables import Acceptance, CutFlow
from dmpreserve.artifacts.templates import BackgroundTemplates
from dmpreserve.artifacts.thresholds import ThresholdTable
from dmpreserve.errors import InvalidData
from dmpreserve.files import atomic_write, tar_gz_bytes
from dmpreserve.publish.hepdata_fit_tables import fit_tables
from dmpreserve.publish.hepdata_tables import (
    CLS_CONVENTION,
    PLR_CONVENTION,
    acceptance_table,
    background_table,
    check_background,
    check_keywords,
    check_limits,
    cutflow_table,
    events_table,
    limit_table,
    require,
    same_length,
    threshold_table,
)

#: File name of the likelihood archive attached as a HistFactory additional resource.
LIKELIHOOD_ARCHIVE = "Likelihoods.tar.gz"
#: File name of the HS3 likelihood attached as a resource of type HS3.
HS3_RESOURCE = "likelihood_hs3.json"
#: Limits applied when extracting an archive for validation.
MAX_MEMBER_BYTES = 100 * 1024 * 1024
MAX_TOTAL_BYTES = 1024 * 1024 * 1024
MAX_MEMBERS = 10_000
#: Largest additional resource attached with ``resources=`` (bytes), and the most resources.
MAX_RESOURCE_BYTES = 100 * 1024 * 1024
MAX_RESOURCES = 20
#: Characters allowed in the file name of an additional resource.
_RESOURCE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
#: Statistical conventions, stated in the likelihood README and its resource description.
STAT_CONVENTION = f"direct-detection convention: {PLR_CONVENTION}; LHC convention: {CLS_CONVENTION}"


# --------------------------------------------------------------------------------------------- archives
def _write_deterministic_tar_gz(dest: Path, members: Sequence[tuple[str, bytes]]) -> None:
    """Write ``members`` (name, bytes) as a reproducible tar.gz: sorted, mtime 0, root-owned, no gzip stamp."""
    names = [name for name, _ in members]
    if len(set(names)) != len(names):
        raise InvalidData(f"duplicate archive member names: {sorted(names)}", path=dest)
    dest.write_bytes(tar_gz_bytes(members))


def _likelihood_members(likelihood_files: Sequence[str | os.PathLike], description: str) -> list[tuple[str, bytes]]:
    if isinstance(likelihood_files, (str, bytes, os.PathLike)) or not likelihood_files:
        raise InvalidData("must be a non-empty list of file paths", field="likelihood_files")
    members, listing = [], []
    for entry in likelihood_files:
        path = Path(entry)
        if not path.is_file():
            raise InvalidData("likelihood file not found", path=path, field="likelihood_files")
        data = path.read_bytes()
        members.append((path.name, data))
        listing.append(f"  {path.name}  sha256={hashlib.sha256(data).hexdigest()}")
    readme = "\n".join(
        [
            "Full likelihood of the liquid-xenon WIMP search in the HistFactory JSON format (pyhf).",
            "",
            description.strip(),
            "",
            "BkgOnly.json is the background-only workspace; patchset.json holds one JSON patch per WIMP mass that",
            "adds the signal sample. Apply with: pyhf patchset apply BkgOnly.json patchset.json --name <patch>.",
            f"Limits: {STAT_CONVENTION}; signal strength mu scales the reference cross section.",
            "",
            "Files:",
            *sorted(listing),
            "",
        ]
    )
    members.append(("README.txt", readme.encode("utf-8")))
    return members


@contextlib.contextmanager
def _working_directory(path: Path):
    """Temporarily chdir into ``path`` (hepdata-lib writes its own tarball into the cwd)."""
    previous = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def _safe_extract(tar_path: Path, dest: Path) -> None:
    """Extract regular files only, refusing absolute/parent paths, links and oversized members."""
    try:
        tar = tarfile.open(tar_path, mode="r:*")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise InvalidData(f"not a readable tar archive ({exc})", path=tar_path) from None
    total = 0
    with tar:
        try:
            members = tar.getmembers()
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise InvalidData(f"corrupt tar archive ({exc})", path=tar_path) from None
        if len(members) > MAX_MEMBERS:
            raise InvalidData(f"archive has {len(members)} members, more than {MAX_MEMBERS}", path=tar_path)
        seen = set()
        for member in members:
            name = member.name
            pure = PurePosixPath(name)
            if name.startswith(("/", "\\")) or pure.is_absolute() or (len(name) > 1 and name[1] == ":"):
                raise InvalidData("absolute path in archive", path=tar_path, field=name)
            if ".." in pure.parts or "\\" in name:
                raise InvalidData("path escapes the archive root", path=tar_path, field=name)
            if member.isdir():
                continue
            if not member.isreg():
                raise InvalidData(
                    "archive member is not a regular file (link or special file)", path=tar_path, field=name
                )
            if member.size > MAX_MEMBER_BYTES:
                raise InvalidData(
                    f"member is {member.size} bytes, larger than {MAX_MEMBER_BYTES}", path=tar_path, field=name
                )
            total += member.size
            if total > MAX_TOTAL_BYTES:
                raise InvalidData(f"archive content exceeds {MAX_TOTAL_BYTES} bytes", path=tar_path, field=name)
            key = str(pure)
            if key in seen:
                raise InvalidData("duplicate archive member", path=tar_path, field=name)
            seen.add(key)
            target = dest.joinpath(*pure.parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            source = tar.extractfile(member)
            if source is None:
                raise InvalidData("archive member cannot be read", path=tar_path, field=name)
            with source, open(target, "wb") as out:
                shutil.copyfileobj(source, out, 1 << 20)
            if target.stat().st_size != member.size:
                raise InvalidData("archive member is truncated", path=tar_path, field=name)


def validate_submission(tar_path: str | os.PathLike) -> None:
    """Safely extract a HEPData submission tarball and run hepdata-validator's full validation on it.

    Args:
        tar_path: Path of the ``.tar.gz`` submission.

    Raises:
        InvalidData: Unsafe or corrupt archive (naming the member), no single ``submission.yaml``,
            or any validator message.
    """
    from hepdata_validator.full_submission_validator import FullSubmissionValidator

    tar_path = Path(tar_path)
    if not tar_path.is_file():
        raise InvalidData("submission archive not found", path=tar_path)
    with tempfile.TemporaryDirectory(prefix="dmpreserve-hepdata-check-") as tmp:
        root = Path(tmp)
        _safe_extract(tar_path, root)
        found = sorted(p for p in root.rglob("submission.yaml") if p.is_file())
        if len(found) != 1:
            raise InvalidData(f"expected exactly one submission.yaml, found {len(found)}", path=tar_path)
        validator = FullSubmissionValidator(autoload_remote_schemas=False)
        if not validator.validate(directory=str(found[0].parent)):
            lines = []
            for fname, messages in sorted(validator.get_messages().items()):
                rel = os.path.relpath(fname, root) if os.path.isabs(fname) else fname
                lines.extend(f"{rel}: {m.message}" for m in messages)
            raise InvalidData("HEPData validation failed:\n" + "\n".join(lines or ["(no message)"]), path=tar_path)


def _read_resources(resources, *, reserved: Sequence[str]) -> list[tuple[str, bytes, str]]:
    """Check and read the additional resources: ``[(file name, bytes, description)]``.

    Only regular files (not links, devices or directories) up to :data:`MAX_RESOURCE_BYTES` with a
    plain file name (letters, digits, ``._-``; not ``.yaml``, which would clash with the tables) are
    accepted; each is read once, so what is checked is what is attached.
    """
    if resources is None:
        return []
    if isinstance(resources, (str, bytes, os.PathLike)) or not isinstance(resources, Sequence):
        raise InvalidData("must be a list of (path, description) pairs", field="resources")
    if len(resources) > MAX_RESOURCES:
        raise InvalidData(f"{len(resources)} resources, at most {MAX_RESOURCES} allowed", field="resources")
    out, seen = [], set(reserved)
    for idx, entry in enumerate(resources):
        field = f"resources[{idx}]"
        if isinstance(entry, (str, bytes)) or not isinstance(entry, Sequence) or len(entry) != 2:
            raise InvalidData("each resource must be a (path, description) pair", field=field)
        path, description = Path(entry[0]), str(entry[1]).strip()
        if not description:
            raise InvalidData("resource description is empty", path=path, field=field)
        try:
            info = path.lstat()
        except OSError:
            raise InvalidData("resource file not found", path=path, field=field) from None
        if stat.S_ISLNK(info.st_mode):
            raise InvalidData("resource is a symbolic link; give the file itself", path=path, field=field)
        if not stat.S_ISREG(info.st_mode):
            raise InvalidData("resource is not a regular file", path=path, field=field)
        name = path.name
        if not _RESOURCE_NAME.fullmatch(name) or name.lower().endswith((".yaml", ".yml")):
            raise InvalidData(
                "resource file name must be letters, digits, '.', '_' or '-' (at most 128, not .yaml/.yml)",
                path=path,
                field=field,
            )
        if name in seen:
            raise InvalidData(
                f"resource file name {name!r} is used twice or clashes with the record", path=path, field=field
            )
        seen.add(name)
        with open(path, "rb") as fh:
            data = fh.read(MAX_RESOURCE_BYTES + 1)
        if len(data) > MAX_RESOURCE_BYTES:
            raise InvalidData(f"resource is larger than {MAX_RESOURCE_BYTES} bytes", path=path, field=field)
        out.append((name, data, description))
    return out


def write_submission(
    *,
    output_tar: str | os.PathLike,
    limits: Mapping[str, Sequence[float]],
    observed_events: Mapping[str, Sequence[float]],
    background: Mapping,
    cutflow: Mapping[str, Sequence],
    acceptance: Mapping[str, Sequence[float]],
    likelihood_files: Sequence[str | os.PathLike],
    metadata: Mapping,
    fit: Mapping | None = None,
    resources: Sequence[tuple[str | os.PathLike, str]] | None = None,
    thresholds: Mapping | None = None,
    hs3: str | os.PathLike | None = None,
) -> None:
    """Build, validate and atomically write a deterministic HEPData submission tarball.

    Args:
        output_tar: Destination ``.tar.gz``.
        limits: Columns of ``limits.csv``: required ``mass_gev``, ``limit_cm2`` (headline),
            ``expected_cm2``, ``expected_{m2,m1,p1,p2}sigma_cm2``; optional ``limit_unconstrained_cm2``,
            ``limit_cls_cm2``, ``expected_cls_{,m2sigma_,m1sigma_,p1sigma_,p2sigma_}cm2``,
            ``pcl_threshold_cm2``, ``neyman_threshold(_err)``, ``p0``, ``z0``, ``p0_toys``, ``z0_toys``
            (other columns are ignored); masses strictly increasing.
        observed_events: ``{"cs1_phd": [...], "log10_cs2": [...]}``, one entry per observed event.
        background: ``{"cs1_edges_phd", "log10_cs2_edges", "components": {name: 2D [n1][n2]},
            "observed": 2D [n1][n2] counts}`` (expected events per bin).
        cutflow: ``{"cut": [...], "events": [...], "efficiency_cumulative": [...]}``.
        acceptance: ``{"energy_low_kev", "energy_high_kev", "acceptance", "acceptance_err"}``.
        likelihood_files: pyhf files (``BkgOnly.json``, ``patchset.json``) packed into
            ``Likelihoods.tar.gz`` with a README and attached as a ``HistFactory`` resource.
        metadata: ``{"description": str, "comment": str, "keywords": {name: [values]}}``; the record
            comment is description + comment; keywords (``cmenergies``, ``observables``,
            ``reactions``, ``phrases``) are added to every table.
        fit: Optional fit results (``fit.json``, schema ``fit``), added as fit tables.
        thresholds: Optional Neyman threshold table (``threshold_table.json``), added as a numeric table.
        resources: Optional ``(path, description)`` pairs attached as additional resources
            (regular files only, at most :data:`MAX_RESOURCE_BYTES` each).
        hs3: Optional HS3 likelihood (:mod:`dmpreserve.publish.hs3`), attached as :data:`HS3_RESOURCE`
            with resource type ``HS3``.

    Raises:
        InvalidData: Inconsistent or non-finite input, missing likelihood file, unsafe resource, or a
            record that fails HEPData validation.  ``output_tar`` is then left untouched.
    """
    import hepdata_lib as hdl  # imported lazily: it registers global PyYAML representers on import

    if not isinstance(metadata, Mapping):
        raise InvalidData("must be a mapping", field="metadata")
    description = str(require(metadata, "description", "metadata"))
    comment = str(metadata.get("comment", ""))
    keywords = check_keywords(metadata)
    lim = check_limits(limits)
    cs1 = as_finite_array("observed_events.cs1_phd", require(observed_events, "cs1_phd", "observed_events"))
    log10_cs2 = as_finite_array("observed_events.log10_cs2", require(observed_events, "log10_cs2", "observed_events"))
    same_length("observed_events", {"cs1_phd": cs1, "log10_cs2": log10_cs2}, allow_empty=True)
    x, y, comps, observed = check_background(background)

    submission = hdl.Submission()
    submission.comment = "\n\n".join(part for part in (description.strip(), comment.strip()) if part)
    submission.add_table(limit_table(hdl, lim, keywords))
    submission.add_table(events_table(hdl, cs1, log10_cs2, keywords))
    submission.add_table(background_table(hdl, x, y, comps, observed, keywords))
    submission.add_table(cutflow_table(hdl, cutflow, keywords))
    submission.add_table(acceptance_table(hdl, acceptance, keywords))
    if thresholds is not None:
        submission.add_table(threshold_table(hdl, thresholds, keywords))
    if fit is not None:
        if not isinstance(fit, Mapping):
            raise InvalidData("must be the fit.json document (a mapping)", field="fit")
        for table in fit_tables(hdl, fit, keywords):
            submission.add_table(table)
    members_in = _likelihood_members(likelihood_files, description)
    extra = _read_resources(resources, reserved=(LIKELIHOOD_ARCHIVE, HS3_RESOURCE, "submission.yaml"))
    hs3_bytes = None if hs3 is None else _read_resources([(hs3, "HS3")], reserved=())[0][1]

    with tempfile.TemporaryDirectory(prefix="dmpreserve-hepdata-") as tmp:
        work = Path(tmp)
        (work / "resources").mkdir()
        likelihood_tar = work / "resources" / LIKELIHOOD_ARCHIVE
        _write_deterministic_tar_gz(likelihood_tar, members_in)
        submission.add_additional_resource(
            "Archive of the full likelihood in the HistFactory JSON (pyhf) format: background-only workspace "
            f"BkgOnly.json and signal patchset patchset.json (one patch per WIMP mass), with README.txt. "
            f"Limits: {STAT_CONVENTION}.",
            str(likelihood_tar),
            copy_file=True,
            file_type="HistFactory",
        )
        if hs3_bytes is not None:
            (work / "resources" / HS3_RESOURCE).write_bytes(hs3_bytes)
            submission.add_additional_resource(
                "The same likelihood in the HEP Statistics Serialization Standard (HS3 "
                "v0.2, written with pyhs3): background-only workspace plus the signal of the reference WIMP mass "
                "(misc.dmpreserve.patch); parameter names as in the pyhf workspace.",
                str(work / "resources" / HS3_RESOURCE),
                copy_file=True,
                file_type="HS3",
            )
        for name, data, text in extra:
            target = work / "resources" / name
            target.write_bytes(data)
            submission.add_additional_resource(text, str(target), copy_file=True)
        outdir = work / "submission"
        with _working_directory(work), contextlib.redirect_stdout(io.StringIO()):
            submission.create_files(outdir=str(outdir), validate=False, remove_old=True)
        members = [(p.name, p.read_bytes()) for p in sorted(outdir.iterdir()) if p.is_file()]
        with atomic_write(output_tar) as tmp_tar:
            _write_deterministic_tar_gz(Path(tmp_tar), members)
            validate_submission(tmp_tar)


def write_analysis_record(
    output_tar: str | os.PathLike,
    *,
    limits: LimitTable,
    templates: BackgroundTemplates,
    selected: ReducedData,
    cutflow: CutFlow,
    acceptance: Acceptance,
    likelihood_files: Sequence[str | os.PathLike],
    fit: FitResults | None = None,
    resources: Sequence[tuple[str | os.PathLike, str]] | None = None,
    thresholds: ThresholdTable | None = None,
    hs3: str | os.PathLike | None = None,
) -> None:
    """The pipeline's HEPData record from the steps' typed outputs (see :func:`write_submission`).

    Raises:
        InvalidData: as :func:`write_submission`; ``output_tar`` is then left untouched.
    """
    write_submission(
        output_tar=output_tar,
        limits=limits,
        observed_events={"cs1_phd": selected.columns["cs1_phd"], "log10_cs2": selected.variable("log10_cs2")},
        background={
            "cs1_edges_phd": list(templates.cs1_edges_phd),
            "log10_cs2_edges": list(templates.log10_cs2_edges),
            "components": {k: np.asarray(c.template) for k, c in templates.components.items()},
            "observed": np.asarray(templates.observed),
        },
        cutflow={
            "cut": list(cutflow.cuts),
            "events": np.asarray(cutflow.events, float),
            "efficiency_cumulative": np.asarray(cutflow.efficiency_cumulative),
        },
        acceptance={
            "energy_low_kev": acceptance.energy_low_kev,
            "energy_high_kev": acceptance.energy_high_kev,
            "acceptance": acceptance.acceptance,
            "acceptance_err": acceptance.acceptance_err,
        },
        likelihood_files=likelihood_files,
        fit=None if fit is None else fit.to_json(),
        resources=resources,
        hs3=hs3,
        thresholds=None
        if thresholds is None
        else {
            "cl": thresholds.cl,
            "signal_events": thresholds.signal_events,
            "shape_mass_gev": thresholds.shape_mass_gev,
            "shape_b_eff": thresholds.shape_b_eff,
            "thresholds": thresholds.thresholds,
            "errors": thresholds.errors,
        },
        metadata={
            "description": "Search for spin-independent WIMP-nucleon scattering in a liquid-xenon TPC "
            "(dmpreserve mock-data challenge modelled on LZ's first science run, "
            f"exposure {templates.exposure_t_yr:.4g} t yr).",
            "comment": "Produced by the dmpreserve preserved-analysis pipeline.",
        },
    )
