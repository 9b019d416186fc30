#!/usr/bin/env bash
# Broad answers over HTTP and HTTPS against the command line: for each query, `rewind query --dir` writing to
# /dev/null, the same query from `rewind serve` with curl over HTTP and over HTTPS (TLS 1.3, curl's default
# suite) into /dev/null, and `tcpdump -r TRACE -w /dev/null` scanning the trace the store was imported from,
# alternated RUNS times; medians, min and max of wall time, the server's CPU per answer (utime + stime of the
# whole process from /proc, all threads), curl's CPU, time to first byte, and a check that the three answers
# are byte for byte the same. Then 8 queries over one kept-alive connection. In a private network namespace.
# Prints a Markdown section on stdout (progress on stderr).
#   usage: bench/serving_bench.sh [REWIND_BINARY]      (default: build/rewind)
# Environment: TRACE (default /tmp/rewind-bench/trace-512M.pcap, made with make-traffic.sh if absent), WORK
# (/tmp/rewind-bench/serving), RUNS (9), QUERIES (newline-separated; default: '', tcp, udp, port 53).
# Needs root, curl, tcpdump, openssl, python3, unshare.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
log() { echo "serving_bench: $*" >&2; }
work=${WORK:-/tmp/rewind-bench/serving}
trace=${TRACE:-/tmp/rewind-bench/trace-512M.pcap}
runs=${RUNS:-9}
queries=${QUERIES:-$(printf '%s\n' '' tcp udp 'port 53')}

if [ -z "${REWIND_IN_NETNS:-}" ]; then
  [ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
  for t in curl tcpdump openssl python3 unshare; do command -v "$t" >/dev/null || { echo "needs $t" >&2; exit 1; }; done
  bin=${1:-$repo/build/rewind}
  mkdir -p "$work"
  cp "$bin" "$work/rewind"
  echo "$bin, sha256 $(sha256sum "$bin" | cut -c1-12), modified $(stat -c %y "$bin" | cut -d. -f1)" > "$work/rewind.id"
  if [ ! -f "$trace" ]; then
    log "making $trace"
    /work/shared/scripts/make-traffic.sh "$trace" "$(basename "$trace" .pcap | sed 's/^trace-//')" >&2
  fi
  if [ ! -f "$work/store.trace" ] || [ "$(cat "$work/store.trace")" != "$trace" ]; then
    rm -rf "$work/store"
    log "importing $trace"
    "$work/rewind" import -q --dir "$work/store" "$trace" >&2
    echo "$trace" > "$work/store.trace"
  fi
  [ -f "$work/certs/server.pem" ] || bash "$repo/scripts/make-certs.sh" "$work/certs" >/dev/null 2>&1
  REWIND_IN_NETNS=1 QUERIES="$queries" exec unshare -n bash "$0" "$@"
fi

ip link set lo up
store=$work/store
rw=$work/rewind
"$rw" serve --dir "$store" --listen 127.0.0.1:9123 2>"$work/http.log" &
http_pid=$!
"$rw" serve --dir "$store" --listen 127.0.0.1:9124 --tls_cert "$work/certs/server.pem" \
  --tls_key "$work/certs/server.key" 2>"$work/https.log" &
https_pid=$!
trap 'kill $http_pid $https_pid 2>/dev/null; wait 2>/dev/null' EXIT
for _ in $(seq 50); do
  grep -q "rewind serve: http" "$work/http.log" && grep -q "rewind serve: http" "$work/https.log" && break
  sleep 0.1
done
http=http://127.0.0.1:9123 https=https://localhost:9124
ca=(--cacert "$work/certs/ca.pem" --resolve localhost:9124:127.0.0.1)

proc_cpu() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }  # clock ticks, every thread, live or ended
tick=$(getconf CLK_TCK)
now() { date +%s%N; }
# Runs a command with its output to /dev/null; prints wall ms.
wall() { local s e; s=$(now); "$@" > /dev/null 2>&1; e=$(now); echo $(( (e - s) / 1000000 )); }
stats() { sort -n | awk '{ a[NR] = $1 } END { printf "%d (%d-%d)", a[int((NR + 1) / 2)], a[1], a[NR] }'; }

