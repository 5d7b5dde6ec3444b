#!/usr/bin/env bash
# soak.sh: builds tg-soak (bench/soak.c, Release, in build-soak/) and trains its small LSTM
# language model for 20,000 steps, reporting resident memory after warm-up and at the end
# (Rss from /proc/self/smaps_rollup after malloc_trim, and VmRSS). Fails when Rss grew by 1%
# or more.
#
#   scripts/soak.sh                   20,000 steps, memory first read after step 100
#   scripts/soak.sh [TG-SOAK OPTIONS] passed on: --steps N --warmup N --max-growth PCT --threads N
#
# Takes about 3 minutes on one core. The last line is tg-soak's
#   RESULT steps=... rss_start_kb=... rss_end_kb=... growth_pct=... vmrss_start_kb=... ...
# Environment: SOAK_BUILD (build folder, default build-soak).
set -euo pipefail

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
for arg in "$@"; do
    case "$arg" in -h | --help) usage; exit 0 ;; esac
done

cd "$(dirname "${BASH_SOURCE[0]}")/.."
build=${SOAK_BUILD:-build-soak}
mkdir -p "$build"
echo "=== build tg-soak in $build"
if ! { cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DTG_SANITIZE= -DTG_BUILD_TESTS=OFF \
    -DTG_BUILD_EXAMPLES=OFF -DTG_BUILD_BENCH=ON &&
    cmake --build "$build" -j 2 --target tg-soak; } >"$build/soak-build.log" 2>&1; then
    tail -n 20 "$build/soak-build.log" >&2
    echo "soak.sh: cannot build tg-soak (is bench/soak.c in bench/CMakeLists.txt?); log: $build/soak-build.log" >&2
    exit 2
fi
echo "=== $build/bench/tg-soak $*"
exec "$build/bench/tg-soak" "$@"
