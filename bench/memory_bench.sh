#!/usr/bin/env bash
# Server memory under broad queries: `rewind serve` on its defaults over a store whose OVERLAP packet files all
# cover the same time span (one trace imported OVERLAP times: the case where a time-ordered answer merges every
# file at once), answering QUERIES broad queries sent at the same time (alternately `''` and `tcp`, every packet
# or most), SLOW of them read by clients limited to RATE, beside LOOKUPS small `host` queries. The server's VmRSS
# is sampled every 100 ms from /proc; reported: its peak (and VmHWM), the RSS after, how each query ended, and
# each answer's size checked against the CLI's for the same query. Each given binary is measured in turn, in a
# private network namespace (its own loopback).
# Prints a Markdown section on stdout (progress on stderr).
#   usage: bench/memory_bench.sh [[LABEL=]REWIND_BINARY ...]     (default: build/rewind)
# Environment: TRACE (default /tmp/rewind-bench/trace-16M.pcap, made with make-traffic.sh if absent), WORK
# (/tmp/rewind-bench/memory), OVERLAP (16), QUERIES (30), SLOW (10), RATE (64M, curl --limit-rate), LOOKUPS (32).
# Needs root, curl, tcpdump, capinfos, python3, unshare.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
log() { echo "memory_bench: $*" >&2; }
work=${WORK:-/tmp/rewind-bench/memory}
trace=${TRACE:-/tmp/rewind-bench/trace-16M.pcap}
overlap=${OVERLAP:-16}
nq=${QUERIES:-30}
slow=${SLOW:-10}
rate=${RATE:-64M}
nl=${LOOKUPS:-32}

