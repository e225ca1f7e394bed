// A line-oriented remote control for Debian's headless Chromium, used by
// the dashboard's browser tests (examples/tests/dashboard.rs) and the
// latency benchmark (benches/src/bin/dashboard_latency.rs).
//
// Reads one JSON command per line on stdin, answers one JSON line per
// command on stdout: {"id": N, "ok": true, "value": ...} or
// {"id": N, "ok": false, "error": "..."}. The Rust side makes every
// assertion; this script only drives the browser.
//
// Commands ({"id": N, "op": ..., ...}):
//   goto {url}                     open a page (a new one when `fresh`)
//   wait {selector, timeout_ms, state?}   wait for a selector
//   waitFn {expr, timeout_ms}      wait until a JS expression is truthy
//   eval {expr}                    evaluate a JS expression, JSON value back
//   screenshot {path}              full-page PNG
//   console {}                     console messages and page errors so far
//   wsFail {on}                    make /ws/dashboard fail (or stop doing so)
//   close {}                       end the browser and exit
//
// Environment: CHROMIUM (default /usr/bin/chromium).
import { chromium } from "playwright-core";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";

const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
const profile = mkdtempSync(join(tmpdir(), "netanalyzer-chromium-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath,
  headless: true,
  viewport: { width: 1400, height: 1000 },
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    // A background tab must not throttle the page's timers under test.
    "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
  ],
});

const log = [];
let page = null;
let wsFailing = false;
let wsRouted = false;

function watch(p) {
  p.on("console", (m) => log.push({ type: m.type(), text: m.text(), t_ms: Date.now() }));
  p.on("pageerror", (e) => log.push({ type: "pageerror", text: String(e && e.stack || e), t_ms: Date.now() }));
  p.on("requestfailed", (r) => log.push({ type: "requestfailed", text: r.url() + " " + (r.failure() && r.failure().errorText), t_ms: Date.now() }));
}

async function getPage(fresh) {
  if (page && !fresh) return page;
  if (page) await page.close();
  page = await context.newPage();
  watch(page);
  wsRouted = false;
  if (wsFailing) await routeWs();
  return page;
}

async function routeWs() {
  if (wsRouted) return;
  wsRouted = true;
  await page.routeWebSocket(/\/ws\/dashboard/, (ws) => {
    if (wsFailing) ws.close({ code: 1011, reason: "failing on purpose (test)" });
    else ws.connectToServer();
  });
}

const ops = {
  async goto(c) {
    const p = await getPage(!!c.fresh);
    const r = await p.goto(c.url, { waitUntil: "load", timeout: c.timeout_ms || 30000 });
    return { status: r ? r.status() : null, headers: r ? r.headers() : {} };
  },
  async wait(c) {
    await page.waitForSelector(c.selector, { timeout: c.timeout_ms || 30000, state: c.state || "attached" });
    return true;
  },
  // Polled from here with page.evaluate (a DevTools evaluation, which the
  // page's CSP allows), not page.waitForFunction (whose in-page polling
  // evaluates a string, which the dashboard's CSP forbids: no unsafe-eval).
  async waitFn(c) {
    const end = Date.now() + (c.timeout_ms || 30000);
    let last = null;
    for (;;) {
      try {
        const v = await page.evaluate(c.expr);
        if (v) return v;
        last = null;
      } catch (e) {
        // A navigation in progress destroys the context: try again.
        last = e;
      }
      if (Date.now() > end) throw new Error("timeout after " + (c.timeout_ms || 30000) + " ms" + (last ? ": " + last.message : ""));
      await new Promise((r) => setTimeout(r, c.polling_ms || 50));
    }
  },
  async eval(c) {
    return await page.evaluate(c.expr);
  },
  async screenshot(c) {
    await page.screenshot({ path: c.path, fullPage: c.full_page !== false });
    return c.path;
  },
  async console() {
    return log.slice();
  },
  async wsFail(c) {
    wsFailing = !!c.on;
    if (page) await routeWs();
    return wsFailing;
  },
  async close() {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
    return true;
  },
};

const rl = createInterface({ input: process.stdin });
for await (const line of rl) {
  if (!line.trim()) continue;
  let c;
  try { c = JSON.parse(line); } catch (e) { process.stdout.write(JSON.stringify({ id: null, ok: false, error: "bad json: " + e.message }) + "\n"); continue; }
  const f = ops[c.op];
  let out;
  try {
    if (!f) throw new Error("unknown op " + c.op);
    out = { id: c.id, ok: true, value: (await f(c)) ?? null };
  } catch (e) {
    out = { id: c.id, ok: false, error: String(e && e.message || e) };
  }
  process.stdout.write(JSON.stringify(out) + "\n");
  if (c.op === "close") process.exit(0);
}
await context.close();
rmSync(profile, { recursive: true, force: true });
