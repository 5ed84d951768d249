#!/usr/bin/env bash
# setup.sh — install circd's Debian dependencies (idempotent: only what is missing) and build it.
#   scripts/setup.sh              install + Release build in build/
#   scripts/setup.sh --sanitize   also an ASan+UBSan build in build-asan/
#   scripts/setup.sh --deps-only  install only
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential cmake pkg-config            # toolchain
  openmpi-bin libopenmpi-dev                  # MPI
  libhdf5-openmpi-dev hdf5-tools              # parallel HDF5 + h5dump
  libyaml-dev libjansson-dev                  # spec YAML, every JSON
  libopenblas-openmp-dev                      # cblas_sgemm, OpenMP build (no oversubscription with our OpenMP)
  clang libclang-rt-14-dev                    # libFuzzer harnesses
  libxml2-utils                               # xmllint: the report test checks its SVG figures
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=; [[ $(id -u) == 0 ]] || SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

sanitize=0
for arg in "$@"; do
  case $arg in
    --deps-only) exit 0 ;;
    --sanitize) sanitize=1 ;;
    *) echo "setup: unknown option $arg (known: --sanitize, --deps-only)" >&2; exit 2 ;;
  esac
done

jobs=$(nproc)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$jobs"
if ((sanitize)); then
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCIRCD_SANITIZE=ON >/dev/null
  cmake --build build-asan -j"$jobs"
fi
