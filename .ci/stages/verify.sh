#!/usr/bin/env bash
# CI stage "verify": published curves are reproduced (budget 10 min on 2 cores; step 2 runs on one core
# beside steps 3-5).
#
#  1. rerun the whole default analysis (workflow/config/config.yaml) in a scratch copy of the
#     repository and check the new limits against the project's own published curve,
#     tests/data/published/limits_default.csv, with a tight tolerance (the pipeline is deterministic);
#  2. closure: reinterpret the default SI model from the new reinterpretation kit (with the kit's toy
#     settings where the pipeline used toys) at 7 of its 25 masses (every 4th and the last) and check that it
#     reproduces the pipeline's limits there (rtol 1e-3; the issue asks for 1%; tests/pipeline checks the
#     test configuration's asymptotic limits at every mass), with the same limits.csv columns and the same
#     structured statistics in limits.json;
#  3. XENON1T 2018: reinterpret our SI spectra with the 2018 halo through the collaboration's binwise
#     approximate likelihood (../shared/reference/xenon1t_2018) and require the published limit within
#     10% for m >= 20 GeV; the lower masses are reported (not required);
#  4. XENONnT 2026 (../shared/reference/xenonnt_2026_light_dm): import-release, reinterpret SI with the
#     release's own yield morphing, published observed limit within 15% at every published mass, 3-12 GeV
#     (~1.5 min on 2 cores); the asymptotic sensitivity band is reported against the published one (not required).
#  5. LZ WS2022 from its released events (workflow/analyses/lz_ws2022, ../shared/reference/lz_ws2022) through
#     the whole DAG with its unbinned likelihood and per-mass toys (~5 min on 2 cores): the unconstrained limit
#     within 25% of LZ's non-power-constrained curve at every mass from 10 GeV to 10 TeV, the power-constrained
#     limit within 25% of LZ's curve at all its 44 points (9.1-493 GeV), the median sensitivity within 15%
#     of LZ's power-constrained floor at 34-42 GeV (LZ's critical power is the median), the band's quantiles against
#     fresh thresholds there (tests/pipeline/test_lz_band.py, ~15 s), per-mass ratio tables
#     printed, the fit's count per component within 1 sigma of LZ's Table I, and the closure of the LZ kit's unbinned
#     likelihood (asymptotic CLs at three masses, and the kit's per-mass toys at 46.2 GeV, rtol 1e-6; ~25 s).
#
# Environment: SNAKEMAKE_TIMEOUT_S (default 450) limits the rerun; RTOL_OWN (default 1e-6) the tolerance of step 1.
# UPDATE_PUBLISHED=1 copies the new curve over tests/data/published/limits_default.csv instead of
# checking it (after an intended change of the results).  Needs .venv on PATH.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
REPO=$PWD
export PATH="$REPO/.venv/bin:$PATH" MPLBACKEND=Agg
# one BLAS thread per process: the limits are many small fits, and oversubscribed threads slow them ~5x
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
RTOL_OWN=${RTOL_OWN:-1e-6}
SNAKEMAKE_TIMEOUT_S=${SNAKEMAKE_TIMEOUT_S:-450}  # the default analysis takes ~3.5 min on 2 cores (staterror toys)
REFERENCE=${REFERENCE:-$REPO/../shared/reference/xenon1t_2018}
PUBLISHED=tests/data/published/limits_default.csv
SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/dmpreserve-verify.XXXXXX")
CLOSURE_PID=
trap '[[ -n $CLOSURE_PID ]] && kill "$CLOSURE_PID" 2>/dev/null; rm -rf "$SCRATCH"' EXIT
# the copy of the repository, with ../shared beside it as in the checkout (the LZ analysis reads ../shared/reference)
WORK=$SCRATCH/repo
mkdir "$WORK"
[[ -d $REPO/../shared ]] && ln -s "$(cd "$REPO/../shared" && pwd)" "$SCRATCH/shared"

echo "-- 1. rerun the default analysis in $WORK"
# a copy of the working tree without local state (tar: on every machine, unlike rsync)
tar -C "$REPO" --exclude=.venv --exclude=results --exclude=.snakemake --exclude=.git -cf - . | tar -C "$WORK" -xf -
(cd "$WORK" && time timeout "$SNAKEMAKE_TIMEOUT_S" snakemake results/limits/limits.csv results/reinterpretation/kit.json \
    --cores 2 --configfile workflow/config/config.yaml > "$WORK/snakemake.log" 2>&1) \
    || { tail -n 40 "$WORK/snakemake.log"; exit 1; }
if [[ ${UPDATE_PUBLISHED:-0} == 1 ]]; then
    cp "$WORK/results/limits/limits.csv" "$PUBLISHED"
    echo "updated $PUBLISHED"
else
    dmpreserve verify --reference "$PUBLISHED" --result "$WORK/results/limits/limits.csv" --rtol "$RTOL_OWN"
