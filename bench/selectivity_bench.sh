#!/usr/bin/env bash
# Query time against selectivity: for queries matching from ~0.001 % to most of the packets of a realistic trace,
# the rewind CLI over a store imported from the trace (`rewind query --dir STORE Q > /dev/null`) against tcpdump
# scanning the same packets (`tcpdump -r TRACE -w /dev/null Q`), warm (median of RUNS after one warm-up run of
# each) and cold (`sync; echo 3 > /proc/sys/vm/drop_caches` before each of RUNS runs), the two tools alternating.
# The queries are picked from the trace: addresses whose packet counts come closest to 0.001 %, 0.01 %, 0.1 % and
# 1 % of the packets, then `port 53`, `udp`, `tcp`, `tcp or udp`. Nothing goes over a network.
# Prints a Markdown section on stdout (progress on stderr).
#   usage: bench/selectivity_bench.sh [TRACE (default /tmp/rewind-bench/trace-512M.pcap, made if absent)]
# Environment: REWIND (binary, default /tmp/rewind-bench/rewind-new; a copy is measured), STORE (default
# /tmp/rewind-bench/store-512M; imported with that binary unless already so), RUNS (3), QUERIES (to replace the
# picked ones, separated by ';'), WAIT (minutes to wait for compilers to finish first, default 10).
# Needs root (drop_caches), tcpdump, capinfos, python3. Drops the page cache of the whole machine 2 x RUNS times per
# query.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/bench_store.sh
trace=${1:-/tmp/rewind-bench/trace-512M.pcap}
store=${STORE:-/tmp/rewind-bench/store-512M}
runs=${RUNS:-3}
log() { echo "selectivity_bench: $*" >&2; }
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
for t in tcpdump capinfos python3; do command -v "$t" >/dev/null || { echo "needs $t" >&2; exit 1; }; done
prepare_store "$trace" "${REWIND:-/tmp/rewind-bench/rewind-new}" "$store"
rw=$store.rewind
total=$(capinfos -c -M "$trace" | awk -F: '/Number of packets/ { gsub(/ /, "", $2); print $2 }')

# ---- the queries ------------------------------------------------------------------------------------------
queries=()
if [ -n "${QUERIES:-}" ]; then
  IFS=';' read -r -a queries <<< "$QUERIES"
