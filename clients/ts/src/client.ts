// The client: a ticket's creation, reading, cancelling and following.
import { eventIds, eventsPath, eventStatus, headers as h, paths, ticketPath } from "./contract.js";
import { ApiError, ConnectionError, ProtocolError } from "./errors.js";
import { apiError, newKey, readJSON, resolve, sendAuthed, type TokenProvider } from "./http.js";
import { abortReason, linked, retryDefaults, retryDelay, sleep, withRetry, type Retry, type RetryOptions } from "./retry.js";
import { readEvents, SSEParser } from "./sse.js";
import { isTerminal, toTicket, type Ticket, type TicketRequest } from "./types.js";
import { queueOverWebSocket, type QueuedTicket, type WebSocketConstructor, type WebSocketRequest } from "./ws.js";

/** How a Client reaches the frontend. */
export interface ClientOptions {
  /** The frontend's URL; in a browser, the page's own origin by default. */
  baseUrl?: string;
  /** The identity token, asked for before every request and reconnection. */
  token?: TokenProvider;
  /** fetch to use (default the global one). */
  fetch?: typeof fetch;
  /** WebSocket to use (default the global one; in Node before 22, which has none, the ws package's). */
  WebSocket?: WebSocketConstructor;
  /** Backoff, retries and the longest Retry-After waited for. */
  retry?: RetryOptions;
  /**
   * The most characters this client takes in one event, WebSocket
   * message or JSON body (default 64 KiB; a ticket is well under 4 KiB).
   * More is a ProtocolError, and the connection is dropped.
   */
  maxEventLength?: number;
  /**
   * An event stream silent this long is taken for dead and opened again
   * (default 45 s: the frontend sends a comment every 15 s); a queue's
   * WebSocket silent this long is taken for lost, and its ticket
   * followed over its event stream (the frontend sends the ticket again
   * after 15 s without a message).
   */
  idleTimeoutMs?: number;
  /**
   * How long createTicket, getTicket and cancelTicket wait for one
   * answer, their token's included (default 30 s), before they try again, as after a network
   * failure: a frontend or proxy that accepts the connection and never
   * answers held the call for good. A creation tried again sends the
   * same Idempotency-Key, so it queues no second ticket.
   */
  requestTimeoutMs?: number;
}

/** Options of one call. */
export interface CallOptions {
  /** Ends the call, its retries and its connection; it rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** Options of createTicket. */
export interface CreateOptions extends CallOptions {
  /**
   * Makes a repeat return the same ticket (scoped to the caller). A
   * random one is made when left out, so the client's own retries never
   * queue a second ticket. One given is taken for a key an earlier call
   * may have made a ticket with: every attempt says it repeats
   * (headers.repeat), so that a frontend past its limit answers it from
   * that ticket; past the limit each is then read and its token checked
   * (in a few slots), so give one only to send an earlier call's again.
   */
  idempotencyKey?: string;
  /** Travels with the ticket through every service's logs. */
  correlationId?: string;
  /**
   * A W3C traceparent ("00-<trace id>-<span id>-<flags>"), sent as the
   * traceparent header: the frontend's create span is then its child, so
   * the ticket's trace joins the caller's.
   */
  traceParent?: string;
}

/** Options of follow and waitForOutcome. */
export interface FollowOptions extends CallOptions {
  /** Resume after this event id (1 queued, 2 matched): only newer statuses come. */
  lastEventId?: number;
  /** Told each status (waitForOutcome). */
  onUpdate?: (t: Ticket) => void;
}

/**
 * A client of one frontend. Every call takes an AbortSignal; retries
 * follow options.retry (backoff with jitter, the server's Retry-After).
 */
export class Client {
  private readonly fetch: typeof fetch;
  private readonly retry: Retry;
  private readonly max: number;
  private readonly idleMs: number;
  private readonly requestMs: number;

  constructor(private readonly opts: ClientOptions = {}) {
    this.fetch = noRedirects(opts.fetch ?? globalThis.fetch.bind(globalThis));
    this.retry = retryDefaults(opts.retry);
    this.max = opts.maxEventLength ?? 65_536;
    this.idleMs = opts.idleTimeoutMs ?? 45_000;
    this.requestMs = opts.requestTimeoutMs ?? 30_000;
  }

