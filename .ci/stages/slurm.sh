#!/usr/bin/env bash
# CI stage "slurm": the workflow's toy scatter on a real single-node SLURM cluster (budget 5 min).
#
#  1. start the cluster with ../shared/tools/slurm-local (Debian slurm-wlm + munge, no accounting,
#     so the executor polls with `--slurm-status-command squeue`);
#  2. run the limits target of the test configuration -- mock data, selection, backgrounds,
#     signal, likelihood (the selection as `select_part` jobs, one per group of science files, and
#     their gather), the toy stage (`toys_shard`, one SLURM job per reference shape and shard,
#     merged by `thresholds` into the threshold table), then the per-mass limit jobs (`limits_point`,
#     one SLURM job per mass) and their gather -- with
#     `snakemake --executor slurm --workflow-profile workflow/profiles/slurm`, then provenance;
#  3. prove that the jobs ran under SLURM: the job ids Snakemake submitted, the ids each rule's
#     log reports (dmpreserve logs SLURM_JOB_ID) and the one in provenance.json must agree, and
#     squeue must list them as COMPLETED;
#  4. run the same targets locally in a second copy (in CI: take the reference run that `make test` made of this
#     tree, DMP_REFERENCE_RUN, set by .ci/run) and require byte-identical results (every file under the SLURM
#     run's results/ except logs/; provenance.json over those files, except where it ran);
#  5. stop the cluster (trap, also on failure or interruption).
#
# A run that overstays its budget is stopped with SIGINT (timeout -s INT), so that Snakemake
# cancels its SLURM jobs (scancel) before exiting.  Needs root (slurm-local) and .venv on PATH.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
REPO=$PWD
SLURM_LOCAL=${SLURM_LOCAL:-$REPO/../shared/tools/slurm-local}
CONFIG=tests/data/test_config.yaml
SNAKEMAKE_TIMEOUT_S=${SNAKEMAKE_TIMEOUT_S:-300}
export PATH="$REPO/.venv/bin:$PATH" VIRTUAL_ENV="$REPO/.venv"

if [[ ! -x $SLURM_LOCAL ]]; then
    echo "slurm stage: $SLURM_LOCAL not found (needs ../shared/tools)" >&2
    exit 1
fi
if [[ $(id -u) != 0 ]]; then
    echo "slurm stage: slurm-local must run as root" >&2
    exit 1
fi

