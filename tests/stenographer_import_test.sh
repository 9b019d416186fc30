#!/usr/bin/env bash
# Adopting a Stenographer store. Debian's stenographer (its server running stenotype) captures real captures
# replayed into a veth pair inside a network namespace this test creates; `rewind import --stenographer`
# takes stenotype's packet files into a rewind store; for each query, rewind's answer must hold exactly the
# packets of stenographer's own answer (POST /query, what stenoread fetches) — same frames, same lengths,
# same microsecond timestamps, compared as sorted lists — and the frames the same query selects with tcpdump
# from the replayed captures. Traffic stays inside the namespace; the servers listen on its loopback.
# usage: stenographer_import_test.sh PATH/TO/rewind PATH/TO/shared/pcaps
set -uo pipefail
REWIND=$(readlink -f "${1:?rewind binary}")
PCAPS=$(readlink -f "${2:?shared pcaps dir}")
HERE=$(cd "$(dirname "$0")" && pwd)
if [ -z "${REWIND_IN_NETNS:-}" ]; then
  for t in stenographer stenotype tcpreplay tcpdump curl; do
    command -v $t >/dev/null || { echo "SKIP: $t not installed (scripts/install-deps.sh installs it)"; exit 77; }
  done
  id stenographer >/dev/null 2>&1 || { echo "SKIP: no stenographer user"; exit 77; }
  unshare -n true 2>/dev/null || { echo "SKIP: this machine refuses network namespaces (unshare -n)"; exit 77; }
  REWIND_IN_NETNS=1 exec unshare -n bash "$0" "$@"
fi
. "$HERE/../bench/stenographer_peer.sh"
ip link set lo up
ip link add v0 type veth peer name v1 || { echo "SKIP: cannot create a veth pair"; exit 77; }
for i in v0 v1; do sysctl -qw net.ipv6.conf.$i.disable_ipv6=1; ip link set $i mtu 9500; ip link set $i up; done
work=$(mktemp -d -p "${TMPDIR:-/tmp}" rewind-steno-test.XXXXXX)
chmod 755 "$work"
trap 'steno_filler_stop; steno_stop; [ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
passed=0 failed=0
ok() { passed=$((passed + 1)); }
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }

captures=("$PCAPS/ndpi/instagram.pcap" "$PCAPS/ndpi/netflix.pcap" "$PCAPS/ndpi/synscan.pcap")
steno_configure "$work" v1 9131 '["--fileage_sec=10", "--blocks=128", "--aiops=64", "--no_watchdogs"]'
# Filler frames while stenotype starts and until its last file rotates; no query matches them.
steno_filler_start v0 300
steno_start
steno_wait_for_packets
for c in "${captures[@]}"; do tcpreplay -i v0 --pps 2000 "$c" > "$work/replay.log" 2>&1 || fail "tcpreplay $c"; done
# Stenographer answers from rotated files only: wait until its answer to `tcp or udp` stops growing.
want_all=0
for c in "${captures[@]}"; do want_all=$((want_all + $(tcpdump -nn -r "$c" 'tcp or udp' 2>/dev/null | wc -l))); done
last=-1
for _ in $(seq 30); do
  sleep 5
  steno_query 'tcp or udp' "$work/all.pcap" > /dev/null
  n=$(tcpdump -nn -r "$work/all.pcap" 2>/dev/null | wc -l)
  [ "$n" -ge "$want_all" ] && [ "$n" = "$last" ] && break
  last=$n
done
[ "$n" = "$want_all" ] && ok || fail "stenographer holds $n of the $want_all tcp/udp packets replayed"

queries=('host 192.168.0.103' 'port 53' 'udp' 'tcp' 'net 31.13.0.0/16' 'host 172.16.0.8 and port 80'
         'host 192.168.1.7 and (port 443 or port 80)' 'ip proto 17')
for i in "${!queries[@]}"; do steno_query "${queries[$i]}" "$work/steno$i.pcap" > "$work/steno$i.code"; done
steno_filler_stop

# The import: the packet directory stenographer was given (files still being written are skipped).
"$REWIND" import --dir "$work/store" --stenographer -q "$work/steno/pkt" 2> "$work/import.err"
rc=$?
[ $rc = 0 ] && ok || { fail "import exited $rc"; cat "$work/import.err"; }
# Through the config file too, into a second store: the same answer.
"$REWIND" import --dir "$work/store2" --stenographer -q "$work/steno.conf" 2>/dev/null && ok || fail "import from the config"

