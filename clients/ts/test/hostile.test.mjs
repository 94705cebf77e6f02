// What a broken or hostile server can do to the client: bounded memory,
// malformed events, silence, and an AbortSignal that always ends it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Client, ConnectionError, ProtocolError } from "../dist/quickmatch.js";
import { readFileSync } from "node:fs";
import WebSocket from "ws";
import { startFake } from "./fake.mjs";

const fast = { initialDelayMs: 10, maxDelayMs: 50, maxRetries: 2 };

async function setup(t, opts = {}) {
  const fake = await startFake();
  t.after(() => fake.close());
  const client = new Client({ baseUrl: fake.url, retry: fast, ...opts });
  const { ticket_id: id } = await client.createTicket({ region: "eu", skill: 1650 });
  return { fake, client, id };
}

// stream answers the ticket's event stream with handler(res) (status 200,
// text/event-stream); it resolves with the count of streams opened.
function stream(fake, id, handler) {
  const s = { opened: 0, closed: 0 };
  fake.routes.set(`GET /v1/tickets/${id}/events`, (req, res) => {
    s.opened++;
    res.on("close", () => s.closed++);
    res.writeHead(200, { "Content-Type": "text/event-stream" });
    handler(res);
    return true;
  });
  return s;
}

test("an endless line is cut at maxEventLength, not held", { timeout: 30_000 }, async (t) => {
  const { fake, client, id } = await setup(t, { maxEventLength: 1024 });
  let written = 0;
  const s = stream(fake, id, (res) => {
    // 64 MiB of one line, unless the client hangs up first.
    const chunk = "data: " + "x".repeat(64 * 1024 - 6);
    const more = () => {
      while (written < 64 << 20 && !res.destroyed) {
        written += chunk.length;
        if (!res.write(chunk)) return res.once("drain", more);
      }
    };
    more();
  });
  const err = await client.waitForOutcome(id).catch((e) => e);
  assert.ok(err instanceof ProtocolError, String(err));
  assert.match(err.message, /over 1024 characters/);
  assert.equal(s.opened, 1, "malformed: not tried again (pkg/ticketapi's policy)");
  assert.ok(written < 64 << 20, `the server wrote all ${written} bytes: the client never hung up`);
});

test("many data lines add up to the bound too", { timeout: 30_000 }, async (t) => {
  const { fake, client, id } = await setup(t, { maxEventLength: 1024 });
  const s = stream(fake, id, (res) => res.write("data: 0123456789\n".repeat(200)));
  const err = await client.waitForOutcome(id).catch((e) => e);
  assert.ok(err instanceof ProtocolError, String(err));
  assert.equal(s.opened, 1);
});

test("a status event that is not JSON, or not this ticket, is refused and not asked again", { timeout: 30_000 }, async (t) => {
  for (const data of ["{not json", JSON.stringify({ ticket_id: "someone-else", status: "assigned" }), JSON.stringify({ ticket_id: "x", status: "won" }), "[]"]) {
    const { fake, client, id } = await setup(t);
    const s = stream(fake, id, (res) => res.end(`id: 3\nevent: status\ndata: ${data.replace("x", id)}\n\n`));
    const err = await client.waitForOutcome(id).catch((e) => e);
    assert.ok(err instanceof ProtocolError, `${data}: ${err}`);
    assert.equal(s.opened, 1, `${data}: the same server would send the same again`);
  }
});

test("an assignment whose url is not http or https is refused: a page must never go to javascript: or data:", { timeout: 30_000 }, async (t) => {
  const bad = ["javascript:alert(document.domain)", " JaVaScRiPt:alert(1)", "data:text/html,<script>alert(1)</script>", "/play?room=m1", "not a url", 42];
  for (const url of bad) {
    const { fake, client, id } = await setup(t);
    const assigned = JSON.stringify({ ticket_id: id, status: "assigned", assignment: { url } });
    const s = stream(fake, id, (res) => res.end(`id: 3\nevent: status\ndata: ${assigned}\n\n`));
    const err = await client.waitForOutcome(id).catch((e) => e);
    assert.ok(err instanceof ProtocolError, `${url}: ${err}`);
    assert.equal(s.opened, 1, String(url));
    fake.set(id, { status: "assigned", assignment: { url } });
    assert.ok((await client.getTicket(id).catch((e) => e)) instanceof ProtocolError, `GET with ${url}`);
  }
  const { fake, client, id } = await setup(t);
  fake.set(id, { status: "assigned", assignment: { url: "https://game.example/play?room=m1" } });
  assert.equal((await client.waitForOutcome(id)).assignment.url, "https://game.example/play?room=m1");
});

// The assignment URL rule's cases, the Go rule's too
// (pkg/ticketapi, ValidAssignmentURL): the two checks must agree.
const urlCases = JSON.parse(readFileSync(new URL("../../../pkg/ticketapi/testdata/assignment_urls.json", import.meta.url), "utf8"));

