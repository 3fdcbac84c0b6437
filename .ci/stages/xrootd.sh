#!/usr/bin/env bash
# CI stage "xrootd": the workflow reads its science run from a real XRootD data lake (budget 8 min).
#
#  1. install Debian's xrootd-server if it is missing (the Python XRootD client and
#     snakemake-storage-plugin-xrootd come with the project venv, env/requirements.txt);
#  2. in a clean copy of the repository, generate the test configuration's mock science run (rule mdc; in CI
#     the one of the reference run that `make test` made of this tree, DMP_REFERENCE_RUN, set by .ci/run)
#     and split it with `dmpreserve partition` into 4 Parquet files with their sidecars (live times
#     summing exactly to the original's);
#  3. start xrootd on localhost (its own configuration in a temporary directory, exporting only that
#     directory's export/ read-only; port 1094, or a free one if 1094 is taken), stopped by the EXIT trap;
#  4. run the test configuration twice, in two clean copies: inputs.science as the local directory of
#     the 4 files, and inputs.science as the root://localhost:PORT//export/science/ URL (files listed),
#     retrieved by snakemake-storage-plugin-xrootd;
#  5. require the likelihood, the limits and the HEPData tarball to be byte-identical (cmp), and the
#     provenance of the XRootD run to record the URL, the local copies' sha256 and the plugin's version.
#
# Needs root (apt-get; xrootd itself runs as the unprivileged user `xrootd` that the package creates)
# and .venv on PATH.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
REPO=$PWD
CONFIG=tests/data/test_config.yaml
SNAKEMAKE_TIMEOUT_S=${SNAKEMAKE_TIMEOUT_S:-420}
export PATH="$REPO/.venv/bin:$PATH" VIRTUAL_ENV="$REPO/.venv" MPLBACKEND=Agg

if ! command -v xrootd > /dev/null; then
    echo "--- installing xrootd-server (Debian)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq xrootd-server > /dev/null
fi
python -c "import XRootD.client, snakemake_storage_plugin_xrootd" || {
    echo "xrootd stage: the XRootD client or snakemake-storage-plugin-xrootd is missing from .venv (make venv)" >&2
    exit 1
}

