#!/usr/bin/env bash
# Capture-to-queryable latency on the defaults: how long after a packet crosses the wire does a query answer
# hold it? `rewind run` (a config that sets only dir, capture.iface and server.listen; everything else default)
# and Debian's `stenographer` server (stenotype flags as Debian ships them: none, so --fileage_sec 60 and
# --blocks 2048) capture the same veth end inside a private network namespace this script creates, while
# tcpreplay sends a light background load through the pair. A marker is one UDP datagram to a port used by no
# other packet, sent as a raw Ethernet frame into the other veth end at random intervals; for each marker a
# poller asks every server for exactly that marker (`udp and port N`) every POLL_MS until the answer holds the
# packet, up to TIMEOUT s. Latency = time the first answer holding it arrived - time it was sent.
# Prints a Markdown section on stdout (progress on stderr).
#   usage: bench/latency_bench.sh
# Environment:
#   REWIND   the binary to measure (default /tmp/rewind-bench/rewind-new; copied to WORK before use)
#   BEFORE   an older binary measured beside it as "rewind (before)" (default /tmp/rewind-bench/rewind-before,
#            skipped if absent; BEFORE=none skips it)
#   WORK     work directory (default /tmp/rewind-bench/latency)
#   MARKERS  number of markers (default 30), GAP_MIN/GAP_MAX seconds between markers (default 0.5 / 5)
#   POLL_MS  poll interval per marker (default 50), TIMEOUT seconds per marker (default 120)
#   BG       background trace (default /tmp/rewind-bench/trace-512M.pcap), BG_PPS its rate (default 1000)
#   PRIO     nice value of everything the benchmark runs (default -10)
#   SEED     random seed (default: random); WAIT minutes to wait for compilers to finish first (default 10)
# Needs root, stenographer, tcpreplay, tcpdump, python3, setpriv, unshare. All traffic stays inside the
# namespace (veth pair and loopback). Leaves its stores, logs and the first answers holding each marker in WORK.
# The pollers keep one HTTP connection per server (HTTPS with stenokeys' client certificate for stenographer)
# instead of one curl per poll: with up to MARKERS markers outstanding at 20 polls/s each, a curl process and an
# RSA-4096 handshake per poll would need more CPU than the 2 cores have. Each first answer holding a marker is
# saved and counted again with `tcpdump -r FILE 'udp and port N' | wc -l`.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/stenographer_peer.sh
work=${WORK:-/tmp/rewind-bench/latency}
log() { echo "latency_bench: $*" >&2; }

