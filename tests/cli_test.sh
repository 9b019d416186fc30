#!/usr/bin/env bash
# End-to-end test of the rewind command line against the real tcpdump binary.
# usage: cli_test.sh PATH/TO/rewind PATH/TO/shared/pcaps
set -uo pipefail
REWIND=${1:?rewind binary}
PCAPS=${2:?shared pcaps dir}
ROOT=$(dirname "$(readlink -f "$0")")/..
command -v tcpdump >/dev/null || { echo "SKIP: tcpdump not installed"; exit 77; }
work=$(mktemp -d -p "${TMPDIR:-/tmp}" rewind-cli-test.XXXXXX)
trap 'rm -rf "$work"' EXIT
passed=0 failed=0
ok() { passed=$((passed + 1)); }
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }
# grep that reads all its input: with pipefail, grep -q exiting at the first match can fail the writer.
has() { grep "$@" > /dev/null; }

# What tcpdump prints for a capture: nanosecond times, lengths and every byte.
dump() { tcpdump --time-stamp-precision=nano -tt -nn -xx -r "$@" 2>/dev/null; }
# The packets of a capture, one line each (time, summary and every byte), sorted.
one_per_line() { dump "$1" | awk '/^[0-9]/ { if (l != "") print l; l = $0; next } { l = l $0 } END { if (l != "") print l }' | sort; }

# 1. rewind query == tcpdump -r, per file, for expressions over several link types.
files=(zeek/q-in-q.pcap tcpdump/802.1ad_QinQ.pcap arkime/IKEv2.pcap arkime/adb.pcap tcpdump/ipv6-bad-version.pcap
       tcpdump/icmpv6.pcap zeek/ipv6-fragmented-dns.pcap zeek/mpls-in-vlan.pcap)
exprs=("" "tcp" "udp" "ip6" "not ip" "port 53" "udp port 500 or icmp6" "tcp[tcpflags] & tcp-syn != 0"
       "greater 200" "ip proto 50" "net 10.0.0.0/8 || net 192.168.0.0/16" "vlan" "arp or (ip and not tcp)")
for f in "${files[@]}"; do
  [ -f "$PCAPS/$f" ] || { fail "missing capture $f"; continue; }
  store="$work/store-$(echo "$f" | tr / _)"
  "$REWIND" import -q --dir "$store" "$PCAPS/$f" || { fail "import $f"; continue; }
  for e in "${exprs[@]}"; do
    if ! want=$(tcpdump --time-stamp-precision=nano -tt -nn -xx -r "$PCAPS/$f" "$e" 2>/dev/null); then
      # tcpdump rejects the expression for this link type: rewind must refuse it too (exit 2).
      "$REWIND" query --dir "$store" --exact "$e" >/dev/null 2>&1
      [ $? -eq 2 ] && ok || fail "$f '$e': tcpdump rejects it, rewind did not exit 2"
      continue
    fi
    got=$("$REWIND" query --dir "$store" --exact --nanos "$e" | dump -)
    [ "$got" == "$want" ] && ok || fail "$f '$e': $(diff <(echo "$want") <(echo "$got") | head -3)"
  done
done

# 1b. Timestamp fields out of the usual range, as a crafted capture may hold them: a microsecond field of a
#     million or more, and ones libpcap reads as negative (2^31 and up). tcpdump prints them as stored, in
#     either precision, and rewind's answer must print the same; time filters use libpcap's time (the field
#     signed): "after" the second packet's time minus 10 µs takes it, plus 10 µs does not.
python3 - "$work/odd-times.pcap" <<'PY'
import struct, sys
frame = bytes(12) + b'\x08\x00' + bytes([0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, 0, 53, 0, 53, 0, 8, 0, 0])
with open(sys.argv[1], 'wb') as f:
    f.write(struct.pack('<IHHiIII', 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1))
    for i, us in enumerate([5, 0xFFFFFFF0, 3000000, 0x80000000, 4294967, 4294968, 2**31 - 1, 999999]):
        f.write(struct.pack('<IIII', 1700000000 + i * 10, us, len(frame), len(frame)) + frame)
