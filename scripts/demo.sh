#!/usr/bin/env bash
# The main demo: installs what is missing, builds, and runs the sharded parameter server
# (100 MB of float64 in shards, workers pulling and pushing; on the GPU when there is one),
# after two lines on the machine and its GPUs. Arguments go to the sample (try --quick, or --shards 4).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh build -- spindle_cli sharded_parameter_server >&2
build/bin/spindle info | grep -E "^(Machine|GPUs)"
exec build/bin/sharded_parameter_server "$@"
