#!/usr/bin/env bash
# Query server under concurrency: `rewind serve --dir STORE` on its defaults (lookups and scans admitted in
# separate pools, see `rewind serve --help`) over a store
# imported from a realistic trace, answering (a) CLIENTS concurrent clients each sending PER_CLIENT small queries
# (`host A` for addresses seen in few packets, varied), (b) the same clients while SCANS broad scans (`tcp` over the
# whole store, output discarded) run back to back. Reports per phase the answers (HTTP 200), refusals (429) and
# failures, the small queries' latency (curl's time_total) and the scans' times, and checks every answered small
# query's packet count against the CLI's (`rewind query --dir STORE Q | tcpdump -r - | wc -l`): a difference is an
# error (exit status 1). Server and clients run in a private network namespace (its own loopback).
# Prints a Markdown section on stdout (progress on stderr).
#   usage: bench/concurrency_bench.sh [TRACE (default /tmp/rewind-bench/trace-512M.pcap, made if absent)]
# Environment: REWIND (binary, default /tmp/rewind-bench/rewind-new; a copy is measured), STORE (default
# /tmp/rewind-bench/store-512M; imported with that binary unless already so), WORK (default
# /tmp/rewind-bench/concurrency), CLIENTS (32), PER_CLIENT (10), SCANS (4), SCAN_QUERY (tcp), HOSTS (distinct
# small queries, 40), WAIT (minutes to wait for compilers to finish first, default 10).
# Needs root, tcpdump, curl, python3, unshare.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/bench_store.sh
trace=${1:-/tmp/rewind-bench/trace-512M.pcap}
store=${STORE:-/tmp/rewind-bench/store-512M}
work=${WORK:-/tmp/rewind-bench/concurrency}
clients=${CLIENTS:-32}
per=${PER_CLIENT:-10}
scans=${SCANS:-4}
scanq=${SCAN_QUERY:-tcp}
nhosts=${HOSTS:-40}
log() { echo "concurrency_bench: $*" >&2; }

