#!/usr/bin/env bash
# Browser test of the web page served at / by `rewind serve`: a real headless Chromium loads the page, types
# queries, runs them (Enter and the Run button), and the preview must show what `rewind query | tcpdump`
# counts; a malformed query must show the server's message with a caret under its position; the download
# link must fetch the same packets; a bearer token must work from the URL and from the token field.
# The browser is driven over the DevTools protocol (a websocket on loopback) by a small python3 script
# (tests/chromium.sh, tests/devtools.py); its net log must show nothing sent beyond loopback.
# usage: web_page_test.sh PATH/TO/rewind PATH/TO/shared/pcaps
# Needs Debian's chromium and python3-websocket (scripts/install-deps.sh); installs nothing, exits 77 without.
# WEB_PAGE_SCREENSHOT=FILE also saves the page with a query run (docs/web-page.png is made this way).
set -uo pipefail
REWIND=${1:?rewind binary}
PCAPS=${2:?shared pcaps dir}
source "$(dirname "$(readlink -f "$0")")/chromium.sh"
missing=$(chromium_missing)
[ -z "$missing" ] || { echo "SKIP: $missing"; exit 77; }
command -v tcpdump >/dev/null || { echo "SKIP: tcpdump not installed"; exit 77; }

work=$(mktemp -d -p "${TMPDIR:-/tmp}" rewind-web-test.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT
passed=0 failed=0
ok() { passed=$((passed + 1)); }
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }
finish() { echo "web_page_test: $passed passed, $failed failed"; [ "$failed" -eq 0 ]; exit; }

# Starts `rewind serve` on a free loopback port (ARGS...); sets $base to its URL.
serve() {
  local log="$work/serve$((${#pids[@]})).log"
  "$REWIND" serve --listen 127.0.0.1:0 "$@" 2>"$log" &
  pids+=($!)
  base=""
  for _ in $(seq 100); do
    base=$(sed -n 's|.*rewind serve: \(http://127\.0\.0\.1:[0-9]*\)/ .*|\1|p' "$log")
    [ -n "$base" ] && return 0
    sleep 0.1
  done
  fail "rewind serve did not start: $(cat "$log")"
  finish
}

store="$work/store"
"$REWIND" import -q --dir "$store" "$PCAPS/arkime/IKEv2.pcap" "$PCAPS/zeek/q-in-q.pcap" "$PCAPS/tcpdump/icmpv6.pcap" ||
  { fail "import"; finish; }
echo secret-token-123 > "$work/token"
serve --dir "$store"
open_base=$base
serve --dir "$store" --token_file "$work/token"
token_base=$base

# What the page must show for each query: the count tcpdump reads from `rewind query`, and the first packet's
# time (UTC, ns). Queries are separated by newlines in a file the driver reads.
: > "$work/expect"
for q in "udp" "" "host 172.19.51.37" "udp and after 2017-01-01T00:00:00Z" "ip6 and not udp" "port 9"; do
  n=$("$REWIND" query --dir "$store" "$q" | tcpdump -nr - 2>/dev/null | wc -l)
  t=$("$REWIND" query --dir "$store" --nanos "$q" | tcpdump --time-stamp-precision=nano -tt -nr - 2>/dev/null |
      head -1 | awk '{print $1}')
  printf '%s\t%s\t%s\n' "$n" "${t:-none}" "$q" >> "$work/expect"
done
total=$("$REWIND" query --dir "$store" "" | tcpdump -nr - 2>/dev/null | wc -l)

chromium_start profile --window-size=1280,900

cat > "$work/drive.py" <<'PYEOF'
"""Drives the page in Chromium over the DevTools protocol and prints PASS/FAIL lines."""
import datetime, json, os, subprocess, sys, time, urllib.parse, urllib.request
from devtools import Page, check, get

devtools_port, base, token_base, expect_file, total, store = sys.argv[1:7]
total = int(total)
TOKEN = "secret-token-123"


PROTOS = {1: "icmp", 2: "igmp", 6: "tcp", 17: "udp", 47: "gre", 50: "esp", 51: "ah", 58: "icmp6", 132: "sctp"}


def expected_rows(q, base_url=base, headers=None):
    body = json.loads(get(base_url + "/preview?rows=50&q=" + urllib.parse.quote(q), headers))
    out = []
    for r in body["rows"]:
        ip = "src" in r
        out.append([r["time"].replace("T", " ").rstrip("Z"), r["src"] if ip else "(not IP)", r["dst"] if ip else "",
                    PROTOS.get(r["proto"], str(r["proto"])) if ip else "\u2014", str(r.get("sport", "")),
                    str(r.get("dport", "")), str(r["len"])])
    return out