echo "## Serving broad answers: HTTP, HTTPS and the command line (issue 11, requirement 2), $(date -u +%Y-%m-%dT%H:%MZ)"
echo
echo "Command: \`bench/serving_bench.sh\` (RUNS=$runs). Binary: $(cat "$work/rewind.id")."
echo "Store: \`$trace\` ($(( $(stat -c %s "$trace") / 1000000 )) MB) imported once; load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)."
echo "Each row alternates the five ways $runs times; wall time in ms, median (min-max); CPU in ms per answer (median)."
echo
echo "| query | answer MB | CLI > /dev/null | CLI \\| cat | HTTP (curl) | HTTPS (curl) | tcpdump -r -w | HTTP/CLI | HTTPS/CLI | CPU: CLI, server HTTP, HTTPS | curl CPU HTTP / HTTPS | first byte HTTP |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
while IFS= read -r q; do
  label=${q:-(everything)}
  log "query '$label'"
  # Same answer three ways.
  a=$("$rw" query --dir "$store" "$q" | sha256sum | cut -c1-16)
  b=$(curl -s --data-binary "$q" "$http/query" | sha256sum | cut -c1-16)
  c=$(curl -s "${ca[@]}" --data-binary "$q" "$https/query" | sha256sum | cut -c1-16)
  size=$("$rw" query --dir "$store" "$q" | wc -c)
  [ "$a" = "$b" ] && [ "$a" = "$c" ] || { echo "answers differ for '$q': $a $b $c" >&2; exit 1; }
  : > "$work/t.cli"; : > "$work/t.clicat"; : > "$work/c.cli"; : > "$work/t.http"; : > "$work/t.https"; : > "$work/t.tcpdump"
  : > "$work/c.http"; : > "$work/c.https"; : > "$work/cc.http"; : > "$work/cc.https"; : > "$work/ttfb"
  for _ in $(seq "$runs"); do
    /usr/bin/time -f "%U %S" -o "$work/cli.cpu" "$rw" query --dir "$store" "$q" > /dev/null  # warms the cache too
    wall "$rw" query --dir "$store" "$q" >> "$work/t.cli"
    awk '{ printf "%d\n", ($1 + $2) * 1000 }' "$work/cli.cpu" >> "$work/c.cli"
    s=$(now); "$rw" query --dir "$store" "$q" | cat > /dev/null; e=$(now)
    echo $(( (e - s) / 1000000 )) >> "$work/t.clicat"
    before=$(proc_cpu $http_pid)
    s=$(now)
    /usr/bin/time -f "%U %S" -o "$work/curl.cpu" curl -s -o /dev/null -w '%{time_starttransfer}\n' \
      --data-binary "$q" "$http/query" >> "$work/ttfb"
    e=$(now)
    echo $(( (e - s) / 1000000 )) >> "$work/t.http"
    echo $(( ($(proc_cpu $http_pid) - before) * 1000 / tick )) >> "$work/c.http"
    awk '{ printf "%d\n", ($1 + $2) * 1000 }' "$work/curl.cpu" >> "$work/cc.http"
    before=$(proc_cpu $https_pid)
    s=$(now)
    /usr/bin/time -f "%U %S" -o "$work/curl.cpu" curl -s -o /dev/null "${ca[@]}" --data-binary "$q" "$https/query"
    e=$(now)
    echo $(( (e - s) / 1000000 )) >> "$work/t.https"
    echo $(( ($(proc_cpu $https_pid) - before) * 1000 / tick )) >> "$work/c.https"
    awk '{ printf "%d\n", ($1 + $2) * 1000 }' "$work/curl.cpu" >> "$work/cc.https"
    wall tcpdump -r "$trace" -w /dev/null "$q" >> "$work/t.tcpdump"
  done
  med() { sort -n "$1" | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
  cli=$(med "$work/t.cli") h=$(med "$work/t.http") hs=$(med "$work/t.https")
  ttfb=$(sort -n "$work/ttfb" | awk '{ a[NR] = $1 } END { printf "%.0f", a[int((NR + 1) / 2)] * 1000 }')
  printf '| `%s` | %.0f | %s | %s | %s | %s | %s | %.2f | %.2f | %s, %s, %s | %s / %s | %s ms |\n' "$label" \
    "$(echo "$size / 1000000" | bc -l)" "$(stats < "$work/t.cli")" "$(stats < "$work/t.clicat")" "$(stats < "$work/t.http")" \
    "$(stats < "$work/t.https")" "$(stats < "$work/t.tcpdump")" "$(echo "$h / $cli" | bc -l)" \
    "$(echo "$hs / $cli" | bc -l)" "$(med "$work/c.cli")" "$(med "$work/c.http")" "$(med "$work/c.https")" "$(med "$work/cc.http")" \
    "$(med "$work/cc.https")" "$ttfb"
done <<< "$queries"
echo
# Keep-alive: 8 queries in one curl process share one connection.
urls=(--data-binary 'host 10.255.255.254' "$http/query" -o /dev/null)
for _ in $(seq 7); do urls+=(--next --data-binary 'host 10.255.255.254' "$http/query" -o /dev/null); done
reused=$(curl -sv "${urls[@]}" 2>&1 | grep -c "Re-using existing connection" || true)
echo "Keep-alive: 8 queries from one curl process, connections re-used: $reused of 7."
echo
echo "Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)."
