#!/usr/bin/env bash
# Stress: runs every test binary of a build N times (default 50), each run with its tests in a
# new shuffled order, while CPU hogs keep every core busy, and prints a table of runs and
# failures per binary (a run over its time limit counts as a failure: a hang). Zero failures
# is the bar. Build first (scripts/build.sh, or scripts/test.sh).
#   scripts/stress.sh [--runs N] [--build DIR] [--only REGEX] [--timeout SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."

runs=50 build=build only=. limit=300
while (($#)); do
  case $1 in
    --runs) runs=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    --timeout) limit=$2; shift 2 ;;
    -h|--help) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "stress.sh: unknown argument '$1'; allowed: --runs N --build DIR --only REGEX --timeout S" >&2; exit 2 ;;
  esac
done
[[ $runs =~ ^[1-9][0-9]*$ ]] || { echo "stress.sh: --runs $runs: a whole number from 1 is allowed" >&2; exit 2; }
[[ $limit =~ ^[1-9][0-9]*$ ]] || { echo "stress.sh: --timeout $limit: a whole number of seconds from 1 is allowed" >&2; exit 2; }

mapfile -t binaries < <(find "$build/bin" -maxdepth 1 -type f -name '*_test' -perm -u+x | sort | grep -E "$only")
if ((${#binaries[@]} == 0)); then
  echo "stress.sh: no test binaries in $build/bin matching '$only': build first" >&2
  exit 2
fi

hogs=()
cleanup() { ((${#hogs[@]})) && kill "${hogs[@]}" 2>/dev/null || true; }
trap cleanup EXIT
for ((core = 0; core < $(nproc); ++core)); do
  (while :; do :; done) &
  hogs+=($!)
done

logs=$(mktemp -d)
echo "| test binary | runs | failures | hangs |"
echo "| --- | ---: | ---: | ---: |"
total_failures=0
for binary in "${binaries[@]}"; do
  name=$(basename "$binary")
  failures=0 hangs=0
  for ((run = 1; run <= runs; ++run)); do
    set +e
    timeout -k 10 "$limit" "$binary" --gtest_shuffle --gtest_random_seed="$run" --gtest_brief=1 \
      >"$logs/$name.$run.log" 2>&1
    status=$?
    set -e
    if ((status == 124 || status == 137)); then
      ((++hangs))
    elif ((status != 0)); then
      ((++failures))
    else
      rm -f "$logs/$name.$run.log"
    fi
  done
  echo "| $name | $runs | $failures | $hangs |"
  total_failures=$((total_failures + failures + hangs))
done
if ((total_failures > 0)); then
  echo "stress.sh: $total_failures failed runs; their logs are in $logs" >&2
  exit 1
fi
rm -rf "$logs"
