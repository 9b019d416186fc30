#!/usr/bin/env bash
# Live capture end to end, inside a network namespace this test creates (veth pair v0 -> v1; traffic only
# there): replay real captures with tcpreplay, capture with `rewind capture`, and check with `rewind query`.
# usage: capture_test.sh PATH/TO/rewind PATH/TO/shared/pcaps
set -uo pipefail
REWIND=$(readlink -f "${1:?rewind binary}")
PCAPS=$(readlink -f "${2:?shared pcaps dir}")
if [ -z "${REWIND_IN_NETNS:-}" ]; then
  command -v tcpreplay >/dev/null || { echo "SKIP: tcpreplay not installed"; exit 77; }
  unshare -n true 2>/dev/null || { echo "SKIP: this machine refuses network namespaces (unshare -n)"; exit 77; }
  REWIND_IN_NETNS=1 exec unshare -n bash "$0" "$@"
fi
ip link add v0 type veth peer name v1 || { echo "SKIP: cannot create a veth pair"; exit 77; }
for i in v0 v1; do
  sysctl -qw net.ipv6.conf.$i.disable_ipv6=1
  ip link set $i mtu 9500
  ip link set $i up
done
work=$(mktemp -d -p "${TMPDIR:-/tmp}" rewind-capture-test.XXXXXX)
chmod 755 "$work"
trap 'rm -rf "$work"' EXIT
passed=0 failed=0
ok() { passed=$((passed + 1)); }
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }

# Compares the frames of a rewind answer with the frames of the given captures, in order (bytes and lengths;
# timestamps are the capture's own).
same_frames() {  # answer.pcap capture...
  local got=$1; shift
  python3 - "$got" "$@" <<'PY'
import struct, sys
def frames(p):
    d = open(p, 'rb').read()
    e = '<' if struct.unpack('<I', d[:4])[0] in (0xa1b2c3d4, 0xa1b23c4d) else '>'
    off, out = 24, []
    while off + 16 <= len(d):
        _, _, c, l = struct.unpack(e + 'IIII', d[off:off + 16])
        out.append((c, l, d[off + 16:off + 16 + c])); off += 16 + c
    return out
got = frames(sys.argv[1]); want = []
for p in sys.argv[2:]: want += frames(p)
bad = [i for i, (a, b) in enumerate(zip(got, want)) if a != b]
print(f"{len(got)} of {len(want)} frames, {len(bad)} differ")
sys.exit(0 if len(got) == len(want) and not bad else 1)
PY
}

start_capture() {  # store, extra flags...
  local store=$1; shift
  "$REWIND" capture --iface v1 --dir "$store" --blocks 16 "$@" 2>"$store.log" &
  cap_pid=$!
  for _ in $(seq 50); do [ -f "$store/capture0.json" ] && break; sleep 0.1; done
  sleep 0.2
}
stop_capture() {
  kill -INT "$cap_pid"
  local t0=$(date +%s%N)
  wait "$cap_pid"; local rc=$?
  stop_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  return $rc
}
tables() { find "$1" -maxdepth 1 -name "[0-9]*" | wc -l; }   # index tables (not FILTERS)
replay() { tcpreplay -q -i v0 --topspeed "$@" >/dev/null 2>&1; }

A=$PCAPS/arkime/IKEv2.pcap B=$PCAPS/zeek/q-in-q.pcap C=$PCAPS/tcpdump/icmpv6.pcap D=$PCAPS/zeek/mpls-in-vlan.pcap

# 1. Everything replayed comes back byte for byte (VLAN tags the kernel strips are put back); SIGINT exits
#    0 promptly (the bound only catches a hang: stopping syncs the file, its index and the catalog, and a
#    sync takes from milliseconds to seconds on a busy disk; tests do not assert speed).
s1=$work/s1
start_capture "$s1"
replay "$A" "$B" "$C" "$D"
sleep 0.3
stop_capture && ok || fail "capture exit status"
[ "$stop_ms" -lt 15000 ] && ok || fail "SIGINT took $stop_ms ms"
"$REWIND" query --dir "$s1" "" > "$work/s1.pcap"
out=$(same_frames "$work/s1.pcap" "$A" "$B" "$C" "$D") && ok || fail "replayed frames differ: $out"
grep -q '"kernel_drops":0' "$s1/capture0.json" && grep -q '"write_drops":0' "$s1/capture0.json" && ok ||
  fail "drops in $(cat "$s1/capture0.json")"

