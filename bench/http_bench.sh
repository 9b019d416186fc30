#!/usr/bin/env bash
# HTTP query server benchmark: time to first byte, first packet and total time of a selective and a broad query
# over HTTP (plain and mutual TLS) and through the local CLI, and requests/s of a small query with 1, 8 and 32
# concurrent clients, for rewind and, in the same run on the same packets, Debian's stenographer server.
# stenographer only serves what its own stenotype wrote, so both capture the same replayed trace at the same
# time on one veth pair inside a private network namespace this script creates; all queries then go over
# loopback inside that namespace. Prints a Markdown section on stdout (progress on stderr).
#   usage: bench/http_bench.sh [TRACE (default /tmp/rewind-bench/trace-2G.pcap)]
# Environment: WORK (default /tmp/rewind-bench/http), PPS (replay rate, default 100000), RUNS (warm runs of the
# selective query, default 10), REQUESTS (requests per load test, default 640).
# Needs root, build/rewind, stenographer, tcpreplay, tcpdump, wireshark-common (capinfos), curl, jq, python3.
# Waits for other benchmarks and builds before it starts and between measurements; about 15 min with the 2 GB
# trace on 2 cores (stenographer's broad answers take most of it). Leaves its stores and logs in WORK.
set -euo pipefail
cd "$(dirname "$0")/.."
trace=${1:-/tmp/rewind-bench/trace-2G.pcap}
work=${WORK:-/tmp/rewind-bench/http}
pps=${PPS:-100000}
runs=${RUNS:-10}
requests=${REQUESTS:-640}
log() { echo "http_bench: $*" >&2; }

