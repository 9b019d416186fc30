#!/usr/bin/env bash
# Retention on a tiny file system (a tmpfs of a few MiB, mounted in a private mount namespace) while import
# and live capture keep writing into it; live capture runs inside a network namespace this test creates
# (veth pair v0 -> v1, tcpreplay; traffic only there). Checks: the limit holds, nothing crashes, every query
# answer equals tcpdump's over the packets that remain, a query whose files are pruned while it runs returns
# a valid pcap and either its full answer or a clear "answer cut short", and with retention off a full disk
# fails import cleanly and leaves capture alive, counting write_drops, until space returns.
# usage: retention_test.sh PATH/TO/rewind PATH/TO/shared/pcaps
set -uo pipefail
REWIND=$(readlink -f "${1:?rewind binary}")
PCAPS=$(readlink -f "${2:?shared pcaps dir}")
if [ -z "${REWIND_IN_NETNS:-}" ]; then
  for t in tcpreplay tcpdump python3 unshare curl; do
    command -v $t >/dev/null || { echo "SKIP: $t not installed"; exit 77; }
  done
  unshare -n -m true 2>/dev/null || { echo "SKIP: this machine refuses network/mount namespaces (unshare -n -m)"; exit 77; }
  REWIND_IN_NETNS=1 exec unshare -n -m bash "$0" "$@"
fi
ip link set lo up
ip link add v0 type veth peer name v1 || { echo "SKIP: cannot create a veth pair"; exit 77; }
for i in v0 v1; do
  sysctl -qw net.ipv6.conf.$i.disable_ipv6=1
  ip link set $i mtu 9500
  ip link set $i up
done
work=$(mktemp -d -p "${TMPDIR:-/tmp}" rewind-retention-test.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  for m in "$work"/m*; do umount -l "$m" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT
mkdir "$work/m0"
mount -t tmpfs -o size=1m tmpfs "$work/m0" 2>/dev/null || { echo "SKIP: cannot mount a tmpfs here"; exit 77; }
umount "$work/m0"
passed=0 failed=0
ok() { passed=$((passed + 1)); }
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }
# grep that reads all its input: with pipefail, grep -q exiting at the first match can fail the writer.
has() { grep "$@" > /dev/null; }
tables() { find "$1" -maxdepth 1 -name "[0-9]*" | wc -l; }   # index tables (not FILTERS)
MiB=1048576

# A tmpfs of the given size at $work/NAME.
tiny_fs() { mkdir -p "$work/$1" && mount -t tmpfs -o "size=$2" tmpfs "$work/$1"; }
# Disk usage of a store's packet files and index tables (what --max_store_mb limits), and of the whole
# directory as du counts it.
usage() { find "$1" -mindepth 2 -maxdepth 2 \( -path "$1/PKT*/*" -o -path "$1/IDX*/*" \) -type f -printf '%b\n' |
          awk '{s += $1 * 512} END {print s + 0}'; }
