"""Helpers shared by the reliability tests (reproducibility, crash safety, network): run the workflow
in a temporary copy of the tree and compare result trees byte for byte.

Not a test module (no ``test_`` prefix); imported by ``test_reproducibility.py`` and
``test_crash_safety.py``.  The clean reference run is memoised on disk in the session's temporary
directory (under a file lock: the xdist workers of one session share it; no module-level state).  Where
``DMP_REFERENCE_RUN`` names a directory (``.ci/run`` sets it), the run is made there once, stamped with a
digest of the code and configuration it ran, and the later CI stages take it as their reference instead of
running the workflow again (``python tests/helpers/reliability_support.py reference-run`` prints its path,
making it first if needed).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from filelock import FileLock

REPO = Path(__file__).resolve().parents[2]
CONFIG = "tests/data/test_config.yaml"

#: Result files that legitimately differ between runs: logs (timings, progress bars, paths) and
#: provenance.json (compared separately, see :func:`provenance_differences`).
NOT_COMPARED = ("logs/", "provenance.json")
#: Top-level provenance keys that say when and where a run happened; the only ones allowed to differ.
PROVENANCE_WHEN_WHERE = ("runtime", "git_commit")


def env() -> dict[str, str]:
    """Environment for the workflow: this interpreter's ``dmpreserve`` first on PATH, Agg backend."""
    out = dict(os.environ)
    out["PATH"] = str(Path(sys.executable).parent) + os.pathsep + out.get("PATH", "")
    out["PYTHONPATH"] = str(REPO / "src") + os.pathsep + out.get("PYTHONPATH", "")
    out["MPLBACKEND"] = "Agg"
    out.pop("SLURM_JOB_ID", None)
    return out


def copy_workflow(dest: Path) -> Path:
    """Copy what the workflow needs (Snakefile, workflow/, schemas/, tests/data/) into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    for item in ("Snakefile", "workflow", "schemas", "tests/data"):
        src, dst = REPO / item, dest / item
        if src.is_dir():
            shutil.copytree(src, dst)
        else:
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, dst)
    return dest


def snakemake_argv(*args: str, cores: int = 2) -> list[str]:
    """The Snakemake command line on the test configuration."""
    exe = shutil.which("snakemake", path=str(Path(sys.executable).parent)) or "snakemake"
    return [exe, *args, "--cores", str(cores), "--configfile", CONFIG]


def offline_prefix() -> list[str]:
    """``["unshare", "-rn"]`` where a network-less namespace can be made here, else ``[]``."""
    exe = shutil.which("unshare")
    if exe is None:
        return []
    try:
        ok = subprocess.run([exe, "-rn", "true"], capture_output=True, timeout=30, check=False).returncode == 0
    except OSError:
        return []
    return [exe, "-rn"] if ok else []


def run_snakemake(work: Path, *args: str, timeout: int = 1200, offline: bool = False) -> subprocess.CompletedProcess:
    """Run Snakemake in ``work`` (with ``offline``: under ``unshare -rn`` where possible); raise with the
    tail of its log if it fails."""
    prefix = offline_prefix() if offline else []
    proc = subprocess.run(
        [*prefix, *snakemake_argv(*args)],
        cwd=work,
        env=env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed in {work}:\n{proc.stderr[-4000:]}")
    return proc


def tree_digest() -> str:
    """sha256 over the names and bytes of everything a run of the test configuration depends on (the package
    source, Snakefile, workflow/, schemas/, tests/data/), so that a reference run is never reused for other code."""
    digest = hashlib.sha256()
    for item in ("src/dmpreserve", "Snakefile", "workflow", "schemas", "tests/data"):
        root = REPO / item
        files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
        for path in files:
            if "__pycache__" in path.parts:
                continue
            digest.update(path.relative_to(REPO).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _reference_dir(tmp_path_factory, name: str) -> Path:
    shared = os.environ.get("DMP_REFERENCE_RUN")
    if shared and name == "clean_run":
        return Path(shared)
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):  # the session's root, shared by all its workers
        base = base.parent
    return base / name


def make_reference(work: Path) -> Path:
    """A complete uninterrupted run of the test configuration in ``work``, unless one of this tree is there."""
    work.parent.mkdir(parents=True, exist_ok=True)
    stamp, want = work / "RUN_COMPLETE", tree_digest()
    with FileLock(f"{work}.lock"):
        if stamp.is_file() and stamp.read_text(encoding="utf-8").strip() == want:
            return work
        if work.exists():
            shutil.rmtree(work)
        copy_workflow(work)
        run_snakemake(work)
        stamp.write_text(want + "\n", encoding="utf-8")
    return work


def clean_run(tmp_path_factory, name: str = "clean_run") -> Path:
    """A complete uninterrupted run in a fresh copy, made once per pytest session (all its workers) or, with
    ``DMP_REFERENCE_RUN``, once for all CI stages.  Read it; never change it (copy it first)."""
    return make_reference(_reference_dir(tmp_path_factory, name))


def result_files(work: Path) -> dict[str, Path]:
    """Relative path -> file for every compared result file under ``work/results``."""
    root = work / "results"
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and not any(rel == n or rel.startswith(n) for n in NOT_COMPARED):
            out[rel] = path
    return out


def tree_differences(a: Path, b: Path) -> list[str]:
    """Human-readable differences between the compared result files of two runs (empty: identical)."""
    fa, fb = result_files(a), result_files(b)
    out = [f"only in {a}: {rel}" for rel in sorted(set(fa) - set(fb))]
    out += [f"only in {b}: {rel}" for rel in sorted(set(fb) - set(fa))]
    out += [f"bytes differ: {rel}" for rel in sorted(set(fa) & set(fb)) if fa[rel].read_bytes() != fb[rel].read_bytes()]
    return out


def _flatten(doc: Any, prefix: str = "$") -> dict[str, Any]:
    if isinstance(doc, dict):
        out: dict[str, Any] = {}
        for k, v in doc.items():
            out.update(_flatten(v, f"{prefix}.{k}"))
        return out
    return {prefix: doc}


def provenance_differences(a: Path, b: Path) -> list[str]:
    """Fields of provenance.json that differ between two runs, except those saying when and where."""
    pa = _flatten(json.loads((a / "results/provenance.json").read_text()))
    pb = _flatten(json.loads((b / "results/provenance.json").read_text()))
    allowed = tuple(f"$.{k}" for k in PROVENANCE_WHEN_WHERE)
    return [
        k
        for k in sorted(set(pa) | set(pb))
        if pa.get(k) != pb.get(k) and not any(k == p or k.startswith(p + ".") for p in allowed)
    ]


def key_outputs() -> tuple[str, ...]:
    """The files the issue names: likelihood, patchset, limits, reinterpretation kit, HEPData record."""
    return (
        "likelihood/BkgOnly.json",
        "likelihood/patchset.json",
        "limits/limits.csv",
        "limits/limits.json",
        "hepdata/submission.tar.gz",
        "reinterpretation/kit.tar.gz",
        "reinterpretation/kit.json",
    )


if __name__ == "__main__":  # for the CI stages: reference-run -> the path of the shared reference run
    if sys.argv[1:] != ["reference-run"] or not os.environ.get("DMP_REFERENCE_RUN"):
        sys.exit("usage: DMP_REFERENCE_RUN=DIR python tests/helpers/reliability_support.py reference-run")
    print(make_reference(Path(os.environ["DMP_REFERENCE_RUN"])))