if [ -z "${REWIND_IN_NETNS:-}" ]; then
  [ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
  for t in stenographer stenotype stenokeys tcpreplay tcpdump capinfos curl jq python3 setpriv unshare; do
    command -v "$t" >/dev/null || { echo "needs $t" >&2; exit 1; }
  done
  [ -x build/rewind ] || { echo "build rewind first (cmake --build build --target rewind)" >&2; exit 1; }
  if [ ! -f "$trace" ]; then
    [ $# -eq 0 ] || { echo "no trace $trace" >&2; exit 1; }
    trace=/tmp/rewind-bench/trace-512M.pcap
    [ -f "$trace" ] || { mkdir -p /tmp/rewind-bench; ../shared/scripts/make-traffic.sh "$trace" 512M >&2; }
  fi
  trace=$(readlink -f "$trace")
  rm -rf "$work/rstore" "$work/steno" "$work/out" "$work/load" "$work/busy.log"
  mkdir -p "$work"
  # A private copy of the binary: other people may rebuild build/ while this runs.
  cp build/rewind "$work/rewind"
  git rev-parse --short HEAD > "$work/rev" 2>/dev/null || echo "?" > "$work/rev"
  # stenographer's configuration (its clients read Host, Port and CertPath from it too) and its certificates,
  # made by Debian's stenokeys: a CA, a server and a client certificate. rewind's TLS server uses the same ones.
  cat > "$work/steno.conf" <<EOF
{ "Threads": [ { "PacketsDirectory": "$work/steno/pkt", "IndexDirectory": "$work/steno/idx", "DiskFreePercentage": 1 } ],
  "StenotypePath": "/usr/sbin/stenotype", "Interface": "v1", "Port": 9124, "Host": "127.0.0.1",
  "Flags": ["--blocks=512", "--fileage_sec=10", "--seccomp=none", "--no_watchdogs", "-v"],
  "CertPath": "$work/certs" }
EOF
  [ -f "$work/certs/ca_cert.pem" ] || STENOGRAPHER_CONFIG=$work/steno.conf stenokeys stenographer stenographer >&2
  # Other benchmarks share this 2-core machine: measure alone.
  waited=0
  while pgrep -f 'store_bench.sh|capture_bench.sh' >/dev/null; do
    (( waited % 60 == 0 )) && log "waiting for another benchmark to finish"
    sleep 10; waited=$((waited + 10))
    (( waited < 10800 )) || { log "still busy after 3 h; measuring anyway"; break; }
  done
  # ... and builds: wait (at most 20 min) for the 1-minute load average to fall below 1.
  for i in $(seq 120); do
    awk '{ exit !($1 < 1.0) }' /proc/loadavg && break
    (( i % 6 == 1 )) && log "waiting for the load average ($(cut -d' ' -f1 /proc/loadavg)) to fall below 1"
    sleep 10
  done
  REWIND_IN_NETNS=1 exec unshare -n bash "$0" "$trace"
fi

# ---- inside the private network namespace ---------------------------------------------------------------
rw=$work/rewind
out=$work/out
mkdir -p "$out"
pids=()
steno_pid=
cleanup() {
  local p st
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ -n "$steno_pid" ]; then
    st=$(pgrep -P "$steno_pid" -x stenotype || true)
    kill -INT "$steno_pid" 2>/dev/null || true
    sleep 2
    kill -9 "$steno_pid" $st 2>/dev/null || true
  fi
  # stenographer's own temporary directory (symbolic links to its packet and index folders)
  local tmp; tmp=$(sed -n 's/.*"--dir=\(\/tmp\/stenographer[0-9]*\)".*/\1/p' "$work/steno.log" 2>/dev/null | head -1)
  [ -n "$tmp" ] && rm -rf "$tmp"
  return 0
}
trap cleanup EXIT
ip link set lo up
ip link add v0 type veth peer name v1
for i in v0 v1; do sysctl -qw net.ipv6.conf.$i.disable_ipv6=1; ip link set $i mtu 9500; ip link set $i up; done
loadavg=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- capture the trace with both -------------------------------------------------------------------------
mkdir -p "$work/steno/pkt" "$work/steno/idx"
chown -R stenographer:stenographer "$work/steno"
# As Debian's unit runs it: as the stenographer user; it starts stenotype (file capabilities) itself.
setpriv --reuid=stenographer --regid=stenographer --init-groups \
  stenographer -config "$work/steno.conf" -syslog=false -v 1 > "$work/steno.log" 2>&1 &
steno_pid=$!
for _ in $(seq 600); do grep -q "starting to process packets" "$work/steno.log" && break; sleep 0.1; done
grep -q "starting to process packets" "$work/steno.log" || { log "stenotype did not start:"; tail -20 "$work/steno.log" >&2; exit 1; }
"$rw" capture --iface v1 --dir "$work/rstore" --blocks 512 --fileage_sec 10 -q 2> "$work/capture.log" &
cap_pid=$!
for _ in $(seq 100); do [ -f "$work/rstore/capture0.json" ] && break; sleep 0.1; done
sleep 1
log "replaying $trace at $pps packets/s"
tcpreplay -i v0 --pps "$pps" "$trace" > "$work/replay.log" 2>&1 || log "tcpreplay exited with $?"
t_end_us=$(date +%s%6N)
sent=$(sed -n 's/.*Successful packets: *\([0-9]*\).*/\1/p' "$work/replay.log")
failed=$(sed -n 's/.*Failed packets: *\([0-9]*\).*/\1/p' "$work/replay.log")
replay_s=$(sed -n 's/.*sent in \([0-9.]*\) seconds.*/\1/p' "$work/replay.log" | head -1)
sleep 3   # rewind hands over partly filled blocks after 1 s
kill -INT $cap_pid
for _ in $(seq 600); do kill -0 $cap_pid 2>/dev/null || break; sleep 0.1; done
wait $cap_pid || true
# stenotype closes a file 10 s after opening it; the server picks up closed files on its next scan. Wait until it
# has loaded a file opened after the replay ended: every earlier file is then loaded too.
log "waiting for stenographer to load its last packet file"
steno_loaded=no
for _ in $(seq 180); do
  if grep -o 'new blockfile "[^"]*"' "$work/steno.log" | sed 's/.*\/\([0-9]*\)"$/\1/' |
       awk -v t="$t_end_us" '$1 > t { f = 1 } END { exit !f }'; then steno_loaded=yes; break; fi
  sleep 1
done
rewind_stored=$("$rw" stats --dir "$work/rstore" --json | jq .packets)
rewind_drops=$(jq '.kernel_drops + .write_drops' "$work/rstore/capture0.json")
steno_stored=$(python3 - "$work/steno/pkt" <<'PY'
import os, struct, sys
n = 0   # packets in TPACKET_V3 block files (stenotype writes the kernel's blocks as they are)
for f in os.listdir(sys.argv[1]):
    if f.startswith('.'): continue
    with open(os.path.join(sys.argv[1], f), 'rb') as fh:
        while True:
            b = fh.read(1 << 20)
            if len(b) < 48: break
            num = struct.unpack_from('<I', b, 12)[0]
            if num == 0: break
            n += num
print(n)
PY
)
steno_drops=$(grep -o 'drops=[0-9]*' "$work/steno.log" | awk -F= '{ s += $2 } END { print s + 0 }')
steno_files=$(find "$work/steno/pkt" -maxdepth 1 -type f ! -name '.*' | wc -l)
rewind_files=$(find "$work/rstore" -path '*PKT*' -type f ! -name '.*' | wc -l)

# ---- the servers ------------------------------------------------------------------------------------------
certs=$work/certs
# --no-sessionid: every new connection makes a full handshake, for both servers (see the resumption check below).
tls=(--cert "$certs/client_cert.pem" --key "$certs/client_key.pem" --cacert "$certs/ca_cert.pem" --no-sessionid)
serve() {  # name, flags... -> starts rewind serve, sets port_<name>
  "$rw" serve --dir "$work/rstore" --listen 127.0.0.1:0 "${@:2}" 2> "$work/serve-$1.log" &
  pids+=($!)
  local p=
  for _ in $(seq 100); do
    p=$(sed -n 's|.*https\{0,1\}://127.0.0.1:\([0-9]*\)/.*|\1|p' "$work/serve-$1.log"); [ -n "$p" ] && break; sleep 0.1
  done
  [ -n "$p" ] || { log "rewind serve $1 did not start"; cat "$work/serve-$1.log" >&2; exit 1; }
  printf -v "port_$1" %s "$p"
}
serve http --max_queries 64
serve tls --max_queries 64 --tls_cert "$certs/server_cert.pem" --tls_key "$certs/server_key.pem" --tls_client_ca "$certs/ca_cert.pem"
serve default
url_http=http://127.0.0.1:$port_http/query
url_tls=https://127.0.0.1:$port_tls/query
url_default=http://127.0.0.1:$port_default/query
url_steno=https://127.0.0.1:$(jq .Port "$work/steno.conf")/query

# ---- queries ----------------------------------------------------------------------------------------------
# Selective: a host seen in only a few packets (the rarest source among the first 5000 TCP packets).
host=$("$rw" query --dir "$work/rstore" --limit 5000 tcp | tcpdump -nr - 2>/dev/null | awk '$2 == "IP" { print $3 }' |
       cut -d. -f1-4 | sort | uniq -c | sort -n | awk 'NR == 1 { print $2 }')
sel="host $host"
broad=tcp

# client name, query -> the command that answers it on stdout
client() {
  case $1 in
    cli)   echo "$rw" query --dir "$work/rstore" --force "'$2'" 2\>/dev/null ;;
    http)  echo curl -s --max-time 600 -w "'%{stderr}%{time_starttransfer} %{time_total}'" --data-binary "'$2'" "$url_http" ;;
    tls)   echo curl -s --max-time 600 "${tls[*]}" -w "'%{stderr}%{time_starttransfer} %{time_total}'" --data-binary "'$2'" "$url_tls" ;;
    steno) echo curl -s --max-time 600 "${tls[*]}" -w "'%{stderr}%{time_starttransfer} %{time_total}'" --data-binary "'$2'" "$url_steno" ;;
  esac
}
label() {
  case $1 in
    cli) echo "rewind, local CLI (\`rewind query\`)" ;;
    http) echo "rewind, HTTP" ;;
    tls) echo "rewind, HTTPS + client certificate" ;;
    steno) echo "stenographer, HTTPS + client certificate" ;;
  esac
}
clients=(cli http tls steno)