PY
"$REWIND" import -q --dir "$work/odd-times" "$work/odd-times.pcap"
for precision in micro nano; do
  want=$(tcpdump --time-stamp-precision=$precision -tt -nn -xx -r "$work/odd-times.pcap" 2>/dev/null)
  got=$("$REWIND" query --dir "$work/odd-times" "" | tcpdump --time-stamp-precision=$precision -tt -nn -xx -r - 2>/dev/null)
  [ "$got" == "$want" ] && [ -n "$got" ] && ok || fail "odd timestamp fields ($precision): $(diff <(echo "$want") <(echo "$got") | head -4)"
done
n1=$("$REWIND" query --dir "$work/odd-times" "after 2023-11-14T22:13:29.999974Z" | tcpdump -r - 2>/dev/null | wc -l)
n2=$("$REWIND" query --dir "$work/odd-times" "after 2023-11-14T22:13:29.999994Z" | tcpdump -r - 2>/dev/null | wc -l)
[ "$n1" -eq $((n2 + 1)) ] && ok || fail "time filters around a negative microsecond field: $n1 and $n2 packets"
# The same for a nanosecond file, whose field libpcap also reads signed: written back as tcpdump -r -w writes
# it, record for record (the file headers differ in their snapshot length), in either precision.
python3 - "$work/odd-nanos.pcap" <<'PY'
import struct, sys
frame = bytes(12) + b'\x08\x00' + bytes([0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, 0, 53, 0, 53, 0, 8, 0, 0])
with open(sys.argv[1], 'wb') as f:
    f.write(struct.pack('<IHHiIII', 0xa1b23c4d, 2, 4, 0, 0, 65535, 1))
    for i, ns in enumerate([5, 0x80000000, 999999999, 1000000000, 0xFFFFFFFF, 2**31 - 1, 0xC0000000]):
        f.write(struct.pack('<IIII', 1700000000 + i * 10, ns, len(frame), len(frame)) + frame)
PY
"$REWIND" import -q --dir "$work/odd-nanos" "$work/odd-nanos.pcap"
for precision in micro nano; do
  flag=""; [ $precision = nano ] && flag=--nanos
  tcpdump --time-stamp-precision=$precision -r "$work/odd-nanos.pcap" -w "$work/odd-nanos.want" 2>/dev/null
  "$REWIND" query --dir "$work/odd-nanos" $flag "" | tail -c +25 | cmp -s - <(tail -c +25 "$work/odd-nanos.want") && ok ||
    fail "odd nanosecond fields ($precision): $("$REWIND" query --dir "$work/odd-nanos" $flag "" | tail -c +25 | cmp - <(tail -c +25 "$work/odd-nanos.want") 2>&1)"
done

# 2. The VLAN exception, both ways: by default host/port look inside VLAN tags, with --exact they do not.
store="$work/store-zeek_q-in-q.pcap"
want_exact=$(dump "$PCAPS/zeek/q-in-q.pcap" "host 172.19.51.37")
got_exact=$("$REWIND" query --dir "$store" --exact --nanos "host 172.19.51.37" | dump -)
[ "$got_exact" == "$want_exact" ] && ok || fail "--exact host inside QinQ differs from tcpdump"
want_fold=$(dump "$PCAPS/zeek/q-in-q.pcap" "vlan and vlan and host 172.19.51.37")
got_fold=$("$REWIND" query --dir "$store" --nanos "host 172.19.51.37" | dump -)
[ -n "$want_fold" ] && [ "$got_fold" == "$want_fold" ] && ok || fail "default host inside QinQ should equal 'vlan and vlan and host'"

