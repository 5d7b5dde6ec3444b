#!/usr/bin/env bash
# check.sh BUILD_DIR: checks that an installed tapegrad works for a consumer project.
#
# Installs BUILD_DIR (already built) into a temporary prefix with `cmake --install`, then
# builds consumer.c against that prefix in four ways and runs each:
#   1. as a CMake project: find_package(tapegrad) with CMAKE_PREFIX_PATH, linking
#      tapegrad::tapegrad (shared) and tapegrad::tapegrad_static;
#   2. with `pkg-config --cflags --libs tapegrad` from the installed tapegrad.pc, and
#      statically with `pkg-config --static --libs tapegrad` and libtapegrad.a.
# Each program must print the gradient of y = tanh(x*w) at x=0.5, w=2. With TG_MPIEXEC set
# (the path of mpiexec; the test sets it for a build with TG_MPI), also:
#   3. mpi_consumer.c, built with find_package(tapegrad COMPONENTS mpi) and linking
#      tapegrad::tapegrad_mpi, and again with mpicc, -ltapegrad_mpi and
#      `pkg-config --static --libs tapegrad`, each run on 2 ranks, must print the loss and
#      gradient its header derives.
# Exits non-zero on any failure. A sanitizer build (TG_SANITIZE in BUILD_DIR's cache) is
# consumed with the same -fsanitize flags, as it has to be. KEEP_TMP=1 keeps the temporary
# directory.
set -euo pipefail