# Runs a command and times it from the client's start: first byte on stdout, first packet (past the 24-byte pcap
# header), end of output; plus what curl itself reports (time_starttransfer, time_total), if it is curl.
cat > "$work/clock.py" <<'PY'
import os, subprocess, sys, tempfile, time
err = tempfile.TemporaryFile()
t0 = time.perf_counter()
p = subprocess.Popen('exec ' + sys.argv[1], shell=True, stdout=subprocess.PIPE, stderr=err)
fd = p.stdout.fileno()
n, first, firstpkt = 0, None, None
while True:
    b = os.read(fd, 1 << 20)
    if not b: break
    now = time.perf_counter()
    if first is None: first = now
    n += len(b)
    if firstpkt is None and n > 24: firstpkt = now
end = time.perf_counter()
rc = p.wait()
err.seek(0)
c = err.read().decode(errors='replace').split()
c = c[-2:] if len(c) >= 2 else ['-', '-']
f = lambda t: '%.4f' % (t - t0) if t is not None else '-'
print(f(first), f(firstpkt), f(end), n, c[0], c[1], rc)
PY
clock() { python3 "$work/clock.py" "$1"; }
# Other work on this machine (a compiler, another benchmark, a replay) disturbs timings. A monitor notes every
# second in which it saw some; each group of measurements waits (at most 3 min) for quiet before it starts, and
# is measured again (at most 3 attempts) when the monitor saw other work while it ran.
busy_now() {
  pgrep -x cc1plus >/dev/null || pgrep -x tcpreplay >/dev/null || pgrep -x ctest >/dev/null ||
    pgrep -f 'store_bench.sh|capture_bench.sh|compression_bench.sh' >/dev/null
}
( while :; do busy_now && date +%s >> "$work/busy.log"; sleep 1; done ) &
pids+=($!)
quiet() {
  local i
  for i in $(seq 36); do
    busy_now || return 0
    (( i % 12 == 1 )) && log "waiting for builds or other benchmarks to finish"
    sleep 5
  done
}
disturbed_since() { [ -f "$work/busy.log" ] && awk -v t="$1" '$1 >= t { f = 1 } END { exit !f }' "$work/busy.log"; }
declare -A dist
redone=0
drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }
# file -> medians of columns 1..6, in ms ("-" when missing)
medians() {
  python3 - "$1" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
out = []
for i in range(6):
    v = [float(r[i]) for r in rows if r[i] != '-']
    if i == 3: out.append('%d' % statistics.median(v) if v else '-')
    else: out.append('%.1f' % (statistics.median(v) * 1000) if v else '-')
bad = sum(1 for r in rows if r[6] != '0')
print(' '.join(out), bad, len(rows))
PY
}

