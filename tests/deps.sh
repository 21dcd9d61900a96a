# Sourced by the run scripts: installs, from Debian's packages, whatever the
# build, the tests and the demo need and this machine lacks.
tg_install() {
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" ||
            missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "installing: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq && $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
# libsleef-dev: the vector math of the elementwise kernels (optional to the
# build, which falls back to libm loops without it).
TG_BUILD_DEPS=(build-essential cmake pkg-config uthash-dev libcmocka-dev libopenblas-dev zlib1g-dev
               libsleef-dev)
# The reliability checks of tests/run: clang (warnings, ThreadSanitizer),
# libFuzzer and the sanitizer runtimes (libclang-rt), valgrind.
TG_CHECK_DEPS=(clang libclang-rt-14-dev valgrind)
