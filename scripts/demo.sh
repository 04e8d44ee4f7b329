#!/usr/bin/env bash
# The main demo: installs what is missing, builds, and shows the machine as spindle sees it.
# Arguments go to `spindle info` (try --json, or --num-gpus 4).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh build -- spindle_cli >&2
exec build/bin/spindle info "$@"
