#!/usr/bin/env bash
# End-to-end test of `rewind export`: the exported files, read in name order, equal `rewind query`'s answer
# (checked with tcpdump and mergecap), names sort in packet order, sizes stay under --split, time bounds
# hold, gz/zst decompress to the same packets, bad arguments exit 2, nothing is overwritten, and a full disk
# keeps the completed files and removes the unfinished one.
# usage: export_test.sh PATH/TO/rewind PATH/TO/shared/pcaps
set -uo pipefail
REWIND=${1:?rewind binary}
PCAPS=${2:?shared pcaps dir}
command -v tcpdump >/dev/null || { echo "SKIP: tcpdump not installed"; exit 77; }
for f in ndpi/1kxun.pcap ndpi/netflix.pcap; do
  [ -f "$PCAPS/$f" ] || { echo "SKIP: missing capture $PCAPS/$f"; exit 77; }
done
work=$(mktemp -d -p "${TMPDIR:-/tmp}" rewind-export-test.XXXXXX)
trap 'rm -rf "$work"' EXIT
passed=0 failed=0
ok() { passed=$((passed + 1)); }
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }
# grep that reads all its input: with pipefail, grep -q exiting at the first match can fail the writer.
has() { grep "$@" > /dev/null; }

# What tcpdump prints for a capture: nanosecond times, lengths and every byte (-S: absolute TCP sequence
# numbers, which do not depend on what came before in the same file).
dump() { tcpdump --time-stamp-precision=nano -tt -nn -S -xx -r "$@" 2>/dev/null; }
# The dump of every export file in $1 (matching glob $2), in name order, through decompressor $3.
dump_dir() {
  local f
  for f in "$1"/$2; do [ -e "$f" ] && $3 "$f" | dump -; done
}
packets() { tcpdump -r "$1" 2>/dev/null | wc -l; }

store="$work/store"
mkdir -p "$store"
"$REWIND" import -q --dir "$store" "$PCAPS/ndpi/1kxun.pcap" "$PCAPS/ndpi/netflix.pcap" || { echo "import failed"; exit 1; }
want=$("$REWIND" query --dir "$store" --nanos "" | dump -)
total=$(echo "$want" | grep -c '^[0-9]')

# 1. Everything, split at 256 KiB: the files in name order are the answer; names follow the scheme and sort
#    in sequence order; no file exceeds the split unless it holds one packet; no temporary file is left.
out="$work/all"
"$REWIND" export --dir "$store" --out "$out" --split 256K --nanos 2>"$work/all.log"; rc=$?
[ $rc -eq 0 ] && ok || fail "export all: exit $rc: $(cat "$work/all.log")"
grep -q "files, $total packets" "$work/all.log" && ok || fail "summary: $(cat "$work/all.log")"
names=$(ls -A "$out")
n=$(echo "$names" | wc -l)
[ "$n" -ge 10 ] && ok || fail "expected at least 10 files, got $n"
echo "$names" | grep -qv -E '^rewind-[0-9]{8}T[0-9]{6}Z-[0-9]{6}\.pcap$' && fail "names off the scheme: $names" || ok
[ "$(echo "$names" | sed -E 's/.*-([0-9]{6})\.pcap$/\1/')" == "$(seq -f %06g 1 "$n")" ] && ok ||
  fail "names do not sort in sequence order"
