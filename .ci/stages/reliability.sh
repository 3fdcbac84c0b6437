#!/usr/bin/env bash
# CI stage "reliability" (budget 6 min on 2 cores): what `make test` leaves out because it is heavy.
#
#  1. pytest -m reliability: two clean runs of the whole workflow on tests/data/test_config.yaml in
#     different directories (byte-identical results; provenance differs only in when/where), and
#     the SIGKILL crash-safety test (killed mid-mdc and mid-limits_point, resumed with
#     --rerun-incomplete, byte-identical to the clean run).  The clean run is shared by both; in CI it is the
#     one `make test` made of this tree (DMP_REFERENCE_RUN, set by .ci/run; tests/helpers/reliability_support.py).
#     (The hostile-input table, the property tests, the fuzz-corpus replay and the offline CLI steps
#     already ran in `make test`.)
#  2. bounded coverage-guided fuzzing (atheris/libFuzzer) of every parser of user files, FUZZ_SECONDS
#     (default 20) per target, FUZZ_JOBS (default: one per core) targets at a time; a crash fails the stage and
#     leaves its reproducer under
#     $ARTIFACTS/<target>/crash-* -- copy it to tests/robustness/fuzz/corpus/<target>/crash_<what> (it becomes a
#     regression test) and fix the parser.
#
# Environment: FUZZ_SECONDS (default 20), FUZZ_JOBS (default nproc), DMP_FUZZ_ARTIFACTS (default: a temporary directory,
# kept when something crashed), PYTEST_ARGS (extra pytest arguments).  Needs .venv on PATH.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
REPO=$PWD
export PATH="$REPO/.venv/bin:$PATH" MPLBACKEND=Agg
FUZZ_SECONDS=${FUZZ_SECONDS:-20}
TARGETS=(config reduced_data cuts csv workspace archive kit_manifest)
ARTIFACTS=${DMP_FUZZ_ARTIFACTS:-$(mktemp -d "${TMPDIR:-/tmp}/dmpreserve-fuzz.XXXXXX")}
T0=$SECONDS

say() { printf '[reliability %4ds] %s\n' $((SECONDS - T0)) "$*"; }

say "1. reproducibility in two directories and SIGKILL crash safety (pytest -m reliability)"
python -m pytest -q -m reliability -p no:cacheprovider ${PYTEST_ARGS:-} \
    tests/robustness/test_reproducibility.py tests/robustness/test_crash_safety.py

JOBS=${FUZZ_JOBS:-$(nproc)}
say "2. bounded fuzzing: ${#TARGETS[@]} targets x ${FUZZ_SECONDS} s, ${JOBS} at a time (artifacts in $ARTIFACTS)"
mkdir -p "$ARTIFACTS"
fuzz() {  # one target (single-threaded libFuzzer); its exit status in $ARTIFACTS/<target>.rc
    local target=$1 rc=0
    DMP_FUZZ_ARTIFACTS="$ARTIFACTS" timeout $((FUZZ_SECONDS + 60)) \
        python "tests/robustness/fuzz/fuzz_${target}.py" -max_total_time="$FUZZ_SECONDS" -timeout=20 -rss_limit_mb=4096 \
        > "$ARTIFACTS/$target.log" 2>&1 || rc=$?
    echo "$rc" > "$ARTIFACTS/$target.rc"
}
running=0
for target in "${TARGETS[@]}"; do
    fuzz "$target" &
    running=$((running + 1))
    if (( running >= JOBS )); then
        wait -n || true
        running=$((running - 1))
    fi
done
wait
failed=()
for target in "${TARGETS[@]}"; do
    log="$ARTIFACTS/$target.log"
    if [[ $(cat "$ARTIFACTS/$target.rc" 2>/dev/null) == 0 ]]; then
        runs=$(grep -oE 'Done [0-9]+ runs' "$log" | tail -n 1 || true)
        say "   fuzz_${target}: ok (${runs:-no run count})"
    else
        say "   fuzz_${target}: CRASH (see $log)"
        tail -n 30 "$log"
        failed+=("$target")
    fi
done
if (( ${#failed[@]} )); then
    echo "reliability stage: fuzzing found crashes in: ${failed[*]}; reproducers:" >&2
    find "$ARTIFACTS" -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' >&2
    exit 1
fi
[[ -n ${DMP_FUZZ_ARTIFACTS:-} ]] || rm -rf "$ARTIFACTS"
say "reliability stage passed"
