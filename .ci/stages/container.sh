#!/usr/bin/env bash
# CI stage "container" (budget 15 min on 2 cores): the project image for real.
#
#   1. Docker (started if needed) and a Debian bookworm base image made without a registry
#      (../shared/tools/container-host docker | base-image TAG)
#   2. dmpreserve image build   (offline wheelhouse of the hashed pins -> docker build via the SDK)
#   3. apptainer (container-host apptainer PREFIX) and dmpreserve image sif
#   4. container-host seed-sif, so that snakemake finds the SIF under the rules' docker:// URI
#   5. the workflow on tests/data/test_config.yaml twice: with `snakemake --use-singularity --apptainer-prefix DIR`
#      in a temporary copy of the tree, and without containers -- in CI the reference run that `make test` made
#      of this tree (DMP_REFERENCE_RUN, set by .ci/run), else in a second copy
#   6. proof that the jobs ran in the container (provenance: apptainer, the seeded SIF whose sha256
#      is the one recorded by `image sif` for the image ID recorded by `image build`, the image's
#      interpreter /opt/dmpreserve/bin/python, its labels; snakemake activated the image for every
#      job), and `cmp` of likelihood, limits and HEPData files between the two runs.
#
# Skipped (loudly, exit 0) only when the machine cannot run containers: not root and no usable
# Docker daemon + apptainer.  Environment: DMP_KEEP=1 keeps the temporary directory;
# DMP_APPTAINER_PREFIX (default ~/.cache/dmpreserve/apptainer), DMP_BASE (default
# dmpreserve-base:bookworm), DMP_CONFIG (default tests/data/test_config.yaml), CORES (default 2).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
REPO=$PWD
CH=$REPO/../shared/tools/container-host
CONFIG=${DMP_CONFIG:-tests/data/test_config.yaml}
BASE=${DMP_BASE:-dmpreserve-base:bookworm}
PREFIX=${DMP_APPTAINER_PREFIX:-$HOME/.cache/dmpreserve/apptainer}
CORES=${CORES:-2}
T0=$SECONDS

say() { printf '[container %4ds] %s\n' $((SECONDS - T0)) "$*"; }
skip() {
    printf '\n%s\n' "################################################################################"
    printf '### CONTAINER STAGE SKIPPED: %s\n' "$*"
    printf '### The image, the SIF and snakemake --use-singularity were NOT tested here.\n'
    printf '%s\n\n' "################################################################################"
    exit 0
}
fail() { echo "container stage: FAILED: $*" >&2; exit 1; }

# --- 1. what this machine can do -------------------------------------------------------------
if [ "$(id -u)" = 0 ] && [ -x "$CH" ]; then
    say "container-host: docker, base image $BASE, apptainer under $PREFIX"
    "$CH" docker
    "$CH" base-image "$BASE"
    "$CH" apptainer "$PREFIX" >/dev/null
    export PATH="$PREFIX/usr/bin:$PATH"
elif ! docker info >/dev/null 2>&1; then
    skip "no root (or no ../shared/tools/container-host) and no usable Docker daemon"
elif ! command -v apptainer >/dev/null 2>&1; then
    skip "no root (or no ../shared/tools/container-host) and no apptainer on PATH"
elif ! docker image inspect "$BASE" >/dev/null 2>&1; then
    BASE=python:3.11-slim-bookworm  # the default base: needs a registry
