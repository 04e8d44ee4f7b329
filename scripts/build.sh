#!/usr/bin/env bash
# Configures (once) and builds spindle in a build folder.
#   scripts/build.sh [BUILD_DIR [extra cmake -D options...]] -- [targets...]
# BUILD_DIR defaults to build/. Later runs only rebuild what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

build_dir=${1:-build}
shift || true
cmake_options=()
while (($#)) && [[ $1 != -- ]]; do cmake_options+=("$1"); shift; done
[[ ${1:-} == -- ]] && shift
targets=("$@")

if [[ ! -f $build_dir/build.ninja || ${#cmake_options[@]} -gt 0 ]]; then
  cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release "${cmake_options[@]}"
fi
if ((${#targets[@]})); then
  cmake --build "$build_dir" --parallel "$(nproc)" --target "${targets[@]}"
else
  cmake --build "$build_dir" --parallel "$(nproc)"
fi
