#!/usr/bin/env bash
# Import speed against its peers: `rewind import -q` of one pcap into an empty store (REWIND, and REWIND_BASE
# when given, e.g. an older build), `tcpdump -r TRACE -w OUT` (the same records rewritten as a pcap) and,
# cold, `dd if=TRACE of=/dev/null bs=1M iflag=direct` (what the disk reads at best) and "read + write": `cat
# TRACE > /dev/null` while `dd oflag=direct` writes as many bytes as the import's packet files hold (what the
# disk does when an import's reads and writes share it: the floor for a cold import), alternated RUNS times.
# Warm runs follow `cat TRACE > /dev/null`; cold runs follow `sync; echo 3 > drop_caches`. The output store
# (or file) is removed before each run. Wall time, CPU (user + system) and peak RSS from /usr/bin/time;
# medians, min and max; MB/s is the trace's size over the median wall time. Prints a Markdown section on
# stdout (progress on stderr).
#   usage: bench/import_bench.sh warm|cold [RUNS]
# Environment: REWIND (default build/rewind), REWIND_BASE (optional), TRACE (default
# /tmp/rewind-bench/trace-512M.pcap, made with make-traffic.sh if absent), WORK (/tmp/rewind-bench/import; the
# stores and tcpdump's output go there, on the disk being measured). Needs root (drop_caches), tcpdump.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
log() { echo "import_bench: $*" >&2; }
mode=${1:?usage: import_bench.sh warm|cold [RUNS]}
runs=${2:-7}
[ "$mode" = warm ] || [ "$mode" = cold ] || { echo "usage: import_bench.sh warm|cold [RUNS]" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
command -v tcpdump >/dev/null || { echo "needs tcpdump" >&2; exit 1; }
trace=${TRACE:-/tmp/rewind-bench/trace-512M.pcap}
work=${WORK:-/tmp/rewind-bench/import}
rewind=${REWIND:-$repo/build/rewind}
base=${REWIND_BASE:-}
if [ ! -f "$trace" ]; then
  log "making $trace"
  /work/shared/scripts/make-traffic.sh "$trace" "$(basename "$trace" .pcap | sed 's/^trace-//')" >&2
fi
mkdir -p "$work"
rm -rf "$work"/store "$work"/out.pcap "$work"/times
mkdir -p "$work/times"

tools="rewind tcpdump"
[ -n "$base" ] && tools="base $tools"
[ "$mode" = cold ] && tools="$tools dd readwrite"
store_mib=0
if [ "$mode" = cold ]; then  # the bytes an import writes, for "read + write"
  "$rewind" import -q --dir "$work/store" "$trace"
  store_mib=$(( $(du -cb "$work"/store/PKT*/* | tail -1 | cut -f1) / 1048576 ))
fi

prepare() {
  rm -rf "$work/store" "$work/out.pcap"
  sync
  if [ "$mode" = cold ]; then echo 3 > /proc/sys/vm/drop_caches; else cat "$trace" > /dev/null; fi
}
run_one() {  # tool round
  local out="$work/times/$1"
  case $1 in
    rewind) /usr/bin/time -f "%e %U %S %M" -a -o "$out" "$rewind" import -q --dir "$work/store" "$trace" ;;
    base) /usr/bin/time -f "%e %U %S %M" -a -o "$out" "$base" import -q --dir "$work/store" "$trace" ;;
    tcpdump) /usr/bin/time -f "%e %U %S %M" -a -o "$out" tcpdump -r "$trace" -w "$work/out.pcap" 2>/dev/null ;;
    dd) /usr/bin/time -f "%e %U %S %M" -a -o "$out" dd if="$trace" of=/dev/null bs=1M iflag=direct status=none ;;
    readwrite) /usr/bin/time -f "%e %U %S %M" -a -o "$out" bash -c 'cat "$1" > /dev/null & dd if=/dev/zero of="$2" bs=1M \
                 count="$3" oflag=direct status=none; wait' _ "$trace" "$work/out.pcap" "$store_mib" ;;
  esac
}

loads=()
for r in $(seq "$runs"); do
  # Rotate the order each round so no tool always runs right after the same one.
  set -- $tools
  for _ in $(seq $(( (r - 1) % $# ))); do set -- "${@:2}" "$1"; done
  for t in "$@"; do
    prepare
    run_one "$t"
  done
  loads+=("$(cut -d' ' -f1 /proc/loadavg)")
  log "round $r of $runs done"
done
rm -rf "$work/store" "$work/out.pcap"

bytes=$(stat -c %s "$trace")
stat_line() {  # file column -> "median (min-max)"
  sort -n <(cut -d' ' -f"$2" "$1") | awk '{v[NR]=$1} END {printf "%.2f (%.2f-%.2f)", v[int((NR+1)/2)], v[1], v[NR]}'
}
median() { sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

echo "### Import, $mode page cache: $(date -u +%Y-%m-%dT%H:%MZ)"
echo
echo "Command: \`REWIND=$rewind${base:+ REWIND_BASE=$base} bench/import_bench.sh $mode $runs\`; trace $trace ($bytes bytes);"
echo "load average (1 min) after each round: ${loads[*]}."
echo
echo "| tool | wall s, median (min-max) | MB/s at the median | CPU s (user + sys), median | peak RSS MiB, median |"
echo "|---|---|---|---|---|"
for t in $tools; do
  f="$work/times/$t"
  wall=$(cut -d' ' -f1 "$f" | median)
  cpu=$(awk '{print $2 + $3}' "$f" | median)
  rss=$(cut -d' ' -f4 "$f" | median)
  name=$t
  case $t in
    rewind) name="rewind import ($(basename "$rewind"))" ;;
    base) name="rewind import ($(basename "$base"))" ;;
    tcpdump) name="tcpdump -r -w" ;;
    dd) name="dd iflag=direct (read only)" ;;
    readwrite) name="read + write: cat, and dd oflag=direct of $store_mib MiB at once" ;;
  esac
  printf '| %s | %s | %.0f | %.2f | %.0f |\n' "$name" "$(stat_line "$f" 1)" "$(echo "$bytes / $wall / 1000000" | bc -l)" \
    "$cpu" "$(echo "$rss / 1024" | bc -l)"
done
