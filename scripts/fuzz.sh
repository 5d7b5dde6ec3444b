#!/usr/bin/env bash
# fuzz.sh: builds the libFuzzer targets (fuzz/, clang, ASan+UBSan) and runs each in turn for
# SECONDS (default 60), seeded with the repository's real files.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# Targets: safetensors params_load checkpoint cmudict brown spam vocab (default: all of them).
# Seeds: tests/data/safetensors, tests/data/rnn (the safetensors targets), real checkpoints
# that tg-fuzz-checkpoint-seeds saves afresh (checkpoint), slices of data/* (the dataset
# readers; data/full too when fetched), and every committed regression input in
# tests/data/fuzz/TARGET/. New inputs collect in OUT/corpus/TARGET/ (kept between runs),
# crashes, leaks, timeouts and out-of-memory inputs in OUT/crashes/TARGET/, libFuzzer's
# output in OUT/logs/TARGET.log. A crash does not stop a target: it fuzzes on for its time.
#
# Environment: FUZZ_BUILD (build folder, default build-fuzz), FUZZ_OUT (default
# FUZZ_BUILD/fuzz-out), CC (default clang), FUZZ_ARGS (more libFuzzer flags).
#
# Exits 1 when any target crashed in this run, and lists each input with the command that
# replays it. Make each one a regression input: copy it to tests/data/fuzz/TARGET/ (named
# after the bug), where tests/test_fuzz_regressions.c replays it in the ordinary test suite.
set -euo pipefail

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
all_targets=(safetensors params_load checkpoint cmudict brown spam vocab)
seconds=60
targets=()
for arg in "$@"; do
    case "$arg" in
    -h | --help) usage; exit 0 ;;
    *[!0-9]*)
        [[ " ${all_targets[*]} " == *" $arg "* ]] || { echo "fuzz.sh: unknown target '$arg'" >&2; usage >&2; exit 2; }
        targets+=("$arg") ;;
    *) seconds=$arg ;;
    esac
