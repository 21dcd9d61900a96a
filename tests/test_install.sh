#!/usr/bin/env bash
# Installs the library from TG_BUILD_DIR into a temporary prefix, then builds
# and runs examples/expression.c against the installed copy
#   1. through a small CMake project using find_package(tapegrad CONFIG),
#      linked once with tapegrad::tapegrad (shared), once with
#      tapegrad::tapegrad_static;
#   2. through pkg-config --cflags --libs tapegrad (shared, with an rpath),
#      and pkg-config --static --libs with the static archive;
# then moves the whole prefix elsewhere and does it all again: the package
# files must not remember where they were installed. Each program must print
# f = -12, df/dx = -4, df/dy = -4, df/dz = 3.
#
# The consumers are compiled with the build's own compiler, and with its
# sanitizer flags when it was configured with TG_SANITIZE=ON (an instrumented
# library needs an instrumented program).
set -euo pipefail
: "${TG_BUILD_DIR:?TG_BUILD_DIR must name the build directory}"
: "${TG_SOURCE_DIR:=$(cd "$(dirname "$0")/.." && pwd)}"
cache=$TG_BUILD_DIR/CMakeCache.txt
cc=$(sed -n 's/^CMAKE_C_COMPILER:[A-Z]*=//p' "$cache" 2>/dev/null)
cc=${cc:-${CC:-cc}}
san=""
if grep -q '^TG_SANITIZE:BOOL=ON$' "$cache" 2>/dev/null; then
    san="-fsanitize=address,undefined -fno-omit-frame-pointer"
fi
for tool in cmake pkg-config "$cc"; do
    if ! command -v "$tool" >/dev/null; then
        echo "SKIP: $tool is not installed"
        exit 77
    fi
done

work=$(mktemp -d "${TMPDIR:-/tmp}/tapegrad-install.XXXXXX")
trap 'rm -rf "$work"' EXIT
example=$TG_SOURCE_DIR/examples/expression.c
fail=0

# check NAME PROGRAM: runs PROGRAM and checks its four lines.
check() {
    local name=$1 out line
    if ! out=$("$2" 2>&1); then
        echo "FAIL: $name: exited with an error:"
        echo "$out" | sed 's/^/    /'
        fail=1
        return
    fi
    for line in "f = -12" "df/dx = -4" "df/dy = -4" "df/dz = 3"; do
        if ! grep -qxF -- "$line" <<<"$out"; then
            echo "FAIL: $name: no line '$line' in:"
            echo "$out" | sed 's/^/    /'
            fail=1
            return
        fi
    done
    echo "ok: $name"
}

# consume PREFIX LABEL: builds and runs the example against PREFIX both ways.
consume() {
    local prefix=$1 label=$2 dir=$work/consumer-$2
    mkdir -p "$dir/src"

    # --- CMake package
    cat >"$dir/src/CMakeLists.txt" <<EOF
cmake_minimum_required(VERSION 3.25)
project(tapegrad_consumer LANGUAGES C)
find_package(tapegrad 0.1 CONFIG REQUIRED)
message(STATUS "tapegrad_DIR: \${tapegrad_DIR}")
add_executable(expression_shared "$example")
target_link_libraries(expression_shared PRIVATE tapegrad::tapegrad)
add_executable(expression_static "$example")
target_link_libraries(expression_static PRIVATE tapegrad::tapegrad_static)
EOF
    if ! cmake -S "$dir/src" -B "$dir/build" -DCMAKE_PREFIX_PATH="$prefix" \
        -DCMAKE_C_COMPILER="$(command -v "$cc")" -DCMAKE_C_FLAGS="$san" \
        -DCMAKE_EXE_LINKER_FLAGS="$san" >"$dir/configure.log" 2>&1 ||
        ! cmake --build "$dir/build" >"$dir/build.log" 2>&1; then
        echo "FAIL: $label: the CMake consumer did not build:"
        cat "$dir/configure.log" "$dir/build.log" 2>/dev/null | sed 's/^/    /'
        fail=1
    else
        local found
        found=$(sed -n 's/^-- tapegrad_DIR: //p' "$dir/configure.log")
        case $found in
        "$prefix"/*) ;;
        *) echo "FAIL: $label: find_package found tapegrad in '$found', not under $prefix"; fail=1 ;;
        esac
        check "$label: find_package, tapegrad::tapegrad" "$dir/build/expression_shared"
        check "$label: find_package, tapegrad::tapegrad_static" "$dir/build/expression_static"
    fi

    # --- pkg-config
    local pc libdir cflags libs slibs
    pc=$(dirname "$(find "$prefix" -name tapegrad.pc -print -quit)")
    if [ "$pc" = . ]; then
        echo "FAIL: $label: no tapegrad.pc under $prefix"
        fail=1
        return
    fi
    export PKG_CONFIG_PATH=$pc
    libdir=$(pkg-config --variable=libdir tapegrad)
    cflags=$(pkg-config --cflags tapegrad)
    libs=$(pkg-config --libs tapegrad)
    slibs=$(pkg-config --static --libs tapegrad)
    case $libdir in
    "$prefix"/*) ;;
    *) echo "FAIL: $label: pkg-config's libdir is '$libdir', not under $prefix"; fail=1 ;;
    esac
    # shellcheck disable=SC2086 # the flags are word lists
    if $cc $san $cflags "$example" -o "$dir/expression_pc" $libs -Wl,-rpath,"$libdir" \
        >"$dir/pc.log" 2>&1; then
        check "$label: pkg-config, shared" "$dir/expression_pc"
    else
        echo "FAIL: $label: $cc $cflags ... $libs failed:"
        sed 's/^/    /' "$dir/pc.log"
        fail=1
    fi
    # The static archive, with the private dependencies pkg-config lists.
    # shellcheck disable=SC2086
    if $cc $san $cflags "$example" -o "$dir/expression_pc_static" \
        ${slibs/-ltapegrad/-l:libtapegrad.a} >"$dir/pcs.log" 2>&1; then
        check "$label: pkg-config --static, libtapegrad.a" "$dir/expression_pc_static"
    else
        echo "FAIL: $label: static link with '$slibs' failed:"
        sed 's/^/    /' "$dir/pcs.log"
        fail=1
    fi
    unset PKG_CONFIG_PATH
}

prefix=$work/prefix
if ! cmake --install "$TG_BUILD_DIR" --prefix "$prefix" >"$work/install.log" 2>&1; then
    echo "FAIL: cmake --install $TG_BUILD_DIR --prefix $prefix:"
    sed 's/^/    /' "$work/install.log"
    exit 1
fi
for f in include/tapegrad.h; do
    [ -f "$prefix/$f" ] || { echo "FAIL: $f was not installed"; fail=1; }
done
consume "$prefix" installed

# Relocate: move the prefix and build against it afresh. No installed text
# file may still name the first prefix.
moved=$work/elsewhere/deeper/prefix
mkdir -p "$(dirname "$moved")"
mv "$prefix" "$moved"
if stale=$(grep -rlI -- "$prefix" "$moved"); then
    echo "FAIL: installed files still name the old prefix $prefix:"
    echo "$stale" | sed 's/^/    /'
    fail=1
fi
consume "$moved" moved

[ $fail -eq 0 ] && echo "install: find_package and pkg-config work, before and after moving the prefix"
exit $fail