# 3. Several files in one store: every packet comes back, merged in timestamp order.
multi="$work/multi"
"$REWIND" import -q --dir "$multi" "$PCAPS/arkime/IKEv2.pcap" "$PCAPS/zeek/q-in-q.pcap" "$PCAPS/tcpdump/icmpv6.pcap" || fail "multi import"
n_in=0
for f in arkime/IKEv2.pcap zeek/q-in-q.pcap tcpdump/icmpv6.pcap; do n_in=$((n_in + $(tcpdump -r "$PCAPS/$f" 2>/dev/null | wc -l))); done
times=$("$REWIND" query --dir "$multi" --nanos "" | tcpdump --time-stamp-precision=nano -tt -nn -r - 2>/dev/null | awk '{print $1}')
[ "$(echo "$times" | wc -l)" -eq "$n_in" ] && ok || fail "multi-file store returned $(echo "$times" | wc -l) of $n_in packets"
[ "$times" == "$(echo "$times" | sort -n)" ] && ok || fail "multi-file answer not in timestamp order"
stats=$("$REWIND" stats --dir "$multi" --json)
echo "$stats" | has "\"packets\":$n_in," && ok || fail "stats packets: $stats"

# 4. --limit stops early; a reader that hangs up is not an error.
[ "$("$REWIND" query --dir "$multi" --limit 7 "" | tcpdump -r - 2>/dev/null | wc -l)" -eq 7 ] && ok || fail "--limit 7"
"$REWIND" query --dir "$multi" "" | head -c 100 >/dev/null; rc=${PIPESTATUS[0]}
[ "$rc" -eq 0 ] && ok || fail "closed pipe: exit $rc"

# 5. Malformed queries exit 2, name the position, and do not read packet files.
check_bad() {  # query, expected position
  local out rc
  out=$("$REWIND" query --dir "$multi" --stats "$1" 2>&1 >/dev/null); rc=$?
  [ $rc -eq 2 ] && echo "$out" | has "at position $2" && ! echo "$out" | has "matched" && ok ||
    fail "bad query '$1': rc=$rc, output: $out"
}
check_bad "host 10.0.0.1 and (port 80" 18
check_bad "host 10.0.0.1 and" 17
check_bad "after yesterday" 6
check_bad "tcp and hots 10.0.0.1" 8
check_bad "port 99999" 0
"$REWIND" query --dir "$work/nope" "tcp" >/dev/null 2>&1; [ $? -eq 1 ] && ok || fail "missing store should exit 1"

# 6. Damaged input: every good packet before the damage is kept, the exit status says it stopped.
cut="$work/cut.pcap"
head -c 20000 "$PCAPS/arkime/IKEv2.pcap" > "$cut"
good=$(tcpdump -r "$cut" 2>/dev/null | wc -l)
out=$("$REWIND" import --dir "$work/cut" "$cut" 2>&1); rc=$?
[ $rc -eq 1 ] && echo "$out" | has "stopped at packet $((good + 1))" && ok || fail "truncated import: rc=$rc $out"
[ "$("$REWIND" query --dir "$work/cut" "" | tcpdump -r - 2>/dev/null | wc -l)" -eq "$good" ] && ok || fail "truncated import kept the wrong count"
for b in ndpi/fuzz-2021-10-13.pcap suricata/bug-1450-04__tls_DER-incomplete-header.pcap libpcap/pcap-invalid-version-1.pcap; do
  good=$(tcpdump -r "$PCAPS/$b" 2>/dev/null | wc -l)
  out=$("$REWIND" import --dir "$work/broken" "$PCAPS/$b" 2>&1); rc=$?
  kept=$("$REWIND" stats --dir "$work/broken" --json | sed 's/.*"packets":\([0-9]*\).*/\1/')
  [ $rc -eq 1 ] && [ -n "$out" ] && ok || fail "broken $b: rc=$rc"
  rm -rf "$work/broken"
  [ "${kept:-0}" -eq "$good" ] && ok || fail "broken $b: kept $kept, tcpdump reads $good"
done

# 6a. Crafted captures: a USB packet longer than a block record holds (libpcap allows 1 MiB for USBPCAP) is
#     stored cut with a warning, never silently; BSD/OS SLIP and PPP (LINKTYPE 102, 103) come back under their
#     own numbers, not the Linux DLT values 15 and 16.
python3 - "$work" <<'PY'
import struct, sys
def pcap(path, linktype, snaplen, frames):
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, snaplen, linktype))
        for i, fr in enumerate(frames):
            f.write(struct.pack("<IIII", 1700000000 + i, 0, len(fr), len(fr)) + fr)
