#!/usr/bin/env bash
# The appliance, `rewind run --config`, inside a network namespace this test creates: capture + server
# from one JSON config; packets replayed on a veth pair are served over HTTP; a capture thread whose
# interface disappears is restarted when it returns; SIGTERM stops everything cleanly.
# usage: run_test.sh PATH/TO/rewind PATH/TO/shared/pcaps
set -uo pipefail
REWIND=$(readlink -f "${1:?rewind binary}")
PCAPS=$(readlink -f "${2:?shared pcaps dir}")
if [ -z "${REWIND_IN_NETNS:-}" ]; then
  command -v tcpreplay >/dev/null && command -v curl >/dev/null || { echo "SKIP: tcpreplay or curl missing"; exit 77; }
  unshare -n true 2>/dev/null || { echo "SKIP: this machine refuses network namespaces (unshare -n)"; exit 77; }
  REWIND_IN_NETNS=1 exec unshare -n bash "$0" "$@"
fi
veth() {
  ip link add v0 type veth peer name v1 || return 1
  for i in v0 v1; do sysctl -qw net.ipv6.conf.$i.disable_ipv6=1; ip link set $i up; done
}
ip link set lo up
veth || { echo "SKIP: cannot create a veth pair"; exit 77; }
work=$(mktemp -d -p "${TMPDIR:-/tmp}" rewind-run-test.XXXXXX)
trap 'kill $pid 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
passed=0 failed=0
ok() { passed=$((passed + 1)); }
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }
count() { tcpdump -r - 2>/dev/null | wc -l; }

port=19123
want=$(tcpdump -r "$PCAPS/arkime/IKEv2.pcap" udp 2>/dev/null | wc -l)

# 0. "capturing" is said only once every capture thread's ring is bound: packets sent the moment it appears
#    are all stored (two threads in a fanout group, rings large enough to take a while to set up).
cat > "$work/eager.json" <<JSON
{"dir": "$work/eager",
 "capture": {"iface": "v1", "threads": 2, "blocks": 1024, "fileage_sec": 2},
 "server": {"listen": "127.0.0.1:$((port + 1))"}}
JSON
"$REWIND" run --config "$work/eager.json" 2>"$work/eager.log" &
pid=$!
for _ in $(seq 1000); do grep -q "rewind run: capturing" "$work/eager.log" && break; sleep 0.005; done
# Packet sockets bound to v1 and running (/proc/net/packet: sk RefCnt Type Proto Iface R ...), at that moment.
bound=$(awk -v ifindex="$(ip -o link show v1 | cut -d: -f1)" 'NR > 1 && $5 == ifindex && $6 == 1' /proc/net/packet | wc -l)
[ "$bound" -eq 2 ] && ok || fail "'capturing' said with $bound of 2 rings bound"
tcpreplay -q -i v0 --topspeed "$PCAPS/arkime/IKEv2.pcap" >/dev/null 2>&1
sleep 4
got=$(curl -s --data-binary udp "http://127.0.0.1:$((port + 1))/query" | count)
[ "$got" -eq "$want" ] && ok || fail "packets sent as 'capturing' appeared: $got of $want stored"
kill -TERM $pid; wait $pid

cat > "$work/rewind.json" <<JSON
{"dir": "$work/store",
 "capture": {"iface": "v1", "fileage_sec": 2, "blocks": 16},
 "server": {"listen": "127.0.0.1:$port", "max_scans": 4}}
JSON
"$REWIND" run --config "$work/rewind.json" 2>"$work/run.log" &
pid=$!
for _ in $(seq 50); do curl -s "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
grep -q "browser:   http://127.0.0.1:$port/" "$work/run.log" && ok || fail "no browser hint: $(cat "$work/run.log")"

