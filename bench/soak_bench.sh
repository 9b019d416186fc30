#!/usr/bin/env bash
# Soak: the appliance (`rewind run`) for DURATION seconds with its files rotated every FILEAGE seconds (the
# defaults rotate every 60 s: one second here stands for a minute of a sensor's life) while retention keeps
# the store under STORE_MB MiB (files are removed as fast as they are written), a trace is replayed into its
# interface at PPS packets/s, and queries keep coming: a lookup of one address over the whole store, the
# last 2 s (read from the files being written), and a closed 10 s window asked over HTTP and from the CLI
# (`rewind query --dir`) whose answers must be the same. Every SAMPLE seconds the server's VmRSS, VmHWM, open
# descriptors and threads, its heap (RssAnon: VmRSS also counts the capture rings and mapped index tables)
# and what malloc has in use and holds (from /metrics),
# the store's files and bytes, the catalog journal's bytes, the disk space of the key filters (IDX*/FILTERS), the capture counters and the queries' outcomes are
# recorded; at the end the growth of RSS and descriptors per 1,000 rotations is fitted (least squares, after
# the first WARMUP seconds), the process is stopped with SIGTERM (timed) and `rewind verify` checks the store.
# Everything runs in a private network namespace (a veth pair and its loopback). Prints a Markdown section on
# stdout (progress on stderr); exits 1 if an answer differed, a query failed, or verify found damage.
#   usage: bench/soak_bench.sh [DURATION_SEC (default 1800)]
# Environment: REWIND (binary, default build/rewind; a copy is run), TRACE (default
# /tmp/rewind-bench/trace-512M.pcap), WORK (/tmp/rewind-bench/soak), FILEAGE (1), STORE_MB (512), PPS (20000),
# THREADS (2), SAMPLE (10), WARMUP (120). Needs root, tcpreplay, tcpdump, curl, python3, unshare.
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-1800}
work=${WORK:-/tmp/rewind-bench/soak}
trace=${TRACE:-/tmp/rewind-bench/trace-512M.pcap}
fileage=${FILEAGE:-1}
store_mb=${STORE_MB:-512}
pps=${PPS:-20000}
threads=${THREADS:-2}
filesize_mb=${FILESIZE_MB:-64}
compress=${COMPRESS:-none}
sample=${SAMPLE:-10}
warmup=${WARMUP:-120}
log() { echo "soak_bench: $*" >&2; }

