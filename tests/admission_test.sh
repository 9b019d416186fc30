#!/usr/bin/env bash
# The query server under load, over loopback: lookups are answered while scans fill their slots and queue
# (429 only past the queue), a 1,000-term query is answered (or refused) promptly, and slow or silent
# clients cannot keep /healthz or queries from being answered.
# usage: admission_test.sh PATH/TO/rewind PATH/TO/shared/pcaps
set -uo pipefail
REWIND=$(readlink -f "${1:?rewind binary}")
PCAPS=$(readlink -f "${2:?shared pcaps dir}")
export PCAPS
command -v curl >/dev/null || { echo "SKIP: curl not installed"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: python3 not installed"; exit 77; }
work=$(mktemp -d -p "${TMPDIR:-/tmp}" rewind-admission-test.XXXXXX)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$work"' EXIT
passed=0 failed=0
ok() { passed=$((passed + 1)); }
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }
# grep that reads all its input: with pipefail, grep -q exiting at the first match can fail the writer.
has() { grep "$@" > /dev/null; }

store=$work/store
# Ethernet captures only, so that every answer is plain pcap that tcpdump reads, split over two writer
# directories (answers merge them); a full answer (~20 MB) is larger than what socket buffers hold.
for w in 0 1; do
  awk -F'\t' -v w=$w '$3 == "ether(1)" && $8 !~ /BROKEN|crafted/ && NR % 2 == w { print ENVIRON["PCAPS"] "/" $1 }' \
    "$PCAPS/MANIFEST.tsv" | xargs "$REWIND" import -q --dir "$store" --writer $w 2>/dev/null
done
"$REWIND" stats --dir "$store" | has "packets" || { echo "FAIL: import"; exit 1; }

start_server() {  # extra flags...; sets url, server_pid
  local log=$work/server.$RANDOM.log
  "$REWIND" serve --dir "$store" --listen 127.0.0.1:0 "$@" 2>"$log" &
  server_pid=$!
  pids+=("$server_pid")
  for _ in $(seq 50); do grep -q "rewind serve: http" "$log" && break; sleep 0.1; done
  url=$(sed -n 's/.*rewind serve: \(https\?:\/\/[^ ]*\)\/ .*/\1/p' "$log")
  [ -n "$url" ] || { echo "FAIL: server did not start: $(cat "$log")"; exit 1; }
}
stat_of() {  # python expression over the /stats JSON `d`
  curl -s "$url/stats" | python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"
}

# 1. Scans fill their one slot and their queue of two; the next scan gets 429 with Retry-After and a JSON
#    error, while 32 concurrent lookups all get their exact answers and /healthz answers.
start_server --max_scans 1 --scan_queue 2
slow=()
for i in 1 2 3; do
  curl -s --limit-rate 20k --data-binary '' "$url/query" > /dev/null &
  slow+=($!)
  pids+=($!)
done
for _ in $(seq 50); do
  [ "$(stat_of 'd["server"]["admission"]["scan"]["waiting"]')" = 2 ] && break
  sleep 0.1
done
[ "$(stat_of 'd["server"]["admission"]["scan"]["running"]')" = 1 ] && ok || fail "the slow scan is not running"
hdr=$(curl -s -D - -o "$work/429.json" --data-binary 'not tcp' "$url/query")
echo "$hdr" | has "^HTTP/1.1 429" && echo "$hdr" | grep -qi "^Retry-After: [0-9]" &&
  python3 -c 'import json,sys; assert "scan" in json.load(open(sys.argv[1]))["error"]' "$work/429.json" && ok ||
  fail "scan past a full queue: $hdr $(cat "$work/429.json")"

mapfile -t hosts < <("$REWIND" query --dir "$store" 'ip' | tcpdump -nr - 2>/dev/null | awk '$2 == "IP" {print $3}' |
                     cut -d. -f1-4 | sort -u | head -32)
for i in "${!hosts[@]}"; do "$REWIND" query --dir "$store" "host ${hosts[$i]}" > "$work/want.$i"; done
curls=()
for i in "${!hosts[@]}"; do
  timeout 120 curl -s -o "$work/got.$i" -w '%{http_code} %{time_total}\n' --data-binary "host ${hosts[$i]}" \
    "$url/query" > "$work/code.$i" &
  curls+=($!)
