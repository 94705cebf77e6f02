// The client in Node against the fake frontend (fake.mjs): creating,
// following over Server-Sent Events with resumption, cancelling, and what
// a broken or hostile server does to it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Client, ApiError, ConnectionError } from "../dist/quickmatch.js";
import { startFake, assignment } from "./fake.mjs";

const fast = { initialDelayMs: 10, maxDelayMs: 50, maxRetries: 3 };

async function setup(t, opts = {}) {
  const fake = await startFake({ token: "tok" });
  t.after(() => fake.close());
  const retries = [];
  const client = new Client({ baseUrl: fake.url, token: () => "tok", ...opts, retry: { ...fast, onRetry: (i) => retries.push(i), ...opts.retry } });
  return { fake, client, retries };
}

test("creates a ticket with the token and an Idempotency-Key, and follows it to its assignment", { timeout: 30_000 }, async (t) => {
  const { fake, client } = await setup(t);
  const created = await client.createTicket({ region: "eu", skill: 1650, mode: "1v1" });
  assert.equal(created.status, "queued");
  const post = fake.requests.find((r) => r.method === "POST");
  assert.equal(post.headers.authorization, "Bearer tok");
  assert.match(post.headers["idempotency-key"], /^[0-9a-f]{32}$/);

  const seen = [];
  const outcome = client.waitForOutcome(created.ticket_id, { onUpdate: (v) => seen.push(v.status) });
  await fake.followed(created.ticket_id);
  fake.set(created.ticket_id, { status: "matched", match_id: "m1" });
  fake.set(created.ticket_id, { status: "assigned", match_id: "m1", assignment });
  const t1 = await outcome;
  assert.deepEqual(seen, ["queued", "matched", "assigned"]);
  assert.equal(t1.assignment.url, assignment.url);
  const ev = fake.requests.find((r) => r.path.endsWith("/events"));
  assert.equal(ev.headers.authorization, "Bearer tok", "the token goes in the header, not the URL");
  assert.equal(ev.search, "");
});

test("a dropped stream is resumed with Last-Event-ID and a fresh token, no status repeated", { timeout: 30_000 }, async (t) => {
  let asked = 0;
  const { fake, client, retries } = await setup(t, { token: () => (asked++, "tok") });
  const { ticket_id: id } = await client.createTicket({ region: "eu", skill: 1650 });
  let streams = 0;
  fake.routes.set(`GET /v1/tickets/${id}/events`, (req, res) => {
    if (++streams > 1) return false; // the fake's own stream from the second on
    res.writeHead(200, { "Content-Type": "text/event-stream" });
    res.end(`id: 1\nevent: status\ndata: ${JSON.stringify({ ticket_id: id, status: "queued" })}\n\n`);
    return true;
  });
  const seen = [];
  const outcome = client.waitForOutcome(id, { onUpdate: (v) => seen.push(v.status) });
  await fake.followed(id);
  fake.set(id, { status: "matched" });
  fake.set(id, { status: "assigned", assignment });
  await outcome;
  assert.deepEqual(seen, ["queued", "matched", "assigned"]);
  const evs = fake.requests.filter((r) => r.path.endsWith("/events"));
  assert.equal(evs.length, 2);
  assert.equal(evs[0].headers["last-event-id"], undefined);
  assert.equal(evs[1].headers["last-event-id"], "1");
  assert.equal(retries.length, 1);
  assert.ok(retries[0].error instanceof ConnectionError, String(retries[0].error));
  assert.equal(asked, 3, "the token is asked for before the POST and each connection");
});

test("follow resumes from a given lastEventId", { timeout: 30_000 }, async (t) => {
  const { fake, client } = await setup(t);
  const { ticket_id: id } = await client.createTicket({ region: "eu", skill: 1650 });
  fake.set(id, { status: "matched" });
  const seen = [];
  const outcome = client.waitForOutcome(id, { lastEventId: 2, onUpdate: (v) => seen.push(v.status) });
  await fake.followed(id);
  fake.set(id, { status: "expired", reason: "no match within 5m" });
  assert.equal((await outcome).status, "expired");
  assert.deepEqual(seen, ["expired"], "matched was had already");
});