pcap(sys.argv[1] + "/usb.pcap", 249, 1048576, [bytes(300000)])
pcap(sys.argv[1] + "/lt102.pcap", 102, 65535, [bytes(40)])
pcap(sys.argv[1] + "/lt103.pcap", 103, 65535, [bytes(40)])
PY
"$REWIND" import -q --dir "$work/usbstore" "$work/usb.pcap" 2>"$work/usb.err"; rc=$?
[ $rc -eq 0 ] && grep -q "1 packet(s) longer than 262144 bytes were stored cut" "$work/usb.err" && ok ||
  fail "an over-long USB packet: rc=$rc $(cat "$work/usb.err")"
linktype_of() { python3 -c 'import struct,sys; print(struct.unpack("<I", sys.stdin.buffer.read(24)[20:24])[0])'; }
for lt in 102 103; do
  "$REWIND" import -q --dir "$work/lt$lt" "$work/lt$lt.pcap" 2>/dev/null
  got=$("$REWIND" query --dir "$work/lt$lt" '' | linktype_of)
  [ "$got" = "$lt" ] && ok || fail "LINKTYPE $lt came back as $got"
done
# An empty answer carries the store's link type (as tcpdump -w keeps its input's), not Ethernet.
"$REWIND" import -q --dir "$work/sll" "$PCAPS/tcpdump/forces2.pcap" 2>/dev/null
want=$(tcpdump -r "$PCAPS/tcpdump/forces2.pcap" -w - 'port 1' 2>/dev/null | linktype_of)   # 113, Linux cooked
for q in 'port 1' 'ip and after 2030-01-01'; do
  got=$("$REWIND" query --dir "$work/sll" "$q" | linktype_of)
  [ "$got" = "$want" ] && [ "$want" = 113 ] && ok || fail "empty answer to '$q': link type $got, tcpdump's $want"
done

# 6b. pcapng with interfaces of several link types (libpcap refuses it): imported whole, answered in full.
mixed="$work/mixed"
"$REWIND" import -q --dir "$mixed" "$PCAPS/zeek/ldap__modify-request.pcapng" && ok || fail "mixed pcapng import"
"$REWIND" query --dir "$mixed" "" > "$work/mixed.pcapng"
if command -v tshark >/dev/null; then
  want=$(tshark -r "$PCAPS/zeek/ldap__modify-request.pcapng" -T fields -e frame.len -e frame.cap_len -e frame.protocols 2>/dev/null)
  got=$(tshark -r "$work/mixed.pcapng" -T fields -e frame.len -e frame.cap_len -e frame.protocols 2>/dev/null)
  [ -n "$want" ] && [ "$got" == "$want" ] && ok || fail "mixed pcapng answer differs from the input (tshark)"
fi

# 6c. An answer that mixes link types is pcapng, with every packet (Ethernet + raw IPv4 here).
mix2="$work/mix2"
"$REWIND" import -q --dir "$mix2" "$PCAPS/zeek/q-in-q.pcap" "$PCAPS/arkime/adb.pcap"
"$REWIND" query --dir "$mix2" "" > "$work/mix2.out"
magic=$(head -c 4 "$work/mix2.out" | od -An -tx1 | tr -d ' \n')
[ "$magic" = "0a0d0d0a" ] && ok || fail "mixed link types should give pcapng, got magic $magic"
if command -v tshark >/dev/null; then
  n=$(tshark -r "$work/mix2.out" 2>/dev/null | wc -l)
  want=$(( $(tcpdump -r "$PCAPS/zeek/q-in-q.pcap" 2>/dev/null | wc -l) + $(tcpdump -r "$PCAPS/arkime/adb.pcap" 2>/dev/null | wc -l) ))
  [ "$n" -eq "$want" ] && ok || fail "pcapng answer has $n of $want packets"
fi

