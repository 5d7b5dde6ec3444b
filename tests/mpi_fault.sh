#!/usr/bin/env bash
# mpi_fault.sh MPIRUN PROGRAM: a rank killed with SIGKILL mid-training ends the whole MPI
# job within 30 s, with a message naming the lost rank, and a restart from the last
# checkpoint on another number of ranks continues from its step.
#
# PROGRAM is mpi_fault_train (tests/mpi_fault_train.c). Every wait has a deadline, and
# every mpirun runs under timeout, so a hang fails the test instead of stalling it.
set -uo pipefail
mpirun=$1
program=$2
dir=$(mktemp -d "${TMPDIR:-/tmp}/tg_mpi_fault.XXXXXX")
job=
cleanup() {
    [[ -n "$job" ]] && kill -9 "$job" 2>/dev/null
    rm -rf "$dir"
}
trap cleanup EXIT
fail() {
    echo "mpi_fault.sh: FAIL: $*" >&2
    for f in "$dir"/*.log; do [[ -f "$f" ]] && { echo "--- $f" >&2; cat "$f" >&2; }; done
    exit 1
}
ckpt=$dir/model.safetensors
run=("$mpirun" --oversubscribe)

# 1. Three ranks train for far longer than the test lasts, saving every step.
timeout -k 5 120 "${run[@]}" -np 3 "$program" "$ckpt" 100000 --pause-ms 50 >"$dir/first.log" 2>&1 &
job=$!
for _ in $(seq 1 300); do # up to 30 s to start and save 3 steps
    grep -q '^saved step 3 ' "$dir/first.log" && break
    kill -0 "$job" 2>/dev/null || fail "the first run ended before step 3"
    sleep 0.1
done
grep -q '^saved step 3 ' "$dir/first.log" || fail "no step 3 within 30 s"
victim=$(awk '$1 == "rank" && $2 == 1 && $3 == "pid" {print $4}' "$dir/first.log")
[[ -n "$victim" ]] || fail "rank 1 did not print its pid"

# 2. Kill rank 1; the job must end, with a non-zero status, within 30 s.
kill -9 "$victim" || fail "could not kill rank 1 (pid $victim)"
killed_at=$(date +%s)
for _ in $(seq 1 300); do
    kill -0 "$job" 2>/dev/null || break
    sleep 0.1
done
if kill -0 "$job" 2>/dev/null; then
    fail "the job still runs 30 s after rank 1 was killed"
fi
wait "$job"
status=$?
job=
echo "mpi_fault.sh: the job ended $(($(date +%s) - killed_at)) s after rank 1 was killed, status $status"
[[ $status -ne 0 ]] || fail "mpirun exited 0 after losing a rank"
# Open MPI 4.1: "mpirun noticed that process rank 1 with PID ... exited on signal 9 (Killed)."
grep -Eq 'rank 1 .*(signal 9|Killed)' "$dir/first.log" || fail "no message names the lost rank 1"
last=$(awk '$1 == "saved" {s = $3} END {print s}' "$dir/first.log")
[[ -n "$last" ]] || fail "no saved step"

# 3. Restart on two ranks from the checkpoint: it resumes at the last saved step (or the
#    one after it, if that save completed before its line was printed) and trains on.
timeout -k 5 60 "${run[@]}" -np 2 "$program" "$ckpt" 3 --resume --pause-ms 0 >"$dir/second.log" 2>&1 ||
    fail "the restart failed (status $?)"
resumed=$(awk '$1 == "resuming" {print $4}' "$dir/second.log")
[[ "$resumed" == "$last" || "$resumed" == $((last + 1)) ]] || fail "resumed at step '$resumed', last saved $last"
grep -q "^done at step $((resumed + 3))\$" "$dir/second.log" || fail "the restart did not train on to step $((resumed + 3))"
echo "mpi_fault.sh: killed at step $last, resumed at step $resumed on 2 ranks, done at step $((resumed + 3))"
