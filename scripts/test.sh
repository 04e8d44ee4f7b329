#!/usr/bin/env bash
# Installs what is missing, builds the library with Clang's thread safety analysis, then builds
# spindle and runs the whole test suite twice: with the CUDA path (SPINDLE_CUDA=AUTO, in
# build/) and without it (SPINDLE_CUDA=OFF, in build-nocuda/); with nvcc present, it also
# builds the portable build for GPU machines (build-gpu/).
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
  # ctest lists skipped tests without their reason; the tests' log holds it.
  local log=$build_dir/Testing/Temporary/LastTest.log skipped reason
  skipped=$(grep -c 'Skip regular expression found in output' "$log" 2>/dev/null || true)
  if ((skipped > 0)); then
    reason=$(grep -m1 -E '^no GPU: ' "$log" || echo "see $log")
    echo "== $skipped tests skipped ($build_dir): $reason"
  fi
}

# Clang's thread safety analysis proves the library's locking (-Werror=thread-safety); the
# library alone is built, as the analysis looks at its code.
echo "== thread safety analysis (Clang, build-clang)"
if [[ ! -f build-clang/build.ninja ]]; then
  cmake -S . -B build-clang -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=clang++ \
    -DSPINDLE_CUDA=OFF -DSPINDLE_BUILD_TESTS=OFF -DSPINDLE_BUILD_BENCHMARKS=OFF \
    -DSPINDLE_BUILD_SAMPLES=OFF
fi
cmake --build build-clang --parallel "$(nproc)" --target spindle

run_suite build AUTO
run_suite build-nocuda OFF

# The portable build for GPU machines (README, Build options) is built, not run: this machine
# has no GPU. Its binaries may need only the system's C and C++ runtimes and the CUDA driver,
# plus what it copied beside them.
if command -v nvcc >/dev/null || [[ -x /usr/local/cuda/bin/nvcc ]]; then
  echo "== portable build for GPU machines (build-gpu)"
  scripts/build.sh build-gpu -DSPINDLE_STATIC=ON -DSPINDLE_CUDA=ON
  for binary in build-gpu/bin/cuda_device_test build-gpu/bin/kernels_benchmark; do
    foreign=$(ldd "$binary" | grep -v -E 'linux-vdso|ld-linux|lib(c|m|stdc\+\+|gcc_s|cuda)\.so|build-gpu/bin/' || true)
    if [[ -n $foreign ]]; then
      echo "portable build: $binary needs shared libraries a GPU machine may lack:" >&2
      echo "$foreign" >&2
      exit 1
    fi
  done
fi
