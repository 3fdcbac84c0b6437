# Input datasets (config section `inputs`, docs/operations.md "Inputs"), resolved here at DAG-build time
# in plain Python (the Snakefile cannot import dmpreserve; keep in step with dmpreserve.config:
# INPUT_NAMES, STORAGE_PLUGINS, url_scheme, check_inputs, which validate-config and resolve_config apply).
#
# Each input is `mdc` (the mock-data challenge: the outputs of the mdc rule) or a dataset: one Parquet file or
# a directory of them, each x.parquet with its JSON sidecar x.json, local or behind a URL that a Snakemake
# storage plugin retrieves (root:// XRootD, http(s)://, s3://, zenodo://).  Local copies of remote files
# are made by Snakemake itself (under .snakemake/storage/), before the jobs that read them; rule
# inputs_manifest checks their declared sha256 and records them before any step reads them.

import posixpath
import re
import shlex

from snakemake.exceptions import WorkflowError

INPUT_NAMES = ("science", "calibration_er", "calibration_nr", "simulation_nr", "isolated_s1", "isolated_s2")
# file stem of each input among the outputs of rule mdc (results/mdc/STEM.parquet + STEM.json)
MDC_STEMS = {
    "science": "science",
    "calibration_er": "calib_er",
    "calibration_nr": "calib_nr",
    "simulation_nr": "sim_nr",
    "isolated_s1": "isolated_s1",
    "isolated_s2": "isolated_s2",
}
# URL scheme -> Snakemake storage plugin (the package snakemake-storage-plugin-NAME)
STORAGE_PLUGINS = {"root": "xrootd", "xroot": "xrootd", "http": "http", "https": "http", "s3": "s3", "zenodo": "zenodo"}
_INPUTS = config.get("inputs") or {}


def _dataset(name):
    """The dataset of input `name` (its config dict), or None where it is the mock-data challenge."""
    spec = _INPUTS.get(name, "mdc")
    return None if spec == "mdc" else spec


def url_scheme(location):
    head, sep, _ = location.partition("://")
    return head.lower() if sep and re.fullmatch(r"[A-Za-z][A-Za-z0-9.+-]*", head) else None


def _sidecar(location):
    return f"{location[: -len('.parquet')]}.json"


def _table(name):
    """The `table` setting of input `name` where it is a released event table (rule import_events), else None."""
    return (_dataset(name) or {}).get("table")


def input_locations(name):
    """The Parquet files of dataset input `name` as configured (local paths or URLs), in analysis order:
    the location itself if it is one file, else its `files` (default for a local directory: its *.parquet
    files, sorted).  A released table: the table itself."""
    spec = _dataset(name)
    location = spec["location"]
    if location.endswith(".parquet") or _table(name):
        return [location]
    files = spec.get("files")
    if url_scheme(location) is not None:
        if not files:
            raise WorkflowError(f"inputs.{name}.files: a remote directory ({location}) needs its file names")
        return [posixpath.join(location, f) for f in files]
    if files is None:
        if not os.path.isdir(location):
            raise WorkflowError(f"inputs.{name}.location: {location}: no such file or directory")
        files = sorted(f for f in os.listdir(location) if f.endswith(".parquet"))
        if not files:
            raise WorkflowError(f"inputs.{name}.location: {location}: no .parquet files in the directory")
    return [os.path.join(location, f) for f in files]


def _as_input(location):
    """A local path as it is; a URL as a storage object of its plugin (Snakemake >= 8 only)."""
    scheme = url_scheme(location)
    if scheme is None:
        return location
    return getattr(storage, STORAGE_PLUGINS[scheme])(location)


def _probe(name, location):
    """Stop at DAG-build time with one line where the first file of a remote input cannot be reached (the plugins
    raise their client's exception, e.g. requests' ConnectionError, with a traceback): one request per input."""
    try:
        _as_input(location).flags["storage_object"].exists()
    except Exception as exc:  # whatever the plugin's client raises
        reason = " ".join(str(exc).split()) or "no reason given"
        raise WorkflowError(
            f"inputs.{name}.location: {location}: unreachable ({type(exc).__name__}: {reason[:300]})"
        ) from None