if [ -z "${REWIND_IN_NETNS:-}" ]; then
  [ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
  for t in stenographer stenotype stenokeys tcpreplay tcpdump python3 setpriv unshare jq; do
    command -v "$t" >/dev/null || { echo "needs $t" >&2; exit 1; }
  done
  rewind=${REWIND:-/tmp/rewind-bench/rewind-new}   # REWIND=none: stenographer alone (to test this script)
  [ "$rewind" = none ] || [ -x "$rewind" ] || { echo "no rewind binary $rewind (cp /work/main/build/rewind /tmp/rewind-bench/rewind-new)" >&2; exit 1; }
  before=${BEFORE:-/tmp/rewind-bench/rewind-before}
  bg=${BG:-/tmp/rewind-bench/trace-512M.pcap}
  [ -f "$bg" ] || { echo "no background trace $bg (set BG)" >&2; exit 1; }
  rm -rf "$work/new" "$work/before" "$work/steno" "$work/answers"
  mkdir -p "$work"
  # Private copies: the originals may be replaced while this runs.
  rm -f "$work/rewind-new" "$work/new.id" "$work/rewind-before" "$work/before.id"
  if [ "$rewind" != none ]; then
    cp "$rewind" "$work/rewind-new"
    { echo "$rewind"; sha256sum "$rewind" | cut -c1-12; stat -c %y "$rewind"; } > "$work/new.id"
  fi
  if [ "$before" != none ] && [ -x "$before" ]; then
    cp "$before" "$work/rewind-before"
    { echo "$before"; sha256sum "$before" | cut -c1-12; stat -c %y "$before"; } > "$work/before.id"
  fi
  # stenographer's config as Debian ships it (/etc/stenographer/config), but for the interface, the directories,
  # the port and the certificate path: no Flags, so stenotype runs on its defaults.
  cat > "$work/steno.conf" <<EOF
{ "Threads": [ { "PacketsDirectory": "$work/steno/pkt", "IndexDirectory": "$work/steno/idx",
                 "MaxDirectoryFiles": 30000, "DiskFreePercentage": 10 } ],
  "StenotypePath": "/usr/sbin/stenotype", "Interface": "v1", "Port": 9124, "Host": "127.0.0.1",
  "Flags": [], "CertPath": "$work/certs" }
EOF
  if [ ! -f "$work/certs/ca_cert.pem" ]; then
    mkdir -p "$work/certs"
    STENOGRAPHER_CONFIG=$work/steno.conf stenokeys stenographer stenographer >&2
  fi
  # Marker ports: random ones that no UDP packet of the background trace uses (one pass of tcpdump).
  seed=${SEED:-$RANDOM$RANDOM}
  cand=$(python3 -c 'import random, sys; random.seed(int(sys.argv[1])); print(*random.sample(range(20000, 60000), 3 * int(sys.argv[2])))' \
         "$seed" "${MARKERS:-30}")
  filter="udp and ($(echo $cand | sed 's/ / or port /g; s/^/port /'))"
  { tcpdump -nn -q -r "$bg" "$filter" 2>/dev/null || true; } | { grep -o '\.[0-9]*[ :]' || true; } | tr -d '.: ' |
    sort -u > "$work/used-ports"
  python3 -c 'import sys; used = set(open(sys.argv[1]).read().split())
print("\n".join([p for p in sys.argv[3:] if p not in used][:int(sys.argv[2])]))' "$work/used-ports" "${MARKERS:-30}" $cand \
    > "$work/ports"
  log "$(wc -l < "$work/used-ports") of the candidate ports occur in $bg; markers use $(wc -l < "$work/ports") others"
  # The machine is shared: wait (at most WAIT minutes, default 10) for compilers to finish; the load average is
  # reported.
  for i in $(seq $(( ${WAIT:-10} * 6 ))); do
    pgrep -x cc1plus >/dev/null || break
    (( i % 6 == 1 )) && log "waiting for compilers to finish (load $(cut -d' ' -f1 /proc/loadavg))"
    sleep 10
  done
  # Everything inside the namespace (capturers, servers, replay, pollers) runs at nice PRIO (default -10), the same
  # for rewind and stenographer: on a shared machine the builds of others would otherwise decide the latencies.
  REWIND_IN_NETNS=1 BG_FILE=$bg SEED=$seed exec nice -n "${PRIO:--10}" unshare -n bash "$0"
fi

# ---- inside the private network namespace ---------------------------------------------------------------
markers=${MARKERS:-30}
gap_min=${GAP_MIN:-0.5}
gap_max=${GAP_MAX:-5}
poll_ms=${POLL_MS:-50}
timeout_s=${TIMEOUT:-120}
bg_pps=${BG_PPS:-1000}
seed=$SEED
bg=$BG_FILE
ports=$(jq -Rsc 'split("\n") | map(select(. != "") | tonumber)' "$work/ports")
markers=$(jq length <<< "$ports")
pids=()
steno_pid=
cleanup() {
  local p st
  for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done
  if [ -n "$steno_pid" ]; then
    st=$(pgrep -P "$steno_pid" -x stenotype || true)
    kill -INT "$steno_pid" 2>/dev/null || true
    sleep 2
    kill -9 "$steno_pid" $st 2>/dev/null || true
  fi
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  local tmp; tmp=$(sed -n 's/.*"--dir=\(\/tmp\/stenographer[0-9]*\)".*/\1/p' "$work/steno.log" 2>/dev/null | head -1)
  [ -n "$tmp" ] && rm -rf "$tmp"
  return 0
}
trap cleanup EXIT
ip link set lo up
ip link add v0 type veth peer name v1
for i in v0 v1; do sysctl -qw net.ipv6.conf.$i.disable_ipv6=1; ip link set $i mtu 9500; ip link set $i up; done
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- the capturers ----------------------------------------------------------------------------------------
mkdir -p "$work/steno/pkt" "$work/steno/idx" "$work/answers"
chown -R stenographer:stenographer "$work/steno"
# Background traffic first: stenotype's watchdog aborts it when its ring hands over no block for a while, and its
# first packet file on disk is the sign that it captures (Debian's flags have no -v: it logs nothing when ready).
log "background: tcpreplay --pps $bg_pps --loop 0 $bg"
tcpreplay -i v0 --pps "$bg_pps" --loop 0 "$bg" > "$work/replay.log" 2>&1 &
bg_pid=$!
pids+=($bg_pid)
log "starting stenographer (stenotype on its default 2 GiB ring takes a while)"
setpriv --reuid=stenographer --regid=stenographer --init-groups \
  stenographer -config "$work/steno.conf" -syslog=false -v 1 > "$work/steno.log" 2>&1 &
steno_pid=$!
t0=$(date +%s)
STENO_WORK=$work steno_wait_for_packets
log "stenotype writes packets ($(( $(date +%s) - t0 )) s after start)"
steno_flags=$(grep -o 'Starting as .*' "$work/steno.log" | head -1 || true)

servers=()   # name=url
start_rewind() {  # name, binary, port
  local name=$1 bin=$2 port=$3
  cat > "$work/$name.json" <<EOF
{ "dir": "$work/$name", "capture": { "iface": "v1" }, "server": { "listen": "127.0.0.1:$port" } }
EOF
  "$bin" run --config "$work/$name.json" > "$work/$name.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do grep -q "curl:" "$work/$name.log" && break; sleep 0.1; done
  grep -q "curl:" "$work/$name.log" || { log "rewind run ($name) did not start:"; cat "$work/$name.log" >&2; exit 1; }
  servers+=("$name=http://127.0.0.1:$port/query")
}
[ -x "$work/rewind-new" ] && start_rewind new "$work/rewind-new" 9125
[ -x "$work/rewind-before" ] && start_rewind before "$work/rewind-before" 9126
servers+=("stenographer=https://127.0.0.1:9124/query")
sleep 3

# ---- markers and pollers -----------------------------------------------------------------------------------
cat > "$work/markers.py" <<'PY'
# Sends markers (one UDP datagram each, raw Ethernet frame into v0) and polls every server for each marker.
import http.client, json, os, random, socket, ssl, struct, sys, threading, time
cfg = json.loads(sys.argv[1])
random.seed(cfg['seed'])
ports = cfg['ports']
poll = cfg['poll_ms'] / 1000.0
lock = threading.Lock()
sent = {}            # marker index -> monotonic send time
wall = {}            # marker index -> wall-clock send time
found = {}           # (server, marker) -> latency in s
stats = {}           # server -> [polls, errors, tick durations]
done_sending = threading.Event()
t_start = time.monotonic()
polls = open(cfg['result'].replace('result.json', 'polls.tsv'), 'w', buffering=1)   # server port start_s duration_s code bytes
def log(*a): print('latency_bench:', *a, file=sys.stderr, flush=True)

def mac(iface):   # (/sys is the host's: ask a packet socket bound to the interface)
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW); s.bind((iface, 0))
    a = s.getsockname()[4]; s.close(); return a
