#!/usr/bin/env node
/*
 * The dashboard (/ui) end to end, in Debian's headless chromium driven by
 * playwright-core: the real hub (CROSSDOCK_BIN) and the real ERP/billing
 * stand-in (tests/standin/standin.py) on loopback ports.
 *
 *   1. without a key the page asks for one; with a read-only key it shows
 *      the figures, and they change when events are posted;
 *   2. the stand-in refuses (400): the delivery is dead-lettered, the page
 *      lists it; replay clicked with the read-only key says the key lacks
 *      `ops`; with an ops key and the stand-in answering 200 again, replay
 *      clicked: the delivery goes, the event's timeline (search box) shows it
 *      delivered, with its charges and the dead letter's exception;
 *   3. bulk replay: three dead letters, "Replay all matching" shows their
 *      count and filter, confirmed, all delivered;
 *   4. an exception acknowledged by clicking.
 *
 * Screenshots go to $XD_ARTIFACTS (default: ./artifacts). Any JavaScript
 * error or console error on the page fails the test (the expected 403 of
 * step 2 aside). No timing assertions: every wait is a hang guard.
 *
 * Exit 0 pass, 1 fail, 77 skipped (chromium absent: install-deps installs it).
 */
"use strict";

const { spawn } = require("child_process");
const fs = require("fs");
const net = require("net");
const os = require("os");
const path = require("path");

const CHROMIUM = process.env.XD_CHROMIUM || "/usr/bin/chromium";
const BIN = process.env.CROSSDOCK_BIN || path.join(__dirname, "../../build/crossdock");
const STANDIN = path.join(__dirname, "../standin/standin.py");
const ART = process.env.XD_ARTIFACTS || path.join(__dirname, "artifacts");
const DOCS_IMG = process.env.XD_DOCS_IMG; /* when set: also write the README's screenshot there */
const GUARD_MS = Number(process.env.XD_HANG_GUARD_MS || 120000); /* a hang guard, never a speed check */
/* For the docs' screenshot: minutes of varied traffic first, so the charts have a history. */
const WARMUP_S = Number(process.env.XD_DOCS_WARMUP_S || 0);

if (!fs.existsSync(CHROMIUM)) {
  console.log(`SKIP: ${CHROMIUM} is absent (Debian package chromium; scripts/install-deps.sh installs it)`);
  process.exit(77);
}
const { chromium } = require("playwright-core");

const KEYS = { viewer: "view-k3y-0001", ops: "ops-k3y-0002", wms: "wms-k3y-0003" };

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
    s.on("error", reject);
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function until(what, fn, guard = GUARD_MS) {
  const end = Date.now() + guard;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e.message;
    }
    if (Date.now() > end) throw new Error(`hang guard: still waiting for ${what} (last: ${String(last).slice(0, 300)})`);
    await sleep(100);
  }
}

