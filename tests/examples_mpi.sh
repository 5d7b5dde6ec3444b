#!/usr/bin/env bash
# examples_mpi.sh MPIEXEC PROGRAM...: each example program (postag, charlm, g2p) trained under
# `mpirun -np 2` for a fixed number of steps must print one RESULT line (rank 0's), the same
# as the same run on two worker threads (the shards, masks and sums are the same), save a
# checkpoint from rank 0, and that checkpoint must load in a single process. Every run is
# under `timeout`, so a rank waiting for another fails the test instead of hanging it.
set -u
mpiexec=$1
shift
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tapegrad-mpi-examples.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
failed=0
fail() { echo "FAIL $*"; failed=1; }
strip_seconds() { sed 's/ seconds=[0-9]*//'; }

for prog in "$@"; do
    name=$(basename "$prog")
    extra=()
    [[ $name == g2p ]] && extra=(--heatmap "" --curve "" --show 0)
    args=(--minutes 5 --steps 12 --seed 3 --threads 1 "${extra[@]}")
    timeout -k 5 120 "$mpiexec" --oversubscribe -np 2 "$prog" "${args[@]}" --save "$tmp/$name.safetensors" \
        > "$tmp/$name.mpi.log" 2>&1 || { fail "$name under mpirun -np 2: exit status $?"; tail -5 "$tmp/$name.mpi.log"; continue; }
    timeout -k 5 120 "$prog" "${args[@]}" --workers 2 > "$tmp/$name.workers.log" 2>&1 ||
        { fail "$name --workers 2: exit status $?"; continue; }
    n=$(grep -c '^RESULT ' "$tmp/$name.mpi.log")
    [[ $n -eq 1 ]] || fail "$name under mpirun printed $n RESULT lines; rank 0 alone should print"
    ranks=$(grep '^RESULT ' "$tmp/$name.mpi.log" | strip_seconds)
    threads=$(grep '^RESULT ' "$tmp/$name.workers.log" | strip_seconds)
    [[ -n $ranks && $ranks == "$threads" ]] || fail "$name: 2 ranks and 2 workers differ:
    ranks:   $ranks
    workers: $threads"
    [[ $ranks == *steps=12* ]] || fail "$name: not 12 steps: $ranks"
    timeout -k 5 120 "$prog" --minutes 0 --threads 1 "${extra[@]}" --load "$tmp/$name.safetensors" \
        > "$tmp/$name.load.log" 2>&1 && grep -q '^RESULT .*steps=0' "$tmp/$name.load.log" ||
        fail "$name: rank 0's checkpoint does not load in one process: $(tail -2 "$tmp/$name.load.log")"
    [[ $failed -eq 0 ]] && echo "ok   $name: $ranks"
done
exit $failed
