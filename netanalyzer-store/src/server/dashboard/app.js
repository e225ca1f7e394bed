// netanalyzer dashboard: plain JavaScript, no dependencies.
//
// Data: a WebSocket at /ws/dashboard (snapshot, then alert / stats /
// sensor pushes). When it fails it reconnects with exponential backoff
// (0.5 s doubling to 10 s, with jitter); after 5 failed attempts in a row
// it polls the API every 2 s while still retrying the WebSocket every 10 s.
// The read token comes from #token=... (kept in sessionStorage), sent as
// "Authorization: Bearer" to the API and as ?token= to the WebSocket.
// Everything is written with textContent: no server string is markup.
"use strict";

(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const MAX_ALERT_ROWS = 200;
  const MAX_TOASTS = 5;
  const TOAST_MS = 10000;
  const POLL_MS = 2000;
  const BACKOFF_MIN_MS = 500;
  const BACKOFF_MAX_MS = 10000;
  const FAILS_BEFORE_POLLING = 5;
  const SEVERITY_RANK = { low: 0, medium: 1, high: 2, critical: 3 };

  // ---- token ------------------------------------------------------------
  const TOKEN_KEY = "netanalyzer.token";
  function readToken() {
    const m = /(?:^#|&)token=([^&]*)/.exec(location.hash);
    if (m) {
      const t = decodeURIComponent(m[1]);
      try { sessionStorage.setItem(TOKEN_KEY, t); } catch (e) { /* storage off */ }
      // Keep the token out of the address bar (and of screenshots).
      history.replaceState(null, "", location.pathname + location.search);
      return t;
    }
    try { return sessionStorage.getItem(TOKEN_KEY) || ""; } catch (e) { return ""; }
  }
  const token = readToken();

  // ---- small DOM helpers ------------------------------------------------
  const $ = (sel) => document.querySelector(sel);
  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    if (attrs) {
      for (const [k, v] of Object.entries(attrs)) {
        if (v === null || v === undefined) continue;
        if (k === "class") e.className = v;
        else if (k === "text") e.textContent = v;
        else e.setAttribute(k, v);
      }
    }
    for (const k of kids) e.append(k);
    return e;
  }
  function svg(tag, attrs, text) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

  // ---- formatting -------------------------------------------------------
  function si(v, unit) {
    if (v === null || v === undefined || !isFinite(v)) return "–";
    const a = Math.abs(v);
    const p = [[1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"]].find(([d]) => a >= d);
    const s = p ? (v / p[0]).toFixed(v / p[0] >= 100 ? 0 : 1) + " " + p[1]
      : (Number.isInteger(v) ? String(v) : v.toFixed(a < 1 ? 2 : 1)) + " ";
    return (s + (unit || "")).trim();
  }
  function bytes(v) {
    if (v === null || v === undefined) return "–";
    const u = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (v >= 1024 && i < u.length - 1) { v /= 1024; i++; }
    return (i ? v.toFixed(1) : String(v)) + " " + u[i];
  }
  const num = (v) => (v === null || v === undefined ? "–" : Number(v).toLocaleString("en-US"));
  function clock(ms) {
    if (!ms) return "–";
    const d = new Date(ms);
    const p = (n, w) => String(n).padStart(w || 2, "0");
    return p(d.getHours()) + ":" + p(d.getMinutes()) + ":" + p(d.getSeconds());
  }
  function dateTime(ms) {
    if (!ms) return "–";
    const d = new Date(ms);
    const p = (n, w) => String(n).padStart(w || 2, "0");
    return d.getFullYear() + "-" + p(d.getMonth() + 1) + "-" + p(d.getDate()) + " " + clock(ms) + "." + p(d.getMilliseconds(), 3);
  }
  function ago(ms) {
    if (!ms) return "never";
    const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
    if (s < 60) return s + " s ago";
    if (s < 3600) return Math.round(s / 60) + " min ago";
    return Math.round(s / 3600) + " h ago";
  }
  const pct = (c) => (c === null || c === undefined ? "–" : Math.round(c * 100) + "%");
  function duration(ms) {
    if (ms === null || ms === undefined) return "–";
    if (ms < 1000) return ms + " ms";
    if (ms < 120000) return (ms / 1000).toFixed(1) + " s";
    return Math.round(ms / 60000) + " min";
  }

  // ---- API --------------------------------------------------------------
  async function api(path) {
    const headers = token ? { Authorization: "Bearer " + token } : {};
    const r = await fetch(path, { headers, cache: "no-store" });
    let body = null;
    try { body = await r.json(); } catch (e) { body = null; }
    if (r.status === 401 || r.status === 403) showAuth(r.status, body);
    if (!r.ok) {
      const err = new Error((body && body.reason) || r.status + " " + r.statusText);
      err.status = r.status;
      throw err;
    }
    return body;
  }
  function showAuth(status, body) {
    const b = $("#auth-banner");
    b.textContent = (status === 401 ? "This server needs a read token: open the page as /#token=YOUR_TOKEN. "
      : "The read token was refused. ") + ((body && body.reason) || "");
    b.hidden = false;
  }

  // ---- last updated -------------------------------------------------------
  let lastUpdated = 0;
  function touched() {
    lastUpdated = Date.now();
    const t = $("#last-updated");
    t.dataset.ms = String(lastUpdated);
    t.dateTime = new Date(lastUpdated).toISOString();
    renderUpdated();
  }
  function renderUpdated() {
    const t = $("#last-updated");
    t.textContent = lastUpdated ? clock(lastUpdated) + " (" + ago(lastUpdated) + ")" : "never";
    t.classList.toggle("error", lastUpdated > 0 && Date.now() - lastUpdated > 10000);
  }

  // ---- stats: rate chart --------------------------------------------------
  function renderStats(st) {
    if (!st) return;
    const series = st.series || [];
    const step = st.step_secs || 1;
    const pps = series.map((p) => p.packets / step);
    const bps = series.map((p) => (p.bytes * 8) / step);
    drawRate(series.map((p) => p.t_ms), pps, bps);
    // "Now": the last complete step (the newest one is still filling).
    const i = series.length >= 2 ? series.length - 2 : series.length - 1;
    $("#now-pps").textContent = i >= 0 ? si(pps[i]) : "0";
    $("#now-bps").textContent = i >= 0 ? si(bps[i]) : "0";
    const t = st.totals || {};
    $("#peak-pps").textContent = si(t.peak_pps || 0);
    $("#peak-bps").textContent = si(t.peak_bps || 0);
    $("#flows-active").textContent = st.flows_active === null || st.flows_active === undefined ? "–" : num(st.flows_active);
    drawProtocols(st.protocols || []);
    renderTop("#talkers", st.top_talkers || []);
    renderTop("#targets", st.top_targets || []);
    renderClasses(st.alerts_by_class || []);
  }

  function niceMax(v) {
    if (!(v > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    const m = [1, 2, 2.5, 5, 10].find((k) => k * p >= v);
    return m * p;
  }

  function drawRate(ts, pps, bps) {
    const root = $("#rate-chart");
    const W = 900, H = 220, L = 56, R = 64, T = 10, B = 22;
    const w = W - L - R, h = H - T - B;
    clear(root);
    const maxP = niceMax(Math.max(0, ...pps));
    const maxB = niceMax(Math.max(0, ...bps));
    root.dataset.points = String(ts.length);
    root.dataset.maxPps = String(Math.max(0, ...pps));
    root.dataset.maxBps = String(Math.max(0, ...bps));
    for (let k = 0; k <= 4; k++) {
      const y = T + h - (h * k) / 4;
      root.append(svg("line", { class: "grid", x1: L, x2: L + w, y1: y, y2: y }));
      root.append(svg("text", { class: "axis", x: L - 6, y: y + 4, "text-anchor": "end" }, si((maxP * k) / 4)));
      root.append(svg("text", { class: "axis", x: L + w + 6, y: y + 4 }, si((maxB * k) / 4)));
    }
    const n = ts.length;
    if (n === 0) return;
    const x = (i) => L + (n === 1 ? w : (w * i) / (n - 1));
    const line = (vals, max) => vals.map((v, i) => (i ? "L" : "M") + x(i).toFixed(1) + " " + (T + h - (h * v) / max).toFixed(1)).join(" ");
    const dP = line(pps, maxP);
    root.append(svg("path", { class: "pps-area", d: dP + " L" + x(n - 1).toFixed(1) + " " + (T + h) + " L" + L + " " + (T + h) + " Z" }));
    root.append(svg("path", { class: "bps", d: line(bps, maxB) }));
    root.append(svg("path", { class: "pps", d: dP }));
    // Time labels: start, middle, end of the window.
    for (const i of [0, Math.floor((n - 1) / 2), n - 1]) {
      root.append(svg("text", { class: "axis", x: x(i), y: H - 6, "text-anchor": i === 0 ? "start" : i === n - 1 ? "end" : "middle" }, clock(ts[i])));
    }
  }

  function drawProtocols(protos) {
    const root = $("#proto-chart");
    clear(root);
    const top = protos.slice(0, 8);
    const total = protos.reduce((s, p) => s + p.packets, 0);
    if (!top.length || total === 0) {
      root.append(svg("text", { class: "value", x: 10, y: 20 }, "no traffic in the window"));
      return;
    }
    const rowH = 200 / Math.max(top.length, 5);
    const max = Math.max(...top.map((p) => p.packets));
    top.forEach((p, i) => {
      const y = i * rowH;
      const w = Math.max(1, (230 * p.packets) / max);
      root.append(svg("text", { class: "label", x: 0, y: y + rowH / 2 + 4 }, p.protocol));
      const r = svg("rect", { class: "bar", x: 90, y: y + 3, width: w.toFixed(1), height: Math.max(2, rowH - 6).toFixed(1), "data-protocol": p.protocol });
      r.append(svg("title", {}, p.protocol + ": " + num(p.packets) + " packets, " + bytes(p.bytes)));
      root.append(r);
      root.append(svg("text", { class: "value", x: 90 + w + 6, y: y + rowH / 2 + 4 }, ((100 * p.packets) / total).toFixed(1) + "%"));
    });
  }

  function renderTop(sel, rows) {
    const body = $(sel + " tbody");
    clear(body);
    const max = Math.max(1, ...rows.map((r) => r.bytes));
    for (const r of rows) {
      const meter = el("span", { class: "meter" });
      meter.style.width = Math.max(1, (60 * r.bytes) / max) + "px";
      body.append(el("tr", { "data-ip": r.ip },
        el("td", { text: r.ip }), el("td", { class: "num", text: num(r.packets) }),
        el("td", { class: "num", text: bytes(r.bytes) }), el("td", null, meter)));
    }
  }

  function renderClasses(rows) {
    const body = $("#classes tbody");
    clear(body);
    $("#classes").hidden = rows.length === 0;
    for (const r of rows) {
      body.append(el("tr", { "data-class": r.class },
        el("td", { text: r.class }), el("td", { class: "num", text: num(r.alerts) }),
        el("td", null, sevBadge(r.max_severity))));
    }
  }

  // ---- sensors --------------------------------------------------------------
  const sensors = new Map();
  function setSensors(list, aggregators) {
    sensors.clear();
    for (const s of list || []) sensors.set(s.sensor_id, s);
    renderSensors();
    if (aggregators) {
      $("#aggregators").textContent = aggregators.length
        ? "Aggregators: " + aggregators.map((a) => a.consumer + " (" + num(a.rows_processed) + " rows, " + (a.active_flows === null || a.active_flows === undefined ? "–" : num(a.active_flows)) + " open flows, " + ago(a.updated_ms) + ")").join("; ")
        : "No aggregator has committed yet.";
    }
  }
  function sensorProblems(s) {
    const p = [];
    if (s.kernel_dropped > 0) p.push(["kernel", num(s.kernel_dropped) + " packets dropped by the kernel"]);
    if (s.if_dropped > 0) p.push(["if", num(s.if_dropped) + " packets dropped by the interface"]);
    if (s.dropped_records > 0) p.push(["dropped", num(s.dropped_records) + " records dropped (spool full)"]);
    if (s.spool_records > 0) p.push(["spool", num(s.spool_records) + " records (" + bytes(s.spool_bytes) + ") waiting in the spool"]);
    if (s.ingest_lag_ms > 10000) p.push(["lag", "ingest lag " + duration(s.ingest_lag_ms)]);
    if (s.status === "stale") p.push(["stale", "not heard from since " + ago(s.last_seen_ms)]);
    return p;
  }
  function renderSensors() {
    const body = $("#sensors tbody");
    clear(body);
    const lines = [];
    const ids = [...sensors.keys()].sort();
    for (const id of ids) {
      const s = sensors.get(id);
      const probs = sensorProblems(s);
      const bad = new Set(probs.map((p) => p[0]));
      const cell = (key, text) => el("td", { class: "num" + (bad.has(key) ? " bad" : ""), text });
      const status = el("span", { class: "status-" + s.status, text: s.status });
      body.append(el("tr", { "data-sensor-id": s.sensor_id, "data-status": s.status },
        el("td", { text: s.sensor_id }), el("td", null, status),
        el("td", { class: bad.has("stale") ? "bad" : "", text: ago(s.last_seen_ms) }),
        el("td", { class: "num", text: (s.records_per_sec || 0).toFixed(1) }),
        cell("kernel", num(s.kernel_dropped)), cell("if", num(s.if_dropped)),
        cell("dropped", num(s.dropped_records)),
        el("td", { class: "num", text: num(s.parse_errors) }),
        cell("spool", num(s.spool_records) + " / " + bytes(s.spool_bytes)),
        cell("lag", duration(s.ingest_lag_ms))));
      if (probs.length || s.status !== "ok") {
        lines.push(s.sensor_id + " (" + s.status + "): " + (probs.map((p) => p[1]).join(", ") || "degraded"));
      }
    }
    const banner = $("#health-banner");
    clear(banner);
    if (lines.length) {
      banner.append("Sensor trouble: data may be missing");
      const ul = el("ul");
      for (const l of lines) ul.append(el("li", { text: l }));
      banner.append(ul);
    }
    banner.hidden = lines.length === 0;
  }

  // ---- alerts -----------------------------------------------------------
  const alerts = new Map(); // alert_id -> alert
  let alertsPrimed = false; // the first poll/snapshot raises no toast
  function sevBadge(sev) { return el("span", { class: "sev sev-" + sev, text: sev || "–" }); }
  function sourcesText(a) {
    const shown = (a.sources || []).slice(0, 3).join(", ");
    const more = (a.source_count || 0) - Math.min(3, (a.sources || []).length);
    return shown + (more > 0 ? " +" + num(more) + " more" : "");
  }
  function alertRow(a) {
    return el("tr", { "data-alert-id": a.alert_id, "data-severity": a.severity, "data-revision": String(a.revision) },
      el("td", { text: clock(a.last_ts_ms), title: dateTime(a.last_ts_ms) }),
      el("td", null, sevBadge(a.severity)), el("td", { text: a.class }),
      el("td", { text: a.target }), el("td", { class: "sources", text: sourcesText(a) }),
      el("td", { class: "num", text: num(a.flow_count) }), el("td", { class: "num", text: num(a.packet_count) }),
      el("td", { class: "num", text: pct(a.confidence) }));
  }
  // Inserts or replaces the row of `a`, keeping the table newest first.
  function upsertAlert(a, fromPush) {
    const prev = alerts.get(a.alert_id);
    if (prev && prev.revision > a.revision) return; // an older update, late
    alerts.set(a.alert_id, a);
    const body = $("#alerts tbody");
    const old = body.querySelector('tr[data-alert-id="' + CSS.escape(a.alert_id) + '"]');
    const row = alertRow(a);
    if (fromPush) {
      row.classList.add("fresh");
      setTimeout(() => row.classList.remove("fresh"), 3000);
    }
    if (old) old.remove();
    let before = null;
    for (const r of body.children) {
      const o = alerts.get(r.dataset.alertId);
      if (o && o.last_ts_ms <= a.last_ts_ms) { before = r; break; }
    }
    body.insertBefore(row, before);
    while (body.children.length > MAX_ALERT_ROWS) {
      const last = body.lastElementChild;
      alerts.delete(last.dataset.alertId);
      last.remove();
    }
    $("#alerts-empty").hidden = true;
    if (fromPush && alertsPrimed) {
      const rank = SEVERITY_RANK[a.severity] || 0;
      const prevRank = prev ? SEVERITY_RANK[prev.severity] || 0 : -1;
      if (rank >= SEVERITY_RANK.high && rank > prevRank) toast(a);
    }
  }
  function setAlerts(list) {
    for (const a of (list || []).slice().reverse()) upsertAlert(a, false);
    $("#alerts-empty").hidden = alerts.size > 0;
    alertsPrimed = true;
  }

  function toast(a) {
    const box = $("#toasts");
    const old = box.querySelector('.toast[data-alert-id="' + CSS.escape(a.alert_id) + '"]');
    if (old) old.remove();
    const t = el("div", { class: "toast", role: "alert", "data-alert-id": a.alert_id, "data-severity": a.severity },
      el("div", { class: "t-head" }, el("span", { class: "t-class", text: a.class }), sevBadge(a.severity)),
      el("div", { class: "t-body" },
        el("div", { class: "t-target", text: "target " + a.target }),
        el("div", { class: "t-sources", text: "from " + sourcesText(a) }),
        el("div", { class: "t-conf", text: "confidence " + pct(a.confidence) + " · " + num(a.flow_count) + " flows · " + clock(a.last_ts_ms) })));
    t.addEventListener("click", () => t.remove());
    box.prepend(t);
    while (box.children.length > MAX_TOASTS) box.lastElementChild.remove();
    setTimeout(() => t.remove(), TOAST_MS);
  }

  // ---- connection: WebSocket, backoff, polling ------------------------------
  let ws = null;
  let fails = 0;
  let retryTimer = null;
  let pollTimer = null;
  let polling = false;
  let gotSnapshot = false; // the current socket delivered its snapshot
  function setConn(state, title) {
    const c = $("#conn");
    c.dataset.state = state;
    c.textContent = { live: "live", connecting: "connecting", reconnecting: "reconnecting", polling: "polling", offline: "offline" }[state] || state;
    c.title = title || "";
  }
  function wsUrl() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    return proto + "//" + location.host + "/ws/dashboard" + (token ? "?token=" + encodeURIComponent(token) : "");
  }
  function connect() {
    retryTimer = null;
    let opened = false;
    let sock;
    try {
      sock = new WebSocket(wsUrl());
    } catch (e) {
      scheduleRetry();
      return;
    }
    ws = sock;
    sock.onopen = () => { opened = true; };
    sock.onmessage = (ev) => {
      let m;
      try { m = JSON.parse(ev.data); } catch (e) { return; }
      onMessage(m);
    };
    sock.onclose = () => {
      if (ws !== sock) return;
      ws = null;
      // A socket that opened and then closed is one failure like any
      // other, but the count restarts after a good session.
      if (opened && gotSnapshot) fails = 0;
      gotSnapshot = false;
      scheduleRetry();
    };
  }
  function scheduleRetry() {
    fails += 1;
    if (fails >= FAILS_BEFORE_POLLING) startPolling();
    const base = polling ? BACKOFF_MAX_MS : Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * Math.pow(2, fails - 1));
    const delay = base * (0.8 + 0.4 * Math.random());
    if (!polling) setConn("reconnecting", "retrying in " + (delay / 1000).toFixed(1) + " s (attempt " + fails + ")");
    clearTimeout(retryTimer);
    retryTimer = setTimeout(connect, delay);
  }
  function onMessage(m) {
    switch (m.type) {
      case "snapshot":
        gotSnapshot = true;
        fails = 0;
        stopPolling();
        setConn("live", "WebSocket connected");
        renderStats(m.stats);
        setSensors(m.sensors, null);
        setAlerts(m.alerts);
        break;
      case "alert":
        upsertAlert(m.alert, true);
        break;
      case "stats":
        renderStats(m.stats);
        break;
      case "sensor":
        if (m.sensor) { sensors.set(m.sensor.sensor_id, m.sensor); renderSensors(); }
        break;
      default:
        return;
    }
    touched();
  }

  function startPolling() {
    if (polling) return;
    polling = true;
    setConn("polling", "WebSocket unavailable: polling the API every 2 s");
    poll();
  }
  function stopPolling() {
    polling = false;
    clearTimeout(pollTimer);
    pollTimer = null;
  }
  async function poll() {
    if (!polling) return;
    // Each answer is used on its own: one failing endpoint does not hide
    // what the others say.
    const [st, al, se] = await Promise.allSettled([
      api("/api/stats?window=300"), api("/api/alerts?limit=50"), api("/api/sensors")]);
    if (!polling) return;
    const failed = [st, al, se].filter((r) => r.status === "rejected");
    if (st.status === "fulfilled") renderStats(st.value);
    if (al.status === "fulfilled") {
      const items = (al.value && al.value.items) || [];
      if (!alertsPrimed) setAlerts(items);
      else for (const a of items.slice().reverse()) {
        const prev = alerts.get(a.alert_id);
        if (!prev || prev.revision < a.revision) upsertAlert(a, true);
      }
    }
    if (se.status === "fulfilled") setSensors(se.value && se.value.sensors, se.value && se.value.aggregators);
    if (failed.length < 3) touched();
    setConn("polling", failed.length
      ? "polling; failed: " + failed.map((r) => r.reason && r.reason.message).join("; ")
      : "WebSocket unavailable: polling the API every 2 s");
    if (polling) pollTimer = setTimeout(poll, POLL_MS);
  }

  // ---- flows view -------------------------------------------------------------
  let flowQuery = null;
  let flowCursor = null;
  let flowRows = 0;
  function localInputToMs(v) {
    if (!v) return null;
    const t = new Date(v).getTime(); // datetime-local is local time
    return isFinite(t) ? t : null;
  }
  function flowParams(form) {
    const p = new URLSearchParams();
    for (const k of ["ip", "port", "proto", "label"]) {
      const v = form.elements[k].value.trim();
      if (v) p.set(k, v);
    }
    for (const k of ["from", "to"]) {
      const ms = localInputToMs(form.elements[k].value);
      if (ms !== null) p.set(k, String(ms));
    }
    p.set("limit", "50");
    return p;
  }
  function flowRow(f) {
    const proto = f.ip_proto === null || f.ip_proto === undefined ? "non-IP"
      : { 6: "tcp", 17: "udp", 1: "icmp", 58: "icmpv6" }[f.ip_proto] || String(f.ip_proto);
    const ep = (ip, port) => (!ip ? "–" : port ? (ip.includes(":") ? "[" + ip + "]" : ip) + ":" + port : ip);
    return el("tr", { "data-flow-id": f.flow_id },
      el("td", { text: dateTime(f.first_ts_ms) }), el("td", { text: clock(f.last_ts_ms) }),
      el("td", { text: f.sensor_id }), el("td", { text: proto }),
      el("td", { text: ep(f.src_ip, f.src_port) }), el("td", { text: ep(f.dst_ip, f.dst_port) }),
      el("td", { class: "num", text: num(f.fwd_packets + f.bwd_packets) }),
      el("td", { class: "num", text: bytes(f.fwd_bytes + f.bwd_bytes) }),
      el("td", { text: f.end_reason }), el("td", { text: f.label || "–" }),
      el("td", { class: "num", text: pct(f.confidence) }));
  }
  async function loadFlows(more) {
    const err = $("#flows-error");
    const body = $("#flows tbody");
    const p = new URLSearchParams(flowQuery);
    if (more && flowCursor) p.set("cursor", flowCursor);
    try {
      const page = await api("/api/flows?" + p.toString());
      if (!more) { clear(body); flowRows = 0; }
      for (const f of page.items || []) { body.append(flowRow(f)); flowRows++; }
      flowCursor = page.next_cursor || null;
      $("#flows-more").hidden = !flowCursor;
      $("#flows-count").textContent = flowRows + " flow" + (flowRows === 1 ? "" : "s") + (flowCursor ? ", more available" : "");
      err.hidden = true;
    } catch (e) {
      err.textContent = "Flow search failed: " + e.message;
      err.hidden = false;
    }
  }

  // ---- start ---------------------------------------------------------------
  function start() {
    const form = $("#flow-filter");
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      flowQuery = flowParams(form).toString();
      flowCursor = null;
      loadFlows(false);
    });
    $("#flows-more").addEventListener("click", () => loadFlows(true));
    flowQuery = flowParams(form).toString();
    loadFlows(false);
    drawRate([], [], []);
    setInterval(() => {
      renderUpdated();
      // Sensor "last seen" ages move with the clock.
      if (sensors.size) for (const tr of document.querySelectorAll("#sensors tbody tr")) {
        const s = sensors.get(tr.dataset.sensorId);
        if (s) tr.children[2].textContent = ago(s.last_seen_ms);
      }
    }, 1000);
    setConn("connecting", "opening the WebSocket");
    connect();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