def csum(b):
    if len(b) % 2: b += b'\0'
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
def frame(i, port):
    payload = b'rewind latency marker %d' % i
    src, dst = socket.inet_aton('10.99.0.1'), socket.inet_aton('10.99.0.2')
    udp = struct.pack('!HHHH', 40000 + i, port, 8 + len(payload), 0) + payload
    ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(udp), i, 0, 64, 17, 0, src, dst)
    ip = ip[:10] + struct.pack('!H', csum(ip)) + ip[12:]
    return mac('v1') + mac('v0') + b'\x08\x00' + ip + udp

def sender():
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind(('v0', 0))
    try:
        for i, port in enumerate(ports):
            time.sleep(random.uniform(cfg['gap_min'], cfg['gap_max']))
            f = frame(i, port)
            with lock:
                t = time.monotonic(); s.send(f); sent[i] = t; wall[i] = time.time()
            log('marker %d/%d sent: udp port %d' % (i + 1, len(ports), port))
    finally:
        done_sending.set()

def pcap_packets(b):
    if len(b) < 24: return 0
    magic = struct.unpack('<I', b[:4])[0]
    if magic not in (0xa1b2c3d4, 0xa1b23c4d): return -1   # not little-endian pcap: let tcpdump count
    n, off = 0, 24
    while off + 16 <= len(b):
        incl = struct.unpack_from('<I', b, off + 8)[0]
        off += 16 + incl; n += 1
    return n

