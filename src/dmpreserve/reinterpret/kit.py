"""The reinterpretation kit: everything needed to test a new signal model without raw data or simulation.

Directory ``results/reinterpretation/`` (and the same files in ``kit.tar.gz`` there, a deterministic
archive: sorted members, mtime 0, uid/gid 0, no gzip timestamp):

* ``kit.json`` -- manifest (``schemas/reinterpretation_kit.schema.json``): exposure [t yr], analysis and
  energy binning, CL, POI bounds, the pipeline's halo and mass grid, the statistical method, and the
  sha256 of every other file;
* ``BkgOnly.json`` -- the background-only pyhf workspace;
* ``response_nr.json`` -- NR response: P(pass all cuts, land in analysis bin k | NR of true energy in bin e,
  fiducial) from the NR simulation;
* ``response_er.json`` -- ER response for monoenergetic lines (same, per line energy), simulated here with
  NEST (:class:`dmpreserve.detector.NestDetector`, seeded from the configuration's seed);
* ``efficiency.csv`` -- signal efficiency (acceptance) versus true NR energy;
* ``limits.csv`` -- the pipeline's own limits (closure reference);
* ``signal_model.yaml`` -- the model the pipeline used; ``README.md`` -- how to use the kit.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from dmpreserve.artifacts.likelihood import validate_workspace
from dmpreserve.artifacts.response import LineResponse
from dmpreserve.config import AnalysisConfig
from dmpreserve.detector import NestDetector
from dmpreserve.signals import build_response
from tqdm import tqdm
from dmpreserve.artifacts.reduced import ReducedData
from dmpreserve.errors import InvalidData
from dmpreserve.files import MAX_TEXT_BYTES, atomic_write, dumps_json, read_json, sha256_file, tar_gz_bytes
from dmpreserve.schema import validate

KIT_FORMAT = "dmpreserve-reinterpretation-kit"
KIT_VERSION = 1
#: Files of a kit besides kit.json (name -> description).
KIT_FILES = MappingProxyType({
    "BkgOnly.json": "background-only pyhf workspace (HistFactory JSON)",
    "response_nr.json": "NR response matrix: true NR energy bins [keV] x flattened analysis bins",
    "response_er.json": "ER response for monoenergetic lines [keV] x flattened analysis bins",
    "efficiency.csv": "signal efficiency (acceptance after all cuts) versus true NR energy [keV]",
    "limits.csv": "the pipeline's own 90% CL limits (closure reference)",
    "signal_model.yaml": "signal model used by the pipeline",
    "README.md": "how to use this kit",
})
ER_STREAM = 7919  # random stream of the ER line simulation (distinct from the MDC streams)
ER_LINES_KEV = "0.5:30:0.5"
ER_EVENTS_PER_LINE = 2000

README = """# dmpreserve reinterpretation kit

Test your own dark-matter model against this result in seconds, without raw data or simulation:

    dmpreserve reinterpret --kit . --model my_model.yaml -o out/
    dmpreserve reinterpret --kit . --spectrum my_spectra.csv --reference-cross-section 1e-45 -o out/

