#!/usr/bin/env bash
# A fuzzing campaign: runs every cargo-fuzz target of fuzz/Cargo.toml (or
# the ones named) for SECONDS each, on the kept corpus fuzz/corpus/<target>
# (in the repository), and prints per target: wall and CPU seconds
# (libFuzzer's -fork children included), executions, final coverage
# (libFuzzer's cov: edges and ft: features), corpus files and bytes, and
# crashes. Exits 1 if any target crashed (its input is under
# fuzz/artifacts/<target>/, libFuzzer's log under the log directory).
#
#   fuzz/campaign.sh [SECONDS_PER_TARGET] [TARGET...]
#
# Environment:
#   FUZZ_READONLY_CORPUS=1  read the kept corpus, write new inputs to a
#                           scratch directory (CI: the tree stays clean)
#   FUZZ_JOBS=N             libFuzzer -fork=N (default: one process)
#   FUZZ_LOG_DIR=DIR        keep libFuzzer's logs there (default: a
#                           temporary directory, removed unless a crash)
#   FUZZ_NICE=N             nice level (default 10: a shared machine)
#
# Stable toolchain, no sanitizer (-s none), release with debug assertions
# (-O), as .ci/fuzz-smoke. The corpus grows as the run finds inputs; see
# docs/FUZZING.md for minimizing it (`cargo fuzz cmin`) before a commit.
set -uo pipefail
cd "$(dirname "$0")"

seconds=${1:-60}
shift || true
if ! [[ $seconds =~ ^[0-9]+$ ]] || [ "$seconds" -lt 1 ]; then
    echo "usage: fuzz/campaign.sh [SECONDS_PER_TARGET] [TARGET...]" >&2
    exit 2
fi
if [ $# -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi
known=$(cargo fuzz list)
for t in "${targets[@]}"; do
    if ! grep -qx -- "$t" <<<"$known"; then
        echo "fuzz/campaign.sh: no fuzz target named $t (cargo fuzz list)" >&2
        exit 2
    fi
done

logs=${FUZZ_LOG_DIR:-}
own_logs=0
if [ -z "$logs" ]; then
    logs=$(mktemp -d)
    own_logs=1
fi
mkdir -p "$logs"
scratch=""
if [ "${FUZZ_READONLY_CORPUS:-0}" = 1 ]; then
    scratch=$(mktemp -d)
fi
cleanup() {
    [ -n "$scratch" ] && rm -rf "$scratch"
    [ "$own_logs" = 1 ] && [ "${crashed:-0}" = 0 ] && rm -rf "$logs"
}
trap cleanup EXIT

echo "fuzz campaign: ${#targets[@]} target(s), ${seconds} s each; building"
# `cargo fuzz build` takes one target or all of them: named targets are
# built one by one (a few of 44 build in a fraction of the time).
builds=("")
[ $# -gt 0 ] && builds=("${targets[@]}")
for b in "${builds[@]}"; do
    if ! cargo fuzz build -s none -O ${b:+"$b"} >>"$logs/build.log" 2>&1; then
        tail -n 30 "$logs/build.log" >&2
        exit 2
    fi
done

crashed=0
rows=()
for t in "${targets[@]}"; do
    kept="corpus/$t"
    mkdir -p "$kept"
    if [ -n "$scratch" ]; then
        # libFuzzer writes new inputs to the first directory only.
        mkdir -p "$scratch/$t"
        dirs=("$scratch/$t" "$kept")
    else
        dirs=("$kept")
    fi
    fork=()
    [ -n "${FUZZ_JOBS:-}" ] && fork=("-fork=$FUZZ_JOBS" "-ignore_crashes=0")
    log="$logs/$t.log"
    # bash's `time` counts the CPU of every process it waited for, down
    # the tree (libFuzzer's -fork children included): the campaign's
    # budget is CPU time, which wall time only equals on an idle core.
    TIMEFORMAT='%R %U %S'
    { time nice -n "${FUZZ_NICE:-10}" cargo fuzz run -s none -O "$t" "${dirs[@]}" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1 \
        "${fork[@]}" >"$log" 2>&1; } 2>"$logs/$t.time"
    rc=$?
    read -r wall user sys <"$logs/$t.time" || true
    cpu=$(awk -v u="${user:-0}" -v s="${sys:-0}" 'BEGIN { printf "%.0f", u + s }')
    wall=$(awk -v w="${wall:-0}" 'BEGIN { printf "%.0f", w }')
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -n 1)
    # The last status line: "#N  DONE   cov: E ft: F corp: ..."
    status=$(grep -E '^#[0-9]+' "$log" | grep 'cov:' | tail -n 1)
    cov=$(grep -o 'cov: [0-9]*' <<<"$status" | grep -o '[0-9]*')
    ft=$(grep -o 'ft: [0-9]*' <<<"$status" | grep -o '[0-9]*')
    if [ -z "$execs" ]; then
        execs=$(grep -oE '^#[0-9]+' <<<"$status" | tr -d '#')
    fi
    files=$(find "$kept" -type f | wc -l)
    bytes=$(du -sb "$kept" | cut -f1)
    new=0
    [ -n "$scratch" ] && new=$(find "$scratch/$t" -type f | wc -l)
    crash="-"
    if [ $rc -ne 0 ] || grep -qE '^==[0-9]+== ERROR|panicked at|deadly signal' "$log"; then
        crashed=1
        artifact=$(grep -o 'Test unit written to [^ ]*' "$log" | tail -n 1 | sed 's/Test unit written to //')
        crash="CRASH ${artifact:-exit $rc, see $log}"
    fi
    rows+=("$(printf '%-24s %7s %7s %12s %7s %7s %8s %10s %5s  %s' "$t" "$wall" "$cpu" "${execs:-?}" "${cov:-?}" "${ft:-?}" "$files" "$bytes" "$new" "$crash")")
    echo "${rows[-1]}"
done

echo
printf '%-24s %7s %7s %12s %7s %7s %8s %10s %5s  %s\n' target wall-s cpu-s executions cov ft corpus bytes new crash
printf '%s\n' "${rows[@]}"
total=$(du -sb corpus 2>/dev/null | cut -f1)
echo "kept corpus: $(find corpus -type f | wc -l) files, ${total:-0} bytes under fuzz/corpus"
if [ "$crashed" = 1 ]; then
    echo "CRASHES: inputs under fuzz/artifacts/, libFuzzer logs in $logs" >&2
    exit 1
fi