fi

echo "-- 2. closure: reinterpret the default model from the kit (with the pipeline's toy settings if it used toys)"
echo "   at every 4th mass of the pipeline's grid and the last (the same computation at every mass: 7 of 25 masses"
echo "   cost a quarter of the CPU); one core, in the background while steps 3-5 run (checked at the end)"
TOYS=()
grep -q '"neyman_threshold": *"toys"' "$WORK/results/reinterpretation/kit.json" && TOYS=(--toys)
PICK='import sys; from dmpreserve.artifacts.limits import read_limits; '
PICK+='m = [repr(float(x)) for x in read_limits(sys.argv[1]).mass_gev]; '
PICK+='print(",".join(dict.fromkeys(m[::4] + m[-1:])))'
CLOSURE_MASSES=$(python -c "$PICK" "$WORK/results/limits/limits.csv")
dmpreserve reinterpret --kit "$WORK/results/reinterpretation" --model workflow/config/signal_model.yaml \
    --masses "$CLOSURE_MASSES" -o "$WORK/closure" --no-progress "${TOYS[@]}" 2> "$WORK/closure.log" &
CLOSURE_PID=$!
check_closure() {
    echo "-- 2. closure (result): the pipeline's limits at the masses $CLOSURE_MASSES GeV"
    wait "$CLOSURE_PID" || { tail -n 20 "$WORK/closure.log"; return 1; }
    dmpreserve verify --reference "$WORK/closure/limits.csv" --result "$WORK/results/limits/limits.csv" --rtol 1e-3
    # the same columns (toy columns with toys) and the method recorded the same way
    [ "$(head -n 1 "$WORK/closure/limits.csv")" = "$(head -n 1 "$WORK/results/limits/limits.csv")" ] \
        || { echo "closure: limits.csv columns differ from the pipeline's"; return 1; }
    python -c 'import json, sys; s = [json.load(open(p))["statistics"] for p in sys.argv[1:]]; sys.exit(s[0] != s[1])' \
        "$WORK/closure/limits.json" "$WORK/results/limits/limits.json" \
        || { echo "closure: limits.json statistics differ from the pipeline's"; return 1; }
}

echo "-- 3. XENON1T 2018 (binwise approximate likelihood, our SI spectra, 2018 halo)"
if [[ ! -f $REFERENCE/XENON1T_binwise_NR_LL.json ]]; then
    echo "verify stage: XENON1T release not found at $REFERENCE (see ../shared/reference/README.md)" >&2
    exit 1
fi
dmpreserve reinterpret --kit "$REFERENCE" --model workflow/config/models/si_shm2018.yaml -o "$WORK/xenon1t" \
    2> "$WORK/xenon1t.log" || { tail -n 20 "$WORK/xenon1t.log"; exit 1; }
dmpreserve verify --reference "$REFERENCE/xenon1t_1ty.csv" --result "$WORK/xenon1t/limits.csv" --rtol 0.10 \
    --mass-range 20:
echo "-- below 20 GeV (reported, not required; the approximate likelihood is less accurate there):"
dmpreserve verify --reference "$REFERENCE/xenon1t_1ty.csv" --result "$WORK/xenon1t/limits.csv" --rtol 100 \
    --mass-range 0:19.99

echo "-- 4. XENONnT 2026 light-DM template release: import-release, reinterpret SI, published limit within 15%"
XE26=${XE26:-$REPO/../shared/reference/xenonnt_2026_light_dm}
if [[ ! -d $XE26/templates ]]; then
    echo "verify stage: XENONnT 2026 release not found at $XE26 (see its README_STAGING.md)" >&2
    exit 1
fi
time dmpreserve import-release --release "$XE26" -o "$WORK/xe26_kit" 2> "$WORK/xe26.log" || { tail -n 20 "$WORK/xe26.log"; exit 1; }
printf 'model: si\n' > "$WORK/si.yaml"
time dmpreserve reinterpret --kit "$WORK/xe26_kit" --model "$WORK/si.yaml" -o "$WORK/xe26_si" --no-progress \
    2>> "$WORK/xe26.log" || { tail -n 20 "$WORK/xe26.log"; exit 1; }
dmpreserve verify --reference "$XE26/limits/sr2/xenonnt_2026_wimp_si.csv" --reference-column upper_limit \
    --result "$WORK/xe26_si/limits.csv" --rtol 0.15 --mass-range 3:12
echo "-- sensitivity band, asymptotic (reported, not required: docs/reinterpretation.md):"
BAND=(expected_m2sigma_cm2:sensitivity_-2 expected_m1sigma_cm2:sensitivity_-1 expected_cm2:sensitivity_0)
BAND+=(expected_p1sigma_cm2:sensitivity_1 expected_p2sigma_cm2:sensitivity_2)
for pair in "${BAND[@]}"; do
    echo "   ours ${pair%%:*} vs published ${pair#*:}"
    dmpreserve verify --reference "$XE26/limits/sr2/xenonnt_2026_wimp_si.csv" --reference-column "${pair#*:}" \
        --result "$WORK/xe26_si/limits.csv" --column "${pair%%:*}" --rtol 100 --mass-range 3:12 | tail -n +2