test("an assignment's url is taken or refused as the Go rule's cases say", { timeout: 30_000 }, async (t) => {
  const { fake, client, id } = await setup(t);
  assert.ok(urlCases.length > 10, "the cases were read");
  for (const { url, ok } of urlCases) {
    fake.set(id, { status: "assigned", assignment: { url } });
    const got = await client.getTicket(id).catch((e) => e);
    if (ok) {
      assert.equal(got.assignment?.url, url, `${JSON.stringify(url)}: refused, want taken (${got})`);
    } else {
      assert.ok(got instanceof ProtocolError, `${JSON.stringify(url)}: taken, want refused`);
    }
  }
});

test("events of other types, comments, CR line ends and odd ids are taken as the format says", { timeout: 30_000 }, async (t) => {
  const { fake, client, id } = await setup(t);
  const queued = JSON.stringify({ ticket_id: id, status: "queued" });
  const assigned = JSON.stringify({ ticket_id: id, status: "assigned", assignment: { url: "http://g/play" } });
  let streams = 0;
  fake.routes.set(`GET /v1/tickets/${id}/events`, (req, res) => {
    streams++;
    res.writeHead(200, { "Content-Type": "text/event-stream; charset=utf-8" });
    if (streams === 1) {
      // A bogus id is not kept (it would make the reconnection a 400); CR
      // and CRLF end lines; data lines join with "\n" (valid JSON still).
      res.end(`: hello\r\nevent: other\rdata: ignored\r\n\r\nid: 1\nevent: status\ndata: ${queued}\n\nid: evil\nevent: noise\ndata: x\n\n`);
    } else {
      assert.equal(req.headers["last-event-id"], "1");
      res.write(`retry: 20\nevent: status\nid: 3\ndata: {"ticket_id":"${id}",\ndata: "status":"assigned","assignment":{"url":"http://g/play"}}\n`);
      setTimeout(() => res.end("\n"), 20); // the blank line in its own chunk
    }
    return true;
  });
  const seen = [];
  const out = await client.waitForOutcome(id, { onUpdate: (v) => seen.push(v.status) });
  assert.deepEqual(seen, ["queued", "assigned"]);
  assert.equal(out.assignment.url, JSON.parse(assigned).assignment.url);
});

test("a silent stream is taken for dead and opened again", { timeout: 30_000 }, async (t) => {
  const { fake, client, id } = await setup(t, { idleTimeoutMs: 100 });
  let streams = 0;
  fake.routes.set(`GET /v1/tickets/${id}/events`, (req, res) => {
    if (++streams > 1) return false;
    res.writeHead(200, { "Content-Type": "text/event-stream" });
    res.flushHeaders(); // and then nothing, ever
    return true;
  });
  const outcome = client.waitForOutcome(id);
  await fake.followed(id);
  fake.set(id, { status: "failed", reason: "no game server" });
  assert.equal((await outcome).status, "failed");
  assert.equal(streams, 2);
});

test("an answer that is not an event stream is thrown at once", { timeout: 30_000 }, async (t) => {
  const { fake, client, id } = await setup(t);
  let opened = 0;
  fake.routes.set(`GET /v1/tickets/${id}/events`, (req, res) => {
    opened++;
    res.writeHead(200, { "Content-Type": "text/html" });
    res.end("<html>a proxy's page</html>");
    return true;
  });
  const err = await client.waitForOutcome(id).catch((e) => e);
  assert.ok(err instanceof ProtocolError);
  assert.match(err.message, /not an event stream/);
  assert.equal(opened, 1);
});

test("an oversized JSON body is refused", { timeout: 30_000 }, async (t) => {
  const { fake, client, id } = await setup(t, { maxEventLength: 1024 });
  fake.routes.set(`GET /v1/tickets/${id}`, (req, res) => {
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(JSON.stringify({ ticket_id: id, status: "queued", reason: "x".repeat(5000) }));
    return true;
  });
  const err = await client.getTicket(id).catch((e) => e);
  assert.ok(err instanceof ProtocolError, String(err));
});

