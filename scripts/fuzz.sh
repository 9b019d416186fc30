#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan) in $BUILD (default build-fuzz/) and runs TARGET, or every
# target one after another, for SECONDS each. Each starts from a seed corpus made on first use in
# $BUILD/seeds/TARGET: packets, blocks, index tables and pcapng files from ../shared/pcaps and a small store
# imported from them, and the queries the tests use. New inputs go to $BUILD/corpus/TARGET; a crash or leak
# leaves $BUILD/crashes/TARGET/ with the input and exits non-zero. Prints one line per target:
#   TARGET: N runs in S s (R/s), corpus C inputs, OK|FOUND
#   usage: scripts/fuzz.sh TARGET|all SECONDS        e.g. scripts/fuzz.sh query_fuzz 1200
# Needs clang and libclang-rt-14-dev (scripts/install-deps.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
target=${1:?usage: scripts/fuzz.sh TARGET|all SECONDS}
seconds=${2:?usage: scripts/fuzz.sh TARGET|all SECONDS}
build=${BUILD:-$repo/build-fuzz}
pcaps=${PCAPS:-$repo/../shared/pcaps}
targets=(packet_dissector_fuzz block_format_fuzz index_reader_fuzz query_fuzz capture_file_fuzz http_request_fuzz)

if [ ! -f "$build/CMakeCache.txt" ]; then
  CC=clang CXX=clang++ cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DREWIND_FUZZ=ON \
    -DREWIND_BUILD_TESTS=OFF > /dev/null
fi
cmake --build "$build" -j"$(nproc)" --target "${targets[@]}" rewind > "$build.log" 2>&1 ||
  { tail -30 "$build.log"; exit 1; }

# --- seeds (once) ---------------------------------------------------------------------------------------------
seeds=$build/seeds
if [ ! -d "$seeds/done" ]; then
  rm -rf "$seeds" && mkdir -p "$seeds"/{packet_dissector_fuzz,block_format_fuzz,index_reader_fuzz,query_fuzz,capture_file_fuzz,http_request_fuzz}
  # A small store (raw and zstd) of a few captures of several link types; the fuzz build of rewind imports them.
  store=$seeds/store
  mkdir -p "$store"
  inputs=()
  for f in ndpi/instagram.pcap tcpdump/ptp_ethernet.pcap libpcap/vxlan.pcap zeek/pppoe.pcap arkime/mpls-basic.pcap; do
    [ -f "$pcaps/$f" ] && inputs+=("$pcaps/$f")
  done
  ASAN_OPTIONS=detect_leaks=0 "$build/rewind" import -q --dir "$store/raw" "${inputs[@]}" > /dev/null 2>&1 || true
  ASAN_OPTIONS=detect_leaks=0 "$build/rewind" import -q --compress zstd --dir "$store/zstd" "${inputs[@]}" > /dev/null 2>&1 || true
  python3 - "$pcaps" "$seeds" "$store" <<'PY'
import os, struct, sys
pcaps, seeds, store = sys.argv[1:4]
# The dissector's link types, in the order its fuzz target picks them by the first byte.
linktypes = [0, 1, 12, 14, 101, 108, 113, 228, 229, 276]
n = small = 0
for root, _, files in os.walk(pcaps):
    for name in sorted(files):
        path = os.path.join(root, name)
        d = open(path, 'rb').read(1 << 20)
        if len(d) < 24:
            continue
        magic = struct.unpack('<I', d[:4])[0]
        if magic == 0x0a0d0d0a and n < 400:  # pcapng: whole files (up to 64 KiB) for the pcapng reader
            open(os.path.join(seeds, 'capture_file_fuzz', 'ng-' + name), 'wb').write(b'\0' + d[:65536])
            continue
        e = '<' if magic in (0xa1b2c3d4, 0xa1b23c4d) else '>' if magic in (0xd4c3b2a1, 0x4d3cb2a1) else None
        if e is None:
            continue
        if small < 300 and len(d) <= 65536:  # small classic pcaps whole, for rewind's own pcap reader
            small += 1
            open(os.path.join(seeds, 'capture_file_fuzz', 'pcap-' + name), 'wb').write(b'\2' + d)
        lt = struct.unpack(e + 'I', d[20:24])[0]
        if lt not in linktypes:
            continue
        off, k = 24, 0
        while off + 16 <= len(d) and k < 8:
            c = struct.unpack(e + 'I', d[off + 8:off + 12])[0]
            if c > 65535 or off + 16 + c > len(d):
                break
            frame = d[off + 16:off + 16 + c]
            open(os.path.join(seeds, 'packet_dissector_fuzz', '%s-%d' % (name, k)), 'wb').write(bytes([linktypes.index(lt)]) + frame)
            off, k, n = off + 16 + c, k + 1, n + 1
