#!/usr/bin/env bash
# test.sh: installs what is missing (scripts/deps.sh), builds tapegrad in build/ (Release)
# and runs its tests, then builds it again in build-asan/ with AddressSanitizer and
# UndefinedBehaviorSanitizer and runs the tests there too (the examples' included), and in
# build-tsan/ with ThreadSanitizer, where only the thread tests run (test_threads: graphs on
# several threads, the data-parallel trainer), so that any data race fails the suite. With
# Open MPI installed (deps.sh installs it), the Release and ASan builds also run the MPI
# trainer's tests under mpirun (tests/test_mpi.c, tests/mpi_fault.sh).
#
#   scripts/test.sh                  all three builds
#   scripts/test.sh --no-sanitize    build/ only
#
# Exits non-zero when anything fails. The last line is "N passed, M failed", counting the
# CTest tests of all runs; a build that fails to configure or compile counts as 1 failed.
set -euo pipefail

usage() { sed -n '2,14s/^# \{0,1\}//p' "$0"; }
sanitize=1
for arg in "$@"; do
    case "$arg" in
    --no-sanitize) sanitize=0 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "test.sh: unknown option '$arg'" >&2; usage >&2; exit 2 ;;
    esac
done

cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/deps.sh

jobs=$(nproc 2>/dev/null || echo 2)
timeout=${TG_TEST_TIMEOUT:-600} # seconds per test: a hung test fails instead of stalling CI
passed=0
failed=0
status=0
log=$(mktemp "${TMPDIR:-/tmp}/tapegrad-ctest.XXXXXX")
trap 'rm -f "$log"' EXIT

# run NAME BUILD_DIR CMAKE_ARGS...: configure, build, run ctest; adds to the counts.
run() {
    local name=$1 dir=$2
    shift 2
    echo "=== $name: configure and build in $dir"
    if ! cmake -S . -B "$dir" "$@" || ! cmake --build "$dir" -j "$jobs"; then
        echo "=== $name: BUILD FAILED" >&2
        failed=$((failed + 1))
        status=1
        return
    fi
    echo "=== $name: ctest"
    local rc=0
    ctest --test-dir "$dir" --output-on-failure --no-tests=error --timeout "$timeout" 2>&1 | tee "$log" ||
        rc=$?
    # "100% tests passed, 0 tests failed out of 10"
    local summary total nfail
    summary=$(grep -Eo '[0-9]+ tests? failed out of [0-9]+' "$log" | tail -n 1 || true)
    if [[ -n "$summary" ]]; then
        nfail=${summary%% *}
        total=${summary##* }
        passed=$((passed + total - nfail))
        failed=$((failed + nfail))
    elif [[ $rc -ne 0 ]]; then
        failed=$((failed + 1)) # ctest itself failed (no tests found, or it crashed)
    fi
    if [[ $rc -ne 0 ]]; then
        echo "=== $name: TESTS FAILED" >&2
        status=1
    fi
}

run "release" build -DCMAKE_BUILD_TYPE=Release
if [[ $sanitize -eq 1 ]]; then
    # With the examples: their tests and short training runs (examples_smoke) under the sanitizers.
    run "asan+ubsan" build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTG_SANITIZE=address,undefined \
        -DTG_BUILD_EXAMPLES=ON -DTG_BUILD_BENCH=OFF
    # tests/CMakeLists.txt defines only test_threads in a TSan build.
    run "tsan" build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTG_SANITIZE=thread \
        -DTG_BUILD_EXAMPLES=OFF -DTG_BUILD_BENCH=OFF
fi

echo "$passed passed, $failed failed"
exit "$status"
