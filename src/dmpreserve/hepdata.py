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
import gzip
import hashlib
import io
import os
import shutil
import tarfile
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath

import numpy as np

from dmpreserve.arrays import as_bin_edges, as_finite_array
from dmpreserve.errors import InvalidData
from dmpreserve.io import atomic_write

#: Statistical convention stated in every table description that carries limit information.
STAT_CONVENTION = "90% CL upper limit, asymptotic CLs with the q̃μ test statistic"
#: File name of the likelihood archive attached as a HistFactory additional resource.
LIKELIHOOD_ARCHIVE = "Likelihoods.tar.gz"
#: Keyword names the HEPData submission schema accepts.
ALLOWED_KEYWORDS = ("cmenergies", "observables", "reactions", "phrases")
#: Limits applied when extracting an archive for validation.
MAX_MEMBER_BYTES = 100 * 1024 * 1024
MAX_TOTAL_BYTES = 1024 * 1024 * 1024
MAX_MEMBERS = 10_000
#: Relative digits kept by hepdata-lib when writing values (it rounds to this many significant digits).
VALUE_DIGITS = 6

_LIMIT_COLUMNS = ("mass_gev", "limit_cm2", "expected_cm2", "expected_m2sigma_cm2", "expected_m1sigma_cm2",
                  "expected_p1sigma_cm2", "expected_p2sigma_cm2")


# --------------------------------------------------------------------------------------------- input checks
def _require(mapping: Mapping, key: str, what: str):
    if not isinstance(mapping, Mapping):
        raise InvalidData(f"{what} must be a mapping, got {type(mapping).__name__}", field=what)
    if key not in mapping:
        raise InvalidData(f"missing key {key!r}", field=f"{what}.{key}")
    return mapping[key]


def _same_length(what: str, arrays: Mapping[str, Sequence], *, allow_empty: bool = False) -> int:
    lengths = {k: len(v) for k, v in arrays.items()}
    if len(set(lengths.values())) != 1:
        raise InvalidData(f"columns differ in length: {lengths}", field=what)
    n = next(iter(lengths.values()))
    if n == 0 and not allow_empty:
        raise InvalidData("no rows", field=what)
    return n


def _check_limits(limits: Mapping) -> dict[str, np.ndarray]:
    cols = {c: as_finite_array(f"limits.{c}", _require(limits, c, "limits"), positive=True) for c in _LIMIT_COLUMNS}
    _same_length("limits", cols)
    order = [cols[c] for c in ("expected_m2sigma_cm2", "expected_m1sigma_cm2", "expected_cm2",
                               "expected_p1sigma_cm2", "expected_p2sigma_cm2")]
    for lo, hi in zip(order[:-1], order[1:]):
        if np.any(lo > hi * (1.0 + 1e-12)):
            raise InvalidData("expected band is not ordered -2σ ≤ -1σ ≤ median ≤ +1σ ≤ +2σ", field="limits")
    if np.any(np.diff(cols["mass_gev"]) <= 0):
        raise InvalidData("masses must be strictly increasing", field="limits.mass_gev")
    return cols


def _check_background(background: Mapping) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray], np.ndarray]:
    x = as_bin_edges("background.cs1_edges_phd", _require(background, "cs1_edges_phd", "background"))
    y = as_bin_edges("background.log10_cs2_edges", _require(background, "log10_cs2_edges", "background"))
    shape = (len(x) - 1, len(y) - 1)
    components = _require(background, "components", "background")
    if not isinstance(components, Mapping) or not components:
        raise InvalidData("must be a non-empty mapping of component name to 2D template",
                          field="background.components")
    comps = {}
    for name in sorted(components):
        arr = as_finite_array(f"background.components.{name}", components[name], ndim=2, nonnegative=True)
        if arr.shape != shape:
            raise InvalidData(f"shape {arr.shape} does not match the binning {shape}",
                              field=f"background.components.{name}")
        comps[str(name)] = arr
    observed = as_finite_array("background.observed", _require(background, "observed", "background"), ndim=2,
                      nonnegative=True)
    if observed.shape != shape:
        raise InvalidData(f"shape {observed.shape} does not match the binning {shape}", field="background.observed")
    if np.any(observed != np.round(observed)):
        raise InvalidData("observed counts must be integers", field="background.observed")
    return x, y, comps, observed