# --- do they answer the same? ---
log "checking answers"
count() { { capinfos -c -M "$1" 2>/dev/null || true; } | awk -F: '/Number of packets/ { gsub(/ /, "", $2); print $2 }'; }
declare -A n_pk same
for q in sel broad; do
  expr=${!q}
  for c in "${clients[@]}"; do
    bash -c "$(client $c "$expr")" > "$out/$q-$c.pcap" 2>/dev/null || true
    n_pk[$q-$c]=$(count "$out/$q-$c.pcap"); n_pk[$q-$c]=${n_pk[$q-$c]:-0}
  done
  for c in http tls; do same[$q-$c]=no; cmp -s "$out/$q-cli.pcap" "$out/$q-$c.pcap" && same[$q-$c]=yes; done
  "$rw" query --dir "$work/rstore" --exact "$expr" > "$out/$q-exact.pcap" 2>/dev/null || true
  n_pk[$q-exact]=$(count "$out/$q-exact.pcap")
  tcpdump -r "$trace" -w "$out/$q-tcpdump.pcap" "$expr" 2>/dev/null || true
  n_pk[$q-tcpdump]=$(count "$out/$q-tcpdump.pcap")
  rm -f "$out/$q-exact.pcap" "$out/$q-tcpdump.pcap"
  n_pk[$q-bytes-cli]=$(stat -c %s "$out/$q-cli.pcap"); n_pk[$q-bytes-steno]=$(stat -c %s "$out/$q-steno.pcap")
