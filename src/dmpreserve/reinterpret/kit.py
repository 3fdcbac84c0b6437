"""The reinterpretation kit: everything needed to test a new signal model without raw data or simulation.

Directory ``results/reinterpretation/`` (and the same files in ``kit.tar.gz`` there, a deterministic
archive: sorted members, mtime 0, uid/gid 0, no gzip timestamp):

* ``kit.json`` -- manifest (``schemas/reinterpretation_kit.schema.json``): exposure [t yr], analysis and
  energy binning, CL, POI bounds, the pipeline's halo and mass grid, the statistical method, and the
  sha256 of every other file;
* ``BkgOnly.json`` -- the background-only pyhf workspace;
* ``response_nr.json`` -- NR response: P(pass all cuts, land in analysis bin k | NR of true energy in bin e,
  fiducial) from the NR simulation;
* ``response_er.json`` -- ER response for monoenergetic lines (same, per line energy), simulated with NEST
  by the ``response`` step (:func:`dmpreserve.response.simulate_er_response`);
* ``efficiency.csv`` -- signal efficiency (acceptance) versus true NR energy;
* ``limits.csv`` -- the pipeline's own limits (closure reference);
* ``threshold_table.json`` -- (table mode) the toy-MC Neyman critical values c(s, b_eff) of t~mu, so that
  ``reinterpret`` gives toy-accurate Neyman limits at asymptotic cost;
* ``unbinned_templates.h5`` -- (``likelihood.unbinned``; kit format version 4, ``likelihood: unbinned``) the
  unbinned likelihood's fine templates, the observed events' fine bins and the fine NR and ER responses
  (:mod:`dmpreserve.artifacts.unbinned`), so that ``reinterpret`` computes the limits of a new model from the same
  unbinned likelihood as the pipeline's;
* ``signal_model.yaml`` -- the model the pipeline used; ``README.md`` -- how to use the kit.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path
from types import MappingProxyType
from typing import Any

from dmpreserve.artifacts.likelihood import validate_workspace
from dmpreserve.artifacts.limits import data_record
from dmpreserve.artifacts.response import LineResponse, ResponseMatrix
from dmpreserve.artifacts.templates import BackgroundTemplates
from dmpreserve.config import AnalysisConfig, is_listed
from dmpreserve.errors import InvalidData
from dmpreserve.files import MAX_TEXT_BYTES, atomic_write, dumps_json, read_json, sha256_file, tar_gz_bytes
from dmpreserve.physics.signal_models import SignalModel
from dmpreserve.schema import validate
from dmpreserve.stats.limits import method_text

KIT_VERSION = 1
#: Format version of a pipeline kit with the unbinned likelihood (``likelihood: unbinned``).
KIT_VERSION_UNBINNED = 4
#: The unbinned likelihood's file in a kit.
UNBINNED_FILE = "unbinned_templates.h5"
#: Files of a kit besides kit.json (name -> description).
KIT_FILES = MappingProxyType(
    {
        "BkgOnly.json": "background-only pyhf workspace (HistFactory JSON)",
        "response_nr.json": "NR response matrix: true NR energy bins [keV] x flattened analysis bins",
        "response_er.json": "ER response for monoenergetic lines [keV] x flattened analysis bins",
        "efficiency.csv": "signal efficiency (acceptance after all cuts) versus true NR energy [keV]",
        "limits.csv": "the pipeline's own 90% CL limits (closure reference)",
        "threshold_table.json": "Neyman critical values c(s, b_eff) of t~mu from toys vs expected signal events "
        "(schemas/threshold_table.schema.json)",
        "signal_model.yaml": "signal model used by the pipeline",
        UNBINNED_FILE: "the unbinned likelihood: fine smoothed shapes of every background and signal mass, the "
        "observed events' fine bins, the fine NR and ER responses (HDF5, dmpreserve.artifacts.unbinned)",
        "README.md": "how to use this kit",
        # kits imported from a template release (kind template_release, dmpreserve import-release)
        "mono_templates.json": "mono-energetic NR efficiency templates per run at the yield anchors [energy][bin]",
        "patchset_si.json": "SI signal patchset at the published masses (pyhf PatchSet)",
        "yield_grids.json": "grid components (rg, b8, mono-energetic efficiencies) on the full (t_ly, t_qy) grid: "
        "the release's own yield morphing",
        "published_limits.csv": "the release's published 90% CL SI limits and sensitivity band, unchanged",
        "likelihood_hs3.json": "the likelihood in HS3 (background-only workspace + the reference signal patch)",
    }
)

README = """# dmpreserve reinterpretation kit

