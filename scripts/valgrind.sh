#!/usr/bin/env bash
# valgrind.sh: valgrind memcheck on short runs of every example, of tg-parity on a few
# fixtures and of one test binary. Builds build-valgrind/ (RelWithDebInfo, no sanitizers).
#
#   scripts/valgrind.sh            everything
#   scripts/valgrind.sh NAME...    only these runs (names, custom_cell, charlm, postag, spam,
#                                  g2p, forecast, parity, test_safetensors)
#
# Clean means: no invalid read or write, no use of uninitialised values, no definitely or
# indirectly lost bytes (--errors-for-leak-kinds=definite,indirect). "Possibly lost" and
# still-reachable blocks are not errors (OpenMP's thread pool keeps a few "possibly lost"
# thread stacks for the life of the process). scripts/valgrind.supp suppresses one known
# upstream BLIS 0.9.0 over-read, frame for frame; nothing of tapegrad's. Child processes
# are followed (Criterion re-executes the test binary for each test), except shells and
# python3. The examples train on a tiny copy of data/ for about a second each, save a
# checkpoint and (those that take --load) start a second run from it, on two threads; g2p
# also decodes with that checkpoint twice over (--ensemble) on two worker threads.
#
# An example whose source is missing is skipped with a note; one that does not build counts
# as a failure. Logs: build-valgrind/valgrind/NAME.log. Exits 1 unless every run is clean.
# Environment: VALGRIND_BUILD (default build-valgrind).
set -euo pipefail

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
all_runs=(names custom_cell charlm postag spam g2p forecast parity test_safetensors)
runs=()
for arg in "$@"; do
    case "$arg" in
    -h | --help) usage; exit 0 ;;
    *)
        [[ " ${all_runs[*]} " == *" $arg "* ]] || { echo "valgrind.sh: unknown run '$arg'" >&2; usage >&2; exit 2; }
        runs+=("$arg") ;;
    esac
done
[[ ${#runs[@]} -gt 0 ]] || runs=("${all_runs[@]}")

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
command -v valgrind >/dev/null || {
    echo "valgrind.sh: needs valgrind (apt-get install valgrind)" >&2
    exit 2
}
build=${VALGRIND_BUILD:-build-valgrind}
logs="$build/valgrind"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tg-valgrind.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$logs"

echo "=== configure $build"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTG_SANITIZE= -DTG_BUILD_TESTS=ON -DTG_BUILD_EXAMPLES=ON \
    -DTG_BUILD_BENCH=OFF >"$logs/configure.log" 2>&1 || {
    tail -n 20 "$logs/configure.log" >&2
    exit 2
}

# A tiny copy of the data sets: the examples read, split, train and evaluate in seconds.
data="$tmp/data"
mkdir -p "$data/cmudict" "$data/brown" "$data/spam" "$data/names" "$data/co2"
cp data/co2/co2.csv "$data/co2/co2.csv" # 19 KB: whole, as forecast needs 10 test years and more
head -n 400 data/cmudict/cmudict.tsv >"$data/cmudict/cmudict.tsv"
head -n 150 data/brown/brown.txt >"$data/brown/brown.txt"
awk -F'\t' 'length($0) < 4000 && (($1 == "ham" && h++ < 60) || ($1 == "spam" && s++ < 60))' data/spam/spam.tsv \
    >"$data/spam/spam.tsv"
head -n 300 data/names/female.txt >"$data/names/female.txt"
head -n 300 data/names/male.txt >"$data/names/male.txt"

vg=(valgrind --tool=memcheck --leak-check=full --errors-for-leak-kinds=definite,indirect
    --show-leak-kinds=definite,indirect,possible --track-origins=yes --error-exitcode=99
    --suppressions="$root/scripts/valgrind.supp" --gen-suppressions=all
    --trace-children=yes --trace-children-skip="*/sh,*/bash,*/python3*")

clean=0
dirty=0
notes=()

# check LOG STATUS: one verdict line from valgrind's exit status and its log (the logs of all
# processes, for a test binary), summing errors and leaks over processes.
check() {
    local log=$1 rc=$2 errors lost
    errors=$(grep -Eo 'ERROR SUMMARY: [0-9]+ errors' "$log" | awk '{n += $3} END {print n + 0}')
    lost=$(grep -E '(definitely|indirectly|possibly) lost:' "$log" | sed 's/^==[0-9]*== *//' |
        awk '{gsub(",", "", $3); b[$1] += $3} END {for (k in b) printf "%s%s lost %d bytes", (i++ ? ", " : ""), k, b[k]}')
    if [[ $rc -eq 0 ]]; then
        echo "    clean: $errors errors; ${lost:-no leaks}"
        return 0
    fi
    if [[ $rc -eq 99 ]]; then
        echo "    NOT CLEAN: $errors errors; ${lost:-}; see $log" >&2
    else
        echo "    FAILED: the program exited $rc ($errors valgrind errors); see $log and $log.out" >&2
    fi
    return 1
}

# run NAME LOG COMMAND...: the command under memcheck, following child processes; each
# process writes LOG.PID, joined into LOG afterwards.
run() {
    local name=$1 log=$2
    shift 2
    echo "=== $name: ${*#"$root/"}"
    local rc=0
    rm -f "$log" "$log".[0-9]*
    "${vg[@]}" --log-file="$log.%p" "$@" >"$log.out" 2>&1 || rc=$?
    cat "$log".[0-9]* >"$log" 2>/dev/null || true
    rm -f "$log".[0-9]*
    if check "$log" "$rc"; then clean=$((clean + 1)); else dirty=$((dirty + 1)); fi
}

# build TARGET: builds one target; false (with the log's tail) when it does not build.
build_target() {
    if cmake --build "$build" -j 2 --target "$1" >"$logs/build-$1.log" 2>&1; then return 0; fi
    tail -n 15 "$logs/build-$1.log" >&2
    return 1
}

# Each example's arguments for a run of about a second on the tiny data, small sizes.
example_args() {
    case "$1" in
    names) echo "--minutes 0.02 --hidden 32 --samples 3 --data $data" ;;
    custom_cell) echo "--minutes 0.02 --seq 10 --hidden 8" ;;
    charlm) echo "--minutes 0.02 --hidden 32 --embed 8 --batch 4 --seq 16 --sample-len 20 --data $data" ;;
    postag) echo "--minutes 0.02 --hidden 16 --word-embed 16 --suffix-embed 8 --batch 8 --data $data" ;;
    spam) echo "--minutes 0.02 --hidden 16 --embed 16 --batch 8 --max-tokens 50 --data $data" ;;
    g2p) echo "--minutes 0.02 --hidden 16 --embed 16 --batch 16 --steps 5 --beam 2 --show 2 --eval-every 3" \
        "--heatmap $tmp/g2p_attention.svg --curve $tmp/g2p_curve.svg --data $data" ;;
    forecast) echo "--minutes 0.02 --members 2 --hidden 8 --batch 16 --round 5 --svg $tmp/forecast.svg --data $data" ;;
    esac
}