done
[[ ${#targets[@]} -gt 0 ]] || targets=("${all_targets[@]}")

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
build=${FUZZ_BUILD:-build-fuzz}
out=${FUZZ_OUT:-$build/fuzz-out}
cc=${CC:-clang}
command -v "$cc" >/dev/null || {
    echo "fuzz.sh: needs clang and libFuzzer: apt-get install clang libclang-rt-14-dev" >&2
    exit 2
}
grep -q 'add_subdirectory(fuzz)' CMakeLists.txt || {
    echo "fuzz.sh: CMakeLists.txt does not add fuzz/ (if(TG_BUILD_FUZZ) add_subdirectory(fuzz) endif())" >&2
    exit 2
}

exes=()
for t in "${targets[@]}"; do exes+=("tg-fuzz-${t//_/-}"); done
[[ " ${targets[*]} " != *" checkpoint "* ]] || exes+=(tg-fuzz-checkpoint-seeds)
echo "=== build: $build (CC=$cc)"
mkdir -p "$out/logs"
if ! { cmake -S . -B "$build" -DCMAKE_C_COMPILER="$cc" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTG_BUILD_FUZZ=ON \
    -DTG_BUILD_TESTS=OFF -DTG_BUILD_EXAMPLES=OFF -DTG_BUILD_BENCH=OFF &&
    cmake --build "$build" -j 2 --target "${exes[@]}"; } >"$out/logs/build.log" 2>&1; then
    tail -n 30 "$out/logs/build.log" >&2
    echo "fuzz.sh: the build failed (log: $out/logs/build.log)" >&2
    exit 2
fi

# slices FILE DEST PREFIX LINES COUNT: COUNT pieces of LINES lines from over the whole file,
# each a seed of its own (the readers want whole lines ending in a newline).
slices() {
    local file=$1 dest=$2 prefix=$3 lines=$4 count=$5 total step
    [[ -f "$file" ]] || return 0
    total=$(wc -l <"$file")
    step=$(((total - lines) / count))
    [[ $step -gt 0 ]] || step=1
    for ((i = 0; i < count; i++)); do
        local from=$((1 + i * step))
        sed -n "${from},$((from + lines - 1))p" "$file" >"$dest/$prefix-$i"
        [[ -s "$dest/$prefix-$i" ]] || rm -f "$dest/$prefix-$i"
    done
}

# seeds TARGET DEST: the target's seed corpus from the repository's files.
seeds() {
    local t=$1 dest=$2 f
    rm -rf "$dest"
    mkdir -p "$dest"
    case "$t" in
    safetensors | params_load)
        for f in tests/data/safetensors/*.safetensors tests/data/rnn/*.safetensors; do
            [[ $(stat -c %s "$f") -le 32768 ]] && cp "$f" "$dest/"
        done ;;
    checkpoint)
        # Checkpoints of the target's parameters, saved now (so always of the current format),
        # beside the committed ones of the same names.
        "$build/fuzz/tg-fuzz-checkpoint-seeds" "$dest"
        for f in "$dest"/*; do mv "$f" "$dest/fresh-${f##*/}"; done ;;
    cmudict)
        slices data/cmudict/cmudict.tsv "$dest" small 30 12
        slices data/full/cmudict/cmudict.tsv "$dest" full 30 8 ;;
    brown)
        slices data/brown/brown.txt "$dest" small 4 12
        slices data/full/brown/brown-original-tags.txt "$dest" original 4 8 ;;
    spam)
        # Messages under 3 kB, a few at a time.
        awk 'length($0) < 3000' data/spam/spam.tsv >"$dest/.short"
        slices "$dest/.short" "$dest" small 3 12
        rm -f "$dest/.short" ;;
    vocab)
        # Vocabularies as tg_ex_vocab_save writes them: words, tags, characters.
        local reserved=$'<pad>\n<unk>\n<s>\n</s>'
        { echo "$reserved"; head -n 200 data/cmudict/cmudict.tsv | cut -f1; } >"$dest/words"
        { echo "$reserved"; head -n 50 data/brown/brown.txt | tr ' ' '\n' | sed 's|.*/||' | sort -u | grep .; } >"$dest/tags"
        { echo "$reserved"; head -c 4000 data/spam/spam.tsv | cut -f3 | fold -w1 | grep -v '^[\\]$' | sort -u | grep .; } >"$dest/chars" ;;
    esac
    if [[ -d "tests/data/fuzz/$t" ]]; then
        for f in "tests/data/fuzz/$t"/*; do [[ -f "$f" ]] && cp "$f" "$dest/"; done
    fi
    return 0
}

stamp="$out/.start"
touch "$stamp"
status=0
summary=()
for t in "${targets[@]}"; do
    exe="$build/fuzz/tg-fuzz-${t//_/-}"
    corpus="$out/corpus/$t" crashes="$out/crashes/$t" seed="$out/seeds/$t" log="$out/logs/$t.log"
    mkdir -p "$corpus" "$crashes"
    seeds "$t" "$seed"
    max_len=16384
    flags=()
    case "$t" in
    safetensors | params_load)
        max_len=32768
        flags+=(-dict="$root/fuzz/safetensors.dict") ;;
    checkpoint)
        flags+=(-dict="$root/fuzz/checkpoint.dict") ;;
    esac
    echo "=== $t: ${seconds} s, seeds $(find "$seed" -type f | wc -l), corpus $(find "$corpus" -type f | wc -l), log $log"
    # Fork mode with the ignore flags: a crash is saved and fuzzing goes on until the time is up.
    rc=0
    ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1} \
        "$exe" -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len="$max_len" \
        -artifact_prefix="$crashes/" -print_final_stats=1 "${flags[@]}" ${FUZZ_ARGS:-} \
        "$corpus" "$seed" >"$log" 2>&1 || rc=$?
    found=$(find "$crashes" -type f -newer "$stamp" \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | sort)
    last=$(grep -E '^#[0-9]+:? .*cov:' "$log" | tail -n 1 || true)
    n_found=$(grep -c . <<<"$found" || true)
    summary+=("$t: ${seconds} s, ${last:-no progress line (see $log)}; $n_found new crash inputs")
    if [[ $n_found -gt 0 ]]; then
        status=1
        echo "=== $t: $n_found inputs crashed it; replay one with: $exe FILE"
        sed 's/^/    /' <<<"$found"
    elif [[ -z "$last" ]]; then
        status=1
        echo "=== $t: libFuzzer did not run (exit $rc); see $log" >&2
    fi
done

echo "=== summary"
printf '%s\n' "${summary[@]}"
exit "$status"