if [[ $# -ne 1 || ! -f "$1/CMakeCache.txt" ]]; then
    echo "usage: $0 BUILD_DIR  (a configured and built tapegrad build directory)" >&2
    exit 2
fi
build_dir=$(cd "$1" && pwd)
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
expected="y=0.761594 dy/dw=0.209987 dy/dx=0.839949"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tapegrad-install.XXXXXX")
cleanup() { if [[ "${KEEP_TMP:-0}" == 1 ]]; then echo "kept $tmp"; else rm -rf "$tmp"; fi; }
trap cleanup EXIT
prefix=$tmp/prefix

fail() {
    echo "install check FAILED: $*" >&2
    exit 1
}

# Runs a command quietly; on failure shows its output and stops.
quiet() {
    local what=$1
    shift
    if ! "$@" >"$tmp/log" 2>&1; then
        cat "$tmp/log" >&2
        fail "$what"
    fi
}

# Runs a built consumer and compares its output with the expected gradient.
check_run() {
    local what=$1 exe=$2 out
    out=$(LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$exe" 2>&1) ||
        fail "$what: $exe exited with an error: $out"
    [[ "$out" == *"$expected"* ]] || fail "$what: expected '$expected', got '$out'"
    echo "ok: $what: $out"
}

sanitize=$(sed -n 's/^TG_SANITIZE:[A-Z]*=//p' "$build_dir/CMakeCache.txt")
san_flags=""
[[ -n "$sanitize" ]] && san_flags="-fsanitize=$sanitize -fno-omit-frame-pointer"

# --- install ---
quiet "cmake --install $build_dir --prefix $prefix" cmake --install "$build_dir" --prefix "$prefix"
pc=$(find "$prefix" -name tapegrad.pc -print -quit)
[[ -n "$pc" ]] || fail "no tapegrad.pc was installed under $prefix"
config=$(find "$prefix" -name tapegradConfig.cmake -print -quit)
[[ -n "$config" ]] || fail "no tapegradConfig.cmake was installed under $prefix"
[[ -f "$prefix/include/tapegrad.h" ]] || fail "tapegrad.h was not installed in $prefix/include"
libdir=$(dirname "$(dirname "$pc")") # GNUInstallDirs: lib or lib/<multiarch>
ls "$libdir"/libtapegrad.so* >/dev/null 2>&1 || fail "no libtapegrad.so in $libdir"
[[ -f "$libdir/libtapegrad.a" ]] || fail "no libtapegrad.a in $libdir"

# --- 1. CMake consumer: find_package(tapegrad) ---
quiet "configuring the consumer with find_package(tapegrad)" \
    cmake -S "$here" -B "$tmp/build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF "-DCMAKE_C_FLAGS=$san_flags" "-DCMAKE_EXE_LINKER_FLAGS=$san_flags"
found=$(sed -n 's/^tapegrad_DIR:PATH=//p' "$tmp/build/CMakeCache.txt")
[[ "$found" == "$prefix"/* ]] || fail "find_package(tapegrad) found $found, not the copy installed in $prefix"
quiet "building the consumer against tapegrad::tapegrad" cmake --build "$tmp/build" -j 2
check_run "find_package, tapegrad::tapegrad" "$tmp/build/consumer"
check_run "find_package, tapegrad::tapegrad_static" "$tmp/build/consumer_static"

# --- 2. pkg-config consumer ---
command -v pkg-config >/dev/null || fail "pkg-config is not installed (apt-get install pkg-config)"
export PKG_CONFIG_PATH
PKG_CONFIG_PATH=$(dirname "$pc")
# Where tapegrad.pc says the headers and libraries are, resolved ("" when pkg-config fails).
pc_dirs() {
    local inc lib
    inc=$(pkg-config "$@" --variable=includedir tapegrad) && lib=$(pkg-config "$@" --variable=libdir tapegrad) &&
        echo "$(realpath -m "$inc") $(realpath -m "$lib")"
}
want="$(realpath -m "$prefix/include") $(realpath -m "$libdir")"
got=$(pc_dirs) || fail "pkg-config cannot read $pc"
[[ "$got" == "$want" ]] || fail "tapegrad.pc gives includedir and libdir $got, expected $want (it must find its prefix from its own location)"
flags=$(pkg-config --cflags --libs tapegrad) || fail "pkg-config --cflags --libs tapegrad failed"
# Strict C11 with warnings as errors: the public headers must compile cleanly for users.
# shellcheck disable=SC2086 # flags are word lists
quiet "compiling the consumer with pkg-config flags ($flags)" \
    ${CC:-cc} -std=c11 -Wall -Wextra -Werror $san_flags "$here/consumer.c" -o "$tmp/consumer_pc" $flags
check_run "pkg-config" "$tmp/consumer_pc"
# Static: `pkg-config --static` must list every library libtapegrad.a needs (Libs.private).
static_libs=$(pkg-config --static --libs tapegrad)
static_libs=${static_libs/-ltapegrad/-l:libtapegrad.a}
# shellcheck disable=SC2046,SC2086 # flags are word lists
quiet "linking the consumer statically with pkg-config --static flags ($static_libs)" \
    ${CC:-cc} -std=c11 $san_flags "$here/consumer.c" -o "$tmp/consumer_pc_static" \
    $(pkg-config --cflags tapegrad) $static_libs
check_run "pkg-config --static" "$tmp/consumer_pc_static"

# --- 3. the component mpi, under mpirun ---
if [[ -n "${TG_MPIEXEC:-}" ]]; then
    expected_mpi="2 ranks: loss=0.773222 dL/dw=0.153195"
    check_mpi_run() {
        local what=$1 exe=$2 out
        out=$(LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
            timeout -k 5 60 "$TG_MPIEXEC" --oversubscribe -n 2 "$exe" 2>&1) ||
            fail "$what: mpiexec -n 2 $exe exited with an error: $out"
        [[ "$out" == *"$expected_mpi"* ]] || fail "$what: expected '$expected_mpi', got '$out'"
        echo "ok: $what: $out"
    }
    [[ -f "$prefix/include/tg_mpi.h" ]] || fail "tg_mpi.h was not installed in $prefix/include"
    [[ -f "$libdir/libtapegrad_mpi.a" ]] || fail "no libtapegrad_mpi.a in $libdir"
    quiet "configuring the consumer with find_package(tapegrad COMPONENTS mpi)" \
        cmake -S "$here" -B "$tmp/build-mpi" -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" \
        -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF -DTG_CONSUMER_MPI=ON "-DCMAKE_C_FLAGS=$san_flags" \
        "-DCMAKE_EXE_LINKER_FLAGS=$san_flags"
    quiet "building the consumer against tapegrad::tapegrad_mpi" cmake --build "$tmp/build-mpi" -j 2
    check_mpi_run "find_package COMPONENTS mpi, tapegrad::tapegrad_mpi" "$tmp/build-mpi/mpi_consumer"
    mpicc=$(dirname "$TG_MPIEXEC")/mpicc
    # shellcheck disable=SC2046,SC2086 # flags are word lists
    quiet "linking the consumer with $mpicc -ltapegrad_mpi and pkg-config --static flags" \
        "$mpicc" -std=c11 -Wall -Wextra -Werror $san_flags "$here/mpi_consumer.c" -o "$tmp/mpi_consumer_pc" \
        $(pkg-config --cflags tapegrad) -L"$libdir" -l:libtapegrad_mpi.a $static_libs
    check_mpi_run "mpicc and pkg-config --static" "$tmp/mpi_consumer_pc"
fi

echo "install check passed"