# 7. Damaged store files: a query skips what it cannot read, says so, and returns every other packet.
dmg="$work/damaged"
"$REWIND" import -q --filesize_mb 1 --dir "$dmg" "$PCAPS/zeek/q-in-q.pcap" "$PCAPS/arkime/IKEv2.pcap" "$PCAPS/tcpdump/icmpv6.pcap"
mapfile -t pkts < <(ls "$dmg"/PKT0/0*)
total=$("$REWIND" query --dir "$dmg" "" | tcpdump -r - 2>/dev/null | wc -l)
[ "${#pkts[@]}" -ge 2 ] && ok || fail "expected several packet files, got ${#pkts[@]}"
in_first=$("$REWIND" query --dir "$dmg" --explain "" 2>&1 | grep "${pkts[0]}" | sed 's/.*: \([0-9]*\) packets.*/\1/')
printf 'XXXXXXXX' | dd of="${pkts[0]}" bs=1 seek=48 conv=notrunc 2>/dev/null   # the block's magic
err=$("$REWIND" query --dir "$dmg" "" 2>&1 >"$work/d.pcap"); rc=$?
got=$(tcpdump -r "$work/d.pcap" 2>/dev/null | wc -l)
[ $rc -eq 0 ] && [ "$got" -eq $((total - in_first)) ] && echo "$err" | has "bad magic\|checksum mismatch" && ok ||
  fail "damaged block: rc=$rc got $got of $((total - in_first)), stderr: $err"
idx="$dmg/IDX0/$(basename "${pkts[1]}")"
head -c 40 "$idx" > "$idx.cut" && mv "$idx.cut" "$idx"
err=$("$REWIND" query --dir "$dmg" "" 2>&1 >"$work/d.pcap"); rc=$?
[ $rc -eq 0 ] && echo "$err" | has "skipped" && ok || fail "damaged index: rc=$rc stderr: $err"
# stats reads the catalog, not the tables; verify reads every table and names the damaged one.
out=$("$REWIND" verify --dir "$dmg" 2>&1)
echo "$out" | has "$idx: damaged index" && ok || fail "verify should name the damaged index $idx: $out"

# 8. Integrity: a flipped byte is caught by the block checksum (verify reports it; query salvages the block,
#    serving the records whose framing holds and saying so: the answer differs from the undamaged one in that
#    byte only); a damaged index is rebuilt by repair; a packet file cut short loses only its torn tail.
ig="$work/integrity"
"$REWIND" import -q --filesize_mb 1 --dir "$ig" "$PCAPS/zeek/q-in-q.pcap" "$PCAPS/tcpdump/icmpv6.pcap" "$PCAPS/arkime/IKEv2.pcap"
"$REWIND" verify -q --dir "$ig" && ok || fail "verify of a fresh store"
mapfile -t pkts < <(ls "$ig"/PKT0/0*)
"$REWIND" query --dir "$ig" "" > "$work/ig-before.pcap"
old_byte=$(od -An -tx1 -j 300 -N 1 "${pkts[0]}" | tr -d ' ')
printf '\x55' | dd of="${pkts[0]}" bs=1 seek=300 conv=notrunc 2>/dev/null     # a byte inside the first packet
[ "$old_byte" != 55 ] && ok || fail "the byte flipped was already 0x55"
out=$("$REWIND" verify --dir "$ig" 2>&1); rc=$?
[ $rc -eq 1 ] && echo "$out" | has "block 0: .*checksum mismatch" && ok || fail "verify missed a flipped byte: $out"
err=$("$REWIND" query --dir "$ig" "" 2>&1 >"$work/ig.pcap")
[ "$(cmp -l "$work/ig-before.pcap" "$work/ig.pcap" | wc -l)" -eq 1 ] &&
  echo "$err" | has "salvaged: .*block at offset 0: block checksum mismatch" && ok ||
  fail "query over a damaged block: $(cmp -l "$work/ig-before.pcap" "$work/ig.pcap" | wc -l) bytes differ; $err"