Test your own dark-matter model against this result in seconds, without raw data or simulation:

    dmpreserve reinterpret --kit . --model my_model.yaml -o out/
    dmpreserve reinterpret --kit . --spectrum my_spectra.csv --reference-cross-section 1e-45 -o out/

Built-in models (YAML, schemas/signal_model.schema.json): si, sd_neutron, sd_proton, light_mediator,
inelastic, er_line.  User spectra: CSV `mass_gev,energy_kev,dr_de` in events/(t yr keV) of nuclear-recoil
energy at the reference cross section.  Outputs: limits.csv (90% CL), limits.json, patchset.json,
limits.png, hepdata_limits.yaml.  Limits use the pipeline's statistics: with threshold_table.json the
toy-MC Neyman critical values c(s, b_eff) (and the same shared background-only pseudo-datasets for the
bands); `--asymptotic` for the chi2 threshold, `--toys` for fresh per-mass toys.  kit.json lists every
file with its sha256; `dmpreserve reinterpret`
checks them before use.

A kit with unbinned_templates.h5 (kit.json: "likelihood": "unbinned") computes the limits of the pipeline's
unbinned likelihood of the observed events, with the pipeline's per-mass toys (15-30 s per mass on
one core; `--asymptotic` for seconds); `--binned` uses the binned pyhf workspace instead.
"""


def assemble_kit(
    outdir: str | os.PathLike,
    *,
    tarball: str | os.PathLike | None,
    config: AnalysisConfig,
    model: SignalModel,
    templates: BackgroundTemplates,
    nr_response: ResponseMatrix,
    er_response: LineResponse,
    files: dict[str, str | os.PathLike],
) -> None:
    """Assemble the kit from the pipeline's outputs: copy the files, write ``kit.json`` and the tarball.

    Args:
        outdir: Kit directory.
        tarball: Archive path (default ``outdir/kit.tar.gz``).
        config: The resolved analysis configuration (CL, POI bounds, binning, statistics settings).
        model: The signal model the pipeline used (its halo and mass grid, where given).
        templates: The background templates (exposure).
        nr_response, er_response: The response step's responses (energy binning and line energies).
        files: Kit file name (everything of :data:`KIT_FILES` but ``README.md``) -> path to copy; with
            :data:`UNBINNED_FILE` the kit is one of the unbinned likelihood (format version 4).
    """
    binning = config.binning
    halo = model.halo or config.halo
    unbinned = UNBINNED_FILE in files
    st = config.statistics
    manifest = {
        "format": "dmpreserve-reinterpretation-kit",
        "format_version": KIT_VERSION_UNBINNED if unbinned else KIT_VERSION,
        "exposure_t_yr": templates.exposure_t_yr,
        "data": data_record(config.inputs, templates.exposure_t_yr),
        "cl": float(config["limits"]["cl"]),
        "poi_bounds": [float(x) for x in config["likelihood"]["poi_bounds"]],
        "inspire_id": config["likelihood"]["inspire_id"],
        "target_events_at_reference": float(config["signal"]["target_events_at_reference"]),
        "analysis_binning": {
            "cs1_edges_phd": list(binning.cs1_edges_phd),
            "log10_cs2_edges": list(binning.log10_cs2_edges),
            "flattening": "k = i_cs1 * n_log10cs2 + j_log10cs2",
        },
        "nr_energy_edges_kev": [float(x) for x in nr_response.energy_edges_kev],
        "er_line_energies_kev": er_response.line_energies_kev.tolist(),
        "halo": halo.as_dict(),
        # the masses of the pipeline's limits (limits.masses_gev of the signal grid), so that the kit's closure
        # reference limits.csv is what `reinterpret` gives by default
        "masses_gev": [
            float(m) for m in model.masses_gev or config.masses_gev if is_listed(m, config["limits"]["masses_gev"])
        ],
        "statistics": method_text(
            toys=None if st["neyman_threshold"] == "asymptotic" else st["neyman_threshold"],
            pcl_power=float(st["pcl_power"]),
            unbinned=unbinned,
            observed=str(st.get("observed_limit", "root")),
        ),
        "statistics_settings": dict(st),
        "signal_model": model.to_json(),
        "units": {
            "exposure_t_yr": "t yr",
            "energies": "keV",
            "cs1": "phd",
            "masses_gev": "GeV/c^2",
            "limits": "cm^2",
            "halo": "GeV/cm^3, km/s",
        },
    }
    if unbinned:
        manifest["likelihood"] = "unbinned"
    contents = {name: Path(path).read_bytes() for name, path in files.items()}
    contents["README.md"] = README.encode("utf-8")
    write_kit(outdir, files=contents, manifest=manifest, tarball=tarball)


def _write_bytes(path: Path, data: bytes) -> None:
    with atomic_write(path) as tmp:
        Path(tmp).write_bytes(data)


def write_kit(
    outdir: str | os.PathLike,
    *,
    files: dict[str, bytes],
    manifest: dict[str, Any],
    tarball: str | os.PathLike | None = None,
) -> None:
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
    doc["files"] = {
        name: {"sha256": hashlib.sha256(data).hexdigest(), "description": KIT_FILES[name]}
        for name, data in sorted(files.items())
    }
    validate(doc, "reinterpretation_kit", path=str(out / "kit.json"))
    all_files = dict(files)
    all_files["kit.json"] = dumps_json(doc).encode("utf-8")
    for name, data in sorted(all_files.items()):
        _write_bytes(out / name, data)
    _write_bytes(
        Path(tarball) if tarball else out / "kit.tar.gz",
        tar_gz_bytes([(f"reinterpretation/{n}", d) for n, d in all_files.items()]),
    )


@dataclasses.dataclass(frozen=True)
class Kit:
    """A loaded, checksum-verified kit."""

    path: str
    manifest: dict[str, Any]
    workspace: dict[str, Any]

    def file(self, name: str) -> Path:
        """Path of a kit file."""
        return Path(self.path) / name

    @property
    def unbinned(self) -> bool:
        """The pipeline's limits are those of the unbinned likelihood (``likelihood: unbinned``)."""
        return self.manifest.get("likelihood") == "unbinned"