# 1b. With a longer block timeout (--blockage_sec 3), packets of the part-filled block that the kernel still
#     holds at SIGINT are stored too: stopping waits for the kernel to hand it over.
s1b=$work/s1b
start_capture "$s1b" --blockage_sec 3
replay "$A"
sleep 0.5
stop_capture && ok || fail "capture exit status (blockage 3 s)"
"$REWIND" query --dir "$s1b" "" > "$work/s1b.pcap"
out=$(same_frames "$work/s1b.pcap" "$A") && ok || fail "the last part-filled block was lost at stop: $out"
"$REWIND" capture --iface v1 --dir "$work/s1c" --blockage_sec 10 2>"$work/e1c"; rc=$?
[ $rc -eq 2 ] && grep -q "blockage_sec <= 5" "$work/e1c" && ok || fail "--blockage_sec 10: rc=$rc $(cat "$work/e1c")"

# 2. SIGINT on an idle link exits promptly too.
s2=$work/s2
start_capture "$s2"
stop_capture && [ "$stop_ms" -lt 15000 ] && ok || fail "idle SIGINT: ${stop_ms} ms"

# 2b. SIGINT while the rings are being set up, sent to a background job of this script (which starts with
#     SIGINT ignored, as bash gives it): the capture still stops, and cleanly.
"$REWIND" capture --iface v1 --dir "$work/s2b" --threads 2 --blocks 512 2>"$work/s2b.log" & early=$!
sleep 0.2
kill -INT $early
for _ in $(seq 100); do kill -0 $early 2>/dev/null || break; sleep 0.1; done
if kill -0 $early 2>/dev/null; then
  fail "SIGINT during ring setup was lost: still running after 10 s"; kill -9 $early; wait $early 2>/dev/null
else
  wait $early; rc=$?
  [ $rc -eq 0 ] && ok || fail "SIGINT during ring setup: exit $rc: $(tail -3 "$work/s2b.log")"
fi

# 2c. "capturing" is said once every ring is bound (the rings of several threads are set up side by side).
"$REWIND" capture --iface v1 --dir "$work/s2c" --threads 2 --blocks 512 2>"$work/s2c.log" & early=$!
for _ in $(seq 2000); do grep -q "rewind capture: capturing" "$work/s2c.log" && break; sleep 0.005; done
# Packet sockets bound to v1 and running (/proc/net/packet: sk RefCnt Type Proto Iface R ...), at that moment.
bound=$(awk -v ifindex="$(ip -o link show v1 | cut -d: -f1)" 'NR > 1 && $5 == ifindex && $6 == 1' /proc/net/packet | wc -l)
[ "$bound" -eq 2 ] && ok || fail "'capturing' said with $bound of 2 rings bound: $(cat "$work/s2c.log")"
kill -INT $early; wait $early

# 3. --filter as a tcpdump expression and as stenotype's hex BPF.
s3=$work/s3
start_capture "$s3" --filter "udp port 500"
replay "$A" "$B"
sleep 0.3
stop_capture
tcpdump -r "$A" -w "$work/want3.pcap" "udp port 500" 2>/dev/null
"$REWIND" query --dir "$s3" "" > "$work/s3.pcap"
out=$(same_frames "$work/s3.pcap" "$work/want3.pcap") && ok || fail "--filter expression: $out"
hex=$(tcpdump -r "$A" -ddd "udp port 500" 2>/dev/null | tail -n +2 | while read -r a b c d; do printf '%x %x %x %x ' "$a" "$b" "$c" "$d"; done)
s3b=$work/s3b
start_capture "$s3b" --filter "${hex% }"
replay "$A" "$B"
sleep 0.3
stop_capture
"$REWIND" query --dir "$s3b" "" > "$work/s3b.pcap"
out=$(same_frames "$work/s3b.pcap" "$work/want3.pcap") && ok || fail "--filter hex: $out"

