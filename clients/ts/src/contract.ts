// The frontend's wire contract as this client speaks it, in one place:
// paths, headers, event names and ids, close codes. pkg/ticketapi
// declares the same values for Go (the frontend answers with those), and
// the frontend's TestTypeScriptClientContract
// (services/frontend/internal/api/client_ts_test.go) fails when the two
// differ: a value cannot be changed on one side only.
import type { ErrorBody } from "./types.js";

/** Paths of the API. */
export const paths = {
  tickets: "/v1/tickets",
  wsEvents: "/ws/events",
} as const;

/** The path of one ticket (GET, DELETE). */
export function ticketPath(id: string): string {
  return `${paths.tickets}/${encodeURIComponent(id)}`;
}

/** The path of one ticket's Server-Sent Events. */
export function eventsPath(id: string): string {
  return `${ticketPath(id)}/events`;
}

/** Headers the API reads or writes. */
export const headers = {
  authorization: "Authorization",
  idempotencyKey: "Idempotency-Key",
  correlationId: "X-Correlation-Id",
  traceParent: "traceparent",
  lastEventId: "Last-Event-ID",
  retryAfter: "Retry-After",
  /** Sent ("1") with a creation sent again after an attempt that may have made its ticket (ApiError.createdNothing). */
  repeat: "Quickmatch-Repeat",
} as const;

/** The start of the error of a creation refused for overload (503). */
export const overloadedPrefix = "overloaded";

/** The whole error of every answer of a frontend still starting (503). */
export const startingError = "starting: not ready yet, retry later";

/**
 * Query parameters of /ws/events: the part of a ticket's request they
 * carry, and the token where headers cannot go (a browser's WebSocket).
 */
export const query = {
  region: "region",
  mode: "mode",
  skill: "skill",
  playerId: "player_id",
  attributes: "attributes",
  accessToken: "access_token",
} as const;

/** The event name of every Server-Sent Event of a ticket. */
export const eventStatus = "status";

/** Event ids of the Server-Sent Events (a status's rank), the values Last-Event-ID may take. */
export const eventIds = { queued: 1, matched: 2, terminal: 3 } as const;

/** What a /ws/events client sends to cancel its ticket. */
export const cancelMessage = `{"type":"cancel"}`;

/**
 * Close codes of /ws/events: a ticket that ended otherwise than assigned
 * (1000), an invalid request, and a refusal to try again later; and the
 * one a client closes with to follow its ticket elsewhere (kept, where
 * any other close cancels it).
 */
export const closeCodes = { expired: 4001, failed: 4002, cancelled: 4003, invalid: 4400, tryAgainLater: 1013, following: 4000 } as const;

/**
 * The start of a 1013 close reason that says how long to wait, as a
 * POST's Retry-After does: "retry after 30s: shard eu.gold is drained: ...".
 */
export const retryAfterReason = "retry after ";

/** Milliseconds a 1013 close reason asks to wait (its "retry after Ns: "), or undefined. */
export function retryAfterOfReason(reason: string): number | undefined {
  return refusalOfReason(reason).retryAfterMs;
}

/**
 * A 1013 close reason as the 503 a POST would have had: the wait its
 * "retry after Ns: " asks for, and the error body its text stands for
 * (drained, suggest_region), as pkg/ticketapi's ParseRetryAfterCloseReason,
 * ParseDrainedReason and ParseSuggestedRegion read them.
 */
export function refusalOfReason(reason: string): { retryAfterMs: number | undefined; body: ErrorBody } {
  let retryAfterMs: number | undefined;
  let text = reason;
  const m = reason.startsWith(retryAfterReason) ? /^(\d{1,6})s: /.exec(reason.slice(retryAfterReason.length)) : null;
  if (m) {
    retryAfterMs = Number(m[1]) * 1000;
    text = reason.slice(retryAfterReason.length + m[0].length);
  }
  const body: ErrorBody = { error: text };
  const d = /^shard ([^ ]+) is drained: (.*)$/s.exec(text);
  if (d) body.drained = { shard: d[1]!, reason: d[2]! };
  const r = text.includes(regionFullText) ? new RegExp(`${regionFullText}; region ([^ ]+) has room$`).exec(text) : null;
  if (r) body.suggest_region = r[1];
  return { retryAfterMs, body };
}

/**
 * The start of the reason of a ticket cancelled because its /ws/events
 * socket was cut and no client followed it again within the frontend's
 * grace (-lost-grace): the player was taken for gone, and may queue again.
 */
export const lostReason = "client lost: ";

/** In the error of a creation refused for a region out of game-server capacity. */
export const regionFullText = "out of game-server capacity";
