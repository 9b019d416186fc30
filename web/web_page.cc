#include "web/web_page.h"

namespace rwd {

// One self-contained page: no external resources, no build step, works offline. It talks to the same
// origin's /stats, /preview and /query (see web/http_server.cc). A bearer token, when the server wants one,
// comes from `?token=` in the page's URL or from the token field, and goes out as `Authorization: Bearer`
// (and as `token=` on the download link, which cannot carry a header). `/?q=EXPR` fills the query box and
// runs it.
const char* WebPageHtml() {
  return R"html(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>rewind</title>
<style>
:root {
  --bg: #f4f5f7; --card: #ffffff; --ink: #1c2127; --muted: #5d6670; --line: #d9dde3; --soft: #eef1f4;
  --accent: #0b5cad; --accent-dark: #084a8c; --bad: #b3261e; --bad-bg: #fdecea; --warn-bg: #fff6e0;
  --good: #1d7a3a;
  --mono: ui-monospace, "DejaVu Sans Mono", "Liberation Mono", Menlo, Consolas, monospace;
  --sans: system-ui, -apple-system, "Segoe UI", "DejaVu Sans", "Liberation Sans", Arial, sans-serif;
}
* { box-sizing: border-box; }
html, body { margin: 0; }
body { background: var(--bg); color: var(--ink); font: 14px/1.45 var(--sans); }
a { color: var(--accent); }
code, pre, kbd, .mono { font-family: var(--mono); }
header.top { display: flex; align-items: center; gap: 16px; flex-wrap: wrap; padding: 10px 20px;
  background: #1f2a36; color: #f2f4f7; }
header.top h1 { margin: 0; font-size: 20px; letter-spacing: .5px; }
header.top h1 span { color: #8fb8e6; }
header.top .tag { color: #b7c2ce; font-size: 13px; }
#auth { margin-left: auto; display: flex; gap: 6px; align-items: center; font-size: 13px; }
#auth[hidden] { display: none; }
#auth input { width: 14em; padding: 4px 6px; border: 1px solid #56667a; border-radius: 4px; background: #fff;
  color: var(--ink); font: 13px var(--mono); }
#auth-msg { color: #ffd48a; }
main { display: grid; grid-template-columns: minmax(0, 1fr) 340px; grid-template-rows: auto 1fr;
  grid-template-areas: "ask sensor" "preview sensor"; gap: 16px; padding: 16px 20px; max-width: 1500px;
  margin: 0 auto; align-items: start; }
#ask { grid-area: ask; } #preview { grid-area: preview; min-width: 0; } #sensor { grid-area: sensor; }

.card { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: 14px 16px; }
.card h2 { margin: 0 0 10px; font-size: 13px; text-transform: uppercase; letter-spacing: .6px; color: var(--muted); }
form#query { display: flex; gap: 8px; }
#q { flex: 1; min-width: 0; padding: 8px 10px; font: 15px var(--mono); border: 1px solid #aab3be; border-radius: 4px;
  background: #fff; color: var(--ink); }
#q:focus { outline: 2px solid #8fb8e6; border-color: var(--accent); }
button, .button { display: inline-block; padding: 8px 16px; border: 1px solid var(--accent-dark); border-radius: 4px;
  background: var(--accent); color: #fff; font: 600 14px var(--sans); cursor: pointer; text-decoration: none;
  white-space: nowrap; }
button:hover, .button:hover { background: var(--accent-dark); }
button.secondary { background: #fff; color: var(--accent); border-color: #aab3be; padding: 4px 10px; font-weight: 500; }
.options { display: flex; flex-wrap: wrap; gap: 6px 18px; align-items: center; margin-top: 8px; color: var(--muted);
  font-size: 13px; }
.options select { font: 13px var(--sans); padding: 2px 4px; }
.examples { margin-top: 8px; font-size: 13px; color: var(--muted); display: flex; flex-wrap: wrap; gap: 6px;
  align-items: center; }
.examples a, a.ex { font-family: var(--mono); font-size: 12.5px; background: var(--soft); border: 1px solid var(--line);
  border-radius: 3px; padding: 1px 6px; text-decoration: none; color: var(--accent-dark); cursor: pointer; }
.examples a:hover, a.ex:hover { border-color: var(--accent); }
a.ex { display: inline-block; white-space: nowrap; margin: 1px 0; }
.help code { white-space: nowrap; }
details#help { margin-top: 10px; }
details#help summary { cursor: pointer; color: var(--accent); font-size: 13px; }
.help { margin-top: 8px; font-size: 13px; }
.help table { border-collapse: collapse; width: 100%; }
.help th, .help td { text-align: left; vertical-align: top; padding: 4px 8px; border-bottom: 1px solid var(--soft); }
.help th { color: var(--muted); font-weight: 600; }
.help td:first-child { font-family: var(--mono); white-space: nowrap; }
.help p { margin: 8px 0 0; color: var(--muted); }
#error { margin-top: 10px; border: 1px solid #f1b5ae; background: var(--bad-bg); color: var(--bad); border-radius: 4px;
  padding: 8px 10px; }
#error[hidden] { display: none; }
#error .msg { font-weight: 600; }
#error pre { margin: 6px 0 0; padding: 0; font-size: 15px; color: var(--ink); overflow-x: auto; white-space: pre; }
#error pre mark { background: #f6c2bc; color: var(--bad); }
#error .caret { color: var(--bad); font-weight: 700; }
.summary { display: flex; flex-wrap: wrap; align-items: center; gap: 8px 16px; }
#summary { font-size: 16px; }
#summary b { font-variant-numeric: tabular-nums; }
#summary .sub { color: var(--muted); font-size: 13px; }
.dl { margin-left: auto; display: flex; gap: 8px; align-items: center; font-size: 13px; color: var(--muted); }
.dl select { font: 13px var(--sans); padding: 3px 4px; }
#download.disabled { background: #9aa5b1; border-color: #9aa5b1; pointer-events: none; }
#warnings { margin: 8px 0 0; padding: 6px 10px 6px 28px; background: var(--warn-bg); border: 1px solid #f0d89a;
  border-radius: 4px; font-size: 13px; }
#warnings:empty { display: none; }
.tablewrap { overflow-x: auto; margin-top: 10px; }
table#rows { border-collapse: collapse; width: 100%; font: 12.5px/1.35 var(--mono); font-variant-numeric: tabular-nums; }
#rows th { position: sticky; top: 0; background: var(--soft); text-align: left; font: 600 12px var(--sans);
  color: var(--muted); padding: 5px 8px; border-bottom: 1px solid var(--line); white-space: nowrap; }
#rows td { padding: 3px 8px; border-bottom: 1px solid var(--soft); white-space: nowrap; }
#rows tbody tr:nth-child(even) { background: #fafbfc; }
#rows tbody tr:hover { background: #eaf2fb; }
#rows td.num, #rows th.num { text-align: right; }
#rows td.none { color: #a0a8b1; }
#rows .p-tcp { color: #0b5cad; } #rows .p-udp { color: #7a3fb0; } #rows .p-icmp, #rows .p-icmp6 { color: #b35c00; }
#shown { color: var(--muted); font-size: 12.5px; margin-top: 6px; }
.empty { color: var(--muted); padding: 14px 0 4px; }
#preview[data-state="running"] #summary { opacity: .55; }
#sensor dl { margin: 0; display: grid; grid-template-columns: 92px minmax(0, 1fr); gap: 8px 10px; }
#sensor dt { color: var(--muted); font-size: 13px; }
#sensor dd { margin: 0; font-variant-numeric: tabular-nums; overflow-wrap: anywhere; }
#sensor dd .sub { display: block; color: var(--muted); font-size: 12px; }
#sensor .bar { height: 6px; background: var(--soft); border-radius: 3px; margin-top: 4px; overflow: hidden; }
#sensor .bar span { display: block; height: 100%; background: var(--accent); }
#sensor .bar.full span { background: var(--bad); }
#sensor .bad { color: var(--bad); font-weight: 600; }
#sensor .good { color: var(--good); }
#sensor-status { margin-top: 12px; color: var(--muted); font-size: 12px; }
#sensor-status.bad { color: var(--bad); }
@media (max-width: 960px) {
  main { grid-template-columns: minmax(0, 1fr); grid-template-rows: none; grid-template-areas: "ask" "sensor" "preview"; }
  #sensor dl { grid-template-columns: 92px minmax(0, 1fr) 92px minmax(0, 1fr); }
}
@media (max-width: 640px) {
  main { padding: 10px; gap: 10px; }
  #sensor dl { grid-template-columns: 92px minmax(0, 1fr); }
  .dl { margin-left: 0; }
}
</style>
</head>
<body>
<header class="top">
  <h1>rewind<span>.</span></h1>
  <div class="tag">full-packet capture &mdash; ask what crossed the wire</div>
  <form id="auth" hidden>
    <label for="token">bearer token</label>
    <input id="token" type="password" autocomplete="off" spellcheck="false">
    <button class="secondary" type="submit">use</button>
    <span id="auth-msg"></span>
  </form>
</header>
<main>
  <section class="card" id="ask">
    <h2>Query</h2>
    <form id="query" autocomplete="off">
      <input id="q" name="q" type="text" spellcheck="false" autocapitalize="off"
             placeholder="tcpdump filter, e.g. host 10.1.2.3 and port 53 and after 15m ago" aria-label="query">
      <button id="run" type="submit">Run</button>
    </form>
    <div class="options">
      <label>preview rows
        <select id="rowcount"><option>50</option><option>200</option><option>1000</option></select></label>
      <label title="By default host/net/port also match VLAN-tagged frames with the tags removed. Exact matching does what tcpdump does: write 'vlan and ...' to look inside tags.">
        <input type="checkbox" id="exact"> exact VLAN matching (as tcpdump)</label>
      <span>empty query = every packet</span>
    </div>
    <div class="examples" id="examples">examples:
      <a data-q="udp port 53">udp port 53</a>
      <a data-q="tcp[tcpflags] &amp; tcp-syn != 0">tcp[tcpflags] &amp; tcp-syn != 0</a>
      <a data-q="icmp or icmp6">icmp or icmp6</a>
      <a data-q="net 10.0.0.0/8 and not port 22">net 10.0.0.0/8 and not port 22</a>
      <a data-q="tcp port 443 and after 15m ago">tcp port 443 and after 15m ago</a>
      <a data-q="vlan">vlan</a>
      <a data-q="greater 1000">greater 1000</a>
    </div>
    <div id="error" role="alert" hidden></div>
    <details id="help">
      <summary>query syntax</summary>
      <div class="help">
        <table>
          <tr><th>term</th><th>example (click to use)</th><th>matches</th></tr>
          <tr><td>host H</td><td><a class="ex">host 10.1.2.3</a> <a class="ex">host 2001:db8::1</a></td><td>packets from or to an IPv4/IPv6 address</td></tr>
          <tr><td>src / dst</td><td><a class="ex">src host 192.168.1.5</a> <a class="ex">dst port 22</a></td><td>only one direction</td></tr>
          <tr><td>net A/B</td><td><a class="ex">net 10.0.0.0/8</a> <a class="ex">net 192.168.0.0 mask 255.255.0.0</a></td><td>an address in a network</td></tr>
          <tr><td>port N</td><td><a class="ex">port 53</a> <a class="ex">tcp port 443</a></td><td>TCP, UDP or SCTP port, either side</td></tr>
          <tr><td>portrange A-B</td><td><a class="ex">portrange 8000-8100</a></td><td>a port in the range</td></tr>
          <tr><td>proto N</td><td><a class="ex">ip proto 50</a> <a class="ex">ip6 proto 58</a> <a class="ex">proto 47</a></td><td>an IP protocol number</td></tr>
          <tr><td>tcp udp icmp &hellip;</td><td><a class="ex">tcp</a> <a class="ex">udp</a> <a class="ex">icmp</a> <a class="ex">icmp6</a> <a class="ex">sctp</a> <a class="ex">arp</a> <a class="ex">ip6</a></td><td>a protocol</td></tr>
          <tr><td>vlan [ID]</td><td><a class="ex">vlan</a> <a class="ex">vlan 100</a></td><td>802.1Q / 802.1ad tagged frames</td></tr>
          <tr><td>greater / less N</td><td><a class="ex">greater 1000</a> <a class="ex">less 64</a></td><td>packet length at least / at most N</td></tr>
          <tr><td>tcp[tcpflags]</td><td><a class="ex">tcp[tcpflags] &amp; tcp-syn != 0</a> <a class="ex">tcp[tcpflags] &amp; (tcp-syn|tcp-ack) == tcp-syn</a></td><td>TCP flags (tcp-fin, -syn, -rst, -push, -ack, -urg)</td></tr>
          <tr><td>and or not</td><td><a class="ex">udp and not port 53</a> <a class="ex">port 80 || port 443</a> <a class="ex">! arp</a></td><td>also &amp;&amp; || !; <b>and</b> and <b>or</b> bind equally, left to right, as in tcpdump</td></tr>
          <tr><td>( )</td><td><a class="ex">host 10.1.2.3 and (port 80 or port 443)</a></td><td>grouping</td></tr>
          <tr><td>after T</td><td><a class="ex">after 2026-01-15T08:00:00Z</a> <a class="ex">after 15m ago</a></td><td>packets at or after T</td></tr>
          <tr><td>before T</td><td><a class="ex">before 2h ago</a> <a class="ex">after 3d ago and before 2d ago</a></td><td>packets strictly before T</td></tr>
        </table>
        <p>T is RFC 3339 (<code>2026-01-15T08:00:00Z</code>, <code>2026-01-15T09:00:00.25+01:00</code>), a date
          (<code>2026-01-15</code>, midnight UTC), or relative: <code>30s ago</code>, <code>15m ago</code>,
          <code>2h ago</code>, <code>3d ago</code>, <code>1h30m ago</code> (units ms, s, m, h, d).
          Anything else tcpdump understands works too: answers are exactly the packets <code>tcpdump -r</code> would match.</p>
      </div>
    </details>
  </section>

  <section class="card" id="preview" data-state="idle">
    <div class="summary">
      <h2 style="margin:0">Matches</h2>
      <div id="summary"><span class="sub">run a query to see what matches</span></div>
      <div class="dl">
        <select id="format" aria-label="download format">
          <option value="pcap">pcap</option>
          <option value="pcapng">pcapng</option>
        </select>
        <label title="nanosecond timestamps"><input type="checkbox" id="nanos"> ns</label>
        <a id="download" class="button" href="query?q=" download>Download pcap</a>
      </div>
    </div>
    <ul id="warnings"></ul>
    <div class="tablewrap">
      <table id="rows">
        <thead><tr><th>time (UTC)</th><th>source</th><th>destination</th><th>proto</th>
          <th class="num">sport</th><th class="num">dport</th><th class="num">length</th></tr></thead>
        <tbody></tbody>
      </table>
    </div>
    <div id="shown"></div>
  </section>

<aside class="card" id="sensor">
  <h2>What the sensor holds</h2>
  <dl>
    <dt>time span</dt><dd id="s-span">&hellip;</dd>
    <dt>packets</dt><dd id="s-packets">&hellip;</dd>
    <dt>stored</dt><dd id="s-stored">&hellip;</dd>
    <dt>index</dt><dd id="s-index">&hellip;</dd>
    <dt>disk</dt><dd id="s-disk">&hellip;</dd>
    <dt>capture rate</dt><dd id="s-rate">&hellip;</dd>
    <dt>drops</dt><dd id="s-drops">&hellip;</dd>
    <dt>queries</dt><dd id="s-queries">&hellip;</dd>
  </dl>
  <div id="sensor-status">loading&hellip;</div>
</aside>
</main>

<script>
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.search);
  const tokenFromUrl = params.get("token");
  let token = tokenFromUrl || "";
  try { if (!token) token = sessionStorage.getItem("rewind-token") || ""; } catch (e) {}