if [ -z "${REWIND_IN_NETNS:-}" ]; then
  [ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
  for t in tcpreplay tcpdump curl python3 unshare; do command -v "$t" >/dev/null || { echo "needs $t" >&2; exit 1; }; done
  [ -f "$trace" ] || { echo "no trace $trace (make one with ../shared/scripts/make-traffic.sh)" >&2; exit 1; }
  rewind=${REWIND:-$PWD/build/rewind}
  rm -rf "$work"; mkdir -p "$work"
  cp "$rewind" "$work/rewind"
  { echo "$rewind"; sha256sum "$rewind" | cut -c1-12; } > "$work/rewind.id"
  REWIND_IN_NETNS=1 exec unshare -n bash "$0" "$duration"
fi

# ---- inside the private network namespace ---------------------------------------------------------------
rw=$work/rewind
ip link set lo up
ip link add v0 type veth peer name v1
for i in v0 v1; do sysctl -qw "net.ipv6.conf.$i.disable_ipv6=1"; ip link set "$i" mtu 9500; ip link set "$i" up; done
cat > "$work/rewind.json" <<EOF
{ "dir": "$work/store",
  "capture": { "iface": "v1", "threads": $threads, "fileage_sec": $fileage, "filesize_mb": $filesize_mb,
               "compress": "$compress" },
  "server": { "listen": "127.0.0.1:0" },
  "retention": { "max_store_mb": $store_mb, "interval_sec": 1 } }
EOF
"$rw" run --config "$work/rewind.json" > "$work/run.log" 2>&1 &
pid=$!
replay_pid=
cleanup() {
  [ -n "$replay_pid" ] && kill "$replay_pid" 2>/dev/null || true
  kill -9 "$pid" 2>/dev/null || true
}
trap cleanup EXIT
port=
for _ in $(seq 200); do
  port=$(sed -n 's|.*http://127.0.0.1:\([0-9]*\)/.*|\1|p' "$work/run.log" | head -1); [ -n "$port" ] && break; sleep 0.1
done
[ -n "$port" ] || { log "rewind run did not start"; cat "$work/run.log" >&2; exit 1; }
url=http://127.0.0.1:$port/query
log "rewind run (pid $pid) on port $port; replaying at $pps packets/s for $duration s"
tcpreplay -q -i v0 --pps "$pps" --loop 0 "$trace" > "$work/replay.log" 2>&1 &
replay_pid=$!

# An address of the trace that recurs: the lookup's answer then varies with what retention left, but is
# never empty while the replay runs.
host=$(tcpdump -nr "$trace" -c 20000 ip 2>/dev/null | awk '{ split($3, a, "."); print a[1]"."a[2]"."a[3]"."a[4] }' |
  sort | uniq -c | sort -rn | sed -n '5p' | awk '{ print $2 }')
log "lookup address: $host"

count() { tcpdump -r "$1" 2>/dev/null | wc -l; }
# One round of queries; appends "t kind http_code seconds packets [cli_packets]" lines to queries.tsv.
query_round() {
  local t=$1 out=$work/answer.pcap code secs n
  read -r code secs < <(curl -s -o "$out" -w '%{http_code} %{time_total}\n' --max-time 60 \
    --data-binary "host $host" "$url" || echo "000 0")
  echo "$t lookup $code $secs $(count "$out")" >> "$work/queries.tsv"
  read -r code secs < <(curl -s -o "$out" -w '%{http_code} %{time_total}\n' --max-time 60 \
    --data-binary "after 2s ago" "$url" || echo "000 0")
  echo "$t live $code $secs $(count "$out")" >> "$work/queries.tsv"
  # A closed window 20-10 s ago: its files are complete and far from retention's edge.
  local now from to
  now=$(date +%s); from=$(date -u -d "@$((now - 20))" +%Y-%m-%dT%H:%M:%SZ); to=$(date -u -d "@$((now - 10))" +%Y-%m-%dT%H:%M:%SZ)
  local q="udp and after $from and before $to"
  read -r code secs < <(curl -s -o "$out" -w '%{http_code} %{time_total}\n' --max-time 60 --data-binary "$q" "$url" ||
    echo "000 0")
  local cli; cli=$("$rw" query --dir "$work/store" "$q" 2>/dev/null | tcpdump -r - 2>/dev/null | wc -l)
  echo "$t window $code $secs $(count "$out") $cli" >> "$work/queries.tsv"
}

proc_sample() {  # t -> one line of samples.tsv
  local t=$1 rss hwm anon fds thr
  rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$pid/status"); hwm=$(awk '/^VmHWM/ { print $2 }' "/proc/$pid/status")
  anon=$(awk '/^RssAnon/ { print $2 }' "/proc/$pid/status")
  fds=$(ls "/proc/$pid/fd" | wc -l); thr=$(ls "/proc/$pid/task" | wc -l)
  local st; st=$("$rw" stats --dir "$work/store" --json 2>/dev/null || echo '{}')
  # The catalog's journal, and the space the key filters take (allocated, not the sparse files' length).
  local catalog filters
  catalog=$(du -sb "$work/store/CATALOG" 2>/dev/null | cut -f1 || true)
  filters=$(du -cB1 "$work/store"/IDX*/FILTERS 2>/dev/null | tail -1 | cut -f1 || true)
  # What the process has allocated and what its allocator holds (in use and free), from /metrics.
  local metrics; metrics=$(curl -s --max-time 10 "http://127.0.0.1:$port/metrics" || true)
  local in_use held
  in_use=$(awk '$1 == "rewind_heap_in_use_bytes" { printf "%d", $2 }' <<<"$metrics")
  held=$(awk '$1 == "rewind_heap_held_bytes" { printf "%d", $2 }' <<<"$metrics")
  python3 - "$t" "$rss" "$hwm" "$fds" "$thr" "$st" "$work/store" "$threads" "$anon" "${catalog:-0}" "${filters:-0}" \
    "${in_use:-0}" "${held:-0}" >> "$work/samples.tsv" <<'PY'
import json, sys
t, rss, hwm, fds, thr, st, store, threads, anon, catalog, filters, in_use, held = sys.argv[1:]
s = json.loads(st) if st.strip().startswith('{') else {}
files = pk = kd = wd = 0
for i in range(int(threads)):
    try:
        c = json.load(open(f"{store}/capture{i}.json"))
    except Exception:
        continue
    files += c.get("files", 0); pk += c.get("packets", 0); kd += c.get("kernel_drops", 0); wd += c.get("write_drops", 0)
print(t, rss, hwm, fds, thr, s.get("files", 0), s.get("packet_file_bytes", 0) + s.get("index_bytes", 0), files, pk, kd, wd,
      anon, catalog, filters, in_use, held)
PY
}

: > "$work/samples.tsv"; : > "$work/queries.tsv"
start=$(date +%s)
next=0
while true; do
  t=$(( $(date +%s) - start ))
  [ "$t" -ge "$duration" ] && break
  kill -0 "$pid" 2>/dev/null || { log "rewind run exited"; break; }
  if [ "$t" -ge "$next" ]; then
    proc_sample "$t"
    next=$(( next + sample ))
    (( t % 300 < sample )) && log "t=$t s: $(tail -1 "$work/samples.tsv")"
  fi
  query_round "$t"
  sleep 1
done
proc_sample "$(( $(date +%s) - start ))"
kill "$replay_pid" 2>/dev/null || true; wait "$replay_pid" 2>/dev/null || true; replay_pid=
alive=yes; kill -0 "$pid" 2>/dev/null || alive=no
t0=$(date +%s%N); kill -TERM "$pid"; wait "$pid" 2>/dev/null || true; t1=$(date +%s%N)
stop_ms=$(( (t1 - t0) / 1000000 ))
verify_rc=0; "$rw" verify --dir "$work/store" > "$work/verify.log" 2>&1 || verify_rc=$?
load=$(cut -d' ' -f1-3 /proc/loadavg)

python3 - "$work" "$duration" "$fileage" "$store_mb" "$pps" "$threads" "$warmup" "$alive" "$stop_ms" "$verify_rc" "$load" "$host" \
  "$compress" <<'PY'
import statistics, sys
work, duration, fileage, store_mb, pps, threads, warmup, alive, stop_ms, verify_rc, load, host, compress = sys.argv[1:]
ident = open(f"{work}/rewind.id").read().split()
S = [list(map(int, l.split())) for l in open(f"{work}/samples.tsv") if l.strip()]
Q = [l.split() for l in open(f"{work}/queries.tsv") if l.strip()]
print(f"### Soak: `rewind run` for {int(duration) // 60} min, files rotated every {fileage} s (`bench/soak_bench.sh {duration}`)")
print()
print(f"Binary {ident[0]} ({ident[1]}); {threads} capture threads, compression {compress}, retention `max_store_mb` {store_mb}, replay {pps} packets/s "
      f"(`tcpreplay --loop 0`), lookup address {host}; load average at the end {load}.")
print()
print("| t (s) | VmRSS MiB | of it heap (RssAnon) MiB | malloc in use / held MiB | VmHWM MiB | fds | threads | files in store | store MB | catalog KB | key filters KB on disk | rotations | packets | kernel drops | write drops |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
step = max(1, len(S) // 12)
rows = S[::step] + ([S[-1]] if (len(S) - 1) % step else [])
for r in rows:
    print(f"| {r[0]} | {r[1] / 1024:.1f} | {r[11] / 1024:.1f} | {r[14] / 2**20:.1f} / {r[15] / 2**20:.1f} | {r[2] / 1024:.1f} | {r[3]} | {r[4]} | {r[5]} | {r[6] / 1e6:.0f} | {r[12] / 1e3:.0f} | {r[13] / 1e3:.0f} | {r[7]} | {r[8]} | {r[9]} | {r[10]} |")
print()
def slope(xs, ys):
    mx, my = statistics.mean(xs), statistics.mean(ys)
    d = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / d if d else 0.0
late = [r for r in S if r[0] >= int(warmup)]
if len(late) >= 3 and late[-1][7] > late[0][7]:
    rot = [r[7] for r in late]
    print(f"After {warmup} s ({len(late)} samples, rotations {late[0][7]} to {late[-1][7]}): VmRSS "
          f"{min(r[1] for r in late) / 1024:.1f}-{max(r[1] for r in late) / 1024:.1f} MiB, fitted growth "
          f"{slope(rot, [r[1] for r in late]) * 1000 / 1024:+.2f} MiB per 1,000 rotations; of it heap (RssAnon) "
          f"{min(r[11] for r in late) / 1024:.1f}-{max(r[11] for r in late) / 1024:.1f} MiB, "
          f"{slope(rot, [r[11] for r in late]) * 1000 / 1024:+.2f} MiB per 1,000; malloc in use "
          f"{min(r[14] for r in late) / 2**20:.1f}-{max(r[14] for r in late) / 2**20:.1f} MiB "
          f"({slope(rot, [r[14] for r in late]) * 1000 / 2**20:+.2f} MiB per 1,000), held by the allocator "
          f"{min(r[15] for r in late) / 2**20:.1f}-{max(r[15] for r in late) / 2**20:.1f} MiB "
          f"({slope(rot, [r[15] for r in late]) * 1000 / 2**20:+.2f} MiB per 1,000); catalog "
          f"{min(r[12] for r in late) / 1e3:.0f}-{max(r[12] for r in late) / 1e3:.0f} KB; key filters on disk "
          f"{min(r[13] for r in late) / 1e3:.0f}-{max(r[13] for r in late) / 1e3:.0f} KB "
          f"({slope(rot, [r[13] for r in late]) * 1000 / 1e6:+.2f} MB per 1,000 rotations); "
          f"descriptors {min(r[3] for r in late)}-{max(r[3] for r in late)} ({slope(rot, [r[3] for r in late]) * 1000:+.2f} per 1,000 rotations); "
          f"threads {min(r[4] for r in late)}-{max(r[4] for r in late)}; files in store {min(r[5] for r in late)}-{max(r[5] for r in late)}.")
    print()
bad = 0
print("| query | asked | HTTP 200 | other | seconds, median (p95, max) | packets, median (min-max) |")
print("|---|---|---|---|---|---|")
for kind, label in (("lookup", f"`host {host}` (whole store)"), ("live", "`after 2s ago`"), ("window", "`udp` in a closed 10 s window 20-10 s ago")):
    q = [x for x in Q if x[1] == kind]
    if not q: continue
    ok = [x for x in q if x[2] == "200"]
    secs = sorted(float(x[3]) for x in ok) or [0.0]
    pk = sorted(int(x[4]) for x in ok) or [0]
    bad += len(q) - len(ok)
    print(f"| {label} | {len(q)} | {len(ok)} | {len(q) - len(ok)} | {statistics.median(secs):.3f} ({secs[int(0.95 * (len(secs) - 1))]:.3f}, {secs[-1]:.3f}) | "
          f"{statistics.median(pk):.0f} ({pk[0]}-{pk[-1]}) |")
win = [x for x in Q if x[1] == "window" and x[2] == "200"]
diff = [x for x in win if x[4] != x[5]]
live = [x for x in Q if x[1] == "live" and int(x[0]) >= 5]  # the replay has run for a few seconds
empty_live = [x for x in live if x[2] == "200" and x[4] == "0"]
print()
print(f"Closed-window answers over HTTP against the CLI's: {len(win) - len(diff)} of {len(win)} the same packet count"
      + (f"; differing at t = {', '.join(x[0] for x in diff[:10])}" if diff else "") + ". "
      f"Live answers (`after 2s ago`, from t = 5 s) that were empty: {len(empty_live)} of {len(live)}. "
      f"At the end: the process {'was running' if alive == 'yes' else 'HAD EXITED'}; SIGTERM to exit {stop_ms} ms; "
      f"`rewind verify` exit status {verify_rc}.")
sys.exit(1 if diff or bad or alive != "yes" or verify_rc != "0" else 0)
PY