  /**
   * Queues a ticket (POST /v1/tickets) and gives the 202's ticket. An
   * overload, rate limit or outage is retried with the same
   * Idempotency-Key; any other refusal is an ApiError (400 names the
   * fields, 503 with suggest_region or drained says why).
   */
  createTicket(req: TicketRequest, o: CreateOptions = {}): Promise<Ticket> {
    const key = o.idempotencyKey ?? newKey();
    // Once an attempt (or, for a key given, an earlier call) may have
    // made the ticket (no answer, or a refusal that does not say nothing
    // was made), the next ones say they repeat it: a frontend past its
    // limit answers them from that ticket, where it would refuse a new
    // creation until the retries ran out.
    let repeat = o.idempotencyKey !== undefined;
    return withRetry(this.retry, o.signal, () =>
      this.timed(o.signal, async (signal) => {
        const headers: Record<string, string> = { "Content-Type": "application/json", [h.idempotencyKey]: key };
        if (repeat) headers[h.repeat] = "1";
        if (o.correlationId) headers[h.correlationId] = o.correlationId;
        if (o.traceParent) headers[h.traceParent] = o.traceParent;
        try {
          const res = await sendAuthed(this.opts.token, signal, (auth) =>
            this.fetch(this.url(paths.tickets), { method: "POST", headers: { ...headers, ...auth }, body: JSON.stringify(req), signal }),
          );
          if (res.status !== 202) throw await apiError(res, this.max);
          return this.ticketOf(res);
        } catch (err) {
          if (!(err instanceof ApiError && err.createdNothing)) repeat = true;
          throw err;
        }
      }),
    );
  }

  /** Where a ticket stands now (GET /v1/tickets/{id}). */
  getTicket(id: string, o: CallOptions = {}): Promise<Ticket> {
    return withRetry(this.retry, o.signal, () =>
      this.timed(o.signal, async (signal) => {
        const res = await sendAuthed(this.opts.token, signal, (auth) => this.fetch(this.url(ticketPath(id)), { headers: auth, signal }));
        if (!res.ok) throw await apiError(res, this.max);
        return this.ticketOf(res, id);
      }),
    );
  }

  /**
   * Cancels a ticket (DELETE). Gives the cancelled ticket (also when it
   * was cancelled before); too late, an ApiError 409 whose ticket
   * carries the outcome it has.
   */
  cancelTicket(id: string, o: CallOptions = {}): Promise<Ticket> {
    return withRetry(this.retry, o.signal, () =>
      this.timed(o.signal, async (signal) => {
        const res = await sendAuthed(this.opts.token, signal, (auth) => this.fetch(this.url(ticketPath(id)), { method: "DELETE", headers: auth, signal }));
        if (!res.ok) throw await apiError(res, this.max, (b) => (res.status === 409 ? toTicket(b, id) : undefined));
        return this.ticketOf(res, id);
      }),
    );
  }

  /**
   * Every status of a ticket, from its event stream, up to its outcome
   * (assigned, cancelled, expired or failed), after which it ends. A
   * dropped or silent stream is opened again with Last-Event-ID, so no
   * status is missed nor repeated (the queued one comes again only when
   * its expected wait moves). Uses fetch, not EventSource, so that the
   * token goes in the Authorization header.
   */
  async *follow(id: string, o: FollowOptions = {}): AsyncGenerator<Ticket, void, undefined> {
    let last = o.lastEventId ? String(o.lastEventId) : "";
    let serverMs: number | undefined;
    let opened: number | undefined; // when the last stream was opened
    for (let failures = 1; ; failures++) {
      const { ctrl, release } = linked(o.signal);
      let idle: ReturnType<typeof setTimeout> | undefined;
      const alive = () => {
        clearTimeout(idle);
        idle = setTimeout(() => ctrl.abort(new ConnectionError(`event stream silent for ${this.idleMs} ms`)), this.idleMs);
      };
      let err: unknown;
      try {
        const headers: Record<string, string> = { Accept: "text/event-stream" };
        if (last) headers[h.lastEventId] = last;
        alive();
        const res = await sendAuthed(this.opts.token, ctrl.signal, (auth) =>
          this.fetch(this.url(eventsPath(id)), { headers: { ...headers, ...auth }, signal: ctrl.signal }),
        );
        if (!res.ok) throw await apiError(res, this.max);
        if (!res.body || !(res.headers.get("Content-Type") ?? "").startsWith("text/event-stream")) {
          throw new ProtocolError(`not an event stream: ${res.headers.get("Content-Type")}`);
        }
        const parser = new SSEParser(this.max);
        opened = Date.now();
        for await (const ev of readEvents(res.body, parser, alive)) {
          serverMs = parser.retryMs;
          if (ev.type !== eventStatus) continue;
          const t = parseTicket(ev.data, id);
          // Only the ids this endpoint sends: another would make the
          // reconnection a 400.
          if (Object.values(eventIds).map(String).includes(ev.lastEventId)) last = ev.lastEventId;
          failures = 1;
          clearTimeout(idle); // the caller's time is not the stream's silence
          yield t;
          if (isTerminal(t.status)) return;
          alive();
        }
        throw new ConnectionError("event stream ended before the ticket's outcome");
      } catch (e) {
        const why = ctrl.signal.reason;
        err = why instanceof ConnectionError && !o.signal?.aborted ? why : e;
      } finally {
        clearTimeout(idle);
        release();
        ctrl.abort();
      }
      if (o.signal?.aborted) throw abortReason(o.signal);
      // A stream that lasted the longest backoff worked, status or not:
      // its cut is the first failure again. A stream open for minutes
      // while its ticket waits hears no status, and eight cuts by a
      // proxy that ends long answers gave up on a ticket still queued;
      // one that a broken server ends at once still backs off.
      if (opened !== undefined && Date.now() - opened >= this.retry.maxDelayMs) failures = 1;
      opened = undefined;
      const delayMs = retryDelay(this.retry, failures, err, serverMs);
      if (delayMs === undefined) throw err;
      this.retry.onRetry?.({ attempt: failures, delayMs, error: err });
      await sleep(delayMs, o.signal);
    }
  }