done

echo "-- 5. LZ WS2022 from its released events through the DAG, against LZ's published curves and Table I"
LZ=$REPO/../shared/reference/lz_ws2022
if [[ ! -f $LZ/lz_ws2022_wimp_data.csv ]]; then
    echo "verify stage: LZ WS2022 release not found at $LZ (see ../shared/reference/README.md)" >&2
    exit 1
fi
(cd "$WORK" && time timeout "$SNAKEMAKE_TIMEOUT_S" snakemake all --cores 2 \
    --configfile workflow/analyses/lz_ws2022/config.yaml > "$WORK/lz.log" 2>&1) || { tail -n 40 "$WORK/lz.log"; exit 1; }
LZR=$WORK/results/lz_ws2022/limits/limits.csv
status=0
echo "unconstrained limit (Neyman t~mu, unbinned likelihood, per-mass toys) vs LZ's non-power-constrained curve:"
echo "  required within 25% at every mass from 10 GeV to 10 TeV (the issue's target; measured 0.91-1.23, the largest at"
echo "  16.5 GeV, inside a dip of LZ's curve between our masses 14.4 and 18.2 GeV; docs/analyses.md)"
dmpreserve verify --reference "$LZ/LZ_2022_non-power-constrained.txt" --result "$LZR" \
    --column limit_unconstrained_cm2 --rtol 0.25 --mass-range 10:10000 || status=1
echo "power-constrained limit (pi_crit = 0.5, the analysis's statistics.pcl_power) vs LZ's power-constrained curve:"
echo "  required within 25% at all of LZ's 44 points, 9.1-493 GeV (measured 0.87-1.15 on 2026-12-02; docs/analyses.md)"
dmpreserve verify --reference "$LZ/LZ_2022_power-constrained.txt" --result "$LZR" --column limit_cm2 --rtol 0.25 \
    --mass-range 9:10000 || status=1
echo "band: at its reported quantiles (11.4 and 46 GeV) fresh thresholds exclude that fraction of the background-only"
echo "  datasets (tests/pipeline/test_lz_band.py; 6 interpolation points left the 11.4 GeV median at 23.5%)"
DMPRESERVE_LZ_RESULTS=$WORK/results/lz_ws2022 python -m pytest -q -rP -p no:cacheprovider \
    tests/pipeline/test_lz_band.py -m verify_stage || status=1
echo "critical power: our median sensitivity against LZ's flat power-constrained floor (34-42 GeV) within 15%"
dmpreserve verify --reference "$LZ/LZ_2022_power-constrained.txt" --result "$LZR" --column expected_cm2 --rtol 0.15 \
    --mass-range 34:42 || status=1
echo "background-only fit per component vs LZ's published fit (arXiv:2207.03764, Table I): within 1 sigma"
dmpreserve verify-yields --fit "$WORK/results/lz_ws2022/fit/fit.json" \
    --published workflow/analyses/lz_ws2022/published_yields.csv || status=1
echo "kit closure: SI reinterpreted from the LZ kit's unbinned likelihood (asymptotic CLs at three masses) equals the"
echo "  pipeline's (rtol 1e-6; the kit folds the model through its fine NR response and smooths it as the pipeline)"
dmpreserve reinterpret --kit "$WORK/results/lz_ws2022/reinterpretation" --model "$WORK/si.yaml" --asymptotic \
    --masses 11.3702,46.2295,2459.51 -o "$WORK/lz_kit" --no-progress 2>> "$WORK/lz.log" || { tail -n 20 "$WORK/lz.log"; exit 1; }
dmpreserve verify --reference "$WORK/lz_kit/limits.csv" --result "$LZR" --column limit_cls_cm2 \
    --reference-column limit_cls_cm2 --rtol 1e-6 || status=1
echo "  and with the kit's own method (per-mass toys, regression) at 46.2 GeV alone: the pipeline's limit (rtol 1e-6)"
dmpreserve reinterpret --kit "$WORK/results/lz_ws2022/reinterpretation" --model "$WORK/si.yaml" --masses 46.2295 \
    -o "$WORK/lz_kit_toys" --no-progress 2>> "$WORK/lz.log" || { tail -n 20 "$WORK/lz.log"; exit 1; }
for column in limit_cm2 limit_unconstrained_cm2; do
    dmpreserve verify --reference "$WORK/lz_kit_toys/limits.csv" --result "$LZR" --column "$column" \
        --reference-column "$column" --rtol 1e-6 | tail -n 1 || status=1
done
check_closure || status=1
CLOSURE_PID=
exit $status
