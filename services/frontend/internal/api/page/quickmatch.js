// Code generated from clients/ts by `npm run build`; DO NOT EDIT.
"use strict";
var quickmatch = (() => {
  var __defProp = Object.defineProperty;
  var __getOwnPropDesc = Object.getOwnPropertyDescriptor;
  var __getOwnPropNames = Object.getOwnPropertyNames;
  var __hasOwnProp = Object.prototype.hasOwnProperty;
  var __defNormalProp = (obj, key, value) => key in obj ? __defProp(obj, key, { enumerable: true, configurable: true, writable: true, value }) : obj[key] = value;
  var __export = (target, all) => {
    for (var name in all)
      __defProp(target, name, { get: all[name], enumerable: true });
  };
  var __copyProps = (to, from, except, desc) => {
    if (from && typeof from === "object" || typeof from === "function") {
      for (let key of __getOwnPropNames(from))
        if (!__hasOwnProp.call(to, key) && key !== except)
          __defProp(to, key, { get: () => from[key], enumerable: !(desc = __getOwnPropDesc(from, key)) || desc.enumerable });
    }
    return to;
  };
  var __toCommonJS = (mod) => __copyProps(__defProp({}, "__esModule", { value: true }), mod);
  var __publicField = (obj, key, value) => __defNormalProp(obj, typeof key !== "symbol" ? key + "" : key, value);

  // src/index.ts
  var index_exports = {};
  __export(index_exports, {
    ApiError: () => ApiError,
    Client: () => Client,
    ConnectionError: () => ConnectionError,
    ProtocolError: () => ProtocolError,
    contract: () => contract_exports,
    isTerminal: () => isTerminal
  });

  // src/contract.ts
  var contract_exports = {};
  __export(contract_exports, {
    cancelMessage: () => cancelMessage,
    closeCodes: () => closeCodes,
    eventIds: () => eventIds,
    eventStatus: () => eventStatus,
    eventsPath: () => eventsPath,
    headers: () => headers,
    lostReason: () => lostReason,
    overloadedPrefix: () => overloadedPrefix,
    paths: () => paths,
    query: () => query,
    refusalOfReason: () => refusalOfReason,
    regionFullText: () => regionFullText,
    retryAfterOfReason: () => retryAfterOfReason,
    retryAfterReason: () => retryAfterReason,
    startingError: () => startingError,
    ticketPath: () => ticketPath
  });
  var paths = {
    tickets: "/v1/tickets",
    wsEvents: "/ws/events"
  };
  function ticketPath(id) {
    return `${paths.tickets}/${encodeURIComponent(id)}`;
  }
  function eventsPath(id) {
    return `${ticketPath(id)}/events`;
  }
  var headers = {
    authorization: "Authorization",
    idempotencyKey: "Idempotency-Key",
    correlationId: "X-Correlation-Id",
    traceParent: "traceparent",
    lastEventId: "Last-Event-ID",
    retryAfter: "Retry-After",
    /** Sent ("1") with a creation sent again after an attempt that may have made its ticket (ApiError.createdNothing). */
    repeat: "Quickmatch-Repeat"
  };
  var overloadedPrefix = "overloaded";
  var startingError = "starting: not ready yet, retry later";
  var query = {
    region: "region",
    mode: "mode",
    skill: "skill",
    playerId: "player_id",
    attributes: "attributes",
    accessToken: "access_token"
  };
  var eventStatus = "status";
  var eventIds = { queued: 1, matched: 2, terminal: 3 };
  var cancelMessage = `{"type":"cancel"}`;
  var closeCodes = { expired: 4001, failed: 4002, cancelled: 4003, invalid: 4400, tryAgainLater: 1013, following: 4e3 };
  var retryAfterReason = "retry after ";
  function retryAfterOfReason(reason) {
    return refusalOfReason(reason).retryAfterMs;
  }
  function refusalOfReason(reason) {
    let retryAfterMs;
    let text = reason;
    const m = reason.startsWith(retryAfterReason) ? /^(\d{1,6})s: /.exec(reason.slice(retryAfterReason.length)) : null;
    if (m) {
      retryAfterMs = Number(m[1]) * 1e3;
      text = reason.slice(retryAfterReason.length + m[0].length);
    }
    const body = { error: text };
    const d = /^shard ([^ ]+) is drained: (.*)$/s.exec(text);
    if (d) body.drained = { shard: d[1], reason: d[2] };
    const r = text.includes(regionFullText) ? new RegExp(`${regionFullText}; region ([^ ]+) has room$`).exec(text) : null;
    if (r) body.suggest_region = r[1];
    return { retryAfterMs, body };
  }
  var lostReason = "client lost: ";
  var regionFullText = "out of game-server capacity";

  // src/errors.ts
  var ApiError = class extends Error {
    constructor(status, body, retryAfterMs, ticket) {
      super(body?.error ? `${status}: ${body.error}` : `HTTP ${status}`);
      __publicField(this, "name", "ApiError");
      /** The HTTP status (a WebSocket's refusal is given the status a POST would have had: 400, 503). */
      __publicField(this, "status");
      /** The error body, when the server sent one this client could read. */
      __publicField(this, "body");
      /** What Retry-After asked for, in milliseconds. */
      __publicField(this, "retryAfterMs");
      /** On a cancel that came too late (409): the ticket, with its outcome. */
      __publicField(this, "ticket");
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
    get retryable() {
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
    get createdNothing() {
      if (this.status === 429) return true;
      const e = this.body?.error ?? "";
      return this.status === 503 && (e.startsWith(overloadedPrefix) || e === startingError || !!this.body?.suggest_region || e.includes(regionFullText));
    }
  };
  var ProtocolError = class extends Error {
    constructor() {
      super(...arguments);
      __publicField(this, "name", "ProtocolError");
    }
  };
  var ConnectionError = class extends Error {
    constructor() {
      super(...arguments);
      __publicField(this, "name", "ConnectionError");
    }
  };
  function isRetryable(err) {
    if (err instanceof ApiError) return err.retryable;
    if (err instanceof ConnectionError) return true;
    return err instanceof TypeError;
  }

  // src/retry.ts
  function retryDefaults(o = {}) {
    return {
      initialDelayMs: o.initialDelayMs ?? 500,
      maxDelayMs: o.maxDelayMs ?? 15e3,
      maxRetries: o.maxRetries ?? 8,
      maxRetryAfterMs: o.maxRetryAfterMs ?? 6e4,
      onRetry: o.onRetry
    };
  }
  function backoff(r, attempt, random = Math.random) {
    const full = Math.min(r.maxDelayMs, r.initialDelayMs * 2 ** Math.min(attempt - 1, 30));
    return Math.round(full / 2 + random() * full / 2);
  }
  function parseRetryAfter(h, now = Date.now()) {
    if (h == null) return void 0;
    const s = h.trim();
    if (/^\d{1,9}$/.test(s)) return Number(s) * 1e3;
    const at = Date.parse(s);
    if (Number.isNaN(at)) return void 0;
    return Math.max(0, at - now);
  }
  function abortReason(signal) {
    return signal.reason ?? new DOMException("This operation was aborted", "AbortError");
  }
  function sleep(ms, signal) {
    return new Promise((resolve2, reject) => {
      if (signal?.aborted) {
        reject(abortReason(signal));
        return;
      }
      const onAbort = () => {
        clearTimeout(timer);
        reject(abortReason(signal));
      };
      const timer = setTimeout(() => {
        signal?.removeEventListener("abort", onAbort);
        resolve2();
      }, ms);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }
  function linked(parent) {
    const ctrl = new AbortController();
    if (!parent) return { ctrl, release: () => {
    } };
    if (parent.aborted) {
      ctrl.abort(abortReason(parent));
      return { ctrl, release: () => {
      } };
    }
    const onAbort = () => ctrl.abort(abortReason(parent));
    parent.addEventListener("abort", onAbort, { once: true });
    return { ctrl, release: () => parent.removeEventListener("abort", onAbort) };
  }
  function retryDelay(r, failures, err, serverMs, random = Math.random) {
    if (!isRetryable(err) || failures > r.maxRetries) return void 0;
    const after = err instanceof ApiError ? Math.min(err.retryAfterMs ?? 0, r.maxRetryAfterMs) : 0;
    const asked = Math.max(after, Math.min(serverMs ?? 0, r.maxDelayMs));
    const b = backoff(r, failures, random);
    return b >= asked ? b : Math.round(asked + random() * asked / 2);
  }
  async function withRetry(r, signal, fn) {
    for (let failures = 1; ; failures++) {
      try {
        return await fn();
      } catch (err) {
        if (signal?.aborted) throw abortReason(signal);
        const delayMs = retryDelay(r, failures, err);
        if (delayMs === void 0) throw err;
        r.onRetry?.({ attempt: failures, delayMs, error: err });
        await sleep(delayMs, signal);
      }
    }
  }

  // src/http.ts
  async function tokenOf(token, signal, refused) {
    if (!token) return void 0;
    signal?.throwIfAborted();
    if (!signal) return await token(refused) || void 0;
    let onAbort = () => {
    };
    const aborted = new Promise((_, reject) => {
      onAbort = () => reject(signal.reason);
      signal.addEventListener("abort", onAbort, { once: true });
    });
    try {
      return await Promise.race([token(refused), aborted]) || void 0;
    } finally {
      signal.removeEventListener("abort", onAbort);
    }
  }
  function bearer(t) {
    return t ? { [headers.authorization]: `Bearer ${t}` } : {};
  }
  async function sendAuthed(token, signal, send) {
    const t = await tokenOf(token, signal);
    const res = await send(bearer(t));
    if (res.status !== 401 || !t) return res;
    const fresh = await tokenOf(token, signal, t);
    if (!fresh || fresh === t) return res;
    res.body?.cancel().catch(() => {
    });
    return send(bearer(fresh));
  }
  function resolve(base, path) {
    const origin = base ?? globalThis.location?.href;
    if (!origin) throw new TypeError("quickmatch: give baseUrl (there is no page to take it from)");
    return new URL(path, origin);
  }
  async function readText(res, max) {
    if (!res.body) return "";
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let text = "";
    try {
      for (; ; ) {
        const { done, value } = await reader.read();
        if (done) return text + decoder.decode();
        text += decoder.decode(value, { stream: true });
        if (text.length > max) throw new ProtocolError(`response body over ${max} characters`);
      }
    } finally {
      reader.cancel().catch(() => {
      });
    }
  }
  async function readJSON(res, max) {
    const text = await readText(res, max);
    try {
      return JSON.parse(text);
    } catch {
      return void 0;
    }
  }
  async function apiError(res, max, ticket) {
    let body;
    try {
      body = await readJSON(res, max);
    } catch {
      body = void 0;
    }
    const eb = typeof body === "object" && body !== null && typeof body.error === "string" ? body : void 0;
    return new ApiError(res.status, eb, parseRetryAfter(res.headers.get(headers.retryAfter)), ticket?.(body));
  }
  function newKey() {
    const b = new Uint8Array(16);
    if (globalThis.crypto?.getRandomValues) globalThis.crypto.getRandomValues(b);
    else for (let i = 0; i < b.length; i++) b[i] = Math.floor(Math.random() * 256);
    return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  }

  // src/sse.ts
  var SSEParser = class {
    constructor(maxLength) {
      __publicField(this, "maxLength", maxLength);
      __publicField(this, "line", "");
      __publicField(this, "data", []);
      __publicField(this, "dataLength", 0);
      __publicField(this, "type", "");
      /** The stream's last event id, as a reconnection sends it back. */
      __publicField(this, "lastEventId", "");
      /** The reconnection time the server asked for (`retry:`), in ms. */
      __publicField(this, "retryMs");
      // A chunk that ended in CR: a LF starting the next one is its pair.
      __publicField(this, "afterCR", false);
    }
    /** Feeds decoded text; returns the events it completed. */
    push(chunk) {
      const out = [];
      let i = 0;
      if (this.afterCR && chunk.startsWith("\n")) i = 1;
      this.afterCR = false;
      while (i < chunk.length) {
        const cr = chunk.indexOf("\r", i);
        const lf = chunk.indexOf("\n", i);
        let end = cr < 0 ? lf : lf < 0 ? cr : Math.min(cr, lf);
        if (end < 0) {
          this.append(chunk.slice(i));
          break;
        }
        this.append(chunk.slice(i, end));
        const ev = this.endLine();
        if (ev) out.push(ev);
        if (chunk[end] === "\r") {
          if (end + 1 === chunk.length) this.afterCR = true;
          else if (chunk[end + 1] === "\n") end++;
        }
        i = end + 1;
      }
      return out;
    }
    append(s) {
      if (this.line.length + s.length + this.dataLength > this.maxLength) {
        throw new ProtocolError(`event stream: an event over ${this.maxLength} characters`);
      }
      this.line += s;
    }
    endLine() {
      const line = this.line;
      this.line = "";
      if (line === "") return this.dispatch();
      if (line.startsWith(":")) return void 0;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      switch (field) {
        case "data":
          this.data.push(value);
          this.dataLength += value.length + 1;
          break;
        case "event":
          this.type = value;
          break;
        case "id":
          if (!value.includes("\0")) this.lastEventId = value;
          break;
        case "retry":
          if (/^\d{1,9}$/.test(value)) this.retryMs = Number(value);
          break;
      }
      return void 0;
    }
    dispatch() {
      const data = this.data;
      const type = this.type || "message";
      this.data = [];
      this.dataLength = 0;
      this.type = "";
      if (data.length === 0) return void 0;
      return { type, data: data.join("\n"), lastEventId: this.lastEventId };
    }
  };
  async function* readEvents(body, parser, alive) {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    try {
      for (; ; ) {
        const { done, value } = await reader.read();
        if (done) return;
        alive();
        yield* parser.push(decoder.decode(value, { stream: true }));
      }
    } finally {
      reader.cancel().catch(() => {
      });
    }
  }

  // src/types.ts
  var statuses = ["queued", "matched", "assigned", "cancelled", "expired", "failed"];
  function isTerminal(s) {
    return s !== "queued" && s !== "matched";
  }
  function rank(s) {
    return s === "queued" ? eventIds.queued : s === "matched" ? eventIds.matched : eventIds.terminal;
  }
  function toTicket(data, id) {
    if (typeof data !== "object" || data === null || Array.isArray(data)) return void 0;
    const t = data;
    if (typeof t.ticket_id !== "string" || id !== void 0 && t.ticket_id !== id) return void 0;
    if (!statuses.includes(t.status)) return void 0;
    if (t.status === "assigned") {
      const a = t.assignment;
      if (typeof a !== "object" || a === null || !isWebURL(a.url)) return void 0;
    }
    return data;
  }
  function isWebURL(u) {
    if (typeof u !== "string" || !/^https?:\/\/[^/\\?#]/i.test(u)) return false;
    if (/[\s\u0000-\u001f\u007f]/.test(u) || /%(?![0-9a-f]{2})/i.test(u)) return false;
    const authority = u.slice(u.indexOf("//") + 2).split(/[/?#]/, 1)[0] ?? "";
    if (/[%{}`\\]/.test(authority)) return false;
    try {
      return new URL(u).hostname !== "";
    } catch {
      return false;
    }
  }

  // src/ws.ts
  var OPEN = 1;
  function queueOverWebSocket(c, req, o) {
    const { ctrl, release } = linked(o.signal);
    const s = { current: void 0, socket: void 0, cancelAsked: false };
    const onUpdate = (t) => {
      s.current = t;
      o.onUpdate?.(t);
    };
    const outcome = (async () => {
      if (!c.WebSocket) throw new TypeError("quickmatch: no WebSocket here; give one as options.WebSocket (in Node before 22: the ws package)");
      let refused;
      let asked;
      for (let failures = 1; ; failures++) {
        const token = await tokenOf(c.token, ctrl.signal, refused);
        if (refused) asked = refused;
        const end = await connect(c, c.WebSocket, wsURL(c, req, token), ctrl.signal, s, onUpdate);
        refused = end.kind === "refused" && end.handshake && token !== asked ? token : void 0;
        switch (end.kind) {
          case "outcome":
            return end.ticket;
          case "aborted":
            if (s.current) c.cancel(s.current.ticket_id).catch(() => {
            });
            throw abortReason(ctrl.signal);
          case "lost": {
            const id = end.ticket.ticket_id;
            if (s.cancelAsked) c.cancel(id).catch(() => {
            });
            try {
              return await c.follow(id, { signal: ctrl.signal, onUpdate, lastEventId: rank(end.ticket.status) });
            } catch (e) {
              if (ctrl.signal.aborted) c.cancel(id).catch(() => {
              });
              throw e;
            }
          }
        }
        const delayMs = retryDelay(c.retry, failures, end.err);
        if (delayMs === void 0) throw end.err;
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
        else if (s.current) c.cancel(s.current.ticket_id).catch(() => {
        });
        else ctrl.abort(new DOMException("cancelled before the ticket was queued", "AbortError"));
      }
    };
  }
  function wsURL(c, req, token) {
    const u = c.url(paths.wsEvents);
    u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
    const q = u.searchParams;
    if (req.region !== void 0) q.set(query.region, req.region);
    if (req.mode !== void 0) q.set(query.mode, req.mode);
    if (req.skill !== void 0) q.set(query.skill, String(req.skill));
    if (req.player_id !== void 0) q.set(query.playerId, req.player_id);
    if (req.attributes !== void 0) q.set(query.attributes, JSON.stringify(req.attributes));
    if (token) q.set(query.accessToken, token);
    return u.toString();
  }
  function connect(c, WS, url, signal, s, onUpdate) {
    return new Promise((resolve2) => {
      let outcome;
      let bad;
      let opened = false;
      let last = "";
      if (signal.aborted) return resolve2({ kind: "aborted" });
      const ws = new WS(url);
      s.socket = ws;
      let idle;
      let ended = false;
      const end = (code, reason) => {
        if (ended) return;
        ended = true;
        clearTimeout(idle);
        signal.removeEventListener("abort", leave);
        s.socket = void 0;
        resolve2(ending(code, reason, signal, outcome, bad, s.current, opened));
      };
      const alive = () => {
        clearTimeout(idle);
        idle = setTimeout(() => {
          ws.close(closeCodes.following, "silent");
          end(1006, `silent for ${c.idleMs} ms`);
        }, c.idleMs);
      };
      alive();
      const leave = () => {
        ws.close(1e3, "client left");
        end(1e3, "client left");
      };
      signal.addEventListener("abort", leave, { once: true });
      const fail = (e) => {
        bad = e;
        ws.close(1e3, "protocol error");
      };
      ws.onopen = () => {
        opened = true;
        if (s.cancelAsked) ws.send(cancelMessage);
      };
      ws.onmessage = (ev) => {
        if (bad || outcome || ended) return;
        alive();
        if (typeof ev.data !== "string") return fail(new ProtocolError("websocket: a binary message"));
        if (ev.data.length > c.max) return fail(new ProtocolError(`websocket: a message over ${c.max} characters`));
        if (ev.data === last) return;
        let v;
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
      ws.onerror = () => {
      };
      ws.onclose = (ev) => end(ev.code, ev.reason);
    });
  }
  function ending(code, reason, signal, outcome, bad, current, opened) {
    if (outcome) return { kind: "outcome", ticket: outcome };
    if (signal.aborted) return { kind: "aborted" };
    if (bad) return { kind: "refused", err: bad };
    if (current) return { kind: "lost", ticket: current };
    if (code === closeCodes.invalid) return { kind: "refused", err: new ApiError(400, { error: reason }) };
    if (code === closeCodes.tryAgainLater) {
      const { retryAfterMs, body } = refusalOfReason(reason);
      return { kind: "refused", err: new ApiError(503, body, retryAfterMs) };
    }
    return { kind: "refused", err: new TypeError(`websocket closed before the ticket was queued: ${code} ${reason}`), handshake: !opened };
  }

  // src/client.ts
  var Client = class {
    constructor(opts = {}) {
      __publicField(this, "opts", opts);
      __publicField(this, "fetch");
      __publicField(this, "retry");
      __publicField(this, "max");
      __publicField(this, "idleMs");
      __publicField(this, "requestMs");
      this.fetch = noRedirects(opts.fetch ?? globalThis.fetch.bind(globalThis));
      this.retry = retryDefaults(opts.retry);
      this.max = opts.maxEventLength ?? 65536;
      this.idleMs = opts.idleTimeoutMs ?? 45e3;
      this.requestMs = opts.requestTimeoutMs ?? 3e4;
    }
    /**
     * Queues a ticket (POST /v1/tickets) and gives the 202's ticket. An
     * overload, rate limit or outage is retried with the same
     * Idempotency-Key; any other refusal is an ApiError (400 names the
     * fields, 503 with suggest_region or drained says why).
     */
    createTicket(req, o = {}) {
      const key = o.idempotencyKey ?? newKey();
      let repeat = o.idempotencyKey !== void 0;
      return withRetry(
        this.retry,
        o.signal,
        () => this.timed(o.signal, async (signal) => {
          const headers2 = { "Content-Type": "application/json", [headers.idempotencyKey]: key };
          if (repeat) headers2[headers.repeat] = "1";
          if (o.correlationId) headers2[headers.correlationId] = o.correlationId;
          if (o.traceParent) headers2[headers.traceParent] = o.traceParent;
          try {
            const res = await sendAuthed(
              this.opts.token,
              signal,
              (auth) => this.fetch(this.url(paths.tickets), { method: "POST", headers: { ...headers2, ...auth }, body: JSON.stringify(req), signal })
            );
            if (res.status !== 202) throw await apiError(res, this.max);
            return this.ticketOf(res);
          } catch (err) {
            if (!(err instanceof ApiError && err.createdNothing)) repeat = true;
            throw err;
          }
        })
      );
    }
    /** Where a ticket stands now (GET /v1/tickets/{id}). */
    getTicket(id, o = {}) {
      return withRetry(
        this.retry,
        o.signal,
        () => this.timed(o.signal, async (signal) => {
          const res = await sendAuthed(this.opts.token, signal, (auth) => this.fetch(this.url(ticketPath(id)), { headers: auth, signal }));
          if (!res.ok) throw await apiError(res, this.max);
          return this.ticketOf(res, id);
        })
      );
    }
    /**
     * Cancels a ticket (DELETE). Gives the cancelled ticket (also when it
     * was cancelled before); too late, an ApiError 409 whose ticket
     * carries the outcome it has.
     */
    cancelTicket(id, o = {}) {
      return withRetry(
        this.retry,
        o.signal,
        () => this.timed(o.signal, async (signal) => {
          const res = await sendAuthed(this.opts.token, signal, (auth) => this.fetch(this.url(ticketPath(id)), { method: "DELETE", headers: auth, signal }));
          if (!res.ok) throw await apiError(res, this.max, (b) => res.status === 409 ? toTicket(b, id) : void 0);
          return this.ticketOf(res, id);
        })
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
    async *follow(id, o = {}) {
      let last = o.lastEventId ? String(o.lastEventId) : "";
      let serverMs;
      let opened;
      for (let failures = 1; ; failures++) {
        const { ctrl, release } = linked(o.signal);
        let idle;
        const alive = () => {
          clearTimeout(idle);
          idle = setTimeout(() => ctrl.abort(new ConnectionError(`event stream silent for ${this.idleMs} ms`)), this.idleMs);
        };
        let err;
        try {
          const headers2 = { Accept: "text/event-stream" };
          if (last) headers2[headers.lastEventId] = last;
          alive();
          const res = await sendAuthed(
            this.opts.token,
            ctrl.signal,
            (auth) => this.fetch(this.url(eventsPath(id)), { headers: { ...headers2, ...auth }, signal: ctrl.signal })
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
            if (Object.values(eventIds).map(String).includes(ev.lastEventId)) last = ev.lastEventId;
            failures = 1;
            clearTimeout(idle);
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
        if (opened !== void 0 && Date.now() - opened >= this.retry.maxDelayMs) failures = 1;
        opened = void 0;
        const delayMs = retryDelay(this.retry, failures, err, serverMs);
        if (delayMs === void 0) throw err;
        this.retry.onRetry?.({ attempt: failures, delayMs, error: err });
        await sleep(delayMs, o.signal);
      }
    }
    /** Follows a ticket (follow) and gives its outcome; onUpdate hears every status. */
    async waitForOutcome(id, o = {}) {
      let last;
      for await (const t of this.follow(id, o)) {
        last = t;
        o.onUpdate?.(t);
      }
      if (!last) throw new ProtocolError("no status before the end");
      return last;
    }
    /**
     * Queues a ticket over the /ws/events WebSocket and follows it there:
     * see QueuedTicket. The token goes as access_token in the URL (a
     * browser's WebSocket cannot set headers).
     */
    queue(req, o = {}) {
      return queueOverWebSocket(
        {
          url: (path) => this.url(path),
          token: this.opts.token,
          WebSocket: this.opts.WebSocket ?? globalThis.WebSocket,
          retry: this.retry,
          max: this.max,
          idleMs: this.idleMs,
          follow: (id, fo) => this.waitForOutcome(id, fo),
          cancel: (id) => this.cancelTicket(id)
        },
        req,
        o
      );
    }
    /**
     * fn with a signal that also ends after requestTimeoutMs: its answer,
     * or a ConnectionError (retried, as a network failure is) once the
     * time is out; the caller's signal's reason when that ends it.
     */
    async timed(parent, fn) {
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
    url(path) {
      return resolve(this.opts.baseUrl, path);
    }
    async ticketOf(res, id) {
      const t = toTicket(await readJSON(res, this.max), id);
      if (!t) throw new ProtocolError(`HTTP ${res.status}: not a ticket${id ? ` ${id}` : ""}`);
      return t;
    }
  };
  function parseTicket(data, id) {
    let v;
    try {
      v = JSON.parse(data);
    } catch {
      throw new ProtocolError("event stream: a status event that is not JSON");
    }
    const t = toTicket(v, id);
    if (!t) throw new ProtocolError(`event stream: a status event that is not ticket ${id}`);
    return t;
  }
  function noRedirects(f) {
    return async (input, init) => {
      const res = await f(input, { ...init, redirect: "manual" });
      if (res.type === "opaqueredirect" || res.status >= 300 && res.status < 400) {
        res.body?.cancel().catch(() => {
        });
        throw new ProtocolError(`redirected (${res.status}): the frontend sends no redirect`);
      }
      return res;
    };
  }
  return __toCommonJS(index_exports);
})();
