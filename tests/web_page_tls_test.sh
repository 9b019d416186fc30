#!/usr/bin/env bash
# Browser test of the web page over HTTPS with a client certificate (mutual TLS): Debian's headless Chromium,
# holding the client certificate of scripts/make-certs.sh in its NSS database and choosing it by the
# AutoSelectCertificateForUrls policy, loads the page from `rewind serve --tls_client_ca`, runs queries and
# downloads their answers over several TLS connections, pausing longer than the server keeps an idle
# connection, so that each step needs a new connection that resumes a TLS session. It checks:
#   - the page's results (preview count, sensor panel) and the downloaded answers equal the command line's;
#   - Chromium's net log: several handshakes, sessions resumed, and no handshake or request failed after the
#     certificate was chosen (a server without a session-id context fails every resumed one);
#   - the server's audit lines carry the certificate's subject, on resumed connections too;
#   - the same browser without the client certificate gets no page and no data: the server refuses it;
#   - neither browser sent anything beyond loopback.
# usage: web_page_tls_test.sh PATH/TO/rewind PATH/TO/shared/pcaps
# Needs Debian's chromium, python3-websocket, openssl and libnss3-tools (scripts/install-deps.sh), and root to
# write the policy (a file of its own in /etc/chromium/policies/managed, removed at exit); exits 77 without.
set -uo pipefail
REWIND=${1:?rewind binary}
PCAPS=${2:?shared pcaps dir}
ROOT=$(dirname "$(readlink -f "$0")")/..
source "$ROOT/tests/chromium.sh"
missing=$(chromium_missing)
[ -z "$missing" ] || { echo "SKIP: $missing"; exit 77; }
command -v openssl >/dev/null || { echo "SKIP: openssl not installed"; exit 77; }
for t in certutil pk12util; do
  command -v $t >/dev/null || { echo "SKIP: $t not installed (Debian package libnss3-tools)"; exit 77; }
done
POLICY_DIR=/etc/chromium/policies/managed  # where Debian's chromium reads mandatory policies

