#!/usr/bin/env bash
# Scale benchmark: query time, server memory and open files against the number of packet files in a store.
# For each store size N it builds (once; cached) a synthetic store of N small packet files over 2 writers
# with rewind_make_store, then measures with each given rewind binary — alternating them run by run, so an
# old and a new binary see the same machine state:
#   - a 1-minute window query (`after T and before T+60s`, T inside every store) and the whole-store
#     `host 10.255.0.1` query (10 planted packets at every N), through the CLI (`rewind query --dir`) and
#     over HTTP (`rewind serve`, loopback, curl POST /query); warm: median of WARM_RUNS after one warm-up;
#     cold: median of COLD_RUNS, page cache dropped before each. Every answer's packet count is checked
#     against what the generator planted (the run fails loudly otherwise);
#   - each server's VmRSS, VmHWM and open fds after those queries, and the peak while CONCURRENT host
#     queries run at once;
#   - the peer: `tcpdump -r` with the host filter over one pcap holding the store's packets (exported
#     once per store with `rewind query --dir D ''`), the scan an analyst would otherwise do.
# Prints a Markdown report on stdout, progress on stderr.
#
#   usage: bench/scale_bench.sh [[LABEL=]REWIND_BINARY ...]    (default: $REWIND, else build/rewind)
#   e.g.   FILES="100 1000" bench/scale_bench.sh before=/tmp/rewind-bench/rewind-before after=build/rewind
#
# Environment (defaults):
#   FILES="100 1000 10000 100000"  store sizes (packet files)     WORK=/tmp/rewind-bench/scale  (stores: WORK/N)
#   WRITERS=2  PACKETS_PER_FILE=100  COMPRESS=zstd               SOURCE=WORK/trace-64M.pcap (made if missing)
#   WARM_RUNS=5  COLD_RUNS=3  PEER_RUNS=3  PEER_COLD_RUNS=1  CONCURRENT=8  PORT=9411 (binary k: PORT+k)
#   MAKE_STORE=build/rewind_make_store  VERIFY_MAX=10000 (`rewind verify` each freshly made store up to this size)
# Needs root (drops the page cache), curl, tcpdump, capinfos (wireshark-common); make-traffic.sh's tools
# if the source trace has to be made.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

files_list=${FILES:-100 1000 10000 100000}
work=${WORK:-/tmp/rewind-bench/scale}
writers=${WRITERS:-2}
ppf=${PACKETS_PER_FILE:-100}
compress=${COMPRESS:-zstd}
source_pcap=${SOURCE:-$work/trace-64M.pcap}
warm_runs=${WARM_RUNS:-5}
cold_runs=${COLD_RUNS:-3}
peer_runs=${PEER_RUNS:-3}
peer_cold_runs=${PEER_COLD_RUNS:-1}
concurrent=${CONCURRENT:-8}
port0=${PORT:-9411}
make_store=${MAKE_STORE:-$repo/build/rewind_make_store}
verify_max=${VERIFY_MAX:-10000}

