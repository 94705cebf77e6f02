// A fake frontend for the client's tests: it speaks the ticket API as
// services/frontend/internal/api does (sse.go: ids 1 queued, 2 matched,
// 3 terminal, Last-Event-ID, ": ping" comments; ws.go: /ws/events with
// its close codes, {"type":"cancel"}, the ticket sent again after a
// heartbeat without a message (wsHeartbeatMs, 0: never), a 401 before
// the upgrade, 1012 on shutdown (restart), and the ticket cancelled only
// for a client that closes, not to follow elsewhere), with tickets the test moves
// along (set). A test may put its own handler in front of any route
// (routes) to play a broken or hostile server.
import http from "node:http";
import { WebSocketServer } from "ws";

const rank = (s) => (s === "queued" ? 1 : s === "matched" ? 2 : 3);
const terminal = (s) => rank(s) === 3;
const closeCode = { assigned: 1000, expired: 4001, failed: 4002, cancelled: 4003 };

export async function startFake({ token, wsHeartbeatMs = 50 } = {}) {
  const tickets = new Map(); // id -> { view, listeners: Set<fn> }
  const requests = []; // every request: { method, path, headers }
  const routes = new Map(); // "METHOD /path" -> handler(req, res) returning true if it answered
  let next = 0;

  const authorized = (req, url) => {
    if (!token) return true;
    const h = req.headers.authorization;
    return h === `Bearer ${token}` || (!h && url.searchParams.get("access_token") === token);
  };
  const json = (res, code, body, headers = {}) => {
    res.writeHead(code, { "Content-Type": "application/json", ...headers });
    res.end(JSON.stringify(body));
  };
  const create = (req) => {
    const id = `t-${++next}`;
    const view = { ticket_id: id, status: "queued", region: req.region ?? "eu", tier: "gold", mode: req.mode ?? "1v1" };
    tickets.set(id, { view, listeners: new Set() });
    return view;
  };
  const set = (id, change) => {
    const t = tickets.get(id);
    if (!t) throw new Error(`no ticket ${id}`);
    t.view = { ticket_id: id, region: t.view.region, tier: t.view.tier, mode: t.view.mode, ...change };
    for (const l of t.listeners) l(t.view);
  };

  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, "http://x");
    requests.push({ method: req.method, path: url.pathname, search: url.search, headers: req.headers });
    const own = routes.get(`${req.method} ${url.pathname}`);
    if (own && (await own(req, res, url))) return;
    if (!authorized(req, url)) return json(res, 401, { error: "a valid bearer token is required" }, { "WWW-Authenticate": 'Bearer realm="quickmatch"' });
    let m;
    if (req.method === "POST" && url.pathname === "/v1/tickets") {
      let body = "";
      for await (const c of req) body += c;
      return json(res, 202, create(JSON.parse(body)), { Location: "/v1/tickets/x" });
    }
    if ((m = /^\/v1\/tickets\/([^/]+)$/.exec(url.pathname))) {
      const t = tickets.get(decodeURIComponent(m[1]));
      if (!t) return json(res, 404, { error: "ticket not found" });
      if (req.method === "GET") return json(res, 200, t.view);
      if (req.method === "DELETE") {
        if (t.view.status === "cancelled") return json(res, 200, t.view);
        if (terminal(t.view.status) || t.view.status === "matched") return json(res, 409, { error: `ticket cannot be cancelled: it is ${t.view.status}`, ...t.view });
        set(t.view.ticket_id, { status: "cancelled", reason: "cancelled by the client" });
        return json(res, 200, t.view);
      }
    }
    if (req.method === "GET" && (m = /^\/v1\/tickets\/([^/]+)\/events$/.exec(url.pathname))) {
      return events(req, res, tickets.get(decodeURIComponent(m[1])));
    }
    json(res, 404, { error: "no such route" });
  });

  function events(req, res, t) {
    const h = req.headers["last-event-id"];
    if (h !== undefined && !/^[0-3]$/.test(h)) return json(res, 400, { error: "Last-Event-ID must be an event id this endpoint sent (1, 2 or 3)" });
    if (!t) return json(res, 404, { error: "ticket not found" });
    let last = Number(h ?? 0);
    res.writeHead(200, { "Content-Type": "text/event-stream", "Cache-Control": "no-cache" });
    const send = (v) => {
      if (rank(v.status) < last) return;
      res.write(`id: ${rank(v.status)}\nevent: status\ndata: ${JSON.stringify(v)}\n\n`);
      last = rank(v.status);
      if (terminal(v.status)) res.end();
    };
    if (rank(t.view.status) > last) send(t.view);
    if (terminal(t.view.status)) return res.end();
    const ping = setInterval(() => res.write(": ping\n\n"), 50);
    t.listeners.add(send);
    res.on("close", () => {
      clearInterval(ping);
      t.listeners.delete(send);
    });
  }

  const wss = new WebSocketServer({ noServer: true });
  const wsRoutes = new Map();
  let restarting = false;
  server.on("upgrade", (req, socket, head) => {
    const url = new URL(req.url, "http://x");
    requests.push({ method: "WS", path: url.pathname, search: url.search, headers: req.headers });
    const status = !wsRoutes.has(url.pathname) && !authorized(req, url) ? "401 Unauthorized" : fake.handshake?.(url);
    if (status) {
      socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      const own = wsRoutes.get(url.pathname);
      if (own) return own(ws, url);
      if (url.pathname !== "/ws/events") return ws.close(1008, "refused");
      const view = create({ region: url.searchParams.get("region") ?? undefined, mode: url.searchParams.get("mode") ?? undefined });
      const t = tickets.get(view.ticket_id);
      let sent = false;
      const send = (v) => {
        ws.send(JSON.stringify(v));
        sent = true;
        if (terminal(v.status)) ws.close(closeCode[v.status], `${v.status} ${v.reason ?? ""}`);
      };
      const heartbeat = wsHeartbeatMs
        ? setInterval(() => {
            if (!sent && !terminal(t.view.status)) ws.send(JSON.stringify(t.view));
            sent = false;
          }, wsHeartbeatMs)
        : undefined;
      t.listeners.add(send);
      ws.on("message", (data) => {
        if (restarting) return; // the frontend reads no more once it lets the client go
        if (JSON.parse(String(data)).type === "cancel" && !terminal(t.view.status)) set(view.ticket_id, { status: "cancelled", reason: "cancelled by the client" });
      });
      ws.on("close", (code) => {
        clearInterval(heartbeat);
        t.listeners.delete(send);
        // The frontend cancels the ticket of a client that leaves (too
        // late once matched: it is claimed): one that closed, but not to
        // follow elsewhere (4000), not one cut (1006) nor one it let go.
        const left = code !== 1006 && code !== 4000 && !restarting;
        if (t.view.status === "queued" && left) set(view.ticket_id, { status: "cancelled", reason: "client disconnected before its assignment" });
      });
      send(view);
    });
  });

  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${server.address().port}`;
  const fake = {
    /** If set, the status line ("503 Service Unavailable") a /ws/events handshake is refused with. */
    handshake: undefined,
    url,
    requests,
    routes,
    wsRoutes,
    tickets,
    set,
    /** Resolves once the ticket has a follower (an event stream or a WebSocket). */
    async followed(id, n = 1) {
      while (!(tickets.get(id)?.listeners.size >= n)) await new Promise((r) => setTimeout(r, 5));
    },
    /** Closes every WebSocket as a frontend that shuts down does: 1012, the tickets kept. */
    restart() {
      restarting = true;
      for (const c of wss.clients) c.close(1012, "frontend restarting; ticket kept");
    },
    /** Cuts every WebSocket without a close frame. */
    drop() {
      for (const c of wss.clients) c.terminate();
    },
    async close() {
      for (const c of wss.clients) c.terminate();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
  return fake;
}

export const assignment = { server: "gs-1", address: "127.0.0.1", port: 7000, url: "http://127.0.0.1:7000/play?room=m1", room: "m1", join_token: "jt", match_id: "m1" };