def _check_keywords(metadata: Mapping) -> dict[str, list]:
    keywords = metadata.get("keywords") or {}
    if not isinstance(keywords, Mapping):
        raise InvalidData("must be a mapping of keyword name to list of values", field="metadata.keywords")
    out = {}
    for name, values in keywords.items():
        if name not in ALLOWED_KEYWORDS:
            raise InvalidData(f"unknown HEPData keyword {name!r} (allowed: {', '.join(ALLOWED_KEYWORDS)})",
                              field="metadata.keywords")
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
            raise InvalidData("keyword values must be a list", field=f"metadata.keywords.{name}")
        out[name] = [v if isinstance(v, (int, float)) else str(v) for v in values]
    return out


# --------------------------------------------------------------------------------------------- tables
def _keywords(table, common: Mapping[str, list], observables: Sequence[str]) -> None:
    merged = {name: list(values) for name, values in common.items()}
    merged["observables"] = list(dict.fromkeys([*observables, *merged.get("observables", [])]))
    table.keywords = {name: merged[name] for name in sorted(merged) if merged[name]}


def _variable(hdl, name: str, *, units: str = "", values, independent: bool, binned: bool = False):
    var = hdl.Variable(name, is_independent=independent, is_binned=binned, units=units,
                       zero_uncertainties_warning=False)
    var.values = list(values)  # hepdata-lib tests `values` for truthiness: never hand it a numpy array
    var.digits = VALUE_DIGITS
    return var


def _limit_table(hdl, lim: Mapping[str, np.ndarray], keywords):
    table = hdl.Table("Limit curve")
    table.description = (
        "Upper limit on the spin-independent WIMP-nucleon cross section sigma_SI [cm^2] versus WIMP mass "
        f"[GeV/c^2]: {STAT_CONVENTION}. The expected limit is the median under the background-only "
        "hypothesis; its asymmetric uncertainties '1 sigma' and '2 sigma' are the signed offsets [cm^2] of "
        "the 68% and 95% expected bands from the median (minus <= 0 <= plus).")
    table.location = "Limit figure (results/limits/limits.csv)"
    _keywords(table, keywords, ["SIG"])
    table.add_variable(_variable(hdl, "WIMP mass", units="GeV", values=lim["mass_gev"].tolist(), independent=True))
    obs = _variable(hdl, "Observed upper limit on sigma_SI", units="cm$^{2}$", values=lim["limit_cm2"].tolist(),
                    independent=False)
    exp = _variable(hdl, "Expected (median) upper limit on sigma_SI", units="cm$^{2}$",
                    values=lim["expected_cm2"].tolist(), independent=False)
    for var in (obs, exp):
        var.add_qualifier("CL", "90%")
        var.add_qualifier("Method", "asymptotic CLs, q̃μ test statistic")
    median = lim["expected_cm2"]
    for label, lo, hi in (("1 sigma", "expected_m1sigma_cm2", "expected_p1sigma_cm2"),
                          ("2 sigma", "expected_m2sigma_cm2", "expected_p2sigma_cm2")):
        unc = hdl.Uncertainty(label, is_symmetric=False)
        unc.values = [(float(a - m), float(b - m)) for a, b, m in zip(lim[lo], lim[hi], median)]
        exp.add_uncertainty(unc)
    table.add_variable(obs)
    table.add_variable(exp)
    return table


def _events_table(hdl, cs1: np.ndarray, log10_cs2: np.ndarray, keywords):
    table = hdl.Table("Observed events")
    table.description = (
        "Observed science-run events in the final selection (all cuts, region of interest), one row per event: "
        "corrected S1 (cS1) in photons detected [phd] and log10 of the corrected S2 (cS2/phd). These events "
        f"enter the binned likelihood from which the {STAT_CONVENTION} is derived.")
    table.location = "Analysis-space figure"
    _keywords(table, keywords, ["N"])
    table.add_variable(_variable(hdl, "Event", values=list(range(1, len(cs1) + 1)), independent=True))
    table.add_variable(_variable(hdl, "cS1", units="phd", values=cs1.tolist(), independent=False))
    table.add_variable(_variable(hdl, "log10(cS2/phd)", values=log10_cs2.tolist(), independent=False))
    return table


