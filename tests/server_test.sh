#!/usr/bin/env bash
# The HTTP server end to end over loopback with curl and the rewind client: answers equal the local
# query's, every error path, a client hanging up mid-answer, 32 concurrent queries.
# usage: server_test.sh PATH/TO/rewind PATH/TO/shared/pcaps
set -uo pipefail
REWIND=$(readlink -f "${1:?rewind binary}")
PCAPS=$(readlink -f "${2:?shared pcaps dir}")
export PCAPS
ROOT=$(dirname "$(readlink -f "$0")")/..
command -v curl >/dev/null || { echo "SKIP: curl not installed"; exit 77; }
work=$(mktemp -d -p "${TMPDIR:-/tmp}" rewind-server-test.XXXXXX)
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

# Asks for the whole store and reads the answer slowly through a 4 KiB receive buffer for $2 seconds after
# its first bytes (printing "reading" then), then hangs up: the answer (~20 MB) cannot all sit in socket buffers, whatever the
# machine's tcp_rmem (curl --limit-rate alone can be outrun by receive-buffer autotuning).
slow_reader() {  # url seconds
  python3 - "$1" "$2" <<'PY'
import socket, sys, time, urllib.parse
url = urllib.parse.urlparse(sys.argv[1])
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect((url.hostname, url.port))
s.sendall(b"POST /query HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
s.recv(1)
print("reading", flush=True)
end = time.time() + float(sys.argv[2])
while time.time() < end and s.recv(512):
    time.sleep(0.05)
s.close()
PY
}

start_server() {  # extra flags...; sets url, server_pid, log
  log=$work/server.$RANDOM.log
  "$REWIND" serve --dir "$store" --listen 127.0.0.1:0 "$@" 2>"$log" &
  server_pid=$!
  pids+=("$server_pid")
  for _ in $(seq 50); do grep -q "rewind serve: http" "$log" && break; sleep 0.1; done
  url=$(sed -n 's/.*rewind serve: \(https\?:\/\/[^ ]*\)\/ .*/\1/p' "$log")
  [ -n "$url" ] || { echo "FAIL: server did not start: $(cat "$log")"; exit 1; }
}

start_server --max_scans 32
queries=("" "tcp" "udp and port 53" "host 192.168.1.1 or net 10.0.0.0/8" "icmp or arp" "vlan" "not ip"
         "tcp[tcpflags] & tcp-syn != 0" "ip6 and udp")

# 1. POST /query, GET /query and `rewind query --server` give the local answer, byte for byte.
for q in "${queries[@]}"; do
  "$REWIND" query --dir "$store" "$q" > "$work/local.pcap"
  curl -s --data-binary "$q" "$url/query" > "$work/post.pcap"
  cmp -s "$work/local.pcap" "$work/post.pcap" && ok || fail "POST '$q' differs from the local answer"
  curl -s -G --data-urlencode "q=$q" "$url/query" > "$work/get.pcap"
  cmp -s "$work/local.pcap" "$work/get.pcap" && ok || fail "GET '$q' differs"
  "$REWIND" query --server "$url" "$q" > "$work/client.pcap"
  cmp -s "$work/local.pcap" "$work/client.pcap" && ok || fail "rewind query --server '$q' differs"
done
"$REWIND" query --dir "$store" --limit 5 --nanos tcp > "$work/local.pcap"
curl -s --data-binary tcp "$url/query?limit=5&nanos=1" | cmp -s - "$work/local.pcap" && ok || fail "limit/nanos parameters"
code=$(curl -s -o /dev/null -w '%{http_code}' --data-binary tcp "$url/query?limit=-1")
[ "$code" = 400 ] && ok || fail "limit=-1 answered $code"
# Stenographer's limit headers: the first N packets; the packets whose captured bytes fit in N (the answer
# ends cleanly before the one that would pass it). The CLI's first 5 tcp packets are the reference.
"$REWIND" query --dir "$store" --limit 5 tcp > "$work/local.pcap"
curl -s -H 'Steno-Limit-Packets: 2' --data-binary tcp "$url/query" > "$work/steno2.pcap"
"$REWIND" query --dir "$store" --limit 2 tcp | cmp -s - "$work/steno2.pcap" && ok || fail "Steno-Limit-Packets: 2"
three=$(python3 -c 'import struct, sys
d = open(sys.argv[1], "rb").read(); pos, total = 24, 0
for _ in range(3):
    caplen = struct.unpack_from("<I", d, pos + 8)[0]; total += caplen; pos += 16 + caplen
print(total)' "$work/local.pcap")
n=$(curl -s -H "Steno-Limit-Bytes: $((three - 1))" --data-binary tcp "$url/query" | tcpdump -r - 2>/dev/null | wc -l)
m=$(curl -s -H "Steno-Limit-Bytes: $three" --data-binary tcp "$url/query" | tcpdump -r - 2>/dev/null | wc -l)
[ "$n" = 2 ] && [ "$m" = 3 ] && ok || fail "Steno-Limit-Bytes: $n packets under the first three's bytes, $m at them"
curl -s "$url/debug/stats" | python3 -c 'import json,sys; assert json.load(sys.stdin)["store"]["packets"] > 0' && ok ||
  fail "/debug/stats"
# Errors cpp-httplib answers itself are JSON too: an unknown path, a form-encoded body over its 8 KiB limit.
body=$(curl -s -w ' %{http_code}' "$url/nope")
echo "$body" | has '^{"error":"no such page.*} 404$' && ok || fail "404: $body"
big=$(python3 -c "print('port 1 or ' * 1000 + 'port 2')")
body=$(curl -s -w ' %{http_code}' --data-binary "$big" "$url/query")
echo "$body" | has "^{\"error\":\"request too large.*Content-Type: text/plain.*} 413$" && ok || fail "413: $body"
# Range is not honoured on /query (a pcap cut at a byte offset is no pcap): the whole answer, 200.
code=$(curl -s -r 0-10 -o "$work/range.pcap" -w '%{http_code}' --data-binary tcp "$url/query")
[ "$code" = 200 ] && cmp -s "$work/range.pcap" <("$REWIND" query --dir "$store" tcp) && ok || fail "Range: $code"
# A body framed two ways (request smuggling behind a proxy) is refused with 400 and the connection ends; the
# same request framed once is answered.
raw() {  # port, request with \n (backslash, n) for line ends -> what the server sent before closing (or "<open>" after 10 s)
  python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1]))); s.sendall(sys.argv[2].replace("\\n", "\r\n").encode())
