# Shared by scripts/demo and scripts/test: install what is missing
# (Debian packages: pkg-config, libhdf5-dev, libopenblas-dev, fonts-dejavu-core;
# python3-venv for tests; cmake, g++, libclang-dev and a CMake >= 3.28 from
# PyPI for the `lightgbm` feature; the NIST StRD files unpacked from the gretl-data .deb
# for tests/nist.rs; the Python bindings built into the venv for python/tests).
# Sourced, not run. Needs: a Rust toolchain (cargo) on a Debian machine.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "need root to run: $*" >&2; return 1; fi
}

ensure_system_packages() {
  # libhdf5 (hdf5-metno links it through pkg-config), and python3-venv for the interop tests.
  local missing=()
  command -v pkg-config >/dev/null || missing+=(pkg-config)
  if ! pkg-config --exists hdf5 2>/dev/null && [ ! -e /usr/include/hdf5/serial/hdf5.h ]; then
    missing+=(libhdf5-dev)
  fi
  # The Gram kernel links the system OpenBLAS (feature `openblas`, default).
  if ! ls /usr/lib/*/libopenblas.so >/dev/null 2>&1 && ! ls /usr/lib/libopenblas.so >/dev/null 2>&1; then
    missing+=(libopenblas-dev)
  fi
  # Plots render text with a TrueType font (src/plot.rs).
  if [ ! -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] && [ -z "${GRAMSTREAM_FONT:-}" ]; then
    missing+=(fonts-dejavu-core)
  fi
  if [ "${1:-}" = "python" ] && ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    missing+=(python3-venv)
  fi
  # Feature `mpi` (the tests build it): Open MPI (mpicc, mpiexec) and libclang
  # for the mpi crate's bindings.
  if [ "${2:-}" = "mpi" ]; then
    command -v mpicc >/dev/null || missing+=(libopenmpi-dev)
    command -v mpiexec >/dev/null || missing+=(openmpi-bin)
    ls /usr/lib/llvm-*/lib/libclang.so >/dev/null 2>&1 || ls /usr/lib/*/libclang*.so >/dev/null 2>&1 \
      || missing+=(libclang-dev)
  fi
  # Feature `lightgbm` (the tests and the demo build it): lightgbm3-sys
  # compiles the LightGBM it bundles with CMake (>= 3.28: ensure_cmake),
  # a C++ compiler with OpenMP (g++, libgomp), and libclang for its bindings.
  if [ "${3:-}" = "lightgbm" ]; then
    command -v cmake >/dev/null || missing+=(cmake)
    command -v c++ >/dev/null || missing+=(g++)
    python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
    ls /usr/lib/llvm-*/lib/libclang.so >/dev/null 2>&1 || ls /usr/lib/*/libclang*.so >/dev/null 2>&1 \
      || missing+=(libclang-dev)
  fi
  if [ ${#missing[@]} -gt 0 ]; then
    echo "== installing Debian packages: ${missing[*]}" >&2
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >&2
  fi
  command -v cargo >/dev/null || { echo "cargo not found: install Rust (rustup) first" >&2; exit 1; }
}

cmake_at_least_3_28() {
  # Whether the CMake at $1 (a path or a name on PATH) is 3.28 or newer.
  local v
  v="$("$1" --version 2>/dev/null | sed -n 's/^cmake version \([0-9]*\)\.\([0-9]*\).*/\1 \2/p')" || true
  [ -n "$v" ] || return 1
  set -- $v
  [ "$1" -gt 3 ] || { [ "$1" -eq 3 ] && [ "$2" -ge 28 ]; }
}

ensure_cmake() {
  # lightgbm3-sys (feature `lightgbm`) builds LightGBM 4.7.0, whose CMake
  # files need CMake >= 3.28; Debian 12 has 3.25. Then a CMake 3.x from
  # PyPI goes into its own venv, target/tools/cmake, and CMAKE points the
  # build at it (the `cmake` crate reads CMAKE). A CMAKE already set is used as it is.
  [ -n "${CMAKE:-}" ] && return 0
  cmake_at_least_3_28 cmake && return 0
  local venv="${CARGO_TARGET_DIR:-$repo/target}/tools/cmake"
  if ! cmake_at_least_3_28 "$venv/bin/cmake"; then
    echo "== installing CMake 3.x from PyPI into $venv (LightGBM needs >= 3.28)" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q 'cmake>=3.28,<4' >&2
  fi
  export CMAKE="$venv/bin/cmake"
}