du_bytes() { du -s -B1 "$1" | cut -f1; }
# A JSON field of a one-line JSON document.
field() { python3 -c 'import json, sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$2" "$1"; }
stored_packets() { field packets "$("$REWIND" stats --dir "$1" --json 2>/dev/null)"; }
pcap_packets() { tcpdump -r "$1" 2>/dev/null | wc -l; }
# Whether a file is a whole, readable pcap (tcpdump complains about a truncated record).
valid_pcap() { local e; e=$(tcpdump -r "$1" -w /dev/null 2>&1); [ $? -eq 0 ] && ! grep -qi "truncated\|bogus" <<<"$e"; }

# Every query over what the store holds now equals tcpdump's answer over the same packets.
exact_for_what_remains() {  # store label
  local s=$1 label=$2 all="$work/all.pcap"
  "$REWIND" query --dir "$s" --exact '' > "$all" 2>"$work/all.err" || { fail "$label: query '' failed: $(cat "$work/all.err")"; return; }
  [ "$(pcap_packets "$all")" -eq "$(stored_packets "$s")" ] && ok ||
    fail "$label: query '' returned $(pcap_packets "$all") packets, the store's indexes say $(stored_packets "$s")"
  local e
  for e in 'tcp' 'udp port 53' 'host 192.168.2.126' 'tcp[tcpflags] & tcp-syn != 0' 'not ip' 'udp and not port 53'; do
    "$REWIND" query --dir "$s" --exact "$e" 2>/dev/null | tcpdump -nn -tt -r - 2>/dev/null > "$work/got.txt"
    tcpdump -nn -tt -r "$all" "$e" 2>/dev/null > "$work/want.txt"
    cmp -s "$work/got.txt" "$work/want.txt" && ok ||
      fail "$label: '$e': $(wc -l < "$work/got.txt") packets, tcpdump over what remains: $(wc -l < "$work/want.txt")"
  done
}

# Queries the store over and over until $work/stop.$1 exists; each answer must be a valid pcap, the query
# must exit 0, and the only warnings allowed say the answer was cut short. Tallies go to $work/ql.$1.
query_loop() {  # tag store
  local tag=$1 s=$2 n=0 cut=0 bad=0
  while [ ! -f "$work/stop.$tag" ]; do
    "$REWIND" query --dir "$s" '' > "$work/ql.$tag.pcap" 2> "$work/ql.$tag.err"; local rc=$?
    n=$((n + 1))
    grep -q "answer cut short" "$work/ql.$tag.err" && cut=$((cut + 1))
    if [ $rc -ne 0 ] || ! valid_pcap "$work/ql.$tag.pcap" ||
       grep -v "answer cut short" "$work/ql.$tag.err" | has .; then
      bad=$((bad + 1)); echo "query $n: rc=$rc $(head -3 "$work/ql.$tag.err")" >> "$work/ql.$tag.log"
    fi
  done
  echo "$n $cut $bad" > "$work/ql.$tag"
}
stop_query_loop() {  # tag label
  touch "$work/stop.$1"; wait "$qpid"
  local n cut bad; read -r n cut bad < "$work/ql.$1"
  [ "$n" -gt 0 ] && [ "$bad" -eq 0 ] && ok || fail "$2: $bad of $n concurrent queries went wrong: $(head -5 "$work/ql.$1.log" 2>/dev/null)"
  echo "  $2: $n concurrent queries, $cut cut short"
}

A=$PCAPS/ndpi/1kxun.pcap B=$PCAPS/ndpi/netflix.pcap C=$PCAPS/ndpi/teams.pcap D=$PCAPS/ndpi/reddit.pcap
E=$PCAPS/suricata/dhcp-request-flood.pcap IKE=$PCAPS/arkime/IKEv2.pcap

# 1. Import keeps writing into a 12 MiB tmpfs while `rewind prune --max_store_mb 6` runs after every import
#    and queries run all the time: the limit holds after every prune, imports never hit the disk's end.
tiny_fs m1 12m
s1=$work/m1/s
mkdir -p "$s1"
query_loop 1 "$s1" & qpid=$!; pids+=($qpid)
worst=0
for round in $(seq 12); do
  in=$(for f in "$A" "$B" "$C" "$D"; do echo "$f"; done | sed -n "$(( (round - 1) % 4 + 1 ))p")
  "$REWIND" import --dir "$s1" --filesize_mb 1 -q "$in" 2>"$work/imp.err" || fail "import round $round: $(cat "$work/imp.err")"
  "$REWIND" prune --dir "$s1" --max_store_mb 6 -q 2>"$work/prune.err" || fail "prune round $round: $(cat "$work/prune.err")"
  u=$(usage "$s1"); [ "$u" -gt "$worst" ] && worst=$u
  [ "$u" -le $((6 * MiB)) ] || fail "round $round: the store uses $u bytes after prune (limit $((6 * MiB)))"
  [ "$(du_bytes "$s1")" -le $((6 * MiB + 64 * 1024)) ] || fail "round $round: du says $(du_bytes "$s1") bytes"
done
[ "$worst" -le $((6 * MiB)) ] && [ "$worst" -gt $((4 * MiB)) ] && ok || fail "import + prune: worst usage $worst"
stop_query_loop 1 "import + prune"
exact_for_what_remains "$s1" "import + prune"
[ "$(field unindexed_files "$("$REWIND" stats --dir "$s1" --json)")" -eq 0 ] && ok || fail "import + prune left unindexed files"

# 2. A query running while its files are pruned: it holds its output (a reader that stops reading) while
#    `rewind prune --max_files 1` removes all but the newest file, then finishes. Its answer is a valid pcap
#    and either the full answer or, with "answer cut short", the full answer minus whole removed files —
#    never a packet that was not in the store, never a packet of a file that remains missing.
s2=$work/s2
"$REWIND" import --dir "$s2" --filesize_mb 1 -q "$A" "$E" "$B" "$C" "$D" 2>/dev/null
files2=$(tables "$s2/IDX0")
"$REWIND" query --dir "$s2" '' > "$work/full.pcap"
( "$REWIND" query --dir "$s2" '' 2> "$work/slow.err"; echo $? > "$work/slow.rc" ) |
  python3 -c '
import os, sys, time
first = sys.stdin.buffer.read(4096)
open(sys.argv[1] + ".started", "w").close()
while not os.path.exists(sys.argv[1] + ".go"): time.sleep(0.05)
sys.stdout.buffer.write(first + sys.stdin.buffer.read())' "$work/slow" > "$work/slow.pcap" &
slow=$!; pids+=($slow)
for _ in $(seq 100); do [ -f "$work/slow.started" ] && break; sleep 0.05; done
sleep 0.5   # the query fills the pipe and blocks mid-answer
"$REWIND" prune --dir "$s2" --max_files 1 -q || fail "prune under a running query"
"$REWIND" query --dir "$s2" '' > "$work/remains.pcap"
touch "$work/slow.go"; wait "$slow"
[ "$(cat "$work/slow.rc")" -eq 0 ] && ok || fail "the pruned query exited $(cat "$work/slow.rc"): $(cat "$work/slow.err")"
valid_pcap "$work/slow.pcap" && ok || fail "the pruned query's answer is not a valid pcap"
python3 - "$work/slow.pcap" "$work/full.pcap" "$work/remains.pcap" "$work/slow.err" <<'PY' && ok || fail "pruned query answer"
import struct, sys
def recs(p):
    d = open(p, 'rb').read(); off, out = 24, []
    while off + 16 <= len(d):
        s, us, c, l = struct.unpack('<IIII', d[off:off + 16]); out.append(d[off:off + 16 + c]); off += 16 + c
    return out
got, full, remains = recs(sys.argv[1]), recs(sys.argv[2]), recs(sys.argv[3])
cut = "answer cut short" in open(sys.argv[4]).read()
it = iter(full)
assert all(any(r == f for f in it) for r in got), "the answer holds a packet the store never had, or out of order"
missing = set(remains) - set(got)
assert not missing, f"{len(missing)} packets of the file that remained are missing"
assert cut or got == full, "no 'cut short' warning, yet not the full answer"
print(f"  running query: {len(got)} of {len(full)} packets, {len(remains)} in what remained, cut short: {cut}")
PY
grep -q "answer cut short: .* was removed (retention) while the query ran" "$work/slow.err" ||
  [ "$(pcap_packets "$work/slow.pcap")" -eq "$(pcap_packets "$work/full.pcap")" ] && ok ||
  fail "neither full nor cut short: $(cat "$work/slow.err")"
[ "$files2" -ge 4 ] && [ "$(tables "$s2/IDX0")" -eq 1 ] && ok || fail "prune --max_files 1 left $(tables "$s2/IDX0") of $files2"

# 2b. The same over HTTP, read by a client that takes trailers and stops reading mid-answer: the answer says
#     "complete" only if it is the full answer; a file removed under it makes it say "cut-short".
s2b=$work/s2b
"$REWIND" import --dir "$s2b" --filesize_mb 1 -q "$A" "$E" "$B" "$C" "$D" 2>/dev/null
full2b=$("$REWIND" query --dir "$s2b" '' 2>/dev/null | tcpdump -r - 2>/dev/null | wc -l)
"$REWIND" serve --dir "$s2b" --listen 127.0.0.1:19133 2>"$work/serve2b.log" & srv=$!; pids+=($srv)
for _ in $(seq 100); do curl -s -o /dev/null http://127.0.0.1:19133/healthz && break; sleep 0.05; done
python3 - "$work/slow2b" <<'PY' &
import os, socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(("127.0.0.1", 19133))
s.sendall(b"POST /query HTTP/1.1\r\nHost: x\r\nTE: trailers\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
data = s.recv(4096)
open(sys.argv[1] + ".started", "w").close()
while not os.path.exists(sys.argv[1] + ".go"): time.sleep(0.05)
while True:
    b = s.recv(65536)
    if not b: break
    data += b
open(sys.argv[1] + ".raw", "wb").write(data)
PY
client=$!
for _ in $(seq 100); do [ -f "$work/slow2b.started" ] && break; sleep 0.05; done
sleep 1   # the answer fills the socket buffers and the server blocks mid-answer
"$REWIND" prune --dir "$s2b" --max_files 1 -q || fail "prune under a running HTTP query"
touch "$work/slow2b.go"; wait $client
python3 - "$work/slow2b.raw" "$full2b" <<'PY' && ok || fail "HTTP answer with files pruned under it"
import struct, sys
raw, full = open(sys.argv[1], "rb").read(), int(sys.argv[2])
head, _, rest = raw.partition(b"\r\n\r\n")
body, trailer = b"", b""
while rest:
    line, _, rest = rest.partition(b"\r\n")
    n = int(line.split(b";")[0], 16)
    if n == 0:
        trailer = rest
        break
    body, rest = body + rest[:n], rest[n + 2:]
off, packets = 24, 0
while off + 16 <= len(body):
    off += 16 + struct.unpack("<I", body[off + 8:off + 12])[0]
    packets += 1
complete = b"Rewind-Result: complete" in trailer
print(f"  HTTP query with files pruned under it: {packets} of {full} packets, trailer {trailer.strip()!r}")
assert trailer, "no last chunk and trailer"
assert (complete and packets == full) or (b"cut-short" in trailer and packets < full), "a short answer said complete"
PY
kill -TERM $srv; wait $srv

# 3. Live capture with --max_store_mb 6 into a 16 MiB tmpfs while tcpreplay sends ~3 MB/s for ~12 s (far
#    more than fits) and queries run: the store stays near its limit (limit + what arrives in one retention
#    interval + the file being written), never fills the disk (no write_drops), and ends within it.
tiny_fs m3 16m
s3=$work/m3/s
"$REWIND" capture --iface v1 --dir "$s3" --blocks 16 --filesize_mb 1 --fileage_sec 1 --max_store_mb 6 \
  --retention_interval_sec 1 2>"$work/cap3.log" & cap=$!; pids+=($cap)
for _ in $(seq 50); do [ -f "$s3/capture0.json" ] && break; sleep 0.1; done
query_loop 3 "$s3" & qpid=$!; pids+=($qpid)
( for k in 1 2 3 4 5 6; do for f in "$A" "$B" "$C"; do tcpreplay -q -i v0 --mbps 24 "$f" >/dev/null 2>&1; done; done
  touch "$work/replayed" ) & rp=$!; pids+=($rp)
peak=0
while [ ! -f "$work/replayed" ]; do
  u=$(usage "$s3"); [ "$u" -gt "$peak" ] && peak=$u
  kill -0 $cap 2>/dev/null || break
  sleep 0.2
done
wait $rp
sleep 3.5   # the last file rotates (1 s + block timeout 1 s), then retention runs once more
u=$(usage "$s3")
stop_query_loop 3 "capture + retention"
kill -0 $cap 2>/dev/null && ok || fail "capture died: $(tail -5 "$work/cap3.log")"
kill -INT $cap; wait $cap; rc=$?
[ $rc -eq 0 ] && ok || fail "capture with retention exited $rc: $(tail -5 "$work/cap3.log")"
js=$(cat "$s3/capture0.json")
[ "$(field write_drops "$js")" -eq 0 ] && [ "$(field packets "$js")" -gt 10000 ] && ok || fail "capture counters: $js"
[ "$peak" -le $((10 * MiB)) ] && ok || fail "capture + retention: the store peaked at $peak bytes (limit 6 MiB + slack)"
[ "$u" -le $((6 * MiB)) ] && ok || fail "capture + retention: $u bytes once traffic stopped (limit $((6 * MiB)))"
grep -q "retention removed .* (1.0 MiB, max_bytes)" "$work/cap3.log" && ok || fail "no retention in the capture log"
echo "  capture + retention: peak $((peak / 1024)) KiB, after $((u / 1024)) KiB, $(field packets "$js") packets captured"
exact_for_what_remains "$s3" "capture + retention"

# 4. Retention off, disk full: import of more than fits fails cleanly ("no space"), keeps its completed
#    files queryable and leaves no debris.
tiny_fs m4 8m
s4=$work/m4/s
"$REWIND" import --dir "$s4" --filesize_mb 1 "$A" "$E" "$B" "$C" "$D" "$A" "$E" 2>"$work/imp4.err"; rc=$?
[ $rc -eq 1 ] && grep -q "no space" "$work/imp4.err" && grep -q "stopped at" "$work/imp4.err" && ok ||
  fail "import into a full disk: rc=$rc $(cat "$work/imp4.err")"
[ "$(field unindexed_files "$("$REWIND" stats --dir "$s4" --json)")" -eq 0 ] && ok || fail "a full disk left unindexed files"
[ -z "$(find "$s4" -name '[0-9]*' -size 0)" ] && ok || fail "empty packet files left: $(find "$s4" -name '[0-9]*' -size 0)"
[ "$(stored_packets "$s4")" -gt 0 ] && ok || fail "nothing kept"
exact_for_what_remains "$s4" "full disk import"

# 5. Retention off, disk full (to the last byte: a filler takes what import left): capture stays alive and
#    counts write_drops in capture0.json; when space returns (rewind prune) it stores and indexes packets
#    again.
"$REWIND" capture --iface v1 --dir "$s4" --blocks 16 --filesize_mb 1 --fileage_sec 1 2>"$work/cap5.log" & cap=$!
pids+=($cap)
for _ in $(seq 50); do [ -f "$s4/capture0.json" ] && break; sleep 0.1; done
dd if=/dev/zero of="$work/m4/filler" bs=4k 2>/dev/null
[ "$(df --output=avail -B1 "$work/m4" | tail -1)" -eq 0 ] || echo "  (the filler left $(df --output=avail -B1 "$work/m4" | tail -1) bytes)"
for k in 1 2; do tcpreplay -q -i v0 --mbps 24 "$A" >/dev/null 2>&1; done
sleep 2.5
js=$(cat "$s4/capture0.json")
kill -0 $cap 2>/dev/null && ok || fail "capture died on a full disk: $(tail -5 "$work/cap5.log")"
drops=$(field write_drops "$js")
[ "$drops" -gt 0 ] && ok || fail "no write_drops on a full disk: $js"
[ "$(grep -c "no space" "$work/cap5.log")" -le 8 ] && ok || fail "a full disk floods the log: $(grep -c "no space" "$work/cap5.log") lines"
"$REWIND" prune --dir "$s4" --max_store_mb 2 -q || fail "prune to make room"
sleep 0.5
tcpreplay -q -i v0 --mbps 24 "$IKE" >/dev/null 2>&1
sleep 3   # rotation (1 s) + block timeout (1 s)
js=$(cat "$s4/capture0.json")
[ "$(field write_drops "$js")" -eq "$drops" ] && ok || fail "still dropping after space came back: $js"
want=$(tcpdump -r "$IKE" 'udp port 500' 2>/dev/null | wc -l)
got=$("$REWIND" query --dir "$s4" 'udp port 500' 2>/dev/null | tcpdump -r - 2>/dev/null | wc -l)
[ "$got" -eq "$want" ] && ok || fail "after recovery: $got of $want packets queryable"
kill -INT $cap; wait $cap; rc=$?
[ $rc -le 1 ] && ok || fail "capture on a full disk ended with $rc: $(tail -5 "$work/cap5.log")"

# 5c. The same with files that rotate only by size (64 MiB, preallocated as far as the 8 MiB file system
#     allows, --fileage_sec 3600): a write the full disk refuses closes its file, so once space returns the
#     next blocks are stored at once, not after the file's age rotation (an hour); when the capture stops,
#     what the failed file held is indexed and no file is left unindexed.
tiny_fs m5c 8m
s5c=$work/m5c/s
"$REWIND" capture --iface v1 --dir "$s5c" --blocks 16 --filesize_mb 64 --fileage_sec 3600 2>"$work/cap5c.log" & cap=$!
pids+=($cap)
for _ in $(seq 50); do [ -f "$s5c/capture0.json" ] && break; sleep 0.1; done
sleep 0.2
tcpreplay -q -i v0 --mbps 24 "$IKE" >/dev/null 2>&1   # stored before the disk fills
sleep 1.5
dd if=/dev/zero of="$work/m5c/filler" bs=4k 2>/dev/null
for k in 1 2 3; do tcpreplay -q -i v0 --mbps 24 "$A" >/dev/null 2>&1; done
sleep 2.5
drops=$(field write_drops "$(cat "$s5c/capture0.json")")
[ "$drops" -gt 0 ] && ok || fail "5c: no write_drops on a full disk: $(cat "$s5c/capture0.json")"
rm -f "$work/m5c/filler"
sleep 1.5   # a new file is tried a second after a failed start
tcpreplay -q -i v0 --mbps 24 "$IKE" >/dev/null 2>&1
sleep 2.5
js=$(cat "$s5c/capture0.json")
[ "$(field write_drops "$js")" -eq "$drops" ] && ok || fail "5c: still dropping after space came back: $js"
kill -INT $cap; wait $cap
[ "$(grep -c "no space" "$work/cap5c.log")" -le 8 ] && ok || fail "5c: a full disk floods the log: $(grep -c "no space" "$work/cap5c.log") lines"
want=$(( 2 * $(tcpdump -r "$IKE" 'udp port 500' 2>/dev/null | wc -l) ))
got=$("$REWIND" query --dir "$s5c" 'udp port 500' 2>/dev/null | tcpdump -r - 2>/dev/null | wc -l)
[ "$got" -eq "$want" ] && ok || fail "5c: $got of $want packets from before and after the full disk queryable"
[ "$(field unindexed_files "$("$REWIND" stats --dir "$s5c" --json)")" -eq 0 ] && ok ||
  fail "5c: files left unindexed: $("$REWIND" stats --dir "$s5c" 2>&1 | head -5)"
exact_for_what_remains "$s5c" "after a full disk (files rotating by size)"

# 5b. A small file system: importing a 2.5 MB capture with the default file size (1 GiB, preallocated) into
#     an empty 16 MiB tmpfs stores every packet (preallocation takes at most half of what is free).
tiny_fs m-small 16m
"$REWIND" import --dir "$work/m-small/store" -q "$PCAPS/ndpi/1kxun.pcap" 2>"$work/small.err"; rc=$?
got=$("$REWIND" query --dir "$work/m-small/store" '' 2>/dev/null | tcpdump -r - 2>/dev/null | wc -l)
want=$(tcpdump -r "$PCAPS/ndpi/1kxun.pcap" 2>/dev/null | wc -l)
[ $rc -eq 0 ] && [ "$got" -eq "$want" ] && [ "$want" -gt 1000 ] && ok ||
  fail "import into a 16 MiB file system: exit $rc, $got of $want packets: $(cat "$work/small.err")"

# 5d. A file system that cannot preallocate (ext2: fallocate says EOPNOTSUPP): import stores every packet,
#     written without preallocation (glibc's posix_fallocate would fall back to byte writes, which O_DIRECT
#     refuses).
if command -v mkfs.ext2 >/dev/null && truncate -s 32M "$work/ext2.img" && mkfs.ext2 -q -F "$work/ext2.img" 2>/dev/null &&
   mkdir -p "$work/m-ext2" && mount -o loop "$work/ext2.img" "$work/m-ext2" 2>/dev/null; then
  "$REWIND" import --dir "$work/m-ext2/store" -q "$A" 2>"$work/ext2.err"; rc=$?
  got=$("$REWIND" query --dir "$work/m-ext2/store" '' 2>/dev/null | tcpdump -r - 2>/dev/null | wc -l)
  [ $rc -eq 0 ] && [ "$got" -eq "$(pcap_packets "$A")" ] && ok ||
    fail "import into ext2: exit $rc, $got of $(pcap_packets "$A") packets: $(head -3 "$work/ext2.err")"
  umount "$work/m-ext2"
else
  echo "  note: no ext2 loop mount here; the file system without fallocate was not tried"
fi

# 6. rewind run: the "retention" config runs in the appliance (here with capture off, on an oversized
#    store); a bad retention config is refused.
s6=$work/s6
"$REWIND" import --dir "$s6" --filesize_mb 1 -q "$A" "$B" "$C" 2>/dev/null
cat > "$work/run6.json" <<JSON
{"dir": "$s6", "capture": {"enabled": false}, "server": {"listen": "127.0.0.1:19131"},
 "retention": {"max_store_mb": 2, "min_free_percent": 0, "interval_sec": 1}}
JSON
"$REWIND" run --config "$work/run6.json" 2>"$work/run6.log" & run=$!; pids+=($run)
for _ in $(seq 50); do [ "$(usage "$s6")" -le $((2 * MiB)) ] && break; sleep 0.1; done
[ "$(usage "$s6")" -le $((2 * MiB)) ] && grep -q "retention removed" "$work/run6.log" && ok ||
  fail "rewind run did not prune: $(usage "$s6") bytes; $(cat "$work/run6.log")"
kill -TERM $run; wait $run; rc=$?
[ $rc -eq 0 ] && ok || fail "rewind run exited $rc"
# 6b. A server that has read every index table (its reader cache holds them open) lets go of the tables a
#     separate `rewind prune` removes, within its housekeeping interval (5 s), without being queried again:
#     otherwise their disk space stays in use.
s6b=$work/s6b
"$REWIND" import --dir "$s6b" --filesize_mb 1 -q "$A" "$B" "$C" 2>/dev/null
"$REWIND" serve --dir "$s6b" --listen 127.0.0.1:19132 2>"$work/serve6b.log" & srv=$!; pids+=($srv)
for _ in $(seq 100); do curl -s -o /dev/null http://127.0.0.1:19132/healthz && break; sleep 0.05; done
# Index tables this process holds: open descriptors and mappings of IDX<n>/<file>.
held_tables() { { ls -l "/proc/$1/fd" 2>/dev/null; cat "/proc/$1/maps" 2>/dev/null; } | grep -o "$s6b/IDX[0-9]*/[0-9][^ ]*\( (deleted)\)\?" | sort -u; }
curl -s -o "$work/all6b.pcap" --data-binary tcp http://127.0.0.1:19132/query
tables6b=$(tables "$s6b/IDX0")
[ "$(held_tables $srv | wc -l)" -eq "$tables6b" ] && [ "$tables6b" -gt 4 ] && ok ||
  fail "the server holds $(held_tables $srv | wc -l) of $tables6b index tables after a query of every file"
"$REWIND" prune --dir "$s6b" --max_files 2 -q 2>"$work/prune6b.err" || fail "prune: $(cat "$work/prune6b.err")"
for _ in $(seq 80); do held_tables $srv | grep -q deleted || break; sleep 0.1; done
deleted=$(held_tables $srv | grep -c deleted)
[ "$deleted" -eq 0 ] && [ "$(tables "$s6b/IDX0")" -eq 2 ] && ok ||
  fail "8 s after prune the server still holds $deleted removed index tables: $(held_tables $srv | head -3)"
kill -TERM $srv; wait $srv

echo '{"retention": {"min_free_percent": "ten"}}' > "$work/bad.json"
"$REWIND" run --config "$work/bad.json" 2>"$work/bad.err"; rc=$?
[ $rc -eq 2 ] && grep -q "min_free_percent" "$work/bad.err" && ok || fail "bad retention config: rc=$rc $(cat "$work/bad.err")"
"$REWIND" prune --dir "$s6" 2>/dev/null; rc=$?
[ $rc -eq 2 ] && ok || fail "prune without a limit: rc=$rc"

echo "retention_test: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