# 1. Captured packets are served within fileage_sec (+ block timeout) of arrival.
tcpreplay -q -i v0 --topspeed "$PCAPS/arkime/IKEv2.pcap" >/dev/null 2>&1
sleep 4
got=$(curl -s --data-binary udp "http://127.0.0.1:$port/query" | count)
[ "$got" -eq "$want" ] && ok || fail "served $got of $want udp packets"
curl -s "http://127.0.0.1:$port/stats" | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["capture"][0]["packets"] >= 197 and d["capture"][0]["kernel_drops"] == 0, d["capture"]' && ok || fail "stats"
# The same counters in /metrics, per capture thread, in a form Prometheus accepts (promtool, where installed).
curl -s "http://127.0.0.1:$port/metrics" > "$work/metrics.txt"
awk '$1 == "rewind_capture_packets_total{thread=\"0\"}" && $2 >= 197 { p = 1 }
     $1 == "rewind_capture_kernel_drops_total{thread=\"0\"}" && $2 == 0 { d = 1 } END { exit !(p && d) }' "$work/metrics.txt" &&
  ok || fail "capture metrics: $(grep rewind_capture_ "$work/metrics.txt")"
if command -v promtool >/dev/null; then
  out=$(promtool check metrics < "$work/metrics.txt" 2>&1) && ok || fail "promtool check metrics: $out"
fi

# 1b. Queries while files rotate (2 s files; the table of a closed file is written on the writer's finishing
#     thread while the next file fills): an answer never loses packets a previous answer had, never holds one
#     twice, and once the replay is over holds every packet sent.
before=$(curl -s --data-binary '' "http://127.0.0.1:$port/query" | count)
t0=$(date +%s.%N)
tcpreplay -q -i v0 --pps 400 --loop 12 "$PCAPS/arkime/IKEv2.pcap" >/dev/null 2>&1 &
replay=$!
last=0 answers=0 bad=""
while kill -0 $replay 2>/dev/null; do
  curl -s --data-binary '' "http://127.0.0.1:$port/query" | tcpdump -tt -r - 2>/dev/null > "$work/live.txt"
  n=$(wc -l < "$work/live.txt")
  [ "$n" -ge "$last" ] || bad="$bad; shrank from $last to $n"
  # (packets of this replay are 2.5 ms apart, so no two of them print the same line)
  dup=$(awk -v t0="$t0" '$1 > t0' "$work/live.txt" | sort | uniq -d | head -1)
  [ -z "$dup" ] || bad="$bad; twice: $dup"
  last=$n answers=$((answers + 1))
  sleep 0.2
done
wait $replay
sleep 3
got=$(curl -s --data-binary '' "http://127.0.0.1:$port/query" | count)
files=$(ls "$work/store/PKT0" | wc -l)
[ -z "$bad" ] && [ "$answers" -ge 5 ] && [ "$got" -eq $((before + 12 * 197)) ] && [ "$files" -ge 3 ] && ok ||
  fail "queries while rotating ($answers answers, $files files): $got of $((before + 12 * 197)) packets$bad"

# 2. The interface goes away and comes back: the capture thread is restarted and captures again, and its
#    counters (capture0.json, /metrics) count on instead of starting from 0.
packets_before=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["packets"])' "$work/store/capture0.json")
ip link del v0
sleep 1.5
veth
for _ in $(seq 80); do grep -q "retrying" "$work/run.log" && break; sleep 0.1; done
sleep 4   # the supervisor's back-off (1 s, then 2 s) reopens the ring
tcpreplay -q -i v0 --topspeed "$PCAPS/zeek/q-in-q.pcap" >/dev/null 2>&1
sleep 4
got=$(curl -s --data-binary 'vlan' "http://127.0.0.1:$port/query" | count)
[ "$got" -eq 5 ] && ok || fail "after the interface came back: $got of 5 packets; log: $(cat "$work/run.log")"
grep -q "restarting" "$work/run.log" && ok || fail "no restart logged"
sleep 1.2   # the stats file is written every second
packets_after=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["packets"])' "$work/store/capture0.json")
[ "$packets_after" -ge $((packets_before + 5)) ] && ok ||
  fail "capture0.json packets went from $packets_before to $packets_after over the restart"

# 2b. SIGHUP (a closed terminal, a logrotate-style HUP) does not end the appliance: there is nothing to reload.
kill -HUP $pid
sleep 0.5
kill -0 $pid 2>/dev/null && ok || fail "SIGHUP ended rewind run"

