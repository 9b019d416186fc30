#!/usr/bin/env bash
# Compression benchmark: for each zstd level, `rewind import --compress zstd:N` of a trace — store size,
# ratio, wall and CPU time per GB — next to the command-line gzip and zstd on the same pcap, and a query
# over the compressed store. Prints a Markdown report.
#   usage: bench/compression_bench.sh TRACE [LEVELS...]    (default levels: 1 3 6 9 19)
set -euo pipefail
cd "$(dirname "$0")/.."
trace=$(readlink -f "${1:?usage: compression_bench.sh TRACE [LEVELS...]}")
shift
levels=("$@")
[ ${#levels[@]} -gt 0 ] || levels=(1 3 6 9 19)
rewind=$PWD/build/rewind
work=$(mktemp -d /tmp/rewind-zbench.XXXXXX)
trap 'rm -rf "$work"' EXIT
bytes=$(stat -L -c %s "$trace")
gb=$(awk -v b="$bytes" 'BEGIN { printf "%.4f", b / 1e9 }')
t() { /usr/bin/time -o "$work/t" -f "%e %U %S %M" "$@"; cat "$work/t" | tail -1; }
cat "$trace" > /dev/null   # the trace comes from the page cache for every run
echo "### Compression: $(basename "$trace") ($(awk -v b="$bytes" 'BEGIN{printf "%.1f", b/1e6}') MB)"
echo
echo "Command: \`bench/compression_bench.sh $trace ${levels[*]}\`. CPU = user + system seconds of the whole"
echo "process per GB of trace (for rewind: reading, indexing, compressing, writing); MB/s = trace bytes / wall."
echo
echo "| | stored bytes | ratio (trace / stored) | wall s | MB/s | CPU s per GB |"
echo "|---|---|---|---|---|---|"
row() {  # name stored wall user sys
  awk -v n="$1" -v st="$2" -v w="$3" -v u="$4" -v s="$5" -v b="$bytes" -v gb="$gb" \
    'BEGIN { printf "| %s | %d | %.2f | %.2f | %.0f | %.2f |\n", n, st, b / st, w, b / w / 1e6, (u + s) / gb }'
}
rm -rf "$work/raw"
read -r w u s m <<< "$(t "$rewind" import -q --dir "$work/raw" "$trace")"
row "rewind import, uncompressed" "$(du -sb "$work/raw/PKT0" | cut -f1)" "$w" "$u" "$s"
for l in "${levels[@]}"; do
  rm -rf "$work/z$l"
  read -r w u s m <<< "$(t "$rewind" import -q --compress "zstd:$l" --dir "$work/z$l" "$trace")"
  row "rewind import, zstd:$l" "$(du -sb "$work/z$l/PKT0" | cut -f1)" "$w" "$u" "$s"
done
for l in 1 3 19; do
  read -r w u s m <<< "$(t sh -c "zstd -q -$l -c '$trace' > '$work/out.zst'")"
  row "peer: zstd -$l (file, one stream)" "$(stat -c %s "$work/out.zst")" "$w" "$u" "$s"
done
for l in 1 6; do
  read -r w u s m <<< "$(t sh -c "gzip -$l -c '$trace' > '$work/out.gz'")"
  row "peer: gzip -$l (file, one stream)" "$(stat -c %s "$work/out.gz")" "$w" "$u" "$s"
done
rm -f "$work/out.zst" "$work/out.gz"
echo
# Queries over the compressed store read and decompress only the blocks they need.
l=${levels[1]:-${levels[0]}}
for q in "tcp" "udp and port 53"; do
  read -r w1 _ <<< "$(t sh -c "'$rewind' query --dir '$work/raw' '$q' > '$work/a.pcap'")"
  read -r w2 _ <<< "$(t sh -c "'$rewind' query --dir '$work/z$l' '$q' > '$work/b.pcap'")"
  same=no; cmp -s "$work/a.pcap" "$work/b.pcap" && same=yes
  echo "Query \`$q\` (page cache warm): uncompressed store $w1 s, zstd:$l store $w2 s; identical answers: $same."
  echo
done
