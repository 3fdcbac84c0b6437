"""The analysis needs no network: the CLI steps run and pass inside a network-less namespace.

Every step is run as its own process under ``unshare -rn`` (a new user and network namespace with
only a downed loopback device), on the small MDC of the test session.  The tests first prove that
the namespace really has no network.  They skip, saying why, where unprivileged user namespaces are
not permitted (some containers and hardened kernels).  The whole Snakemake DAG runs under
``unshare -rn`` as the second run of ``test_reproducibility.py`` (CI stage "reliability").
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from reliability_support import env

UNSHARE = shutil.which("unshare")


def _unshare_works() -> str | None:
    """None if ``unshare -rn`` works here, else the reason it does not."""
    if UNSHARE is None:
        return "unshare(1) is not installed"
    try:
        proc = subprocess.run([UNSHARE, "-rn", "true"], capture_output=True, text=True, timeout=30, check=False)
    except OSError as exc:
        return f"unshare cannot be run: {exc}"
    if proc.returncode != 0:
        return f"unshare -rn is not permitted here: {proc.stderr.strip() or proc.returncode}"
    return None


REASON = _unshare_works()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"no network namespace: {REASON}")


def _offline(argv: list[str], *, cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [UNSHARE, "-rn", *argv], cwd=cwd, env=env(), capture_output=True, text=True, timeout=timeout, check=False
    )


def _dmpreserve(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return _offline([sys.executable, "-m", "dmpreserve", *args], cwd=cwd)


def test_namespace_has_no_network(tmp_path: Path) -> None:
    probe = (
        "import socket\n"
        "for host in [('1.1.1.1', 53), ('8.8.8.8', 443), ('pypi.org', 443)]:\n"
        "    try:\n"
        "        socket.create_connection(host, timeout=2).close()\n"
        "    except OSError:\n"
        "        continue\n"
        "    raise SystemExit(f'reached {host}')\n"
        "print('offline')\n"
    )
    proc = _offline([sys.executable, "-c", probe], cwd=tmp_path)
    assert proc.returncode == 0 and "offline" in proc.stdout, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def offline_config(tmp_path_factory, small_config_path: Path) -> Path:
    """The small configuration with asymptotic limits (the steps, not the toys, are under test here)."""
    doc = yaml.safe_load(small_config_path.read_text(encoding="utf-8"))
    doc.setdefault("statistics", {})["neyman_threshold"] = "asymptotic"
    path = tmp_path_factory.mktemp("offline") / "config.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


@pytest.mark.integration
def test_cli_steps_run_without_network(tmp_path: Path, offline_config: Path) -> None:
    """mdc -> select-part -> select -> mass-grid -> backgrounds -> signal -> likelihood -> fit -> limits -> plots
    -> hepdata -> provenance."""
    c, m, r = str(offline_config), "mdc", "res"
    steps = [
        [
            "mdc",
            "--config",
            c,
            *[
                x
                for n in ("science", "truth", "calib-er", "calib-nr", "sim-nr", "isolated-s1", "isolated-s2")
                for x in (f"--{n}", f"{m}/{n.replace('-', '_')}.parquet")
            ],
        ],
        [
            "select-part",
            "--config",
            c,
            "--science",
            f"{m}/science.parquet",
            "--selected",
            f"{r}/parts/part-0.parquet",
            "--cutflow",
            f"{r}/parts/part-0_cutflow.json",
        ],
        [
            "select",
            "--config",
            c,
            "--parts",
            f"{r}/parts/part-0.parquet",
            "--part-cutflows",
            f"{r}/parts/part-0_cutflow.json",
            "--sim-nr",
            f"{m}/sim_nr.parquet",
            "--selected",
            f"{r}/selected.parquet",
            "--cutflow",
            f"{r}/cutflow.csv",
            "--acceptance",
            f"{r}/acceptance.csv",
            "--exposure",
            f"{r}/exposure.json",
        ],
        ["mass-grid", "--config", c, "-o", f"{r}/mass_grid.json"],
        [
            "response",
            "--config",
            c,
            "--sim-nr",
            f"{m}/sim_nr.parquet",
            "--selected-sidecar",
            f"{r}/selected.json",
            "--response-nr",
            f"{r}/response_nr.json",
            "--response-er",
            f"{r}/response_er.json",
            "--er-lines",
            "0.5:30:0.5",
            "--er-events-per-line",
            "50",
            "--no-progress",
        ],
        [
            "signal",
            "--config",
            c,
            "--response-nr",
            f"{r}/response_nr.json",
            "--exposure",
            f"{r}/exposure.json",
            "--mass-grid",
            f"{r}/mass_grid.json",
            "--signal",
            f"{r}/signal.json",
            "--spectra",
            f"{r}/spectra.csv",
        ],
        [
            "backgrounds",
            "--config",
            c,
            "--science",
            f"{m}/science.parquet",
            "--calib-er",
            f"{m}/calib_er.parquet",
            "--response-nr",
            f"{r}/response_nr.json",
            "--response-er",
            f"{r}/response_er.json",
            "--isolated-s1",
            f"{m}/isolated_s1.parquet",
            "--isolated-s2",
            f"{m}/isolated_s2.parquet",
            "--selected",
            f"{r}/selected.parquet",
            "--exposure",
            f"{r}/exposure.json",
            "--templates",
            f"{r}/templates.json",
            "--summary",
            f"{r}/summary.csv",
        ],
        [
            "likelihood",
            "--config",
            c,
            "--templates",
            f"{r}/templates.json",
            "--signal",
            f"{r}/signal.json",
            "--workspace",
            f"{r}/BkgOnly.json",
            "--patchset",
            f"{r}/patchset.json",
        ],
        ["fit", "--workspace", f"{r}/BkgOnly.json", "--gof-toys", "0", "--no-progress", "-o", f"{r}/fit.json"],
        [
            "limits",
            "--config",
            c,
            "--workspace",
            f"{r}/BkgOnly.json",
            "--patchset",
            f"{r}/patchset.json",
            "--csv",
            f"{r}/limits.csv",
            "--json",
            f"{r}/limits.json",
            "--no-progress",
        ],
        [
            "plots",
            "--limits",
            f"{r}/limits.csv",
            "--templates",
            f"{r}/templates.json",
            "--signal",
            f"{r}/signal.json",
            "--selected",
            f"{r}/selected.parquet",
            "--cutflow",
            f"{r}/cutflow.csv",
            "--acceptance",
            f"{r}/acceptance.csv",
            "--fit",
            f"{r}/fit.json",
            "--outdir",
            f"{r}/plots",
        ],
        [
            "hepdata",
            "--limits",
            f"{r}/limits.csv",
            "--templates",
            f"{r}/templates.json",
            "--selected",
            f"{r}/selected.parquet",
            "--cutflow",
            f"{r}/cutflow.csv",
            "--acceptance",
            f"{r}/acceptance.csv",
            "--workspace",
            f"{r}/BkgOnly.json",
            "--patchset",
            f"{r}/patchset.json",
            "-o",
            f"{r}/submission.tar.gz",
        ],
        [
            "provenance",
            "--config",
            c,
            "--inputs",
            f"{m}/science.parquet",
            "--outputs",
            f"{r}/limits.csv",
            "-o",
            f"{r}/provenance.json",
        ],
    ]
    for argv in steps:
        proc = _dmpreserve(*argv, cwd=tmp_path)
        assert proc.returncode == 0, f"dmpreserve {argv[0]} failed offline:\n{proc.stderr[-3000:]}"
    for rel in ("limits.csv", "submission.tar.gz", "plots/limits.png", "provenance.json"):
        assert (tmp_path / r / rel).is_file(), rel
