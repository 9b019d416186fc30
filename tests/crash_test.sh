#!/usr/bin/env bash
# Crash consistency: `rewind capture` and `rewind run` are killed with SIGKILL at random moments (files rotate
# every second, retention removes files every second) while numbered packets stream into a veth pair inside a
# network namespace this test creates. After every kill the next start re-indexes what the dead process left.
# At the end: no packet is answered twice, `verify` finds nothing damaged, and every packet that reached the
# interface while a capture ran, from its start until the last 1.5 s before its kill (the block timeout is
# 1 s for capture, 0.5 s for run), is in the answer, unless retention removed it (older than the oldest
# packet kept).
# usage: crash_test.sh PATH/TO/rewind PATH/TO/shared/pcaps [KILLS]
set -uo pipefail
REWIND=$(readlink -f "${1:?rewind binary}")
KILLS=${3:-24}
if [ -z "${REWIND_IN_NETNS:-}" ]; then
  command -v python3 >/dev/null || { echo "SKIP: python3 not installed"; exit 77; }
  unshare -n true 2>/dev/null || { echo "SKIP: this machine refuses network namespaces (unshare -n)"; exit 77; }
  REWIND_IN_NETNS=1 exec unshare -n bash "$0" "$@"
fi
ip link add v0 type veth peer name v1 || { echo "SKIP: cannot create a veth pair"; exit 77; }
for i in v0 v1; do
  sysctl -qw net.ipv6.conf.$i.disable_ipv6=1
  ip link set $i up
done
ip link set lo up
work=$(mktemp -d -p "${TMPDIR:-/tmp}" rewind-crash-test.XXXXXX)
chmod 755 "$work"
sender=""
victim=""
trap '[ -n "$sender" ] && kill $sender 2>/dev/null; [ -n "$victim" ] && kill -9 $victim 2>/dev/null; wait 2>/dev/null; [ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
passed=0 failed=0
ok() { passed=$((passed + 1)); }
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }
now() { date +%s.%N; }
store=$work/store

# Numbered UDP frames on v0, about 4,000 a second; every 40th packet's number and send time go to the log.
python3 - "$work/sent.log" <<'PY' &
import socket, struct, sys, time
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("v0", 0))
log = open(sys.argv[1], "w", buffering=1)
head = bytes.fromhex("ffffffffffff020000000001" "0800")
ip = bytes.fromhex("4500004a00004000401100000a0000010a000002")
seq = 0
while True:
    t0 = time.time()
    log.write(f"{seq} {t0:.6f}\n")
    for _ in range(40):
        s.send(head + ip + struct.pack(">HHHH", 40000, 7777, 54, 0) + struct.pack(">Q", seq) + bytes(38))
        seq += 1
    time.sleep(max(0.0, 0.01 - (time.time() - t0)))
PY
sender=$!

port=19231
cat > "$work/run.json" <<JSON
{"dir": "$store",
 "capture": {"iface": "v1", "fileage_sec": 1, "blocks": 16},
 "retention": {"max_files": 12, "interval_sec": 1},
 "server": {"listen": "127.0.0.1:$port"}}
JSON
start() {  # capture|run; sets victim and started (when the ring was bound)
  rm -f "$store/capture0.json"
  if [ "$1" = run ]; then
    "$REWIND" run --config "$work/run.json" 2>>"$work/victim.log" &
  else
    "$REWIND" capture --iface v1 --dir "$store" --blocks 16 --fileage_sec 1 --max_files 12 \
      --retention_interval_sec 1 2>>"$work/victim.log" &
  fi
  victim=$!
  for _ in $(seq 400); do [ -f "$store/capture0.json" ] && break; sleep 0.05; done
  started=$(now)
  [ -f "$store/capture0.json" ] || fail "$1 did not start capturing within 20 s: $(tail -3 "$work/victim.log")"
}

: > "$work/windows"
for k in $(seq "$KILLS"); do
  mode=capture; [ $((k % 3)) -eq 0 ] && mode=run
  start $mode
  sleep "$(python3 -c "import random; print(round(random.uniform(0.4, 3.0), 2))")"
  killed=$(now)
  kill -9 "$victim"; wait "$victim" 2>/dev/null
  echo "$mode $started $killed" >> "$work/windows"
done
# A last start re-indexes what the last kill left, then stops cleanly.
start capture
sleep 2
stopped=$(now)
kill -INT "$victim"; wait "$victim"; rc=$?
victim=""
kill "$sender"; wait "$sender" 2>/dev/null; sender=""
echo "clean $started $stopped" >> "$work/windows"
[ $rc -eq 0 ] && ok || fail "the last capture exited $rc: $(tail -3 "$work/victim.log")"

out=$("$REWIND" verify --dir "$store" 2>&1); rc=$?
[ $rc -eq 0 ] && ok || fail "verify exit $rc: $out"
"$REWIND" query --dir "$store" "udp dst port 7777" > "$work/all.pcap" 2>"$work/query.err" && ok ||
  fail "query: $(cat "$work/query.err")"
grep -q warning "$work/query.err" && fail "query warned: $(cat "$work/query.err")" || ok

python3 - "$work/all.pcap" "$work/sent.log" "$work/windows" <<'PY' && ok || fail "answer against what was sent (above)"
import struct, sys
d = open(sys.argv[1], "rb").read()
e = "<" if struct.unpack("<I", d[:4])[0] in (0xa1b2c3d4, 0xa1b23c4d) else ">"
off, seqs = 24, []
while off + 16 <= len(d):
    _, _, c, _ = struct.unpack(e + "IIII", d[off:off + 16])
    f = d[off + 16:off + 16 + c]; off += 16 + c
    if len(f) >= 50: seqs.append(struct.unpack(">Q", f[42:50])[0])
sent = [(int(a), float(b)) for a, b in (l.split() for l in open(sys.argv[2]) if l.strip())]
windows = [(m, float(a), float(b)) for m, a, b in (l.split() for l in open(sys.argv[3]))]
bad = []
dups = len(seqs) - len(set(seqs))
if dups: bad.append(f"{dups} packets answered twice")
if seqs != sorted(seqs): bad.append("answer not in sending order")
have = set(seqs)
oldest = min(seqs) if seqs else 0
required = missing = 0
for m, a, b in windows:
    lo, hi = a + 0.3, b - (0.3 if m == "clean" else 1.5)
    r = miss = 0
    for i, (first, t) in enumerate(sent[:-1]):
        if lo <= t and sent[i + 1][1] <= hi and first >= oldest:
            for q in range(first, sent[i + 1][0]):
                r += 1
                if q not in have: miss += 1
    required += r
    missing += miss
    if miss: bad.append(f"{m} from {a:.2f} to {b:.2f}: {miss} of {r} missing")
if missing: bad.append(f"{missing} of {required} required packets missing")
if required < 1000: bad.append(f"only {required} packets required: the test checked little")
print(f"{len(seqs)} packets answered, oldest kept #{oldest}, {required} required, {missing} missing, {dups} duplicates")
for b in bad: print("  " + b)
sys.exit(1 if bad else 0)
PY

echo "crash_test: $KILLS kills ($(grep -c '^run' "$work/windows") of rewind run); $passed passed, $failed failed"
[ "$failed" -eq 0 ]