s.settimeout(10); d = b""; tail = ""
try:
    while True:
        x = s.recv(65536)
        if not x: break
        d += x
except socket.timeout:
    tail = "<open>"
sys.stdout.write(d[:300].decode("latin-1") + tail)' "$1" "$2"
}
port=${url##*:}
for req in 'POST /query HTTP/1.1\nHost: a\nContent-Length: 8\nTransfer-Encoding: chunked\n\n3\ntcp\n0\n\n' \
           'POST /query HTTP/1.1\nHost: a\nContent-Length: 3\nContent-Length: 4\n\ntcp ' \
           'POST /query HTTP/1.1\nHost: a\nTransfer-Encoding: gzip, chunked\n\n3\ntcp\n0\n\n'; do
  got=$(raw "$port" "$req")
  echo "$got" | has '^HTTP/1.1 400' && echo "$got" | has 'framed ambiguously' && ! echo "$got" | has '<open>' && ok ||
    fail "ambiguous framing: $(echo "$got" | head -c 150)"
done
got=$(raw "$port" 'POST /query HTTP/1.1\nHost: a\nTransfer-Encoding: chunked\nConnection: close\n\n6\nport 1\n0\n\n')
echo "$got" | has '^HTTP/1.1 200' && ok || fail "chunked request body: $(echo "$got" | head -c 150)"
magic=$(curl -s --data-binary tcp "$url/query?format=pcapng" | head -c 4 | od -An -tx1 | tr -d ' \n')
[ "$magic" = "0a0d0d0a" ] && ok || fail "format=pcapng gave magic $magic"
ctype=$(curl -s -o /dev/null -w '%{content_type}' --data-binary tcp "$url/query")
[ "$ctype" = "application/vnd.tcpdump.pcap" ] && ok || fail "content type $ctype"
# rewind-read pipes into tcpdump like stenoread.
n=$(REWIND_URL=$url REWIND_BIN=$REWIND "$ROOT/scripts/rewind-read" 'tcp' -nn 2>/dev/null | wc -l)
want=$("$REWIND" query --dir "$store" tcp | tcpdump -nr - 2>/dev/null | wc -l)
[ "$want" -gt 0 ] && [ "$n" -eq "$want" ] && ok || fail "rewind-read printed $n lines, want $want"

# 2. Errors: malformed query 400 with position, oversize 413, bad parameter 400.
body=$(curl -s -w ' %{http_code}' --data-binary 'host 10.0.0.1 and (port 80' "$url/query")
echo "$body" | has '"position":18' && echo "$body" | has ' 400$' && ok || fail "bad query: $body"
head -c 70000 /dev/zero | tr '\0' 'a' > "$work/big"
code=$(curl -s -o /dev/null -w '%{http_code}' --data-binary @"$work/big" "$url/query")
[ "$code" = "413" ] && ok || fail "oversize request: $code"
code=$(curl -s -o /dev/null -w '%{http_code}' --data-binary tcp "$url/query?format=xml")
[ "$code" = "400" ] && ok || fail "bad format parameter: $code"
# A Range cannot be served from an answer made as it is sent: refused, never a whole answer labelled 206.
code=$(curl -s -o /dev/null -w '%{http_code}' -r 1000- "$url/query?q=tcp")
[ "$code" = "416" ] && ok || fail "Range on a query: $code"
code=$(curl -s -o /dev/null -w '%{http_code}' "$url/preview?q=tcp&scan=0")
[ "$code" = "400" ] && ok || fail "preview with scan=0: $code"
# A time limit past what a 64-bit nanosecond deadline holds is refused (it would have cut every query at once).
"$REWIND" serve --dir "$work" --listen 127.0.0.1:1 --query_time_limit_sec 10000000000 2>"$work/tl.err"; rc=$?
[ $rc -eq 2 ] && grep -q "query_time_limit_sec must be at most" "$work/tl.err" && ok || fail "huge time limit: rc=$rc $(cat "$work/tl.err")"
"$REWIND" query --server "$url" 'port 99999' >/dev/null 2>"$work/err"; rc=$?
[ $rc -eq 2 ] && grep -q "position" "$work/err" && ok || fail "client exit $rc for a bad query: $(cat "$work/err")"
code=$(curl -s -o "$work/h" -w '%{http_code}' "$url/healthz")
[ "$code" = "200" ] && ok || fail "healthz $code"
curl -s "$url/stats" | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["store"]["packets"] > 0 and "disk" in d' && ok ||
  fail "stats JSON"
curl -s "$url/metrics" | has '^rewind_store_packets [1-9]' && ok || fail "metrics"
curl -s "$url/metrics" | has '^rewind_build_info{version="[0-9.]*"} 1$' && ok || fail "metrics: build info"

# 3. 32 concurrent queries, each answered correctly.
mapfile -t hosts < <("$REWIND" query --dir "$store" 'ip' | tcpdump -nr - 2>/dev/null | awk '$2 == "IP" {print $3}' |
                     cut -d. -f1-4 | sort -u | head -32)
for i in "${!hosts[@]}"; do "$REWIND" query --dir "$store" "host ${hosts[$i]}" > "$work/want.$i"; done
curls=()
for i in "${!hosts[@]}"; do curl -s --data-binary "host ${hosts[$i]}" "$url/query" > "$work/got.$i" & curls+=($!); done
[ ${#curls[@]} -gt 0 ] && wait "${curls[@]}"
bad=0
for i in "${!hosts[@]}"; do cmp -s "$work/want.$i" "$work/got.$i" || bad=$((bad + 1)); done
[ "${#hosts[@]}" -ge 16 ] && [ $bad -eq 0 ] && ok || fail "concurrent: $bad of ${#hosts[@]} answers differ"

# 4. A client that hangs up mid-answer: the server stops that query and frees its slot.
before=$(curl -s "$url/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["server"]["queries_cut_short"])')
slow_reader "$url" 0.5 > /dev/null
for _ in $(seq 30); do
  s=$(curl -s "$url/stats")
  running=$(echo "$s" | python3 -c 'import json,sys; print(json.load(sys.stdin)["server"]["queries_running"])')
  [ "$running" -eq 0 ] && break
  sleep 0.1
done
cut=$(echo "$s" | python3 -c 'import json,sys; print(json.load(sys.stdin)["server"]["queries_cut_short"])')
[ "$running" -eq 0 ] && [ "$cut" -gt "$before" ] && ok || fail "hang-up: running=$running cut_short=$cut (before $before)"
kill "$server_pid"; wait "$server_pid" 2>/dev/null

# 5. Past the bound: 429 with Retry-After (one scan running, none may wait; a lookup still gets through).
start_server --max_scans 1 --scan_queue 0
slow_reader "$url" 120 > "$work/slow.out" &  # holds its slot until the server stops (a loaded machine may
slow=$!                                      # take seconds between any two steps below)
for _ in $(seq 600); do has reading "$work/slow.out" && break; sleep 0.1; done
has reading "$work/slow.out" || fail "the slow client got no answer within 60 s"
hdr=$(curl -s -D - -o /dev/null --data-binary 'not tcp' "$url/query")
echo "$hdr" | has "^HTTP/1.1 429" && echo "$hdr" | grep -qi "^Retry-After: [0-9]" && ok || fail "429: $hdr"
code=$(curl -s -o /dev/null -w '%{http_code}' --data-binary "host ${hosts[0]}" "$url/query")
[ "$code" = "200" ] && ok || fail "a lookup behind a full scan queue got $code"
kill $slow 2>/dev/null; wait $slow 2>/dev/null
kill "$server_pid"; wait "$server_pid" 2>/dev/null

# 5b. Optional per-query limits cut an answer off visibly: the chunked body ends without its last chunk, so
#     the client sees an incomplete transfer (curl exit 18), never a silently short pcap. What did arrive is
#     whole packets: the start of the full answer, none past the limit. A client that reads trailers (TE:
#     trailers) gets the last chunk and the reason in a Rewind-Result trailer.
start_server --query_byte_limit 100000
curl -s --data-binary '' "$url/query" -o "$work/full.pcap"; rc_full=$?
[ $rc_full -eq 18 ] && ok || fail "byte limit: curl exit $rc_full"
"$REWIND" query --dir "$store" "" > "$work/local-all.pcap"
size=$(stat -c %s "$work/full.pcap")
caplen_sum() { python3 - "$1" <<'PY'
import struct, sys
d = open(sys.argv[1], "rb").read(); o = 24; t = 0
while o + 16 <= len(d):
    n = struct.unpack_from("<I", d, o + 8)[0]; t += n; o += 16 + n
assert o == len(d), "a partial record"
print(t)
PY
}
if [ "$size" -gt 24 ] && cmp -s -n "$size" "$work/full.pcap" "$work/local-all.pcap"; then ok; else fail "cut answer ($size bytes) is not the start of the full answer"; fi
captured=$(caplen_sum "$work/full.pcap") && [ "$captured" -le 100000 ] && [ "$captured" -gt 50000 ] && ok ||
  fail "cut answer holds $captured captured bytes, want whole packets up to 100000"
curl -s -H 'TE: trailers' -D "$work/trailer.hdr" --data-binary '' "$url/query" -o "$work/trailer.pcap"; rc=$?
[ $rc -eq 0 ] && cmp -s "$work/trailer.pcap" "$work/full.pcap" && ok || fail "with trailers: curl exit $rc or a different answer"
has -i "^Rewind-Result: cut-short; query size limit reached" "$work/trailer.hdr" && ok || fail "trailer: $(cat "$work/trailer.hdr")"
curl -s -H 'TE: trailers' -D "$work/complete.hdr" --data-binary 'host 192.168.1.1' "$url/query" -o /dev/null
has -i "^Rewind-Result: complete" "$work/complete.hdr" && ok || fail "complete trailer: $(cat "$work/complete.hdr")"
curl -s "$url/stats" | python3 -c 'import json,sys; assert json.load(sys.stdin)["server"]["queries_cut_short"] == 2' && ok ||
  fail "byte-limited queries not counted as cut short"
kill "$server_pid"; wait "$server_pid" 2>/dev/null

# 6. Bearer token.
echo "s3cret-token" > "$work/token"
start_server --token_file "$work/token"
code=$(curl -s -o /dev/null -w '%{http_code}' --data-binary tcp "$url/query")
[ "$code" = "401" ] && ok || fail "no token: $code"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer wrong" --data-binary tcp "$url/query")
[ "$code" = "401" ] && ok || fail "wrong token: $code"
"$REWIND" query --dir "$store" tcp > "$work/local.pcap"
curl -s -H "Authorization: Bearer s3cret-token" --data-binary tcp "$url/query" | cmp -s - "$work/local.pcap" && ok || fail "right token"
"$REWIND" query --server "$url" --token_file "$work/token" tcp | cmp -s - "$work/local.pcap" && ok || fail "client with token"
kill "$server_pid"; wait "$server_pid" 2>/dev/null

# 7. Mutual TLS: no client certificate, no answer; with one, the right answer.
if command -v openssl >/dev/null; then
  bash "$ROOT/scripts/make-certs.sh" "$work/certs" >/dev/null
  start_server --tls_cert "$work/certs/server.pem" --tls_key "$work/certs/server.key" --tls_client_ca "$work/certs/ca.pem"
  url=${url/127.0.0.1/localhost}
  curl -s --cacert "$work/certs/ca.pem" --data-binary tcp "$url/query" -o /dev/null; rc=$?
  [ $rc -ne 0 ] && ok || fail "TLS without a client certificate was answered"
  curl -s --cacert "$work/certs/ca.pem" --cert "$work/certs/client.pem" --key "$work/certs/client.key" \
    --data-binary tcp "$url/query" | cmp -s - "$work/local.pcap" && ok || fail "TLS with a client certificate"
  # The audit line of that query: who (address, certificate subject), what, and how it ended.
  n=$("$REWIND" query --dir "$store" --stats tcp 2>&1 >/dev/null | sed -n 's/^matched \([0-9]*\) packets.*/\1/p')
  for _ in $(seq 50); do grep -q 'query from .* "tcp": 200' "$log" && break; sleep 0.1; done
  grep -qE "Z info rewind serve: query from 127\.0\.0\.1:[0-9]+ cert /CN=rewind-client \"tcp\": 200, $n packets, [0-9]+ bytes, [0-9.]+ s" "$log" &&
    ok || fail "audit line: $(grep 'query from' "$log")"
  "$REWIND" query --server "$url" --ca "$work/certs/ca.pem" --cert "$work/certs/client.pem" --key "$work/certs/client.key" tcp |
    cmp -s - "$work/local.pcap" && ok || fail "rewind query --server over mutual TLS"
  err=$("$REWIND" query --server "$url" --ca "$work/certs/ca.pem" tcp 2>&1 > /dev/null) && fail "client without certificate succeeded" ||
    { echo "$err" | has "may want a client certificate" && ok || fail "no client certificate, unclear error: $err"; }
  # The server's certificate is checked by default (this CA is not the system's): refused without --ca, with
  # a plain reason; --insecure is the explicit way out and says so.
  err=$("$REWIND" query --server "$url" --cert "$work/certs/client.pem" --key "$work/certs/client.key" tcp 2>&1 > /dev/null) &&
    fail "an unverifiable server certificate was accepted" ||
    { echo "$err" | has "certificate could not be verified" && ok || fail "unverifiable server, unclear error: $err"; }
  err=$("$REWIND" query --server "$url" --insecure --cert "$work/certs/client.pem" --key "$work/certs/client.key" tcp \
          2>&1 > "$work/insecure.pcap")
  cmp -s "$work/insecure.pcap" "$work/local.pcap" && echo "$err" | has "is not checked" && ok || fail "--insecure: $err"
  # Session resumption with client certificates: one curl, four connections (each closed after its answer);
  # without a session id context OpenSSL refuses the resumed ones.
  codes=$(curl -s -H 'Connection: close' --cacert "$work/certs/ca.pem" --cert "$work/certs/client.pem" \
            --key "$work/certs/client.key" -w '%{http_code} ' -o /dev/null -o /dev/null -o /dev/null -o /dev/null \
            "$url/healthz" "$url/healthz" "$url/healthz" "$url/healthz")
  [ "$codes" = "200 200 200 200 " ] && ok || fail "resumed TLS sessions with client certificates: $codes"
  # Keep-alive over TLS: answers (whose records are gathered into large writes) and a page after them, all on
  # one connection, each answer whole.
  out=$(curl -s --max-time 60 --cacert "$work/certs/ca.pem" --cert "$work/certs/client.pem" --key "$work/certs/client.key" \
          -w '%{num_connects}:%{http_code} ' -o "$work/ka1.pcap" -o /dev/null -o "$work/ka2.pcap" \
          "$url/query?q=tcp" "$url/healthz" "$url/query?q=tcp")
  [ "$out" = "1:200 0:200 0:200 " ] && cmp -s "$work/ka1.pcap" "$work/local.pcap" && cmp -s "$work/ka2.pcap" "$work/local.pcap" &&
    ok || fail "answers over one kept-alive TLS connection: $out"
  kill "$server_pid"; wait "$server_pid" 2>/dev/null
fi

# 8. A bearer token never goes out in clear text to another host (checked in a network namespace of its own,
#    so that nothing could leave this machine even if the check failed).
if unshare -n true 2>/dev/null; then
  err=$(unshare -n "$REWIND" query --server http://192.0.2.1:9123 --token_file "$work/token" tcp 2>&1 > /dev/null) &&
    fail "a token was sent over plain HTTP" ||
    { echo "$err" | has "refusing to send the bearer token in clear text" && ok || fail "token over HTTP: $err"; }
fi

echo "server_test: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
