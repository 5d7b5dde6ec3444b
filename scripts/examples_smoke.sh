#!/usr/bin/env bash
# examples_smoke.sh: the CI check of the examples. Builds them in BUILD_DIR (configuring it
# when needed), trains each for a few seconds on the bundled data (with --save when it has
# it), and checks from its last line, `RESULT ... first_loss=X last_loss=Y ...`, that it
# exited 0 and that its training loss went down (Y < X). Then loads each checkpoint with
# --minutes 0 and has it predict (sample, tag, classify, score the test words, forecast both
# series), which must also end in RESULT. Last, the crash check of issue 8 for charlm and
# g2p: a run saving every second is killed with SIGKILL after its second checkpoint, and a
# run with --load must carry on from the step of the last checkpoint the killed run reported
# (g2p's with --label-smoothing and --average, whose checkpoint holds two sets of weights).
# And data-parallel training: postag on 2 worker threads (--workers 2, dropout on) learns, and
# a second run with the same seed ends in the same RESULT line. And g2p's --ensemble: a model
# decoded together with itself scores exactly as alone; without --load, with training, or
# with another program's checkpoint it is refused; --split dev scores the dev words; 2 threads
# score the test words as one does.
#
#   scripts/examples_smoke.sh                 build/, 0.1 minutes each
#   scripts/examples_smoke.sh build-asan      any build folder (a sanitizer build, say)
#   TG_SMOKE_MINUTES=0.25 scripts/examples_smoke.sh
#
# Exits non-zero when any check fails; the last line is "examples smoke: N passed, M failed".
set -uo pipefail

usage() { sed -n '2,21s/^# \{0,1\}//p' "$0"; }
case "${1:-}" in -h | --help) usage; exit 0 ;; esac
cd "$(dirname "${BASH_SOURCE[0]}")/.."
build=${1:-build}
minutes=${TG_SMOKE_MINUTES:-0.1}
examples=(charlm postag spam g2p names custom_cell forecast forecast:births) # PROGRAM[:SERIES]

if [[ ! -f "$build/CMakeCache.txt" ]]; then
    cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release > /dev/null || { echo "examples smoke: cannot configure $build" >&2; exit 1; }