Built-in models (YAML, schemas/signal_model.schema.json): si, sd_neutron, sd_proton, light_mediator,
inelastic, er_line.  User spectra: CSV `mass_gev,energy_kev,dr_de` in events/(t yr keV) of nuclear-recoil
energy at the reference cross section.  Outputs: limits.csv (90% CL), limits.json, patchset.json,
limits.png, hepdata_limits.yaml.  kit.json lists every file with its sha256; `dmpreserve reinterpret`
checks them before use.
"""


def simulate_er_response(config: AnalysisConfig, *, line_energies_kev: np.ndarray,
                         events_per_line: int = ER_EVENTS_PER_LINE, progress: bool = True) -> LineResponse:
    """Simulate monoenergetic ER lines with NEST and fold them through the configured cuts and binning.

    Events are uniform in the active volume; the fiducial-volume fraction is divided out as for the NR
    response.  Seeded from the configuration's ``seed`` (stream :data:`ER_STREAM`): reruns are identical.
    """
    seed = int(config["seed"])
    det = NestDetector(config["mdc"]["detector"])
    det.seed(seed * 101 + ER_STREAM)
    rng = np.random.default_rng([seed, ER_STREAM])
    lines = np.asarray(line_energies_kev, dtype=float)
    parts = []
    for e in tqdm(lines, desc="NEST ER lines", unit="line", disable=not progress, mininterval=2.0):
        pos = det.random_positions(events_per_line, rng)
        sim = det.simulate(np.full(events_per_line, e), "er", *pos, rng)
        parts.append(sim)
    cols = {k: np.concatenate([p[k] for p in parts]) for k in ("cs1_phd", "cs2_phd", "s1_phd", "s2_phd",
                                                               "drift_time_us", "x_cm", "y_cm", "s1_coincidence")}
    valid = np.concatenate([p["valid"] for p in parts])
    for k in ("s1_phd", "s2_phd", "cs1_phd", "cs2_phd"):
        cols[k] = np.where(valid, cols[k], 0.0)
    # the line index + 0.5 as "true energy", with unit bins: build_response then gives one row per line
    cols["true_energy_kev"] = np.repeat(np.arange(len(lines)) + 0.5, events_per_line)
    sim = ReducedData(columns=cols, meta={"kind": "simulation_er", "n_events": len(valid),
                                          "active_volume": det.params.active_volume()}, path="<ER line simulation>")
    resp = build_response(sim, config, energy_edges_kev=np.arange(len(lines) + 1, dtype=float))
    return LineResponse(lines, resp.binning, resp.matrix, resp.matrix_err)


def _write_bytes(path: Path, data: bytes) -> None:
    with atomic_write(path) as tmp:
        Path(tmp).write_bytes(data)


def write_kit(outdir: str | os.PathLike, *, files: dict[str, bytes], manifest: dict[str, Any],
              tarball: str | os.PathLike | None = None) -> None:
    """Write the kit files, ``kit.json`` (with checksums) and the deterministic tarball.

    Args:
        outdir: Kit directory.
        files: File name (a key of :data:`KIT_FILES`) -> content.
        manifest: ``kit.json`` without its ``files`` section.
        tarball: Archive path (default ``outdir/kit.tar.gz``); members are ``reinterpretation/<name>``.
    """
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    doc = dict(manifest)
    doc["files"] = {name: {"sha256": hashlib.sha256(data).hexdigest(), "description": KIT_FILES[name]}
                    for name, data in sorted(files.items())}
    validate(doc, "reinterpretation_kit", path=str(out / "kit.json"))
    all_files = dict(files)
    all_files["kit.json"] = dumps_json(doc).encode("utf-8")
    for name, data in sorted(all_files.items()):
        _write_bytes(out / name, data)
    _write_bytes(Path(tarball) if tarball else out / "kit.tar.gz",
                 tar_gz_bytes([(f"reinterpretation/{n}", d) for n, d in all_files.items()]))


@dataclasses.dataclass(frozen=True)
class Kit:
    """A loaded, checksum-verified kit."""

    path: str
    manifest: dict[str, Any]
    workspace: dict[str, Any]

    def file(self, name: str) -> Path:
        """Path of a kit file."""
        return Path(self.path) / name


def load_kit(kit_dir: str | os.PathLike) -> Kit:
    """Read ``kit.json``, validate it and check every file's sha256; read the workspace.

    Raises:
        InvalidData: missing or modified files (naming the file), or a malformed manifest.
    """
    root = Path(kit_dir)
    mpath = root / "kit.json"
    manifest = read_json(mpath, what="reinterpretation kit manifest")
    validate(manifest, "reinterpretation_kit", path=str(mpath))
    for name, entry in manifest["files"].items():
        p = root / name
        if p.is_symlink() or not p.is_file():
            raise InvalidData("kit file is missing or not a regular file (links are refused)", path=p,
                              field=f"files.{name}")
        if p.stat().st_size > MAX_TEXT_BYTES:
            raise InvalidData(f"kit file is larger than {MAX_TEXT_BYTES} bytes", path=p, field=f"files.{name}")
        if sha256_file(p) != entry["sha256"]:
            raise InvalidData("sha256 does not match kit.json (file modified?)", path=p, field=f"files.{name}.sha256")
    ws = read_json(root / "BkgOnly.json", what="pyhf workspace")
    validate_workspace(ws, path=str(root / "BkgOnly.json"))
    return Kit(str(root), manifest, ws)