def input_files(name):
    """The Parquet files of input `name`, as workflow inputs (paths, or storage objects for URLs)."""
    if _dataset(name) is None:
        return [f"{R}/mdc/{MDC_STEMS[name]}.parquet"]
    if _table(name):
        return [f"{R}/inputs/{name}.parquet"]
    return [_as_input(loc) for loc in input_locations(name)]


def input_sidecars(name):
    """The JSON sidecars of the Parquet files of input `name`, in the same order."""
    if _dataset(name) is None:
        return [f"{R}/mdc/{MDC_STEMS[name]}.json"]
    if _table(name):
        return [f"{R}/inputs/{name}.json"]
    return [_as_input(_sidecar(loc)) for loc in input_locations(name)]


DATASET_INPUTS = [name for name in INPUT_NAMES if _dataset(name) is not None]
USES_MDC = len(DATASET_INPUTS) < len(INPUT_NAMES)


def _xrootd_timeouts():
    """The XRootD client waits up to 5 x 120 s for a host that does not answer (and the plugin tries 3 times):
    give up on a connection after 2 x 15 s, unless XRD_CONNECTIONRETRY / XRD_CONNECTIONWINDOW say otherwise.
    (The client is already loaded with Snakemake's plugins, so the environment variables are too late here.)"""
    try:
        from XRootD.client import EnvPutInt
    except ImportError:  # no XRootD client: the plugin's own error says so
        return
    if "XRD_CONNECTIONRETRY" not in os.environ:
        EnvPutInt("ConnectionRetry", 2)
    if "XRD_CONNECTIONWINDOW" not in os.environ:
        EnvPutInt("ConnectionWindow", 15)


if any(STORAGE_PLUGINS.get(url_scheme(input_locations(n)[0]) or "") == "xrootd" for n in DATASET_INPUTS):
    _xrootd_timeouts()
for _name in DATASET_INPUTS:
    if url_scheme(input_locations(_name)[0]) is not None:
        _probe(_name, input_locations(_name)[0])

# The scattered selection: one select_part job per group of files_per_job science files.
_FILES_PER_JOB = int((_dataset("science") or {}).get("files_per_job", 1))
_SCIENCE = list(zip(input_files("science"), input_sidecars("science")))
SCIENCE_GROUPS = [_SCIENCE[i : i + _FILES_PER_JOB] for i in range(0, len(_SCIENCE), _FILES_PER_JOB)]
N_SCIENCE_PARTS = len(SCIENCE_GROUPS)


def science_group(wildcards):
    """The science Parquet files of select_part job `wildcards.part`."""
    return [parquet for parquet, _ in SCIENCE_GROUPS[int(wildcards.part)]]


def science_group_sidecars(wildcards):
    """Their sidecars."""
    return [sidecar for _, sidecar in SCIENCE_GROUPS[int(wildcards.part)]]


# Every file of every dataset input (Parquet and sidecar) with its input name and its location as configured,
# for the inputs_manifest job (provenance.smk), which runs only where some input is a dataset (INPUTS_MANIFEST).
_MANIFEST_ENTRIES = [
    (name, location)
    for name in DATASET_INPUTS
    for parquet in input_locations(name)
    for location in ((parquet, _table(name)["description"]) if _table(name) else (parquet, _sidecar(parquet)))
]
# Released event tables (inputs.NAME.table): input name -> the table (path or storage object), for import_events.
TABLE_INPUTS = {name: _as_input(input_locations(name)[0]) for name in DATASET_INPUTS if _table(name)}
INPUTS_MANIFEST = f"{R}/inputs/manifest.json" if DATASET_INPUTS else None


def manifest_args(wildcards, input):
    """--file NAME LOCATION LOCAL_PATH for each file, in the order of input.files."""
    return " ".join(
        f"--file {name} {shlex.quote(location)} {shlex.quote(str(local))}"
        for (name, location), local in zip(_MANIFEST_ENTRIES, input.files)
    )


MANIFEST_FILES = [_as_input(location) for _, location in _MANIFEST_ENTRIES]
SELECT_PARTS = [f"{R}/selection/parts/{part}" for part in range(N_SCIENCE_PARTS)]
