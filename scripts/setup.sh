#!/usr/bin/env bash
# Installs the Debian packages spindle builds with, only those that are missing, so that a
# second run costs a few dpkg queries. The CUDA toolkit is optional: /usr/local/cuda or none.
set -euo pipefail

packages=(
  cmake ninja-build g++ clang libclang-rt-14-dev pkg-config util-linux
  libhwloc-dev hwloc nlohmann-json3-dev libboost-fiber-dev libboost-context-dev
  libgtest-dev libgmock-dev libbenchmark-dev libtbb-dev libcaf-dev libxgboost-dev
  libstarpu-dev gnuplot-nox python3 python3-venv
)

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