def utc(epoch):  # "1363900699.548138000" -> "2013-03-21 21:18:19.548138000"
    sec, frac = epoch.split(".")
    return datetime.datetime.fromtimestamp(int(sec), datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S") + "." + frac


def tcpdump_count(data):
    p = subprocess.run(["tcpdump", "-nr", "-"], input=data, capture_output=True)
    return len(p.stdout.splitlines())


page = Page(devtools_port)
check("page loads", page.load(base + "/"))

# The sensor panel, from /stats.
check("sensor packets", page.wait("document.getElementById('s-packets').textContent.startsWith(%s)"
                                  % json.dumps("{:,}".format(total))),
      page.js("document.getElementById('s-packets').textContent"))
sensor = page.js("document.getElementById('sensor').innerText")
check("sensor span", "oldest 2012-04-13 12:26:12" in sensor and "newest 2017-06-27 11:12:21" in sensor, sensor)
check("sensor rate and drops", page.js("document.getElementById('s-rate').textContent").startswith("no live capture")
      and page.js("document.getElementById('s-drops').textContent").startswith("0"), sensor)
check("sensor disk", "free of" in page.js("document.getElementById('s-disk').textContent"), sensor)

# Queries typed and run, alternately with Enter and the Run button.
expect = [line.rstrip("\n").split("\t", 2) for line in open(expect_file)]
for i, (count, first_time, q) in enumerate(expect):
    count = int(count)
    how = "enter" if i % 2 == 0 else "click"
    name = "query %r (%s)" % (q, how)
    state = page.run(q, how)
    if not check(name + " ran", state == "done", state):
        continue
    ds = page.js("({...document.getElementById('preview').dataset})")
    check(name + " count", ds.get("count") == str(count) and ds.get("complete") == "true", (ds, count))
    check(name + " count shown", page.js("document.getElementById('count').textContent") == "{:,}".format(count),
          page.js("document.getElementById('summary').textContent"))
    rows = page.rows()
    check(name + " rows", len(rows) == min(count, 50), len(rows))
    check(name + " rows equal /preview", rows == expected_rows(q), rows[:2])
    if count:
        check(name + " first time", rows and rows[0][0] == utc(first_time), (rows[0][0] if rows else None, first_time))
    else:
        check(name + " says nothing matches", "nothing matches" in page.js("document.getElementById('shown').textContent"))
    check(name + " in the URL", urllib.parse.parse_qs(urllib.parse.urlsplit(page.js("location.href")).query,
                                                      keep_blank_values=True).get("q") == [q], page.js("location.href"))
    check(name + " no error shown", page.js("document.getElementById('error').hidden"))

# The download link fetches the same packets, as pcap and as pcapng.
q = "udp"
page.run(q, "enter")
href = page.js("document.getElementById('download').href")
check("download href", href == base + "/query?q=udp&format=pcap", href)
data = get(href)
check("download pcap", data[:4] in (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4") and tcpdump_count(data) == int(expect[0][0]),
      (data[:4], tcpdump_count(data)))
page.js("(() => { const s = document.getElementById('format'); s.value = 'pcapng';"
        " s.dispatchEvent(new Event('change')); })()")
href = page.js("document.getElementById('download').href")
data = get(href)
check("download pcapng", "format=pcapng" in href and data[:4] == b"\x0a\x0d\x0d\x0a"
      and page.js("document.getElementById('download').textContent") == "Download pcapng", (href, data[:4]))

# A malformed query: the server's message, a caret under the position, no preview, no download.
for bad, pos, words in (("tcp and (port 80", 8, "unbalanced"), ("udp and after 5x ago", None, "unit")):
    name = "malformed %r" % bad
    state = page.run(bad, "click")
    check(name + " refused", state == "error", state)
    try:
        get(base + "/preview?q=" + urllib.parse.quote(bad))
        server = {}
    except urllib.error.HTTPError as e:
        server = json.loads(e.read())
    if pos is None:
        pos = server.get("position")
    shown = page.js("(() => { const e = document.getElementById('error'); return {hidden: e.hidden,"
                    " msg: e.querySelector('.msg').textContent, pos: e.dataset.position,"
                    " line: e.querySelector('.qline').textContent, caret: e.querySelector('.caret').textContent,"
                    " mark: (e.querySelector('mark') || {}).textContent}; })()")
    check(name + " message", not shown["hidden"] and shown["msg"] == server.get("error") and words in shown["msg"],
          (shown, server))
    check(name + " caret", shown["pos"] == str(pos) and shown["line"] == bad and shown["caret"] == " " * pos + "^"
          and shown["mark"] == bad[pos], shown)
    check(name + " no rows", page.rows() == [] and page.js("document.getElementById('download').classList.contains('disabled')"))
# Fixing it clears the error.
state = page.run("udp", "enter")
check("error cleared", state == "done" and page.js("document.getElementById('error').hidden"))

# A query in the page's URL fills the box and runs.
page.load(base + "/?q=" + urllib.parse.quote("host 172.19.51.37"))
state = page.finished("host 172.19.51.37")
check("autorun from ?q=", state == "done" and page.js("document.getElementById('q').value") == "host 172.19.51.37"
      and page.js("document.getElementById('preview').dataset.count") == expect[2][0],
      page.js("({...document.getElementById('preview').dataset})"))
# Example links fill the box and run.
page.js("document.querySelector('#examples a[data-q=\"udp port 53\"]').click()")
check("example link", page.finished("udp port 53") == "done" and page.js("document.getElementById('q').value") == "udp port 53")

# A server that wants a bearer token: the page asks for it, takes it from its field or from ?token=.
page.load(token_base + "/?q=udp")
state = page.finished("udp")
check("token asked for", state == "error" and not page.js("document.getElementById('auth').hidden")
      and "token" in page.js("document.getElementById('error').textContent"), state)
page.type("#token", TOKEN)
page.key("Enter", 13, "\r")
check("token from the field", page.wait("document.getElementById('preview').dataset.state === 'done'")
      and page.js("document.getElementById('preview').dataset.count") == expect[0][0])
page.load(token_base + "/?token=" + TOKEN + "&q=udp")
check("token from the URL", page.finished("udp") == "done"
      and page.js("document.getElementById('preview').dataset.count") == expect[0][0]
      and page.wait("document.getElementById('s-packets').textContent.startsWith(%s)" % json.dumps("{:,}".format(total))))
href = page.js("document.getElementById('download').href")
check("token download", "token=" + TOKEN in href and tcpdump_count(get(href)) == int(expect[0][0]), href)

# A capture writing to the store (its counter file, as a capture thread writes it every second): the rate
# comes from two /stats polls, 5 s apart, and stops being "live" when the counters stop moving.
def capture_counters(time_ns, packets):
    path = store + "/capture0.json"
    with open(path + ".tmp", "w") as f:
        f.write('{"thread":0,"time_ns":%d,"packets":%d,"bytes":%d,"kernel_packets":%d,"kernel_drops":3,'
                '"write_drops":2,"write_errors":0,"blocks":1,"files":1,"max_write_latency_us":10}\n'
                % (time_ns, packets, packets * 100, packets + 5))
    os.rename(path + ".tmp", path)

now_ns = time.time_ns()
capture_counters(now_ns, 1000)
page.load(base + "/")
rate = lambda: page.js("document.getElementById('s-rate').textContent")
check("capture measuring", page.wait("document.getElementById('s-rate').textContent.startsWith('measuring')"), rate())
capture_counters(now_ns + 2 * 10**9, 1000 + 2 * 1234)
check("capture rate", page.wait("document.getElementById('s-rate').textContent.startsWith('1,234 packets/s')", 12)
      and "987 kbit/s" in rate() and "1 capture thread" in rate(), rate())
drops = page.js("document.getElementById('s-drops').textContent")
check("capture drops", drops.startswith("5") and "kernel 3" in drops and "write 2" in drops, drops)
check("capture stopped", page.wait("document.getElementById('s-rate').textContent.startsWith('no live capture')", 12)
      and "counters last written" in rate(), rate())
os.remove(store + "/capture0.json")

page.close()
PYEOF

chromium_checks "$work/drive.py" "$devtools_port" "$open_base" "$token_base" "$work/expect" "$total" "$store"
[ "$passed" -gt 20 ] || fail "the driver checked too little ($passed checks passed)"
chromium_stop
chromium_check_loopback "$work/profile.netlog"

# A screenshot from the command line, with a query run from the URL (how docs/web-page.png is made).
shot="$work/page.png"
"$CHROMIUM" "${CHROME_FLAGS[@]}" --user-data-dir="$work/profile2" --log-net-log="$work/profile2.netlog" \
  --window-size=1280,900 --hide-scrollbars --virtual-time-budget=5000 --screenshot="$shot" "$open_base/?q=udp" \
  >"$work/shot.log" 2>&1
[ "$(head -c 8 "$shot" 2>/dev/null | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ] && ok ||
  fail "no screenshot: $(tail -3 "$work/shot.log")"
[ -n "${WEB_PAGE_SCREENSHOT:-}" ] && cp "$shot" "$WEB_PAGE_SCREENSHOT"
chromium_check_loopback "$work/profile2.netlog"

finish
