/*
 * crossdock operations dashboard. Plain JavaScript, no framework, no network
 * beyond the hub's own API: every figure comes from GET /v1/stats (polled),
 * the lists from /v1/deliveries and /v1/exceptions (paged on the server),
 * the timeline from /v1/events/{id}. The API key is entered in the page,
 * kept in this tab's sessionStorage and sent as a bearer token; a read-only
 * key sees everything, actions (replay, acknowledge, resolve) need `ops`.
 */
(function () {
  "use strict";

  const KEY_STORE = "crossdock.key";
  const STATS_EVERY_MS = 2000;
  const LISTS_EVERY_MS = 4000;
  const SLOW_EVERY_MS = 30000;
  const PAGE = 25;

  const $ = (id) => document.getElementById(id);
  const nf = new Intl.NumberFormat("en-US");
  const state = {
    key: sessionStorage.getItem(KEY_STORE) || "",
    stats: null,
    dead: { filter: { target: "", error_class: "" }, cursors: [0], page: 0, next: null },
    exc: { state: "open", cursors: [0], page: 0, next: null },
    lastSlow: 0,
    lastLists: 0,
  };

  /* ---- the API ---- */

  class ApiError extends Error {
    constructor(status, problem) {
      super((problem && (problem.detail || problem.title)) || "HTTP " + status);
      this.status = status;
      this.problem = problem;
    }
  }

  async function api(path, opts) {
    const o = Object.assign({ method: "GET" }, opts || {});
    const headers = { Accept: "application/json" };
    if (state.key) headers.Authorization = "Bearer " + state.key;
    if (o.body !== undefined) headers["Content-Type"] = "application/json";
    const resp = await fetch(path, {
      method: o.method,
      headers: headers,
      body: o.body === undefined ? undefined : JSON.stringify(o.body),
      cache: "no-store",
    });
    const text = await resp.text();
    let data = null;
    if (text) {
      try { data = JSON.parse(text); } catch (e) { data = null; }
    }
    if (!resp.ok) throw new ApiError(resp.status, data);
    return data;
  }

  function qs(params) {
    const parts = [];
    for (const k of Object.keys(params)) {
      const v = params[k];
      if (v !== "" && v !== null && v !== undefined) parts.push(encodeURIComponent(k) + "=" + encodeURIComponent(v));
    }
    return parts.length ? "?" + parts.join("&") : "";
  }

  /* ---- small DOM helpers ---- */

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const k of Object.keys(attrs || {})) {
      const v = attrs[k];
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? "" : String(v));
    }
    for (const kid of kids.flat()) {
      if (kid === null || kid === undefined || kid === false) continue;
      e.appendChild(typeof kid === "string" || typeof kid === "number" ? document.createTextNode(String(kid)) : kid);
    }
    return e;
  }

  function setText(id, v) {
    const e = $(id);
    if (e && e.textContent !== String(v)) e.textContent = String(v);
  }

  function badge(s, extra) {
    return el("span", { class: "badge " + (extra || s) }, s.replace("_", " "));
  }

  function fillTable(tableId, rows, emptyText, cols) {
    const tbody = $(tableId).tBodies[0];
    tbody.replaceChildren();
    if (!rows.length) {
      tbody.appendChild(el("tr", { class: "empty" }, el("td", { colspan: cols }, emptyText)));
      return;
    }
    for (const r of rows) tbody.appendChild(r);
  }

  function fmtNum(n) {
    return n === null || n === undefined ? "–" : nf.format(n);
  }

  function fmtMs(v) {
    if (v === null || v === undefined) return "–";
    return v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : Math.round(v).toString();
  }

  function fmtTime(iso) {
    if (!iso) return "–";
    const d = new Date(iso);
    if (isNaN(d)) return iso;
    return d.toLocaleString("en-GB", { month: "short", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" });
  }

  function fmtAge(iso) {
    const s = Math.max(0, Math.round((Date.now() - new Date(iso).getTime()) / 1000));
    return fmtSecs(s);
  }

  function fmtSecs(s) {
    if (s === null || s === undefined) return "–";
    if (s < 60) return s + " s";
    if (s < 3600) return Math.round(s / 60) + " min";
    if (s < 86400) return (s / 3600).toFixed(1) + " h";
    return (s / 86400).toFixed(1) + " d";
  }

  /* ---- messages ---- */

  let toastTimer = null;
  function toast(msg, kind) {
    const t = $("toast");
    t.textContent = msg;
    t.className = "toast " + (kind || "");
    t.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { t.hidden = true; }, kind === "bad" ? 8000 : 4000);
  }

  function banner(msg, bad) {
    const b = $("banner");
    if (!msg) { b.hidden = true; return; }
    b.textContent = msg;
    b.className = "banner" + (bad ? " bad" : "");
    b.hidden = false;
  }

  /* What a failed call means to an operator. */
  function explain(err, what) {
    if (!(err instanceof ApiError)) return what + ": the hub cannot be reached (" + err.message + ")";
    if (err.status === 401) return "Enter an API key (the read scope is enough to watch; actions need ops).";
    if (err.status === 403) return what + ": this key lacks the ops scope. Replays and exception actions need a key with ops.";
    if (err.status === 429) return what + ": rate limited, try again in a moment.";
    return what + ": " + err.message;
  }

  function live(ok, text) {
    $("live-dot").className = "dot " + (ok ? "ok" : "bad");
    setText("live-text", text);
  }

  /* ---- charts (canvas, drawn here) ---- */

  function niceMax(v) {
    if (!(v > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }

  function drawChart(canvas, times, series, opts) {
    const dpr = window.devicePixelRatio || 1;
    const w = canvas.clientWidth || 600, h = canvas.clientHeight || 220;
    if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
      canvas.width = Math.round(w * dpr);
      canvas.height = Math.round(h * dpr);
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    const m = { l: 48, r: 12, t: 12, b: 26 };
    const pw = w - m.l - m.r, ph = h - m.t - m.b;
    let max = 0;
    for (const s of series) for (const v of s.values) if (v !== null && v > max) max = v;
    const top = niceMax(max);
    const n = times.length;
    const x = (i) => m.l + (n <= 1 ? 0 : (i / (n - 1)) * pw);
    const y = (v) => m.t + ph - (v / top) * ph;

    ctx.font = "11px system-ui, -apple-system, Segoe UI, Roboto, sans-serif";
    ctx.fillStyle = "#667085";
    ctx.strokeStyle = "#eceff4";
    ctx.lineWidth = 1;
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (let g = 0; g <= 4; g++) {
      const v = (top * g) / 4;
      const yy = Math.round(y(v)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(m.l, yy);
      ctx.lineTo(w - m.r, yy);
      ctx.stroke();
      ctx.fillText(opts.fmt ? opts.fmt(v) : nf.format(Math.round(v * 100) / 100), m.l - 8, yy);
    }
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    let lastX = -1e9;
    const every = n <= 20 ? 5 : 10;
    for (let i = n - 1; i >= 0; i--) {
      /* every five or ten minutes, and now; right to left so "now" always has its label */
      const d = new Date(times[i]);
      if (d.getMinutes() % every !== 0 && i !== n - 1) continue;
      if (Math.abs(lastX - x(i)) < 44) continue;
      lastX = x(i);
      const label = String(d.getHours()).padStart(2, "0") + ":" + String(d.getMinutes()).padStart(2, "0");
      const half = ctx.measureText(label).width / 2;
      ctx.fillText(label, Math.max(m.l + half, Math.min(x(i), w - m.r - half)), h - m.b + 8);
    }
    ctx.strokeStyle = "#d0d5dd";
    ctx.beginPath();
    ctx.moveTo(m.l, m.t + ph + 0.5);
    ctx.lineTo(w - m.r, m.t + ph + 0.5);
    ctx.stroke();

    for (const s of series) {
      if (s.fill) {
        ctx.beginPath();
        let started = false;
        for (let i = 0; i < n; i++) {
          const v = s.values[i] || 0;
          if (!started) { ctx.moveTo(x(i), y(v)); started = true; } else ctx.lineTo(x(i), y(v));
        }
        ctx.lineTo(x(n - 1), y(0));
        ctx.lineTo(x(0), y(0));
        ctx.closePath();
        ctx.fillStyle = s.fill;
        ctx.fill();
      }
      ctx.strokeStyle = s.color;
      ctx.lineWidth = 2;
      ctx.lineJoin = "round";
      ctx.beginPath();
      let pen = false;
      for (let i = 0; i < n; i++) {
        const v = s.values[i];
        if (v === null || v === undefined) { pen = false; continue; }
        if (!pen) { ctx.moveTo(x(i), y(v)); pen = true; } else ctx.lineTo(x(i), y(v));
      }
      ctx.stroke();
      /* a lone point (one minute with data between gaps) still shows */
      ctx.fillStyle = s.color;
      for (let i = 0; i < n; i++) {
        const v = s.values[i];
        const prev = i > 0 ? s.values[i - 1] : null, next = i < n - 1 ? s.values[i + 1] : null;
        if (v !== null && v !== undefined && (prev === null || prev === undefined) && (next === null || next === undefined)) {
          ctx.beginPath();
          ctx.arc(x(i), y(v), 2.5, 0, 2 * Math.PI);
          ctx.fill();
        }
      }
    }
  }

  function legend(id, series, totals) {
    const box = $(id);
    box.replaceChildren();
    series.forEach((s, i) => {
      const sp = el("span", {}, s.name + (totals ? " · " + totals[i] : ""));
      sp.style.setProperty("--c", s.color);
      box.appendChild(sp);
    });
  }

  function drawCharts() {
    const st = state.stats;
    if (!st) return;
    /*
     * The hub keeps no history across restarts: minutes before the first one
     * with any traffic are left out, keeping at least a quarter of an hour.
     */
    let mins = st.minutes || [];
    const busy = (m) => m.events || m.delivered || m.retried || m.failed || m.rejected || m.dead;
    const first = mins.findIndex(busy);
    const keep = Math.max(15, first < 0 ? 15 : mins.length - Math.max(0, first - 1));
    if (mins.length > keep) mins = mins.slice(mins.length - keep);
    const times = mins.map((m) => m.t);
    const sum = (k) => mins.reduce((a, m) => a + (m[k] || 0), 0);
    const tp = [
      { name: "Events in", color: "#2563eb", fill: "rgba(37, 99, 235, .08)", values: mins.map((m) => m.events) },
      { name: "Delivered", color: "#16a34a", values: mins.map((m) => m.delivered) },
      { name: "Retried", color: "#d97706", values: mins.map((m) => m.retried) },
      { name: "Failed", color: "#dc2626", values: mins.map((m) => m.failed + m.rejected) },
    ];
    const span = mins.length >= 60 ? "last hour" : "last " + mins.length + " min";
    setText("tp-hint", "per minute · " + span);
    setText("lat-hint", "ms · per minute · " + span);
    drawChart($("chart-throughput"), times, tp, {});
    legend("legend-throughput", tp, [nf.format(sum("events")), nf.format(sum("delivered")), nf.format(sum("retried")), nf.format(sum("failed") + sum("rejected"))]);
    const lat = [
      { name: "p50", color: "#2563eb", values: mins.map((m) => m.p50_ms) },
      { name: "p95", color: "#d97706", values: mins.map((m) => m.p95_ms) },
      { name: "mean", color: "#94a3b8", values: mins.map((m) => m.avg_ms) },
    ];
    drawChart($("chart-latency"), times, lat, { fmt: (v) => fmtMs(v) });
    legend("legend-latency", lat);
  }

  /* ---- stats: tiles, targets, KPIs ---- */

  function renderStats(st) {
    const t = st.totals;
    setText("t-stored", fmtNum(t.events_stored));
    setText("t-received", fmtNum(t.received));
    const lastMin = st.minutes.length ? st.minutes[st.minutes.length - 1] : null;
    setText("t-received-note", lastMin ? nf.format(lastMin.events) + " this minute" : "\u00a0");
    setText("t-stored-note", t.duplicates ? nf.format(t.duplicates) + " duplicates acknowledged" : "in the journal");
    setText("t-delivered", fmtNum(t.delivered));
    setText("t-backlog", fmtNum(t.backlog));
    setText("t-dead", fmtNum(t.dead_letters));
    setText("t-exc", fmtNum(st.exceptions.open));
    setText("t-exc-note", st.exceptions.open ? "oldest " + fmtSecs(st.exceptions.oldest_open_s) : (st.exceptions.acknowledged ? nf.format(st.exceptions.acknowledged) + " acknowledged" : "none waiting"));
    $("t-dead").parentElement.className = "tile " + (t.dead_letters ? "alert" : "calm");
    $("t-exc").parentElement.className = "tile " + (st.exceptions.open ? "alert" : "calm");

    const rows = st.targets.map((g) => el("tr", { "data-target": g.name },
      el("td", {}, el("b", {}, g.name)),
      el("td", {}, g.circuit === "none" ? el("span", { class: "muted" }, "–") : badge(g.circuit)),
      el("td", { class: "num" }, fmtNum(g.inflight)),
      el("td", { class: "num" }, fmtNum(g.backlog)),
      el("td", { class: "num" }, fmtNum(g.dead)),
      el("td", { class: "num" }, fmtNum(g.ok)),
      el("td", { class: "num" }, fmtNum(g.retry)),
      el("td", { class: "num" }, fmtNum(g.fail)),
      el("td", { class: "num" }, fmtMs(g.avg_ms)),
      el("td", { class: "num" }, fmtMs(g.p95_ms))));
    fillTable("targets", rows, "No targets configured.", 10);

    const sel = $("dead-target");
    const have = Array.from(sel.options).map((o) => o.value);
    for (const g of st.targets) {
      if (!have.includes(g.name)) sel.appendChild(el("option", { value: g.name }, g.name));
    }
    renderKpis(st.kpis || {});
    drawCharts();
  }

  function moneyRows(list, keyName) {
    return list.map((r) => el("tr", {},
      el("td", {}, r[keyName] || "–"),
      el("td", { class: "num mono" }, r.amount + " " + r.currency),
      el("td", { class: "num" }, fmtNum(r.charges))));
  }

  /* A table whose columns from numFrom on (default 1) are numbers, right-aligned. */
  function smallTable(head, rows, empty, numFrom) {
    const from = numFrom === undefined ? 1 : numFrom;
    const t = el("table", { class: "data" },
      el("thead", {}, el("tr", {}, head.map((h, i) => el("th", { class: i >= from ? "num" : null }, h)))),
      el("tbody", {}));
    if (!rows.length) t.tBodies[0].appendChild(el("tr", { class: "empty" }, el("td", { colspan: head.length }, empty)));
    for (const r of rows) t.tBodies[0].appendChild(r);
    return t;
  }

  let extraKpis = null;

  function renderKpis(k) {
    setText("kpi-date", k.date ? "today · " + k.date + " (UTC)" : "today (UTC)");
    const s2c = k.ship_to_charge || { count: 0 };
    const box = $("kpis");
    const revenue = (k.revenue_by_customer || []);
    const totalCharges = revenue.reduce((a, r) => a + r.charges, 0);
    const kv = el("div", { class: "kv" },
      el("div", {}, el("small", {}, "Charges today"), el("b", {}, fmtNum(totalCharges))),
      el("div", {}, el("small", {}, "Ship-to-charge p50"), el("b", {}, s2c.count ? (s2c.p50_le_s === null ? "> 7 d" : "≤ " + fmtSecs(s2c.p50_le_s)) : "–")),
      el("div", {}, el("small", {}, "Ship-to-charge p95"), el("b", {}, s2c.count ? (s2c.p95_le_s === null ? "> 7 d" : "≤ " + fmtSecs(s2c.p95_le_s)) : "–")));
    const whRows = (k.backlog_by_warehouse || []).map((w) => el("tr", {},
      el("td", {}, w.warehouse || "(none)"), el("td", { class: "num" }, fmtNum(w.backlog)), el("td", { class: "num" }, fmtNum(w.dead))));
    box.replaceChildren(kv,
      el("div", { class: "subh" }, "Revenue charged today, by customer"),
      smallTable(["Customer", "Amount", "Charges"], moneyRows(revenue, "customer"), "No charges today."),
      el("div", { class: "subh" }, "Revenue charged today, by warehouse"),
      smallTable(["Warehouse", "Amount", "Charges"], moneyRows(k.revenue_by_warehouse || [], "warehouse"), "No charges today."),
      el("div", { class: "subh" }, "Backlog by warehouse"),
      smallTable(["Warehouse", "Waiting", "Dead"], whRows, "Nothing waiting."));
    if (extraKpis) box.appendChild(genericBlock(extraKpis, "More KPIs"));
  }

  /* Any JSON answer (an endpoint this page does not know the shape of), as readable blocks. */
  function genericBlock(obj, title) {
    const wrap = el("div", {});
    if (title) wrap.appendChild(el("div", { class: "subh" }, title));
    const kv = el("div", { class: "kv" });
    const rest = [];
    for (const k of Object.keys(obj || {})) {
      const v = obj[k];
      if (typeof v === "number" || typeof v === "string" || typeof v === "boolean") {
        kv.appendChild(el("div", {}, el("small", {}, k.replace(/_/g, " ")), el("b", {}, typeof v === "number" ? fmtNum(v) : String(v))));
      } else if (v && typeof v === "object") rest.push([k, v]);
    }
    if (kv.childNodes.length) wrap.appendChild(kv);
    for (const [k, v] of rest) {
      const list = Array.isArray(v) ? v : null;
      if (list && list.length && typeof list[0] === "object") {
        const cols = Object.keys(list[0]).filter((c) => typeof list[0][c] !== "object").slice(0, 6);
        const rows = list.slice(0, 10).map((r) => el("tr", {}, cols.map((c, i) => el("td", { class: i ? "num" : null }, r[c] === null || r[c] === undefined ? "–" : String(r[c])))));
        wrap.appendChild(el("div", { class: "subh" }, k.replace(/_/g, " ") + " (" + list.length + ")"));
        wrap.appendChild(smallTable(cols, rows, "none"));
      } else if (list) {
        wrap.appendChild(el("div", { class: "subh" }, k.replace(/_/g, " ") + ": " + list.length));
      } else {
        wrap.appendChild(genericBlock(v, k.replace(/_/g, " ")));
      }
    }
    return wrap;
  }

  /*
   * The reconciliation report ({clean, checked, counts, breaks[]}, as
   * `crossdock reconcile --json`): a verdict, what was checked, breaks by
   * category, the first breaks with their event's timeline a click away.
   * Another shape is shown as it comes.
   */
  function renderRecon(r) {
    if (!r || typeof r.clean !== "boolean" || !Array.isArray(r.breaks)) return genericBlock(r, null);
    const wrap = el("div", { id: "recon-report" });
    const counts = r.counts || {};
    const total = Object.keys(counts).reduce((a, k) => a + counts[k], 0) || r.breaks.length;
    wrap.appendChild(el("p", {}, r.clean ? badge("clean", "ok") : badge(nf.format(total) + " break" + (total === 1 ? "" : "s"), "dead"),
      " ", el("span", { class: "muted" }, "report of " + fmtTime(r.generated_at))));
    const checked = r.checked || {};
    const kv = el("div", { class: "kv" });
    for (const k of Object.keys(checked).slice(0, 6)) {
      kv.appendChild(el("div", {}, el("small", {}, k.replace(/_/g, " ") + " checked"), el("b", {}, fmtNum(checked[k]))));
    }
    if (kv.childNodes.length) wrap.appendChild(kv);
    const cats = Object.keys(counts).map((k) => el("tr", {}, el("td", {}, k.replace(/_/g, " ")), el("td", { class: "num" }, fmtNum(counts[k]))));
    if (cats.length) {
      wrap.appendChild(el("div", { class: "subh" }, "Breaks by category"));
      wrap.appendChild(smallTable(["Category", "Breaks"], cats, "none"));
    }
    if (r.breaks.length) {
      const rows = r.breaks.slice(0, 10).map((b) => {
        const o = b.object || {};
        const ev = o.event_id ? el("a", { href: "#", class: "mono", onclick: (e) => { e.preventDefault(); openTimeline(o.event_id); } }, o.key || o.event_id) : (o.key || "–");
        return el("tr", {},
          el("td", {}, (b.category || "").replace(/_/g, " ")),
          el("td", {}, ev),
          el("td", { class: "num mono" }, b.difference !== undefined && b.difference !== null ? b.difference + (b.currency ? " " + b.currency : "") : "–"),
          el("td", { class: "num" }, fmtSecs(b.age_s)));
      });
      wrap.appendChild(el("div", { class: "subh" }, "Breaks" + (r.breaks.length > 10 ? " (first 10 of " + nf.format(r.breaks.length) + ")" : "")));
      wrap.appendChild(smallTable(["Category", "Object", "Difference", "Age"], rows, "none", 2));
    }
    return wrap;
  }

  async function refreshSlow() {
    const st = state.stats;
    if (!st) return;
    const recon = $("recon");
    if (st.api && st.api.reconciliation) {
      try {
        const r = await api("/v1/reconciliation?exceptions=false"); // look only: reports open cases
        recon.replaceChildren(renderRecon(r));
      } catch (err) {
        recon.replaceChildren(el("p", { class: "muted" }, "Not available: " + explain(err, "reconciliation")));
      }
    } else {
      recon.replaceChildren(el("p", { class: "muted", id: "recon-na" }, "Not available: this hub does not serve GET /v1/reconciliation yet. Run `crossdock reconcile` for the report."));
    }
    if (st.api && st.api.kpis) {
      try {
        extraKpis = await api("/v1/kpis");
      } catch (err) {
        extraKpis = null;
      }
    }
  }

  async function refreshStats() {
    try {
      const st = await api("/v1/stats");
      state.stats = st;
      renderStats(st);
      live(true, "live · " + new Date().toLocaleTimeString("en-GB"));
      if ($("banner").dataset.kind === "auth") { banner(null); $("banner").dataset.kind = ""; }
      return true;
    } catch (err) {
      live(false, err instanceof ApiError ? "HTTP " + err.status : "offline");
      banner(explain(err, "Loading figures"), err instanceof ApiError && err.status !== 401);
      $("banner").dataset.kind = "auth";
      return false;
    }
  }

  /* ---- dead letters ---- */

  function deadQuery(withPaging) {
    const f = state.dead.filter;
    const q = { state: "dead", target: f.target, error_class: f.error_class };
    if (withPaging) {
      q.limit = PAGE;
      q.after = state.dead.cursors[state.dead.page] || "";
    }
    return q;
  }

  async function refreshDead() {
    try {
      const [list, count] = await Promise.all([
        api("/v1/deliveries" + qs(deadQuery(true))),
        api("/v1/deliveries/count" + qs(deadQuery(false))),
      ]);
      state.dead.next = list.next_after || null;
      const rows = list.deliveries.map((d) => el("tr", { "data-dlv-id": d.id },
        el("td", { class: "num mono" }, d.id),
        el("td", {}, el("a", { href: "#", class: "mono", onclick: (e) => { e.preventDefault(); openTimeline(d.event_id); } }, d.event_id)),
        el("td", {}, d.target || "(rate)"),
        el("td", {}, d.route + " · " + d.step),
        el("td", { class: "num" }, d.attempts),
        el("td", {}, d.error_class ? badge(d.error_class, "fail") : "–"),
        el("td", { class: "err", title: d.last_error || "" }, lastError(d)),
        el("td", {}, fmtTime(d.updated_at)),
        el("td", { class: "actions" }, el("button", { class: "small", "data-replay": d.id, onclick: () => replayOne(d.id) }, "Replay"))));
      fillTable("dead", rows, "No dead letters" + (state.dead.filter.target || state.dead.filter.error_class ? " match this filter." : "."), 9);
      const from = state.dead.page * PAGE;
      setText("dead-count", nf.format(count.count) + " dead");
      setText("dead-page", count.count ? (from + 1) + "–" + (from + list.deliveries.length) + " of " + nf.format(count.count) : "");
      $("dead-prev").disabled = state.dead.page === 0;
      $("dead-next").disabled = !state.dead.next;
      $("replay-all").disabled = count.count === 0;
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 401)) toast(explain(err, "Dead letters"), "bad");
    }
  }

  function lastError(d) {
    const e = d.last_error || "";
    return d.last_status && !/^HTTP /.test(e) ? "HTTP " + d.last_status + (e ? " · " + e : "") : e;
  }

  async function replayOne(id) {
    try {
      await api("/v1/deliveries/" + id + "/replay", { method: "POST" });
      toast("Delivery " + id + " is back in line.", "ok");
    } catch (err) {
      toast(explain(err, "Replay " + id), "bad");
    }
    await Promise.all([refreshDead(), refreshStats()]);
  }

  async function replayAll() {
    let count;
    try {
      count = await api("/v1/deliveries/count" + qs(deadQuery(false)));
    } catch (err) {
      toast(explain(err, "Counting dead letters"), "bad");
      return;
    }
    const f = state.dead.filter;
    const body = $("confirm-body");
    body.replaceChildren(
      el("p", {}, "This puts ", el("b", { id: "confirm-count" }, nf.format(count.count)), " dead deliver" + (count.count === 1 ? "y" : "ies") + " back in line, with their original Idempotency-Key."),
      el("dl", { class: "facts" },
        el("dt", {}, "Target"), el("dd", { id: "confirm-target" }, f.target || "all targets"),
        el("dt", {}, "Error class"), el("dd", { id: "confirm-class" }, f.error_class || "any"),
        el("dt", {}, "State"), el("dd", {}, "dead")));
    setText("confirm-title", "Replay " + nf.format(count.count) + " dead letter" + (count.count === 1 ? "" : "s") + "?");
    const dlg = $("confirm");
    dlg.returnValue = "";
    dlg.showModal();
    dlg.addEventListener("close", async function onClose() {
      dlg.removeEventListener("close", onClose);
      if (dlg.returnValue !== "ok") return;
      const filter = {};
      if (f.target) filter.target = f.target;
      if (f.error_class) filter.error_class = f.error_class;
      try {
        const r = await api("/v1/deliveries/replay", { method: "POST", body: filter });
        toast("Replayed " + nf.format(r.replayed) + " dead letter" + (r.replayed === 1 ? "" : "s") + ".", "ok");
      } catch (err) {
        toast(explain(err, "Bulk replay"), "bad");
      }
      state.dead.cursors = [0];
      state.dead.page = 0;
      await Promise.all([refreshDead(), refreshStats()]);
    });
  }

  /* ---- exceptions ---- */

  async function refreshExceptions() {
    try {
      const q = { state: state.exc.state, limit: PAGE, after: state.exc.cursors[state.exc.page] || "" };
      const list = await api("/v1/exceptions" + qs(q));
      state.exc.next = list.next_after || null;
      const rows = list.exceptions.map((x) => el("tr", { "data-exc-id": x.id },
        el("td", { class: "num mono" }, x.id),
        el("td", {}, x.category),
        el("td", {}, badge(x.state, x.state === "open" ? "exc-open" : x.state)),
        el("td", {}, x.event_id ? el("a", { href: "#", class: "mono", onclick: (e) => { e.preventDefault(); openTimeline(x.event_id); } }, x.event_id) : "–"),
        el("td", {}, x.target || "–"),
        el("td", { class: "err", title: x.reason || "" }, x.reason || ""),
        el("td", {}, fmtAge(x.created_at)),
        el("td", { class: "actions" },
          x.state === "open" ? el("button", { class: "small", "data-ack": x.id, onclick: () => patchException(x.id, "acknowledged") }, "Acknowledge") : null,
          x.state !== "resolved" ? el("button", { class: "small", "data-resolve": x.id, onclick: () => patchException(x.id, "resolved") }, "Resolve") : null)));
      fillTable("exceptions", rows, state.exc.state ? "No " + state.exc.state + " exceptions." : "No exceptions.", 8);
      setText("exc-page", list.exceptions.length ? "page " + (state.exc.page + 1) : "");
      $("exc-prev").disabled = state.exc.page === 0;
      $("exc-next").disabled = !state.exc.next;
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 401)) toast(explain(err, "Exceptions"), "bad");
    }
  }

  async function patchException(id, to) {
    try {
      await api("/v1/exceptions/" + id, { method: "PATCH", body: { state: to } });
      toast("Exception " + id + " " + to + ".", "ok");
    } catch (err) {
      toast(explain(err, "Exception " + id), "bad");
    }
    await Promise.all([refreshExceptions(), refreshStats()]);
  }

  /* ---- an event's timeline ---- */

  function outcomeClass(o) {
    if (o === "ok" || o === "done" || o === "recorded" || o === "resolved") return "ok";
    if (o === "retry" || o === "replayed" || o === "acknowledged" || o === "pending" || o === "held") return "warn";
    if (o === "fail" || o === "dead" || o === "opened") return "bad";
    return "";
  }

  /* One timeline entry: what happened (kind: received, attempt, charge, exception) and how it went. */
  function timelineEntry(t) {
    let what, detail;
    if (t.kind === "charge") {
      what = "charge " + t.code;
      detail = [t.detail, t.billing ? "billing " + t.billing : "no billing step"].join(" · ");
    } else if (t.kind === "exception") {
      what = "exception #" + t.exception_id + " · " + t.category;
      detail = [t.detail, t.owner ? "owner " + t.owner : null].filter(Boolean).join(" · ");
    } else if (t.kind === "received" || t.step === "received") {
      what = "received";
      detail = t.detail;
    } else {
      what = (t.target || "(rate)") + " · " + (t.route || "") + " step " + t.step;
      const err = t.error || t.detail || null;
      detail = [t.status && !(err && /^HTTP /.test(err)) ? "HTTP " + t.status : null, t.latency_ms ? fmtMs(t.latency_ms) + " ms" : null, err].filter(Boolean).join(" · ");
    }
    return el("li", { class: outcomeClass(t.outcome), "data-kind": t.kind || "" }, el("span", { class: "when" }, fmtTime(t.at)), el("b", {}, what), " ", badge(t.outcome, outcomeClass(t.outcome) || t.outcome), detail ? el("div", { class: "muted" }, detail) : null);
  }

  async function openTimeline(id) {
    id = (id || "").trim();
    if (!id) return;
    const dlg = $("timeline");
    setText("tl-title", "Event " + id);
    const body = $("tl-body");
    body.replaceChildren(el("p", { class: "muted" }, "Loading…"));
    if (!dlg.open) dlg.showModal();
    let ev;
    try {
      ev = await api("/v1/events/" + encodeURIComponent(id));
    } catch (err) {
      body.replaceChildren(el("p", {}, err instanceof ApiError && err.status === 404 ? "No event with id " + id + "." : explain(err, "Timeline")));
      return;
    }
    const dlv = ev.deliveries.map((d) => el("tr", { "data-tl-dlv": d.id },
      el("td", { class: "num mono" }, d.id),
      el("td", {}, d.target || "(rate)"),
      el("td", {}, d.route + " · " + d.step),
      el("td", {}, badge(d.state)),
      el("td", { class: "num" }, d.attempts),
      el("td", { class: "err", title: d.last_error || "" }, d.last_error || ""),
      el("td", { class: "actions" }, d.state === "dead" ? el("button", { class: "small", onclick: async () => { await replayOne(d.id); openTimeline(id); } }, "Replay") : null)));
    const steps = ev.timeline.map(timelineEntry);
    const charges = (ev.charges || []).map((c) => el("tr", { "data-tl-charge": c.charge_id },
      el("td", { class: "mono" }, c.charge_id),
      el("td", {}, c.code + (c.reverses ? " (reverses " + c.reverses + ")" : "")),
      el("td", { class: "num" }, c.quantity + " " + c.unit),
      el("td", { class: "num mono" }, c.amount + " " + c.currency),
      el("td", {}, c.billing ? badge(c.billing.state) : el("span", { class: "muted" }, "no billing step"))));
    const excs = (ev.exceptions || []).map((x) => el("tr", { "data-tl-exc": x.id },
      el("td", { class: "num mono" }, x.id),
      el("td", {}, x.category),
      el("td", {}, badge(x.state)),
      el("td", {}, x.owner || "–"),
      el("td", { class: "err", title: x.reason || "" }, x.reason || "")));
    body.replaceChildren(
      el("dl", { class: "facts" },
        el("dt", {}, "State"), el("dd", {}, badge(ev.state)),
        el("dt", {}, "Type"), el("dd", {}, ev.type),
        el("dt", {}, "Business key"), el("dd", { class: "mono" }, ev.business_key),
        el("dt", {}, "Source"), el("dd", {}, ev.source),
        el("dt", {}, "Received"), el("dd", {}, fmtTime(ev.received_at) + " · seq " + ev.seq),
        el("dt", {}, "Trace id"), el("dd", { class: "mono", id: "tl-trace" }, ev.trace_id || "–")),
      el("div", { class: "subh" }, "Deliveries"),
      smallTableRaw(["ID", "Target", "Route · step", "State", "Attempts", "Last error", ""], dlv, "No route took this event."),
      charges.length ? el("div", { class: "subh" }, "Charges") : null,
      charges.length ? smallTableRaw(["Charge", "Code", "Quantity", "Amount", "Billing"], charges, "") : null,
      excs.length ? el("div", { class: "subh" }, "Exceptions") : null,
      excs.length ? smallTableRaw(["ID", "Category", "State", "Owner", "Reason"], excs, "") : null,
      el("div", { class: "subh" }, "Timeline"),
      el("ol", { class: "tl", id: "tl-steps" }, steps),
      el("details", {}, el("summary", {}, "Event as stored"), el("pre", { class: "json" }, JSON.stringify(ev.event, null, 2))));
  }

  function smallTableRaw(head, rows, empty) {
    const t = el("table", { class: "data" }, el("thead", {}, el("tr", {}, head.map((h) => el("th", {}, h)))), el("tbody", {}));
    if (!rows.length) t.tBodies[0].appendChild(el("tr", { class: "empty" }, el("td", { colspan: head.length }, empty)));
    for (const r of rows) t.tBodies[0].appendChild(r);
    return t;
  }

  /* ---- wiring ---- */

  async function refreshLists() {
    state.lastLists = Date.now();
    await Promise.all([refreshDead(), refreshExceptions()]);
  }

  async function loop() {
    const ok = await refreshStats();
    if (ok && Date.now() - state.lastLists >= LISTS_EVERY_MS) await refreshLists();
    if (ok && Date.now() - state.lastSlow >= SLOW_EVERY_MS) {
      state.lastSlow = Date.now();
      await refreshSlow();
    }
    setTimeout(loop, STATS_EVERY_MS);
  }

  function init() {
    $("key-input").value = state.key ? "••••••••" : "";
    $("keyform").addEventListener("submit", (e) => {
      e.preventDefault();
      const v = $("key-input").value.trim();
      if (v && v !== "••••••••") {
        state.key = v;
        sessionStorage.setItem(KEY_STORE, v);
        $("key-input").value = "••••••••";
        state.lastSlow = 0;
        refreshStats().then((ok) => { if (ok) { refreshLists(); refreshSlow(); } });
      }
    });
    $("key-forget").addEventListener("click", () => {
      state.key = "";
      sessionStorage.removeItem(KEY_STORE);
      $("key-input").value = "";
      refreshStats();
    });
    $("search").addEventListener("submit", (e) => {
      e.preventDefault();
      openTimeline($("search-input").value);
    });
    $("tl-close").addEventListener("click", () => $("timeline").close());
    $("dead-filter").addEventListener("submit", (e) => {
      e.preventDefault();
      state.dead.filter = { target: $("dead-target").value, error_class: $("dead-class").value.trim() };
      state.dead.cursors = [0];
      state.dead.page = 0;
      refreshDead();
    });
    $("dead-target").addEventListener("change", () => $("dead-filter").requestSubmit());
    $("replay-all").addEventListener("click", replayAll);
    $("dead-next").addEventListener("click", () => {
      if (!state.dead.next) return;
      state.dead.cursors[state.dead.page + 1] = state.dead.next;
      state.dead.page++;
      refreshDead();
    });
    $("dead-prev").addEventListener("click", () => {
      if (state.dead.page === 0) return;
      state.dead.page--;
      refreshDead();
    });
    $("exc-state").addEventListener("change", () => {
      state.exc.state = $("exc-state").value;
      state.exc.cursors = [0];
      state.exc.page = 0;
      refreshExceptions();
    });
    $("exc-next").addEventListener("click", () => {
      if (!state.exc.next) return;
      state.exc.cursors[state.exc.page + 1] = state.exc.next;
      state.exc.page++;
      refreshExceptions();
    });
    $("exc-prev").addEventListener("click", () => {
      if (state.exc.page === 0) return;
      state.exc.page--;
      refreshExceptions();
    });
    window.addEventListener("resize", drawCharts);
    loop();
  }

  init();
})();