for name in "${runs[@]}"; do
    case "$name" in
    parity)
        if ! build_target tg-parity; then
            echo "=== parity: FAILED to build" >&2
            dirty=$((dirty + 1))
            continue
        fi
        run parity "$logs/parity.log" "$build/tg-parity" tests/data/rnn/lstm_l2_bi_f64_lengths.safetensors \
            tests/data/rnn/gru_l1_uni_f32.safetensors tests/data/rnn/rnn_relu_l1_bi_f32.safetensors
        ;;
    test_*)
        if ! build_target "$name"; then
            echo "=== $name: FAILED to build" >&2
            dirty=$((dirty + 1))
            continue
        fi
        # Criterion runs each test in a child process: follow them, one at a time.
        run "$name" "$logs/$name.log" "$build/tests/$name" --jobs 1
        ;;
    *)
        if [[ ! -f "examples/$name.c" ]]; then
            echo "=== $name: skipped, examples/$name.c does not exist (yet)"
            notes+=("$name: skipped, no examples/$name.c")
            continue
        fi
        if ! build_target "$name"; then
            echo "=== $name: FAILED to build" >&2
            dirty=$((dirty + 1))
            continue
        fi
        read -r -a args <<<"$(example_args "$name")"
        ckpt="$tmp/$name.safetensors"
        if "$build/examples/$name" --help 2>&1 | grep -q -- '--save'; then
            run "$name" "$logs/$name.log" "$build/examples/$name" "${args[@]}" --save "$ckpt"
            # The second run also uses two BLIS threads, so OpenMP's pool is checked too.
            run "$name --load" "$logs/$name-load.log" "$build/examples/$name" "${args[@]}" --load "$ckpt" \
                --minutes 0.01 --threads 2
            if [[ $name == g2p ]]; then # the ensemble beam search, scored on two worker threads
                run "g2p --ensemble" "$logs/g2p-ensemble.log" "$build/examples/g2p" "${args[@]}" --load "$ckpt" \
                    --ensemble "$ckpt" --minutes 0 --workers 2
            fi
        else
            run "$name" "$logs/$name.log" "$build/examples/$name" "${args[@]}"
        fi
        ;;
    esac
done

echo "=== valgrind: $clean clean, $dirty not clean"
for note in "${notes[@]+"${notes[@]}"}"; do echo "    note: $note"; done
[[ $dirty -eq 0 ]]