def _background_table(hdl, x, y, comps, observed, keywords):
    table = hdl.Table("Background expectation")
    table.description = (
        "Expected background events per (cS1 [phd], log10(cS2/phd)) bin for each component, their total, and "
        "the observed event counts. Rows are ordered with the log10(cS2) bin running fastest (k = i_cS1 * n_cS2 "
        "+ j_log10cS2). These templates define the binned likelihood (attached in HistFactory JSON) used for "
        f"the {STAT_CONVENTION}.")
    table.location = "Analysis-space figure (results/backgrounds/templates.json)"
    _keywords(table, keywords, ["N"])
    n1, n2 = len(x) - 1, len(y) - 1
    ii, jj = np.meshgrid(np.arange(n1), np.arange(n2), indexing="ij")
    ii, jj = ii.ravel(), jj.ravel()
    table.add_variable(_variable(hdl, "cS1", units="phd", independent=True, binned=True,
                                 values=[(float(x[i]), float(x[i + 1])) for i in ii]))
    table.add_variable(_variable(hdl, "log10(cS2/phd)", independent=True, binned=True,
                                 values=[(float(y[j]), float(y[j + 1])) for j in jj]))
    for name, arr in comps.items():
        table.add_variable(_variable(hdl, f"Expected background: {name}", units="events",
                                     values=arr.ravel().tolist(), independent=False))
    total = np.sum(list(comps.values()), axis=0)
    table.add_variable(_variable(hdl, "Expected background: total", units="events", values=total.ravel().tolist(),
                                 independent=False))
    table.add_variable(_variable(hdl, "Observed events", units="events",
                                 values=[int(v) for v in observed.ravel()], independent=False))
    return table


def _cutflow_table(hdl, cutflow: Mapping, keywords):
    cuts = [str(c) for c in _require(cutflow, "cut", "cutflow")]
    events = as_finite_array("cutflow.events", _require(cutflow, "events", "cutflow"), nonnegative=True)
    eff = as_finite_array("cutflow.efficiency_cumulative", _require(cutflow, "efficiency_cumulative", "cutflow"),
                 nonnegative=True)
    _same_length("cutflow", {"cut": cuts, "events": events, "efficiency_cumulative": eff})
    if np.any(eff > 1.0 + 1e-12):
        raise InvalidData("cumulative efficiency must lie in [0, 1]", field="cutflow.efficiency_cumulative")
    table = hdl.Table("Cut flow")
    table.description = ("Events remaining after each selection cut, applied sequentially, and the cumulative "
                         "efficiency (fraction of the events before the first cut, dimensionless).")
    table.location = "Cut-flow figure (results/selection/cutflow.csv)"
    _keywords(table, keywords, ["N"])
    table.add_variable(_variable(hdl, "Cut", values=cuts, independent=True))
    counts = [int(v) if float(v).is_integer() else float(v) for v in events]
    table.add_variable(_variable(hdl, "Events after cut", units="events", values=counts, independent=False))
    table.add_variable(_variable(hdl, "Cumulative efficiency", values=eff.tolist(), independent=False))
    return table


def _acceptance_table(hdl, acceptance: Mapping, keywords):
    lo = as_finite_array("acceptance.energy_low_kev", _require(acceptance, "energy_low_kev", "acceptance"), nonnegative=True)
    hi = as_finite_array("acceptance.energy_high_kev", _require(acceptance, "energy_high_kev", "acceptance"))
    acc = as_finite_array("acceptance.acceptance", _require(acceptance, "acceptance", "acceptance"), nonnegative=True)
    err = as_finite_array("acceptance.acceptance_err", _require(acceptance, "acceptance_err", "acceptance"),
                 nonnegative=True)
    _same_length("acceptance", {"energy_low_kev": lo, "energy_high_kev": hi, "acceptance": acc,
                                "acceptance_err": err})
    if np.any(hi <= lo):
        raise InvalidData("each energy bin needs energy_high_kev > energy_low_kev", field="acceptance")
    if np.any(acc > 1.0 + 1e-12):
        raise InvalidData("acceptance must lie in [0, 1]", field="acceptance.acceptance")
    table = hdl.Table("Signal efficiency")
    table.description = ("Signal acceptance (fraction of nuclear-recoil signal events passing all cuts, including "
                         "the region of interest) versus true nuclear-recoil energy [keV_nr]; the uncertainty is "
                         "the Monte Carlo statistical (binomial) 1-sigma uncertainty.")
    table.location = "Acceptance figure (results/selection/acceptance.csv)"
    _keywords(table, keywords, ["EFF"])
    table.add_variable(_variable(hdl, "True nuclear-recoil energy", units="keV", independent=True, binned=True,
                                 values=list(zip(lo.tolist(), hi.tolist()))))
    var = _variable(hdl, "Signal acceptance", values=acc.tolist(), independent=False)
    unc = hdl.Uncertainty("MC stat.", is_symmetric=True)
    unc.values = err.tolist()
    var.add_uncertainty(unc)
    table.add_variable(var)
    return table


