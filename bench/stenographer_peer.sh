# Debian's Stenographer as a benchmark peer (sourced by bench scripts; see ../shared/PEERS.md). Runs the
# `stenographer` server as its own user with a config in STENO_WORK, capturing STENO_IFACE (which must be a veth
# end inside a network namespace the calling script created) and answering on 127.0.0.1:STENO_PORT over mutual
# TLS with stenokeys' certificates.
#   steno_configure WORK IFACE PORT FLAGS_JSON   writes WORK/steno.conf (FLAGS_JSON: stenotype's "Flags", e.g.
#                                                [] for Debian's defaults) and makes WORK/certs once
#   steno_start                                   starts the server (sets steno_pid); returns at once
#   steno_wait_for_packets                        until stenotype's first packet file is on disk (traffic must
#                                                 flow meanwhile); exits the script after 300 s or if
#                                                 the server has exited
#   steno_query QUERY OUT                         POST /query, answer into OUT; prints "HTTP_CODE SECONDS"
#   steno_stop                                    SIGINT, then SIGKILL after 2 s (it may hang on an idle link),
#                                                 and removes the server's temporary directory
#   steno_version                                 "stenographer <Debian version>"
#   steno_filler_start IFACE SECONDS              sends a frame of an experimental EtherType (0x88b5, which no
#                                                 query matches) every 10 ms out of IFACE, so that stenotype's
#                                                 blocks and files keep rotating; sets steno_filler_pid
#   steno_filler_stop

steno_configure() {
  STENO_WORK=$1 STENO_IFACE=$2 STENO_PORT=$3
  local flags=$4
  mkdir -p "$STENO_WORK/steno/pkt" "$STENO_WORK/steno/idx"
  chown -R stenographer:stenographer "$STENO_WORK/steno"
  cat > "$STENO_WORK/steno.conf" <<EOF
{ "Threads": [ { "PacketsDirectory": "$STENO_WORK/steno/pkt", "IndexDirectory": "$STENO_WORK/steno/idx",
                 "MaxDirectoryFiles": 30000, "DiskFreePercentage": 10 } ],
  "StenotypePath": "/usr/sbin/stenotype", "Interface": "$STENO_IFACE", "Port": $STENO_PORT, "Host": "127.0.0.1",
  "Flags": $flags, "CertPath": "$STENO_WORK/certs" }
EOF
  if [ ! -f "$STENO_WORK/certs/ca_cert.pem" ]; then
    mkdir -p "$STENO_WORK/certs"
    STENOGRAPHER_CONFIG=$STENO_WORK/steno.conf stenokeys stenographer stenographer >&2
  fi
}

steno_start() {
  setpriv --reuid=stenographer --regid=stenographer --init-groups \
    stenographer -config "$STENO_WORK/steno.conf" -syslog=false -v 1 > "$STENO_WORK/steno.log" 2>&1 &
  steno_pid=$!
}

steno_wait_for_packets() {
  local t0; t0=$(date +%s)
  until find "$STENO_WORK/steno/pkt" -type f -size +0 | grep -q .; do
    (( $(date +%s) - t0 < 300 )) || { echo "stenotype wrote nothing in 300 s:" >&2; tail -20 "$STENO_WORK/steno.log" >&2; exit 1; }
    kill -0 "$steno_pid" 2>/dev/null || { echo "stenographer exited:" >&2; tail -20 "$STENO_WORK/steno.log" >&2; exit 1; }
    sleep 0.5
  done
}

steno_query() {
  curl -s --max-time 600 --cert "$STENO_WORK/certs/client_cert.pem" --key "$STENO_WORK/certs/client_key.pem" \
    --cacert "$STENO_WORK/certs/ca_cert.pem" --data-binary "$1" -o "$2" -w '%{http_code} %{time_total}\n' \
    "https://127.0.0.1:$STENO_PORT/query" || echo "000 0"
}

steno_stop() {
  [ -n "${steno_pid:-}" ] || return 0
  local st tmp
  st=$(pgrep -P "$steno_pid" -x stenotype || true)
  kill -INT "$steno_pid" 2>/dev/null || true
  sleep 2
  kill -9 "$steno_pid" $st 2>/dev/null || true
  steno_pid=
  tmp=$(sed -n 's/.*"--dir=\(\/tmp\/stenographer[0-9]*\)".*/\1/p' "$STENO_WORK/steno.log" 2>/dev/null | head -1)
  [ -n "$tmp" ] && rm -rf "$tmp"
  return 0
}

steno_version() { echo "stenographer $(dpkg-query -W -f '${Version}' stenographer 2>/dev/null)"; }

steno_filler_start() {
  python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW); s.bind((sys.argv[1], 0))
end = time.monotonic() + float(sys.argv[2])
while time.monotonic() < end:
    s.send(b"\xff" * 6 + b"\x02\0\0\0\0\x01" + b"\x88\xb5" + b"rewind benchmark filler".ljust(46, b"."))
    time.sleep(0.01)' "$1" "$2" &
  steno_filler_pid=$!
}

steno_filler_stop() { [ -z "${steno_filler_pid:-}" ] || kill "$steno_filler_pid" 2>/dev/null || true; steno_filler_pid=; }
