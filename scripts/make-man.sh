#!/usr/bin/env bash
# Writes the man page rewind(1) from the binary's own help: `rewind --help` and `--version` through help2man,
# plus a SUBCOMMANDS section with each subcommand's `--help`, so the page never disagrees with the program.
#   usage: scripts/make-man.sh REWIND_BINARY OUT.1
set -euo pipefail
bin=$1 out=$2
inc=$(mktemp)
trap 'rm -f "$inc"' EXIT
{
  echo "[SUBCOMMANDS]"
  for c in import query export stats capture repair verify serve run prune config; do
    echo ".SS rewind $c"
    echo ".nf"
    "$bin" "$c" --help | sed 's/\\/\\\\/g; s/^\./\\\&./'
    echo ".fi"
  done
  echo "[FILES]"
  echo ".TP"
  echo "/etc/rewind/rewind.json"
  echo "the configuration of \\fBrewind run\\fR (JSON; unknown keys are refused)"
  echo ".TP"
  echo "/var/lib/rewind"
  echo "the store of the packaged service"
  echo "[SEE ALSO]"
  echo "rewind.json(5), tcpdump(1), pcap-filter(7), /usr/share/doc/rewind/README.md, /usr/share/doc/rewind/operations.md"
} > "$inc"
help2man --no-info --name "full packet capture you can query" --include "$inc" --output "$out" "$bin"
