#!/usr/bin/env bash
# compare.sh: tapegrad against PyTorch on the benchmark configurations, in one run.
#
#   bench/compare.sh [--threads N] [--rounds R] [CONFIG...]
#
# For each configuration it runs PyTorch's anchors/torch_bench.py and tg-bench in turn, R
# times (default 2), alternating so that a load on this shared machine falls on both, and
# prints the best time of each with the ratio (PyTorch's time / ours: above 1, ours is
# faster). Needs Debian's python3-torch, the anchor script in ../shared/anchors (or
# TG_TORCH_BENCH), and a build in build/ (TG_BENCH to point elsewhere).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
threads=1 rounds=2 configs=()
while [[ $# -gt 0 ]]; do
    case "$1" in
    --threads) threads=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    -h | --help) sed -n '2,11s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) configs+=("$1"); shift ;;
    esac
done
[[ ${#configs[@]} -gt 0 ]] || configs=(lm-lstm-small lm-lstm-cells lm-gru-small lm-rnn-small lm-lstm-tiny-b1 bilstm-cls s2s-gru-attn lm-lstm-2x512)
torch_bench=${TG_TORCH_BENCH:-../shared/anchors/torch_bench.py}
tg_bench=${TG_BENCH:-build/bench/tg-bench}
[[ -f "$torch_bench" ]] || { echo "compare.sh: no $torch_bench (set TG_TORCH_BENCH)" >&2; exit 2; }
[[ -x "$tg_bench" ]] || { echo "compare.sh: no $tg_bench; build first (cmake -B build && cmake --build build)" >&2; exit 2; }
/usr/bin/python3 -c "import torch" 2>/dev/null || { echo "compare.sh: Debian's python3-torch is missing (apt-get install python3-torch)" >&2; exit 2; }

ms_of() { awk '{for (i = 1; i <= NF; i++) if ($(i + 1) == "ms/step") print $i}'; }
printf "%-16s %8s %12s %12s %8s\n" config threads "torch ms" "tapegrad ms" ratio
for c in "${configs[@]}"; do
    best_t="" best_o=""
    for ((r = 0; r < rounds; r++)); do
        t=$(/usr/bin/python3 "$torch_bench" "$threads" "$c" | ms_of)
        o=$("$tg_bench" "$c" --threads "$threads" | ms_of)
        best_t=$(awk -v a="$t" -v b="$best_t" 'BEGIN { print (b == "" || a < b) ? a : b }')
        best_o=$(awk -v a="$o" -v b="$best_o" 'BEGIN { print (b == "" || a < b) ? a : b }')
    done
    printf "%-16s %8d %12.2f %12.2f %7.2fx\n" "$c" "$threads" "$best_t" "$best_o" "$(awk -v a="$best_t" -v b="$best_o" 'BEGIN { print a / b }')"
done