  // ---- formatting ----
  const num = (n) => Number(n).toLocaleString("en-US", { maximumFractionDigits: 0 });
  function bytes(n) {
    n = Number(n);
    const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i === 0 ? String(n) : n.toFixed(n < 10 ? 2 : n < 100 ? 1 : 0)) + " " + units[i];
  }
  function rate(n, unit) {
    const units = ["", "k", "M", "G", "T"];
    let i = 0;
    while (Math.abs(n) >= 1000 && i < units.length - 1) { n /= 1000; i++; }
    return (n < 10 && i > 0 ? n.toFixed(2) : n < 100 && i > 0 ? n.toFixed(1) : Math.round(n)) + " " + units[i] + unit;
  }
  function duration(s) {
    if (s < 120) return Math.round(s) + " s";
    if (s < 7200) return Math.round(s / 60) + " min";
    if (s < 172800) return (s / 3600).toFixed(1) + " h";
    if (s < 2 * 365.25 * 86400) return Math.round(s / 86400) + " days";
    return (s / (365.25 * 86400)).toFixed(1) + " years";
  }
  // "2013-03-21T21:18:19.548138000Z" -> "2013-03-21 21:18:19.548138000"
  const shortTime = (t) => String(t).replace("T", " ").replace(/Z$/, "");
  const PROTOS = { 1: "icmp", 2: "igmp", 6: "tcp", 17: "udp", 47: "gre", 50: "esp", 51: "ah", 58: "icmp6", 132: "sctp" };
  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    if (attrs) for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function setHtml(id, main, sub, cls) {
    const d = $(id);
    d.textContent = "";
    const m = el("span", cls ? { class: cls } : null, main);
    d.appendChild(m);
    if (sub) d.appendChild(el("span", { class: "sub" }, sub));
    return d;
  }

  // ---- the API ----
  class AuthError extends Error {}
  async function api(path, signal) {
    const headers = {};
    if (token) headers["Authorization"] = "Bearer " + token;
    const res = await fetch(path, { headers, signal, cache: "no-store" });
    if (res.status === 401) {
      showAuth(token ? "that token was refused" : "this sensor wants a bearer token");
      throw new AuthError("the sensor wants a bearer token (401)");
    }
    return res;
  }
  function showAuth(msg) {
    $("auth").hidden = false;
    $("auth-msg").textContent = msg || "";
    if (!$("token").value) $("token").focus();
  }
  $("auth").addEventListener("submit", (ev) => {
    ev.preventDefault();
    token = $("token").value.trim();
    try { sessionStorage.setItem("rewind-token", token); } catch (e) {}
    $("auth-msg").textContent = "";
    updateDownload();
    refreshStats();
    if (lastRun !== null) run();
  });
  if (token) $("token").value = token;

  // ---- what the sensor holds ----
  let prevCapture = null;  // thread -> {time_ns, packets, bytes} from the previous /stats
  let statsTimer = null;
  function captureRate(caps) {
    const now = {};
    for (const c of caps) now[c.thread] = c;
    const prev = prevCapture;
    prevCapture = now;
    if (caps.length === 0) return { text: "no live capture", sub: "no capture counters in this store" };
    let live = false, pps = 0, bps = 0;
    if (prev) {
      for (const c of caps) {
        const p = prev[c.thread];
        if (!p || !(c.time_ns > p.time_ns)) continue;
        const dt = (c.time_ns - p.time_ns) / 1e9;
        live = true;
        pps += Math.max(0, c.packets - p.packets) / dt;
        bps += Math.max(0, c.bytes - p.bytes) * 8 / dt;
      }
    }
    const threads = caps.length + (caps.length === 1 ? " capture thread" : " capture threads");
    if (live) return { text: num(pps) + " packets/s", sub: rate(bps, "bit/s") + " \u00b7 " + threads, live: true };
    if (!prev) return { text: "measuring\u2026", sub: threads };
    const newest = Math.max(...caps.map((c) => c.time_ns || 0));
    return { text: "no live capture",
             sub: newest ? "counters last written " + shortTime(new Date(newest / 1e6).toISOString()).slice(0, 19) + " UTC" : threads };
  }
  function renderStats(s) {
    const st = s.store || {};
    if (st.error) setHtml("s-span", "store unreadable", st.error, "bad");
    else if (!st.packets) setHtml("s-span", "empty", "no packets stored yet");
    else {
      const span = (Date.parse(st.newest_packet) - Date.parse(st.oldest_packet)) / 1000;
      const d = setHtml("s-span", duration(span));
      d.appendChild(el("span", { class: "sub" }, "oldest " + shortTime(st.oldest_packet).slice(0, 19)));
      d.appendChild(el("span", { class: "sub" }, "newest " + shortTime(st.newest_packet).slice(0, 19)));
    }
    setHtml("s-packets", num(st.packets || 0), (st.files || 0) + " packet file" + (st.files === 1 ? "" : "s") +
            (st.unindexed_files ? ", " + st.unindexed_files + " not indexed yet" : ""));
    setHtml("s-stored", bytes(st.captured_bytes || 0), bytes(st.packet_file_bytes || 0) + " of packet files on disk");
    const idx = setHtml("s-index", bytes(st.index_bytes || 0),
                        st.packet_file_bytes ? (100 * (st.index_bytes || 0) / st.packet_file_bytes).toFixed(2) +
                        "% of the packet files" : "");
    if (st.damaged_indexes) idx.appendChild(el("span", { class: "sub bad" }, st.damaged_indexes + " damaged"));
    if (s.disk && s.disk.total_bytes) {
      const used = s.disk.total_bytes - s.disk.free_bytes, pct = 100 * used / s.disk.total_bytes;
      const d = setHtml("s-disk", bytes(used) + " used", bytes(s.disk.free_bytes) + " free of " + bytes(s.disk.total_bytes));
      const bar = el("div", { class: "bar" + (pct > 95 ? " full" : "") , title: pct.toFixed(1) + "% used" });
      const fill = el("span");
      fill.style.width = pct.toFixed(1) + "%";
      bar.appendChild(fill);
      d.appendChild(bar);
    } else setHtml("s-disk", "unknown");
    const caps = Array.isArray(s.capture) ? s.capture : [];
    const r = captureRate(caps);
    setHtml("s-rate", r.text, r.sub, r.live ? "good" : "");
    let kd = 0, wd = 0;
    for (const c of caps) { kd += c.kernel_drops || 0; wd += c.write_drops || 0; }
    if (caps.length === 0) setHtml("s-drops", "0", "no capture counters in this store");
    else setHtml("s-drops", num(kd + wd), "kernel " + num(kd) + " \u00b7 write " + num(wd), kd + wd ? "bad" : "good");
    const sv = s.server || {};
    setHtml("s-queries", num(sv.queries || 0), (sv.queries_running || 0) + " running \u00b7 " +
            bytes(sv.bytes_served || 0) + " served");
    const status = $("sensor-status");
    status.className = "";
    status.textContent = "updated " + new Date().toLocaleTimeString() + " \u00b7 every 5 s" +
        (r.live && st.index_lag_seconds !== undefined ? " \u00b7 index " + duration(Math.max(0, st.index_lag_seconds)) + " behind" : "");
  }
  async function refreshStats() {
    clearTimeout(statsTimer);
    try {
      const res = await api("stats");
      if (!res.ok) throw new Error("HTTP " + res.status);
      renderStats(await res.json());
    } catch (e) {
      const status = $("sensor-status");
      status.className = "bad";
      status.textContent = "cannot read /stats: " + e.message;
    }
    statsTimer = setTimeout(refreshStats, 5000);
  }

  // ---- query, preview, errors, download ----
  let controller = null;
  let lastRun = null;     // the query text of the last run
  let lastFailed = null;  // the query text whose last run was refused

  function queryParams(q, extra) {
    const p = new URLSearchParams();
    p.set("q", q);
    for (const k in extra) p.set(k, extra[k]);
    if ($("exact").checked) p.set("exact", "1");
    return p;
  }
  function updateDownload() {
    const q = $("q").value, fmt = $("format").value;
    const extra = { format: fmt };
    if ($("nanos").checked) extra.nanos = "1";
    const p = queryParams(q, extra);
    if (token) p.set("token", token);
    const a = $("download");
    a.href = "query?" + p.toString();
    a.textContent = "Download " + fmt;
    a.setAttribute("download", "rewind." + fmt);
    const bad = lastFailed !== null && q === lastFailed;
    a.classList.toggle("disabled", bad);
    a.setAttribute("aria-disabled", bad ? "true" : "false");
    a.title = bad ? "fix the query first" : "every matching packet as " + fmt +
        (fmt === "pcap" ? " (pcapng if the answer mixes link types)" : "");
  }

  // Byte offset in the query's UTF-8 (what the server counts) -> index in the JavaScript string.
  function charIndex(q, bytePos) {
    const enc = new TextEncoder().encode(q);
    if (bytePos >= enc.length) return q.length;
    return new TextDecoder().decode(enc.slice(0, bytePos)).replace(/\uFFFD$/, "").length;
  }
  function clearError() {
    const e = $("error");
    e.hidden = true;
    e.textContent = "";
    delete e.dataset.position;
  }
  function showError(q, message, position) {
    const e = $("error");
    e.textContent = "";
    e.appendChild(el("div", { class: "msg" }, message));
    if (typeof position === "number" && position >= 0) {
      const i = charIndex(q, position);
      e.dataset.position = String(i);
      const pre = el("pre", { "aria-label": "where the problem is" });
      const line = el("span", { class: "qline" });
      line.appendChild(document.createTextNode(q.slice(0, i)));
      if (i < q.length) {
        const cp = q.codePointAt(i), w = cp > 0xffff ? 2 : 1;
        line.appendChild(el("mark", null, q.slice(i, i + w)));
        line.appendChild(document.createTextNode(q.slice(i + w)));
      }
      pre.appendChild(line);
      pre.appendChild(document.createTextNode("\n"));
      pre.appendChild(el("span", { class: "caret" }, " ".repeat(i) + "^"));
      e.appendChild(pre);
      const box = $("q");
      if (box.value === q) { box.focus(); box.setSelectionRange(i, Math.min(q.length, i + 1)); }
    }
    e.hidden = false;
  }
  function protoCell(p) {
    if (p === undefined) return el("td", { class: "none" }, "\u2014");
    const name = PROTOS[p];
    return el("td", name ? { class: "p-" + name, title: "IP protocol " + p } : null, name || String(p));
  }
  function renderPreview(q, body, ms) {
    const pv = $("preview");
    const rows = body.rows || [];
    const atLeast = body.complete === false;
    pv.dataset.count = String(body.count);
    pv.dataset.bytes = String(body.bytes);
    pv.dataset.complete = String(!atLeast);
    const sum = $("summary");
    sum.textContent = "";
    const pre = atLeast ? "at least " : "";
    sum.appendChild(document.createTextNode(pre));
    sum.appendChild(el("b", { id: "count" }, num(body.count)));
    sum.appendChild(document.createTextNode((body.count === 1 ? " packet, " : " packets, ") + pre));
    sum.appendChild(el("b", { id: "bytes" }, bytes(body.bytes)));
    sum.appendChild(el("span", { class: "sub" }, "  in " + ms + " ms" +
        (atLeast ? " \u00b7 the preview stopped counting; the download has them all" : "")));
    const warn = $("warnings");
    warn.textContent = "";
    for (const w of body.warnings || []) warn.appendChild(el("li", null, w));
    const tbody = $("rows").tBodies[0];
    tbody.textContent = "";
    for (const r of rows) {
      const tr = el("tr");
      tr.appendChild(el("td", { title: r.time }, shortTime(r.time)));
      if (r.src === undefined) {
        tr.appendChild(el("td", { class: "none" }, "(not IP)"));
        tr.appendChild(el("td", { class: "none" }, ""));
      } else {
        tr.appendChild(el("td", null, r.src));
        tr.appendChild(el("td", null, r.dst));
      }
      tr.appendChild(protoCell(r.proto));
      tr.appendChild(el("td", { class: "num" }, r.sport === undefined ? "" : String(r.sport)));
      tr.appendChild(el("td", { class: "num" }, r.dport === undefined ? "" : String(r.dport)));
      tr.appendChild(el("td", { class: "num" }, String(r.len)));
      tbody.appendChild(tr);
    }
    $("shown").textContent = rows.length === 0 ? (body.count === 0 ? "nothing matches" : "") :
        rows.length < body.count ? "showing the first " + num(rows.length) + " of " + pre + num(body.count) + " packets"
                                 : "showing all " + num(rows.length);
    pv.dataset.query = q;
    pv.dataset.state = "done";
  }
  function clearPreview(state, text) {
    const pv = $("preview");
    pv.dataset.state = state;
    delete pv.dataset.count; delete pv.dataset.bytes; delete pv.dataset.complete;
    $("summary").textContent = "";
    $("summary").appendChild(el("span", { class: "sub" }, text));
    $("warnings").textContent = "";
    $("rows").tBodies[0].textContent = "";
    $("shown").textContent = "";
  }

  async function run() {
    const q = $("q").value;
    lastRun = q;
    // The URL says what is shown, so it can be shared or reloaded (a token typed in the field stays out).
    const u = new URLSearchParams(location.search);
    u.set("q", q);
    history.replaceState(null, "", "?" + u.toString());
    if (controller) controller.abort();
    controller = new AbortController();
    const mine = controller;
    $("preview").dataset.state = "running";
    $("preview").dataset.query = q;
    $("run").textContent = "Running\u2026";
    const t0 = performance.now();
    try {
      const res = await api("preview?" + queryParams(q, { rows: $("rowcount").value }).toString(), mine.signal);
      let body = null;
      try { body = await res.json(); } catch (e) {}
      if (mine !== controller) return;
      if (!res.ok) {
        lastFailed = q;
        clearPreview("error", "no preview: the query was refused");
        showError(q, (body && body.error) || ("HTTP " + res.status + " " + res.statusText),
                  body && typeof body.position === "number" ? body.position : -1);
      } else {
        lastFailed = null;
        clearError();
        renderPreview(q, body, Math.round(performance.now() - t0));
      }
    } catch (e) {
      if (e.name === "AbortError" || mine !== controller) return;
      clearPreview("error", "no preview");
      showError(q, e instanceof AuthError ? e.message : "cannot reach the sensor: " + e.message, -1);
    } finally {
      if (mine === controller) $("run").textContent = "Run";
      updateDownload();
    }
  }

  $("query").addEventListener("submit", (ev) => { ev.preventDefault(); run(); });
  for (const id of ["q", "format", "nanos", "exact"]) $(id).addEventListener(id === "q" ? "input" : "change", updateDownload);
  $("exact").addEventListener("change", () => { if (lastRun !== null) run(); });
  $("rowcount").addEventListener("change", () => { if (lastRun !== null) run(); });
  $("download").addEventListener("click", (ev) => { if ($("download").classList.contains("disabled")) ev.preventDefault(); });
  function useExample(ev) {
    ev.preventDefault();
    const a = ev.target.closest("a");
    $("q").value = a.dataset.q || a.textContent;
    $("q").focus();
    run();
  }
  document.querySelectorAll("#examples a, a.ex").forEach((a) => {
    a.href = "?q=" + encodeURIComponent(a.dataset.q || a.textContent);
    a.addEventListener("click", useExample);
  });
  document.addEventListener("keydown", (ev) => {
    if (ev.key === "/" && document.activeElement !== $("q") && document.activeElement.tagName !== "INPUT") {
      ev.preventDefault();
      $("q").focus();
    }
  });

  if (params.has("q")) {
    $("q").value = params.get("q");
    run();
  } else {
    $("q").focus();
  }
  updateDownload();
  refreshStats();
})();
</script>
</body>
</html>
)html";
}

}  // namespace rwd