# A record header damaged (the second record's snaplen overruns the block): that record is skipped, every
# other one found again after it and served; the warning says so.
r2=$((112 + $(od -An -tu4 -j 112 -N 4 "${pkts[0]}" | tr -d ' ')))
snaplen2=$(od -An -tx1 -j $((r2 + 12)) -N 4 "${pkts[0]}" | sed 's/ /\\x/g')
printf '\xff\xff\xff\x00' | dd of="${pkts[0]}" bs=1 seek=$((r2 + 12)) conv=notrunc 2>/dev/null
err=$("$REWIND" query --dir "$ig" "" 2>&1 >"$work/ig2.pcap")
one_per_line "$work/ig.pcap" > "$work/ig.txt"
one_per_line "$work/ig2.pcap" > "$work/ig2.txt"
[ "$(comm -23 "$work/ig.txt" "$work/ig2.txt" | wc -l)" -eq 1 ] && [ -z "$(comm -13 "$work/ig.txt" "$work/ig2.txt")" ] &&
  echo "$err" | has "salvaged: .*broken record framing (1 stretch(es), .*; [0-9]* of the [0-9]* records the block lists are kept)" &&
  ok || fail "query over a block with a damaged record header: $(comm -3 "$work/ig.txt" "$work/ig2.txt" | wc -l) packets differ; $err"
printf "$snaplen2" | dd of="${pkts[0]}" bs=1 seek=$((r2 + 12)) conv=notrunc 2>/dev/null   # undone
idx="$ig/IDX0/$(basename "${pkts[1]}")"
printf 'garbage' | dd of="$idx" bs=1 seek=10 conv=notrunc 2>/dev/null
"$REWIND" repair --dir "$ig" 2>"$work/repair.log" && grep -q "damaged index set aside" "$work/repair.log" && ok ||
  fail "repair of a damaged index: $(cat "$work/repair.log")"
[ -f "$ig/quarantine/IDX0-$(basename "${pkts[1]}")" ] && ok || fail "damaged index not quarantined"
"$REWIND" query --dir "$ig" "" 2>/dev/null > "$work/ig-after.pcap"
[ "$(cmp -l "$work/ig-before.pcap" "$work/ig-after.pcap" | wc -l)" -eq 1 ] && ok ||
  fail "after repair the packets should all be back (the flipped byte aside)"
# A FIFO named like a packet file (and one like an index) is skipped with a warning, never opened: verify,
# repair and queries finish instead of waiting for a writer.
mkfifo "$ig/PKT0/00000000000000000009" "$ig/IDX0/00000000000000000009"
out=$(timeout 60 "$REWIND" verify --dir "$ig" 2>&1); rc=$?
[ $rc -ne 124 ] && echo "$out" | has "PKT0/00000000000000000009 is a FIFO, not a file rewind wrote: skipped" && ok ||
  fail "verify with a FIFO in the store (exit $rc): $out"
out=$(timeout 60 "$REWIND" repair --dir "$ig" 2>&1); rc=$?
[ $rc -ne 124 ] && echo "$out" | has "is a FIFO, not a file rewind wrote: skipped" && ok ||
  fail "repair with a FIFO in the store (exit $rc): $out"
timeout 60 "$REWIND" query --dir "$ig" "" 2>/dev/null > "$work/ig-fifo.pcap"
[ "$(cmp -l "$work/ig-before.pcap" "$work/ig-fifo.pcap" | wc -l)" -eq 1 ] && ok ||
  fail "a query with a FIFO in the store should answer the good packets"
rm -f "$ig/PKT0/00000000000000000009" "$ig/IDX0/00000000000000000009"
# A packet file the catalog lists as complete is gone (deleted by hand): verify says which and exits 1.
last=$(ls "$ig"/PKT0/0* | tail -1)
mv "$last" "$work/moved-away"
out=$("$REWIND" verify --dir "$ig" 2>&1); rc=$?
[ $rc -eq 1 ] && echo "$out" | has "$last: missing: the catalog lists it with [1-9][0-9]* packets and its index is there" && ok ||
  fail "verify with a packet file gone (exit $rc): $out"
