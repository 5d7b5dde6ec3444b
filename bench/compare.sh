#!/usr/bin/env bash
# compare.sh: tapegrad against PyTorch on the benchmark configurations, in one run.
#
#   bench/compare.sh [--threads N] [--rounds R] [--rss] [CONFIG...]
#
# For each configuration it runs PyTorch's anchors/torch_bench.py and tg-bench in turn, R
# times (default 2), alternating so that a load on this shared machine falls on both, and
# prints the best time of each with the ratio (PyTorch's time / ours: above 1, ours is
# faster). --rss adds each process's peak resident memory (GNU time's %M, the largest of
# the rounds) and ours as a fraction of PyTorch's. Needs Debian's python3-torch, the anchor
# script in ../shared/anchors (or TG_TORCH_BENCH), and a build in build/ (TG_BENCH to point
# elsewhere).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
threads=1 rounds=2 rss=0 configs=()
while [[ $# -gt 0 ]]; do
    case "$1" in
    --threads) threads=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --rss) rss=1; shift ;;
    -h | --help) sed -n '2,13s/^# \{0,1\}//p' "$0"; exit 0 ;;
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
[[ $rss -eq 0 || -x /usr/bin/time ]] || { echo "compare.sh: --rss needs GNU time (apt-get install time)" >&2; exit 2; }
rss_file=$(mktemp "${TMPDIR:-/tmp}/tapegrad-compare.XXXXXX")
trap 'rm -f "$rss_file"' EXIT
# timed CMD...: runs CMD, its output on stdout; with --rss its peak RSS in kB goes to rss_file.
timed() {
    if [[ $rss -eq 1 ]]; then /usr/bin/time -f %M -o "$rss_file" "$@"; else "$@"; fi
}
max_of() { awk -v a="$1" -v b="$2" 'BEGIN { print (b == "" || a > b) ? a : b }'; }
min_of() { awk -v a="$1" -v b="$2" 'BEGIN { print (b == "" || a < b) ? a : b }'; }

if [[ $rss -eq 1 ]]; then
    printf "%-16s %8s %12s %12s %8s %10s %10s %8s\n" config threads "torch ms" "tapegrad ms" ratio "torch MB" "tapegrad MB" "MB ratio"
else
    printf "%-16s %8s %12s %12s %8s\n" config threads "torch ms" "tapegrad ms" ratio
fi
for c in "${configs[@]}"; do
    best_t="" best_o="" rss_t="" rss_o=""
    for ((r = 0; r < rounds; r++)); do
        t=$(timed /usr/bin/python3 "$torch_bench" "$threads" "$c" | ms_of)
        [[ $rss -eq 0 ]] || rss_t=$(max_of "$(tail -n 1 "$rss_file")" "$rss_t")
        o=$(timed "$tg_bench" "$c" --threads "$threads" | ms_of)
        [[ $rss -eq 0 ]] || rss_o=$(max_of "$(tail -n 1 "$rss_file")" "$rss_o")
        best_t=$(min_of "$t" "$best_t")
        best_o=$(min_of "$o" "$best_o")
    done
    ratio=$(awk -v a="$best_t" -v b="$best_o" 'BEGIN { print a / b }')
    if [[ $rss -eq 1 ]]; then
        printf "%-16s %8d %12.2f %12.2f %7.2fx %10.0f %10.0f %8.2f\n" "$c" "$threads" "$best_t" "$best_o" "$ratio" \
            "$(awk -v k="$rss_t" 'BEGIN { print k / 1024 }')" "$(awk -v k="$rss_o" 'BEGIN { print k / 1024 }')" \
            "$(awk -v a="$rss_o" -v b="$rss_t" 'BEGIN { print a / b }')"
    else
        printf "%-16s %8d %12.2f %12.2f %7.2fx\n" "$c" "$threads" "$best_t" "$best_o" "$ratio"
    fi
done