done
# Where stenographer and rewind differ on the broad query: packets by the kind of frame, in each answer only.
frames() { tcpdump -nn -e -r "$1" 2>/dev/null | sed -E 's/^[^,]*, ethertype [^(]*\([^)]*\), length [0-9]+: //; s/^(vlan [0-9]+, p [0-9](, DEI)?, ethertype [^,]*, )+//' | sort; }
frames "$out/broad-cli.pcap" > "$out/broad-cli.txt"
frames "$out/broad-steno.pcap" > "$out/broad-steno.txt"
only_rewind=$(comm -23 "$out/broad-cli.txt" "$out/broad-steno.txt" | wc -l)
only_steno=$(comm -13 "$out/broad-cli.txt" "$out/broad-steno.txt" | wc -l)
only_steno_mpls=$(comm -13 "$out/broad-cli.txt" "$out/broad-steno.txt" | grep -c '^MPLS' || true)
vlan_rewind=$(tcpdump -nn -e -r "$out/broad-cli.pcap" 2>/dev/null | grep -c 'ethertype 802.1Q' || true)
vlan_steno=$(tcpdump -nn -e -r "$out/broad-steno.pcap" 2>/dev/null | grep -c 'ethertype 802.1Q' || true)
rm -f "$out"/broad-*.pcap "$out"/broad-*.txt

# --- TLS session resumption: 6 requests from one curl, a new connection each, resuming the first TLS session ---
resume() {  # url -> number of 200 answers out of 6
  local a=() i
  for i in 1 2 3 4 5 6; do a+=(-o /dev/null "$1"); done
  curl -s --max-time 30 "${tls[@]:0:6}" --http1.1 -H "Connection: close" --data-binary "$sel" -w '%{http_code}\n' "${a[@]}" |
    grep -c '^200$' || true
}
resume_rewind=$(resume "$url_tls")
resume_steno=$(resume "$url_steno")

# --- latency: selective warm and cold, broad warm ---
log "timing the selective query ($sel) and the broad one ($broad)"
declare -A m
latency() {  # key, client, query, runs, cold (1: drop the page cache before each run; 0: one warm-up run first)
  local key=$1 cmd n=$4 cold=$5 a t0 r
  cmd=$(client "$2" "$3")
  for a in 1 2 3; do
    quiet; t0=$(date +%s)
    [ "$cold" = 1 ] || clock "$cmd" > /dev/null
    : > "$out/t"
    for r in $(seq "$n"); do [ "$cold" = 1 ] && drop; clock "$cmd" >> "$out/t"; done
    m[$key]=$(medians "$out/t")
    disturbed_since "$t0" || { dist[$key]=; return 0; }
    log "$key: other work ran meanwhile; measuring again"; redone=$((redone + 1))
  done
  dist[$key]=" †"
}
for c in "${clients[@]}"; do latency "sel-warm-$c" $c "$sel" "$runs" 0; done
for c in "${clients[@]}"; do latency "sel-cold-$c" $c "$sel" 3 1; done
for c in "${clients[@]}"; do latency "broad-warm-$c" $c "$broad" 3 0; done

