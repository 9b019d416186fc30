#!/usr/bin/env bash
# Disk used on a quiet link: replays a trace at low packet rates over a veth pair inside a network namespace
# this script creates, for a fixed time each, into rewind (and a baseline build) and Debian's stenotype, all
# handing over ring blocks after 1 s (--blockage_sec 1), and reports for each: packets stored, their bytes,
# the disk space their packet files take (allocated blocks, `stat %b`) against their size, and for rewind what
# `rewind query --stats` says a query for everything read of them. Prints Markdown.
#   usage: bench/quiet_link_bench.sh [SECONDS (default 20)] [RATES... (packets/s, default 10 100 1000)]
# REWIND (environment): the build to measure (default build/rewind); REWIND_BASE: a baseline build (optional).
# TRACE: the trace to replay (default /tmp/rewind-bench/trace-512M.pcap, from ../shared/scripts/make-traffic.sh).
# Needs root, tcpreplay, tcpdump, stenographer (stenotype, optional), python3.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-20}
shift $(( $# >= 1 ? 1 : 0 ))
rates=("$@")
[ ${#rates[@]} -gt 0 ] || rates=(10 100 1000)
rewind=${REWIND:-$PWD/build/rewind}
base=${REWIND_BASE:-}
trace=${TRACE:-/tmp/rewind-bench/trace-512M.pcap}
[ -x "$rewind" ] || { echo "build rewind first" >&2; exit 1; }
[ -f "$trace" ] || { echo "no trace $trace (make one with ../shared/scripts/make-traffic.sh)" >&2; exit 1; }
if [ -z "${REWIND_IN_NETNS:-}" ]; then
  REWIND_IN_NETNS=1 exec unshare -n bash "$0" "$secs" "${rates[@]}"
fi
ip link add v0 type veth peer name v1
for i in v0 v1; do sysctl -qw net.ipv6.conf.$i.disable_ipv6=1; ip link set $i mtu 9500; ip link set $i up; done
work=$(mktemp -d /var/tmp/rewind-quiet.XXXXXX)
chmod 755 "$work"  # stenotype runs as nobody
trap 'rm -rf "$work"' EXIT

# "files size allocated" of the regular files under $1 whose names are all digits (packet files).
disk() {
  find "$1" -type f -regex '.*/PKT[0-9]+/[0-9]+' -printf '%s %b\n' 2>/dev/null |
    awk '{ n++; s += $1; a += $2 * 512 } END { printf "%d %d %d\n", n, s, a }'
}
# "packets bytes" of a pcap on stdin.
count() { python3 -c '
import struct, sys
d = sys.stdin.buffer.read(); o = 24; n = b = 0
while o + 16 <= len(d):
    caplen = struct.unpack_from("<I", d, o + 8)[0]; n += 1; b += caplen; o += 16 + caplen
print(n, b)'; }

run_rewind() {  # name binary rate
  local dir=$work/$1-$3
  "$2" capture --iface v1 --dir "$dir" --blocks 64 --blockage_sec 1 2>"$dir.log" &
  local pid=$!
  for _ in $(seq 200); do grep -q capturing "$dir.log" 2>/dev/null && break; sleep 0.05; done
  tcpreplay -q -i v0 --pps "$3" --duration "$secs" "$trace" >/dev/null 2>&1 || true
  sleep 1.5
  kill -INT $pid; wait $pid || true
  read -r pk by < <("$2" query --dir "$dir" "" | count)
  # What a query for everything reads of the packet files (--stats: "... single packets (N bytes) ...").
  local q
  q=$("$2" query --dir "$dir" --stats "" 2>&1 >/dev/null | sed -n 's/.*single packets (\([0-9]*\) bytes).*/\1/p')
  echo "$1 $3 $pk $by $(disk "$dir") ${q:-0}"
}
run_steno() {  # rate
  local dir=$work/stenotype-$1
  mkdir -p "$dir/PKT0" "$dir/IDX0"; chown -R nobody:nogroup "$dir"
  stenotype --iface v1 --dir "$dir" --threads 1 --blocks 64 --aiops 32 --blockage_sec 1 --fileage_sec 60 \
    --seccomp none --no_watchdogs -v 2>"$dir.log" &
  local pid=$!
  for _ in $(seq 300); do
    grep -q "starting to process packets\|Starting to process" "$dir.log" && break; sleep 0.1
  done
  sleep 0.5
  tcpreplay -q -i v0 --pps "$1" --duration "$secs" "$trace" >/dev/null 2>&1 || true
  sleep 2.5
  kill -INT $pid; sleep 1; kill -9 $pid 2>/dev/null || true; wait $pid 2>/dev/null || true
  # stenotype's open file is a dot file until rotation; its blocks share rewind's TPACKET_V3 layout.
  local pk by
  read -r pk by < <(python3 - "$dir/PKT0" <<'PY'
import os, struct, sys
n = b = 0
for f in os.listdir(sys.argv[1]):
    p = os.path.join(sys.argv[1], f)
    if not os.path.isfile(p) or f == '.lock': continue
    d = open(p, 'rb').read()
    for at in range(0, len(d) - 48 + 1, 1 << 20):
        num, first = struct.unpack_from('<II', d, at + 12)
        o = at + first
        for _ in range(num):
            nxt, _, _, snap = struct.unpack_from('<IIII', d, o)
            n += 1; b += snap
            if nxt == 0: break
            o += nxt
print(n, b)
PY
)
  echo "stenotype $1 $pk $by $(find "$dir/PKT0" -type f ! -name .lock -printf '%s %b\n' |
    awk '{ n++; s += $1; a += $2 * 512 } END { printf "%d %d %d\n", n, s, a }') -"
}

echo "Quiet link: $secs s of \`$(basename "$trace")\` at each rate, blocks handed over after 1 s;" \
  "load $(cut -d' ' -f1 /proc/loadavg)"
echo
echo "| tool | packets/s | packets stored | their bytes | files | size of the files | disk allocated |" \
  "allocated / stored bytes | a query for everything reads |"
echo "|---|---|---|---|---|---|---|---|---|"
for r in "${rates[@]}"; do
  lines=()
  [ -n "$base" ] && lines+=("$(run_rewind rewind-base "$base" "$r")")
  lines+=("$(run_rewind rewind "$rewind" "$r")")
  command -v stenotype >/dev/null && lines+=("$(run_steno "$r")")
  for l in "${lines[@]}"; do
    read -r tool rate pk by files size alloc qread <<<"$l"
    awk -v t="$tool" -v r="$rate" -v pk="$pk" -v by="$by" -v f="$files" -v s="$size" -v a="$alloc" \
      -v q="$qread" 'BEGIN {
      printf "| %s | %s | %d | %.1f KiB | %d | %.1f MiB | %.0f KiB | %.1f | %s |\n", t, r, pk, by / 1024, f,
        s / 1048576, a / 1024, (by > 0 ? a / by : 0), (q == "-" ? "-" : sprintf("%.0f KiB", q / 1024)) }'
  done
done
