// The page's bundle (dist/quickmatch.page.js, built from the sources by
// npm test; npm run check holds the find-a-match page's copy,
// services/frontend/internal/api/page/quickmatch.js, equal to it) in
// headless Chromium, against
// the fake frontend: fetch streaming with the Authorization header and
// Last-Event-ID, the browser's own WebSocket, cancel, abort, and a
// hostile stream. Chromium is Debian's (.ci/run installs it); CHROMIUM
// names another. Missing, the test fails under CI and is skipped elsewhere.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import puppeteer from "puppeteer-core";
import { startFake, assignment } from "./fake.mjs";

const bundle = fileURLToPath(new URL("../dist/quickmatch.page.js", import.meta.url));

function chromium() {
  if (process.env.CHROMIUM) return process.env.CHROMIUM;
  for (const name of ["chromium", "chromium-browser", "google-chrome"]) {
    try {
      return execFileSync("sh", ["-c", `command -v ${name}`], { encoding: "utf8" }).trim();
    } catch {}
  }
  return undefined;
}

const exe = chromium();
let browser, fake, page;

before(async () => {
  if (!exe) return;
  fake = await startFake({ token: "tok" });
  const js = await readFile(bundle, "utf8");
  fake.routes.set("GET /", (req, res) => {
    res.writeHead(200, { "Content-Type": "text/html" });
    res.end(`<!doctype html><title>client test</title><script src="/quickmatch.js"></script>`);
    return true;
  });
  fake.routes.set("GET /quickmatch.js", (req, res) => {
    res.writeHead(200, { "Content-Type": "text/javascript" });
    res.end(js);
    return true;
  });
  browser = await puppeteer.launch({
    executablePath: exe,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
  page = await browser.newPage();
  await page.goto(fake.url + "/");
  await page.evaluate(() => {
    window.client = new quickmatch.Client({ token: () => "tok", retry: { initialDelayMs: 10, maxDelayMs: 50, maxRetries: 2 } });
  });
});

after(async () => {
  await browser?.close();
  await fake?.close();
});

function need(t) {
  if (exe) return true;
  if (process.env.CI) assert.fail("no chromium on PATH (apt-get install chromium; .ci/run installs it; or set CHROMIUM)");
  t.skip("no chromium on PATH; skipped outside CI");
  return false;
}

test("in Chromium: create, then follow over a fetch stream resumed with Last-Event-ID", { timeout: 30_000 }, async (t) => {
  if (!need(t)) return;
  const id = await page.evaluate(async () => (await client.createTicket({ region: "eu", skill: 1650 })).ticket_id);
  let streams = 0;
  fake.routes.set(`GET /v1/tickets/${id}/events`, (req, res) => {
    if (++streams > 1) return false;
    res.writeHead(200, { "Content-Type": "text/event-stream" });
    res.end(`id: 1\nevent: status\ndata: ${JSON.stringify({ ticket_id: id, status: "queued" })}\n\n`);
    return true;
  });
  const outcome = page.evaluate(async (id) => {
    const seen = [];
    const t = await client.waitForOutcome(id, { onUpdate: (v) => seen.push(v.status) });
    return { seen, url: t.assignment.url };
  }, id);
  await fake.followed(id);
  fake.set(id, { status: "matched" });
  fake.set(id, { status: "assigned", assignment });
  const got = await outcome;
  assert.deepEqual(got, { seen: ["queued", "matched", "assigned"], url: assignment.url });
  const evs = fake.requests.filter((r) => r.path === `/v1/tickets/${id}/events`);
  assert.equal(evs.length, 2);
  assert.equal(evs[0].headers.authorization, "Bearer tok");
  assert.equal(evs[1].headers["last-event-id"], "1");
});

test("in Chromium: queue over the browser's WebSocket, then cancel", { timeout: 30_000 }, async (t) => {
  if (!need(t)) return;
  const got = await page.evaluate(async () => {
    const seen = [];
    const q = client.queue({ region: "eu" }, { onUpdate: (v) => seen.push(v.status) });
    while (!q.ticket) await new Promise((r) => setTimeout(r, 5));
    q.cancel();
    const out = await q.outcome;
    return { seen, status: out.status };
  });
  assert.deepEqual(got, { seen: ["queued", "cancelled"], status: "cancelled" });
  const ws = fake.requests.filter((r) => r.method === "WS").at(-1);
  assert.equal(new URLSearchParams(ws.search).get("access_token"), "tok");
});

test("in Chromium: an AbortSignal ends a follow; an endless line is a ProtocolError", { timeout: 30_000 }, async (t) => {
  if (!need(t)) return;
  const id = await page.evaluate(async () => (await client.createTicket({ region: "eu", skill: 1650 })).ticket_id);
  const aborted = await page.evaluate(async (id) => {
    const ac = new AbortController();
    const p = client.waitForOutcome(id, { signal: ac.signal });
    setTimeout(() => ac.abort(new Error("left")), 50);
    return p.then(() => "not aborted", (e) => e.message);
  }, id);
  assert.equal(aborted, "left");

  fake.routes.set(`GET /v1/tickets/${id}/events`, (req, res) => {
    res.writeHead(200, { "Content-Type": "text/event-stream" });
    const more = () => {
      while (!res.destroyed) if (!res.write("data: " + "x".repeat(16384))) return res.once("drain", more);
    };
    more();
    return true;
  });
  const err = await page.evaluate(async (id) => {
    const c = new quickmatch.Client({ token: () => "tok", maxEventLength: 4096, retry: { initialDelayMs: 10, maxDelayMs: 20, maxRetries: 1 } });
    return c.waitForOutcome(id).then(() => "no error", (e) => `${e.name}: ${e.message}`);
  }, id);
  assert.match(err, /^ProtocolError: .*over 4096 characters/);
});