# 3. SIGTERM stops capture and server, exit 0.
kill -TERM $pid
t0=$(date +%s%N)
wait $pid; rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
# A hang check, not a timing (a loaded machine stretches the drain and the syncs); the time is printed.
echo "rewind run stopped in $ms ms"
[ $rc -eq 0 ] && [ $ms -lt 10000 ] && ok || fail "SIGTERM: exit $rc after $ms ms"

# 4. A bad config is refused with a clear message.
echo '{"capture": {"threads": "two"}}' > "$work/bad.json"
"$REWIND" run --config "$work/bad.json" 2>"$work/bad.log"; rc=$?
[ $rc -eq 2 ] && grep -q "threads" "$work/bad.log" && ok || fail "bad config: rc=$rc $(cat "$work/bad.log")"
# A TLS file that cannot be loaded is a configuration error (exit 2, which the unit does not retry), found
# before capture starts: no packet file is made.
echo "{\"dir\": \"$work/badtls\", \"capture\": {\"iface\": \"lo\"}, \"server\": {\"listen\": \"127.0.0.1:0\", \"tls_cert\": \"$work/none.pem\", \"tls_key\": \"$work/none.key\"}}" > "$work/badtls.json"
unshare -n timeout 20 "$REWIND" run --config "$work/badtls.json" 2>"$work/bad.log"; rc=$?
[ $rc -eq 2 ] && grep -q "TLS" "$work/bad.log" && [ -z "$(ls "$work/badtls/PKT0" 2>/dev/null | grep -v '^\.')" ] && ok ||
  fail "bad TLS files: rc=$rc, packet files: $(ls "$work/badtls/PKT0" 2>/dev/null | wc -l); $(cat "$work/bad.log")"
echo '{"dir": ' > "$work/broken.json"
"$REWIND" run --config "$work/broken.json" 2>"$work/bad.log"; rc=$?
[ $rc -eq 2 ] && grep -q "JSON error" "$work/bad.log" && ok || fail "broken JSON: rc=$rc $(cat "$work/bad.log")"
# A misspelt key is named, with the key it is probably meant to be. (Capture off, and in a network namespace of
# its own: were the check missing, the run would serve an empty store until the timeout, never capture here.)
echo "{\"dir\": \"$work/typo\", \"capture\": {\"enabled\": false, \"ifac\": \"lo\"}, \"server\": {\"listen\": \"127.0.0.1:0\"}}" > "$work/typo.json"
unshare -n timeout 20 "$REWIND" run --config "$work/typo.json" 2>"$work/bad.log"; rc=$?
[ $rc -eq 2 ] && grep -q 'unknown key "ifac" in "capture" (did you mean "iface"?)' "$work/bad.log" && ok ||
  fail "misspelt key: rc=$rc $(cat "$work/bad.log")"
# A size limit that cannot hold one complete file beside the files being written is refused with the reason
# (else every file would be removed as soon as it completes), in the config as on the command line.
echo "{\"dir\": \"$work/small\", \"capture\": {\"iface\": \"lo\", \"threads\": 2, \"filesize_mb\": 64}, \"retention\": {\"max_store_mb\": 150}}" > "$work/small.json"
unshare -n timeout 20 "$REWIND" run --config "$work/small.json" 2>"$work/bad.log"; rc=$?
[ $rc -eq 2 ] && grep -q "max_store_mb 150 leaves no room for a complete file.*use max_store_mb >= 192" "$work/bad.log" &&
  [ ! -e "$work/small" ] && ok || fail "impossible retention: rc=$rc $(cat "$work/bad.log")"
unshare -n timeout 20 "$REWIND" capture --iface lo --dir "$work/small" --filesize_mb 64 --max_store_mb 100 2>"$work/bad.log"; rc=$?
[ $rc -eq 2 ] && grep -q "use max_store_mb >= 128" "$work/bad.log" && [ ! -e "$work/small" ] && ok ||
  fail "impossible retention (capture): rc=$rc $(head -3 "$work/bad.log")"
