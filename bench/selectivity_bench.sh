#!/usr/bin/env bash
# Query time against selectivity: for queries matching from ~0.001 % to most of the packets of a realistic trace,
# the rewind CLI over a store imported from the trace (`rewind query --dir STORE Q > /dev/null`) against tcpdump
# scanning the same packets (`tcpdump -r TRACE -w /dev/null Q`), warm (median of RUNS after one warm-up run of
# each) and cold (`sync; echo 3 > /proc/sys/vm/drop_caches` before each of RUNS runs), the two tools alternating.
# The queries are picked from the trace: addresses whose packet counts come closest to 0.001 %, 0.01 %, 0.1 % and
# 1 % of the packets, then `port 53`, `udp`, `tcp`, `tcp or udp`.
# The peer Stenographer (Debian's package; STENO=0 leaves it out): the whole script runs in a private network
# namespace it creates; stenographer's server captures one end of a veth pair there while tcpreplay sends the
# trace into the other end (--pps REPLAY_PPS, default 50000), stenotype with `--fileage_sec=10 --no_watchdogs`
# (else its defaults); each query is then also POSTed to its /query over mutual TLS (its only interface), timed
# in the same alternation. Its answers are counted like rewind's: packets it lost in capture show there.
# Nothing goes beyond the namespace's loopback and veth pair.
# Prints a Markdown section on stdout (progress on stderr).
#   usage: bench/selectivity_bench.sh [TRACE (default /tmp/rewind-bench/trace-512M.pcap, made if absent)]
# Environment: REWIND (binary, default /tmp/rewind-bench/rewind-new; a copy is measured), STORE (default
# /tmp/rewind-bench/store-512M; imported with that binary unless already so), RUNS (3), QUERIES (to replace the
# picked ones, separated by ';'), WAIT (minutes to wait for compilers to finish first, default 10).
# Needs root (drop_caches), tcpdump, capinfos, python3; for the peer stenographer, tcpreplay, curl, setpriv, unshare.
# Drops the page cache of the whole machine 2 x RUNS (3 x RUNS with the peer) times per query.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/bench_store.sh
. bench/stenographer_peer.sh
steno=${STENO:-1}
if [ "$steno" = 1 ] && [ -z "${REWIND_IN_NETNS:-}" ]; then
  for t in stenographer stenokeys tcpreplay curl setpriv unshare; do
    command -v "$t" >/dev/null || { echo "selectivity_bench: needs $t for the peer (STENO=0 leaves it out)" >&2; exit 1; }
  done
  REWIND_IN_NETNS=1 exec unshare -n bash "$0" "$@"
fi
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

# ---- the peer: stenographer captures the trace replayed through a veth pair ------------------------------------
if [ "$steno" = 1 ]; then
  swork=${STENO_WORK:-/tmp/rewind-bench/selectivity-steno}
  replay_pps=${REPLAY_PPS:-50000}
  rm -rf "$swork/steno"
  mkdir -p "$swork"
  ip link set lo up
  ip link add v0 type veth peer name v1
  for i in v0 v1; do sysctl -qw net.ipv6.conf.$i.disable_ipv6=1; ip link set $i mtu 9500; ip link set $i up; done
  steno_configure "$swork" v1 9130 '["--fileage_sec=10", "--no_watchdogs"]'
  # Filler while stenotype starts and until its last file rotates (no query here matches it).
  trap 'steno_filler_stop; steno_stop' EXIT
  steno_filler_start v0 600
  log "starting stenographer (stenotype sets up its 2 GiB ring first)"
  steno_start
  steno_wait_for_packets
  log "replaying the trace into stenographer: tcpreplay --pps $replay_pps"
  tcpreplay -i v0 --pps "$replay_pps" "$trace" > "$swork/replay.log" 2>&1
  # Indexed when its answer to `tcp or udp` stops growing over 15 s (files rotate every 10 s while the filler runs).
  last=-1 n=0
  for i in $(seq 40); do
    sleep 15
    n=$(steno_query 'tcp or udp' "$swork/all.pcap" > /dev/null; tcpdump -nn -q -r "$swork/all.pcap" 2>/dev/null | wc -l)
    log "stenographer answers 'tcp or udp' with $n packets"
    [ "$n" -gt 0 ] && [ "$n" = "$last" ] && break
    last=$n
  done
  steno_filler_stop
  declare -A n_steno
  for q in "${queries[@]}"; do
    steno_query "$q" "$swork/answer.pcap" > /dev/null
    n_steno[$q]=$(tcpdump -nn -q -r "$swork/answer.pcap" 2>/dev/null | wc -l)
  done
  replay_sent=$(grep -o 'Actual: [0-9]* packets' "$swork/replay.log" | head -1)
  steno_drops=$(grep -io 'drop[^,]*' "$swork/steno.log" | tail -1 || true)
