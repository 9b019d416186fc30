#!/usr/bin/env bash
# Capture benchmark: replays a trace at increasing rates over a veth pair inside a network namespace this
# script creates, and measures, for rewind, `tcpdump -w` and Debian's stenotype in the same run: packets
# stored vs sent, drops, and CPU time per million packets. Prints a Markdown report.
#   usage: bench/capture_bench.sh [TRACE_SIZE (default 256M)] [WORKDIR (default /tmp/rewind-bench)] [RATES...]
# RATES are tcpreplay packets/s, or "top" for --topspeed (default: 50000 100000 200000 400000 top), or "trafgen":
# instead of the trace, TRAFGEN_PACKETS (default 3000000) UDP frames of 64 bytes with random addresses and ports
# (every packet a new set of keys for the index) sent as fast as trafgen can, trafgen pinned to CPU 0 and the
# capturer to CPU 1: what one core of capture takes at the fastest this machine can send.
# TOOLS (environment) picks the capturers: rewind, rewind-base, rewind-zstd1, rewind-zstd3 (rewind with --compress),
# tcpdump, stenotype; default "rewind tcpdump stenotype". ROUNDS (default 1) repeats each rate that many
# times, the tools alternating, and adds a summary: medians and spread of CPU per million packets, in all and
# per thread (utime + stime of each thread from /proc/PID/task/*/stat, grouped by thread name).
# REWIND (environment): the binary to measure (default build/rewind); the tool rewind-base runs REWIND_BASE (a
# build to compare against, same options).
# Needs root, tcpreplay, tcpdump, stenographer (stenotype), python3.
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-256M}
work=${2:-/tmp/rewind-bench}
shift $(( $# >= 2 ? 2 : $# ))
rates=("$@")
[ ${#rates[@]} -gt 0 ] || rates=(50000 100000 200000 400000 top)
rewind=${REWIND:-$PWD/build/rewind}
[ -x "$rewind" ] || { echo "build rewind first" >&2; exit 1; }
mkdir -p "$work"
trace=$work/trace-$size.pcap
[ -f "$trace" ] || ../shared/scripts/make-traffic.sh "$trace" "$size" >&2
if [ -z "${REWIND_IN_NETNS:-}" ]; then
  REWIND_IN_NETNS=1 exec unshare -n bash "$0" "$size" "$work" "${rates[@]}"
fi
ip link add v0 type veth peer name v1
for i in v0 v1; do sysctl -qw net.ipv6.conf.$i.disable_ipv6=1; ip link set $i mtu 9500; ip link set $i up; done
sent_total=$(capinfos -c -M "$trace" | awk -F: '/Number of packets/ { gsub(/ /, "", $2); print $2 }')
hz=$(getconf CLK_TCK)
trafgen_packets=${TRAFGEN_PACKETS:-3000000}
# 60-byte frames (the Ethernet minimum; 64 on a wire with the FCS), random source host and
# port, destination network and port.
trafgen_conf='{ eth(da=02:00:00:00:00:02, sa=02:00:00:00:00:01), ipv4(sa=10.0.0.1, sa[3]=drnd(), da=10.1.0.1, da[2]=drnd(), ttl=64), udp(sp=drnd(), dp=drnd(1, 1024)), fill(0x41, 18) }'
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }   # utime + stime of the whole process
# "tid name ticks" for each live thread of a process (utime + stime; the name is /proc/.../comm).
thread_ticks() {
  local t st rest
  for t in /proc/"$1"/task/*; do
    st=$(cat "$t/stat" 2>/dev/null) || continue
    rest=${st#*) }
    set -- $rest
    echo "${t##*/} $(tr ' ' '_' < "$t/comm" 2>/dev/null || echo '?') $(( ${12} + ${13} ))"
  done
}
# Per-thread-name CPU seconds between two thread_ticks snapshots (files), as "name=s,name=s".
thread_cpu() {
  awk -v hz="$hz" 'NR == FNR { t0[$1] = $3; next }
    { d = $3 - ($1 in t0 ? t0[$1] : 0); n[$2] += d }
    END { sep = ""; for (k in n) { printf "%s%s=%.2f", sep, k, n[k] / hz; sep = "," } }' "$1" "$2"
}

# Counts packets in TPACKET_V3 block files (rewind's and stenotype's packet files share the layout).
count_blocks() {
  python3 - "$@" <<'PY'
import os, struct, sys
n = 0
for d in sys.argv[1:]:
    for root, _, files in os.walk(d):
        for f in files:
            p = os.path.join(root, f)
            if f == '.lock' or not os.path.isfile(p): continue  # stenotype's open file is a dot file
            with open(p, 'rb') as fh:
                while True:
                    b = fh.read(1 << 20)
                    if len(b) < 48: break
                    status, num = struct.unpack_from('<II', b, 8)
                    if num == 0: break
                    n += num
print(n)
PY
}

run_one() {  # tool rate -> prints "stored drops cpu_s achieved_pps"
  local tool=$1 rate=$2 d=$work/cap-$1 pid log=$work/cap-$1.log
  local pin=(); [ "$rate" = trafgen ] && pin=(taskset -c 1)
  rm -rf "$d"; mkdir -p "$d"
  case $tool in
    rewind|rewind-zstd1|rewind-zstd3|rewind-base)
      local z=(); [ "$tool" = rewind-zstd1 ] && z=(--compress zstd:1); [ "$tool" = rewind-zstd3 ] && z=(--compress zstd:3)
      local bin=$rewind; [ "$tool" = rewind-base ] && bin=${REWIND_BASE:?rewind-base needs REWIND_BASE}
      "${pin[@]}" "$bin" capture --iface v1 --dir "$d" --blocks 512 --fileage_sec 3600 -q "${z[@]}" 2>"$log" & pid=$!
      for _ in $(seq 100); do [ -f "$d/capture0.json" ] && break; sleep 0.1; done ;;
    tcpdump)
      "${pin[@]}" tcpdump -i v1 -n -s 0 -B 524288 -w "$d/out.pcap" 2>"$log" & pid=$!
      for _ in $(seq 100); do grep -q "listening" "$log" && break; sleep 0.1; done ;;
    stenotype)
      mkdir -p "$d/PKT0" "$d/IDX0"; chown -R nobody:nogroup "$d"
      "${pin[@]}" stenotype --iface v1 --dir "$d" --threads 1 --blocks 512 --fileage_sec 3600 --seccomp none --no_watchdogs -v 2>"$log" & pid=$!
      for _ in $(seq 300); do grep -q "starting to process packets\|Starting to process" "$log" && break; sleep 0.1; done ;;
  esac
  sleep 0.5
  local c0; c0=$(cpu_ticks $pid)
  thread_ticks $pid > "$work/threads0"
  local out achieved sent
  if [ "$rate" = trafgen ]; then
    # trafgen ends its report with "N packets outgoing" and "S sec, U usec on CPU0" (lines start with \r).
    out=$(taskset -c 0 trafgen -o v0 --cpus 1 -n "$trafgen_packets" -q "$trafgen_conf" 2>&1 | tr '\r' '\n')
    sent=$(echo "$out" | sed -n 's/^ *\([0-9][0-9]*\) packets outgoing.*/\1/p' | head -1)
    achieved=$(echo "$out" | awk -v n="${sent:-0}" '/ usec on CPU/ { t = $1 + $3 / 1e6; if (t > 0) printf "%.0f", n / t }')
  else
    local args=(--pps "$rate"); [ "$rate" = top ] && args=(--topspeed)
    out=$(tcpreplay -i v0 "${args[@]}" "$trace" 2>&1)
    achieved=$(echo "$out" | sed -n 's/.*Rated: [0-9.]* Bps, [0-9.]* Mbps, \([0-9.]*\) pps.*/\1/p' | head -1)
    sent=$(echo "$out" | sed -n 's/.*Successful packets: *\([0-9]*\).*/\1/p' | head -1)
  fi
  sleep 2.5   # rewind/stenotype hand over partly filled blocks after their block timeout
  local c1; c1=$(cpu_ticks $pid)
  thread_ticks $pid > "$work/threads1"
  local threads; threads=$(thread_cpu "$work/threads0" "$work/threads1")
  kill -INT $pid
  for _ in $(seq 50); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
  kill -9 $pid 2>/dev/null || true
  wait $pid 2>/dev/null || true
  local stored drops
  case $tool in
    rewind*)
      stored=$("$rewind" stats --dir "$d" --json | sed 's/.*"packets":\([0-9]*\).*/\1/')
      drops=$(python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(j["kernel_drops"] + j["write_drops"])' "$d/capture0.json") ;;
    tcpdump)
      stored=$(capinfos -c -M "$d/out.pcap" 2>/dev/null | awk -F: '/Number of packets/ { gsub(/ /, "", $2); print $2 }')
      drops=$(sed -n 's/^\([0-9]*\) packets dropped by kernel.*/\1/p' "$log") ;;
    stenotype)
      stored=$(count_blocks "$d/PKT0")
      drops=$(( ${sent:-$sent_total} - stored )) ;;
  esac
  echo "${stored:-0} ${drops:-?} $(awk -v t=$((c1 - c0)) -v hz="$hz" 'BEGIN{printf "%.2f", t/hz}') ${achieved:-?} ${sent:-?} ${threads:--}"
  rm -rf "$d"
}