ensure_python_venv() {
  # A venv with the independent references: numpy, h5py, pandas + PyTables,
  # scikit-learn, lightgbm (Python's LightGBM, for tests/lightgbm_interop.rs).
  local venv="${GRAMSTREAM_VENV:-$repo/.venv}"
  if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import numpy, h5py, pandas, tables, sklearn, lightgbm' 2>/dev/null; then
    echo "== creating Python venv $venv (numpy, h5py, pandas, tables, scikit-learn, lightgbm)" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --upgrade pip >&2
    "$venv/bin/pip" install -q numpy h5py pandas tables scikit-learn lightgbm >&2
  fi
  export GRAMSTREAM_PYTHON="$venv/bin/python"
}

ensure_python_package() {
  # The Python bindings (python/: maturin + PyO3) installed in the venv of
  # ensure_python_venv, with maturin, pytest, tqdm, dask.distributed (the
  # Dask recipe's test) and matplotlib (the notebook example's). Rebuilt (incrementally,
  # in python/target) when the library or the bindings changed since the last
  # install, and always under CI.
  local venv="${GRAMSTREAM_VENV:-$repo/.venv}" stamp
  stamp="$venv/.gramstream-python-installed"
  if ! "$venv/bin/python" -c 'import maturin, pytest, tqdm, distributed, matplotlib' 2>/dev/null; then
    echo "== installing maturin, pytest, tqdm, dask.distributed and matplotlib into $venv" >&2
    "$venv/bin/pip" install -q 'maturin>=1.9.4,<2' pytest tqdm 'dask[distributed]' matplotlib >&2
  fi
  if [ -z "${CI:-}" ] && [ -e "$stamp" ] && "$venv/bin/python" -c 'import gramstream' 2>/dev/null \
    && [ -z "$(find "$repo/src" "$repo/Cargo.toml" "$repo/Cargo.lock" "$repo/python" \
      \( -path "$repo/python/target" -o -path "$repo/python/tests" -o -name __pycache__ \) -prune \
      -o -newer "$stamp" -print -quit)" ]; then
    return 0
  fi
  echo "== building and installing the Python bindings (pip install ./python) into $venv" >&2
  # Without build isolation pip uses the venv's maturin, whose wrapper runs the
  # `maturin` binary from PATH.
  PATH="$venv/bin:$PATH" "$venv/bin/pip" install -q --force-reinstall --no-deps --no-build-isolation "$repo/python" >&2
  touch "$stamp"
}

ensure_nist_data() {
  # The NIST StRD linear-regression files for tests/nist.rs. Debian's gretl-data
  # package ships them unchanged in /usr/share/gretl/data/nist/; its .deb is
  # downloaded with apt-get and unpacked into target/nist-strd (not installed:
  # gretl-data depends on the gretl GUI and ~80 packages). Checked against
  # tests/data/nist/MD5SUMS. GRAMSTREAM_NIST_DIR, when set, is used as it is.
  [ -n "${GRAMSTREAM_NIST_DIR:-}" ] && return 0
  local sums="$repo/tests/data/nist/MD5SUMS" dest="$repo/target/nist-strd"
  if ! (cd "$dest" 2>/dev/null && md5sum --quiet -c "$sums" >/dev/null 2>&1); then
    echo "== unpacking the NIST StRD data from Debian's gretl-data into $dest" >&2
    local tmp
    tmp="$(mktemp -d)"
    chmod 755 "$tmp"
    if ! (cd "$tmp" && apt-get download -qq gretl-data >&2 2>/dev/null); then
      as_root apt-get update -qq || true
      (cd "$tmp" && apt-get download -qq gretl-data >&2) || true
    fi
    if ls "$tmp"/gretl-data_*.deb >/dev/null 2>&1; then
      dpkg-deb -x "$tmp"/gretl-data_*.deb "$tmp/x"
      mkdir -p "$dest"
      cp "$tmp"/x/usr/share/gretl/data/nist/*.dat "$dest"/
    fi
    rm -rf "$tmp"
    if ! (cd "$dest" 2>/dev/null && md5sum --quiet -c "$sums" >&2); then
      # tests/nist.rs skips without the data, and fails under CI.
      echo "warning: no verified NIST StRD data in $dest" >&2
      return 0
    fi
  fi
  export GRAMSTREAM_NIST_DIR="$dest"
}