# 4. --count N stores exactly N packets and exits by itself.
s4=$work/s4
start_capture "$s4" --count 50
replay "$A"
for _ in $(seq 30); do kill -0 "$cap_pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$cap_pid" 2>/dev/null && { fail "--count did not exit"; kill -INT "$cap_pid"; }
wait "$cap_pid"
n=$("$REWIND" query --dir "$s4" "" | tcpdump -r - 2>/dev/null | wc -l)
[ "$n" -eq 50 ] && ok || fail "--count 50 stored $n"

# 5. Rotation by age: packets arriving over ~3 s with --fileage_sec 1 land in several files, all queryable.
s5=$work/s5
start_capture "$s5" --fileage_sec 1
for f in "$A" "$B" "$C"; do replay "$f"; sleep 1.2; done
stop_capture
files=$(tables "$s5/IDX0")
[ "$files" -ge 2 ] && ok || fail "age rotation made $files file(s)"
"$REWIND" query --dir "$s5" "" > "$work/s5.pcap"
out=$(same_frames "$work/s5.pcap" "$A" "$B" "$C") && ok || fail "rotated files: $out"

# 5b. --on_rotate runs a command with each completed file's paths (like tcpdump -z), without blocking
#     capture; a failing command is logged.
s5b=$work/s5b
start_capture "$s5b" --fileage_sec 1 --on_rotate "echo >> $work/hook.log"
for f in "$A" "$B"; do replay "$f"; sleep 1.3; done
stop_capture
sleep 0.5
nfiles=$(tables "$s5b/IDX0")
nhooks=$(wc -l < "$work/hook.log")
# One run per completed file (how many files age rotation makes depends on timing; test 5 covers rotation).
[ "$nfiles" -ge 1 ] && [ "$nhooks" -eq "$nfiles" ] && ok || fail "on_rotate ran $nhooks times for $nfiles files"
while read -r p i; do [ -f "$p" ] && [ -f "$i" ] && [ "$(basename "$p")" = "$(basename "$i")" ] || fail "hook got '$p' '$i'"; done < "$work/hook.log"
s5c=$work/s5c
start_capture "$s5c" --fileage_sec 1 --on_rotate "exit 3;"
replay "$A"; sleep 1.5
stop_capture
grep -q "on_rotate failed for .*exit status 3" "$s5c.log" && ok || fail "failing hook not logged: $(cat "$s5c.log")"

# 5d. A quiet link: a few packets a second, each block handed over part-filled at the 1 s blockage timeout.
#     Every packet comes back, and the disk holds the blocks' used pages, not a megabyte per block.
s5d=$work/s5d
start_capture "$s5d" --blockage_sec 1
for f in "$C" "$B" "$C"; do tcpreplay -q -i v0 --pps 4 "$f" >/dev/null 2>&1; done
sleep 1.3
stop_capture
"$REWIND" query --dir "$s5d" "" > "$work/s5d.pcap"
out=$(same_frames "$work/s5d.pcap" "$C" "$B" "$C") && ok || fail "quiet link: $out"
logical=$(find "$s5d/PKT0" -type f -name '0*' -printf '%s\n' | awk '{ n += $1 } END { print n + 0 }')
allocated=$(find "$s5d/PKT0" -type f -name '0*' -printf '%b\n' | awk '{ n += $1 * 512 } END { print n + 0 }')
[ "$logical" -ge $((2 << 20)) ] && [ "$allocated" -le $((logical / 20)) ] && ok ||
  fail "quiet link: $allocated bytes allocated for $logical bytes of blocks"

# 6. kill -9: the next start (or rewind repair) re-indexes what reached disk; nothing written is lost.
s6=$work/s6
start_capture "$s6"
replay "$A" "$B"
sleep 1.6   # the kernel hands over the partly filled block after 1 s; then it is written
kill -9 "$cap_pid"; wait "$cap_pid" 2>/dev/null
[ "$(tables "$s6/IDX0")" -eq 0 ] && ok || fail "expected no index before repair"
"$REWIND" repair --dir "$s6" 2>/dev/null && ok || fail "repair failed"
"$REWIND" query --dir "$s6" "" > "$work/s6.pcap"
out=$(same_frames "$work/s6.pcap" "$A" "$B") && ok || fail "after kill -9 and repair: $out"