# --- load: requests/s of the selective query with 1, 8 and 32 clients ---
# Each client is one curl process sending its share of $requests one after another: "keep-alive" reuses one
# connection (HTTP/2 with stenographer, which offers it; HTTP/1.1 with rewind), "new connection" sends
# "Connection: close" over HTTP/1.1, as a stenoread/curl per query does.
load() {  # url, clients, mode, curl args... -> "ok req/s p50_ms p95_ms failed codes"
  local url=$1 c=$2 mode=$3; shift 3
  local per=$(( (requests + c - 1) / c )) d=$work/load i lp=()
  rm -rf "$d"; mkdir -p "$d"
  {
    printf 'data-binary = "%s"\n' "$sel"
    printf 'write-out = "%%{http_code} %%{size_download} %%{time_total}\\n"\n'
    for _ in $(seq $per); do printf 'url = "%s"\noutput = "/dev/null"\n' "$url"; done
  } > "$d/cfg"
  local extra=(); [ "$mode" = close ] && extra=(--http1.1 -H "Connection: close")
  local t0; t0=$(date +%s.%N)
  for i in $(seq "$c"); do timeout 300 curl -s --max-time 60 "$@" "${extra[@]}" -K "$d/cfg" > "$d/out.$i" 2>/dev/null & lp+=($!); done
  wait "${lp[@]}" || true
  local t1; t1=$(date +%s.%N)
  cat "$d"/out.* | python3 -c '
import sys
wall = float(sys.argv[1]); rows = [l.split() for l in sys.stdin if l.strip()]
ok = sorted(float(r[2]) for r in rows if r[0] == "200" and int(r[1]) > 24)
codes = {}
for r in rows:
    if not (r[0] == "200" and int(r[1]) > 24): codes[r[0]] = codes.get(r[0], 0) + 1
q = lambda p: "%.1f" % (ok[min(len(ok) - 1, int(p * len(ok)))] * 1000) if ok else "-"
print(len(ok), "%.0f" % (len(ok) / wall), q(0.5), q(0.95), len(rows) - len(ok) + max(0, int(sys.argv[2]) - len(rows)),
      ",".join("%s:%d" % kv for kv in sorted(codes.items())) or "-")
' "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" "$((per * c))"
}
log "load tests ($requests requests each)"
declare -A L
loadrow() {  # key, load's arguments...
  local key=$1 a t0; shift
  for a in 1 2 3; do
    quiet; t0=$(date +%s)
    L[$key]=$(load "$@")
    disturbed_since "$t0" || { dist[$key]=; return 0; }
    log "$key: other work ran meanwhile; measuring again"; redone=$((redone + 1))
  done
  dist[$key]=" †"
}
for mode in keepalive close; do
  for c in 1 8 32; do
    loadrow $mode-http-$c "$url_http" $c $mode
    loadrow $mode-tls-$c "$url_tls" $c $mode "${tls[@]}"
    loadrow $mode-steno-$c "$url_steno" $c $mode "${tls[@]}"
  done
  loadrow $mode-default-32 "$url_default" 32 $mode
done

# ---- report -------------------------------------------------------------------------------------------------
trace_mb=$(( $(stat -c %s "$trace") / 1000000 ))
echo "### Run $(date -u +%Y-%m-%dT%H:%MZ) ($(nproc) cores, rewind $(cat "$work/rev"), stenographer $(dpkg-query -W -f '${Version}' stenographer 2>/dev/null || echo '?'))"
echo
echo "Command: \`bench/http_bench.sh $trace\` (rewind binary: build/rewind as built in the tree at that commit)"
echo "(PPS=$pps RUNS=$runs REQUESTS=$requests); load average at the start: $loadavg, at the end: $(cut -d' ' -f1-3 /proc/loadavg);"
echo "groups of measurements measured again because a compiler or another benchmark ran meanwhile: $redone (rows still"
echo "disturbed after 3 attempts are marked †)."
echo
echo "**Data.** \`$trace\` ($trace_mb MB) replayed with \`tcpreplay -i v0 --pps $pps\` over a veth pair (MTU 9500, IPv6"
echo "off) in a private network namespace, captured on \`v1\` at the same time by \`rewind capture --blocks 512"
echo "--fileage_sec 10\` and by the \`stenographer\` server (run as its user, as Debian's unit does) with stenotype flags"
echo "\`--blocks=512 --fileage_sec=10 --seccomp=none\`. Sent $sent packets in ${replay_s:-?} s ($failed frames tcpreplay could not"
echo "send: larger than the MTU). Stored: rewind $rewind_stored in $rewind_files files (drops $rewind_drops), stenotype"
echo "$steno_stored in $steno_files files (drops it logged: $steno_drops); stenographer had loaded the last file: $steno_loaded."
echo
echo "**Servers**, all on 127.0.0.1 in the namespace: \`rewind serve --max_queries 64\` (HTTP), the same with"
echo "\`--tls_cert/--tls_key/--tls_client_ca\` (HTTPS, client certificate required), \`rewind serve\` with default flags"
echo "(\`--max_queries 8\`), and stenographer (HTTPS, client certificate required). The TLS servers use the same"
echo "certificates, made by Debian's \`stenokeys\` (RSA 4096)."
echo
echo "**Queries.** Selective: \`$sel\`. Broad: \`$broad\`. Sent as in \`curl -s --data-binary 'QUERY' URL\` (plus"
echo "\`--cert/--key/--cacert\` for HTTPS, as \`stenocurl\` does); the CLI is \`rewind query --dir STORE 'QUERY'\`."
echo
echo "| answer, packets | rewind CLI | rewind HTTP | rewind HTTPS | stenographer | rewind \`--exact\` | \`tcpdump -r TRACE\` |"
echo "|---|---|---|---|---|---|---|"
for q in sel broad; do
  echo "| \`${!q}\` | ${n_pk[$q-cli]} | ${n_pk[$q-http]} (bytes = CLI: ${same[$q-http]}) | ${n_pk[$q-tls]} (bytes = CLI: ${same[$q-tls]}) | ${n_pk[$q-steno]} | ${n_pk[$q-exact]} | ${n_pk[$q-tcpdump]} |"