async function http(base, method, p, body, key) {
  const headers = {};
  if (key) headers.Authorization = "Bearer " + key;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(base + p, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  let data = text;
  try { data = JSON.parse(text); } catch (e) { /* not JSON */ }
  return { status: r.status, data };
}

function shipment(id, sku) {
  return {
    event_id: id, type: "shipment.confirmed", occurred_at: new Date(Date.now() - 90000).toISOString().replace(/\.\d+Z$/, "Z"),
    source: "wms-dc1",
    data: { warehouse: id.includes("dc2") ? "DC2" : "DC1", shipment_id: "SHP-" + id, order_id: "ORD-" + id,
            customer: id.includes("dc2") ? "GLOBEX" : "ACME", lines: [{ sku: sku || "SKU-1", qty: 3 }, { sku: "SKU-2", qty: 2 }] },
  };
}

/*
 * Varied traffic for WARMUP_S seconds: a batch every second whose size
 * swings, some deliveries slow (the stand-in delays them), some retried
 * (503 once), a few refused for good (400: dead letters, open exceptions).
 */
async function warmUp(post, sBase, seconds) {
  await http(sBase, "POST", "/_rules", { path: "/erp", delay_ms: 25, match: "-slow-" });
  await http(sBase, "POST", "/_rules", { path: "/erp", status: 400, match: "-lost-" });
  const end = Date.now() + seconds * 1000;
  let n = 0;
  for (let t = 0; Date.now() < end; t++) {
    const k = Math.max(2, Math.round(14 + 10 * Math.sin(t / 45) + 6 * Math.sin(t / 7) + Math.random() * 6));
    const batch = [];
    for (let i = 0; i < k; i++) {
      n++;
      const kind = n % 97 === 0 ? "lost-" : n % 5 === 0 ? "slow-" : "";
      const dc2 = n % 3 === 0 ? "dc2-" : "";
      if (n % 11 === 0) await http(sBase, "POST", "/_rules", { path: "/erp", status: 503, count: 1, match: `w-${dc2}${kind}${n}"` });
      batch.push(shipment(`w-${dc2}${kind}${n}`));
    }
    await post(batch);
    await sleep(1000);
  }
  await http(sBase, "DELETE", "/_rules");
}

async function main() {
  fs.mkdirSync(ART, { recursive: true });
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "xd-ui-"));
  const hubPort = await freePort();
  const sPort = await freePort();
  const base = `http://127.0.0.1:${hubPort}`;
  const sBase = `http://127.0.0.1:${sPort}`;
  const procs = [];
  let hub, browser;
  const pageErrors = [];

  const stop = async () => {
    if (browser) await browser.close().catch(() => {});
    for (const p of procs) if (p.exitCode === null) p.kill("SIGTERM");
  };

  try {
    const standin = spawn("python3", ["-B", STANDIN, "--port", String(sPort)], { stdio: "ignore" });
    procs.push(standin);
    const cfg = `server: {listen: "127.0.0.1:${hubPort}"}
store: {driver: sqlite, path: "${work}/crossdock.db"}
log: {level: info, format: json}
auth:
  keys:
    - {id: viewer, secret_env: XD_K_VIEWER, scopes: [read]}
    - {id: ops, secret_env: XD_K_OPS, scopes: [read, ops]}
    - {id: wms-dc1, secret_env: XD_K_WMS, scopes: [events:write]}
targets:
  erp:
    type: http
    url: ${sBase}/erp
    retry: {max_attempts: 3, initial_backoff_ms: 50, max_backoff_ms: 200}
  billing:
    type: http
    url: ${sBase}/billing
    retry: {max_attempts: 3, initial_backoff_ms: 50, max_backoff_ms: 200}
routes:
  - name: shipments
    on: [shipment.confirmed]
    steps:
      - deliver: erp
        map: '{delivery: .data.shipment_id, items: [.data.lines[] | {material: .sku, quantity: .qty}]}'
      - rate: true
      - deliver: billing
rate_cards:
  - customer: ACME
    currency: USD
    effective_from: 2026-01-01
    charges:
      - {code: HANDLING_SHIPMENT, on: shipment.confirmed, per: shipment, price: "2.50"}
      - {code: PICK_UNIT, on: shipment.confirmed, per: unit, price: "0.35"}
  - customer: GLOBEX
    currency: EUR
    effective_from: 2026-01-01
    charges:
      - {code: HANDLING_SHIPMENT, on: shipment.confirmed, per: shipment, price: "3.10"}
`;
    fs.writeFileSync(path.join(work, "crossdock.yaml"), cfg);
    const logFd = fs.openSync(path.join(ART, "hub.log"), "w");
    hub = spawn(BIN, ["serve", "-c", path.join(work, "crossdock.yaml")], {
      cwd: work, stdio: ["ignore", logFd, logFd],
      env: Object.assign({}, process.env, { XD_K_VIEWER: KEYS.viewer, XD_K_OPS: KEYS.ops, XD_K_WMS: KEYS.wms }),
    });
    procs.push(hub);
    await until("the hub's /healthz", async () => (await http(base, "GET", "/healthz")).status === 200);
    await until("the stand-in", async () => (await http(sBase, "GET", "/healthz")).status === 200);

    const post = async (events) => {
      const r = await http(base, "POST", "/v1/events", { events }, KEYS.wms);
      if (r.status !== 202) throw new Error("POST /v1/events: " + r.status + " " + JSON.stringify(r.data));
    };
    /* A little history before the page opens, so the charts and KPIs have something. */
    await post([shipment("hist-1"), shipment("hist-2"), shipment("hist-dc2-3")]);
    if (WARMUP_S > 0) {
      await warmUp(post, sBase, WARMUP_S);
      /* what it dead-lettered goes again, so the steps below start from no dead letters */
      await http(base, "POST", "/v1/deliveries/replay", {}, KEYS.ops);
      await until("the warm-up's dead letters delivered", async () => {
        const st = (await http(base, "GET", "/v1/stats", undefined, KEYS.viewer)).data;
        return st.totals.dead_letters === 0 && st.totals.backlog === 0;
      });
    }

    const userDir = fs.mkdtempSync(path.join(os.tmpdir(), "xd-chromium-"));
    const ctx = await chromium.launchPersistentContext(userDir, {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1440, height: 1000 },
      deviceScaleFactor: 1,
      args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    });
    browser = ctx;
    const page = ctx.pages()[0] || (await ctx.newPage());
    let allowStatus = /status of 401/; /* no key yet: the page's first calls are refused */
    page.on("pageerror", (e) => pageErrors.push("pageerror: " + e.message));
    page.on("console", (m) => {
      if (m.type() !== "error") return;
      const t = m.text();
      if (allowStatus && allowStatus.test(t)) return; /* a refusal the test provokes on purpose */
      pageErrors.push("console.error: " + t);
    });
    const shot = async (name, full = true) => {
      if (full) await page.evaluate(() => window.scrollTo(0, 0));
      await page.screenshot({ path: path.join(ART, name + ".png"), fullPage: full });
    };
    const t0 = Date.now();
    const step = (what) => console.log(`[${((Date.now() - t0) / 1000).toFixed(1)} s] ${what}`);
    const text = async (sel) => (await page.textContent(sel)) || "";
    const num = async (sel) => Number((await text(sel)).replace(/[^0-9]/g, "") || "NaN");

    /* 1. no key: the page asks for one */
    await page.goto(base + "/ui", { waitUntil: "load" });
    await until("the page to ask for a key", async () => /API key/.test(await text("#banner")) && await page.isVisible("#banner"));
    await shot("01-no-key");

    /* read-only key: figures */
    allowStatus = null;
    step("read-only key");
    await page.fill("#key-input", KEYS.viewer);
    await page.click("#keyform button[type=submit]");
    await until("figures with the read-only key", async () => (await num("#t-received")) >= 3);
    const before = await num("#t-received");
    await post([shipment("live-1"), shipment("live-2"), shipment("live-3"), shipment("live-4"), shipment("live-dc2-5")]);
    await until("the received count to move by 5", async () => (await num("#t-received")) === before + 5);
    await until("the targets table", async () => (await page.$$("#targets tbody tr[data-target]")).length >= 2);
    await until("the stored count", async () => (await num("#t-stored")) === before + 5);
    await shot("02-counts");

    step("dead letter");
    /* 2. a refused delivery is dead-lettered and listed */
    await http(sBase, "POST", "/_rules", { path: "/erp", status: 400, match: "SHP-bad-1" });
    await post([shipment("bad-1")]);
    const row = await until("the dead letter in the list", async () => page.$("#dead tbody tr[data-dlv-id]"));
    const dlvId = await row.getAttribute("data-dlv-id");
    await until("the dead-letter tile", async () => (await num("#t-dead")) === 1);
    await until("its exception", async () => (await page.$$("#exceptions tbody tr[data-exc-id]")).length === 1);
    await shot("03-dead-letter");

    /* replay with the read-only key: refused, said so */
    step("replay refused for the read-only key");
    allowStatus = /status of 403/;
    await page.click(`#dead button[data-replay="${dlvId}"]`);
    await until("the 403 explained", async () => /lacks the ops scope/.test(await text("#toast")));
    await shot("04-read-only-refused");
    allowStatus = null;

    /* replay with an ops key once the stand-in takes it */
    await http(sBase, "DELETE", "/_rules");
    await page.fill("#key-input", KEYS.ops);
    await page.click("#keyform button[type=submit]");
    await sleep(300);
    await page.click(`#dead button[data-replay="${dlvId}"]`);
    await until("the replayed delivery to leave the list", async () => !(await page.$(`#dead tbody tr[data-dlv-id="${dlvId}"]`)));
    await until("dead letters back to 0", async () => (await num("#t-dead")) === 0);
    await page.fill("#search-input", "bad-1");
    await page.click("#search button[type=submit]");
    let asked = Date.now();
    await until("the timeline to say delivered", async () => {
      const b = await page.$("#timeline[open] .facts .badge");
      if (b && (await b.textContent()) === "delivered") return true;
      if (Date.now() - asked > 2000) { /* look again: the open dialog is modal, close it first */
        asked = Date.now();
        if (await page.$("#timeline[open]")) await page.click("#tl-close");
        await page.click("#search button[type=submit]");
      }
      return false;
    });
    const steps = await text("#tl-steps");
    if (!/replayed/.test(steps) || !/erp/.test(steps)) throw new Error("timeline lacks the replay or the delivery: " + steps);
    /* its charges and the dead letter's exception (resolved by the replay) are in it too */
    if (!/charge HANDLING_SHIPMENT/.test(steps) || !/exception #\d+ · dead_letter/.test(steps)) throw new Error("timeline lacks the charges or the exception: " + steps);
    if ((await page.$$("#tl-body tr[data-tl-charge]")).length !== 2 || (await page.$$("#tl-body tr[data-tl-exc]")).length !== 1) throw new Error("the timeline's charge and exception tables are not 2 and 1 rows");
    await shot("05-timeline-delivered", false);
    await page.click("#tl-close");

    step("bulk replay");
    /* 3. bulk replay, with the count and filter shown first */
    await http(sBase, "POST", "/_rules", { path: "/erp", status: 400, match: "SHP-bulk-" });
    await post([shipment("bulk-1"), shipment("bulk-2"), shipment("bulk-3")]);
    await until("three dead letters", async () => (await num("#t-dead")) === 3);
    await http(sBase, "DELETE", "/_rules");
    await page.selectOption("#dead-target", "erp");
    await until("the filtered list", async () => (await page.$$("#dead tbody tr[data-dlv-id]")).length === 3);
    await page.click("#replay-all");
    await page.waitForSelector("#confirm[open]", { timeout: GUARD_MS });
    const cCount = await text("#confirm-count"), cTarget = await text("#confirm-target");
    if (cCount !== "3" || cTarget !== "erp") throw new Error(`confirmation shows ${cCount} for ${cTarget}, expected 3 for erp`);
    await shot("06-bulk-confirm", false);
    await page.click("#confirm-ok");
    await until("the bulk replay delivered", async () => (await num("#t-dead")) === 0 && (await page.$$("#dead tbody tr[data-dlv-id]")).length === 0);
    for (const id of ["bulk-1", "bulk-2", "bulk-3"]) {
      await until(id + " delivered", async () => (await http(base, "GET", "/v1/events/" + id, undefined, KEYS.viewer)).data.state === "delivered");
    }

    step("exception");
    /* 4. an exception acknowledged; it stays dead (the stand-in keeps refusing it) */
    await http(sBase, "POST", "/_rules", { path: "/erp", status: 400, match: "SHP-keep-1" });
    await post([shipment("keep-1")]);
    const excId = await until("keep-1's exception", async () => {
      const r = await http(base, "GET", "/v1/exceptions?state=open", undefined, KEYS.viewer);
      const x = r.data.exceptions.find((e) => e.event_id === "keep-1");
      return x && x.id;
    });
    const exc = await until("its row in the page", async () => page.$(`#exceptions button[data-ack="${excId}"]`));
    await exc.click();
    await until("the exception acknowledged", async () => {
      const r = await http(base, "GET", "/v1/exceptions/" + excId, undefined, KEYS.viewer);
      return r.data.state === "acknowledged";
    });
    await page.selectOption("#exc-state", "acknowledged");
    await until("the acknowledged exception listed", async () => (await text("#exceptions tbody")).includes("keep-1"));
    await page.selectOption("#exc-state", "open");
    await post([shipment("tail-1"), shipment("tail-dc2-2")]);
    await page.selectOption("#dead-target", "");
    await until("the KPIs with revenue", async () => /USD/.test(await text("#kpis")) && /EUR/.test(await text("#kpis")));
    await until("the list after the filter reset", async () => (await page.$$("#dead tbody tr[data-dlv-id]")).length === 1);
    if (DOCS_IMG) { /* a little more to look at in the docs' picture */
      await http(sBase, "POST", "/_rules", { path: "/erp", status: 400, match: "-late-" });
      await post([shipment("late-dc2-1"), shipment("late-2")]);
      await until("the late dead letters", async () => (await page.$$("#dead tbody tr[data-dlv-id]")).length === 3);
    }
    await page.fill("#search-input", "");
    /*
     * The reconciliation panel with a report of the shape GET
     * /v1/reconciliation answers (docs/api.md), served here by the test
     * whether or not this hub has the endpoint.
     */
    step("reconciliation panel");
    await page.route("**/v1/stats", async (route) => {
      const resp = await route.fetch();
      const json = await resp.json();
      json.api = Object.assign({}, json.api, { reconciliation: true });
      await route.fulfill({ response: resp, json });
    });
    await page.route("**/v1/reconciliation*", (route) => route.fulfill({
      status: 200, contentType: "application/json",
      body: JSON.stringify({
        from: null, to: null, generated_at: new Date().toISOString(), clean: false,
        checked: { objects: 14, events: 16, charges: 30 }, counts: { shipped_not_posted: 1 },
        breaks: [{ key: "k1", category: "shipped_not_posted", systems: ["wms", "erp"],
                   object: { type: "shipment", key: "SHP-keep-1", event_id: "keep-1" },
                   expected: "5", actual: "0", difference: "-5", age_s: 1200, detail: "d" }],
      }),
    }));
    await page.fill("#key-input", KEYS.ops);
    await page.click("#keyform button[type=submit]"); /* a new key: every panel again */
    await until("the reconciliation report shown", async () => /1 break/.test(await text("#recon")) && /shipped not posted/.test(await text("#recon")));
    await page.unroute("**/v1/stats");
    await page.unroute("**/v1/reconciliation*");
    if (!DOCS_IMG) await shot("08-reconciliation");

    await until("the toast to go", async () => !(await page.isVisible("#toast")));
    await sleep(2500); /* one more poll, so the screenshot shows settled figures */
    await shot("07-dashboard");
    if (DOCS_IMG) await page.screenshot({ path: DOCS_IMG, fullPage: false });

    if (pageErrors.length) throw new Error("the page logged errors:\n  " + pageErrors.join("\n  "));
    await stop();
    const rc = await new Promise((r) => (hub.exitCode !== null ? r(hub.exitCode) : hub.on("exit", (c) => r(c))));
    if (rc !== 0) throw new Error("crossdock serve exited " + rc + " on SIGTERM");
    fs.rmSync(work, { recursive: true, force: true });
    fs.rmSync(userDir, { recursive: true, force: true });
    console.log("PASS: dashboard (screenshots in " + ART + ")");
    return 0;
  } catch (e) {
    console.error("FAIL: " + e.message);
    if (pageErrors.length) console.error("page errors:\n  " + pageErrors.join("\n  "));
    try { console.error("hub log (tail):\n" + fs.readFileSync(path.join(ART, "hub.log"), "utf8").slice(-4000)); } catch (_) { /* none */ }
    await stop();
    return 1;
  }
}

main().then((rc) => process.exit(rc), (e) => { console.error(e); process.exit(1); });