fi
targets=$(printf '%s\n' "${examples[@]%%:*}" | sort -u)
# shellcheck disable=SC2086 # one target a word
cmake --build "$build" -j "$(nproc 2>/dev/null || echo 2)" --target $targets > /dev/null ||
    { echo "examples smoke: the build failed (run: cmake --build $build --target" $targets")" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tapegrad-smoke.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0

# check NAME LOG: the run ended in a RESULT line whose last_loss is below its first_loss.
check() {
    local name=$1 log=$2 result
    result=$(tail -n 1 "$log")
    if [[ $result != RESULT\ * ]]; then
        echo "FAIL $name: the last line is not a RESULT line:"; tail -n 5 "$log" | sed 's/^/    /'
        return 1
    fi
    # awk's numeric comparison is false for nan, so a run without losses fails too.
    if ! awk '{ for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } }
              END { exit !(("first_loss" in v) && ("last_loss" in v) && v["last_loss"] + 0 < v["first_loss"] + 0) }' <<< "$result"; then
        echo "FAIL $name: the loss did not go down: $result"
        return 1
    fi
    echo "ok   $name: $result"
}

for entry in "${examples[@]}"; do
    name=${entry/:/-}
    bin="$build/examples/${entry%%:*}"
    save=(--save "$tmp/$name.safetensors")
    case $name in
    charlm) predict=(--prime "The jury" --sample-len 80) ;;
    postag) predict=(--tag "The quixotic jury deliberated carefully .") ;;
    spam) predict=(--classify "Subject: You WON \$1,000,000!!! Click here now") ;;
    g2p) predict=(--show 3 --heatmap "" --curve "") ;;
    # co2's loss falls only after a few hundred steps, which a loaded machine may not give it
    # in $minutes: a fixed number of steps keeps the check deterministic.
    forecast) predict=(--svg "$tmp/forecast.svg" --steps 800) ;;
    forecast-births) predict=(--series births --svg "" --steps 300) ;;
    *) predict=() save=() ;; # names and custom_cell keep no checkpoint
    esac
    log="$tmp/$name.train.log"
    budget=$minutes
    [[ $name == forecast* ]] && budget=3 # --steps ends it first
    "$bin" --minutes "$budget" --threads 1 --seed 1 "${save[@]}" "${predict[@]}" > "$log" 2>&1
    status=$?
    if [[ $status -ne 0 ]]; then
        echo "FAIL $name: exit status $status (training)"; tail -n 5 "$log" | sed 's/^/    /'
        failed=$((failed + 1))
        continue
    fi
    if check "$name" "$log"; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
    [[ ${#save[@]} -gt 0 ]] || continue
    log="$tmp/$name.load.log"
    if "$bin" --minutes 0 --threads 1 --load "$tmp/$name.safetensors" "${predict[@]}" > "$log" 2>&1 &&
        [[ $(tail -n 1 "$log") == RESULT\ *steps=0* ]]; then
        echo "ok   $name --load: $(tail -n 1 "$log")"
        passed=$((passed + 1))
    else
        echo "FAIL $name --load (exit status or RESULT line):"; tail -n 5 "$log" | sed 's/^/    /'
        failed=$((failed + 1))
    fi
done

# killed NAME: kill -9 a run after its second periodic checkpoint; restart it with --load.
killed() {
    local name=$1 bin="$build/examples/$1" ck="$tmp/$1.killed.safetensors" log="$tmp/$1.killed.log" pid saves=0 i
    local more=() # g2p resumes a checkpoint of averaged weights trained with label smoothing
    [[ $name == g2p ]] && more=(--label-smoothing 0.1 --average 0.99)
    "$bin" --minutes 5 --save-every 0.015 --save "$ck" --threads 1 --seed 2 "${more[@]}" > "$log" 2>&1 &
    pid=$!
    for ((i = 0; i < 1200 && saves < 2; i++)); do # up to 2 minutes (sanitizer builds are slow)
        kill -0 "$pid" 2> /dev/null || break
        sleep 0.1
        saves=$(grep -c "^saved $ck at step" "$log")
    done
    kill -9 "$pid" 2> /dev/null
    wait "$pid" 2> /dev/null
    local at
    at=$(grep "^saved $ck at step" "$log" | tail -n 1 | awk '{ print $NF }')
    if [[ $saves -lt 2 || -z $at ]]; then
        echo "FAIL $name killed: no two checkpoints before the kill:"; tail -n 5 "$log" | sed 's/^/    /'
        return 1
    fi
    log="$tmp/$1.resumed.log"
    "$bin" --minutes 0.03 --save-every 0 --save "$ck" --load "$ck" --threads 1 --seed 2 "${more[@]}" > "$log" 2>&1 || {
        echo "FAIL $name killed: the run with --load failed:"; tail -n 5 "$log" | sed 's/^/    /'
        return 1
    }
    local loaded final
    loaded=$(grep -o "[0-9]* steps trained" "$log" | awk '{ print $1 }')
    final=$(grep "^saved $ck at step" "$log" | tail -n 1 | awk '{ print $NF }')
    if [[ $loaded != "$at" || -z $final || $final -le $at || $(tail -n 1 "$log") != RESULT\ * ]]; then
        echo "FAIL $name killed: last checkpoint at step $at, the restart loaded ${loaded:-nothing} and ended at ${final:-?}"
        tail -n 5 "$log" | sed 's/^/    /'
        return 1
    fi
    echo "ok   $name killed at a checkpoint of step $at: restarted from it and saved again at step $final"
}
for name in charlm g2p; do
    if killed "$name"; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
done

# workers NAME: two runs of 30 steps on 2 workers; the first must learn, the second repeat it.
workers() {
    local name=$1 bin="$build/examples/$1" log i
    for i in 1 2; do
        log="$tmp/$name.workers$i.log"
        "$bin" --workers 2 --steps 30 --minutes 5 --threads 1 --seed 3 > "$log" 2>&1 || {
            echo "FAIL $name --workers 2: exit status $? (run $i)"; tail -n 5 "$log" | sed 's/^/    /'
            return 1
        }
    done
    check "$name --workers 2" "$tmp/$name.workers1.log" || return 1
    # seconds= is the only field that may differ
    if [[ $(tail -n 1 "$tmp/$name.workers1.log" | sed 's/ seconds=[0-9]*//') != \
          $(tail -n 1 "$tmp/$name.workers2.log" | sed 's/ seconds=[0-9]*//') ]]; then
        echo "FAIL $name --workers 2: two runs with seed 3 differ:"; tail -q -n 1 "$tmp/$name".workers?.log | sed 's/^/    /'
        return 1
    fi
    echo "ok   $name --workers 2: a second run with the same seed ends the same"
}
if workers postag; then passed=$((passed + 1)); else failed=$((failed + 1)); fi

# ensemble: g2p's checkpoint of the loop above, decoded as an ensemble of itself and refused.
ensemble() {
    local bin="$build/examples/g2p" ck="$tmp/g2p.safetensors" log="$tmp/g2p.ensemble.log" fields
    [[ -f $ck && -f $tmp/charlm.safetensors ]] || { echo "FAIL g2p --ensemble: no checkpoints from the runs above"; return 1; }
    "$bin" --minutes 0 --threads 1 --load "$ck" --ensemble "$ck" --show 0 --heatmap "" --curve "" > "$log" 2>&1 ||
        { echo "FAIL g2p --ensemble: exit status $?"; tail -n 5 "$log" | sed 's/^/    /'; return 1; }
    scores_of() { tail -n 1 "$1" | grep -o ' \(per\|wer\|wer_any\)=[^ ]*' | tr -d '\n'; }
    fields=$(scores_of "$log")
    if [[ -z $fields || $fields != "$(scores_of "$tmp/g2p.load.log")" ]]; then
        echo "FAIL g2p --ensemble of a model with itself scored${fields:- nothing}, alone$(scores_of "$tmp/g2p.load.log")"
        return 1
    fi
    "$bin" --minutes 0 --threads 1 --load "$ck" --workers 2 --show 0 --heatmap "" --curve "" > "$log" 2>&1
    if [[ $(scores_of "$log") != "$fields" ]]; then
        echo "FAIL g2p --workers 2 scored$(scores_of "$log"), one thread$fields"
        return 1
    fi
    "$bin" --minutes 0 --threads 1 --load "$ck" --split dev --show 0 --heatmap "" --curve "" > "$log" 2>&1
    if [[ $(tail -n 1 "$log") != RESULT\ *split=dev || $(grep -c "^dev: [0-9]* words, beam" "$log") -ne 1 ]]; then
        echo "FAIL g2p --split dev: not a score of the dev words:"; tail -n 3 "$log" | sed 's/^/    /'
        return 1
    fi
    local refused=("--ensemble $ck:2:needs --load" "--load $ck --ensemble $ck --minutes 0.1:2:does not train"
        "--load $ck --ensemble $tmp/charlm.safetensors:1:was not written by g2p" "--split train:2:is test or dev")
    local case args status message
    for case in "${refused[@]}"; do
        IFS=: read -r args status message <<< "$case"
        # shellcheck disable=SC2086 # the arguments are words without spaces
        "$bin" $args --threads 1 --show 0 --heatmap "" --curve "" > "$log" 2>&1
        local got=$?
        if [[ $got -ne $status ]] || ! grep -q -- "$message" "$log"; then
            echo "FAIL g2p $args: exit status $got, expected $status and \"$message\":"; tail -n 3 "$log" | sed 's/^/    /'
            return 1
        fi
    done
    echo "ok   g2p --ensemble: a model with itself scores$fields as alone, and so do 2 threads; --split dev scores dev;" \
        "${#refused[@]} misuses refused"
}
if ensemble; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
echo "examples smoke: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