test("a creation sent again says it repeats once an attempt may have made the ticket, not after refusals that made none", { timeout: 30_000 }, async (t) => {
  const { fake, client } = await setup(t, { retry: { maxRetries: 8 } });
  let posts = 0;
  fake.routes.set("POST /v1/tickets", (req, res) => {
    switch (++posts) {
      case 1: // refused before anything was made
        res.writeHead(503, { "Content-Type": "application/json", "Retry-After": "0" });
        res.end(JSON.stringify({ error: "overloaded: too many tickets are being created, retry later" }));
        return true;
      case 2:
        res.writeHead(429, { "Content-Type": "application/json", "Retry-After": "0" });
        res.end(JSON.stringify({ error: "too many tickets from this player" }));
        return true;
      case 3: // no answer: the ticket may have been made
        req.socket.destroy();
        return true;
      case 4: // overloaded again: the ticket still may exist
        res.writeHead(503, { "Content-Type": "application/json", "Retry-After": "0" });
        res.end(JSON.stringify({ error: "overloaded: too many tickets are being created, retry later" }));
        return true;
      case 6: // an outage, in the next call
        res.writeHead(503, { "Content-Type": "application/json", "Retry-After": "0" });
        res.end(JSON.stringify({ error: "ticket service unavailable, retry with the same Idempotency-Key" }));
        return true;
    }
    return false;
  });
  const said = () => fake.requests.filter((r) => r.method === "POST").map((r) => r.headers["quickmatch-repeat"] ?? "");
  assert.equal((await client.createTicket({ region: "eu", skill: 1650 })).status, "queued");
  assert.deepEqual(said(), ["", "", "", "1", "1"]);
  assert.equal((await client.createTicket({ region: "eu", skill: 1650 })).status, "queued");
  assert.deepEqual(said().slice(5), ["", "1"], "a 503 that is no overload may have made the ticket");
  // A key given may be an earlier call's: its first attempt says so too.
  await client.createTicket({ region: "eu", skill: 1650 }, { idempotencyKey: "k1" });
  assert.deepEqual(said().slice(7), ["1"]);
});

test("a 503 is retried after its Retry-After with the same Idempotency-Key; a longer one is waited as maxRetryAfterMs", { timeout: 30_000 }, async (t) => {
  const { fake, client, retries } = await setup(t);
  let posts = 0;
  fake.routes.set("POST /v1/tickets", (req, res) => {
    if (++posts > 1) return false;
    res.writeHead(503, { "Content-Type": "application/json", "Retry-After": "1" });
    res.end(JSON.stringify({ error: "overloaded: too many tickets are being created, retry later" }));
    return true;
  });
  const created = await client.createTicket({ region: "eu", skill: 1650 }, { idempotencyKey: "k1" });
  assert.equal(created.status, "queued");
  const keys = fake.requests.filter((r) => r.method === "POST").map((r) => r.headers["idempotency-key"]);
  assert.deepEqual(keys, ["k1", "k1"], "a retry carries the same key");
  assert.equal(retries.length, 1);
  assert.ok(retries[0].delayMs >= 1000, `waited ${retries[0].delayMs} ms, Retry-After said 1 s`);

  fake.routes.set("POST /v1/tickets", (req, res) => {
    res.writeHead(503, { "Content-Type": "application/json", "Retry-After": "30" });
    res.end(JSON.stringify({ error: "overloaded: too many tickets are being created, retry later" }));
    return true;
  });
  const capped = [];
  const c = new Client({ baseUrl: fake.url, token: () => "tok", retry: { ...fast, maxRetryAfterMs: 100, onRetry: (i) => capped.push(i.delayMs) } });
  const err = await c.createTicket({ region: "eu", skill: 1650 }).catch((e) => e);
  assert.ok(err instanceof ApiError, String(err));
  assert.equal(err.status, 503);
  assert.equal(err.retryAfterMs, 30_000, "thrown, once the retries are spent, with what the server asked");
  // The cap, and up to half of it again: every client of a restarted
  // frontend hears the same Retry-After, and must not all come back at once.
  assert.equal(capped.length, 3, "maxRetries waits");
  for (const d of capped) assert.ok(d >= 100 && d <= 150, `waited ${d} ms, want the cap and up to half again`);
});

