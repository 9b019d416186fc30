"""Headless Chromium for the browser tests (tests/chromium.sh starts it): a page driven over the DevTools
protocol (a websocket on loopback), and Chromium's net log read back (--log-net-log): what it sent beyond
loopback, and its TLS handshakes.

    python3 devtools.py offsite NETLOG   prints one line for each thing Chromium sent beyond loopback
"""
import ipaddress, json, sys, time, urllib.request

http = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback only, never a proxy


def check(name, cond, detail=""):
    """Prints a PASS or FAIL line (the test scripts count them) and returns cond."""
    print(("PASS " if cond else "FAIL ") + name + ("" if cond else ": " + str(detail)), flush=True)
    return cond


def get(url, headers=None):
    with http.open(urllib.request.Request(url, headers=headers or {}), timeout=30) as r:
        return r.read()


class Page:
    """The first page of the Chromium whose DevTools port is given."""

    def __init__(self, devtools_port):
        import websocket  # Debian's python3-websocket
        targets = json.loads(get("http://127.0.0.1:%s/json/list" % devtools_port))
        page = next(t for t in targets if t.get("type") == "page")
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=30, suppress_origin=True)
        self.next_id = 0

    def call(self, method, **params):
        self.next_id += 1
        my = self.next_id
        self.ws.send(json.dumps({"id": my, "method": method, "params": params}))
        while True:
            m = json.loads(self.ws.recv())
            if m.get("id") == my:
                if "error" in m:
                    raise RuntimeError("%s: %s" % (method, m["error"]))
                return m.get("result", {})

    def js(self, expr):
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            raise RuntimeError("%s: %s" % (expr, r["exceptionDetails"]))
        return r["result"].get("value")

    def wait(self, expr, timeout=20):
        deadline = time.time() + timeout
        while True:
            v = self.js(expr)
            if v or time.time() > deadline:
                return v
            time.sleep(0.1)

    def load(self, url):
        self.js("window.oldPage = true")  # gone once the new document is there
        self.call("Page.navigate", url=url)
        return self.wait("!window.oldPage && document.readyState === 'complete' && !!document.getElementById('q')")

    def click(self, selector):
        x, y = self.js("(() => { const r = document.querySelector(%s).getBoundingClientRect();"
                       " return [r.x + r.width / 2, r.y + r.height / 2]; })()" % json.dumps(selector))
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    def type(self, selector, text):
        """Clicks into the field, selects what is there, and types the text key by key."""
        self.click(selector)
        self.js("document.querySelector(%s).select()" % json.dumps(selector))
        if text == "":
            self.key("Backspace", 8)
        for ch in text:
            self.call("Input.dispatchKeyEvent", type="keyDown", text=ch, key=ch, unmodifiedText=ch)
            self.call("Input.dispatchKeyEvent", type="keyUp", key=ch)

    def key(self, key, code, text=None):
        extra = {"text": text} if text else {}
        self.call("Input.dispatchKeyEvent", type="keyDown", key=key, code=key, windowsVirtualKeyCode=code,
                  nativeVirtualKeyCode=code, **extra)
        self.call("Input.dispatchKeyEvent", type="keyUp", key=key, code=key, windowsVirtualKeyCode=code,
                  nativeVirtualKeyCode=code)

    def run(self, q, how):
        """Types the query and runs it with Enter or the Run button; returns the preview's state."""
        self.type("#q", q)
        if how == "enter":
            self.key("Enter", 13, "\r")
        else:
            self.click("#run")
        return self.finished(q)

    def finished(self, q):
        return self.wait("(() => { const p = document.getElementById('preview');"
                         " return p.dataset.query === %s && (p.dataset.state === 'done' || p.dataset.state === 'error')"
                         " && p.dataset.state; })()" % json.dumps(q))

    def rows(self):
        return self.js("[...document.querySelectorAll('#rows tbody tr')].map(tr => [...tr.cells].map(c => c.textContent))")

    def close(self):
        try:
            self.call("Browser.close")
        except Exception:
            pass


def netlog(path):
    """Chromium's net log as (event name, source id, phase, params) tuples; phase is "begin", "end" or ""."""
    text = open(path).read()
    try:
        log = json.loads(text)
    except ValueError:  # Chromium was ended before it closed the log: drop the last, partial event
        lines = text.rstrip().splitlines()
        while lines:
            try:
                log = json.loads("\n".join(lines).rstrip().rstrip(",") + "]}")
                break
            except ValueError:
                lines.pop()
        else:
            raise
    names = {v: k for k, v in log["constants"]["logEventTypes"].items()}
    phases = {v: k for k, v in log["constants"]["logEventPhase"].items()}
    out = []
    for e in log.get("events", []):
        phase = {"PHASE_BEGIN": "begin", "PHASE_END": "end"}.get(phases.get(e.get("phase")), "")
        out.append((names.get(e["type"], str(e["type"])), e["source"]["id"], phase, e.get("params", {})))
    return out


def is_loopback(address):
    """address: "127.0.0.1:443", "[::1]:443" or a bare address."""
    host = address.rsplit(":", 1)[0] if address.count(":") == 1 or address.startswith("[") else address
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def offsite(events):
    """What Chromium sent beyond loopback: DNS queries, TCP connections, UDP datagrams. (A UDP socket that is only
    connected, as Chromium's IPv6 reachability probe does, sends nothing.)"""
    out, udp_peer = [], {}
    for name, source, phase, p in events:
        if name == "DNS_TRANSACTION" and phase == "begin":
            out.append("DNS query for %s" % p.get("hostname"))
        elif name == "TCP_CONNECT_ATTEMPT" and phase == "begin" and not is_loopback(p.get("address", "")):
            out.append("TCP connection to %s" % p.get("address"))
        elif name == "UDP_CONNECT" and phase == "begin":
            udp_peer[source] = p.get("address", "")
        elif name == "UDP_BYTES_SENT":
            peer = p.get("address") or udp_peer.get(source, "")
            if not is_loopback(peer):
                out.append("UDP datagram to %s" % peer)
    return out


def tls_handshakes(events, port):
    """Chromium's TLS handshakes with 127.0.0.1:port, in order: dicts with local_port, error (0 when it
    succeeded), resumed, certs (how many client certificates it sent; None if the server asked for none)."""
    by_source = {}
    order = []
    for name, source, phase, p in events:
        if name == "TCP_CONNECT" and phase == "end" and p.get("remote_address") == "127.0.0.1:%s" % port:
            by_source[source] = {"local_port": int(p["local_address"].rsplit(":", 1)[1]), "error": None,
                                 "resumed": False, "certs": None}
        elif source in by_source:
            h = by_source[source]
            if name == "SSL_CLIENT_CERT_PROVIDED":
                h["certs"] = p.get("cert_count")
            elif name == "SSL_CONNECT" and phase == "end":
                h["error"] = p.get("net_error", 0)
                h["resumed"] = bool(p.get("is_resumed"))
                order.append(h)
    return order


def url_requests(events):
    """Chromium's URL requests, in order: dicts with url and error (0 when it succeeded)."""
    started, out = {}, []
    for name, source, phase, p in events:
        if name == "URL_REQUEST_START_JOB" and phase == "begin":
            started[source] = {"url": p.get("url", ""), "error": None}
            out.append(started[source])
        elif name == "URL_REQUEST_START_JOB" and phase == "end" and source in started:
            started[source]["error"] = p.get("net_error", 0)
    return out


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "offsite":
        for line in offsite(netlog(sys.argv[2])):
            print(line)
    else:
        sys.exit(__doc__)
