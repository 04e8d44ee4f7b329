#!/usr/bin/env bash
# Installs what is missing, then builds spindle and runs the whole test suite twice: with the
# CUDA path (SPINDLE_CUDA=AUTO, in build/) and without it (SPINDLE_CUDA=OFF, in build-nocuda/).
# Without a GPU the CUDA tests skip and say why.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# The peers' benchmark test (--quick) installs Ray once, into build/, for both suites.
export SPINDLE_PEERS_VENV=$PWD/build/peers-venv

run_suite() {
  local build_dir=$1 mode=$2
  echo "== spindle tests, SPINDLE_CUDA=$mode ($build_dir)"
  if [[ -f $build_dir/CMakeCache.txt ]] && grep -q "^SPINDLE_CUDA:STRING=$mode$" "$build_dir/CMakeCache.txt"; then
    scripts/build.sh "$build_dir"
  else
    scripts/build.sh "$build_dir" -DSPINDLE_CUDA="$mode"
  fi
  ctest --test-dir "$build_dir" --output-on-failure --parallel "$(nproc)"
}

run_suite build AUTO
run_suite build-nocuda OFF