test("a 503 that says why (a drained shard, a region with free rooms) is thrown at once", { timeout: 30_000 }, async (t) => {
  const { fake, client, retries } = await setup(t);
  for (const body of [
    { error: "shard eu.gold is drained: maintenance", drained: { shard: "eu.gold", reason: "maintenance" } },
    { error: "no free game servers in eu", suggest_region: "us" },
  ]) {
    fake.routes.set("POST /v1/tickets", (req, res) => {
      res.writeHead(503, { "Content-Type": "application/json", "Retry-After": "30" });
      res.end(JSON.stringify(body));
      return true;
    });
    const err = await client.createTicket({ region: "eu", skill: 1650 }).catch((e) => e);
    assert.ok(err instanceof ApiError && err.status === 503, String(err));
    assert.deepEqual(err.body, body);
  }
  assert.equal(retries.length, 0, "the same POST would be refused the same for minutes: the caller acts on why");
});

test("a stream cut again and again while its ticket waits, each after a while, is not given up; one cut at once backs off", { timeout: 30_000 }, async (t) => {
  const { fake, client, retries } = await setup(t);
  const { ticket_id: id } = await client.createTicket({ region: "eu", skill: 1650 });
  let streams = 0;
  fake.routes.set(`GET /v1/tickets/${id}/events`, (req, res) => {
    if (++streams > 6) return false; // then the fake's own stream, which tells the outcome
    res.writeHead(200, { "Content-Type": "text/event-stream" });
    const queued = streams === 1 ? `id: 1\nevent: status\ndata: ${JSON.stringify({ ticket_id: id, status: "queued" })}\n\n` : "";
    res.write(queued + ": ping\n\n");
    setTimeout(() => res.end(), 80); // a proxy that ends long answers (80 ms: past the longest backoff here, 50)
    return true;
  });
  const outcome = client.waitForOutcome(id);
  await Promise.race([fake.followed(id), outcome]); // a follow that gave up ends the test, not its timeout
  fake.set(id, { status: "expired", reason: "no match" });
  assert.equal((await outcome).status, "expired", "six cuts, more than maxRetries (3), of streams that worked");
  assert.ok(retries.every((r) => r.attempt === 1), `each cut counted as a first failure: ${retries.map((r) => r.attempt)}`);

  // A broken server that answers, pings and hangs up at once: backed off, then given up.
  const { ticket_id: id2 } = await client.createTicket({ region: "eu", skill: 1650 });
  let opened = 0;
  fake.routes.set(`GET /v1/tickets/${id2}/events`, (req, res) => {
    opened++;
    res.writeHead(200, { "Content-Type": "text/event-stream" });
    res.end(": ping\n\n");
    return true;
  });
  const err = await client.waitForOutcome(id2).catch((e) => e);
  assert.ok(err instanceof ConnectionError, String(err));
  assert.equal(opened, 4, "maxRetries (3) reconnections, then given up");
});

test("a refusal that cannot pass is thrown at once, with its fields", { timeout: 30_000 }, async (t) => {
  const { fake, client, retries } = await setup(t);
  fake.routes.set("POST /v1/tickets", (req, res) => {
    res.writeHead(400, { "Content-Type": "application/json" });
    res.end(JSON.stringify({ error: "invalid request", fields: [{ field: "skill", reason: "must be 0-10000" }] }));
    return true;
  });
  const err = await client.createTicket({ region: "eu", skill: -1 }).catch((e) => e);
  assert.ok(err instanceof ApiError);
  assert.equal(err.status, 400);
  assert.equal(err.body.fields[0].field, "skill");
  assert.equal(retries.length, 0);
  const unauth = await new Client({ baseUrl: fake.url, retry: fast }).getTicket("t-1").catch((e) => e);
  assert.equal(unauth.status, 401, "no token provider: no token");
});