echo "## Capture benchmark ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores)"
echo
echo "Trace: \`../shared/scripts/make-traffic.sh $trace $size\` — $sent_total packets, replayed with tcpreplay over a veth pair"
echo "in a private network namespace. Command: \`bench/capture_bench.sh $size $work ${rates[*]}\`."
echo "Ring/buffer 512 MiB for each tool. CPU = user+system time of the capturing process while the trace was"
echo "replayed (plus 2.5 s drain), per million packets stored."
echo
echo "\"sent\" is what tcpreplay reports as successfully sent (it cannot send a few hundred frames of the trace"
echo "that exceed the veth MTU or are malformed); \"drops\" is the tool's own count (rewind: kernel + write drops;"
echo "tcpdump: dropped by kernel; stenotype, which reports none: sent - stored)."
if [[ " ${rates[*]} " == *" trafgen "* ]]; then
  echo
  echo "Rate \"trafgen\": no trace; $trafgen_packets 60-byte UDP frames with random addresses and ports, sent by"
  echo "\`trafgen --cpus 1\` pinned to CPU 0 as fast as it can (achieved = its own count over its own time), the"
  echo "capturer pinned to CPU 1 with \`taskset\`."
fi
echo
echo "| tool | target rate | achieved pps (tcpreplay) | stored / sent | drops | CPU s | CPU s per Mpkt |"
echo "|---|---|---|---|---|---|---|"
rounds=${ROUNDS:-1}
: > "$work/capture-results.tsv"
for rate in "${rates[@]}"; do
  for round in $(seq "$rounds"); do
    for tool in ${TOOLS:-rewind tcpdump stenotype}; do
      [[ "$tool" == rewind* ]] || command -v "$tool" >/dev/null 2>&1 || continue
      read -r stored drops cpu achieved sent threads <<< "$(run_one "$tool" "$rate")"
      per=$(awk -v c="$cpu" -v s="$stored" 'BEGIN{ if (s > 0) printf "%.2f", c / s * 1e6; else print "-" }')
      echo "| $tool | $rate | $achieved | $stored / $sent | $drops | $cpu | $per |"
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$tool" "$rate" "$stored" "$sent" "$cpu" "$threads" "$(cut -d' ' -f1 /proc/loadavg)" \
        >> "$work/capture-results.tsv"
    done
  done
