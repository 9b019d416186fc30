#!/usr/bin/env bash
# The main job on embedded defaults: install, build, then run the appliance (`rewind run`): capture on the
# default route's interface into ./store, query server and web page on http://127.0.0.1:9123/.
# Ctrl-C (SIGINT) stops it. REWIND_CONFIG=FILE runs with a config file instead (see scripts/rewind.json.example).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh --run
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DREWIND_BUILD_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc)" --target rewind
if [ -n "${REWIND_CONFIG:-}" ]; then
  exec build/rewind run --config "$REWIND_CONFIG"
fi
exec build/rewind run
