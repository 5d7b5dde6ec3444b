#!/usr/bin/env bash
# example.sh: installs what is missing (scripts/deps.sh), builds tapegrad in build/ and runs
# the flagship example on its bundled data. Extra arguments go to the example.
#
#   scripts/example.sh                 names, one minute of training
#   scripts/example.sh --minutes 3     any of the example's options (--help lists them)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release > /dev/null
cmake --build build -j "$(nproc 2>/dev/null || echo 2)" --target names
if [[ $# -eq 0 ]]; then set -- --minutes 1; fi
exec build/examples/names "$@"
