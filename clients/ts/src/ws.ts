// Queuing over the /ws/events WebSocket: the connection is the ticket's
// life. The frontend cancels the ticket of a client that leaves, so a
// connection lost after queuing is not opened again (that would queue a
// second ticket): the ticket is followed over its event stream instead,
// which tells how it ended.
import { cancelMessage, closeCodes, paths, query, retryAfterOfReason } from "./contract.js";
import { ApiError, ProtocolError } from "./errors.js";
import { tokenOf, type TokenProvider } from "./http.js";
import { abortReason, linked, retryDelay, sleep, type Retry } from "./retry.js";
import { isTerminal, rank, toTicket, type Ticket, type TicketRequest } from "./types.js";
import type { FollowOptions } from "./client.js";

/**
 * The part of the WebSocket API this client uses (browsers', or the ws
 * package's). The handlers take any event: each implementation has its
 * own event types, and this client reads only data, code and reason.
 */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: any) => void) | null;
  onmessage: ((ev: any) => void) | null;
  onclose: ((ev: any) => void) | null;
  onerror: ((ev: any) => void) | null;
}
export type WebSocketConstructor = new (url: string) => WebSocketLike;

/** What /ws/events takes: the query parameters a ticket is made of (the frontend fills in region and skill when left out). */
export type WebSocketRequest = Partial<Pick<TicketRequest, "region" | "mode" | "skill" | "player_id" | "attributes">>;

/** A ticket queued over a WebSocket. */
export interface QueuedTicket {
  /**
   * The ticket's outcome (assigned, cancelled, expired, failed). Rejects
   * with an ApiError when the frontend refuses it (400 invalid; 503 with
   * retryAfterMs: drained, out of capacity, overloaded, past the
   * retries), with a ProtocolError on a malformed message (not retried),
   * with the signal's reason when aborted.
   */
  readonly outcome: Promise<Ticket>;
  /** The latest status heard, once queued. */
  readonly ticket: Ticket | undefined;
  /** Asks the frontend to cancel the ticket; outcome then says cancelled (or what came first). */
  cancel(): void;
}

/** What queueOverWebSocket needs from its Client. */
export interface Conn {
  url(path: string): URL;
  token: TokenProvider | undefined;
  WebSocket: WebSocketConstructor | undefined;
  retry: Retry;
  max: number;
  follow(id: string, o: FollowOptions): Promise<Ticket>;
  cancel(id: string): Promise<Ticket>;
}

const OPEN = 1;

type Ending =
  | { kind: "outcome"; ticket: Ticket }
  | { kind: "lost"; ticket: Ticket }
  | { kind: "refused"; err: unknown }
  | { kind: "aborted" };

export function queueOverWebSocket(c: Conn, req: WebSocketRequest, o: FollowOptions): QueuedTicket {
  const { ctrl, release } = linked(o.signal);
  const s: Session = { current: undefined, socket: undefined, cancelAsked: false };
  const onUpdate = (t: Ticket) => {
    s.current = t;
    o.onUpdate?.(t);
  };
  const outcome = (async () => {
    if (!c.WebSocket) throw new TypeError("quickmatch: no WebSocket here; give one as options.WebSocket (in Node before 22: the ws package)");
    for (let failures = 1; ; failures++) {
      const end = await connect(c, c.WebSocket, await wsURL(c, req, ctrl.signal), ctrl.signal, s, onUpdate);
      switch (end.kind) {
        case "outcome":
          return end.ticket;
        case "aborted":
          throw abortReason(ctrl.signal);
        case "lost":
          return c.follow(end.ticket.ticket_id, { signal: ctrl.signal, onUpdate, lastEventId: rank(end.ticket.status) });
      }
      // Refused before a ticket was queued: trying again queues none twice.
      const delayMs = retryDelay(c.retry, failures, end.err);
      if (delayMs === undefined) throw end.err;
      c.retry.onRetry?.({ attempt: failures, delayMs, error: end.err });
      await sleep(delayMs, ctrl.signal);
    }
  })().finally(release);
  return {
    outcome,
    get ticket() {
      return s.current;
    },
    cancel() {
      s.cancelAsked = true;
      if (s.socket?.readyState === OPEN) s.socket.send(cancelMessage);
      else if (s.current) c.cancel(s.current.ticket_id).catch(() => {}); // followed over its event stream now
      else ctrl.abort(new DOMException("cancelled before the ticket was queued", "AbortError"));
    },
  };
}