work=$(mktemp -d -p "${TMPDIR:-/tmp}" rewind-web-tls-test.XXXXXX)
pids=()
policy=""
made_dirs=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  [ -n "$policy" ] && rm -f "$policy"
  for ((i = ${#made_dirs[@]} - 1; i >= 0; i--)); do rmdir "${made_dirs[i]}" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP  # the policy file must go even then
passed=0 failed=0
ok() { passed=$((passed + 1)); }
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }
finish() { echo "web_page_tls_test: $passed passed, $failed failed"; [ "$failed" -eq 0 ]; exit; }
# grep that reads all its input: with pipefail, grep -q exiting at the first match can fail the writer.
has() { grep "$@" > /dev/null; }

for d in /etc/chromium /etc/chromium/policies "$POLICY_DIR"; do
  [ -d "$d" ] && continue
  mkdir "$d" 2>/dev/null || { echo "SKIP: cannot create $d for the client certificate policy (needs root)"; exit 77; }
  made_dirs+=("$d")
done
[ -w "$POLICY_DIR" ] || { echo "SKIP: cannot write $POLICY_DIR (needs root)"; exit 77; }

# The certificates, and two NSS databases (Chromium reads $HOME/.pki/nssdb): both trust the test CA for the
# server's certificate; one also holds the client's certificate and key.
bash "$ROOT/scripts/make-certs.sh" "$work/certs" >/dev/null || { fail "make-certs.sh"; finish; }
openssl pkcs12 -export -in "$work/certs/client.pem" -inkey "$work/certs/client.key" -name rewind-client \
  -passout pass:test -out "$work/client.p12" || { fail "openssl pkcs12"; finish; }
for home in with-cert without-cert; do
  db=sql:$work/$home/.pki/nssdb
  mkdir -p "$work/$home/.pki/nssdb"
  certutil -N -d "$db" --empty-password && certutil -A -d "$db" -n "rewind test CA" -t "C,," -i "$work/certs/ca.pem" ||
    { fail "NSS database $home"; finish; }
done
pk12util -i "$work/client.p12" -d "sql:$work/with-cert/.pki/nssdb" -W test >/dev/null ||
  { fail "pk12util could not import the client certificate"; finish; }
certutil -L -d "sql:$work/with-cert/.pki/nssdb" | has "^rewind-client *u,u,u" && ok ||
  fail "client certificate not in the NSS database: $(certutil -L -d "sql:$work/with-cert/.pki/nssdb")"

store="$work/store"
"$REWIND" import -q --dir "$store" "$PCAPS/arkime/IKEv2.pcap" "$PCAPS/zeek/q-in-q.pcap" "$PCAPS/tcpdump/icmpv6.pcap" ||
  { fail "import"; finish; }

# The server closes a connection idle for 1 s; the driver pauses longer, so each step opens a new connection.
log="$work/serve.log"
"$REWIND" serve --dir "$store" --listen 127.0.0.1:0 --idle_timeout_sec 1 --tls_cert "$work/certs/server.pem" \
  --tls_key "$work/certs/server.key" --tls_client_ca "$work/certs/ca.pem" 2>"$log" &
pids+=($!)
base=""
for _ in $(seq 100); do
  base=$(sed -n 's|.*rewind serve: \(https://127\.0\.0\.1:[0-9]*\)/ .*|\1|p' "$log")
  [ -n "$base" ] && break
  sleep 0.1
done
[ -n "$base" ] || { fail "rewind serve did not start: $(cat "$log")"; finish; }
port=${base##*:}

# Chromium without a screen cannot ask which certificate to send: the policy picks the one the test CA issued,
# for this server only.
policy="$POLICY_DIR/rewind-web-page-tls-test-$$.json"
printf '{"AutoSelectCertificateForUrls": ["{\\"pattern\\": \\"https://127.0.0.1:%s\\", \\"filter\\": {\\"ISSUER\\": {\\"CN\\": \\"rewind CA\\"}}}"]}\n' \
  "$port" > "$policy" || { fail "cannot write $policy"; finish; }

# What the page must show for each query and what its download must hold: the command line's count and answer.
: > "$work/expect"
for q in "udp" "host 172.19.51.37" "ip6 and not udp"; do
  n=$("$REWIND" query --dir "$store" --stats "$q" 2>&1 >/dev/null | sed -n 's/^matched \([0-9]*\) packets.*/\1/p')
  sha=$("$REWIND" query --dir "$store" "$q" | sha256sum | cut -d' ' -f1)
  printf '%s\t%s\t%s\n' "$n" "$sha" "$q" >> "$work/expect"
done
total=$("$REWIND" query --dir "$store" --stats "" 2>&1 >/dev/null | sed -n 's/^matched \([0-9]*\) packets.*/\1/p')

cat > "$work/drive.py" <<'PYEOF'
"""Drives the page over mutual TLS (or fails to, without the client certificate); prints PASS/FAIL lines."""
import json, sys, time, urllib.parse
from devtools import Page, check

mode, devtools_port, base, expect_file, total = sys.argv[1:6]
PAUSE = 1.6  # longer than the server's --idle_timeout_sec 1: the next request needs a new TLS connection
page = Page(devtools_port)
expect = [line.rstrip("\n").split("\t", 2) for line in open(expect_file)]
first_url = base + "/?q=" + urllib.parse.quote(expect[0][2])

if mode == "without-cert":
    r = page.call("Page.navigate", url=first_url)
    time.sleep(1)
    print("NOTE without a client certificate Chromium got: %s" % r.get("errorText"), flush=True)
    check("without a client certificate: no page", r.get("errorText", "").startswith("net::ERR_")
          and not page.js("!!document.getElementById('q')"), (r, page.js("location.href")))
    page.close()
    sys.exit(0)


def download():
    """Fetches the page's download link from the page; returns [status, bytes, sha256]."""
    return page.js("(async () => { const r = await fetch(document.getElementById('download').href, {cache: 'no-store'});"
                   " const b = await r.arrayBuffer(); const h = await crypto.subtle.digest('SHA-256', b);"
                   " return [r.status, b.byteLength, [...new Uint8Array(h)].map(x => x.toString(16).padStart(2, '0'))"
                   ".join('')]; })()")


if not check("page loads over mutual TLS", page.load(first_url), page.js("location.href")):
    page.close()
    sys.exit(0)
check("sensor panel (/stats)", page.wait("document.getElementById('s-packets').textContent.startsWith(%s)"
                                         % json.dumps("{:,}".format(int(total)))),
      page.js("document.getElementById('s-packets').textContent"))
for i, (count, sha, q) in enumerate(expect):
    name = "query %r" % q
    if i == 0:
        state = page.finished(q)  # run from the URL
    else:
        time.sleep(PAUSE)
        state = page.run(q, "enter" if i % 2 else "click")
    if not check(name + " ran", state == "done", (state, page.js("document.getElementById('error').textContent"))):
        continue
    ds = page.js("({...document.getElementById('preview').dataset})")
    check(name + " count", ds.get("count") == count and ds.get("complete") == "true", (ds, count))
    try:
        got = download()
        check(name + " download", got[0] == 200 and got[2] == sha, (got, sha))
    except RuntimeError as e:
        check(name + " download", False, e)

# The page again, from the start: the document, its script and its data requests.
time.sleep(PAUSE)
check("page reloads", page.load(first_url) and page.finished(expect[0][2]) == "done"
      and page.js("document.getElementById('preview').dataset.count") == expect[0][0])
page.close()
PYEOF

# Chromium's handshakes and requests (its net log) and the server's audit lines.
cat > "$work/netlog.py" <<'PYEOF'
"""Checks a Chromium net log of the driver's run against the server; prints PASS/FAIL lines."""
import re, sys
from devtools import check, netlog, tls_handshakes, url_requests

mode, path, base, server_log, downloads = sys.argv[1:6]
port = base.rsplit(":", 1)[1]
events = netlog(path)
hs = tls_handshakes(events, port)
requests = [r for r in url_requests(events) if r["url"].startswith(base + "/")]
audit = [l.strip() for l in open(server_log) if "query from" in l]
done = [h for h in hs if h["error"] == 0]
# Handshakes in short: local port, then ok or the error, "resumed", and how many certificates Chromium sent.
shown = " ".join("%d:%s%s%s" % (h["local_port"], "ok" if h["error"] == 0 else h["error"],
                               ",resumed" if h["resumed"] else "", "" if h["certs"] is None else ",certs=%d" % h["certs"])
                 for h in hs)

if mode == "without-cert":
    check("without a client certificate: none sent", hs and all(h["certs"] in (None, 0) for h in hs)
          and any(h["certs"] == 0 for h in hs), shown)
    check("without a client certificate: no request answered", requests and all(r["error"] != 0 for r in requests),
          requests)
    check("without a client certificate: no query", audit == [], audit)
    sys.exit(0)

print("NOTE %d TLS handshakes with the server, %d resumed; %d requests" %
      (len(done), sum(h["resumed"] for h in done), len(requests)), flush=True)
check("several TLS connections", len(done) >= 4, shown)
check("the client certificate was sent", any(h["certs"] == 1 for h in done), shown)
check("TLS sessions resumed", sum(h["resumed"] for h in done) >= 2, shown)
# Chromium's first handshakes end with ERR_SSL_CLIENT_AUTH_CERT_NEEDED (-110) while it chooses a certificate;
# after that, none may fail.
first = next((i for i, h in enumerate(hs) if h["error"] == 0), len(hs))
check("no handshake failed once the certificate was chosen",
      all(h["error"] == -110 for h in hs[:first]) and all(h["error"] == 0 for h in hs[first:]), shown)
check("every request answered", len(requests) >= 8 and all(r["error"] == 0 for r in requests),
      [r for r in requests if r["error"] != 0] or len(requests))
# Every download left an audit line with the certificate's subject, some of them on resumed connections.
lines = [re.search(r'query from 127\.0\.0\.1:(\d+) cert /CN=rewind-client "[^"]*": 200, \d+ packets', l) for l in audit]
check("audit lines with the certificate", len(audit) == int(downloads) and all(lines), " | ".join(audit))
resumed_ports = {h["local_port"] for h in done if h["resumed"]}
check("audit lines from resumed connections", any(m and int(m.group(1)) in resumed_ports for m in lines),
      "%s; resumed connections' ports: %s" % (" | ".join(audit), sorted(resumed_ports)))
PYEOF

downloads=$(wc -l < "$work/expect")
HOME="$work/with-cert" chromium_start with-cert
chromium_checks "$work/drive.py" with-cert "$devtools_port" "$base" "$work/expect" "$total"
chromium_stop
for _ in $(seq 50); do [ "$(grep -c 'query from' "$log")" -ge "$downloads" ] && break; sleep 0.1; done
chromium_checks "$work/netlog.py" with-cert "$work/with-cert.netlog" "$base" "$log" "$downloads"
chromium_check_loopback "$work/with-cert.netlog"
[ "$passed" -gt 15 ] || fail "checked too little ($passed checks passed)"

# The same browser and policy without the client certificate: the server refuses the handshake.
before=$(wc -l < "$log")
HOME="$work/without-cert" chromium_start without-cert
chromium_checks "$work/drive.py" without-cert "$devtools_port" "$base" "$work/expect" "$total"
chromium_stop
tail -n +$((before + 1)) "$log" > "$work/serve-after.log"
chromium_checks "$work/netlog.py" without-cert "$work/without-cert.netlog" "$base" "$work/serve-after.log" 0
chromium_check_loopback "$work/without-cert.netlog"

finish
