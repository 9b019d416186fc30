#!/usr/bin/env bash
# The main job on embedded defaults: install, build, store the shared sample captures in ./store, show what
# the store holds and answer a first query. (Live capture and the HTTP server replace the import step once
# they land.)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DREWIND_BUILD_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc)" --target rewind
store=${REWIND_STORE:-./store}
samples=${REWIND_SAMPLES:-../shared/pcaps}
if [ -d "$samples" ]; then
  # Import each sample; damaged samples are reported and the rest goes on.
  find "$samples" -type f \( -name '*.pcap' -o -name '*.pcapng' -o -name '*.cap' \) | sort |
    xargs build/rewind import -q --dir "$store" || echo "(some sample captures are damaged on purpose; their good packets were kept)"
fi
build/rewind stats --dir "$store"
echo
echo "Try:  build/rewind query --dir $store 'tcp and port 80' | tcpdump -nr - | head"
build/rewind query --dir "$store" --limit 5 'tcp and port 80' | tcpdump -nr - 2>/dev/null || true
