# Sourced by bench/concurrency_bench.sh and bench/selectivity_bench.sh: a private copy of the rewind binary and a
# store imported from a trace with it, shared by the two benchmarks.
#   prepare_store TRACE BINARY STORE  ->  sets rw (the copy, STORE.rewind) and makes STORE (`rewind import`) unless
#                                         STORE.stamp says it was made from TRACE by the same binary.
# A missing /tmp/rewind-bench/trace-512M.pcap is made with /work/shared/scripts/make-traffic.sh.
prepare_store() {
  local trace=$1 bin=$2 store=$3 stamp
  [ -x "$bin" ] || { echo "no rewind binary $bin (cp /work/main/build/rewind /tmp/rewind-bench/rewind-new)" >&2; exit 1; }
  if [ ! -f "$trace" ]; then
    [ "$trace" = /tmp/rewind-bench/trace-512M.pcap ] || { echo "no trace $trace" >&2; exit 1; }
    mkdir -p /tmp/rewind-bench
    /work/shared/scripts/make-traffic.sh "$trace" 512M >&2
  fi
  mkdir -p "$(dirname "$store")"
  rw=$store.rewind
  stamp="$(sha256sum "$bin" | cut -c1-16) $(readlink -f "$trace") $(stat -c '%s %Y' "$trace")"
  if [ -f "$store.stamp" ] && [ "$(cat "$store.stamp")" = "$stamp" ] && [ -x "$rw" ] && cmp -s "$bin" "$rw"; then
    return 0
  fi
  rm -rf "$store" "$store.stamp"
  cp "$bin" "$rw"
  echo "$bin, sha256 $(sha256sum "$bin" | cut -c1-12), modified $(stat -c %y "$bin" | cut -d. -f1)" > "$store.binary"
  echo "bench: importing $trace into $store" >&2
  local t0; t0=$(date +%s.%N)
  "$rw" import --dir "$store" "$trace" > "$store.import.log" 2>&1 || { cat "$store.import.log" >&2; exit 1; }
  echo "$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')" > "$store.import_s"
  echo "$stamp" > "$store.stamp"
}

#   address_counts TRACE  ->  sets addrs=TRACE.addrs: "packets address" for every IPv4 address of the trace (as
#                             source or destination in tcpdump's reading of `ip`), fewest first; made once per trace.
address_counts() {
  local trace=$1
  addrs=$trace.addrs
  [ -s "$addrs" ] && [ "$addrs" -nt "$trace" ] && return 0
  echo "bench: counting addresses in $trace" >&2
  { tcpdump -nn -q -r "$trace" ip 2>/dev/null || true; } |
    awk '$2 == "IP" { for (i = 3; i <= 5; i += 2) { a = $i; sub(/:$/, "", a); n = split(a, p, ".");
                      if (n >= 4) print p[1] "." p[2] "." p[3] "." p[4] } }' |
    sort | uniq -c | awk '{ print $1, $2 }' | sort -k1,1n -k2,2 > "$addrs.tmp"
  mv "$addrs.tmp" "$addrs"
}