def load_kit(kit_dir: str | os.PathLike) -> Kit:
    """Read ``kit.json``, validate it and check every file's sha256; read the workspace.

    Raises:
        InvalidData: missing or modified files (naming the file), or a malformed manifest.
    """
    root = Path(kit_dir)
    if not root.is_dir():
        raise InvalidData("no such kit directory", path=root, field="--kit")
    mpath = root / "kit.json"
    manifest = read_json(mpath, what="reinterpretation kit manifest")
    validate(manifest, "reinterpretation_kit", path=str(mpath))
    for name, entry in manifest["files"].items():
        p = root / name
        if p.is_symlink() or not p.is_file():
            raise InvalidData(
                "kit file is missing or not a regular file (links are refused)", path=p, field=f"files.{name}"
            )
        if p.stat().st_size > MAX_TEXT_BYTES:
            raise InvalidData(f"kit file is larger than {MAX_TEXT_BYTES} bytes", path=p, field=f"files.{name}")
        if sha256_file(p) != entry["sha256"]:
            raise InvalidData("sha256 does not match kit.json (file modified?)", path=p, field=f"files.{name}.sha256")
    ws = read_json(root / "BkgOnly.json", what="pyhf workspace")
    # an imported template release's limits are computed by pyhf itself (histosys); the pipeline's by stats
    engine = "pyhf" if manifest.get("kind") == "template_release" else "fast"
    validate_workspace(ws, path=str(root / "BkgOnly.json"), engine=engine)
    if manifest.get("likelihood") == "unbinned" and UNBINNED_FILE not in manifest["files"]:
        raise InvalidData(f"likelihood 'unbinned' but no {UNBINNED_FILE} in files", path=mpath, field="likelihood")
    return Kit(str(root), manifest, ws)
