#!/usr/bin/env bash
# Store benchmark: import throughput, selective and broad query speed, peak memory — rewind next to the disk's
# limits and tcpdump over the original trace, measured in the same run. Prints a Markdown report.
#   usage: bench/store_bench.sh [TRACE_SIZE (default 2G)] [WORKDIR (default /tmp/rewind-bench)]
# Needs root (drops the page cache for cold runs), tcpdump, hyperfine, GNU time, and the tools
# ../shared/scripts/make-traffic.sh needs (wireshark-common, tcpreplay).
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-2G}
work=${2:-/tmp/rewind-bench}
rewind=$PWD/build/rewind
[ -x "$rewind" ] || { echo "build rewind first (cmake --build build)" >&2; exit 1; }
mkdir -p "$work"
trace=$work/trace-$size.pcap
[ -f "$trace" ] || ../shared/scripts/make-traffic.sh "$trace" "$size" >&2
store=$work/store
drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }
mb() { awk -v b="$1" 'BEGIN { printf "%.0f", b / 1e6 }'; }
trace_bytes=$(stat -L -c %s "$trace")
packets=$(capinfos -c -M "$trace" | awk -F: '/Number of packets/ { gsub(/ /, "", $2); print $2 }')

echo "## Store benchmark ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo))"
echo
echo "Trace: \`../shared/scripts/make-traffic.sh $trace $size\` — $(mb "$trace_bytes") MB, $packets packets."
echo "Command: \`bench/store_bench.sh $size $work\`"
echo

# --- the disk's limits -------------------------------------------------------------------------------
drop
t() { /usr/bin/time -o "$work/time.txt" "$@"; tail -1 "$work/time.txt"; }   # format, command... -> the measurement
read_s=$(t -f %e dd if="$trace" of=/dev/null bs=1M iflag=direct status=none)
write_s=$(t -f %e dd if=/dev/zero of="$work/ddtest" bs=1M count=2048 oflag=direct status=none)
rm -f "$work/ddtest"
disk_read=$(awk -v b="$trace_bytes" -v s="$read_s" 'BEGIN { printf "%.0f", b / s / 1e6 }')
disk_write=$(awk -v s="$write_s" 'BEGIN { printf "%.0f", 2147483648 / s / 1e6 }')

# --- import --------------------------------------------------------------------------------------------
rm -rf "$store"
drop
imp=$( { /usr/bin/time -f "%e %M %U %S" "$rewind" import -q --dir "$store" "$trace"; } 2>&1 | tail -1)
read -r imp_s imp_rss imp_user imp_sys <<< "$imp"
rm -rf "$store.warm"
imp2=$( { /usr/bin/time -f "%e %M" "$rewind" import -q --dir "$store.warm" "$trace"; } 2>&1 | tail -1)
read -r imp2_s imp2_rss <<< "$imp2"
rm -rf "$store.warm"
# Peer: tcpdump copying the trace (read + write, no index).
drop
tcpd=$(t -f "%e %M" tcpdump -r "$trace" -w "$work/copy.pcap" 2>/dev/null)
read -r tcpd_s tcpd_rss <<< "$tcpd"
rm -f "$work/copy.pcap"
stats=$("$rewind" stats --dir "$store" --json)
index_bytes=$(echo "$stats" | sed 's/.*"index_bytes":\([0-9]*\).*/\1/')
index_pct=$(echo "$stats" | sed 's/.*"index_percent_of_captured":\([0-9.]*\).*/\1/')
file_bytes=$(echo "$stats" | sed 's/.*"packet_file_bytes":\([0-9]*\).*/\1/')

echo "### Import"
echo
echo "| | MB/s of trace | packets/s | wall s | peak RSS |"
echo "|---|---|---|---|---|"
echo "| disk: sequential read (dd, O_DIRECT, 1 MiB) | $disk_read | | $read_s | |"
echo "| disk: sequential write (dd, O_DIRECT, 1 MiB) | $disk_write | | $write_s | |"
echo "| \`rewind import\`, cold cache | $(awk -v b="$trace_bytes" -v s="$imp_s" 'BEGIN{printf "%.0f", b/s/1e6}') | $(awk -v p="$packets" -v s="$imp_s" 'BEGIN{printf "%.0f", p/s}') | $imp_s (user $imp_user, sys $imp_sys) | $((imp_rss / 1024)) MiB |"
echo "| \`rewind import\`, trace in page cache | $(awk -v b="$trace_bytes" -v s="$imp2_s" 'BEGIN{printf "%.0f", b/s/1e6}') | $(awk -v p="$packets" -v s="$imp2_s" 'BEGIN{printf "%.0f", p/s}') | $imp2_s | $((imp2_rss / 1024)) MiB |"
echo "| peer: \`tcpdump -r trace -w copy\`, cold cache | $(awk -v b="$trace_bytes" -v s="$tcpd_s" 'BEGIN{printf "%.0f", b/s/1e6}') | $(awk -v p="$packets" -v s="$tcpd_s" 'BEGIN{printf "%.0f", p/s}') | $tcpd_s | $((tcpd_rss / 1024)) MiB |"
echo
echo "Store: $(mb "$file_bytes") MB of packet files, index $(mb "$index_bytes") MB = ${index_pct}% of captured bytes."
echo

