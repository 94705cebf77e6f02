// Queuing over /ws/events in Node (the ws package as WebSocket) against
// the fake frontend, which closes as ws.go does.
import { test } from "node:test";
import assert from "node:assert/strict";
import WebSocket from "ws";
import { Client, ApiError, ProtocolError } from "../dist/quickmatch.js";
import { startFake, assignment } from "./fake.mjs";

const fast = { initialDelayMs: 10, maxDelayMs: 50, maxRetries: 2 };

async function setup(t, opts = {}, fakeOpts = {}) {
  const fake = await startFake({ token: "tok", ...fakeOpts });
  t.after(() => fake.close());
  const retries = [];
  const client = new Client({ baseUrl: fake.url, token: () => "tok", WebSocket, retry: { ...fast, onRetry: (i) => retries.push(i) }, ...opts });
  return { fake, client, retries };
}

async function queued(q) {
  while (!q.ticket) await new Promise((r) => setTimeout(r, 5));
  return q.ticket.ticket_id;
}

test("queues over the WebSocket and follows the ticket to its assignment", { timeout: 30_000 }, async (t) => {
  const { fake, client } = await setup(t);
  const seen = [];
  const q = client.queue({ region: "us", mode: "2v2", skill: 1650, attributes: { tags: ["newbie"] } }, { onUpdate: (v) => seen.push(v.status) });
  const id = await queued(q);
  fake.set(id, { status: "matched" });
  fake.set(id, { status: "assigned", assignment });
  const out = await q.outcome;
  assert.equal(out.assignment.url, assignment.url);
  assert.deepEqual(seen, ["queued", "matched", "assigned"]);
  const ws = fake.requests.find((r) => r.method === "WS");
  const params = new URLSearchParams(ws.search);
  assert.equal(params.get("access_token"), "tok", "a browser's WebSocket cannot send headers");
  assert.equal(params.get("region"), "us");
  assert.equal(params.get("mode"), "2v2");
  assert.equal(params.get("skill"), "1650");
  assert.deepEqual(JSON.parse(params.get("attributes")), { tags: ["newbie"] });
});

test("cancel sends {type: cancel}; the outcome is cancelled", { timeout: 30_000 }, async (t) => {
  const { client } = await setup(t);
  const q = client.queue({});
  await queued(q);
  q.cancel();
  const out = await q.outcome;
  assert.equal(out.status, "cancelled");
  assert.equal(out.reason, "cancelled by the client");
});

test("a refusal after the upgrade: 1013 is retried after its delay, 4400 is thrown", { timeout: 30_000 }, async (t) => {
  const { fake, client, retries } = await setup(t);
  let refusals = 1;
  fake.wsRoutes.set("/ws/events", (ws) => {
    if (refusals-- > 0) return ws.close(1013, "retry after 1s: overloaded: too many tickets");
    fake.wsRoutes.delete("/ws/events");
    ws.close(4400, "invalid request: skill: must be 0-10000");
  });
  const err = await client.queue({ skill: 99999 }).outcome.catch((e) => e);
  assert.ok(err instanceof ApiError, String(err));
  assert.equal(err.status, 400);
  assert.match(err.body.error, /skill/);
  assert.equal(retries.length, 1);
  assert.ok(retries[0].delayMs >= 1000);

  // Past maxRetryAfterMs, the wait is the cap (and up to half again, so
  // that clients told alike do not all come back at once): tried again,
  // then thrown with what the server asked once the retries are spent.
  fake.wsRoutes.set("/ws/events", (ws) => ws.close(1013, "retry after 30s: overloaded: too many tickets"));
  const capped = [];
  const c = new Client({ baseUrl: fake.url, token: () => "tok", WebSocket, retry: { ...fast, maxRetryAfterMs: 100, onRetry: (i) => capped.push(i.delayMs) } });
  const overloaded = await c.queue({}).outcome.catch((e) => e);
  assert.equal(overloaded.status, 503);
  assert.equal(overloaded.retryAfterMs, 30_000);
  assert.equal(overloaded.body.error, "overloaded: too many tickets");
  assert.equal(capped.length, 2, "maxRetries waits");
  for (const d of capped) assert.ok(d >= 100 && d <= 150, `waited ${d} ms, want the cap and up to half again`);
});

