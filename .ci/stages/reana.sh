#!/usr/bin/env bash
# CI stage "reana" (budget 2-3 min): REANA submission files and Snakemake compatibility.
#
#   1. reana-client validate of reana.yaml and the HTCondor/Slurm variants (workflow/reana/), in
#      its own virtual environment (its pins, e.g. jsonschema 3.2, conflict with pyhf's)
#   2. the Snakefile (and the variants) parse and dry-run under Snakemake 7.32.4 (REANA 0.9) in
#      another virtual environment, and under the pinned 9.x (.venv, REANA 0.95), on the default
#      and the test configuration, in a copy of exactly what reana.yaml uploads
#   3. snakemake --lint (pinned 9.x) and the variants' compute_backend hints on every job
#   4. the likelihood sha256 in tests/deploy/reana/likelihood.feature against results/ when results/ holds
#      a run of the default configuration (warning only: results/ may be older than the checkout)
#
# The two virtual environments are cached in ${DMP_CI_CACHE:-~/.cache/dmpreserve}/ (first creation
# ~1-2 min from PyPI).  `.ci/stages/reana.sh --update-checksums` writes the sha256 of
# results/likelihood/{BkgOnly,patchset}.json (a `make run` of the default configuration) into
# tests/deploy/reana/likelihood.feature.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
REPO=$PWD
FEATURE=tests/deploy/reana/likelihood.feature
PY=${PYTHON:-python3}

# Exact versions: reana-client 0.9.6 (last stable; its validate loads the workflow with its own
# Snakemake 7.32.4); Snakemake 7.32.4 as in REANA 0.9, which needs PuLP < 2.8.
REANA_PINS=(reana-client==0.9.6)
SNAKEMAKE7_PINS=(snakemake==7.32.4 pulp==2.7.0)
CACHE=${DMP_CI_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dmpreserve}
T0=$SECONDS
say() { printf '[reana %4ds] %s\n' $((SECONDS - T0)) "$*"; }
fail() { echo "reana stage: FAILED: $*" >&2; exit 1; }

update_checksums() {
    python - "$FEATURE" <<'EOF'
import hashlib, json, re, sys
from pathlib import Path
feature = Path(sys.argv[1])
from dmpreserve.config import load_config
prov = json.loads(Path("results/provenance.json").read_text())
if prov["config"]["sha256"] != load_config("workflow/config/config.yaml").sha256:
    sys.exit("results/ is not a run of workflow/config/config.yaml (its resolved configuration differs): "
             "run `make run` first")
text = feature.read_text()
for name in ("BkgOnly.json", "patchset.json"):
    path = f"results/likelihood/{name}"
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    text, n = re.subn(rf'(the sha256 checksum of the file "{re.escape(path)}" should be ")[0-9a-f]{{64}}"',
                      rf'\g<1>{digest}"', text)
    if n != 1:
        sys.exit(f"{feature}: no sha256 step for {path}")
    print(f"{path}: {digest}")
feature.write_text(text)
EOF
}
if [ "${1:-}" = --update-checksums ]; then update_checksums; exit 0; fi

venv() {  # venv NAME PINS... : a cached virtual environment holding exactly these pins
    local dir=$CACHE/$1; shift
    local stamp="$*"
    if [ ! -f "$dir/.pins" ] || [ "$(cat "$dir/.pins")" != "$stamp" ]; then
        say "creating $dir ($stamp)" >&2
        rm -rf "$dir"
        "$PY" -m venv "$dir"
        "$dir/bin/python" -m pip install --quiet --no-input --disable-pip-version-check "$@" 2>&1 \
            | grep -v "^WARNING: Location" >&2 || true
        "$dir/bin/python" -m pip show "${1%%==*}" >/dev/null || fail "could not install $*"
        echo "$stamp" > "$dir/.pins"
    fi
    echo "$dir"
}

REANA_VENV=$(venv reana-client-venv "${REANA_PINS[@]}" | tail -n 1)
SM7_VENV=$(venv snakemake7-venv "${SNAKEMAKE7_PINS[@]}" | tail -n 1)
SPECS=(reana.yaml workflow/reana/reana-htcondor.yaml workflow/reana/reana-slurm.yaml)

# --- 1. reana-client validate ---------------------------------------------------------------------
for spec in "${SPECS[@]}"; do
    say "reana-client validate -f $spec"
    out=$("$REANA_VENV/bin/reana-client" validate -f "$spec" 2>&1) || { echo "$out"; fail "reana-client validate -f $spec"; }
    grep -q "SUCCESS: Valid REANA specification file" <<<"$out" || { echo "$out"; fail "$spec: not reported valid"; }
    if grep -E "ERROR|Traceback" <<<"$out"; then fail "$spec: errors in reana-client validate"; fi