test("cancel: 200 with the cancelled ticket, 409 with the outcome it has", { timeout: 30_000 }, async (t) => {
  const { fake, client } = await setup(t);
  const a = await client.createTicket({ region: "eu", skill: 1650 });
  const following = client.waitForOutcome(a.ticket_id);
  await fake.followed(a.ticket_id);
  const c = await client.cancelTicket(a.ticket_id);
  assert.equal(c.status, "cancelled");
  assert.equal((await following).status, "cancelled");
  const b = await client.createTicket({ region: "eu", skill: 1650 });
  fake.set(b.ticket_id, { status: "assigned", assignment });
  const err = await client.cancelTicket(b.ticket_id).catch((e) => e);
  assert.ok(err instanceof ApiError);
  assert.equal(err.status, 409);
  assert.equal(err.ticket.status, "assigned");
});

test("a 429 on the event stream (too many streams) is waited out", { timeout: 30_000 }, async (t) => {
  const { fake, client, retries } = await setup(t);
  const { ticket_id: id } = await client.createTicket({ region: "eu", skill: 1650 });
  let refused = 0;
  fake.routes.set(`GET /v1/tickets/${id}/events`, (req, res) => {
    if (refused++ > 0) return false;
    res.writeHead(429, { "Content-Type": "application/json", "Retry-After": "1" });
    res.end(JSON.stringify({ error: "too many open event streams and WebSockets for this client (at most 8)" }));
    return true;
  });
  const outcome = client.waitForOutcome(id);
  await fake.followed(id);
  fake.set(id, { status: "expired", reason: "no match" });
  assert.equal((await outcome).status, "expired");
  assert.equal(retries.length, 1);
  assert.equal(retries[0].error.status, 429);
  assert.ok(retries[0].delayMs >= 1000, `waited ${retries[0].delayMs} ms`);
});

test("a traceparent given to createTicket goes as the traceparent header", { timeout: 30_000 }, async (t) => {
  const { fake, client } = await setup(t);
  const traceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  await client.createTicket({ region: "eu", skill: 1650 }, { traceParent, correlationId: "c-1" });
  await client.createTicket({ region: "eu", skill: 1650 });
  const [withTrace, without] = fake.requests.filter((r) => r.method === "POST");
  assert.equal(withTrace.headers.traceparent, traceParent);
  assert.equal(withTrace.headers["x-correlation-id"], "c-1");
  assert.equal(without.headers.traceparent, undefined, "none made up when not given");
});

test("a 401 asks the token provider once more, naming the token refused, and sends again with a fresh one", { timeout: 30_000 }, async (t) => {
  const asked = [];
  // A provider that handed out a token the frontend no longer takes (it
  // expired while its player waited), and refreshes once told so.
  let current = "stale";
  const token = (refused) => {
    asked.push(refused ?? "");
    if (refused === current) current = "tok";
    return current;
  };
  const { fake, client } = await setup(t, { token });
  const created = await client.createTicket({ region: "eu", skill: 1650 });
  assert.equal(created.status, "queued");
  assert.deepEqual(asked, ["", "stale"], "asked, then asked again naming the refused token");
  current = "stale"; // expired again while it waits
  const outcome = client.waitForOutcome(created.ticket_id);
  await Promise.race([fake.followed(created.ticket_id), outcome]);
  fake.set(created.ticket_id, { status: "expired", reason: "no match" });
  assert.equal((await outcome).status, "expired");

  // A provider with nothing fresher gives the 401 up: thrown, not looped.
  const stuck = new Client({ baseUrl: fake.url, token: () => "stale", retry: fast });
  const err = await stuck.getTicket(created.ticket_id).catch((e) => e);
  assert.ok(err instanceof ApiError && err.status === 401, String(err));
});