test("a 1013 that says why (a drained shard, a region with room) is thrown at once, as a POST's 503 is", { timeout: 30_000 }, async (t) => {
  const { fake, client, retries } = await setup(t);
  fake.wsRoutes.set("/ws/events", (ws) => ws.close(1013, "retry after 30s: shard eu.gold is drained: maintenance"));
  const drained = await client.queue({}).outcome.catch((e) => e);
  assert.ok(drained instanceof ApiError, String(drained));
  assert.deepEqual(drained.body, { error: "shard eu.gold is drained: maintenance", drained: { shard: "eu.gold", reason: "maintenance" } });
  assert.equal(drained.retryAfterMs, 30_000);
  fake.wsRoutes.set("/ws/events", (ws) => ws.close(1013, "retry after 5s: region eu is out of game-server capacity; region us has room"));
  const full = await client.queue({}).outcome.catch((e) => e);
  assert.equal(full.body.suggest_region, "us");
  assert.equal(full.retryable, false);
  assert.equal(retries.length, 0, "neither tried again");
});

test("the ticket sent again (the frontend's heartbeat) is not an update", { timeout: 30_000 }, async (t) => {
  const { fake, client } = await setup(t);
  const seen = [];
  const q = client.queue({}, { onUpdate: (v) => seen.push(v.status) });
  const id = await queued(q);
  await new Promise((r) => setTimeout(r, 300)); // heartbeats every 50 ms
  fake.set(id, { status: "matched" });
  await new Promise((r) => setTimeout(r, 300));
  fake.set(id, { status: "assigned", assignment });
  await q.outcome;
  assert.deepEqual(seen, ["queued", "matched", "assigned"]);
});

test("a WebSocket silent past idleTimeoutMs is taken for lost: the ticket is followed over its event stream", { timeout: 30_000 }, async (t) => {
  // A network cut leaves a browser's WebSocket open and silent: it hears
  // no ping. The frontend's heartbeat is off here, as it is for a socket
  // that the cut keeps it from reaching.
  const { fake, client } = await setup(t, { idleTimeoutMs: 300 }, { wsHeartbeatMs: 0 });
  const q = client.queue({});
  const id = await queued(q);
  while (!fake.requests.some((r) => r.path === `/v1/tickets/${id}/events`)) await new Promise((r) => setTimeout(r, 10));
  await fake.followed(id);
  // Its close, had it reached the frontend, said it follows elsewhere.
  assert.equal(fake.tickets.get(id).view.status, "queued");
  fake.set(id, { status: "assigned", assignment });
  assert.equal((await q.outcome).status, "assigned");
});

test("a frontend that shuts down (1012) keeps the ticket: it is followed over its event stream", { timeout: 30_000 }, async (t) => {
  const { fake, client } = await setup(t);
  const q = client.queue({});
  const id = await queued(q);
  fake.wsRoutes.set("/ws/events", () => assert.fail("a second ticket queued"));
  fake.restart();
  await fake.followed(id);
  fake.set(id, { status: "assigned", assignment });
  assert.equal((await q.outcome).status, "assigned");
});

test("a refused handshake (a 401 a browser cannot see) asks the token provider for a fresh token", { timeout: 30_000 }, async (t) => {
  const { fake } = await setup(t);
  const asked = [];
  const c = new Client({ baseUrl: fake.url, WebSocket, retry: fast, token: (refused) => (asked.push(refused), refused ? "tok" : "stale") });
  const q = c.queue({});
  const id = await queued(q);
  assert.deepEqual(asked, [undefined, "stale"]);
  fake.set(id, { status: "assigned", assignment });
  assert.equal((await q.outcome).status, "assigned");
});

test("a connection lost after queuing is not opened again: the ticket is followed over its event stream", { timeout: 30_000 }, async (t) => {
  const { fake, client } = await setup(t);
  const seen = [];
  const q = client.queue({}, { onUpdate: (v) => seen.push(v.status) });
  const id = await queued(q);
  fake.set(id, { status: "matched" });
  while (seen.length < 2) await new Promise((r) => setTimeout(r, 5));
  // The connection breaks; the ticket goes on and is assigned.
  fake.wsRoutes.set("/ws/events", () => assert.fail("a second ticket queued"));
  fake.drop();
  await fake.followed(id);
  fake.set(id, { status: "assigned", assignment });
  const out = await q.outcome;
  assert.equal(out.status, "assigned");
  assert.deepEqual(seen, ["queued", "matched", "assigned"]);
  const ev = fake.requests.find((r) => r.path === `/v1/tickets/${id}/events`);
  assert.equal(ev.headers["last-event-id"], "2", "resumed after matched");
  assert.equal(ev.headers.authorization, "Bearer tok");
});