mv "$work/moved-away" "$last"
# A packet file cut in the middle of its second block: repair keeps the first block.
cutst="$work/cutstore"
"$REWIND" import -q --dir "$cutst" "$PCAPS/ndpi/1kxun.pcap"
one=$(ls "$cutst"/PKT0/0* | head -1)
in_first_block=$("$REWIND" query --dir "$cutst" "" | tcpdump -r - 2>/dev/null | wc -l)
[ "$(( $(stat -c %s "$one") / 1048576 ))" -ge 2 ] && ok || fail "expected a packet file of several blocks"
rm "$cutst/IDX0/$(basename "$one")"
truncate -s $((1048576 + 5000)) "$one"   # as if the power went out while the second block was written
"$REWIND" repair --dir "$cutst" 2>"$work/repair2.log"
grep -q "1 block(s)" "$work/repair2.log" && ok || fail "repair of a cut file: $(cat "$work/repair2.log")"
[ "$(stat -c %s "$one")" -eq 1048576 ] && ok || fail "the torn tail should be cut off"
kept=$("$REWIND" query --dir "$cutst" "" | tcpdump -r - 2>/dev/null | wc -l)
[ "$kept" -gt 0 ] && [ "$kept" -lt "$in_first_block" ] && ok || fail "after the cut: $kept of $in_first_block packets"
# A store kept by a capture that runs as its own user, repaired by root: the rebuilt catalog stays that
# user's, who can go on appending to it.
if [ "$(id -u)" = 0 ]; then
  chown -R nobody:nogroup "$cutst"
  "$REWIND" repair --dir "$cutst" 2>/dev/null
  [ "$(stat -c %U:%G "$cutst/CATALOG")" = nobody:nogroup ] && ok ||
    fail "rewind repair as root left the catalog $(stat -c %U:%G "$cutst/CATALOG")"
fi

# 9. Compression: a store written with zstd blocks answers every query exactly as an uncompressed one, is
#    smaller, survives losing its indexes (repair walks compressed extents), and its damage is detected.
zs="$work/zstd" rs="$work/raw"
inputs=("$PCAPS/ndpi/1kxun.pcap" "$PCAPS/zeek/q-in-q.pcap" "$PCAPS/arkime/IKEv2.pcap")
"$REWIND" import -q --compress zstd:3 --dir "$zs" "${inputs[@]}" && ok || fail "compressed import"
"$REWIND" import -q --dir "$rs" "${inputs[@]}"
[ "$(du -sb "$zs/PKT0" | cut -f1)" -lt "$(du -sb "$rs/PKT0" | cut -f1)" ] && ok || fail "compressed store is not smaller"
for q in "" "tcp" "udp and port 53" "host 10.0.0.1 or vlan" "not ip" "tcp[tcpflags] & tcp-syn != 0"; do
  cmp -s <("$REWIND" query --dir "$zs" "$q") <("$REWIND" query --dir "$rs" "$q") && ok || fail "compressed answer differs for '$q'"
done
"$REWIND" verify -q --dir "$zs" && ok || fail "verify of a compressed store"
rm "$zs"/IDX0/0*
"$REWIND" repair --dir "$zs" 2>/dev/null
cmp -s <("$REWIND" query --dir "$zs" "") <("$REWIND" query --dir "$rs" "") && ok || fail "compressed store after re-indexing"
# Damage inside one zstd frame (of the first extent's 8) costs that frame's packets only: verify names the
# frame, a query serves the other frames' packets (each unchanged) and says what it lost, and so does the
# index repair rebuilds. Damage in the extent's header loses the extent, and only it.
z1=$(ls "$zs"/PKT0/0* | head -1)
u16() { od -An -tu2 -j "$2" -N 2 "$1" | tr -d ' '; }
u32() { od -An -tu4 -j "$2" -N 4 "$1" | tr -d ' '; }
frames=$(u16 "$z1" 20) head=$(u16 "$z1" 22)
at=$((64 + 12 * frames + head + $(u32 "$z1" 64) + $(u32 "$z1" 76) / 2))   # the middle of frame 2
raw2=$(u32 "$z1" 80)   # raw bytes of frame 2: its records take 64 bytes at least
[ "$frames" -eq 8 ] && ok || fail "the first extent of 1kxun should hold 8 frames, not '$frames'"
"$REWIND" query --dir "$zs" "" > "$work/zs-before.pcap"
printf '\x55\x55' | dd of="$z1" bs=1 seek=$at conv=notrunc 2>/dev/null
out=$("$REWIND" verify --dir "$zs" 2>&1); rc=$?
[ $rc -eq 1 ] && echo "$out" | has "block 0: .* 1 zstd frame(s) damaged (raw bytes " && ok || fail "verify missed damage in a compressed frame: $out"
err=$("$REWIND" query --dir "$zs" "" 2>&1 >"$work/zs-after.pcap")
one_per_line "$work/zs-before.pcap" > "$work/zs-before.txt"
one_per_line "$work/zs-after.pcap" > "$work/zs-after.txt"
total=$(wc -l < "$work/zs-before.txt") kept=$(wc -l < "$work/zs-after.txt")
[ -z "$(comm -13 "$work/zs-before.txt" "$work/zs-after.txt")" ] && [ "$kept" -lt "$total" ] &&
  [ "$kept" -ge $((total - raw2 / 64)) ] && echo "$err" | has "salvaged: .* 1 zstd frame(s) damaged (raw bytes .*); the intact frames hold" && ok ||
  fail "query over a damaged zstd frame: kept $kept of $total; $err"