def poller(name, url):
    u = urllib_parse(url)
    ctx = None
    if u['scheme'] == 'https':
        ctx = ssl.create_default_context(cafile=cfg['certs'] + '/ca_cert.pem')
        ctx.check_hostname = False
        ctx.load_cert_chain(cfg['certs'] + '/client_cert.pem', cfg['certs'] + '/client_key.pem')
    def connect():
        if ctx: return http.client.HTTPSConnection(u['host'], u['port'], context=ctx, timeout=30)
        return http.client.HTTPConnection(u['host'], u['port'], timeout=30)
    conn = connect()
    st = stats[name] = [0, 0, [], 0, []]   # polls, errors, round durations, connections, request durations
    while True:
        t0 = time.monotonic()
        with lock:
            pending = [i for i in sent if (name, i) not in found and t0 - sent[i] <= cfg['timeout']]
            finished = done_sending.is_set() and not pending
        if finished: break
        for i in pending:
            q = 'udp and port %d' % ports[i]
            tr = time.monotonic()
            try:
                if conn.sock is None: st[3] += 1
                conn.request('POST', u['path'], body=q.encode(),
                             headers={'Content-Type': 'application/x-www-form-urlencoded'})
                r = conn.getresponse(); body = r.read(); code = r.status
                if r.will_close: conn.close()
            except Exception as e:
                st[1] += 1; conn.close(); conn = connect(); log('%s: %r' % (name, e)); continue
            t = time.monotonic(); st[0] += 1; st[4].append(t - tr)
            polls.write('%s\t%d\t%.4f\t%.4f\t%d\t%d\n' % (name, ports[i], tr - t_start, t - tr, code, len(body)))
            if code != 200: st[1] += 1; continue
            n = pcap_packets(body)
            if n != 0:
                with lock: found[(name, i)] = t - sent[i]
                open('%s/%s-%d.pcap' % (cfg['answers'], name, ports[i]), 'wb').write(body)
                log('marker udp port %d: %s answers it after %.3f s' % (ports[i], name, t - sent[i]))
        d = time.monotonic() - t0
        if pending: st[2].append(d)
        if d < poll: time.sleep(poll - d)

def urllib_parse(url):
    from urllib.parse import urlsplit
    p = urlsplit(url)
    return {'scheme': p.scheme, 'host': p.hostname, 'port': p.port, 'path': p.path}

oversleep = []
def probe():   # how late a 50 ms sleep wakes up on this machine: the resolution of every time measured here
    while not (done_sending.is_set() and not any(t.is_alive() for t in threads[1:])):
        t = time.monotonic(); time.sleep(0.05); oversleep.append(time.monotonic() - t - 0.05)

threads = [threading.Thread(target=sender)]
for s in cfg['servers']:
    name, url = s.split('=', 1)
    threads.append(threading.Thread(target=poller, args=(name, url)))