interface Session {
  current: Ticket | undefined;
  socket: WebSocketLike | undefined;
  cancelAsked: boolean;
}

async function wsURL(c: Conn, req: WebSocketRequest, signal: AbortSignal): Promise<string> {
  const u = c.url(paths.wsEvents);
  u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
  const q = u.searchParams;
  if (req.region !== undefined) q.set(query.region, req.region);
  if (req.mode !== undefined) q.set(query.mode, req.mode);
  if (req.skill !== undefined) q.set(query.skill, String(req.skill));
  if (req.player_id !== undefined) q.set(query.playerId, req.player_id);
  if (req.attributes !== undefined) q.set(query.attributes, JSON.stringify(req.attributes));
  const token = await tokenOf(c.token, signal);
  if (token) q.set(query.accessToken, token);
  return u.toString();
}

/** One connection, to its close. */
function connect(c: Conn, WS: WebSocketConstructor, url: string, signal: AbortSignal, s: Session, onUpdate: (t: Ticket) => void): Promise<Ending> {
  return new Promise((resolve) => {
    let outcome: Ticket | undefined;
    let bad: ProtocolError | undefined;
    if (signal.aborted) return resolve({ kind: "aborted" });
    const ws = new WS(url);
    s.socket = ws;
    const leave = () => ws.close(1000, "client left");
    signal.addEventListener("abort", leave, { once: true });
    const fail = (e: ProtocolError) => {
      bad = e;
      ws.close(1000, "protocol error");
    };
    ws.onopen = () => {
      if (s.cancelAsked) ws.send(cancelMessage);
    };
    ws.onmessage = (ev: { data: unknown }) => {
      if (bad || outcome) return;
      if (typeof ev.data !== "string") return fail(new ProtocolError("websocket: a binary message"));
      if (ev.data.length > c.max) return fail(new ProtocolError(`websocket: a message over ${c.max} characters`));
      let v: unknown;
      try {
        v = JSON.parse(ev.data);
      } catch {
        return fail(new ProtocolError("websocket: a message that is not JSON"));
      }
      const t = toTicket(v, s.current?.ticket_id);
      if (!t) return fail(new ProtocolError("websocket: a message that is not the ticket"));
      onUpdate(t);
      if (isTerminal(t.status)) outcome = t;
    };
    ws.onerror = () => {}; // a close follows, with its code
    ws.onclose = (ev: { code: number; reason: string }) => {
      signal.removeEventListener("abort", leave);
      s.socket = undefined;
      resolve(ending(ev.code, ev.reason, signal, outcome, bad, s.current));
    };
  });
}

/** What a close means, from its code and what came before it. */
function ending(code: number, reason: string, signal: AbortSignal, outcome: Ticket | undefined, bad: ProtocolError | undefined, current: Ticket | undefined): Ending {
  if (outcome) return { kind: "outcome", ticket: outcome };
  if (signal.aborted) return { kind: "aborted" };
  // A malformed message ends the call, queued or not: it is not retried
  // (pkg/ticketapi's policy), and the frontend cancels the ticket of the
  // connection this client closed.
  if (bad) return { kind: "refused", err: bad };
  if (current) return { kind: "lost", ticket: current };
  if (code === closeCodes.invalid) return { kind: "refused", err: new ApiError(400, { error: reason }) };
  // "retry after 30s: shard eu.gold is drained: ...": what a POST's Retry-After would say.
  if (code === closeCodes.tryAgainLater) return { kind: "refused", err: new ApiError(503, { error: reason }, retryAfterOfReason(reason)) };
  // The handshake failed (a browser hides its HTTP status) or the
  // connection broke before the ticket was queued.
  return { kind: "refused", err: new TypeError(`websocket closed before the ticket was queued: ${code} ${reason}`) };
}