if [ -z "${REWIND_IN_NETNS:-}" ]; then
  [ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
  for t in curl tcpdump capinfos python3 unshare; do command -v "$t" >/dev/null || { echo "needs $t" >&2; exit 1; }; done
  [ $# -gt 0 ] || set -- "$repo/build/rewind"
  mkdir -p "$work"
  if [ ! -f "$trace" ]; then
    log "making $trace"
    /work/shared/scripts/make-traffic.sh "$trace" "$(basename "$trace" .pcap | sed 's/^trace-//')" >&2
  fi
  # Private copies of the binaries (the originals may be rebuilt meanwhile).
  args=()
  for arg in "$@"; do
    if [[ "$arg" == *=* ]]; then label=${arg%%=*} path=${arg#*=}; else label=$(basename "$arg") path=$arg; fi
    [ -x "$path" ] || { echo "memory_bench: $path is not an executable" >&2; exit 1; }
    cp "$path" "$work/bin-$label"
    echo "$path, sha256 $(sha256sum "$path" | cut -c1-12), modified $(stat -c %y "$path" | cut -d. -f1)" > "$work/bin-$label.id"
    args+=("$label")
  done
  # The store: the trace imported OVERLAP times (made once, by the first binary).
  if [ ! -f "$work/store.params" ] || [ "$(cat "$work/store.params")" != "$trace $overlap" ]; then
    rm -rf "$work/store"
    log "importing $trace $overlap times into $work/store"
    for i in $(seq "$overlap"); do "$work/bin-${args[0]}" import -q --dir "$work/store" "$trace" >&2; done
    echo "$trace $overlap" > "$work/store.params"
  fi
  # Small queries: addresses seen in 2-30 packets of the trace.
  "$work/bin-${args[0]}" query --dir "$work/store" ip | tcpdump -nn -q -r - 2>/dev/null |
    awk '$2 == "IP" { a = $3; n = split(a, p, "."); if (n >= 4) print p[1] "." p[2] "." p[3] "." p[4] }' |
    sort | uniq -c | awk '$1 >= 2 * '"$overlap"' && $1 <= 30 * '"$overlap"' { print $2 }' | awk -v n="$nl" 'NR <= n' > "$work/hosts"
  # Expected answer sizes (bytes of pcap) from the CLI.
  for q in '' tcp; do "$work/bin-${args[0]}" query --dir "$work/store" "$q" | wc -c > "$work/expect-${q:-all}"; done
  while read -r h; do "$work/bin-${args[0]}" query --dir "$work/store" "host $h" | wc -c; done < "$work/hosts" > "$work/expect-hosts"
  REWIND_IN_NETNS=1 exec unshare -n bash "$0" "${args[@]}"
fi

# ---- inside the private network namespace ---------------------------------------------------------------
ip link set lo up
store=$work/store
mapfile -t hosts < "$work/hosts"
mapfile -t expect_hosts < "$work/expect-hosts"
declare -A report
for label in "$@"; do
  bin=$work/bin-$label
  rm -rf "$work/run"; mkdir -p "$work/run"
  "$bin" serve --dir "$store" --listen 127.0.0.1:9140 > "$work/run/serve.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do curl -s -o /dev/null http://127.0.0.1:9140/healthz && break; sleep 0.1; done
  url=http://127.0.0.1:9140/query
  rss_start=$(awk '$1 == "VmRSS:" { print $2 }' "/proc/$pid/status")
  # Sampler: VmRSS every 100 ms until told to stop.
  ( while [ ! -e "$work/run/stop" ]; do awk '$1 == "VmRSS:" { print $2 }' "/proc/$pid/status" 2>/dev/null || true; sleep 0.1; done ) \
    > "$work/run/rss" &
  sampler=$!
  load0=$(cut -d' ' -f1-3 /proc/loadavg)
  t0=$(date +%s.%N)
  cps=()
  for i in $(seq "$nq"); do
    if [ $((i % 2)) = 1 ]; then q=''; else q=tcp; fi
    lim=(); [ "$i" -le "$slow" ] && lim=(--limit-rate "$rate")
    ( curl -s --max-time 900 "${lim[@]}" -o "$work/run/ans.$i" -w '%{http_code} %{time_total}\n' --data-binary "$q" "$url" \
        || echo "000 0" ) > "$work/run/res.$i" &
    cps+=($!)
  done
  for i in "${!hosts[@]}"; do
    ( curl -s --max-time 900 -o "$work/run/host.$i" -w '%{http_code} %{time_total}\n' --data-binary "host ${hosts[$i]}" "$url" \
        || echo "000 0" ) > "$work/run/hres.$i" &
    cps+=($!)
  done
  wait "${cps[@]}"
  wall=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  touch "$work/run/stop"; wait "$sampler"
  hwm=$(awk '$1 == "VmHWM:" { print $2 }' "/proc/$pid/status")
  rss_end=$(awk '$1 == "VmRSS:" { print $2 }' "/proc/$pid/status")
  peak=$(sort -n "$work/run/rss" | tail -1)
  admitted=$(curl -s http://127.0.0.1:9140/stats | python3 -c '
import json, sys
a = json.load(sys.stdin)["server"].get("admission", {})
print(" / ".join("%s %s" % (k, a[k].get("admitted", "?")) for k in ("lookup", "scan") if k in a) or "-")' 2>/dev/null || echo -)
  kill "$pid"; wait "$pid" 2>/dev/null || true
  # Outcomes and sizes.
  ok=0 wrong=0 other=0 times=()
  for i in $(seq "$nq"); do
    read -r code t < "$work/run/res.$i"
    if [ $((i % 2)) = 1 ]; then want=$(cat "$work/expect-all"); else want=$(cat "$work/expect-tcp"); fi
    if [ "$code" = 200 ]; then
      ok=$((ok + 1)); times+=("$t")
      [ "$(stat -c %s "$work/run/ans.$i")" = "$want" ] || { wrong=$((wrong + 1)); log "$label: broad query $i: $(stat -c %s "$work/run/ans.$i") bytes, CLI $want"; }
    else
      other=$((other + 1)); log "$label: broad query $i: HTTP $code"
    fi
  done
  hok=0 hwrong=0 hother=0 htimes=()
  for i in "${!hosts[@]}"; do
    read -r code t < "$work/run/hres.$i"
    if [ "$code" = 200 ]; then
      hok=$((hok + 1)); htimes+=("$t")
      [ "$(stat -c %s "$work/run/host.$i")" = "${expect_hosts[$i]}" ] || hwrong=$((hwrong + 1))
    else
      hother=$((hother + 1))
    fi
  done
  med() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR) printf "%.2f", v[int((NR + 1) / 2)]; else print "-" }'; }
  mx() { printf '%s\n' "$@" | sort -g | tail -1; }
  report[$label]="| $label | $(( rss_start / 1024 )) | $(( peak / 1024 )) | $(( hwm / 1024 )) | $(( rss_end / 1024 )) | $ok/$nq ($wrong wrong, $other other) | $(med "${times[@]}") / $(mx "${times[@]}") | $hok/${#hosts[@]} ($hwrong wrong, $hother other) | $(med "${htimes[@]}") / $(mx "${htimes[@]}") | $admitted | $wall | $load0 |"
  log "$label: ${report[$label]}"
  rm -f "$work"/run/ans.* "$work"/run/host.*
done

echo "### Server memory under broad queries, $(date -u +%Y-%m-%dT%H:%MZ) ($(nproc) cores)"
echo
echo "Command: \`bench/memory_bench.sh $*\` (TRACE=$trace OVERLAP=$overlap QUERIES=$nq SLOW=$slow RATE=$rate LOOKUPS=$nl)."
for label in "$@"; do echo "Binary \`$label\`: $(cat "$work/bin-$label.id")."; done
echo
echo "**Store**: \`$(basename "$trace")\` ($(( $(stat -c %s "$trace") / 1000000 )) MB) imported $overlap times with \`rewind import\`: $overlap packet"
echo "files over the same time span, $(du -sm "$store" | cut -f1) MB. **Server**: \`rewind serve --dir STORE\` on its defaults, in a private network"
echo "namespace. **Load**: at the same moment, $nq broad queries (odd: \`''\`, $(( $(cat "$work/expect-all") / 1000000 )) MB of pcap; even: \`tcp\`,"
echo "$(( $(cat "$work/expect-tcp") / 1000000 )) MB), the first $slow of them read by \`curl --limit-rate $rate\`, the others as fast as curl reads, and ${#hosts[@]}"
echo "\`host A\` lookups (addresses in 2-30 packets of the trace). Every answer's size was compared with the CLI's."
echo "RSS: sampled every 100 ms from /proc/PID/status; peak of the samples, VmHWM at the end, VmRSS after all answers."
echo
echo "| binary | RSS at start MiB | peak RSS MiB | VmHWM MiB | RSS after MiB | broad answered | broad s median / max | lookups answered | lookup s median / max | admitted as lookup / scan | wall s | load |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
for label in "$@"; do echo "${report[$label]}"; done