test("an AbortSignal ends a follow: on an open stream, in a backoff, and a create in flight", { timeout: 30_000 }, async (t) => {
  const { fake, client, id } = await setup(t, { retry: { ...fast, initialDelayMs: 60_000, maxDelayMs: 60_000 } });
  // On an open, silent stream: the connection is closed too.
  const s = stream(fake, id, (res) => res.flushHeaders());
  const ac = new AbortController();
  const following = client.waitForOutcome(id, { signal: ac.signal });
  while (s.opened === 0) await new Promise((r) => setTimeout(r, 5));
  ac.abort(new Error("left the page"));
  await assert.rejects(following, /left the page/);
  while (s.closed === 0) await new Promise((r) => setTimeout(r, 5));

  // In a backoff of a minute.
  fake.routes.set(`GET /v1/tickets/${id}/events`, (req, res) => {
    res.writeHead(503, { "Content-Type": "application/json" });
    res.end(JSON.stringify({ error: "ticket service unavailable" }));
    return true;
  });
  let onRetry;
  const retried = new Promise((r) => (onRetry = r));
  const client2 = new Client({ baseUrl: fake.url, retry: { initialDelayMs: 60_000, maxDelayMs: 60_000, onRetry: (i) => onRetry(i) } });
  const ac2 = new AbortController();
  const following2 = client2.waitForOutcome(id, { signal: ac2.signal });
  assert.ok((await retried).delayMs >= 30_000);
  ac2.abort();
  await assert.rejects(following2, { name: "AbortError" });

  // A POST the server never answers.
  fake.routes.set("POST /v1/tickets", () => true);
  const ac3 = new AbortController();
  const creating = client.createTicket({ region: "eu", skill: 1 }, { signal: ac3.signal });
  while (!fake.requests.some((r) => r.method === "POST" && r !== fake.requests[0])) await new Promise((r) => setTimeout(r, 5));
  ac3.abort();
  await assert.rejects(creating, { name: "AbortError" });
  // Aborted before it starts: nothing is sent.
  const before = fake.requests.length;
  await assert.rejects(client.getTicket(id, { signal: AbortSignal.abort() }), { name: "AbortError" });
  assert.equal(fake.requests.length, before);
});

test("a token provider that never answers does not hold a call its signal ended", { timeout: 30_000 }, async (t) => {
  const { fake, id } = await setup(t);
  const stuck = new Client({ baseUrl: fake.url, retry: fast, WebSocket, token: () => new Promise(() => {}) });
  for (const call of [(signal) => stuck.getTicket(id, { signal }), (signal) => stuck.waitForOutcome(id, { signal }), (signal) => stuck.queue({}, { signal }).outcome]) {
    const ac = new AbortController();
    const p = call(ac.signal);
    setTimeout(() => ac.abort(new Error("gave up on the login")), 20);
    await assert.rejects(p, /gave up on the login/);
  }
});

test("a redirect is refused, not followed with the request's body and key", { timeout: 30_000 }, async (t) => {
  const { fake, client, id } = await setup(t);
  const elsewhere = await startFake();
  t.after(() => elsewhere.close());
  for (const route of ["POST /v1/tickets", `GET /v1/tickets/${id}`]) {
    fake.routes.set(route, (req, res) => {
      res.writeHead(route.startsWith("POST") ? 307 : 302, { Location: elsewhere.url + req.url });
      res.end();
      return true;
    });
  }
  await assert.rejects(client.createTicket({ region: "eu", skill: 1650 }, { idempotencyKey: "k-redirected" }), ProtocolError);
  await assert.rejects(client.getTicket(id), ProtocolError);
  assert.equal(elsewhere.requests.length, 0, "the other origin heard nothing");
});

test("a create, get or cancel no one answers is tried again after requestTimeoutMs, the creation with the same key", { timeout: 30_000 }, async (t) => {
  const fake = await startFake({ token: "tok" });
  t.after(() => fake.close());
  const retries = [];
  const client = new Client({ baseUrl: fake.url, token: () => "tok", requestTimeoutMs: 200, retry: { initialDelayMs: 10, maxDelayMs: 50, maxRetries: 3, onRetry: (i) => retries.push(i) } });
  const held = [];
  // The first request accepted and never answered, the next one answered.
  const hangOnce = () => {
    let n = 0;
    return (req, res) => n++ === 0 && held.push(res) > 0;
  };
  t.after(() => held.forEach((res) => res.destroy()));
  fake.routes.set("POST /v1/tickets", hangOnce());
  const created = await client.createTicket({ region: "eu", skill: 1650 });
  const posts = fake.requests.filter((r) => r.method === "POST");
  assert.equal(posts.length, 2);
  assert.equal(posts[0].headers["idempotency-key"], posts[1].headers["idempotency-key"]);
  assert.ok(retries[0].error instanceof ConnectionError, String(retries[0].error));
  fake.routes.set(`GET /v1/tickets/${created.ticket_id}`, hangOnce());
  assert.equal((await client.getTicket(created.ticket_id)).status, "queued");
  fake.routes.set(`DELETE /v1/tickets/${created.ticket_id}`, hangOnce());
  assert.equal((await client.cancelTicket(created.ticket_id)).status, "cancelled");
  assert.equal(retries.length, 3);
  // The caller's signal still ends a call at once, with its reason.
  fake.routes.set("GET /v1/tickets/x", (req, res) => (held.push(res), true));
  const ac = new AbortController();
  setTimeout(() => ac.abort(new Error("player left")), 50);
  await assert.rejects(client.getTicket("x", { signal: ac.signal }), /player left/);
});
