#!/usr/bin/env bash
# tg-parity on damaged fixtures: every one must be reported (ERROR or FAIL) with exit
# status 1, never a crash.   parity_damaged.sh TG_PARITY GOOD_FIXTURE
set -uo pipefail
parity=$1 good=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
size=$(stat -c %s "$good")
files=()
: > "$tmp/empty.safetensors"
head -c 4096 /dev/urandom > "$tmp/garbage.safetensors"
files+=("$tmp/empty.safetensors" "$tmp/garbage.safetensors")
for cut in 1 7 8 9 64 $((size / 3)) $((size / 2)) $((size - 9)) $((size - 1)); do
    head -c "$cut" "$good" > "$tmp/cut$cut.safetensors"
    files+=("$tmp/cut$cut.safetensors")
done
# A changed value in the data section: PyTorch's files carry no checksum, so this must show
# as a mismatch against the reference.
cp "$good" "$tmp/flipped.safetensors"
printf '\x7f' | dd of="$tmp/flipped.safetensors" bs=1 seek=$((size - 3)) conv=notrunc status=none
files+=("$tmp/flipped.safetensors")
# A header that is valid JSON but not a fixture: metadata gone (needs any python3).
if command -v python3 > /dev/null; then
header_len=$(od -An -t u8 -N 8 "$good" | tr -d ' ')
python3 - "$good" "$tmp/nometa.safetensors" "$header_len" <<'PY'
import json, struct, sys
raw = open(sys.argv[1], "rb").read(); n = int(sys.argv[3])
h = json.loads(raw[8:8 + n]); h.pop("__metadata__")
text = json.dumps(h).encode(); text += b" " * (-len(text) % 8)
open(sys.argv[2], "wb").write(struct.pack("<Q", len(text)) + text + raw[8 + n:])
PY
files+=("$tmp/nometa.safetensors")
fi

status=0
for f in "${files[@]}"; do
    out=$("$parity" "$f" 2>&1)
    rc=$?
    if [[ $rc -ne 1 ]] || ! grep -qE "^(ERROR|FAIL) " <<<"$out"; then
        echo "not reported as expected (exit $rc): $f"
        echo "$out"
        status=1
    fi
done
"$parity" "$good" > /dev/null || { echo "the good fixture fails"; status=1; }
[[ $status -eq 0 ]] && echo "${#files[@]} damaged fixtures reported, none crashed"
exit $status
