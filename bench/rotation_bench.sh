#!/usr/bin/env bash
# Rotation benchmark: what a file rotation costs the capture thread. Replays a trace (looped) over a veth pair
# inside a network namespace this script creates into `rewind capture` with a small ring and a file age that
# makes the first file rotate mid-replay, and reports, per run, packets stored against sent, kernel drops, the
# number of files and the longest WriteBlock (`max_write_latency_us` of capture0.json, which includes any
# rotation done on the capture thread). Prints a Markdown table.
#   usage: bench/rotation_bench.sh [TRACE (default /tmp/rewind-bench/trace-512M.pcap)]
# Environment: BINARIES (space-separated rewind binaries, alternated in each round; default build/rewind),
# ROUNDS (default 3), BLOCKS (ring size in 1 MiB blocks, default 16), FILEAGE (--fileage_sec, default 20),
# PPS (tcpreplay packets/s, default 300000), LOOPS (tcpreplay --loop, default 4).
# Needs root, tcpreplay, capinfos, python3.
set -euo pipefail
cd "$(dirname "$0")/.."
trace=${1:-/tmp/rewind-bench/trace-512M.pcap}
[ -f "$trace" ] || { echo "no trace $trace (../shared/scripts/make-traffic.sh $trace 512M)" >&2; exit 1; }
binaries=(${BINARIES:-$PWD/build/rewind})
rounds=${ROUNDS:-3} blocks=${BLOCKS:-16} fileage=${FILEAGE:-20} pps=${PPS:-300000} loops=${LOOPS:-4}
if [ -z "${REWIND_IN_NETNS:-}" ]; then
  REWIND_IN_NETNS=1 exec unshare -n bash "$0" "$trace"
fi
ip link add v0 type veth peer name v1
for i in v0 v1; do sysctl -qw net.ipv6.conf.$i.disable_ipv6=1; ip link set $i mtu 9500; ip link set $i up; done
work=$(mktemp -d /tmp/rotation-bench.XXXXXX)
pid=
trap '[ -n "$pid" ] && kill -INT "$pid" 2>/dev/null; rm -rf "$work"' EXIT

echo "Command: \`ROUNDS=$rounds BLOCKS=$blocks FILEAGE=$fileage PPS=$pps LOOPS=$loops BINARIES=\"${binaries[*]}\" bench/rotation_bench.sh $trace\`"
echo "($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores; \`rewind capture --iface v1 --blocks $blocks --fileage_sec $fileage\`,"
echo "\`tcpreplay -i v0 --pps $pps --loop $loops\`, the binaries alternating in each round)"
echo
echo "| binary | round | stored / sent | kernel drops | files | longest WriteBlock, ms | load (1 min) |"
echo "|---|---|---|---|---|---|---|"
for round in $(seq "$rounds"); do
  for bin in "${binaries[@]}"; do
    store=$work/store
    rm -rf "$store"
    "$bin" capture --iface v1 --dir "$store" --blocks "$blocks" --fileage_sec "$fileage" >/dev/null 2>"$work/capture.log" &
    pid=$!
    for _ in $(seq 300); do grep -q capturing "$work/capture.log" && break; sleep 0.05; done
    grep -q capturing "$work/capture.log" || { cat "$work/capture.log" >&2; exit 1; }
    sent=$(tcpreplay -q -i v0 --pps "$pps" --loop "$loops" "$trace" 2>&1 | awk '/Actual:/ && !n++ { print $2 }')
    sleep 1.5  # the last partly filled block is handed over after the block retire timeout
    kill -INT "$pid"; wait "$pid" || true
    pid=
    python3 - "$store/capture0.json" "$sent" "$(basename "$bin")" "$round" "$(cut -d' ' -f1 /proc/loadavg)" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
print(f"| {sys.argv[3]} | {sys.argv[4]} | {c['packets']} / {sys.argv[2]} | {c['kernel_drops']} | {c['files']} | "
      f"{c['max_write_latency_us'] / 1000:.0f} | {sys.argv[5]} |")
EOF
  done
done