done
echo
echo "Broad answers, frame by frame (timestamps and VLAN tags left out): $only_rewind only in rewind's, $only_steno only in"
echo "stenographer's ($only_steno_mpls of them MPLS-encapsulated TCP). 802.1Q-tagged frames in the answer: rewind $vlan_rewind,"
echo "stenographer $vlan_steno. Answer sizes: \`$sel\` rewind ${n_pk[sel-bytes-cli]} B, stenographer ${n_pk[sel-bytes-steno]} B;"
echo "\`$broad\` rewind ${n_pk[broad-bytes-cli]} B, stenographer ${n_pk[broad-bytes-steno]} B."
echo
echo "TLS session resumption (one curl, 6 requests over new connections, the 2nd to 6th resuming the first session):"
echo "rewind answered $resume_rewind of 6, stenographer $resume_steno of 6. (The timings below pass \`--no-sessionid\`: full"
echo "handshakes for both.)"
echo
echo "**Latency**, medians in ms ($runs warm runs of the selective query after a warm-up, 3 cold ones each after"
echo "\`echo 3 > /proc/sys/vm/drop_caches\`, 3 warm runs of the broad one). *curl TTFB/total* are curl's"
echo "\`%{time_starttransfer}\`/\`%{time_total}\` (from connecting to the last byte; TTFB is the first byte of the"
echo "response headers). *First packet/end* are measured around the client process (curl or \`rewind query\`), from"
echo "starting it to the first pcap record on its stdout and to the end of its output, so they include process start,"
echo "the TLS handshake, and for the CLI opening the store."
echo
echo "| query | cache | client | curl TTFB | curl total | first packet | end | bytes |"
echo "|---|---|---|---|---|---|---|---|"
for k in sel-warm sel-cold broad-warm; do
  q=${k%%-*}; cache=${k#*-}
  for c in "${clients[@]}"; do
    read -r fb fp end bytes ct ctot bad n <<< "${m[$k-$c]}"
    note=; [ "$bad" = 0 ] || note=" ($bad of $n runs failed)"
    echo "| \`${!q}\` | $cache | $(label $c)${dist[$k-$c]:-}$note | $ct | $ctot | $fp | $end | $bytes |"
  done
done
echo
echo "**Requests/s** of \`$sel\` ($requests requests per row, split evenly over the clients; each client one curl process"
echo "sending its share one after another; *keep-alive*: one connection per client, HTTP/2 with stenographer, HTTP/1.1"
echo "with rewind; *new connection*: \`--http1.1 -H 'Connection: close'\`, one TCP (and TLS) connection per request, as"
echo "a \`stenoread\` per query does). Latency = curl's \`time_total\` per request. Clients and servers share the 2 cores."
echo
echo "| server | connections | clients | answered (200, non-empty) | requests/s | p50 ms | p95 ms | failed (codes) |"
echo "|---|---|---|---|---|---|---|---|"
for mode in keepalive close; do
  mlabel=keep-alive; [ "$mode" = close ] && mlabel="new connection"
  for s in http tls steno default; do
    for c in 1 8 32; do
      [ -n "${L[$mode-$s-$c]:-}" ] || continue
      read -r ok rps p50 p95 failed codes <<< "${L[$mode-$s-$c]}"
      case $s in default) sl="rewind, HTTP, default \`--max_queries 8\`" ;; *) sl=$(label $s) ;; esac
      echo "| $sl${dist[$mode-$s-$c]:-} | $mlabel | $c | $ok | $rps | $p50 | $p95 | $failed ($codes) |"
    done
  done
done
