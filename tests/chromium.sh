# Headless Chromium for the browser tests (sourced by tests/web_page*_test.sh): Debian's chromium, kept on
# loopback, with a net log, driven over the DevTools protocol by tests/devtools.py.
# The sourcing script provides $work, the pids array, ok, fail and finish.
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
PY=/usr/bin/python3  # Debian's python, which sees Debian's python3-websocket
export PYTHONDONTWRITEBYTECODE=1  # no __pycache__ in tests/
TESTS_DIR=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")

# Prints why the browser tests cannot run here, or nothing.
chromium_missing() {
  if [ ! -x "$CHROMIUM" ]; then echo "chromium not installed (Debian package chromium)"
  elif ! { [ -x "$PY" ] && "$PY" -c 'import websocket' 2>/dev/null; }; then
    echo "python3-websocket not installed (Debian package python3-websocket)"
  fi
}

# Only loopback, and nothing that phones home. The resolver rules answer every name but localhost with "not
# found" without asking DNS: Chromium still starts a few requests of its own (sign-in, component updates) that
# the flags do not stop, and these end there. chromium_check_loopback checks the net log for anything sent.
CHROME_FLAGS=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking
              --disable-component-update --disable-sync --no-proxy-server --no-default-browser-check
              --disable-extensions --disable-default-apps --mute-audio --password-store=basic
              --disable-features=NetworkTimeServiceQuerying,AutofillServerCommunication
              "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1")

# chromium_start NAME [FLAGS...]: Chromium on about:blank with the DevTools protocol on a free loopback port,
# profile $work/NAME, net log $work/NAME.netlog, output $work/NAME.log; sets devtools_port and chromium_pid.
chromium_start() {
  local name=$1
  shift
  "$CHROMIUM" "${CHROME_FLAGS[@]}" --remote-debugging-port=0 --user-data-dir="$work/$name" \
    --log-net-log="$work/$name.netlog" "$@" about:blank >"$work/$name.log" 2>&1 &
  chromium_pid=$!
  pids+=($chromium_pid)
  for _ in $(seq 200); do [ -s "$work/$name/DevToolsActivePort" ] && break; sleep 0.1; done
  devtools_port=$(head -1 "$work/$name/DevToolsActivePort" 2>/dev/null)
  [ -n "$devtools_port" ] || { fail "chromium did not open its DevTools port: $(tail -5 "$work/$name.log")"; finish; }
}

# chromium_stop: waits up to 10 s for Chromium to exit (the driver closes it), then ends it.
chromium_stop() {
  for _ in $(seq 100); do kill -0 "$chromium_pid" 2>/dev/null || break; sleep 0.1; done
  kill "$chromium_pid" 2>/dev/null
  wait "$chromium_pid" 2>/dev/null
}

# chromium_check_loopback NETLOG: Chromium sent nothing beyond loopback (no DNS query, no TCP connection, no
# UDP datagram).
chromium_check_loopback() {
  local out
  out=$("$PY" "$TESTS_DIR/devtools.py" offsite "$1" 2>&1) && [ -z "$out" ] && ok ||
    fail "chromium sent beyond loopback ($1): $(echo "$out" | sort | uniq -c | head -5)"
}

# chromium_checks SCRIPT ARGS...: runs a python3 script (which imports devtools) and counts its PASS and FAIL
# lines; prints its NOTE lines.
chromium_checks() {
  local out="$work/checks.$RANDOM.out" rc verdict rest
  PYTHONPATH="$TESTS_DIR" "$PY" "$@" >"$out" 2>&1
  rc=$?
  while read -r verdict rest; do
    case "$verdict" in
      PASS) ok ;;
      FAIL) fail "$rest" ;;
      NOTE) echo "$rest" ;;
    esac
  done < "$out"
  [ $rc -eq 0 ] || fail "$(basename "$1") exited $rc: $(grep -v '^PASS' "$out" | tail -5)"
}