# 6b. The interface goes down: the capture drains and finishes what it received (written, indexed: queryable
#     without a repair) and exits with an error naming the cause, rather than stay up capturing nothing.
ip link add v2 type veth peer name v3
for i in v2 v3; do sysctl -qw net.ipv6.conf.$i.disable_ipv6=1; ip link set $i up; done
s6b=$work/s6b
"$REWIND" capture --iface v3 --dir "$s6b" --blocks 16 2>"$s6b.log" & down_pid=$!
for _ in $(seq 50); do [ -f "$s6b/capture0.json" ] && break; sleep 0.1; done
sleep 0.2
tcpreplay -q -i v2 --topspeed "$A" >/dev/null 2>&1
sleep 0.3   # down before the kernel hands over the part-filled block (after 1 s): it must still be stored
ip link set v3 down
for _ in $(seq 100); do kill -0 $down_pid 2>/dev/null || break; sleep 0.1; done
if kill -0 $down_pid 2>/dev/null; then
  fail "capture still running 10 s after its interface went down: $(tail -3 "$s6b.log")"
  kill -9 $down_pid; wait $down_pid 2>/dev/null
else
  wait $down_pid; rc=$?
  [ $rc -eq 1 ] && grep -q "Network is down" "$s6b.log" && ok || fail "interface down: exit $rc: $(tail -3 "$s6b.log")"
  [ "$(tables "$s6b/IDX0")" -ge 1 ] && ok || fail "interface down: the last file was left unindexed"
  "$REWIND" query --dir "$s6b" "" > "$work/s6b.pcap"
  out=$(same_frames "$work/s6b.pcap" "$A") && ok || fail "interface down: $out"
fi
ip link del v2

# 7. Privileges: --uid/--gid drop to nobody after opening the socket; files belong to nobody.
s7=$work/s7
start_capture "$s7" --uid 65534 --gid 65534
uid_now=$(awk '/^Uid:/ {print $2}' /proc/$cap_pid/status)
replay "$A"
sleep 0.3
stop_capture
[ "$uid_now" = "65534" ] && ok || fail "capture runs as uid $uid_now"
owner=$(stat -c %u "$(ls -d "$s7"/PKT0/0* | head -1)")
[ "$owner" = "65534" ] && ok || fail "packet file owned by $owner"
n=$("$REWIND" query --dir "$s7" "" | tcpdump -r - 2>/dev/null | wc -l)
[ "$n" -eq "$(tcpdump -r "$A" 2>/dev/null | wc -l)" ] && ok || fail "privilege-dropped capture stored $n"
[ "$(stat -c %u "$s7/PKT0/.lock")" = 65534 ] && ok || fail "the writer lock file is owned by $(stat -c %U "$s7/PKT0/.lock")"
# --uid alone: the process takes that user's group, not root's.
s7b=$work/s7b
start_capture "$s7b" --uid 65534
gid_now=$(awk '/^Gid:/ {print $2}' /proc/$cap_pid/status)
stop_capture
[ "$gid_now" = "$(id -g nobody)" ] && ok || fail "--uid alone left gid $gid_now"

# 8. Bad input: clear message, non-zero exit.
"$REWIND" capture --iface nosuch0 --dir "$work/s8" 2>"$work/e8"; rc=$?
[ $rc -ne 0 ] && grep -q "no interface 'nosuch0'" "$work/e8" && ok || fail "unknown interface: rc=$rc $(cat "$work/e8")"
"$REWIND" capture --iface v1 --dir "$work/s9" --filter "hots 1" 2>"$work/e9"; rc=$?
[ $rc -eq 2 ] && grep -q "bad --filter" "$work/e9" && ok || fail "bad filter: rc=$rc $(cat "$work/e9")"
mkdir -p "$work/ro" && touch "$work/ro/file"
"$REWIND" capture --iface v1 --dir "$work/ro/file/x" 2>"$work/e10"; rc=$?
[ $rc -eq 1 ] && [ -s "$work/e10" ] && ok || fail "unusable dir: rc=$rc $(cat "$work/e10")"

echo "capture_test: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
