#!/usr/bin/env bash
# Installs what is missing, builds the library with Clang's thread safety analysis, then builds
# spindle and runs the whole test suite twice: with the CUDA path (SPINDLE_CUDA=AUTO, in
# build/) and without it (SPINDLE_CUDA=OFF, in build-nocuda/), then a 60 s soak and a cluster
# soak on 3 ranks (with MPI). Then the suite runs once more
# under ASan, UBSan and LeakSanitizer (build-asan/) and once under ThreadSanitizer
# (build-tsan/, Clang 16), libFuzzer targets run for a fixed time
# each (build-fuzz/, Clang), and, with nvcc present, the portable build for GPU machines is
# built (build-gpu/).
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

# A mixed load for 60 s: every result checked, nothing left pending, memory flat.
echo "== soak, 60 s (build-nocuda/bin/soak --quick)"
timeout -k 10 300 build-nocuda/bin/soak --quick | tail -n 1  # a hang fails, it does not stall CI
# 100,000 cross-rank objects on 3 ranks: every answer checked, every rank idle and flat after.
if [[ -x build-nocuda/bin/cluster_soak ]]; then
  echo "== cluster soak, 100,000 objects on 3 ranks (build-nocuda/bin/cluster_soak --quick)"
  timeout -k 10 300 mpirun --oversubscribe --allow-run-as-root -np 3 \
    build-nocuda/bin/cluster_soak --quick | tail -n 1
fi

# The whole suite again under AddressSanitizer, UndefinedBehaviorSanitizer and LeakSanitizer
# (without CUDA). handle_segv=0 leaves SIGSEGV to spindle's own stack overflow report;
echo "== sanitizer suite: ASan + UBSan + LeakSanitizer (build-asan)"
if [[ -f build-asan/build.ninja ]]; then
  scripts/build.sh build-asan
else
  scripts/build.sh build-asan -DSPINDLE_CUDA=OFF -DSPINDLE_SANITIZE=address
fi
# allocator_may_return_null=1: a huge allocation fails as it would without ASan, so the tests
# see spindle's own error for it.
ASAN_OPTIONS=handle_segv=0:detect_leaks=1:check_initialization_order=1:allocator_may_return_null=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure --parallel "$(nproc)"

# The whole suite again under ThreadSanitizer (without CUDA), with Clang 16 (setup.sh). spindle
# tells TSan of Boost.Fiber's switches itself (src/fibers/worker_algorithm.cc). Reports TSan
# cannot avoid (Boost.Fiber's and libstdc++'s uninstrumented synchronisation, moodycamel's
# fences) are suppressed by tests/tsan.supp, each with its reason; the count of each is shown.
# fiber_algorithms_smoke times Boost's own algorithms, not spindle's, and is left out.
echo "== sanitizer suite: ThreadSanitizer (Clang 16, build-tsan)"
if [[ ! -f build-tsan/build.ninja ]]; then
  cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_COMPILER=clang++-16 -DSPINDLE_CUDA=OFF -DSPINDLE_SANITIZE=thread
fi
cmake --build build-tsan --parallel "$(nproc)"
# The suppressions match function names: the symbolizer is named, not looked for.
tsan_symbolizer=/usr/lib/llvm-16/bin/llvm-symbolizer
if [[ ! -x $tsan_symbolizer ]]; then
  echo "no $tsan_symbolizer (Debian's llvm-16): ThreadSanitizer's suppressions need it" >&2
  exit 1
fi
TSAN_OPTIONS="suppressions=$PWD/tests/tsan.supp:handle_segv=0:allocator_may_return_null=1:print_suppressions=1:external_symbolizer_path=$tsan_symbolizer" \
  ctest --test-dir build-tsan --output-on-failure --parallel "$(nproc)" -E '^fiber_algorithms_smoke$'
echo "== ThreadSanitizer suppressions matched, over the whole suite:"
awk '/^ThreadSanitizer: Matched/ { listing = 1; next }
     listing && $2 ~ /^race:/ { matched[$2] += $1; next }
     { listing = 0 }
     END { n = 0; for (s in matched) { printf "  %8d %s\n", matched[s], s; n++ }
           if (n == 0) print "  none" }' build-tsan/Testing/Temporary/LastTest.log

# libFuzzer on what spindle reads from outside: parameter checkpoints, performance model
# files, the command line. Each target starts from its committed seeds, runs a fixed time,
# and stops the suite on the first crash (the input is saved in build-fuzz/).
echo "== fuzzing, ${SPINDLE_FUZZ_SECONDS:=20} s per target (Clang, libFuzzer; build-fuzz)"
if [[ ! -f build-fuzz/build.ninja ]]; then
  cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_COMPILER=clang++ -DSPINDLE_CUDA=OFF -DSPINDLE_FUZZ=ON -DSPINDLE_BUILD_TESTS=OFF \
    -DSPINDLE_BUILD_BENCHMARKS=OFF -DSPINDLE_BUILD_SAMPLES=OFF
fi
cmake --build build-fuzz --parallel "$(nproc)" --target checkpoint_fuzz perf_model_fuzz cli_fuzz
for target in checkpoint perf_model cli; do
  mkdir -p "build-fuzz/corpus/$target"
  log=build-fuzz/$target.log
  # The CLI target reads the performance model: an empty cache keeps this machine's out.
  if ! XDG_CACHE_HOME=$PWD/build-fuzz/cache "build-fuzz/bin/${target}_fuzz" \
      -max_total_time="$SPINDLE_FUZZ_SECONDS" \
      -print_final_stats=1 -artifact_prefix="build-fuzz/$target-" \
      "build-fuzz/corpus/$target" "tests/fuzz/corpus/$target" >"$log" 2>&1; then
    tail -n 60 "$log" >&2
    echo "fuzzing $target found a failure: the input is in build-fuzz/$target-*" >&2
    exit 1
  fi
  echo "$target: $(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | grep -o '[0-9]*$') inputs run, no failure"
done

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