  /** Follows a ticket (follow) and gives its outcome; onUpdate hears every status. */
  async waitForOutcome(id: string, o: FollowOptions = {}): Promise<Ticket> {
    let last: Ticket | undefined;
    for await (const t of this.follow(id, o)) {
      last = t;
      o.onUpdate?.(t);
    }
    if (!last) throw new ProtocolError("no status before the end"); // follow returns only after an outcome
    return last;
  }

  /**
   * Queues a ticket over the /ws/events WebSocket and follows it there:
   * see QueuedTicket. The token goes as access_token in the URL (a
   * browser's WebSocket cannot set headers).
   */
  queue(req: WebSocketRequest, o: FollowOptions = {}): QueuedTicket {
    return queueOverWebSocket(
      {
        url: (path) => this.url(path),
        token: this.opts.token,
        WebSocket: this.opts.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket,
        retry: this.retry,
        max: this.max,
        idleMs: this.idleMs,
        follow: (id, fo) => this.waitForOutcome(id, fo),
        cancel: (id) => this.cancelTicket(id),
      },
      req,
      o,
    );
  }

  /**
   * fn with a signal that also ends after requestTimeoutMs: its answer,
   * or a ConnectionError (retried, as a network failure is) once the
   * time is out; the caller's signal's reason when that ends it.
   */
  private async timed<T>(parent: AbortSignal | undefined, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const { ctrl, release } = linked(parent);
    const timer = setTimeout(() => ctrl.abort(new ConnectionError(`no answer within ${this.requestMs} ms`)), this.requestMs);
    try {
      return await fn(ctrl.signal);
    } catch (e) {
      const why = ctrl.signal.reason;
      throw why instanceof ConnectionError && !parent?.aborted ? why : e;
    } finally {
      clearTimeout(timer);
      release();
    }
  }

  private url(path: string): URL {
    return resolve(this.opts.baseUrl, path);
  }

  private async ticketOf(res: Response, id?: string): Promise<Ticket> {
    const t = toTicket(await readJSON(res, this.max), id);
    if (!t) throw new ProtocolError(`HTTP ${res.status}: not a ticket${id ? ` ${id}` : ""}`);
    return t;
  }
}

function parseTicket(data: string, id: string): Ticket {
  let v: unknown;
  try {
    v = JSON.parse(data);
  } catch {
    throw new ProtocolError("event stream: a status event that is not JSON");
  }
  const t = toTicket(v, id);
  if (!t) throw new ProtocolError(`event stream: a status event that is not ticket ${id}`);
  return t;
}


/**
 * f, refusing a redirect (ProtocolError, never retried): the frontend
 * sends none, and one followed took the request body and its
 * Idempotency-Key to another origin (the Go client refuses them too).
 */
function noRedirects(f: typeof fetch): typeof fetch {
  return async (input, init) => {
    const res = await f(input, { ...init, redirect: "manual" });
    if (res.type === "opaqueredirect" || (res.status >= 300 && res.status < 400)) {
      res.body?.cancel().catch(() => {});
      throw new ProtocolError(`redirected (${res.status}): the frontend sends no redirect`);
    }
    return res;
  };
}