# --- binaries under test: LABEL=PATH or PATH (label: file name) ---------------------------------------
labels=() bins=()
[ $# -gt 0 ] || set -- "${REWIND:-$repo/build/rewind}"
for arg in "$@"; do
  if [[ "$arg" == *=* ]]; then label=${arg%%=*} path=${arg#*=}; else label=$(basename "$arg") path=$arg; fi
  path=$(readlink -f "$path")
  [ -x "$path" ] || { echo "scale_bench: $path is not an executable" >&2; exit 1; }
  labels+=("$label") bins+=("$path")
done
[ -x "$make_store" ] || { echo "scale_bench: build rewind_make_store first (cmake --build build)" >&2; exit 1; }
for t in curl tcpdump capinfos; do command -v $t >/dev/null || { echo "scale_bench: needs $t" >&2; exit 1; }; done
[ "$(id -u)" = 0 ] || { echo "scale_bench: needs root to drop the page cache" >&2; exit 1; }

mkdir -p "$work"
if [ ! -f "$source_pcap" ]; then
  echo "scale_bench: making the source trace $source_pcap" >&2
  ../shared/scripts/make-traffic.sh "$source_pcap" 64M >&2
fi

log() { echo "scale_bench: $*" >&2; }
die() { echo "scale_bench: FAILED: $*" >&2; exit 1; }
drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }
load() { cut -d' ' -f1-3 /proc/loadavg; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ms_since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", (b - a) * 1000 }'; }
packets_in() { [ -s "$1" ] || { echo 0; return; }; capinfos -c -M "$1" 2>/dev/null | awk -F: '/Number of packets/ { gsub(/ /, "", $2); print $2 }'; }
mb() { awk -v b="$1" 'BEGIN { printf "%.0f", b / 1e6 }'; }
fmt_ms() { awk -v v="$1" 'BEGIN { if (v == "-") print "-"; else if (v >= 1000) printf "%.2f s", v / 1000; else printf "%.1f ms", v }'; }
status_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }   # pid, VmRSS|VmHWM -> kB
fds() { ls "/proc/$1/fd" | wc -l; }

servers=()   # pids of the servers this script started (only these are ever stopped)
stop_servers() {
  for pid in "${servers[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  servers=()
}
trap stop_servers EXIT

# One query, by binary k, via cli|http, into $2; checks the packet count; prints the milliseconds.
query_ms() {  # k via out query expected
  local k=$1 via=$2 out=$3 q=$4 expected=$5 t0 ms n
  t0=$EPOCHREALTIME
  if [ "$via" = cli ]; then
    "${bins[$k]}" query --dir "$store" "$q" > "$out" 2> "$out.err" || die "${labels[$k]} query '$q': $(tail -3 "$out.err")"
  else
    curl -sS --fail --data-binary "$q" -o "$out" "http://127.0.0.1:$((port0 + k))/query" 2> "$out.err" ||
      die "${labels[$k]} HTTP '$q': $(cat "$out.err")"
  fi
  ms=$(ms_since "$t0")
  n=$(packets_in "$out")
  [ "$n" = "$expected" ] || die "${labels[$k]} $via '$q' at N=$N answered $n packets, expected $expected"
  echo "$ms"
}

echo "## Scale benchmark ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo))"
echo
echo "Command: \`FILES=\"$files_list\" bench/scale_bench.sh $*\` (WRITERS=$writers PACKETS_PER_FILE=$ppf COMPRESS=$compress"\
     "WARM_RUNS=$warm_runs COLD_RUNS=$cold_runs CONCURRENT=$concurrent)."
echo "Source trace: \`$source_pcap\` ($(packets_in "$source_pcap") packets), cycled into the stores by \`rewind_make_store\`."
for k in "${!bins[@]}"; do
  echo "Binary \`${labels[$k]}\`: \`${bins[$k]}\` ($(stat -c %y "${bins[$k]}" | cut -d. -f1))."
done
echo

summary=$(mktemp)
for N in $files_list; do
  dir=$work/$N
  store=$dir/store
  manifest=$dir/manifest.txt
  mkdir -p "$dir"
  # --- the store (cached: rebuilt only if missing or made with other parameters) -------------------------
  want="files=$N writers=$writers packets_per_file=$ppf compress=$compress source=$source_pcap"
  if [ ! -f "$manifest" ] || [ "$(cat "$dir/params" 2>/dev/null)" != "$want" ]; then
    log "N=$N: building the store"
    rm -rf "$store" "$manifest" "$dir/all.pcap"
    "$make_store" --dir "$store" --files "$N" --writers "$writers" --packets_per_file "$ppf" \
      --compress "$compress" --source "$source_pcap" > "$manifest.tmp"
    # A fresh store must read back like a captured one: every block checksum and index table.
    if [ "$N" -le "$verify_max" ]; then
      "${bins[0]}" verify --dir "$store" > "$dir/verify.log" 2>&1 || die "N=$N: rewind verify: $(tail -3 "$dir/verify.log")"
    fi
    mv "$manifest.tmp" "$manifest"
    echo "$want" > "$dir/params"
  fi
  get() { awk -F= -v k="$1" '$1 == k { sub(/^[^=]*=/, ""); print }' "$manifest"; }
  host_q="host 10.255.0.1"
  host_n=$(get host_packets)
  window_q="after $(get window_start) and before $(get window_end)"
  window_n=$(get window_packets)
  [ "$host_n" -gt 0 ] && [ "$window_n" -gt 0 ] || die "N=$N: the store has no planted answer (see $manifest)"
  store_du=$(du -sb "$store" | cut -f1)
  # The peer's input: every packet of the store in one pcap, in time order.
  if [ ! -s "$dir/all.pcap" ]; then
    log "N=$N: exporting the store to one pcap for the tcpdump peer"
    "${bins[0]}" query --dir "$store" '' > "$dir/all.pcap.tmp"
    mv "$dir/all.pcap.tmp" "$dir/all.pcap"
  fi
  load_before=$(load)

  # --- servers ---------------------------------------------------------------------------------------------
  declare -a start_ms=()
  for k in "${!bins[@]}"; do
    t0=$EPOCHREALTIME
    "${bins[$k]}" serve --dir "$store" --listen "127.0.0.1:$((port0 + k))" > "$dir/serve-${labels[$k]}.log" 2>&1 &
    servers+=($!)
    pids[$k]=$!
    until curl -sf -o /dev/null "http://127.0.0.1:$((port0 + k))/healthz"; do
      kill -0 "${pids[$k]}" 2>/dev/null || die "${labels[$k]} serve exited: $(tail -3 "$dir/serve-${labels[$k]}.log")"
      sleep 0.05
    done
    start_ms[$k]=$(ms_since "$t0")
  done

  # --- queries: each (query, via) warm then cold, binaries alternating run by run ---------------------------
  declare -A result=()
  for qname in window host; do
    if [ $qname = window ]; then q=$window_q expected=$window_n; else q=$host_q expected=$host_n; fi
    for via in cli http; do
      declare -A warm=() cold=()
      for k in "${!bins[@]}"; do query_ms "$k" "$via" "$dir/out.pcap" "$q" "$expected" > /dev/null; done  # warm-up
      for ((r = 0; r < warm_runs; r++)); do
        for k in "${!bins[@]}"; do warm[$k]+=" $(query_ms "$k" "$via" "$dir/out.pcap" "$q" "$expected")"; done
      done
      for ((r = 0; r < cold_runs; r++)); do
        for k in "${!bins[@]}"; do drop; cold[$k]+=" $(query_ms "$k" "$via" "$dir/out.pcap" "$q" "$expected")"; done
      done
      for k in "${!bins[@]}"; do
        # shellcheck disable=SC2086
        result[$k,$qname,$via,warm]=$(median ${warm[$k]})
        # shellcheck disable=SC2086
        result[$k,$qname,$via,cold]=$(median ${cold[$k]:-})
        log "N=$N ${labels[$k]} $qname $via: warm${warm[$k]} ms; cold${cold[$k]:-} ms"
      done
      unset warm cold
    done
  done
  load_queries=$(load)

  # --- server memory and files, after the queries and during concurrent host queries -------------------------
  declare -A mem=()
  for k in "${!bins[@]}"; do
    pid=${pids[$k]}
    mem[$k,rss]=$(status_kb "$pid" VmRSS) mem[$k,hwm]=$(status_kb "$pid" VmHWM) mem[$k,fds]=$(fds "$pid")
    peak_fds=${mem[$k,fds]}
    t0=$EPOCHREALTIME
    cpids=()
    for ((c = 0; c < concurrent; c++)); do
      curl -sS --fail --data-binary "$host_q" -o "$dir/conc-$c.pcap" "http://127.0.0.1:$((port0 + k))/query" &
      cpids+=($!)
    done
    while :; do
      n=$(fds "$pid"); [ "$n" -gt "$peak_fds" ] && peak_fds=$n
      running=0
      for c in "${cpids[@]}"; do kill -0 "$c" 2>/dev/null && running=1; done
      [ $running = 1 ] || break
      sleep 0.02
    done
    for c in "${cpids[@]}"; do wait "$c" || die "${labels[$k]}: a concurrent host query failed"; done
    mem[$k,conc_ms]=$(ms_since "$t0")
    for ((c = 0; c < concurrent; c++)); do
      n=$(packets_in "$dir/conc-$c.pcap"); rm -f "$dir/conc-$c.pcap"
      [ "$n" = "$host_n" ] || die "${labels[$k]}: concurrent host query $c answered $n packets, expected $host_n"
    done
    mem[$k,peak_fds]=$peak_fds mem[$k,conc_hwm]=$(status_kb "$pid" VmHWM) mem[$k,conc_rss]=$(status_kb "$pid" VmRSS)
    log "N=$N ${labels[$k]} server: rss ${mem[$k,rss]} kB hwm ${mem[$k,hwm]} kB fds ${mem[$k,fds]}; $concurrent concurrent: ${mem[$k,conc_ms]} ms, peak fds $peak_fds, hwm ${mem[$k,conc_hwm]} kB"
  done
  stop_servers

  # --- the peer: tcpdump over one pcap of the same packets -----------------------------------------------------
  peer_warm="" peer_cold=""
  tcpdump -r "$dir/all.pcap" -w "$dir/out.pcap" "$host_q" 2>/dev/null   # warm-up
  for ((r = 0; r < peer_runs + peer_cold_runs; r++)); do
    [ $r -lt "$peer_runs" ] || drop
    t0=$EPOCHREALTIME
    tcpdump -r "$dir/all.pcap" -w "$dir/out.pcap" "$host_q" 2>/dev/null
    ms=$(ms_since "$t0")
    n=$(packets_in "$dir/out.pcap")
    [ "$n" = "$host_n" ] || die "tcpdump '$host_q' at N=$N answered $n packets, expected $host_n"
    if [ $r -lt "$peer_runs" ]; then peer_warm+=" $ms"; else peer_cold+=" $ms"; fi
  done
  # shellcheck disable=SC2086
  peer_warm=$(median $peer_warm)
  # shellcheck disable=SC2086
  peer_cold=$(median $peer_cold)
  log "N=$N tcpdump: warm $peer_warm ms, cold $peer_cold ms"
  rm -f "$dir/out.pcap" "$dir/out.pcap.err"

  # --- report for this N --------------------------------------------------------------------------------------------
  echo "### $N packet files"
  echo
  echo "Store \`$store\`: $(get files) files over $(get writers) writers, $(get packets) packets, $(get packet_file_bytes) bytes" \
       "of packet files, $(get index_bytes) bytes of index tables, $(mb "$store_du") MB on disk;" \
       "made in $(get seconds) s ($(get files_per_second) files/s). Span $(get first_packet) .. $(get last_file_end)."
  echo "Window query: \`$window_q\` — $window_n packets. Host query: \`$host_q\` — $host_n packets (both checked on every run)."
  echo "Load average: $load_before before, $load_queries after the queries."
  echo
  echo "| binary | query | CLI warm | CLI cold | HTTP warm | HTTP cold |"
  echo "|---|---|---|---|---|---|"
  for k in "${!bins[@]}"; do
    for qname in window host; do
      echo "| ${labels[$k]} | $qname | $(fmt_ms "${result[$k,$qname,cli,warm]}") | $(fmt_ms "${result[$k,$qname,cli,cold]}") |" \
           "$(fmt_ms "${result[$k,$qname,http,warm]}") | $(fmt_ms "${result[$k,$qname,http,cold]}") |"
    done
  done
  echo "| peer: \`tcpdump -r\` one pcap ($(mb "$(stat -c %s "$dir/all.pcap")") MB) | host | $(fmt_ms "$peer_warm") | $(fmt_ms "$peer_cold") | | |"
  echo
  echo "| server | start (to /healthz) | VmRSS after queries | VmHWM | open fds | $concurrent concurrent host queries: wall | peak fds | VmHWM after |"
  echo "|---|---|---|---|---|---|---|---|"
  for k in "${!bins[@]}"; do
    echo "| ${labels[$k]} | $(fmt_ms "${start_ms[$k]}") | $((mem[$k,rss] / 1024)) MiB | $((mem[$k,hwm] / 1024)) MiB | ${mem[$k,fds]} |" \
         "$(fmt_ms "${mem[$k,conc_ms]}") | ${mem[$k,peak_fds]} | $((mem[$k,conc_hwm] / 1024)) MiB |"
  done
  echo
  for k in "${!bins[@]}"; do
    echo "| $N | ${labels[$k]} | $(fmt_ms "${result[$k,window,cli,warm]}") | $(fmt_ms "${result[$k,window,cli,cold]}") |" \
         "$(fmt_ms "${result[$k,window,http,warm]}") | $(fmt_ms "${result[$k,window,http,cold]}") |" \
         "$(fmt_ms "${result[$k,host,cli,warm]}") | $(fmt_ms "${result[$k,host,cli,cold]}") |" \
         "$(fmt_ms "${result[$k,host,http,warm]}") | $(fmt_ms "${result[$k,host,http,cold]}") |" \
         "$((mem[$k,hwm] / 1024)) MiB | ${mem[$k,fds]} / ${mem[$k,peak_fds]} | $(fmt_ms "$peer_warm") |" >> "$summary"
  done
  unset result mem start_ms
done

echo "### Query time against the number of files"
echo
echo "Same answers at every N (window: the same minute; host: the same $host_n packets). Medians; fds: after the queries / peak during $concurrent concurrent host queries."
echo
echo "| files | binary | window CLI warm | window CLI cold | window HTTP warm | window HTTP cold | host CLI warm | host CLI cold | host HTTP warm | host HTTP cold | server VmHWM | server fds | peer tcpdump warm |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
cat "$summary"
rm -f "$summary"