# Sorted (µs timestamp, caplen, len, frame) of a pcap's packets, one per line, hex.
records() {
  python3 - "$1" "${2:-ts}" <<'PY'
import struct, sys
d = open(sys.argv[1], 'rb').read()
magic = struct.unpack('<I', d[:4])[0]
e = '<' if magic in (0xa1b2c3d4, 0xa1b23c4d) else '>'
ns = struct.unpack(e + 'I', d[:4])[0] == 0xa1b23c4d
off, out = 24, []
while off + 16 <= len(d):
    s, f, c, l = struct.unpack(e + 'IIII', d[off:off + 16])
    us = f // 1000 if ns else f
    key = f"{s}.{us:06d} " if sys.argv[2] == 'ts' else ''
    out.append(f"{key}{c} {l} {d[off + 16:off + 16 + c].hex()}"); off += 16 + c
sys.stdout.write(''.join(r + '\n' for r in sorted(out)))
PY
}
for i in "${!queries[@]}"; do
  q=${queries[$i]}
  read -r code _ < "$work/steno$i.code"
  [ "$code" = 200 ] || { fail "stenographer answered $code to '$q'"; continue; }
  "$REWIND" query --dir "$work/store" "$q" > "$work/rewind$i.pcap" 2>"$work/query.err" || { fail "rewind query '$q'"; cat "$work/query.err"; continue; }
  records "$work/steno$i.pcap" > "$work/steno$i.txt"
  records "$work/rewind$i.pcap" > "$work/rewind$i.txt"
  : > "$work/want$i.txt"
  for c in "${captures[@]}"; do tcpdump -r "$c" -w - "$q" 2>/dev/null > "$work/want.pcap"; records "$work/want.pcap" frames >> "$work/want$i.txt"; done
  sort -o "$work/want$i.txt" "$work/want$i.txt"
  n_steno=$(wc -l < "$work/steno$i.txt") n_rewind=$(wc -l < "$work/rewind$i.txt") n_want=$(wc -l < "$work/want$i.txt")
  if [ "$n_want" -gt 0 ] && cmp -s "$work/steno$i.txt" "$work/rewind$i.txt" &&
     cut -d' ' -f2- "$work/rewind$i.txt" | sort | cmp -s - "$work/want$i.txt"; then
    ok
  else
    fail "'$q': rewind $n_rewind, stenographer $n_steno, tcpdump on the replayed captures $n_want packets"
  fi
  "$REWIND" query --dir "$work/store2" "$q" | cmp -s - "$work/rewind$i.pcap" && ok || fail "'$q': the store imported from the config differs"
done

# A damaged packet file: every packet before the damage is kept, the rest refused with the block named.
f=$(find "$work/steno/pkt" -type f -name '[0-9]*' -size +1M | head -1)
if [ -n "$f" ]; then
  mkdir -p "$work/damaged"
  head -c $((1048576 + 100)) "$f" > "$work/damaged/1700000000000000"
  "$REWIND" import --dir "$work/store3" --stenographer -q "$work/damaged" 2> "$work/damaged.err"
  rc=$?
  "$REWIND" query --dir "$work/store3" '' > "$work/kept.pcap" 2>/dev/null
  kept=$(records "$work/kept.pcap" | wc -l)
  first=$(python3 -c "import struct,sys; d=open(sys.argv[1],'rb').read(48); print(struct.unpack('<I', d[12:16])[0])" "$f")
  [ $rc = 1 ] && grep -q "block 1 " "$work/damaged.err" && [ "$kept" = "$first" ] && ok ||
    fail "damaged file: exit $rc, kept $kept of block 0's $first packets: $(cat "$work/damaged.err")"
fi
# Not a Stenographer installation: a clear error, nothing stored.
echo '{"Interface": "eth0"}' > "$work/not-steno.conf"
"$REWIND" import --dir "$work/store4" --stenographer "$work/not-steno.conf" 2> "$work/bad.err"
rc=$?
[ $rc = 1 ] && grep -q 'not a Stenographer config' "$work/bad.err" && ok || fail "bad config: exit $rc: $(cat "$work/bad.err")"

# Pointed at a directory without packet files (the index directory, say): exit 1, and no store is made.
"$REWIND" import --dir "$work/store5" --stenographer "$work/steno/idx" 2> "$work/empty.err"
rc=$?
[ $rc = 1 ] && grep -q 'holds no Stenographer packet files' "$work/empty.err" && [ ! -e "$work/store5" ] && ok ||
  fail "no packet files: exit $rc, store made: $([ -e "$work/store5" ] && echo yes || echo no): $(cat "$work/empty.err")"

echo "stenographer_import_test: $passed passed, $failed failed"
[ "$failed" = 0 ]
