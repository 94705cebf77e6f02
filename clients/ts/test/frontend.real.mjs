// The client against a real frontend, run by the Go test
// TestTypeScriptClientAgainstTheFrontend
// (services/frontend/internal/api/client_ts_test.go), which starts the
// frontend on an embedded NATS and plays the matcher and allocator: it
// reads "allocate <ticket id>" lines from this script's output.
// QUICKMATCH_URL is the frontend, QUICKMATCH_TOKEN alice's token.
import assert from "node:assert/strict";
import WebSocket from "ws";
import { Client, ApiError } from "../dist/quickmatch.js";

const baseUrl = process.env.QUICKMATCH_URL;
const token = process.env.QUICKMATCH_TOKEN;
assert.ok(baseUrl && token, "QUICKMATCH_URL and QUICKMATCH_TOKEN must be set");
const client = new Client({ baseUrl, token: () => token, WebSocket, retry: { initialDelayMs: 50, maxDelayMs: 200, maxRetries: 3 } });
const step = (s) => console.log(`step: ${s}`);

step("create and follow to the assignment over the event stream");
const a = await client.createTicket({ mode: "1v1", skill: 1650, region: "eu" });
assert.equal(a.status, "queued");
assert.equal(a.tier, "gold");
const seen = [];
const outcome = client.waitForOutcome(a.ticket_id, {
  onUpdate: (t) => {
    seen.push(t.status);
    if (t.status === "queued") console.log(`allocate ${a.ticket_id}`);
  },
});
const done = await outcome;
assert.deepEqual(seen, ["queued", "matched", "assigned"]);
assert.match(done.assignment.url, /\/play\?room=m1/);
assert.equal((await client.getTicket(a.ticket_id)).status, "assigned");

step("resume after matched: only the assignment comes");
const resumed = [];
await client.waitForOutcome(a.ticket_id, { lastEventId: 2, onUpdate: (t) => resumed.push(t.status) });
assert.deepEqual(resumed, ["assigned"]);

step("too late to cancel: 409 with the outcome");
const late = await client.cancelTicket(a.ticket_id).catch((e) => e);
assert.ok(late instanceof ApiError, String(late));
assert.equal(late.status, 409);
assert.equal(late.ticket.status, "assigned");

step("cancel a queued ticket; a stream resumed after queued hears only that");
const b = await client.createTicket({ skill: 1650, region: "eu" });
const bSeen = [];
const bOutcome = client.waitForOutcome(b.ticket_id, { lastEventId: 1, onUpdate: (t) => bSeen.push(t.status) });
assert.equal((await client.cancelTicket(b.ticket_id)).status, "cancelled");
assert.equal((await bOutcome).status, "cancelled");
assert.deepEqual(bSeen, ["cancelled"]);

step("refusals: 400 naming the field, 401 without a token");
const bad = await client.createTicket({ skill: 20000, region: "eu" }).catch((e) => e);
assert.ok(bad instanceof ApiError, String(bad));
assert.equal(bad.status, 400);
assert.ok(bad.body.fields.some((f) => f.field === "skill"), JSON.stringify(bad.body));
const anon = await new Client({ baseUrl }).getTicket(a.ticket_id).catch((e) => e);
assert.equal(anon.status, 401);

step("queue over /ws/events and cancel there");
const q = client.queue({ region: "eu", skill: 1650, mode: "1v1" });
while (!q.ticket) await new Promise((r) => setTimeout(r, 10));
assert.equal(q.ticket.status, "queued");
q.cancel();
const c = await q.outcome;
assert.equal(c.status, "cancelled");
assert.equal(c.reason, "cancelled by the client");

step("a ticket /ws/events refuses closes 4400: an ApiError 400");
const refused = await client.queue({ mode: "no-such-mode" }).outcome.catch((e) => e);
assert.ok(refused instanceof ApiError, String(refused));
assert.equal(refused.status, 400);
assert.match(refused.message, /mode/);
console.log("ok: the client against the real frontend");