[ "$(echo "$names" | sort)" == "$names" ] && [ "$(echo "$names" | LC_ALL=C sort)" == "$names" ] && ok || fail "ls order"
got=$(dump_dir "$out" '*.pcap' cat)
[ "$got" == "$want" ] && ok || fail "exported files != rewind query: $(diff <(echo "$want") <(echo "$got") | head -3)"
big=0
for f in "$out"/*.pcap; do
  if [ "$(stat -c %s "$f")" -gt 262144 ] && [ "$(packets "$f")" -ne 1 ]; then big=$((big + 1)); fi
done
[ $big -eq 0 ] && ok || fail "$big files exceed --split with more than one packet"
# Each file on its own is a valid pcap; mergecap concatenating them (-a) or merging them by time gives the
# answer too.
if command -v mergecap >/dev/null; then
  mergecap -a -F pcap -w "$work/cat.pcap" "$out"/*.pcap 2>/dev/null && [ "$(dump "$work/cat.pcap")" == "$want" ] && ok ||
    fail "mergecap -a of the exported files differs from rewind query"
  mergecap -F pcap -w "$work/merged.pcap" "$out"/*.pcap 2>/dev/null &&
    [ "$(dump "$work/merged.pcap" | grep -c '^[0-9]')" -eq "$total" ] && ok || fail "mergecap merge lost packets"
fi

# 2. Time bounds and a filter: equal to the query with the same terms; every time in [after, before).
after=2017-01-13T14:50:50Z before=2017-01-13T14:51:30Z
out="$work/bounded"
"$REWIND" export --dir "$store" --out "$out" --after "$after" --before "$before" --filter 'tcp or udp' --split 64K \
  -q --nanos; rc=$?
[ $rc -eq 0 ] && ok || fail "bounded export: exit $rc"
want_b=$("$REWIND" query --dir "$store" --nanos "(tcp or udp) and after $after and before $before" | dump -)
[ -n "$want_b" ] && [ "$(dump_dir "$out" '*.pcap' cat)" == "$want_b" ] && ok || fail "bounded export != bounded query"
lo=$(date -u -d "$after" +%s) hi=$(date -u -d "$before" +%s)
dump_dir "$out" '*.pcap' cat | awk -v lo="$lo" -v hi="$hi" '/^[0-9]/ { if ($1 < lo || $1 >= hi) bad++ } END { exit bad > 0 }' &&
  ok || fail "a packet outside [--after, --before)"
[ "$(ls "$out" | head -1 | cut -c1-24)" == "rewind-20170113T145050Z-" ] && ok || fail "first name: $(ls "$out" | head -1)"
# Only --before; only --after: the complements add up to everything.
"$REWIND" export --dir "$store" --out "$work/lo" --before "$after" -q --nanos &&
  "$REWIND" export --dir "$store" --out "$work/hi" --after "$after" -q --nanos && ok || fail "one-sided bounds"
[ "$( (dump_dir "$work/lo" '*.pcap' cat; dump_dir "$work/hi" '*.pcap' cat) )" == "$want" ] && ok ||
  fail "--before T plus --after T should be everything"
# A range with no packets: no file, exit 0.
"$REWIND" export --dir "$store" --out "$work/none" --after '1h ago' 2>"$work/none.log" && [ -z "$(ls -A "$work/none")" ] &&
  grep -q "no packets" "$work/none.log" && ok || fail "empty range: $(cat "$work/none.log")"

# 3. Compression: gz and zst decompress to the same packets; sizes bound the decompressed bytes.
out="$work/gz"
"$REWIND" export --dir "$store" --out "$out" --split 512K --compress gz --nanos -q && ok || fail "gz export"
ls "$out" | grep -qv -E '^rewind-[0-9]{8}T[0-9]{6}Z-[0-9]{6}\.pcap\.gz$' && fail "gz names: $(ls "$out")" || ok
[ "$(dump_dir "$out" '*.pcap.gz' 'gzip -dc')" == "$want" ] && ok || fail "gz files differ from rewind query"
for f in "$out"/*.gz; do gzip -t "$f" || fail "gzip -t $f"; done
if command -v zstd >/dev/null; then
  out="$work/zst"
  "$REWIND" export --dir "$store" --out "$out" --split 512K --compress zst --nanos -q && ok || fail "zst export"
  [ "$(dump_dir "$out" '*.pcap.zst' 'zstd -qdc')" == "$want" ] && ok || fail "zst files differ from rewind query"
  big=0
  for f in "$out"/*.zst; do [ "$(zstd -qdc "$f" | wc -c)" -gt 524288 ] && big=$((big + 1)); done
  [ $big -eq 0 ] && ok || fail "$big zst files decompress to more than --split"
fi

# 4. Microseconds by default; --split 1 gives one file per packet.
"$REWIND" export --dir "$store" --out "$work/one" --split 1 --before 2016-08-02T02:19:34Z -q && ok || fail "--split 1"
n1=$(ls "$work/one" | wc -l)
[ "$n1" -gt 1 ] && [ "$n1" -eq "$("$REWIND" query --dir "$store" 'before 2016-08-02T02:19:34Z' | packets -)" ] && ok ||
  fail "--split 1: $n1 files"
[ "$(od -An -tx1 -N4 "$(ls -d "$work"/one/* | head -1)" | tr -d ' ')" == "d4c3b2a1" ] && ok || fail "µs pcap magic"

# 5. Bad arguments and queries exit 2 without writing; a missing store exits 1.
bad() {  # description, args...
  local d=$1; shift
  "$REWIND" export "$@" >/dev/null 2>"$work/bad.log"; local rc=$?
  [ $rc -eq 2 ] && [ ! -e "$work/bad-out" ] && ok || fail "$d: exit $rc, $(head -2 "$work/bad.log")"
}
bad "no --out" --dir "$store"
bad "no --dir" --out "$work/bad-out"
bad "--split 0" --dir "$store" --out "$work/bad-out" --split 0
bad "--split 1X" --dir "$store" --out "$work/bad-out" --split 1X
bad "--compress bz2" --dir "$store" --out "$work/bad-out" --compress bz2
bad "--after garbage" --dir "$store" --out "$work/bad-out" --after yesterday
bad "--before garbage" --dir "$store" --out "$work/bad-out" --before '2017-13-01'
bad "after >= before" --dir "$store" --out "$work/bad-out" --after "$before" --before "$after"
bad "unknown flag" --dir "$store" --out "$work/bad-out" --bogus
bad "positional" --dir "$store" --out "$work/bad-out" tcp
bad "bad filter" --dir "$store" --out "$work/bad-out" --filter 'host 10.0.0.1 and (port 80'
grep -q "at position 18" "$work/bad.log" && ok || fail "bad filter position: $(cat "$work/bad.log")"
bad "filter libpcap rejects" --dir "$store" --out "$work/bad-out" --filter 'tcp and port 99999'
grep -q "at position 8" "$work/bad.log" && ok || fail "libpcap error position: $(cat "$work/bad.log")"
bad "filter escaping its parentheses" --dir "$store" --out "$work/bad-out" --filter 'tcp) or (udp' --after "$after"
"$REWIND" export --dir "$work/nope" --out "$work/bad-out" >/dev/null 2>&1; rc=$?
[ $rc -eq 1 ] && ok || fail "missing store: exit $rc"
"$REWIND" export --help | has -- "--split" && ok || fail "--help"
"$REWIND" --help | has "export" && ok || fail "export not in rewind --help"

# 6. Never overwrite: a second export into the same directory fails and leaves the first intact.
sum1=$(cat "$work/all"/* | md5sum)
"$REWIND" export --dir "$store" --out "$work/all" --split 256K --nanos 2>"$work/again.log"; rc=$?
[ $rc -eq 1 ] && grep -q "already exists" "$work/again.log" && ok || fail "re-export: exit $rc, $(cat "$work/again.log")"
[ "$(cat "$work/all"/* | md5sum)" == "$sum1" ] && [ -z "$(ls -A "$work/all" | grep '^\.')" ] && ok ||
  fail "re-export changed the first export or left a temporary file"

# 7. A full disk (a 1 MiB tmpfs in a private mount namespace): exit 1 naming the file and "No space", the
#    completed files are a valid prefix of the answer, no partial or temporary file is left.
if unshare -Urm true 2>/dev/null || unshare -m true 2>/dev/null; then
  us="unshare -m"; [ "$(id -u)" -eq 0 ] || us="unshare -Urm"
  full="$work/full"
  mkdir -p "$full"
  $us bash -c 'mount -t tmpfs -o size=1m tmpfs "$1" || exit 77
    "$2" export --dir "$3" --out "$1/x" --split 200K --nanos 2>"$4/full.log"; echo $? >"$4/full.rc"
    mkdir -p "$4/full-copy" && cp -a "$1/x/." "$4/full-copy/"' _ "$full" "$REWIND" "$store" "$work"
  if [ -f "$work/full.rc" ]; then
    [ "$(cat "$work/full.rc")" -eq 1 ] && grep -q "No space" "$work/full.log" &&
      grep -q "$full/x/rewind-" "$work/full.log" && ok || fail "disk full: rc $(cat "$work/full.rc"), $(cat "$work/full.log")"
    names=$(ls -A "$work/full-copy")
    [ -n "$names" ] && ! echo "$names" | has -e '^\.' -e partial && ok || fail "disk full left: $names"
    got=$(dump_dir "$work/full-copy" '*.pcap' cat)
    [ -n "$got" ] && [ "$got" == "$(echo "$want" | head -n "$(echo "$got" | wc -l)")" ] && ok ||
      fail "files kept after the disk filled are not a prefix of the answer"
  else
    echo "note: could not mount a tmpfs; disk-full case skipped"
  fi
fi

echo "export_test: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
