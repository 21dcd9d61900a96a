#!/usr/bin/env bash
# Installs the library from TG_BUILD_DIR into a temporary prefix, then builds
# and runs examples/expression.c against the installed copy
#   1. through a small CMake project using find_package(tapegrad CONFIG),
#      linked once with tapegrad::tapegrad (shared), once with
#      tapegrad::tapegrad_static;
#   2. through pkg-config --cflags --libs tapegrad (shared, with an rpath),
#      and pkg-config --static --libs with the static archive;
#   3. through pkg-config without an rpath, run with LD_LIBRARY_PATH (the
#      README's advice for a prefix the dynamic linker does not search);
# then moves the whole prefix elsewhere and does it all again: the package
# files must not remember where they were installed. Each program must print
# f = -12, df/dx = -4, df/dy = -4, df/dz = 3.
#
# It also checks the package itself: pkg-config --modversion and the
# installed man page's version are the project's (CMakeLists.txt) and the
# header's; tapegrad.pc names its private dependencies (OpenBLAS, when the
# library links it) as pkg-config modules or -l flags, never as paths; the
# man page renders without a warning (groff -ww, man -l) and has a section
# for every command that the installed program's --help lists and mentions
# every option of each command's --help; the installed program prints its
# version, trains on a CSV file and predicts it back with tapegrad predict.
# Last, the README's own install, pkg-config cc line and CSV example, run
# as written.
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