# --------------------------------------------------------------------------------------------- archives
def _write_deterministic_tar_gz(dest: Path, members: Sequence[tuple[str, bytes]]) -> None:
    """Write ``members`` (name, bytes) as a reproducible tar.gz: sorted, mtime 0, root-owned, no gzip stamp."""
    names = [name for name, _ in members]
    if len(set(names)) != len(names):
        raise InvalidData(f"duplicate archive member names: {sorted(names)}", path=dest)
    with open(dest, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz:
            with tarfile.open(fileobj=gz, mode="w", format=tarfile.USTAR_FORMAT) as tar:
                for name, data in sorted(members):
                    info = tarfile.TarInfo(name)
                    info.size = len(data)
                    info.mtime = 0
                    info.mode = 0o644
                    info.uid = info.gid = 0
                    info.uname = info.gname = ""
                    info.type = tarfile.REGTYPE
                    tar.addfile(info, io.BytesIO(data))


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
    readme = "\n".join([
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
    ])
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
                raise InvalidData("archive member is not a regular file (link or special file)",
                                  path=tar_path, field=name)
            if member.size > MAX_MEMBER_BYTES:
                raise InvalidData(f"member is {member.size} bytes, larger than {MAX_MEMBER_BYTES}",
                                  path=tar_path, field=name)
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
) -> None:
    """Build, validate and atomically write a deterministic HEPData submission tarball.

    Args:
        output_tar: Destination ``.tar.gz``.
        limits: Columns of ``limits.csv`` (``mass_gev``, ``limit_cm2``, ``expected_cm2``,
            ``expected_{m2,m1,p1,p2}sigma_cm2``); masses strictly increasing.
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

    Raises:
        InvalidData: Inconsistent or non-finite input, missing likelihood file, or a record that
            fails HEPData validation.  ``output_tar`` is then left untouched.
    """
    import hepdata_lib as hdl  # imported lazily: it registers global PyYAML representers on import

    if not isinstance(metadata, Mapping):
        raise InvalidData("must be a mapping", field="metadata")
    description = str(_require(metadata, "description", "metadata"))
    comment = str(metadata.get("comment", ""))
    keywords = _check_keywords(metadata)
    lim = _check_limits(limits)
    cs1 = as_finite_array("observed_events.cs1_phd", _require(observed_events, "cs1_phd", "observed_events"))
    log10_cs2 = as_finite_array("observed_events.log10_cs2", _require(observed_events, "log10_cs2", "observed_events"))
    _same_length("observed_events", {"cs1_phd": cs1, "log10_cs2": log10_cs2}, allow_empty=True)
    x, y, comps, observed = _check_background(background)

    submission = hdl.Submission()
    submission.comment = "\n\n".join(part for part in (description.strip(), comment.strip()) if part)
    submission.add_table(_limit_table(hdl, lim, keywords))
    submission.add_table(_events_table(hdl, cs1, log10_cs2, keywords))
    submission.add_table(_background_table(hdl, x, y, comps, observed, keywords))
    submission.add_table(_cutflow_table(hdl, cutflow, keywords))
    submission.add_table(_acceptance_table(hdl, acceptance, keywords))
    members_in = _likelihood_members(likelihood_files, description)

    with tempfile.TemporaryDirectory(prefix="dmpreserve-hepdata-") as tmp:
        work = Path(tmp)
        (work / "resources").mkdir()
        likelihood_tar = work / "resources" / LIKELIHOOD_ARCHIVE
        _write_deterministic_tar_gz(likelihood_tar, members_in)
        submission.add_additional_resource(
            "Archive of the full likelihood in the HistFactory JSON (pyhf) format: background-only workspace "
            f"BkgOnly.json and signal patchset patchset.json (one patch per WIMP mass), with README.txt. "
            f"Limits: {STAT_CONVENTION}.",
            str(likelihood_tar), copy_file=True, file_type="HistFactory")
        outdir = work / "submission"
        with _working_directory(work), contextlib.redirect_stdout(io.StringIO()):
            submission.create_files(outdir=str(outdir), validate=False, remove_old=True)
        members = [(p.name, p.read_bytes()) for p in sorted(outdir.iterdir()) if p.is_file()]
        with atomic_write(output_tar) as tmp_tar:
            _write_deterministic_tar_gz(Path(tmp_tar), members)
            validate_submission(tmp_tar)