test("a message that is too large, binary or not the ticket fails the connection", { timeout: 30_000 }, async (t) => {
  const { fake, client } = await setup(t, { maxEventLength: 1024 });
  const cases = [
    [JSON.stringify({ ticket_id: "a", status: "queued", reason: "x".repeat(5000) }), /over 1024 characters/],
    [Buffer.from("{}"), /binary/],
    ['{"ticket_id":"a","status":"nope"}', /not the ticket/],
    ["{", /not JSON/],
  ];
  for (const [message, want] of cases) {
    let opened = 0;
    fake.wsRoutes.set("/ws/events", (ws) => {
      opened++;
      ws.send(message);
    });
    const err = await client.queue({}).outcome.catch((e) => e);
    assert.ok(err instanceof ProtocolError, String(err));
    assert.match(err.message, want);
    assert.equal(opened, 1, "malformed: not tried again (pkg/ticketapi's policy)");
  }
});

test("an AbortSignal closes the WebSocket (and the frontend cancels the ticket)", { timeout: 30_000 }, async (t) => {
  const { fake, client } = await setup(t);
  const ac = new AbortController();
  const q = client.queue({}, { signal: ac.signal });
  const id = await queued(q);
  ac.abort(new Error("player left"));
  await assert.rejects(q.outcome, /player left/);
  // By its close frame, or the DELETE sent in case it reached no one.
  while (fake.tickets.get(id).view.status !== "cancelled") await new Promise((r) => setTimeout(r, 5));
});

test("an AbortSignal on a dead socket ends the call at once, and cancels the ticket over HTTP", { timeout: 30_000 }, async (t) => {
  const { fake, client } = await setup(t);
  const ac = new AbortController();
  // A socket whose peer reads nothing more: its close never completes.
  fake.wsRoutes.set("/ws/events", (ws) => {
    ws.send(JSON.stringify({ ticket_id: "t-dead", status: "queued", region: "eu", tier: "gold", mode: "1v1" }));
    ws._socket.pause();
  });
  const q = client.queue({}, { signal: ac.signal });
  await queued(q);
  const started = Date.now();
  ac.abort(new Error("player left"));
  await assert.rejects(q.outcome, /player left/);
  assert.ok(Date.now() - started < 5_000, `settled after ${Date.now() - started} ms, not at once`);
  while (!fake.requests.some((r) => r.method === "DELETE" && r.path === "/v1/tickets/t-dead")) await new Promise((r) => setTimeout(r, 5));
});

test("let go by a frontend that shuts down, a cancel asked as it went and a caller that leaves are sent as a DELETE", { timeout: 30_000 }, async (t) => {
  const { fake, client } = await setup(t);
  const q = client.queue({});
  const id = await queued(q);
  fake.restart();
  q.cancel(); // sent on the socket, which the frontend no longer reads
  assert.equal((await q.outcome).status, "cancelled");

  const ac = new AbortController();
  const q2 = client.queue({}, { signal: ac.signal });
  const id2 = await queued(q2);
  assert.notEqual(id2, id);
  fake.restart();
  await fake.followed(id2);
  ac.abort(new Error("player left"));
  await assert.rejects(q2.outcome, /player left/);
  while (fake.tickets.get(id2).view.status !== "cancelled") await new Promise((r) => setTimeout(r, 5));
});

test("handshakes refused again and again (a 503) ask the token provider once per token, not each time", { timeout: 30_000 }, async (t) => {
  const { fake } = await setup(t);
  fake.handshake = () => "503 Service Unavailable";
  const asked = [];
  const c = new Client({ baseUrl: fake.url, WebSocket, retry: { ...fast, maxRetries: 4 }, token: (refused) => (asked.push(refused ?? null), "tok") });
  await assert.rejects(c.queue({}).outcome);
  assert.deepEqual(asked, [null, "tok", null, null, null], "the same token back: asked once");
});

test("no WebSocket to use is said plainly", { timeout: 30_000 }, async (t) => {
  const { fake } = await setup(t);
  const c = new Client({ baseUrl: fake.url, WebSocket: undefined });
  const had = globalThis.WebSocket;
  globalThis.WebSocket = undefined;
  t.after(() => (globalThis.WebSocket = had));
  await assert.rejects(c.queue({}).outcome, /no WebSocket here/);
});