else
  address_counts "$trace"
  for f in 0.00001 0.0001 0.001 0.01; do
    h=$(awk -v t="$(awk -v n="$total" -v f="$f" 'BEGIN { print n * f }')" '
          { d = $1 - t; if (d < 0) d = -d; if (best == "" || d < bd) { best = $2; bd = d } } END { print best }' "$addrs")
    queries+=("host $h")
  done
  queries+=("port 53" "udp" "tcp" "tcp or udp")
fi
log "counting the packets each query matches"
declare -A n_tcpdump n_rewind
for q in "${queries[@]}"; do
  n_tcpdump[$q]=$(tcpdump -nn -q -r "$trace" "$q" 2>/dev/null | wc -l)
  n_rewind[$q]=$("$rw" query --dir "$store" "$q" 2>/dev/null | tcpdump -nn -q -r - 2>/dev/null | wc -l)
done

for i in $(seq $(( ${WAIT:-10} * 6 ))); do
  pgrep -x cc1plus >/dev/null || break
  (( i % 6 == 1 )) && log "waiting for compilers to finish (load $(cut -d' ' -f1 /proc/loadavg))"
  sleep 10
done
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- timing -------------------------------------------------------------------------------------------------
now() { date +%s%N; }
run_rewind() { "$rw" query --dir "$store" "$1" > /dev/null 2>"$store.query.err"; }
run_tcpdump() { tcpdump -r "$trace" -w /dev/null "$1" 2>/dev/null; }
timed() {  # tool, query -> seconds
  local t0 t1; t0=$(now); "run_$1" "$2" || log "$1 '$2' exited with $?"; t1=$(now)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'
}
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }
declare -A res loadrow res_all
for q in "${queries[@]}"; do
  loadrow[$q]=$(cut -d' ' -f1 /proc/loadavg)
  log "'$q': warm"
  timed rewind "$q" > /dev/null; timed tcpdump "$q" > /dev/null
  wr=(); wt=()
  for r in $(seq "$runs"); do wr+=("$(timed rewind "$q")"); wt+=("$(timed tcpdump "$q")"); done
  log "'$q': cold"
  cr=(); ct=()
  for r in $(seq "$runs"); do drop; cr+=("$(timed rewind "$q")"); drop; ct+=("$(timed tcpdump "$q")"); done
  res[$q]="$(median "${wr[@]}") $(median "${wt[@]}") $(median "${cr[@]}") $(median "${ct[@]}")"
  log "'$q': warm rewind ${wr[*]} tcpdump ${wt[*]}; cold rewind ${cr[*]} tcpdump ${ct[*]}"
  res_all[$q]="warm rewind ${wr[*]} / tcpdump ${wt[*]}; cold rewind ${cr[*]} / tcpdump ${ct[*]}"
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- report -------------------------------------------------------------------------------------------------
echo "### Query time against selectivity, $(date -u +%Y-%m-%dT%H:%MZ) ($(nproc) cores)"
echo
echo "Command: \`bench/selectivity_bench.sh $trace\` (RUNS=$runs); binary: $(cat "$store.binary")."
echo "Load average at the start of the timings: $load_start; at the end: $load_end."
echo
echo "**Data**: \`$(basename "$trace")\` ($(( $(stat -c %s "$trace") / 1000000 )) MB, $total packets), imported with \`rewind import\` into"
echo "\`$store\` ($(du -sm "$store" | cut -f1) MB on disk, import $(cat "$store.import_s") s). **rewind**: \`rewind query --dir STORE Q > /dev/null\`;"
echo "**tcpdump**: \`tcpdump -r TRACE -w /dev/null Q\` (reads the whole trace). Times are wall-clock seconds around each"
echo "process. *Warm*: one run of each tool first, then the median of $runs runs, the tools alternating. *Cold*: the median"
echo "of $runs runs, each after \`sync; echo 3 > /proc/sys/vm/drop_caches\`, alternating. *Matched* = packets tcpdump prints"
echo "for Q over the trace / all packets; *rewind's answer* = packets in its answer (rewind's \`host\`/\`port\`/\`tcp\` also match"
echo "VLAN-tagged frames, as Stenographer does; tcpdump's do not)."
echo
echo "| query | matched (tcpdump) | rewind's answer | warm rewind s | warm tcpdump s | warm tcpdump / rewind | cold rewind s | cold tcpdump s | cold tcpdump / rewind | load (1 min) |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for q in "${queries[@]}"; do
  read -r wr wt cr ct <<< "${res[$q]}"
  python3 - "$q" "${n_tcpdump[$q]}" "$total" "${n_rewind[$q]}" "$wr" "$wt" "$cr" "$ct" "${loadrow[$q]}" <<'PY'
import sys
q, n, total, nr, wr, wt, cr, ct, load = sys.argv[1:]
n, total = int(n), int(total)
pct = 100.0 * n / total
frac = ('%.4f' % pct).rstrip('0').rstrip('.') if pct < 1 else '%.1f' % pct
ratio = lambda a, b: '%.1f x' % (float(b) / float(a)) if float(a) > 0 else '-'
print('| `%s` | %d (%s %%) | %s | %s | %s | %s | %s | %s | %s | %s |' % (q, n, frac, nr, wr, wt, ratio(wr, wt), cr, ct, ratio(cr, ct), load))
PY
done
echo
echo "Every run (s):"
echo
for q in "${queries[@]}"; do echo "- \`$q\`: ${res_all[$q]}"; done