done
if [ "$rounds" -gt 1 ]; then
  echo
  echo "Summary of $rounds alternated rounds: CPU s per million packets stored, median (min-max), in all and per"
  echo "thread name (/proc/PID/task/*/stat; stenotype names none of its threads, so they sum under one name);"
  echo "load average (1 min) at the end of each run: median (min-max)."
  echo
  python3 - "$work/capture-results.tsv" <<'PY'
import collections, statistics, sys
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    tool, rate, stored, sent, cpu, threads, load = line.rstrip("\n").split("\t")
    rows[(rate, tool)].append((int(stored or 0), sent, float(cpu), threads, float(load)))
def spread(v):
    return f"{statistics.median(v):.2f} ({min(v):.2f}-{max(v):.2f})"
print("| rate | tool | runs | stored / sent (median) | CPU s per Mpkt | per thread, CPU s per Mpkt | load |")
print("|---|---|---|---|---|---|---|")
for (rate, tool), rs in rows.items():
    per = [c / s * 1e6 for s, _, c, _, _ in rs if s > 0]
    names = collections.defaultdict(list)
    for s, _, _, th, _ in rs:
        if s <= 0 or th == "-":
            continue
        for kv in th.split(","):
            k, v = kv.split("=")
            names[k].append(float(v) / s * 1e6)
    by = ", ".join(f"{k} {spread(v)}" for k, v in sorted(names.items(), key=lambda kv: -statistics.median(kv[1]))
                   if statistics.median(v) >= 0.005)
    stored = int(statistics.median([s for s, *_ in rs]))
    print(f"| {rate} | {tool} | {len(rs)} | {stored} / {rs[0][1]} | {spread(per) if per else '-'} | {by} | "
          f"{spread([r[4] for r in rs])} |")
PY
fi