WORK=$(mktemp -d /tmp/dmpreserve-xrootd.XXXXXX)
XRD_PID=
cleanup() {
    local rc=$?
    if [[ -n $XRD_PID ]] && kill -0 "$XRD_PID" 2> /dev/null; then
        echo "--- stopping xrootd (pid $XRD_PID)"
        kill "$XRD_PID" || true
        wait "$XRD_PID" 2> /dev/null || true
    fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

copy_repo() {  # a clean working copy (no results, no Snakemake metadata); tar is on every machine
    mkdir -p "$1"
    tar -C "$REPO" --exclude=.venv --exclude=results --exclude=.snakemake --exclude=./benchmarks/data \
        --exclude=.git -cf - . | tar -C "$1" -xf -
}

echo "--- the mock science run, split into 4 files"
if [[ -n ${DMP_REFERENCE_RUN:-} ]]; then
    # .ci/run: the mock science run of the reference run that `make test` made of this tree (digest checked)
    MDC=$(python tests/helpers/reliability_support.py reference-run)
else
    MDC=$WORK/mdc
    copy_repo "$MDC"
    (cd "$MDC" && snakemake results/mdc/science.parquet --cores 2 --configfile "$CONFIG" > "$WORK/mdc.log" 2>&1) \
        || { tail -n 40 "$WORK/mdc.log"; exit 1; }
fi
SERVED=$WORK/lake/export/science
dmpreserve partition --input "$MDC/results/mdc/science.parquet" --parts 4 --outdir "$SERVED"
FILES=$(cd "$SERVED" && ls -- *.parquet | sort | paste -sd, -)

echo "--- starting xrootd"
PORT=1094
if python -c "import socket, sys; s = socket.socket(); sys.exit(s.connect_ex(('127.0.0.1', $PORT)) != 0)"; then
    PORT=$(python -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
fi
mkdir -p "$WORK/lake/admin" "$WORK/lake/run" "$WORK/lake/home"
cat > "$WORK/lake/xrootd.cfg" << EOF
# dmpreserve CI: serve only $WORK/lake/export, read-only
xrd.port $PORT
xrd.network nodnr
all.role server
all.adminpath $WORK/lake/admin
all.pidpath $WORK/lake/run
oss.localroot $WORK/lake
all.export /export r/o
EOF
chmod -R a+rX "$WORK"
chown -R xrootd: "$WORK/lake/admin" "$WORK/lake/run" "$WORK/lake/home"
(cd "$WORK/lake/home" && exec xrootd -c "$WORK/lake/xrootd.cfg" -R xrootd > "$WORK/lake/xrootd.log" 2>&1) &
XRD_PID=$!
for _ in $(seq 50); do
    grep -q "initialization completed" "$WORK/lake/xrootd.log" 2> /dev/null && break
    kill -0 "$XRD_PID" 2> /dev/null || { cat "$WORK/lake/xrootd.log"; echo "xrootd did not start" >&2; exit 1; }
    sleep 0.2
done
grep -q "initialization completed" "$WORK/lake/xrootd.log" || { cat "$WORK/lake/xrootd.log"; exit 1; }
URL="root://localhost:$PORT//export/science/"
echo "xrootd (pid $XRD_PID) serves $URL: ${FILES//,/ }"
python - "$URL" << 'EOF'
import sys
from XRootD import client

status, listing = client.FileSystem(sys.argv[1]).dirlist("/export/science")
if not status.ok:
    sys.exit(f"xrootd listing failed: {status.message}")
print("listed:", " ".join(sorted(e.name for e in listing)))
EOF

cat > "$WORK/local.yaml" << EOF
inputs:
  science: {location: $SERVED}
EOF
cat > "$WORK/xrootd.yaml" << EOF
inputs:
  science:
    location: $URL
    files: [$FILES]
EOF

run() {  # run NAME CONFIG [snakemake options]: the whole workflow in a clean copy
    local name=$1 overlay=$2
    shift 2
    copy_repo "$WORK/$name"
    SECONDS=0
    (cd "$WORK/$name" && timeout -s INT -k 30 "$SNAKEMAKE_TIMEOUT_S" \
        snakemake --cores 2 --configfile "$CONFIG" "$overlay" "$@" > "$WORK/$name.log" 2>&1) \
        || { tail -n 60 "$WORK/$name.log"; echo "xrootd stage: the $name run failed" >&2; exit 1; }
    echo "$name run: ${SECONDS} s"
}
echo "--- the test configuration on the local directory"
run local "$WORK/local.yaml"
echo "--- the test configuration through XRootD (snakemake-storage-plugin-xrootd)"
run xrootd "$WORK/xrootd.yaml" --storage-xrootd-max-requests-per-second 50
grep -q "Retrieving from storage: $URL" "$WORK/xrootd.log" || { echo "nothing was retrieved from $URL" >&2; exit 1; }

echo "--- byte-identical results (XRootD vs local files)"
COMPARED=(likelihood/BkgOnly.json likelihood/patchset.json limits/limits.csv limits/limits.json)
COMPARED+=(hepdata/submission.tar.gz)
for f in "${COMPARED[@]}"; do
    cmp "$WORK/local/results/$f" "$WORK/xrootd/results/$f"
    echo "identical: results/$f"
done
python - "$WORK/xrootd/results/provenance.json" "$URL" << 'EOF'
import json, sys

doc = json.load(open(sys.argv[1]))
science = doc["input_datasets"]["science"]
assert science["location"] == sys.argv[2], science["location"]
assert science["plugin"]["name"] == "snakemake-storage-plugin-xrootd", science["plugin"]
assert all(f["location"].startswith(sys.argv[2]) and len(f["sha256"]) == 64 for f in science["files"])
print(f"provenance: {len(science['files'])} files from {science['location']} "
      f"({science['plugin']['name']} {science['plugin']['version']})")
EOF
echo "xrootd stage: OK"