# --- queries ---------------------------------------------------------------------------------------------
# A selective host: one that appears in only a few packets of the trace.
host=$("$rewind" query --dir "$store" --limit 5000 'tcp' | tcpdump -nr - 2>/dev/null | awk '{print $3}' |
       cut -d. -f1-4 | sort | uniq -c | sort -n | awk 'NR == 1 { print $2 }')
sel="host $host"
"$rewind" query --dir "$store" --exact "$sel" > "$work/sel-rewind.pcap"
tcpdump -r "$trace" -w "$work/sel-tcpdump.pcap" "$sel" 2>/dev/null
same=no
cmp -s <(tcpdump -nn -tt -xx -r "$work/sel-rewind.pcap" 2>/dev/null) <(tcpdump -nn -tt -xx -r "$work/sel-tcpdump.pcap" 2>/dev/null) && same=yes
sel_n=$(tcpdump -r "$work/sel-rewind.pcap" 2>/dev/null | wc -l)
sel_stats=$("$rewind" query --dir "$store" --exact --stats "$sel" 2>&1 >/dev/null | tail -1)
sel_read=$(echo "$sel_stats" | sed 's/.*packets (\([0-9]*\) bytes).*/\1/')

hf() {  # name, prepare, commands... -> mean seconds of each command
  hyperfine -N --style none --export-json "$work/hf.json" "$@" >/dev/null 2>&1
  python3 -c 'import json,sys; print(" ".join("%.4f" % r["mean"] for r in json.load(open(sys.argv[1]))["results"]))' "$work/hf.json"
}
read -r sel_warm tcpd_warm <<< "$(hf --warmup 1 --runs 5 \
  "$rewind query --dir $store --exact --force '$sel'" \
  "tcpdump -r $trace -w /dev/null '$sel'")"
read -r sel_cold <<< "$(hf --runs 3 --prepare "sh -c 'sync; echo 3 > /proc/sys/vm/drop_caches'" \
  "$rewind query --dir $store --exact --force '$sel'")"
read -r tcpd_cold <<< "$(hf --runs 2 --prepare "sh -c 'sync; echo 3 > /proc/sys/vm/drop_caches'" \
  "tcpdump -r $trace -w /dev/null '$sel'")"

drop
broad=$( { /usr/bin/time -f "%e %M" "$rewind" query --dir "$store" --exact tcp > "$work/broad.pcap"; } 2>&1 | tail -1)
read -r broad_s broad_rss <<< "$broad"
broad_bytes=$(stat -c %s "$work/broad.pcap")
rm -f "$work/broad.pcap"
broad2=$( { /usr/bin/time -f "%e %M" "$rewind" query --dir "$store" --exact --force tcp > /dev/null; } 2>&1 | tail -1)
read -r broad2_s broad2_rss <<< "$broad2"
drop
tb=$(t -f "%e %M" tcpdump -r "$trace" -w /dev/null tcp 2>/dev/null)
read -r tb_s tb_rss <<< "$tb"
sel_rss=$( { /usr/bin/time -f "%M" "$rewind" query --dir "$store" --exact "$sel" > /dev/null; } 2>&1 | tail -1)

echo "### Queries"
echo
echo "Selective: \`$sel\` — $sel_n packets; identical to tcpdump's answer: $same; packet-file bytes read: $sel_read."
echo
echo "| query | rewind | peer: tcpdump -r trace -w | speed-up |"
echo "|---|---|---|---|"
echo "| \`$sel\`, page cache warm | $(awk -v s="$sel_warm" 'BEGIN{printf "%.1f ms", s*1000}') | $(awk -v s="$tcpd_warm" 'BEGIN{printf "%.0f ms", s*1000}') | $(awk -v a="$tcpd_warm" -v b="$sel_warm" 'BEGIN{printf "%.0f×", a/b}') |"
echo "| \`$sel\`, cold cache | $(awk -v s="$sel_cold" 'BEGIN{printf "%.1f ms", s*1000}') | $(awk -v s="$tcpd_cold" 'BEGIN{printf "%.0f ms", s*1000}') | $(awk -v a="$tcpd_cold" -v b="$sel_cold" 'BEGIN{printf "%.0f×", a/b}') |"
echo "| \`tcp\` → file, cold cache | $broad_s s, $(awk -v b="$broad_bytes" -v s="$broad_s" 'BEGIN{printf "%.0f", b/s/1e6}') MB/s of pcap out | $tb_s s (to /dev/null) | |"
echo "| \`tcp\` → /dev/null, warm | $broad2_s s, $(awk -v b="$broad_bytes" -v s="$broad2_s" 'BEGIN{printf "%.0f", b/s/1e6}') MB/s of pcap out | | |"
echo
echo "Peak RSS: import $((imp_rss / 1024)) MiB; selective query $((sel_rss / 1024)) MiB; broad query $((broad_rss / 1024)) MiB; tcpdump $((tb_rss / 1024)) MiB."