fi
export APPTAINER_DROP_CAPS=${APPTAINER_DROP_CAPS:-CAP_SYS_RESOURCE}
say "$(docker version --format 'docker server {{.Server.Version}}'), $(apptainer --version)"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/dmp-container.XXXXXX")
cleanup() { if [ "${DMP_KEEP:-0}" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi; }
trap cleanup EXIT

# The image reference the rules name (container: docker://REF), from the configuration.
URI=$(python -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["container_image"])' "$CONFIG")
TAG=${URI#docker://}
[ "$URI" != "$TAG" ] || fail "$CONFIG: container_image must be a docker:// reference, got $URI"
REVISION=$(git rev-parse HEAD 2>/dev/null || echo unknown)
if [ "$REVISION" != unknown ] && [ -n "$(git status --porcelain --untracked-files=no)" ]; then REVISION+=-dirty; fi

# --- 2. image, from a snapshot of the tree that both workflow runs also use --------------------------
copy_tree() {  # copy_tree FROM TO: the working tree without local state (venv, results, builds, git)
    mkdir -p "$2"
    tar -C "$1" --exclude=./.venv --exclude=./results --exclude=./.snakemake --exclude=./build \
        --exclude=./.git --exclude=./.pytest_cache --exclude=./.hypothesis --exclude='*.egg-info' \
        --exclude=__pycache__ -cf - . | tar -C "$2" -xf -
}
copy_tree "$REPO" "$WORK/snapshot"
say "dmpreserve image build --tag $TAG --base $BASE"
(cd "$WORK/snapshot" && dmpreserve image build --tag "$TAG" --base "$BASE" --revision "$REVISION" --no-progress \
    --wheelhouse "$REPO/build/wheelhouse" --context "$WORK/image-context" --record "$WORK/image/image.json")
docker run --rm --network none "$TAG" dmpreserve --version
docker run --rm --network none "$TAG" bash -c 'test "$(id -u)" != 0 && python -V'

# --- 3./4. SIF, seeded where snakemake looks for docker://TAG ------------------------------------
say "dmpreserve image sif"
SIF=$WORK/image/dmpreserve.sif
dmpreserve image sif --tag "$TAG" --sif "$SIF" --record "$WORK/image/sif.json" --no-progress
SIFCACHE=$WORK/apptainer-prefix
if [ -x "$CH" ]; then
    "$CH" seed-sif "$SIF" "$URI" "$SIFCACHE"
else  # the same as container-host seed-sif: snakemake names the image md5(URI).simg
    mkdir -p "$SIFCACHE"
    ln -f "$SIF" "$SIFCACHE/$(printf %s "$URI" | md5sum | cut -d' ' -f1).simg"
fi

# --- 5. the workflow without and with containers --------------------------------------------------
copy_tree "$WORK/snapshot" "$WORK/container"
if [ -n "${DMP_REFERENCE_RUN:-}" ] && [ "$CONFIG" = tests/data/test_config.yaml ]; then
    # .ci/run: the clean run of the test configuration that `make test` made from this tree (its digest of src/,
    # workflow/, schemas/ and tests/data/ is checked; a mismatch makes it again) is the run without containers
    say "workflow without containers: the CI's reference run of $CONFIG (DMP_REFERENCE_RUN)"
    HOST=$(python tests/helpers/reliability_support.py reference-run)
else
    HOST=$WORK/host
    copy_tree "$WORK/snapshot" "$HOST"
    say "workflow without containers ($CONFIG)"
    # The venv's dmpreserve is an editable install of $REPO/src: run the snapshot's code instead.
    [ "$(cd "$HOST" && PYTHONPATH="$HOST/src" python -c 'import dmpreserve; print(dmpreserve.__file__)')" \
        = "$HOST/src/dmpreserve/__init__.py" ] || fail "the run without containers would not use the snapshot"
    (cd "$HOST" && PYTHONPATH="$HOST/src" snakemake all --cores "$CORES" --configfile "$CONFIG" \
        > "$WORK/host.log" 2>&1) \
        || { tail -n 40 "$WORK/host.log"; fail "workflow without containers"; }
fi
say "workflow with --use-singularity --apptainer-prefix $SIFCACHE"
# Nothing of the host's Python may leak in: the jobs must use the image's interpreter and package.
(cd "$WORK/container" && env -u VIRTUAL_ENV -u PYTHONPATH \
    snakemake all --cores "$CORES" --configfile "$CONFIG" --use-singularity --apptainer-prefix "$SIFCACHE" \
    > "$WORK/container.log" 2>&1) || { tail -n 40 "$WORK/container.log"; fail "workflow with containers"; }

# --- 6. proof and comparison ------------------------------------------------------------------------
say "checking provenance and comparing outputs"
python - "$WORK" "$SIFCACHE" "$HOST" <<'EOF'
import hashlib, json, re, sys
from pathlib import Path

work, cache, host_run = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
image = json.loads((work / "image/image.json").read_text())
sif = json.loads((work / "image/sif.json").read_text())
prov = json.loads((work / "container/results/provenance.json").read_text())
rt, box = prov["runtime"], prov["runtime"].get("container") or {}
seeded = sorted(cache.glob("*.simg"))
problems = []
def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        problems.append(what)
check(len(seeded) == 1, f"one seeded SIF in the apptainer prefix: {[p.name for p in seeded]}")
check(box.get("engine") == "apptainer", f"provenance: engine apptainer ({box.get('engine')})")
check(rt.get("inside_container") == str(seeded[0]), f"provenance: ran in {rt.get('inside_container')}")
digest = hashlib.sha256(seeded[0].read_bytes()).hexdigest()
check(digest == sif["sha256"], f"that SIF's sha256 {digest[:16]}... is the one `image sif` recorded")
check(box.get("image_sha256") == digest, "provenance: the SIF's sha256 seen from inside matches")
check(sif["image_id"] == image["image_id"], f"and was made from image {image['image_id'][:19]}...")
check(rt.get("python_executable", "").startswith("/opt/dmpreserve/"),
      f"provenance: interpreter {rt.get('python_executable')} (the image's venv)")
check(rt.get("python_version", "").startswith("3.11."), f"provenance: Python {rt.get('python_version')}")
labels = box.get("labels", {})
for key in ("version", "revision"):
    k = f"org.opencontainers.image.{key}"
    check(labels.get(k) == image["labels"][k], f"provenance: label {key} = {labels.get(k)}")
host = json.loads((host_run / "results/provenance.json").read_text())
check(host["runtime"]["python_executable"] != rt["python_executable"], "the host run used another interpreter")
log = (work / "container.log").read_text()
ran = len(re.findall(r"^(?:local)?rule (?!all\b)\w+:", log, flags=re.M))
activated = log.count("Activating singularity image")
check(ran > 0 and activated == ran, f"snakemake activated the image for every job ({activated} of {ran})")
sys.exit(1 if problems else 0)
EOF

n=0
for dir in likelihood limits hepdata; do
    [ -d "$HOST/results/$dir" ] || fail "no results/$dir in the run without containers"
    (cd "$HOST/results/$dir" && find . -type f | LC_ALL=C sort) > "$WORK/files.host"
    (cd "$WORK/container/results/$dir" && find . -type f | LC_ALL=C sort) > "$WORK/files.container"
    diff "$WORK/files.host" "$WORK/files.container" || fail "results/$dir: different files"
    while IFS= read -r f; do
        cmp "$HOST/results/$dir/$f" "$WORK/container/results/$dir/$f" || fail "results/$dir/$f differs"
        n=$((n + 1))
    done < "$WORK/files.host"
done
# The HEPData tables themselves (the tarball is compared above; this names the tables).
mkdir -p "$WORK/hd.host" "$WORK/hd.container"
tar -C "$WORK/hd.host" -xzf "$HOST/results/hepdata/submission.tar.gz"
tar -C "$WORK/hd.container" -xzf "$WORK/container/results/hepdata/submission.tar.gz"
diff -r "$WORK/hd.host" "$WORK/hd.container" >/dev/null || fail "HEPData tables differ"
tables=$(find "$WORK/hd.host" -name '*.yaml' | wc -l)
say "byte-identical with and without containers: $n files (likelihood, limits, HEPData; $tables HEPData YAML files)"
say "container stage done"
