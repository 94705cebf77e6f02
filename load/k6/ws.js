// k6 script for the WebSocket path of quickmatch, for teams that already
// use k6. Each iteration is one player: it opens /ws/events (which queues
// a ticket), follows its status changes until "assigned", then opens the
// game server's WebSocket from the assignment and waits for the game to
// start. Arrivals are open (constant-arrival-rate): RATE players per
// second, whatever the system does with them.
//
//   k6 run -e BASE=http://127.0.0.1:3000 -e RATE=200 -e DURATION=60s load/k6/ws.js
//
// Identity: each player gets its token from the frontend's development
// issuer (POST /dev/token, make run only), or every player uses the one
// token in TOKEN (a server-role token from the studio's identity provider,
// which may queue for any player_id). It goes as the access_token query
// parameter, as a browser's WebSocket sends it.
//
// Metrics: time_to_assignment (ms, from connect to "assigned"),
// assigned, and errors by kind (ws_error, closed_<code>, <status>).
import http from "k6/http";
import ws from "k6/ws";
import { check } from "k6";
import { Counter, Trend } from "k6/metrics";

const BASE = __ENV.BASE || "http://127.0.0.1:3000";
const RATE = parseInt(__ENV.RATE || "100", 10);
const DURATION = __ENV.DURATION || "60s";
const REGIONS = (__ENV.REGIONS || "eu,us,asia").split(",");
const PLAY = (__ENV.PLAY || "true") === "true";
const TOKEN = __ENV.TOKEN || "";

// token is the player's bearer token: TOKEN, or one from /dev/token.
function token(player) {
  if (TOKEN) return TOKEN;
  const res = http.post(`${BASE}/dev/token`, JSON.stringify({ player_id: player }), { headers: { "Content-Type": "application/json" } });
  if (res.status !== 200) return "";
  return res.json("token");
}

export const options = {
  scenarios: {
    players: {
      executor: "constant-arrival-rate",
      rate: RATE,
      timeUnit: "1s",
      duration: DURATION,
      preAllocatedVUs: Math.max(50, RATE * 2),
      maxVUs: Math.max(500, RATE * 40),
    },
  },
  thresholds: {
    errors: ["count==0"],
    time_to_assignment: ["p(99)<1000"],
  },
};

const timeToAssignment = new Trend("time_to_assignment", true);
const assigned = new Counter("assigned");
const errors = new Counter("errors");

function wsURL(http) {
  return http.replace(/^http/, "ws");
}

export default function () {
  const region = REGIONS[Math.floor(Math.random() * REGIONS.length)];
  const skill = 1600 + Math.floor(Math.random() * 400); // one tier: a partner is always near
  const player = `k6-${__VU}-${__ITER}-${Date.now()}`;
  const tok = token(player);
  if (!tok) {
    errors.add(1, { kind: "no_token" });
    return;
  }
  const url = `${wsURL(BASE)}/ws/events?region=${region}&mode=1v1&skill=${skill}&player_id=${player}&access_token=${encodeURIComponent(tok)}`;
  const start = Date.now();
  let assignment = null;
  const res = ws.connect(url, null, (socket) => {
    socket.setTimeout(() => {
      errors.add(1, { kind: "timeout" });
      socket.close();
    }, 30000);
    socket.on("message", (data) => {
      const t = JSON.parse(data);
      if (t.status === "assigned") {
        timeToAssignment.add(Date.now() - start);
        assigned.add(1);
        assignment = t.assignment;
        socket.close();
      } else if (t.status !== "queued" && t.status !== "matched") {
        errors.add(1, { kind: t.status });
        socket.close();
      }
    });
    socket.on("error", () => errors.add(1, { kind: "ws_error" }));
  });
  check(res, { "upgraded to WebSocket": (r) => r && r.status === 101 });
  if (!PLAY || !assignment) {
    return;
  }
  // Join the room on the game server the allocator chose.
  // assignment.url is http(s)://host:port/play?room=...&token=...; the
  // WebSocket takes the same query on /ws.
  const join = wsURL(assignment.url).replace("/play?", "/ws?");
  ws.connect(join, null, (socket) => {
    socket.setTimeout(() => socket.close(), 10000);
    socket.on("message", (data) => {
      const m = JSON.parse(data);
      if (m.type === "start" || m.type === "error") {
        if (m.type === "error") errors.add(1, { kind: "game_" + m.error });
        socket.close();
      }
    });
  });
}