unshare -n timeout 20 "$REWIND" capture --iface lo --dir "$work/small" --count abc 2>"$work/bad.log"; rc=$?
[ $rc -eq 2 ] && grep -q "count wants a non-negative integer" "$work/bad.log" && ok || fail "--count abc: rc=$rc $(head -3 "$work/bad.log")"
# A mistyped interface is refused before the store is made.
echo "{\"dir\": \"$work/nosuch\", \"capture\": {\"iface\": \"nosuch0\"}, \"server\": {\"listen\": \"127.0.0.1:0\"}}" > "$work/nosuch.json"
unshare -n timeout 20 "$REWIND" run --config "$work/nosuch.json" 2>"$work/bad.log"; rc=$?
[ $rc -eq 2 ] && grep -q "no interface 'nosuch0'" "$work/bad.log" && [ ! -e "$work/nosuch" ] && ok ||
  fail "mistyped interface: rc=$rc, store made: $([ -e "$work/nosuch" ] && echo yes || echo no), $(cat "$work/bad.log")"
# A Stenographer config is recognised and translated in words, not run on the defaults.
echo '{"Threads": [{"PacketsDirectory": "/x/pkt", "IndexDirectory": "/x/idx"}], "Interface": "lo", "Port": 1234}' > "$work/steno.json"
unshare -n timeout 20 "$REWIND" run --config "$work/steno.json" 2>"$work/bad.log"; rc=$?
[ $rc -eq 2 ] && grep -q "is a Stenographer config" "$work/bad.log" && ok || fail "Stenographer config: rc=$rc $(cat "$work/bad.log")"
# rewind config --from-stenographer translates it; rewind run accepts the result (and starts capturing).
mkdir -p "$work/steno/thread0/packets" "$work/steno/thread0/index"   # as Stenographer left them
cat > "$work/steno2.json" <<JSON
{"Threads": [{"PacketsDirectory": "$work/steno/thread0/packets", "IndexDirectory": "$work/steno/thread0/index",
              "MaxDirectoryFiles": 3000, "DiskFreePercentage": 12}],
 "StenotypePath": "/usr/sbin/stenotype", "Interface": "lo", "Port": 1234, "Host": "127.0.0.1",
 "Flags": ["--fileage_sec=30", "--seccomp=none"]}
JSON
"$REWIND" config --from-stenographer "$work/steno2.json" > "$work/from-steno.json" 2> "$work/notes.log"
python3 - "$work/from-steno.json" "$work" <<'PY' && ok || fail "config --from-stenographer: $(cat "$work/from-steno.json" "$work/notes.log")"
import json, sys
c = json.load(open(sys.argv[1]))
assert c["dir"] == "/var/lib/rewind", c  # the packaged service's state directory (its only writable place)
c["dir"] = sys.argv[2] + "/steno/rewind"  # for the run below
json.dump(c, open(sys.argv[1], "w"))
assert c["capture"] == {"iface": "lo", "threads": 1, "fileage_sec": 30}, c
assert c["server"] == {"listen": "127.0.0.1:1234"}, c
assert c["retention"] == {"min_free_percent": 12, "max_files": 3000}, c
PY
grep -q "seccomp=none has no rewind.json counterpart" "$work/notes.log" && ok || fail "no note on --seccomp: $(cat "$work/notes.log")"
# A flag value past 64 bits is named in a note, not a crash.
echo '{"Interface": "lo", "Flags": ["--blocks=99999999999999999999999"]}' > "$work/steno3.json"
"$REWIND" config --from-stenographer "$work/steno3.json" > /dev/null 2> "$work/notes.log"; rc=$?
[ $rc -eq 0 ] && grep -q "blocks=99999999999999999999999 has no rewind.json counterpart" "$work/notes.log" && ok ||
  fail "config with an out-of-range flag: rc=$rc $(cat "$work/notes.log")"
out=$(unshare -n timeout 5 "$REWIND" run --config "$work/from-steno.json" 2>&1)
echo "$out" | grep -q "rewind run: capturing on lo" && ok || fail "rewind run on the translated config: $out"

echo "run_test: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
