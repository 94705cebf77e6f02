// What the client throws, besides an AbortSignal's reason (thrown as it
// is) and the errors of the token provider.
import { overloadedPrefix, regionFullText, startingError } from "./contract.js";
import type { ErrorBody, Ticket } from "./types.js";

/** The frontend answered with an error status. */
export class ApiError extends Error {
  override name = "ApiError";
  /** The HTTP status (a WebSocket's refusal is given the status a POST would have had: 400, 503). */
  readonly status: number;
  /** The error body, when the server sent one this client could read. */
  readonly body: ErrorBody | undefined;
  /** What Retry-After asked for, in milliseconds. */
  readonly retryAfterMs: number | undefined;
  /** On a cancel that came too late (409): the ticket, with its outcome. */
  readonly ticket: Ticket | undefined;

  constructor(status: number, body: ErrorBody | undefined, retryAfterMs?: number, ticket?: Ticket) {
    super(body?.error ? `${status}: ${body.error}` : `HTTP ${status}`);
    this.status = status;
    this.body = body;
    this.retryAfterMs = retryAfterMs;
    this.ticket = ticket;
  }

  /**
   * Whether the same request may succeed later (overload, rate limit,
   * outage). A 503 that names a region with free rooms (suggest_region)
   * or a drained shard (drained) says why, for the caller to act on: the
   * same POST would be refused the same for minutes.
   */
  get retryable(): boolean {
    if (this.status === 503 && (this.body?.suggest_region || this.body?.drained)) return false;
    return [408, 429, 500, 502, 503, 504].includes(this.status);
  }

  /**
   * Whether the refusal says no ticket was made: an overload, a frontend
   * still starting, a rate limit, a full region, each refused before any
   * write (pkg/ticketapi's CreatedNothing). A creation sent again after
   * any other failure says it repeats (headers.repeat), so that a
   * frontend past its limit answers it from the ticket an earlier
   * attempt made.
   */
  get createdNothing(): boolean {
    if (this.status === 429) return true;
    const e = this.body?.error ?? "";
    return this.status === 503 && (e.startsWith(overloadedPrefix) || e === startingError || !!this.body?.suggest_region || e.includes(regionFullText));
  }
}

/**
 * The server sent what breaks the API's contract: an event, message or
 * body over the size bound, malformed JSON, a ticket of the wrong shape
 * or id, an assignment without an http(s) url, a stream that is not an
 * event stream. The connection is dropped and the call ends: it is never
 * retried, since the same server would send the same again (the policy
 * pkg/ticketapi's package doc sets for every client of the API).
 */
export class ProtocolError extends Error {
  override name = "ProtocolError";
}

/**
 * An event stream that ended before the ticket's outcome or stayed
 * silent past idleTimeoutMs: no fault of the contract, so it is opened
 * again with Last-Event-ID, and thrown only once the retries are spent.
 */
export class ConnectionError extends Error {
  override name = "ConnectionError";
}

/** Whether err may pass by trying again: a network failure, a retryable status, a lost stream. */
export function isRetryable(err: unknown): boolean {
  if (err instanceof ApiError) return err.retryable;
  if (err instanceof ConnectionError) return true;
  // fetch rejects with a TypeError when the network fails.
  return err instanceof TypeError;
}
