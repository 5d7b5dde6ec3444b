#!/usr/bin/env bash
# check_build_tree.sh BUILD_DIR: checks that a consumer builds against an uninstalled build.
#
# With PKG_CONFIG_PATH=BUILD_DIR, pkg-config must pick BUILD_DIR/tapegrad-uninstalled.pc,
# whose include and library folders are the source tree's include/ and the build folder,
# both existing; consumer.c is then compiled with its flags (shared, with the rpath the file
# gives, so it runs without LD_LIBRARY_PATH; and static) and must print the expected
# gradient. Exits non-zero on any failure.
set -euo pipefail

if [[ $# -ne 1 || ! -f "$1/CMakeCache.txt" ]]; then
    echo "usage: $0 BUILD_DIR  (a configured and built tapegrad build directory)" >&2
    exit 2
fi
build_dir=$(cd "$1" && pwd)
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source_dir=$(sed -n 's/^tapegrad_SOURCE_DIR:STATIC=//p' "$build_dir/CMakeCache.txt")
expected="y=0.761594 dy/dw=0.209987 dy/dx=0.839949"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tapegrad-buildtree.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

fail() {
    echo "build-tree check FAILED: $*" >&2
    exit 1
}
check_run() {
    local what=$1 exe=$2 out
    out=$(env -u LD_LIBRARY_PATH "$exe" 2>&1) || fail "$what: $exe exited with an error: $out"
    [[ "$out" == *"$expected"* ]] || fail "$what: expected '$expected', got '$out'"
    echo "ok: $what: $out"
}

sanitize=$(sed -n 's/^TG_SANITIZE:[A-Z]*=//p' "$build_dir/CMakeCache.txt")
san_flags=""
[[ -n "$sanitize" ]] && san_flags="-fsanitize=$sanitize -fno-omit-frame-pointer"

command -v pkg-config >/dev/null || fail "pkg-config is not installed (apt-get install pkg-config)"
[[ -f "$build_dir/tapegrad-uninstalled.pc" ]] || fail "no tapegrad-uninstalled.pc in $build_dir"
[[ ! -f "$build_dir/tapegrad.pc" ]] || fail "$build_dir/tapegrad.pc is the file to install; it must not lie in the build folder"
export PKG_CONFIG_PATH=$build_dir
unset PKG_CONFIG_DISABLE_UNINSTALLED
inc=$(pkg-config --variable=includedir tapegrad) || fail "pkg-config cannot find tapegrad in $build_dir"
lib=$(pkg-config --variable=libdir tapegrad)
[[ "$(realpath -m "$inc")" == "$(realpath -m "$source_dir/include")" ]] ||
    fail "includedir is $inc, expected $source_dir/include"
[[ -f "$inc/tapegrad.h" ]] || fail "no tapegrad.h in includedir $inc"
ls "$lib"/libtapegrad.so* >/dev/null 2>&1 || fail "no libtapegrad.so in libdir $lib"
[[ -f "$lib/libtapegrad.a" ]] || fail "no libtapegrad.a in libdir $lib"

flags=$(pkg-config --cflags --libs tapegrad)
# shellcheck disable=SC2086 # flags are word lists
${CC:-cc} -std=c11 -Wall -Wextra -Werror $san_flags "$here/consumer.c" -o "$tmp/consumer" $flags ||
    fail "compiling the consumer with $flags"
check_run "pkg-config, build tree" "$tmp/consumer"
static_libs=$(pkg-config --static --libs tapegrad)
static_libs=${static_libs/-ltapegrad/-l:libtapegrad.a}
# shellcheck disable=SC2046,SC2086 # flags are word lists
${CC:-cc} -std=c11 $san_flags "$here/consumer.c" -o "$tmp/consumer_static" $(pkg-config --cflags tapegrad) $static_libs ||
    fail "linking the consumer statically with $static_libs"
check_run "pkg-config --static, build tree" "$tmp/consumer_static"
echo "build-tree check passed"