rm "$zs"/IDX0/0*
out=$("$REWIND" repair --dir "$zs" 2>&1)
"$REWIND" query --dir "$zs" "" 2>/dev/null > "$work/zs-repaired.pcap"
cmp -s "$work/zs-after.pcap" "$work/zs-repaired.pcap" && echo "$out" | has "zstd frame(s) damaged" && ok ||
  fail "repair of a file with a damaged zstd frame should index the intact frames: $out"
printf '\x55\x55' | dd of="$z1" bs=1 seek=30 conv=notrunc 2>/dev/null   # the header of the first extent
out=$("$REWIND" verify --dir "$zs" 2>&1); rc=$?
[ $rc -eq 1 ] && echo "$out" | has "compressed block header checksum mismatch" && ok || fail "verify missed damage in an extent header: $out"

# 10. Command-line conventions: --version, -h on a subcommand, a stray argument refused, and a directory that
#     is not a store named as such (and left as it was: no catalog made in it).
"$REWIND" --version | has '^rewind [0-9][0-9.]*$' && ok || fail "rewind --version"
"$REWIND" stats -h | has '^usage: rewind stats' && ok || fail "rewind stats -h"
out=$(timeout 20 "$REWIND" serve --dir "$work/none" --listen 127.0.0.1:0 stray 2>&1); rc=$?
[ $rc -eq 2 ] && echo "$out" | has "unexpected argument 'stray'" && ok || fail "serve with a stray argument (exit $rc): $out"
# Bash completion offers the subcommands, then a subcommand's own flags (from its --help).
comp() { bash -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _rewind; echo "${COMPREPLY[*]}"' _ \
           "$ROOT/scripts/rewind.bash-completion" "$REWIND" "$@"; }
[ "$(comp se)" = "serve" ] && [ "$(comp serve --max_l)" = "--max_lookups" ] && [ "$(comp query --ins)" = "--insecure" ] && ok ||
  fail "bash completion: '$(comp se)' '$(comp serve --max_l)' '$(comp query --ins)'"
mkdir -p "$work/notastore/sub"; echo x > "$work/notastore/file"
out=$("$REWIND" stats --dir "$work/notastore" 2>&1); rc=$?
[ $rc -eq 1 ] && echo "$out" | has "is not a rewind store" && [ "$(ls "$work/notastore" | tr '\n' ' ')" = "file sub " ] && ok ||
  fail "stats of a directory that is not a store (exit $rc): $out; now holds: $(ls "$work/notastore")"

# A packet file deleted by hand (its index left): queries warn and name it, verify exits 1 naming it.
gone=$work/gone
"$REWIND" import -q --dir "$gone" --filesize_mb 1 "$PCAPS/ndpi/1kxun.pcap"
victim=$(ls "$gone/PKT0" | head -1)
rm "$gone/PKT0/$victim"
"$REWIND" query --dir "$gone" '' 2>"$work/gone.err" > /dev/null
has "answer cut short: $gone/PKT0/$victim is missing (its index is there" "$work/gone.err" && ok ||
  fail "a missing packet file is not named: $(cat "$work/gone.err")"
out=$("$REWIND" verify --dir "$gone" 2>&1); rc=$?
[ $rc -eq 1 ] && echo "$out" | has "$victim: missing" && ok || fail "verify of a store missing a packet file (exit $rc): $out"

echo "cli_test: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