done
[ ${#curls[@]} -gt 0 ] && wait "${curls[@]}"
bad=0
for i in "${!hosts[@]}"; do
  read -r code secs < "$work/code.$i"
  [ "$code" = 200 ] && cmp -s "$work/want.$i" "$work/got.$i" || bad=$((bad + 1))
done
[ "${#hosts[@]}" -eq 32 ] && [ $bad -eq 0 ] && ok || fail "lookups beside full scans: $bad of ${#hosts[@]} wrong or refused"
cat "$work"/code.* | awk '{print $2}' | sort -n |
  awk '{t[NR]=$1} END {if (NR) printf "32 lookups beside full scans: p50 %.3f s, p95 %.3f s, max %.3f s\n", t[int(NR*0.5)+1], t[int(NR*0.95)], t[NR]}'
code=$(timeout 5 curl -s -o /dev/null -w '%{http_code}' "$url/healthz")
[ "$code" = 200 ] && ok || fail "healthz while scans queue: $code"
[ "$(stat_of 'd["server"]["admission"]["lookup"]["admitted"] >= 32 and d["server"]["admission"]["scan"]["rejected"] == 1 and d["server"]["admission"]["scan"]["queued"] == 2')" = True ] &&
  ok || fail "admission counters: $(curl -s "$url/stats")"
curl -s "$url/metrics" | has '^rewind_admission_rejected_total{class="scan"} 1$' && ok || fail "metrics per class"
kill "${slow[@]}" 2>/dev/null; wait "${slow[@]}" 2>/dev/null
for _ in $(seq 50); do
  [ "$(stat_of 'd["server"]["queries_running"]')" = 0 ] && break
  sleep 0.1
done
[ "$(stat_of 'd["server"]["queries_running"] + d["server"]["admission"]["scan"]["waiting"]')" = 0 ] && ok ||
  fail "slots not given back: $(curl -s "$url/stats")"
kill "$server_pid"; wait "$server_pid" 2>/dev/null

# 2. 1,000 `port` terms: answered within the timeout, equal to the same set as one portrange; a query whose
#    terms cannot be split (all after `vlan`) is refused with 400 and a reason.
start_server
terms=$(python3 -c 'print(" or ".join("port %d" % p for p in range(1, 1001)))')
"$REWIND" query --dir "$store" 'portrange 1-1000' > "$work/range.pcap"
# Sent as text/plain: Debian's compiled cpp-httplib refuses form-encoded bodies (curl -d's default) above
# 8 KiB with 413 before the server sees them.
code=$(timeout 300 curl -s -o "$work/terms.pcap" -w '%{http_code}' -H 'Content-Type: text/plain' --data-binary "$terms" "$url/query")
[ "$code" = 200 ] && [ -s "$work/range.pcap" ] && cmp -s "$work/range.pcap" "$work/terms.pcap" && ok ||
  fail "1,000-term query over HTTP: $code, $(stat -c %s "$work/terms.pcap") bytes, want $(stat -c %s "$work/range.pcap")"
timeout 300 "$REWIND" query --dir "$store" "$terms" | cmp -s - "$work/range.pcap" && ok || fail "1,000-term query, CLI"
vlan_terms="vlan and ($(python3 -c 'print(" or ".join("port %d" % p for p in range(1, 101)))'))"
body=$(timeout 60 curl -s -w ' %{http_code}' --data-binary "$vlan_terms" "$url/query")
echo "$body" | has '"error":"at position 0: too many terms after a vlan' && echo "$body" | has ' 400$' && ok ||
  fail "unsplittable large query: ${body:0:300}"
kill "$server_pid"; wait "$server_pid" 2>/dev/null

# 3. Slow and silent clients: each holds a thread only until its request deadline, so /healthz and queries
#    are answered while they keep coming, and the server closes them itself.
cat > "$work/slowloris.py" <<'EOF'
import socket, sys, time
host, port, count, mode, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], float(sys.argv[5])
conns = []
for _ in range(count):
    s = socket.create_connection((host, port))
    s.setblocking(False)
    conns.append(s)
request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 4000 + b"\r\n\r\n"
if mode == "body":  # the headers whole at once, then the body a byte at a time
    request = b" " * 4000
    for s in conns:
        s.send(b"POST /query HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(request))
start, sent, closed = time.time(), 0, set()
while time.time() - start < seconds and len(closed) < count:
    for i, s in enumerate(conns):
        if i in closed:
            continue
        try:
            if s.recv(4096) == b"":
                closed.add(i)
                continue
        except BlockingIOError:
            pass
        except OSError:
            closed.add(i)
            continue
        if mode in ("trickle", "body") and sent < len(request):
            try:
                s.send(request[sent:sent + 1])
            except OSError:
                closed.add(i)
    sent += 1
    time.sleep(0.25)
print(len(closed), round(time.time() - start, 1))
EOF
start_server --request_timeout_sec 2 --idle_timeout_sec 2
port=${url##*:}
# 16 trickling connections: /healthz and a query are answered at once.
python3 "$work/slowloris.py" 127.0.0.1 "$port" 16 trickle 30 > "$work/trickle16" &
pids+=($!)
sleep 1
code=$(timeout 5 curl -s -o /dev/null -w '%{http_code}' "$url/healthz")
[ "$code" = 200 ] && ok || fail "healthz beside 16 slowloris connections: $code"
code=$(timeout 5 curl -s -o /dev/null -w '%{http_code}' --data-binary "host ${hosts[0]}" "$url/query")
[ "$code" = 200 ] && ok || fail "lookup beside 16 slowloris connections: $code"
wait $!
read -r closed secs < "$work/trickle16"
[ "$closed" = 16 ] && ok || fail "the server closed $closed of 16 trickling connections within 30 s"
# The same with whole headers and a body sent a byte at a time: the deadline covers the body too.
python3 "$work/slowloris.py" 127.0.0.1 "$port" 16 body 30 > "$work/body16" &
pids+=($!)
sleep 1
code=$(timeout 5 curl -s -o /dev/null -w '%{http_code}' "$url/healthz")
[ "$code" = 200 ] && ok || fail "healthz beside 16 connections trickling a body: $code"
wait $!
read -r closed secs < "$work/body16"
[ "$closed" = 16 ] && ok || fail "the server closed $closed of 16 connections trickling a body within 30 s"
# More silent connections than the server has threads: each is dropped at its deadline, so /healthz still
# gets through.
threads=$(( 32 + 64 + 2 + 64 + 32 ))
python3 "$work/slowloris.py" 127.0.0.1 "$port" $((threads + 50)) silent 30 > "$work/silent" &
flood=$!
pids+=($flood)
sleep 1
code=$(timeout 15 curl -s -o /dev/null -w '%{http_code}' "$url/healthz")
[ "$code" = 200 ] && ok || fail "healthz beside $((threads + 50)) silent connections: $code"
wait $flood
read -r closed secs < "$work/silent"
[ "$closed" = $((threads + 50)) ] && ok || fail "the server closed $closed of $((threads + 50)) silent connections"
kill "$server_pid"; wait "$server_pid" 2>/dev/null

echo "admission_test: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
