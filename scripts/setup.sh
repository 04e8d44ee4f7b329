#!/usr/bin/env bash
# Installs the Debian packages spindle builds with, only those that are missing, so that a
# second run costs a few dpkg queries. The CUDA toolkit is optional: /usr/local/cuda or none.
set -euo pipefail

packages=(
  cmake ninja-build g++ clang pkg-config util-linux
  libhwloc-dev hwloc nlohmann-json3-dev libboost-fiber-dev libboost-context-dev
  libconcurrentqueue-dev
  libgtest-dev libgmock-dev libbenchmark-dev libtbb-dev libcaf-dev libxgboost-dev
  libstarpu-dev gnuplot-nox python3 python3-venv
  # train_fashion_mnist: BLAS, the gzip'd IDX files, and the dataset itself.
  libopenblas-dev zlib1g-dev dataset-fashion-mnist
  # Cluster mode: Open MPI (mpirun) carries calls, cereal serialises them.
  libopenmpi-dev openmpi-bin libcereal-dev
  # The ThreadSanitizer suite: LLVM 14's TSan runtime (Debian's default Clang) breaks on
  # spindle's fiber switches (its deadlock detector crashes); Clang 16's works. Its
  # suppressions match function names, so it needs LLVM 16's symbolizer (in llvm-16, which
  # clang-16 only recommends): without it every suppressed race is reported.
  clang-16 libclang-rt-16-dev llvm-16
)

# libFuzzer comes with Clang's runtime libraries, packaged per Clang version.
clang_major() { clang --version | sed -n 's/.*clang version \([0-9]*\).*/\1/p' | head -n 1; }
if command -v clang >/dev/null; then
  clang_version=$(clang_major)
  if [[ -n $clang_version ]]; then packages+=("libclang-rt-$clang_version-dev"); fi
fi

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$package")
done
if ((${#missing[@]} == 0)); then
  exit 0
fi

echo "spindle: installing ${missing[*]}" >&2
sudo=()
if [[ $(id -u) -ne 0 ]]; then sudo=(sudo); fi
"${sudo[@]}" apt-get update
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}"

# A first install brings Clang itself: its runtime libraries follow, now that its version is known.
if [[ -z ${clang_version:-} ]] && command -v clang >/dev/null; then
  clang_version=$(clang_major)
  if [[ -n $clang_version ]] &&
     ! dpkg-query -W -f='${Status}' "libclang-rt-$clang_version-dev" 2>/dev/null | grep -q "install ok installed"; then
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y --no-install-recommends \
      "libclang-rt-$clang_version-dev"
  fi
fi