WORK=$(mktemp -d /tmp/dmpreserve-slurm.XXXXXX)
cleanup() {
    local rc=$?
    echo "--- stopping the SLURM cluster"
    "$SLURM_LOCAL" stop || true
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "--- starting the SLURM cluster"
PARTITION=$(SLURM_LOCAL_ACCOUNTING=none "$SLURM_LOCAL" start)
echo "partition: $PARTITION"
sinfo

copy_repo() {  # a clean working copy (no results, no Snakemake metadata); tar is on every machine
    mkdir -p "$1"
    tar -C "$REPO" --exclude=.venv --exclude=results --exclude=.snakemake --exclude=./benchmarks/data \
        --exclude=.git -cf - . | tar -C "$1" -xf -
}
copy_repo "$WORK/slurm"

# What runs: the limit scatter (rule limits_point, one job per mass, where the workflow has it)
# and its gather; provenance is run afterwards on what the scatter made.
TARGETS=(results/limits/limits.csv results/limits/limits.json)

echo "--- toy scatter under SLURM (executor slurm, workflow profile workflow/profiles/slurm)"
SECONDS=0
(
    cd "$WORK/slurm"
    timeout -s INT -k 30 "$SNAKEMAKE_TIMEOUT_S" \
        snakemake "${TARGETS[@]}" --executor slurm --workflow-profile workflow/profiles/slurm \
        --configfile "$CONFIG" --slurm-status-command squeue --slurm-no-account \
        --slurm-init-seconds-before-status-checks 3 --slurm-keep-successful-logs \
        2>&1 | tee "$WORK/snakemake_slurm.log"
    exit "${PIPESTATUS[0]}"
)
echo "SLURM run: ${SECONDS} s"

if [[ -n ${DMP_REFERENCE_RUN:-} ]]; then
    # .ci/run: the clean local run of the test configuration that `make test` made from this tree (its digest of
    # src/, workflow/, schemas/ and tests/data/ is checked; a mismatch makes it again); it ran every target, a
    # superset of the ones here
    echo "--- the same targets locally: the CI's reference run (DMP_REFERENCE_RUN)"
    LOCAL=$(python tests/helpers/reliability_support.py reference-run)
else
    echo "--- the same targets locally"
    LOCAL=$WORK/local
    copy_repo "$LOCAL"
    SECONDS=0
    (
        cd "$LOCAL"
        timeout -s INT -k 30 "$SNAKEMAKE_TIMEOUT_S" \
            snakemake "${TARGETS[@]}" --cores 2 --configfile "$CONFIG" > "$WORK/snakemake_local.log" 2>&1
    )
    echo "local run: ${SECONDS} s"
fi

echo "--- provenance of both runs over the SLURM run's files (SLURM: as a SLURM job)"
FILES=$(cd "$WORK/slurm" && find results -type f ! -path 'results/logs/*' ! -name provenance.json | sort | tr '\n' ' ')
provenance_cmd() {  # provenance_cmd OUTPUT
    echo "dmpreserve provenance --config $CONFIG --inputs $CONFIG --outputs $FILES --output $1"
}
(cd "$WORK/slurm" && srun --partition "$PARTITION" --job-name dmpreserve-provenance \
    bash -c "$(provenance_cmd results/provenance.json) > results/logs/provenance.log 2>&1")
(cd "$LOCAL" && bash -c "$(provenance_cmd "$WORK/local_provenance.json") > $WORK/local_provenance.log 2>&1")

echo "--- proof that the jobs ran under SLURM"
python - "$WORK" <<'EOF'
import json, re, subprocess, sys
from pathlib import Path

work = Path(sys.argv[1])
run = work / "slurm"
submitted = set(re.findall(r"submitted with SLURM jobid (\d+)", (work / "snakemake_slurm.log").read_text()))
if not submitted:
    sys.exit("no 'submitted with SLURM jobid' lines in the Snakemake log")
in_logs = {}
for log in sorted((run / "results" / "logs").rglob("*.log")):
    m = re.search(r"running in SLURM job (\d+)", log.read_text(errors="replace"))
    if m:
        in_logs[str(log.relative_to(run))] = m.group(1)
steps = {k: v for k, v in in_logs.items() if not k.endswith("provenance.log")}
if not steps:
    sys.exit("no rule log names a SLURM job")
stray = {k: v for k, v in steps.items() if v not in submitted}
if stray:
    sys.exit(f"rule logs name SLURM jobs Snakemake did not submit: {stray}")
prov = json.loads((run / "results" / "provenance.json").read_text())
batch = prov["runtime"].get("batch_system") or {}
if not batch.get("slurm_job_id"):
    sys.exit("provenance.json does not record a SLURM job")
squeue = subprocess.run(["squeue", "-h", "-t", "all", "-o", "%i %T %j"], capture_output=True, text=True,
                        check=True).stdout.split("\n")
states = {line.split()[0]: line.split()[1] for line in squeue if line.strip()}
not_done = {j: states.get(j, "not listed") for j in submitted if states.get(j) != "COMPLETED"}
if not_done:
    sys.exit(f"SLURM jobs not COMPLETED: {not_done}")
points = sorted(k for k in steps if "limits_point" in k)
shards = sorted(k for k in steps if "logs/toys/" in k)
if not shards:
    sys.exit("no toy shard (rule toys_shard) ran as a SLURM job")
parts = sorted(k for k in steps if "logs/select_part/" in k)
if not parts:
    sys.exit("no select part (rule select_part) ran as a SLURM job")
print(f"{len(submitted)} SLURM jobs submitted and COMPLETED: {sorted(submitted, key=int)}")
print(f"{len(steps)} rule logs name their SLURM job ({len(parts)} select parts, {len(shards)} toy shards, "
      f"{len(points)} per-mass limit jobs); e.g.")
for k in list(steps)[:3] + parts[:1] + shards[:2] + points[:2]:
    print(f"  {k}: SLURM job {steps[k]}")
print(f"provenance.json: runtime.batch_system = {json.dumps(batch, sort_keys=True)}")
EOF

echo "--- byte-identical results (SLURM vs local)"
python - "$WORK" "$LOCAL" <<'EOF'
import hashlib, json, sys
from pathlib import Path

work, local = Path(sys.argv[1]), Path(sys.argv[2])

slurm = work / "slurm"
# the SLURM run's result files; the same names are compared in the local run (the reference run has more)
names = [str(p.relative_to(slurm)) for p in sorted((slurm / "results").rglob("*"))
         if p.is_file() and "logs" not in p.relative_to(slurm).parts and p.name != "provenance.json"]

def sha256(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None

a = {n: sha256(slurm / n) for n in names}
b = {n: sha256(local / n) for n in names}
missing = [n for n in names if b[n] is None]
if missing:
    sys.exit(f"files of the SLURM run missing from the local run: {missing}")
diff = sorted(k for k in a if a[k] != b[k])
if diff:
    sys.exit(f"files differ between the SLURM and the local run: {diff}")
pa = json.loads((work / "slurm" / "results" / "provenance.json").read_text())
pb = json.loads((work / "local_provenance.json").read_text())
for doc in (pa, pb):
    doc.pop("runtime"), doc.pop("git_commit")
if pa != pb:
    sys.exit("provenance.json differs beyond runtime/git_commit")
print(f"{len(a)} result files byte-identical; provenance identical except where it ran")
EOF
echo "slurm stage: OK"