# Blocks and index tables of the store: a raw block cut to its used length, a zstd file's first extent.
for kind in ('raw', 'zstd'):
    top = os.path.join(store, kind)
    for w in sorted(os.listdir(top)) if os.path.isdir(top) else []:
        dirpath = os.path.join(top, w)
        if not os.path.isdir(dirpath):
            continue
        for name in sorted(os.listdir(dirpath))[:4]:
            path = os.path.join(dirpath, name)
            if w.startswith('IDX') and name != 'FILTERS':
                open(os.path.join(seeds, 'index_reader_fuzz', kind + name), 'wb').write(open(path, 'rb').read())
            elif w.startswith('PKT'):
                d = open(path, 'rb').read((1 << 20) + 4096)
                if kind == 'raw' and len(d) >= 24:
                    used = struct.unpack('<I', d[20:24])[0]
                    d = d[:max(112, min(used, len(d)))]
                open(os.path.join(seeds, 'block_format_fuzz', kind + name), 'wb').write(d)
                # The same TPACKET_V3 blocks, as a Stenographer packet file (the reader's other input).
                open(os.path.join(seeds, 'capture_file_fuzz', 'steno-' + kind + name), 'wb').write(b'\1' + d[:65536])
PY
  i=0
  for q in "" "tcp" "udp and port 53" "host 192.168.1.1 or net 10.0.0.0/8" "icmp or arp" "vlan" "not ip" \
           "tcp[tcpflags] & tcp-syn != 0" "ip6 and udp" "host 10.1.2.3 and port 443 and after 2h ago" \
           "before 2026-11-22T10:00:00Z" "(port 1 or port 2) and not host ::1" "vlan 100 and portrange 1-1024" \
           "ether host 00:11:22:33:44:55" "len > 100 and greater 60" "after 1h30m ago and before 10m ago"; do
    printf '%s' "$q" > "$seeds/query_fuzz/q$i"; i=$((i + 1))
  done
  # HTTP requests (the first byte: 0 a server without a bearer token, 1 one with "fuzz-token").
  python3 - "$seeds/http_request_fuzz" <<'PY'
import os, sys
out = sys.argv[1]
reqs = [
    b'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n',
    b'GET /stats HTTP/1.1\r\nHost: x\r\n\r\nGET /metrics HTTP/1.1\r\nHost: x\r\n\r\n',
    b'GET /query?q=udp%20and%20port%2053&limit=5 HTTP/1.1\r\nHost: x\r\n\r\n',
    b'POST /query HTTP/1.1\r\nHost: x\r\nContent-Length: 16\r\n\r\nhost 10.0.0.1 or',
    b'POST /query HTTP/1.1\r\nHost: x\r\nTE: trailers\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nudp',
    b'POST /query HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nport\r\n3\r\n 53\r\n0\r\n\r\n',
    b'POST /query HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    b'GET /preview?q=port%201001&limit=3 HTTP/1.1\r\nHost: x\r\n\r\n',
    b'GET /query?q=after%202h%20ago%20and%20(tcp%20or%20udp) HTTP/1.1\r\nAuthorization: Bearer fuzz-token\r\n\r\n',
    b'GET / HTTP/1.1\r\nHost: x\r\nRange: bytes=0-10\r\n\r\n',
    b'POST /query?token=fuzz-token HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 9\r\n\r\nq=udp&x=1',
]
for i, r in enumerate(reqs):
    for token in (0, 1):
        open(os.path.join(out, 'r%d-%d' % (i, token)), 'wb').write(bytes([token]) + r)
PY
  mkdir -p "$seeds/done"
fi

run_one() {  # target
  local t=$1 corpus=$build/corpus/$1 crashes=$build/crashes/$1 log=$build/$1.log
  mkdir -p "$corpus" "$crashes"
  local rc=0
  (cd "$crashes" && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    "$build/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    "$corpus" "$seeds/$t" > "$log" 2>&1) || rc=$?
  local runs rate
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  echo "$t: ${runs:-?} runs in $seconds s (${rate:-?}/s), corpus $(ls "$corpus" | wc -l) inputs, $([ $rc = 0 ] && echo OK || echo "FOUND (exit $rc; $crashes, $log)")"
  return $rc
}

status=0
if [ "$target" = all ]; then
  for t in "${targets[@]}"; do run_one "$t" || status=1; done
else
  run_one "$target" || status=1
fi
exit $status
