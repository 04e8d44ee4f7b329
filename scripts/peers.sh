#!/usr/bin/env bash
# spindle against its peers (oneTBB, std::async, CAF, StarPU, Ray), side by side on this
# machine: installs what is missing (Debian packages; Ray from PyPI into build/peers-venv),
# builds, runs every scenario interleaved over several repetitions with progress, and writes
# benchmarks/results/<machine>-<date>.md with PNG plots. A peer that cannot be installed is
# reported as missing in the table.
#   scripts/peers.sh [--quick] [--reps N] [--machine NAME] [--out DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh build
exec python3 benchmarks/peers/run.py --build-dir build --venv build/peers-venv "$@"
