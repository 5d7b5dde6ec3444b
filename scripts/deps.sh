#!/usr/bin/env bash
# deps.sh: installs the Debian packages tapegrad needs to build and test, when any is
# missing. Silent when everything is there; one line when it installs; the apt log when
# that fails. Runs apt-get through sudo when not root.
set -euo pipefail

packages=(cmake gcc make pkg-config libblis-openmp-dev libxxhash-dev libjansson-dev libcriterion-dev
    libopenmpi-dev openmpi-bin)

if ! command -v dpkg-query >/dev/null || ! command -v apt-get >/dev/null; then
    echo "deps.sh: this is not a Debian-like system (no dpkg-query/apt-get)." >&2
    echo "deps.sh: install these (or your system's equivalents) by hand: ${packages[*]}" >&2
    exit 1
fi

missing=()
for p in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [[ "$status" == installed ]] || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

sudo=()
if [[ $(id -u) -ne 0 ]]; then
    if ! command -v sudo >/dev/null; then
        echo "deps.sh: missing packages: ${missing[*]}; run as root or install sudo:" >&2
        echo "  apt-get update && apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
    sudo=(sudo)
fi

echo "deps.sh: installing ${missing[*]}" >&2
log=$(mktemp "${TMPDIR:-/tmp}/tapegrad-deps.XXXXXX")
trap 'rm -f "$log"' EXIT
apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=300)
if ! "${apt[@]}" update >"$log" 2>&1; then
    cat "$log" >&2
    echo "deps.sh: 'apt-get update' failed (output above); cannot install ${missing[*]}" >&2
    exit 1
fi
if ! "${apt[@]}" install -y "${missing[@]}" >"$log" 2>&1; then
    cat "$log" >&2
    echo "deps.sh: 'apt-get install ${missing[*]}' failed (output above)" >&2
    exit 1
fi