# check NAME PROGRAM [ARGS...]: runs PROGRAM and checks its four lines.
check() {
    local name=$1 out line
    shift
    if ! out=$("$@" 2>&1); then
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
    local version
    version=$(pkg-config --modversion tapegrad)
    if [ "$version" != "$project_version" ]; then
        echo "FAIL: $label: pkg-config --modversion tapegrad is '$version'," \
            "the project's is '$project_version'"
        fail=1
    else
        echo "ok: $label: pkg-config --modversion tapegrad: $version"
    fi
    # No rpath: the README says to run it with LD_LIBRARY_PATH.
    # shellcheck disable=SC2086
    if $cc $san $cflags "$example" -o "$dir/expression_ld" $libs >"$dir/ld.log" 2>&1; then
        check "$label: pkg-config, shared, LD_LIBRARY_PATH" \
            env LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$dir/expression_ld"
    else
        echo "FAIL: $label: $cc $cflags ... $libs (no rpath) failed:"
        sed 's/^/    /' "$dir/ld.log"
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

# check_pc PREFIX: tapegrad.pc's private dependencies are names, not paths,
# and OpenBLAS is among them when the installed library links it.
check_pc() {
    local pc requires libs lib
    pc=$(find "$1" -name tapegrad.pc -print -quit)
    requires=$(sed -n 's/^Requires\.private: *//p' "$pc")
    libs=$(sed -n 's/^Libs\.private: *//p' "$pc")
    if grep -qE '(^| )/' <<<"$requires $libs"; then
        echo "FAIL: tapegrad.pc names a private dependency by its path:"
        grep -E '^(Requires|Libs)\.private' "$pc" | sed 's/^/    /'
        fail=1
    fi
    lib=$(find "$1" -name 'libtapegrad.so.*.*' -print -quit)
    if [ -n "$lib" ] && command -v objdump >/dev/null &&
        objdump -p "$lib" | grep -qE 'NEEDED +libopenblas'; then
        if grep -qwE 'openblas' <<<"$requires" || grep -qw -- '-lopenblas' <<<"$libs"; then
            echo "ok: tapegrad.pc: Requires.private: $requires; Libs.private: $libs"
        else
            echo "FAIL: the library links OpenBLAS but tapegrad.pc does not name it:"
            grep -E '^(Requires|Libs)\.private' "$pc" | sed 's/^/    /'
            fail=1
        fi
    else
        echo "ok: tapegrad.pc: Requires.private: $requires; Libs.private: $libs (no OpenBLAS linked)"
    fi
}

# check_man PREFIX: the installed man page of the installed program.
check_man() {
    local man=$1/share/man/man1/tapegrad.1 prog=$1/bin/tapegrad text err cmd opt th
    if [ ! -x "$prog" ]; then
        echo "ok: no tapegrad program built, so no man page to check"
        return
    fi
    if [ ! -f "$man" ]; then
        echo "FAIL: the man page was not installed as share/man/man1/tapegrad.1"
        fail=1
        return
    fi
    th=$(sed -n 's/^\.TH TAPEGRAD 1 [^ ]* "tapegrad \([0-9.]*\)".*/\1/p' "$man")
    if [ "$th" != "$project_version" ]; then
        echo "FAIL: tapegrad.1 says version '$th' in .TH; the project is $project_version"
        fail=1
    fi
    if ! command -v groff >/dev/null; then
        echo "FAIL: groff is not installed (Debian: groff-base; tests/deps.sh lists it)"
        fail=1
        return
    fi
    text=$(groff -man -Tutf8 -ww "$man" 2>"$work/groff.err" | col -bx)
    if [ -s "$work/groff.err" ] || [ -z "$text" ]; then
        echo "FAIL: groff -man -ww warns about tapegrad.1:"
        sed 's/^/    /' "$work/groff.err"
        fail=1
    fi
    if command -v man >/dev/null; then
        if ! MANWIDTH=80 man -l "$man" >/dev/null 2>"$work/man.err" || [ -s "$work/man.err" ]; then
            echo "FAIL: man -l tapegrad.1:"
            sed 's/^/    /' "$work/man.err"
            fail=1
        fi
    fi
    # Every command of the program's usage, and every option of its --help.
    local commands
    commands=$("$prog" --help | awk '/^commands:/ { on = 1; next }
                                    on && /^  [a-z]/ { print $1 }
                                    on && /^$/ { on = 0 }')
    if [ -z "$commands" ]; then
        echo "FAIL: tapegrad --help lists no commands"
        fail=1
    fi
    local missing=""
    for cmd in $commands; do
        grep -qE "^\.SS \"?$cmd( |\"|$)" "$man" || missing+=" $cmd"
        for opt in $("$prog" "$cmd" --help 2>/dev/null | grep -oE -- '--[a-z][a-z0-9-]*' |
            sort -u); do
            grep -qF -- "$opt" <<<"$text" || missing+=" $cmd:$opt"
        done
    done
    if [ -n "$missing" ]; then
        echo "FAIL: tapegrad.1 does not describe:$missing"
        fail=1
    else
        echo "ok: the man page renders cleanly and describes" $commands
    fi
}

# check_program PREFIX: the installed program itself: --version, and a CSV
# training whose saved model tapegrad predict reads back.
check_program() {
    local prog=$1/bin/tapegrad dir=$work/program out
    [ -x "$prog" ] || return 0
    mkdir -p "$dir"
    out=$("$prog" --version 2>&1) || true
    if [ "$out" != "tapegrad $project_version" ]; then
        echo "FAIL: installed tapegrad --version printed '$out', want 'tapegrad $project_version'"
        fail=1
    else
        echo "ok: installed tapegrad --version: $out"
    fi
    # Two blobs far apart (label, x0, x1): any trained model separates them.
    awk 'BEGIN { srand(3); print "label,x0,x1"
                 for (i = 0; i < 200; i++) { c = i % 2; s = c ? 2 : -2
                     printf "%d,%.3f,%.3f\n", c, s + rand() - 0.5, s + rand() - 0.5 } }' \
        >"$dir/blobs.csv"
    if ! "$prog" train --data "$dir/blobs.csv" --layers 2,4,2 --loss xent --optimizer adam \
        --lr 0.05 --batch 10 --epochs 20 --save "$dir/m.tgm" >"$dir/train.out" 2>&1; then
        echo "FAIL: installed tapegrad train on a CSV file:"
        sed 's/^/    /' "$dir/train.out"
        fail=1
        return
    fi
    if ! "$prog" predict --model "$dir/m.tgm" --data "$dir/blobs.csv" >"$dir/predict.out" 2>&1; then
        echo "FAIL: installed tapegrad predict:"
        sed 's/^/    /' "$dir/predict.out"
        fail=1
        return
    fi
    # Every line: the predicted class is the most probable, the probabilities
    # sum to 1, the label is the CSV's; the accuracy is 1 on these blobs.
    if ! awk -F'[ =,]' -v csv="$dir/blobs.csv" '
        BEGIN { getline < csv; n = 0; while ((getline l < csv) > 0) { split(l, f, ","); lab[n++] = f[1] } }
        /^index=/ { i = $2; p = $4; l = $6; best = 0; sum = 0
                    for (k = 8; k <= NF; k++) { sum += $k; if ($k > $(8 + best)) best = k - 8 }
                    if (best != p || l != lab[i] || sum < 0.999 || sum > 1.001) bad++; lines++ }
        /^accuracy=/ { acc = $2 }
        END { exit !(lines == n && !bad && acc == 1) }' "$dir/predict.out"; then
        echo "FAIL: installed tapegrad predict printed (want $(($(wc -l <"$dir/blobs.csv") - 1)) consistent lines and accuracy=1):"
        head -n 5 "$dir/predict.out" | sed 's/^/    /'
        tail -n 1 "$dir/predict.out" | sed 's/^/    /'
        fail=1
    else
        echo "ok: installed tapegrad trains on a CSV file and predicts it back (accuracy 1)"
    fi
}

# readme_block PATTERN: the README's first ```sh block with a line matching
# PATTERN, as text.
readme_block() {
    awk -v pat="$1" '/^```sh$/ { on = 1; hit = 0; text = ""; next }
                     on && /^```$/ { if (hit) { printf "%s", text; exit } on = 0; next }
                     on { text = text $0 "\n"; if (index($0, pat)) hit = 1 }' "$TG_SOURCE_DIR/README.md"
}

# check_readme: the README's commands as a user types them, in a fresh
# directory with HOME there and ./build the build directory: the install
# under $HOME/opt with the pkg-config cc line (rpath, then LD_LIBRARY_PATH)
# on a program that calls sin() itself, and the CSV example (awk's
# blobs.csv, train, eval) with the installed program. cc is the build's
# compiler (with its sanitizer flags).
check_readme() {
    local dir=$work/readme block out
    mkdir -p "$dir/home"
    ln -s "$(cd "$TG_BUILD_DIR" && pwd)" "$dir/build"
    cat >"$dir/prog.c" <<'EOF'
#include <math.h>
#include <stdio.h>
#include <tapegrad.h>

int main(int argc, char **argv) {
    (void)argv;
    tg_tape *t = tg_tape_new();
    tg_node *x = tg_scalar(t, 0.5 * argc);
    tg_node *f = tg_sin(x);
    tg_backward(f);
    /* libm's own sin and cos, called by the program itself */
    printf("sin=%d cos=%d\n", tg_value_scalar(f) == sin(0.5 * argc),
           tg_grad_scalar(x) == cos(0.5 * argc));
    tg_tape_free(t);
    return 0;
}
EOF
    block=$(readme_block 'pkg-config --cflags --libs tapegrad')
    if [ -z "$block" ]; then
        echo "FAIL: README.md has no sh block with the pkg-config cc line"
        fail=1
        return
    fi
    # shellcheck disable=SC2016 # the block expands its own variables
    if ! out=$(cd "$dir" && HOME=$dir/home TG_CC="$cc $san" bash -euo pipefail -c \
        'cc() { $TG_CC "$@"; }; '"$block" 2>&1) ||
        [ "$(grep -c '^sin=1 cos=1$' <<<"$out")" != 1 ] || [ ! -x "$dir/prog" ]; then
        echo "FAIL: the README's install and pkg-config cc lines, run as written:"
        printf '%s\n' "$block" "--- gave:" "$out" | sed 's/^/    /'
        fail=1
    else
        echo "ok: the README's pkg-config cc line builds a program calling sin() and it runs"
    fi
    local prog=$dir/home/opt/tapegrad/bin/tapegrad
    [ -x "$prog" ] || return 0
    block=$(readme_block 'blobs.csv')
    # shellcheck disable=SC2016
    if ! out=$(cd "$dir" && TG_PROG=$prog bash -euo pipefail -c \
        'tapegrad() { "$TG_PROG" "$@"; }; '"$block" 2>&1) ||
        ! grep -qx 'test_accuracy=1.0000' <<<"$out" || ! grep -q '^confusion matrix' <<<"$out"; then
        echo "FAIL: the README's CSV example, run as written:"
        printf '%s\n' "$block" "--- gave:" "$out" | sed 's/^/    /'
        fail=1
    else
        echo "ok: the README's CSV example makes blobs.csv, trains and evaluates on it"
    fi
}

# The version, from CMakeLists.txt's project() line and from the header.
project_version=$(sed -n 's/^project(tapegrad VERSION \([0-9.]*\).*/\1/p' "$TG_SOURCE_DIR/CMakeLists.txt")
header_version=$(awk '/^#define TAPEGRAD_VERSION_(MAJOR|MINOR|PATCH) / { v = v (v == "" ? "" : ".") $3 }
                      END { print v }' "$TG_SOURCE_DIR/include/tapegrad.h")
if [ -z "$project_version" ] || [ "$project_version" != "$header_version" ]; then
    echo "FAIL: CMakeLists.txt says version '$project_version', include/tapegrad.h '$header_version'"
    fail=1
fi

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
check_pc "$prefix"
check_man "$prefix"
check_program "$prefix"
check_readme

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