pt = threading.Thread(target=probe)
for t in threads: t.start()
pt.start()
for t in threads: t.join()
pt.join()
o = sorted(oversleep)
out = {'ports': ports, 'wall': wall, 'latency': {}, 'stats': {},
       'oversleep': {'n': len(o), 'p50': o[len(o) // 2], 'p99': o[int(len(o) * 0.99)], 'max': o[-1]}}
for s in cfg['servers']:
    name = s.split('=', 1)[0]
    out['latency'][name] = [found.get((name, i)) for i in range(len(ports))]
    ticks = sorted(stats[name][2]); reqs = sorted(stats[name][4])
    out['stats'][name] = {'polls': stats[name][0], 'errors': stats[name][1], 'connections': stats[name][3],
                          'tick_p50': ticks[len(ticks) // 2] if ticks else None, 'tick_max': ticks[-1] if ticks else None,
                          'req_p50': reqs[len(reqs) // 2] if reqs else None, 'req_max': reqs[-1] if reqs else None}
json.dump(out, open(cfg['result'], 'w'))
PY
cfg=$(jq -nc --argjson markers "$markers" --argjson gap_min "$gap_min" --argjson gap_max "$gap_max" \
  --argjson poll_ms "$poll_ms" --argjson timeout "$timeout_s" --argjson seed "$seed" --argjson ports "$ports" \
  --arg certs "$work/certs" --arg answers "$work/answers" --arg result "$work/result.json" \
  '{markers: $markers, gap_min: $gap_min, gap_max: $gap_max, poll_ms: $poll_ms, timeout: $timeout, seed: $seed,
    ports: $ports, certs: $certs, answers: $answers, result: $result, servers: $ARGS.positional}' \
  --args "${servers[@]}")
log "sending $markers markers (seed $seed), polling ${servers[*]}"
load_markers=$(cut -d' ' -f1-3 /proc/loadavg)
python3 "$work/markers.py" "$cfg"
load_end=$(cut -d' ' -f1-3 /proc/loadavg)
kill -INT "$bg_pid" 2>/dev/null || true
bg_sent=$(sed -n 's/.*Successful packets: *\([0-9]*\).*/\1/p' "$work/replay.log" | tail -1)

# Count every saved first answer again with tcpdump.
declare -A verified total_found
for s in "${servers[@]}"; do
  name=${s%%=*}; verified[$name]=0; total_found[$name]=0
  for f in "$work/answers/$name"-*.pcap; do
    [ -e "$f" ] || continue
    port=${f##*-}; port=${port%.pcap}
    total_found[$name]=$((total_found[$name] + 1))
    n=$(tcpdump -nn -r "$f" "udp and port $port" 2>/dev/null | wc -l)
    [ "$n" -ge 1 ] && verified[$name]=$((verified[$name] + 1))
  done
done
# Markers a server never answered within TIMEOUT: did its capture store them at all? (asked once more now)
declare -A late
for s in "${servers[@]}"; do
  name=${s%%=*}; url=${s#*=}
  late[$name]=$(jq -r --arg n "$name" '.ports as $p | .latency[$n] | to_entries[] | select(.value == null) | $p[.key]' "$work/result.json" |
    while read -r port; do
      if [ "$name" = stenographer ]; then
        c=(curl -s --max-time 30 --cert "$work/certs/client_cert.pem" --key "$work/certs/client_key.pem" --cacert "$work/certs/ca_cert.pem")
      else c=(curl -s --max-time 30); fi
      n=$("${c[@]}" --data-binary "udp and port $port" "$url" | tcpdump -r - 2>/dev/null | wc -l)
      echo "$port:$n"
    done | tr '\n' ' ')
done

# ---- report -------------------------------------------------------------------------------------------------
label() {
  case $1 in
    new) echo "rewind run (new: $(sed -n 1p "$work/new.id"), sha256 $(sed -n 2p "$work/new.id"))" ;;
    before) echo "rewind run (before: $(sed -n 1p "$work/before.id"), sha256 $(sed -n 2p "$work/before.id"))" ;;
    stenographer) echo "stenographer $(dpkg-query -W -f '${Version}' stenographer 2>/dev/null)" ;;
  esac
}
echo "### Capture-to-queryable latency, $(date -u +%Y-%m-%dT%H:%MZ) ($(nproc) cores)"
echo
echo "Command: \`bench/latency_bench.sh\` (MARKERS=$markers GAP=${gap_min}-${gap_max}s POLL_MS=$poll_ms TIMEOUT=$timeout_s SEED=$seed"
echo "BG=$bg BG_PPS=$bg_pps; everything at nice $(nice)). Load average at the start: $load_start; when the markers started: $load_markers; at the end: $load_end."
echo
echo "**Set-up.** A veth pair (MTU 9500, IPv6 off) in a private network namespace. On \`v1\`, at the same time:"
for s in "${servers[@]}"; do
  name=${s%%=*}
  case $name in
    new|before) echo "- $(label "$name"): \`rewind run --config C\`, C = \`$(tr -s ' \n' ' ' < "$work/$name.json")\` (all else default)" ;;
    stenographer) echo "- $(label "$name"): the \`stenographer\` server (as its user) with Debian's config but for interface, directories, port and certificate path: \`\"Flags\": []\`, so stenotype runs on its defaults (\`--fileage_sec\` 60, \`--blocks\` 2048); it was started as: \`${steno_flags:-?}\`" ;;
  esac
done
echo
echo "Background: \`tcpreplay -i v0 --pps $bg_pps --loop 0 $(basename "$bg")\` ($bg_sent packets sent). Markers: $markers UDP datagrams"
echo "(10.99.0.1 -> 10.99.0.2, a random destination port per marker that no UDP packet of the background trace uses),"
echo "written as raw Ethernet frames into \`v0\` at random intervals of $gap_min-$gap_max s. For each"
echo "marker and server a poller sends \`udp and port N\` (POST /query; one kept-alive connection per server, HTTPS with"
echo "stenokeys' client certificate for stenographer) every $poll_ms ms until the answer holds a packet, up to $timeout_s s."
echo "Latency = arrival of the first answer holding the marker - the marker's send time. Each such answer was counted"
echo "again with \`tcpdump -r ANSWER 'udp and port N' | wc -l\`."
echo
echo "| server | markers answered | min s | p50 s | p90 s | max s | not answered within ${timeout_s} s | answers checked by tcpdump | polls (errors, connections) | request p50 / max ms | poll round p50 / max ms |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
for s in "${servers[@]}"; do
  name=${s%%=*}
  row=$(jq -r --arg n "$name" '
    def q(p): (sort) as $s | if ($s | length) == 0 then "-" else ($s[((($s | length) - 1) * p + 0.5) | floor] * 1000 | round / 1000 | tostring) end;
    (.latency[$n] | map(select(. != null))) as $l |
    .stats[$n] as $st |
    "\($l | length)/\(.latency[$n] | length) | \($l | q(0)) | \($l | q(0.5)) | \($l | q(0.9)) | \($l | q(1)) | \((.latency[$n] | length) - ($l | length)) | X | \($st.polls) (\($st.errors), \($st.connections)) | \(if $st.req_p50 then ($st.req_p50 * 1000 | round | tostring) + " / " + ($st.req_max * 1000 | round | tostring) else "-" end) | \(if $st.tick_p50 then ($st.tick_p50 * 1000 | round | tostring) + " / " + ($st.tick_max * 1000 | round | tostring) else "-" end)"' "$work/result.json")
  row=${row/ X / ${verified[$name]} of ${total_found[$name]} hold it }
  echo "| $(label "$name") | $row |"
done
echo
echo "Machine check: a thread of the poller process slept 50 ms at a time all along; it woke late by $(jq -r '.oversleep | "\(.p50 * 1000 | round) ms (median), \(.p99 * 1000 | round) ms (p99), \(.max * 1000 | round) ms (max) over \(.n) sleeps"' "$work/result.json")"
echo "(a late wake-up delays the next poll as much; it is the resolution of the latencies above)."
echo
echo "stenotype aborted by its own watchdog during the run: $(grep -c 'WATCHDOG FAILURE' "$work/steno.log" || true) time(s) (stenographer restarts it)."
echo
echo "Per marker, seconds (in send order; – = not within ${timeout_s} s):"
echo
names=(); for s in "${servers[@]}"; do names+=("${s%%=*}"); done
echo "| # | port | $(printf '%s | ' "${names[@]}")"
echo "|---|---|$(printf -- '---|%.0s' "${names[@]}")"
jq -r '.ports as $p | [.latency[]] as $l | range(0; $p | length) as $i |
  "| \($i + 1) | \($p[$i]) | " + ([$l[][$i] | if . == null then "–" else (. * 1000 | round / 1000 | tostring) end] | join(" | ")) + " |"' \
  "$work/result.json"
echo
for n in "${names[@]}"; do
  [ -n "${late[$n]}" ] && echo "Not answered within ${timeout_s} s by $n; packets its answer holds when asked once more at the end (port:packets): ${late[$n]}"
done
true