fi

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
run_steno() { local r; r=$(steno_query "$1" /dev/null); [ "${r%% *}" = 200 ]; }
timed() {  # tool, query -> seconds
  local t0 t1; t0=$(now); "run_$1" "$2" || log "$1 '$2' exited with $?"; t1=$(now)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'
}
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }
declare -A res loadrow res_all res_steno
for q in "${queries[@]}"; do
  loadrow[$q]=$(cut -d' ' -f1 /proc/loadavg)
  log "'$q': warm"
  timed rewind "$q" > /dev/null; timed tcpdump "$q" > /dev/null
  [ "$steno" = 1 ] && timed steno "$q" > /dev/null
  wr=(); wt=(); ws=()
  for r in $(seq "$runs"); do
    wr+=("$(timed rewind "$q")"); wt+=("$(timed tcpdump "$q")")
    [ "$steno" = 1 ] && ws+=("$(timed steno "$q")")
  done
  log "'$q': cold"
  cr=(); ct=(); cs=()
  for r in $(seq "$runs"); do
    drop; cr+=("$(timed rewind "$q")"); drop; ct+=("$(timed tcpdump "$q")")
    if [ "$steno" = 1 ]; then drop; cs+=("$(timed steno "$q")"); fi
  done
  res[$q]="$(median "${wr[@]}") $(median "${wt[@]}") $(median "${cr[@]}") $(median "${ct[@]}")"
  [ "$steno" = 1 ] && res_steno[$q]="$(median "${ws[@]}") $(median "${cs[@]}")"
  log "'$q': warm rewind ${wr[*]} tcpdump ${wt[*]} stenographer ${ws[*]:-}; cold rewind ${cr[*]} tcpdump ${ct[*]} stenographer ${cs[*]:-}"
  res_all[$q]="warm rewind ${wr[*]} / tcpdump ${wt[*]}${ws:+ / stenographer ${ws[*]}}; cold rewind ${cr[*]} / tcpdump ${ct[*]}${cs:+ / stenographer ${cs[*]}}"
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
if [ "$steno" = 1 ]; then
  echo
  echo "**Stenographer** ($(steno_version)): its server with stenotype flags \`--fileage_sec=10 --no_watchdogs\` (else"
  echo "Debian's defaults) captured the trace replayed by \`tcpreplay -i v0 --pps $replay_pps\` (${replay_sent:-?}) into a veth pair"
  echo "in this script's network namespace; each query \`curl --cert/--key/--cacert (stenokeys) --data-binary Q https://127.0.0.1:9130/query -o /dev/null\`"
  echo "(mutual TLS, its only interface), timed in the same alternation as the two above (cold: the page cache dropped before each)."
  echo "*Stenographer's answer* = packets in its answer (what it lost in capture shows here)."
  echo
  echo "| query | matched (tcpdump) | Stenographer's answer | warm Stenographer s | warm rewind s | warm Stenographer / rewind | cold Stenographer s | cold rewind s | cold Stenographer / rewind |"
  echo "|---|---|---|---|---|---|---|---|---|"
  for q in "${queries[@]}"; do
    read -r wr wt cr ct <<< "${res[$q]}"
    read -r ws cs <<< "${res_steno[$q]}"
    awk -v q="$q" -v n="${n_tcpdump[$q]}" -v ns="${n_steno[$q]}" -v ws="$ws" -v wr="$wr" -v cs="$cs" -v cr="$cr" 'BEGIN {
      printf "| `%s` | %d | %d | %s | %s | %.1f x | %s | %s | %.1f x |\n", q, n, ns, ws, wr, (wr > 0 ? ws / wr : 0), cs, cr, (cr > 0 ? cs / cr : 0) }'
  done
fi
echo
echo "Every run (s):"
echo
for q in "${queries[@]}"; do echo "- \`$q\`: ${res_all[$q]}"; done
