#!/usr/bin/env bash
# example.sh: installs what is missing (scripts/deps.sh), builds tapegrad in build/ and runs
# the flagship example, g2p (spelling -> pronunciation on the bundled CMUdict subset): two
# minutes of training, then phoneme and word error rates on words it never saw, a few of
# them pronounced, and g2p_attention.svg and g2p_curve.svg in the folder it is run from (the
# curve needs two dev evaluations; g2p says when there were fewer).
# Extra arguments go to g2p.
#
#   scripts/example.sh                 two minutes of training on 2 threads
#   scripts/example.sh --minutes 5     any of g2p's options (--help lists them)
set -euo pipefail
here=$PWD # the pictures go here, where the header says, not into the repository
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bash scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release > /dev/null
cmake --build build -j "$(nproc 2>/dev/null || echo 2)" --target g2p
if [[ $# -eq 0 ]]; then set -- --minutes 2 --threads 2; fi
cd "$here"
exec "$root/build/examples/g2p" "$@"