done

# --- 2./3. Snakemake 7.32.4 and 9.x: parse, dry-run, lint, backend hints -------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/dmp-reana.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
# Exactly what reana.yaml uploads (inputs.files and inputs.directories), plus the test configuration.
python - "$WORK/upload" <<'EOF'
import shutil, sys, yaml
from pathlib import Path
dest = Path(sys.argv[1])
spec = yaml.safe_load(open("reana.yaml"))
for f in spec["inputs"]["files"] + ["tests/data/test_config.yaml"]:
    (dest / f).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(f, dest / f)
for d in spec["inputs"]["directories"]:
    shutil.copytree(d, dest / d, ignore=shutil.ignore_patterns("__pycache__"))
EOF

dry_run() {  # dry_run LABEL SNAKEMAKE SNAKEFILE CONFIG
    local label=$1 smk=$2 snakefile=$3 config=$4 log
    log="$WORK/dry-$label-$(basename "$snakefile")-$(basename "$config").log"
    (cd "$WORK/upload" && "$smk" -n --snakefile "$snakefile" --configfile "$config" > "$log" 2>&1) \
        || { tail -n 30 "$log"; fail "$label: dry run of $snakefile with $config"; }
    grep -qE "^total +[0-9]+" "$log" || { tail -n 30 "$log"; fail "$label: no jobs in the dry run of $snakefile"; }
    echo "$log"
}
for label in "snakemake-7.32.4:$SM7_VENV/bin/snakemake" "snakemake-$(snakemake --version):$(command -v snakemake)"; do
    name=${label%%:*}; smk=${label#*:}
    [ "$name" != snakemake-7.32.4 ] || [ "$("$smk" --version)" = 7.32.4 ] || fail "$smk is not 7.32.4"
    for config in workflow/config/config.yaml tests/data/test_config.yaml; do
        say "$name: dry run of Snakefile with $config"
        log=$(dry_run "$name" "$smk" Snakefile "$config")
        jobs=$(awk '/^total/ {print $2; exit}' "$log")
        say "  $jobs jobs"
    done
    for backend in htcondor:htcondorcern slurm:slurmcern; do
        say "$name: dry run of workflow/reana/Snakefile.${backend%%:*}"
        log=$(dry_run "$name" "$smk" "workflow/reana/Snakefile.${backend%%:*}" tests/data/test_config.yaml)
        python - "$log" "${backend#*:}" <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
jobs = re.findall(r"^\s+resources: (.*)$", text, flags=re.M)
bad = [j for j in jobs if f"compute_backend={sys.argv[2]}" not in j]
if not jobs or bad:
    sys.exit(f"jobs without compute_backend={sys.argv[2]}: {len(bad)} of {len(jobs)}")
print(f"  compute_backend={sys.argv[2]} on all {len(jobs)} jobs")
EOF
    done
done
say "snakemake --lint (pinned $(snakemake --version))"
(cd "$WORK/upload" && snakemake --lint --configfile tests/data/test_config.yaml > "$WORK/lint.log" 2>&1) \
    || { cat "$WORK/lint.log"; fail "snakemake --lint"; }

# --- 4. the published likelihood's sha256 ----------------------------------------------------------------
is_default_run() {  # results/ holds a run of the default configuration (same resolved-config hash)
    [ -f results/provenance.json ] || return 1
    python - <<'EOF'
import json, sys
from dmpreserve.config import load_config
prov = json.load(open("results/provenance.json"))
sys.exit(prov["config"]["sha256"] != load_config("workflow/config/config.yaml").sha256)
EOF
}
if is_default_run; then
    cp "$FEATURE" "$WORK/feature.orig"
    cp "$FEATURE" "$WORK/feature.new"
    FEATURE=$WORK/feature.new update_checksums >/dev/null
    if cmp -s "$WORK/feature.orig" "$WORK/feature.new"; then
        say "likelihood sha256 in $FEATURE matches results/ (default configuration)"
    else
        echo "WARNING: the likelihood in results/ differs from the sha256 in $FEATURE;" \
             "if the analysis changed on purpose: make run && .ci/stages/reana.sh --update-checksums"
    fi
else
    say "no default-configuration run in results/: likelihood sha256 not compared"
fi
say "reana stage done"
