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
# groff-base: tests/test_install.sh renders the installed man page (groff -ww).
# libsleef-dev: the vector math of the elementwise kernels (optional to the
# build, which falls back to libm loops without it).
TG_BUILD_DEPS=(build-essential cmake pkg-config uthash-dev libcmocka-dev libopenblas-dev zlib1g-dev
    groff-base libsleef-dev)
# The reliability checks of tests/run: clang (warnings, ThreadSanitizer),
# libFuzzer and the sanitizer runtimes (libclang-rt), valgrind.
TG_CHECK_DEPS=(clang libclang-rt-14-dev valgrind)
# Oracles and tools of single tests (each skips, saying so, without its
# package): PyTorch for the GMM comparison, numpy for predict's forward pass,
# gnuplot for the training plots.
TG_ORACLE_DEPS=(python3-torch python3-numpy gnuplot-nox)
# The optimisers of examples/optim (optional to the build; test_optimizers
# skips, saying so, without them): Ipopt's C interface and liblbfgs.
TG_OPTIM_DEPS=(coinor-libipopt-dev liblbfgs-dev)
