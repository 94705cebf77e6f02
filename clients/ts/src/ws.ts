// Queuing over the /ws/events WebSocket. The frontend cancels the ticket
// of a client that closes its socket (unless with 4000: it follows the
// ticket elsewhere) and keeps the ticket of a socket cut, or let go as it
// shuts down (1012). So a connection lost after queuing is not opened
// again (that would queue a second ticket): the ticket is followed over
// its event stream instead, which tells how it ended; so is one silent
// past idleTimeoutMs (the frontend sends the ticket again after 15 s
// without a message; a page hears no ping, and a connection a network
// cut dead stays open), closed with 4000.
import { cancelMessage, closeCodes, paths, query, refusalOfReason } from "./contract.js";
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
  idleMs: number;
  follow(id: string, o: FollowOptions): Promise<Ticket>;
  cancel(id: string): Promise<Ticket>;
}

const OPEN = 1;

type Ending =
  | { kind: "outcome"; ticket: Ticket }
  | { kind: "lost"; ticket: Ticket }
  | { kind: "refused"; err: unknown; handshake?: boolean }
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
    let refused: string | undefined; // the token of a handshake that failed
    let asked: string | undefined; // the last token the provider was asked to replace
    for (let failures = 1; ; failures++) {
      const token = await tokenOf(c.token, ctrl.signal, refused);
      if (refused) asked = refused;
      const end = await connect(c, c.WebSocket, wsURL(c, req, token), ctrl.signal, s, onUpdate);
      // A browser hides a refused handshake's status: it may be a 401 of
      // a token that expired, so the provider is asked for a fresh one
      // (as after a 401 over HTTP) before the next try, once per token:
      // a refusal for overload must not refresh every client's token.
      refused = end.kind === "refused" && end.handshake && token !== asked ? token : undefined;
      switch (end.kind) {
        case "outcome":
          return end.ticket;
        case "aborted":
          // The close frame that says the client leaves reaches no
          // frontend from a dead socket, and the frontend keeps the
          // ticket of a socket cut: cancelled over HTTP too.
          if (s.current) c.cancel(s.current.ticket_id).catch(() => {});
          throw abortReason(ctrl.signal);
        case "lost": {
          // Cut off, silent, or let go by a frontend that shuts down: the
          // ticket is kept, and its event stream tells the rest. A cancel
          // asked as the socket went (sent on it, maybe never read) and a
          // caller that leaves meanwhile are sent as a DELETE.
          const id = end.ticket.ticket_id;
          if (s.cancelAsked) c.cancel(id).catch(() => {});
          try {
            return await c.follow(id, { signal: ctrl.signal, onUpdate, lastEventId: rank(end.ticket.status) });
          } catch (e) {
            if (ctrl.signal.aborted) c.cancel(id).catch(() => {});
            throw e;
          }
        }
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

function wsURL(c: Conn, req: WebSocketRequest, token: string | undefined): string {
  const u = c.url(paths.wsEvents);
  u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
  const q = u.searchParams;
  if (req.region !== undefined) q.set(query.region, req.region);
  if (req.mode !== undefined) q.set(query.mode, req.mode);
  if (req.skill !== undefined) q.set(query.skill, String(req.skill));
  if (req.player_id !== undefined) q.set(query.playerId, req.player_id);
  if (req.attributes !== undefined) q.set(query.attributes, JSON.stringify(req.attributes));
  if (token) q.set(query.accessToken, token);
  return u.toString();
}

/** One connection, to its close. */
function connect(c: Conn, WS: WebSocketConstructor, url: string, signal: AbortSignal, s: Session, onUpdate: (t: Ticket) => void): Promise<Ending> {
  return new Promise((resolve) => {
    let outcome: Ticket | undefined;
    let bad: ProtocolError | undefined;
    let opened = false;
    let last = ""; // the last message: a heartbeat sends it again
    if (signal.aborted) return resolve({ kind: "aborted" });
    const ws = new WS(url);
    s.socket = ws;
    let idle: ReturnType<typeof setTimeout> | undefined;
    let ended = false;
    const end = (code: number, reason: string) => {
      if (ended) return;
      ended = true;
      clearTimeout(idle);
      signal.removeEventListener("abort", leave);
      s.socket = undefined;
      resolve(ending(code, reason, signal, outcome, bad, s.current, opened));
    };
    // Silent: taken for lost at once (a browser may wait long for the
    // close of a dead connection to complete).
    const alive = () => {
      clearTimeout(idle);
      idle = setTimeout(() => {
        ws.close(closeCodes.following, "silent"); // the ticket kept, should it reach the frontend
        end(1006, `silent for ${c.idleMs} ms`);
      }, c.idleMs);
    };
    alive();
    // Left: at once, not when the close completes (a dead socket's may
    // not for long).
    const leave = () => {
      ws.close(1000, "client left");
      end(1000, "client left");
    };
    signal.addEventListener("abort", leave, { once: true });
    const fail = (e: ProtocolError) => {
      bad = e;
      ws.close(1000, "protocol error");
    };
    ws.onopen = () => {
      opened = true;
      if (s.cancelAsked) ws.send(cancelMessage);
    };
    ws.onmessage = (ev: { data: unknown }) => {
      if (bad || outcome || ended) return;
      alive();
      if (typeof ev.data !== "string") return fail(new ProtocolError("websocket: a binary message"));
      if (ev.data.length > c.max) return fail(new ProtocolError(`websocket: a message over ${c.max} characters`));
      if (ev.data === last) return;
      let v: unknown;
      try {
        v = JSON.parse(ev.data);
      } catch {
        return fail(new ProtocolError("websocket: a message that is not JSON"));
      }
      const t = toTicket(v, s.current?.ticket_id);
      if (!t) return fail(new ProtocolError("websocket: a message that is not the ticket"));
      last = ev.data;
      onUpdate(t);
      if (isTerminal(t.status)) outcome = t;
    };
    ws.onerror = () => {}; // a close follows, with its code
    ws.onclose = (ev: { code: number; reason: string }) => end(ev.code, ev.reason);
  });
}

/** What a close means, from its code and what came before it. */
function ending(code: number, reason: string, signal: AbortSignal, outcome: Ticket | undefined, bad: ProtocolError | undefined, current: Ticket | undefined, opened: boolean): Ending {
  if (outcome) return { kind: "outcome", ticket: outcome };
  if (signal.aborted) return { kind: "aborted" };
  // A malformed message ends the call, queued or not: it is not retried
  // (pkg/ticketapi's policy), and the frontend cancels the ticket of the
  // connection this client closed.
  if (bad) return { kind: "refused", err: bad };
  // Cut off, silent, or its frontend shutting down (1012): the ticket's
  // event stream, on any frontend, tells the rest.
  if (current) return { kind: "lost", ticket: current };
  if (code === closeCodes.invalid) return { kind: "refused", err: new ApiError(400, { error: reason }) };
  // "retry after 30s: shard eu.gold is drained: ...": what a POST's
  // Retry-After and body would say (a drained shard or a suggested
  // region is then not retried, as for a POST).
  if (code === closeCodes.tryAgainLater) {
    const { retryAfterMs, body } = refusalOfReason(reason);
    return { kind: "refused", err: new ApiError(503, body, retryAfterMs) };
  }
  // The handshake failed (a browser hides its HTTP status) or the
  // connection broke before the ticket was queued.
  return { kind: "refused", err: new TypeError(`websocket closed before the ticket was queued: ${code} ${reason}`), handshake: !opened };
}