if [ -z "${REWIND_IN_NETNS:-}" ]; then
  [ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
  for t in tcpdump curl python3 unshare; do command -v "$t" >/dev/null || { echo "needs $t" >&2; exit 1; }; done
  prepare_store "$trace" "${REWIND:-/tmp/rewind-bench/rewind-new}" "$store"
  rm -rf "$work"; mkdir -p "$work"
  # Small queries: addresses in 2-30 packets of the trace (one tcpdump pass), spread over that range; the expected
  # answer of each is the CLI's packet count.
  log "picking $nhosts addresses seen in few packets"
  address_counts "$trace"
  awk '$1 >= 2 && $1 <= 30' "$addrs" > "$work/rare"
  total=$(wc -l < "$work/rare")
  [ "$total" -ge "$nhosts" ] || { log "only $total rare addresses"; nhosts=$total; }
  awk -v n="$nhosts" -v t="$total" 'BEGIN { srand(1) } { a[NR] = $2 } END { for (i = 0; i < n; i++) print a[int(i * t / n) + 1] }' \
    "$work/rare" > "$work/hosts"
  while read -r h; do
    echo "$h $("$store.rewind" query --dir "$store" "host $h" 2>/dev/null | tcpdump -r - 2>/dev/null | wc -l)"
  done < "$work/hosts" > "$work/expected"
  for i in $(seq $(( ${WAIT:-10} * 6 ))); do
    pgrep -x cc1plus >/dev/null || break
    (( i % 6 == 1 )) && log "waiting for compilers to finish (load $(cut -d' ' -f1 /proc/loadavg))"
    sleep 10
  done
  REWIND_IN_NETNS=1 exec unshare -n bash "$0" "$trace"
fi

# ---- inside the private network namespace ---------------------------------------------------------------
rw=$store.rewind
ip link set lo up
"$rw" serve --dir "$store" > "$work/serve.log" 2>&1 &
serve_pid=$!
trap 'kill $serve_pid 2>/dev/null || true' EXIT
port=
for _ in $(seq 100); do
  port=$(sed -n 's|.*http://127.0.0.1:\([0-9]*\).*|\1|p' "$work/serve.log" | head -1); [ -n "$port" ] && break; sleep 0.1
done
[ -n "$port" ] || { log "rewind serve did not start"; cat "$work/serve.log" >&2; exit 1; }
url=http://127.0.0.1:$port/query
mapfile -t hosts < <(cut -d' ' -f1 "$work/expected")
declare -A expect
while read -r h n; do expect[$h]=$n; done < "$work/expected"

# Warm the page cache with one scan (and time it alone).
log "warm-up: one '$scanq' scan"
solo=$(curl -s -o /dev/null -w '%{http_code} %{time_total} %{size_download}' --data-binary "$scanq" "$url")
solo2=$(curl -s -o /dev/null -w '%{http_code} %{time_total} %{size_download}' --data-binary "$scanq" "$url")

client() {  # phase, client number: PER_CLIENT small queries one after another, a curl each
  local phase=$1 c=$2 r h
  for r in $(seq "$per"); do
    h=${hosts[$(( (c * per + r) % ${#hosts[@]} ))]}
    printf '%s %s %s ' "$c" "$r" "$h"
    curl -s --max-time 300 -o "$work/ans/$phase-$c-$r" -w '%{http_code} %{time_total}\n' --data-binary "host $h" "$url" ||
      echo "000 0"
  done > "$work/res/$phase-$c"
}
scanner() {  # phase, scanner number: scans back to back until the clients are done
  local phase=$1 s=$2
  while [ ! -e "$work/stop" ]; do
    out=$(curl -s --max-time 600 -o /dev/null -w '%{http_code} %{time_total} %{size_download}' --data-binary "$scanq" "$url" ||
          echo "000 0 0")
    echo "$out" >> "$work/res/scan-$phase-$s"
    case $out in 200*) ;; *) sleep 0.2 ;; esac
  done
}
declare -A wall load_at
run_phase() {  # phase, number of clients, number of scans
  local phase=$1 nc=$2 ns=$3 i sp=() cp=() t0 t1
  mkdir -p "$work/ans" "$work/res"; rm -f "$work/stop"
  load_at[$phase]=$(cut -d' ' -f1-3 /proc/loadavg)
  for i in $(seq "$ns"); do scanner "$phase" "$i" & sp+=($!); done
  [ "$ns" = 0 ] || sleep 0.5
  log "phase $phase: $nc clients x $per small queries, $ns concurrent '$scanq' scans"
  t0=$(date +%s.%N)
  for i in $(seq "$nc"); do client "$phase" "$i" & cp+=($!); done
  wait "${cp[@]}"
  t1=$(date +%s.%N)
  touch "$work/stop"
  [ "$ns" = 0 ] || wait "${sp[@]}"
  wall[$phase]=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
}
run_phase 1 1 0
run_phase a "$clients" 0
run_phase b "$clients" "$scans"
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- check the answers against the CLI's counts -------------------------------------------------------------
log "checking every answered small query against the CLI's count"
bad=0
declare -A res
for phase in 1 a b; do
  ok=0 refused=0 failed=0 wrong=0 times=()
  while read -r c r h code t; do
    case $code in
      200) ok=$((ok + 1)); times+=("$t")
           n=$(tcpdump -r "$work/ans/$phase-$c-$r" 2>/dev/null | wc -l)
           if [ "$n" != "${expect[$h]}" ]; then
             wrong=$((wrong + 1)); bad=$((bad + 1))
             log "ERROR: phase $phase client $c query $r 'host $h': $n packets, the CLI gives ${expect[$h]}"
           fi ;;
      429) refused=$((refused + 1)) ;;
      *) failed=$((failed + 1)); log "phase $phase client $c query $r 'host $h': HTTP $code" ;;
    esac
  done < <(cat "$work/res/$phase"-*)
  lat=$(printf '%s\n' "${times[@]}" | python3 -c '
import sys
v = sorted(float(x) for x in sys.stdin if x.strip())
q = lambda p: "%.1f" % (v[min(len(v) - 1, int(p * len(v)))] * 1000) if v else "-"
print(q(0.5), q(0.95), q(1.0))')
  res[$phase]="$ok $refused $failed $wrong $lat"
done
scanstat() {  # phase -> "completed refused failed median_s max_s bytes"
  cat "$work/res/scan-$1"-* 2>/dev/null | python3 -c '
import statistics, sys
rows = [l.split() for l in sys.stdin if l.strip()]
ok = [float(r[1]) for r in rows if r[0] == "200"]
print(len(ok), sum(1 for r in rows if r[0] == "429"), sum(1 for r in rows if r[0] not in ("200", "429")),
      "%.2f" % statistics.median(ok) if ok else "-", "%.2f" % max(ok) if ok else "-",
      next((r[2] for r in rows if r[0] == "200"), "-"))'
}
sb=$(scanstat b)
rm -rf "$work/ans"

# ---- report -------------------------------------------------------------------------------------------------
packets=$("$rw" stats --dir "$store" --json 2>/dev/null | python3 -c 'import json, sys; print(json.load(sys.stdin).get("packets", "?"))' || echo "?")
echo "### Query server under concurrency, $(date -u +%Y-%m-%dT%H:%MZ) ($(nproc) cores)"
echo
echo "Command: \`bench/concurrency_bench.sh $trace\` (CLIENTS=$clients PER_CLIENT=$per SCANS=$scans SCAN_QUERY='$scanq' HOSTS=${#hosts[@]});"
echo "binary: $(cat "$store.binary"). Load average when phase 1 / a / b started: ${load_at[1]} / ${load_at[a]} / ${load_at[b]}; at the"
echo "end: $load_end."
echo
echo "**Store**: \`rewind import --dir $store $(basename "$trace")\` ($(( $(stat -c %s "$trace") / 1000000 )) MB, $packets packets; import $(cat "$store.import_s") s)."
echo "**Server**: \`rewind serve --dir $store\` with default flags (lookups and scans admitted separately), in a private network namespace."
echo "**Small queries**: \`host A\` for ${#hosts[@]} addresses seen in 2-30 packets of the trace (the CLI answers"
echo "$(cut -d' ' -f2 "$work/expected" | sort -n | sed -n '1p') to $(cut -d' ' -f2 "$work/expected" | sort -n | tail -1) packets), query r of client c asking for address (c x $per + r) mod ${#hosts[@]};"
echo "each a \`curl -s --data-binary 'host A' URL -w '%{http_code} %{time_total}'\` (a new process and connection), a"
echo "client's $per one after another, the clients at the same time. **Scans**: \`curl --data-binary '$scanq' URL -o /dev/null\`,"
echo "each of $scans scanners starting its next scan when one ends (after 0.2 s when refused), from 0.5 s before the clients"
echo "start until they are done. Alone, after one warm-up scan, a scan takes $(printf %.2f "$(cut -d' ' -f2 <<< "$solo2")") s (HTTP $(cut -d' ' -f1 <<< "$solo2"), $(cut -d' ' -f3 <<< "$solo2") bytes)."
echo "Every answered small query was counted with \`tcpdump -r ANSWER | wc -l\` and compared with the CLI's count."
echo
echo "| phase | small queries | answered (200) | refused (429) | failed | wrong count | p50 ms | p95 ms | max ms | wall s |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for phase in 1 a b; do
  read -r ok refused failed wrong p50 p95 pmax <<< "${res[$phase]}"
  case $phase in
    1) d="1 client x $per (baseline)"; nq=$per ;;
    a) d="(a) $clients clients x $per"; nq=$((clients * per)) ;;
    b) d="(b) $clients clients x $per, $scans scans running"; nq=$((clients * per)) ;;
  esac
  echo "| $d | $nq | $ok | $refused | $failed | $wrong | $p50 | $p95 | $pmax | ${wall[$phase]} |"
done
echo
read -r sok sref sfail smed smax sbytes <<< "$sb"
echo "| scans during (b) | completed (200) | refused (429) | failed | median s | max s | bytes each |"
echo "|---|---|---|---|---|---|---|"
echo "| $scans scanners, \`$scanq\` | $sok | $sref | $sfail | $smed | $smax | $sbytes |"
echo
if [ "$bad" != 0 ]; then
  echo "**ERROR: $bad answered small queries had a packet count different from the CLI's** (see the log)."
  log "ERROR: $bad answers differ from the CLI's counts"
  exit 1
fi
echo "All answered small queries hold exactly the CLI's packet count."
