package api_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/rules"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/identity"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/ops"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/api"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/capacity"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/results"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/tickets"
)

type env struct {
	srv    *server.Server
	nc     *nats.Conn
	js     jetstream.JetStream
	http   *httptest.Server
	subj   events.Subjects
	pub    *events.Publisher
	claims *events.Claims
	// minter signs the tokens of the test's players; the frontend trusts
	// its key (unless the test runs it insecure).
	minter *identity.Minter

	// tracker is the first frontend's results tracker.
	tracker *results.Tracker
	// shutdown starts the latest frontend's shutdown (closes its done:
	// waiting SSE and WebSocket clients are let go); idempotent. stop
	// ends it, as main does after its server: its tracker's Run ends
	// too (it hands over what its API would ask about).
	shutdown, stop func()

	mu     sync.Mutex
	owners map[string]string // ticket id -> the player that queued it
}

type options struct {
	api     api.Config
	minFree int
	// insecure runs the frontend without identity (-auth-insecure), for
	// tests of something else that key on the client's address.
	insecure bool
	// before runs after provisioning, before the frontend starts.
	before func(e *env)
	// rules is the rule set in force; nil means testRuleSet.
	rules *rules.Current
	// regions the frontend serves; nil means events.DefaultRegions.
	regions events.Regions
	// h2c serves h2c beside HTTP/1.1, as main does with -h2-streams (the
	// load tool's and many game backends' protocol).
	h2c bool
}

// testRuleSet is the frontend's rule set in these tests: two modes (not
// the default's four) and one attribute of each kind, none required.
const testRuleSet = `{
  "attributes": {
    "platform": {"kind": "string", "values": ["pc", "console"]},
    "maps": {"kind": "set", "values": ["dust", "nuke"]},
    "level": {"kind": "number", "min": 1, "max": 100},
    "newbie": {"kind": "tag"}
  },
  "modes": [
    {"name": "1v1", "teams": 2, "team_size": 1, "max_wait": "5m"},
    {"name": "2v2", "teams": 2, "team_size": 2, "max_wait": "5m",
     "rules": [{"kind": "equal", "attribute": "platform"}]}
  ]
}`

func fixedRules(t *testing.T, ruleSet string) *rules.Current {
	t.Helper()
	set, err := rules.Parse([]byte(ruleSet))
	if err != nil {
		t.Fatal(err)
	}
	return rules.Fixed(set)
}

func start(t *testing.T, o options) *env {
	t.Helper()
	s := testkit.RunServer(t)
	nc := testkit.Connect(t, s, nats.MaxReconnects(0))
	js := testkit.JetStream(t, nc)
	e := &env{srv: s, nc: nc, js: js, pub: events.NewPublisher(js, events.Subjects{}), owners: map[string]string{}}
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if e.minter, err = identity.NewMinter(key, identity.DevIssuerName, identity.DevAudience); err != nil {
		t.Fatal(err)
	}
	if err := events.Provision(t.Context(), js, events.Topology{}); err != nil {
		t.Fatal(err)
	}
	claims, err := events.NewClaims(t.Context(), js, e.subj)
	if err != nil {
		t.Fatal(err)
	}
	e.claims = claims
	if o.before != nil {
		o.before(e)
	}
	e.http = newFrontend(t, e, o)
	return e
}

// newFrontend starts one frontend instance on e's NATS; tests start a
// second to show that ticket state is not held by the instance.
func newFrontend(t *testing.T, e *env, o options) *httptest.Server {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	reg := prometheus.NewRegistry()
	if o.rules == nil {
		o.rules = fixedRules(t, testRuleSet)
	}
	var svc *tickets.Service
	tracker := results.New(e.nc, e.subj, log, reg, results.ModeWaits(o.rules, 0), func(ctx context.Context, id string) results.Retry { return svc.Expire(ctx, id) }) // svc is made after the tracker
	tracker.SetRollCall(time.Second, 0)                                                                                                                              // questions complete once each frontend's roll call was heard
	if e.tracker == nil {
		e.tracker = tracker
	}
	watcher, err := capacity.New(t.Context(), e.js, e.subj, o.minFree, log)
	if err != nil {
		t.Fatal(err)
	}
	testkit.Run(t, watcher.Run)
	if o.regions == nil {
		o.regions = events.DefaultRegions
	}
	svc, err = tickets.New(t.Context(), tickets.Config{Regions: o.regions, Tiers: events.DefaultTiers, Rules: o.rules}, e.js, e.subj, tracker, watcher, log)
	if err != nil {
		t.Fatal(err)
	}
	var ready ops.Readiness
	ready.Set(true)
	o.api.Heartbeat = 100 * time.Millisecond
	if o.insecure {
		o.api.Insecure = true
	} else if o.api.Auth == nil {
		v, err := identity.New(t.Context(), identity.Config{Issuer: identity.DevIssuerName, Audience: identity.DevAudience, Keys: []identity.StaticKey{e.minter.Public()}})
		if err != nil {
			t.Fatal(err)
		}
		o.api.Auth = v
	}
	done := make(chan struct{})
	h, err := api.New(o.api, svc, tracker, log, &ready, reg, done)
	if err != nil {
		t.Fatal(err)
	}
	// The tracker runs once the API has given it its handover (as in
	// main), and ends after the shutdown (stop).
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- tracker.Run(ctx) }()
	hs := httptest.NewUnstartedServer(h)
	if o.h2c {
		ops.WithCleartextHTTP2(250)(hs.Config)
	}
	hs.Start()
	shutdown := sync.OnceFunc(func() { close(done) })
	stop := sync.OnceFunc(func() {
		shutdown()
		cancel()
		if err := <-ran; err != nil {
			t.Errorf("tracker Run: %v", err)
		}
	})
	e.shutdown, e.stop = shutdown, stop
	t.Cleanup(func() {
		shutdown()
		hs.Close()
		stop()
	})
	return hs
}

// token signs a player's token; a player id no token may carry (it fails
// the contract) gets a server token, so the frontend's own validation is
// what answers.
func (e *env) token(t *testing.T, player string) string {
	t.Helper()
	var tok string
	var err error
	if player == "" || identity.CheckPlayerID(player) != nil {
		tok, err = e.minter.Server("test-backend", "")
	} else {
		tok, err = e.minter.Player(player)
	}
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// bearer is the Authorization header of player.
func (e *env) bearer(t *testing.T, player string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + e.token(t, player)}
}

// callerOf picks who a test request speaks for when it names nobody: the
// body's player (or a party of one's), else the player that queued the
// ticket of the path, else a game backend (server role: it queues a party
// of several players, and reads and follows its tickets).
func (e *env) callerOf(path, body string) string {
	var b struct {
		PlayerID string   `json:"player_id"`
		Party    []string `json:"party"`
	}
	if json.Unmarshal([]byte(body), &b) == nil {
		if b.PlayerID != "" {
			return b.PlayerID
		}
		if len(b.Party) == 1 {
			return b.Party[0]
		}
		if len(b.Party) > 1 {
			return ""
		}
	}
	if id, ok := strings.CutPrefix(path, "/v1/tickets/"); ok {
		id, _, _ = strings.Cut(id, "/")
		e.mu.Lock()
		defer e.mu.Unlock()
		return e.owners[id]
	}
	return ""
}

// do sends a request; without an Authorization header in hdr it carries
// the token of callerOf (none with an empty Authorization).
func (e *env) do(t *testing.T, method, path, body string, hdr map[string]string) (int, map[string]any, http.Header) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), method, e.http.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+e.token(t, e.callerOf(path, body)))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	if req.Header.Get("Authorization") == "" {
		req.Header.Del("Authorization")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
		t.Fatalf("%s %s: body is not JSON: %v", method, path, err)
	}
	if id, ok := out["ticket_id"].(string); ok && method == http.MethodPost && path == "/v1/tickets" {
		e.mu.Lock()
		if _, seen := e.owners[id]; !seen {
			e.owners[id] = e.callerOf("", body)
		}
		e.mu.Unlock()
	}
	return res.StatusCode, out, res.Header
}

func (e *env) post(t *testing.T, body, key string) (int, map[string]any) {
	t.Helper()
	hdr := map[string]string{}
	if key != "" {
		hdr["Idempotency-Key"] = key
	}
	code, out, _ := e.do(t, http.MethodPost, "/v1/tickets", body, hdr)
	return code, out
}

func (e *env) get(t *testing.T, path string) (int, map[string]any) {
	t.Helper()
	code, out, _ := e.do(t, http.MethodGet, path, "", nil)
	return code, out
}

func (e *env) queued(t *testing.T) uint64 {
	return testkit.StreamMsgs(t, e.js, e.subj.TicketsStream())
}

// stored counts the ticket records in the tickets bucket.
func (e *env) stored(t *testing.T) uint64 {
	t.Helper()
	kv, err := e.js.KeyValue(t.Context(), e.subj.TicketsBucket())
	if err != nil {
		t.Fatal(err)
	}
	st, err := kv.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return st.Values()
}

// allocate plays the matcher and the allocator for a ticket of player.
func (e *env) allocate(t *testing.T, ticketID, player string) *events.Assignment {
	t.Helper()
	if won, _, err := e.claims.Claim(t.Context(), ticketID, events.MatchOwner("m1")); !won || err != nil {
		t.Fatalf("claim: %v %v", won, err)
	}
	if err := e.pub.Result(t.Context(), events.Result{TicketID: ticketID, PlayerID: player, Status: events.StatusMatched, MatchID: "m1"}); err != nil {
		t.Fatal(err)
	}
	as := &events.Assignment{Server: "gs-1", Address: "127.0.0.1", Port: 7000, URL: "http://127.0.0.1:7000/play?room=m1&token=x", Room: "m1", MatchID: "m1", JoinToken: "x"}
	if err := e.pub.Result(t.Context(), events.Result{TicketID: ticketID, PlayerID: player, Status: events.StatusAssigned, MatchID: "m1", Assignment: as}); err != nil {
		t.Fatal(err)
	}
	return as
}

func TestCreateAndGetTicket(t *testing.T) {
	t.Parallel()
	e := start(t, options{})
	code, body := e.post(t, `{"player_id":"alice","mode":"1v1","skill":1650,"region":"eu"}`, "")
	if code != http.StatusAccepted || body["status"] != "queued" || body["tier"] != "gold" {
		t.Fatalf("POST = %d %v", code, body)
	}
	id := body["ticket_id"].(string)
	st, _ := e.js.Stream(t.Context(), e.subj.TicketsStream())
	raw, err := st.GetLastMsgForSubject(t.Context(), "matchmaking.eu.gold")
	if err != nil {
		t.Fatal(err)
	}
	tk, err := events.DecodeTicket(raw.Data)
	if err != nil || tk.TicketID != id || tk.PlayerID != "alice" || raw.Header.Get(jetstream.MsgIDHeader) != id || raw.Header.Get(events.HeaderCorrelationID) == "" {
		t.Fatalf("queued ticket %s %v: %v", raw.Data, raw.Header, err)
	}
	if code, body := e.get(t, "/v1/tickets/"+id); code != 200 || body["status"] != "queued" {
		t.Fatalf("GET = %d %v", code, body)
	}
	as := e.allocate(t, id, "alice")
	code, body = e.get(t, "/v1/tickets/"+id)
	a, _ := body["assignment"].(map[string]any)
	if code != 200 || body["status"] != "assigned" || a["url"] != as.URL || body["match_id"] != "m1" {
		t.Fatalf("GET after assignment = %d %v", code, body)
	}
	// A newer ticket of the same player does not inherit the old result.
	_, body = e.post(t, `{"player_id":"alice","skill":1650,"region":"eu"}`, "")
	if _, b := e.get(t, "/v1/tickets/"+body["ticket_id"].(string)); b["status"] != "queued" {
		t.Fatalf("new ticket shows %v", b)
	}
	// The time to assignment was measured by the tracker.
	res, err := http.Get(e.http.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !bytes.Contains(m, []byte("quickmatch_frontend_time_to_assignment_seconds_count 1")) || !bytes.Contains(m, []byte(`quickmatch_frontend_ticket_outcomes_total{status="assigned"} 1`)) {
		t.Fatalf("metrics lack the assignment:\n%s", m)
	}
}

func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	e := start(t, options{})
	req := `{"player_id":"bob","skill":1300,"region":"us"}`
	_, first := e.post(t, req, "key-1")
	code, second := e.post(t, req, "key-1")
	if code != http.StatusAccepted || first["ticket_id"] != second["ticket_id"] {
		t.Fatalf("repeat gave %d %v, first %v", code, second, first)
	}
	if n := e.queued(t); n != 1 {
		t.Fatalf("%d tickets queued for one idempotent request", n)
	}
	if code, body := e.post(t, `{"player_id":"bob","skill":1400,"region":"us"}`, "key-1"); code != http.StatusConflict {
		t.Fatalf("key reused for another request: %d %v", code, body)
	}
	// A client-chosen ticket id (the server role's: a game backend) is
	// idempotent too.
	backend := e.bearer(t, "")
	e.do(t, http.MethodPost, "/v1/tickets", `{"ticket_id":"mine","player_id":"carol","skill":1300,"region":"us"}`, backend)
	if code, body, _ := e.do(t, http.MethodPost, "/v1/tickets", `{"ticket_id":"mine","player_id":"carol","skill":1300,"region":"us"}`, backend); code != 202 || body["ticket_id"] != "mine" {
		t.Fatalf("repeat with ticket_id: %d %v", code, body)
	}
	if n := e.queued(t); n != 2 {
		t.Fatalf("%d tickets queued, want 2", n)
	}
}

func TestBadRequestsNameTheFieldAndQueueNothing(t *testing.T) {
	t.Parallel()
	e := start(t, options{})
	tests := []struct {
		name, body string
		code       int
		fields     string
	}{
		{"not json", `player=alice`, 400, ""},
		{"unknown field", `{"player_id":"a","skill":1,"region":"eu","colour":"red"}`, 400, "colour"},
		{"missing skill", `{"player_id":"a","region":"eu"}`, 400, "skill"},
		{"skill is text", `{"player_id":"a","skill":"pro","region":"eu"}`, 400, "skill"},
		{"skill out of range", `{"player_id":"a","skill":-1,"region":"eu"}`, 400, "skill"},
		{"missing region", `{"player_id":"a","skill":1}`, 400, "region"},
		{"unknown region", `{"player_id":"a","skill":1,"region":"mars"}`, 400, "region"},
		{"unknown mode", `{"player_id":"a","skill":1,"region":"eu","mode":"chess"}`, 400, "mode"},
		{"party too big", `{"party":["a","b","c"],"skill":1,"region":"eu"}`, 400, "party"},
		{"party of 3 in 2v2", `{"party":["a","b","c"],"mode":"2v2","skill":1,"region":"eu"}`, 400, "party"},
		{"latencies for an unknown region", `{"player_id":"a","skill":1,"region":"eu","latencies_ms":{"mars":20}}`, 400, "latencies_ms.mars"},
		{"undeclared attribute", `{"player_id":"a","skill":1,"region":"eu","attributes":{"strings":{"colour":"red"}}}`, 400, "attributes.strings.colour"},
		{"attribute of another kind", `{"player_id":"a","skill":1,"region":"eu","attributes":{"strings":{"level":"high"}}}`, 400, "attributes.strings.level"},
		{"attribute value not allowed", `{"player_id":"a","skill":1,"region":"eu","attributes":{"strings":{"platform":"switch"}}}`, 400, "attributes.strings.platform"},
		{"attribute number out of range", `{"player_id":"a","skill":1,"region":"eu","attributes":{"numbers":{"level":101}}}`, 400, "attributes.numbers.level"},
		{"attributes of the wrong shape", `{"player_id":"a","skill":1,"region":"eu","attributes":{"tags":"newbie"}}`, 400, "attributes.tags"},
		{"player with a wildcard", `{"player_id":"a.*","skill":1,"region":"eu"}`, 400, "player_id"},
		{"no player", `{"skill":1,"region":"eu"}`, 400, "player_id"},
		{"every bad field", `{"player_id":"x.y","skill":-4,"region":"mars"}`, 400, "player_id,skill,region"},
		{"too large", `{"player_id":"` + strings.Repeat("a", 70000) + `"}`, 413, ""},
	}
	for _, tt := range tests {
		code, body := e.post(t, tt.body, "")
		if code != tt.code || body["error"] == "" {
			t.Errorf("%s: status %d, want %d (%v)", tt.name, code, tt.code, body)
			continue
		}
		if tt.fields != "" {
			var got []string
			for _, f := range body["fields"].([]any) {
				got = append(got, f.(map[string]any)["field"].(string))
			}
			if strings.Join(got, ",") != tt.fields {
				t.Errorf("%s: fields %v, want %s", tt.name, got, tt.fields)
			}
		}
	}
	if n := e.queued(t); n != 0 {
		t.Fatalf("bad requests queued %d tickets", n)
	}
	if n := e.stored(t); n != 0 {
		t.Fatalf("bad requests stored %d ticket records", n)
	}
	if code, _ := e.get(t, "/v1/tickets/nope"); code != http.StatusNotFound {
		t.Fatalf("unknown ticket: %d", code)
	}
	if code, _, _ := e.do(t, http.MethodGet, "/v1/tickets/nope/events", "", map[string]string{"Last-Event-ID": "x"}); code != 400 {
		t.Fatalf("bad Last-Event-ID: %d", code)
	}
}

func TestCancelBeforeMatch(t *testing.T) {
	t.Parallel()
	e := start(t, options{})
	notices := testkit.Collect(t, e.nc, e.subj.AllCancels())
	_, body := e.post(t, `{"player_id":"alice","skill":1650,"region":"eu"}`, "")
	id := body["ticket_id"].(string)
	code, body, _ := e.do(t, http.MethodDelete, "/v1/tickets/"+id, "", nil)
	if code != 200 || body["status"] != "cancelled" {
		t.Fatalf("DELETE = %d %v", code, body)
	}
	if owner, _ := e.claims.Owner(t.Context(), id); owner != events.OwnerCancelled {
		t.Fatalf("claim = %q: nothing stops a matcher", owner)
	}
	testkit.Eventually(t, 5*time.Second, func() bool { return len(notices()) == 1 }, "no cancel notice for matchers")
	if _, body := e.get(t, "/v1/tickets/"+id); body["status"] != "cancelled" {
		t.Fatalf("GET after cancel: %v", body)
	}
	if code, _, _ := e.do(t, http.MethodDelete, "/v1/tickets/"+id, "", nil); code != 200 {
		t.Fatalf("second DELETE: %d", code)
	}
	// Too late: a matched ticket cannot be cancelled.
	_, body = e.post(t, `{"player_id":"bob","skill":1650,"region":"eu"}`, "")
	id2 := body["ticket_id"].(string)
	e.allocate(t, id2, "bob")
	code, body, _ = e.do(t, http.MethodDelete, "/v1/tickets/"+id2, "", nil)
	if code != http.StatusConflict || body["status"] != "assigned" {
		t.Fatalf("DELETE of an assigned ticket = %d %v", code, body)
	}
	if code, _, _ := e.do(t, http.MethodDelete, "/v1/tickets/nope", "", nil); code != 404 {
		t.Fatalf("DELETE unknown: %d", code)
	}
}

// A ticket the allocator gave up on (its claim owned by "failed") that
// still reads as queued (its last result is the requeue's) is failed,
// not matched, to a client that tries to cancel it.
func TestCancelAfterFailedClaimSaysFailed(t *testing.T) {
	t.Parallel()
	e := start(t, options{})
	_, body := e.post(t, `{"player_id":"alice","skill":1650,"region":"eu"}`, "")
	id := body["ticket_id"].(string)
	if err := e.pub.Result(t.Context(), events.Result{TicketID: id, PlayerID: "alice", Status: events.StatusQueued}); err != nil {
		t.Fatal(err)
	}
	if won, _, err := e.claims.Claim(t.Context(), id, events.OwnerFailed); !won || err != nil {
		t.Fatalf("claim: %v %v", won, err)
	}
	code, body, _ := e.do(t, http.MethodDelete, "/v1/tickets/"+id, "", nil)
	if code != http.StatusConflict || body["status"] != "failed" {
		t.Fatalf("DELETE of a ticket claimed %q = %d %v, want 409 failed", events.OwnerFailed, code, body)
	}
}

// The frontend expires a ticket no matcher ended at its mode's max_wait
// (the rule set's, the one truth, plus the frontend's margin, none here):
// a 1v1 ticket at 500ms, while a 2v2 ticket of the same age, whose mode
// waits an hour, is still queued.
func TestTicketExpiresAtItsModesMaxWait(t *testing.T) {
	t.Parallel()
	e := start(t, options{rules: fixedRules(t, `{"modes":[{"name":"1v1","teams":2,"team_size":1,"max_wait":"500ms"},`+
		`{"name":"2v2","teams":2,"team_size":2,"max_wait":"1h"}]}`)})
	_, long := e.post(t, `{"player_id":"patient","mode":"2v2","skill":1650,"region":"eu"}`, "")
	_, body := e.post(t, `{"player_id":"lonely","mode":"1v1","skill":1650,"region":"eu"}`, "")
	id := body["ticket_id"].(string)
	testkit.Eventually(t, 10*time.Second, func() bool {
		_, b := e.get(t, "/v1/tickets/"+id)
		return b["status"] == "expired"
	}, "ticket never expired")
	if owner, _ := e.claims.Owner(t.Context(), id); owner != events.OwnerExpired {
		t.Fatalf("claim = %q", owner)
	}
	if _, b := e.get(t, "/v1/tickets/"+long["ticket_id"].(string)); b["status"] != "queued" {
		t.Fatalf("the 2v2 ticket, whose mode waits an hour: %v", b)
	}
}

type sseEvent struct {
	id     string
	status string
}

func readSSE(t *testing.T, r *bufio.Reader, n int) []sseEvent {
	t.Helper()
	var out []sseEvent
	var cur sseEvent
	for len(out) < n {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("after %v: %v", out, err)
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case strings.HasPrefix(line, "id: "):
			cur.id = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "data: "):
			var v map[string]any
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &v); err != nil {
				t.Fatal(err)
			}
			cur.status = v["status"].(string)
		case line == "" && cur.id != "":
			out = append(out, cur)
			cur = sseEvent{}
		}
	}
	return out
}

func TestServerSentEventsAndResume(t *testing.T) {
	t.Parallel()
	e := start(t, options{})
	_, body := e.post(t, `{"player_id":"alice","skill":1650,"region":"eu"}`, "")
	id := body["ticket_id"].(string)
	open := func(lastID string) (*bufio.Reader, func()) {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, e.http.URL+"/v1/tickets/"+id+"/events", nil)
		req.Header.Set("Authorization", "Bearer "+e.token(t, "alice"))
		if lastID != "" {
			req.Header.Set("Last-Event-ID", lastID)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
			t.Fatalf("events: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
		}
		return bufio.NewReader(res.Body), func() { res.Body.Close() }
	}
	r, closeIt := open("")
	if got := readSSE(t, r, 1); got[0] != (sseEvent{"1", "queued"}) {
		t.Fatalf("first event %v", got)
	}
	if err := e.pub.Result(t.Context(), events.Result{TicketID: id, PlayerID: "alice", Status: events.StatusMatched, MatchID: "m1"}); err != nil {
		t.Fatal(err)
	}
	if got := readSSE(t, r, 1); got[0] != (sseEvent{"2", "matched"}) {
		t.Fatalf("second event %v", got)
	}
	closeIt() // the client drops; the assignment arrives meanwhile
	e.allocate(t, id, "alice")
	r, closeIt = open("2")
	defer closeIt()
	if got := readSSE(t, r, 1); got[0] != (sseEvent{"3", "assigned"}) {
		t.Fatalf("resumed stream sent %v", got)
	}
	if _, err := r.ReadString('\n'); err != io.EOF {
		t.Fatalf("stream did not end after the terminal status: %v", err)
	}
}

// wsURL is a WebSocket URL of e's frontend with the access_token of the
// path's player_id parameter (a browser cannot set headers on WebSockets).
func wsURL(t *testing.T, e *env, path string) string {
	t.Helper()
	return wsURLAt(t, e, e.http.URL, path)
}

// wsURLAt is wsURL on the frontend at base.
func wsURLAt(t *testing.T, e *env, base, path string) string {
	t.Helper()
	u, err := url.Parse("ws" + strings.TrimPrefix(base, "http") + path)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("access_token", e.token(t, q.Get("player_id")))
	u.RawQuery = q.Encode()
	return u.String()
}

func TestDemoWebSocketSendsOneURL(t *testing.T) {
	t.Parallel()
	e := start(t, options{})
	c, _, err := websocket.DefaultDialer.Dial(wsURL(t, e, "/ws?region=eu&skill=1650&player_id=wsplayer"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var id string
	testkit.Eventually(t, 5*time.Second, func() bool {
		st, _ := e.js.Stream(t.Context(), e.subj.TicketsStream())
		raw, err := st.GetLastMsgForSubject(t.Context(), "matchmaking.eu.gold")
		if err != nil {
			return false
		}
		tk, _ := events.DecodeTicket(raw.Data)
		id = tk.TicketID
		return tk.PlayerID == "wsplayer"
	}, "no ticket queued for the WebSocket client")
	as := e.allocate(t, id, "wsplayer")
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	kind, data, err := c.ReadMessage()
	if err != nil || kind != websocket.TextMessage || string(data) != as.URL {
		t.Fatalf("message %d %q %v, want the URL", kind, data, err)
	}
	_, _, err = c.ReadMessage()
	if !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
		t.Fatalf("after the URL: %v, want a normal close", err)
	}
}

func TestWebSocketClientThatLeavesHasItsTicketCancelled(t *testing.T) {
	t.Parallel()
	e := start(t, options{})
	c, _, err := websocket.DefaultDialer.Dial(wsURL(t, e, "/ws?player_id=quitter&skill=100&region=us"), nil)
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 5*time.Second, func() bool { return e.queued(t) == 1 }, "no ticket")
	st, _ := e.js.Stream(t.Context(), e.subj.TicketsStream())
	raw, _ := st.GetLastMsgForSubject(t.Context(), "matchmaking.us.bronze")
	tk, _ := events.DecodeTicket(raw.Data)
	c.Close()
	testkit.Eventually(t, 5*time.Second, func() bool {
		owner, _ := e.claims.Owner(t.Context(), tk.TicketID)
		return owner == events.OwnerCancelled
	}, "abandoned ticket not cancelled")
}

func TestWebSocketBadInput(t *testing.T) {
	t.Parallel()
	e := start(t, options{})
	_, res, err := websocket.DefaultDialer.Dial(wsURL(t, e, "/ws?skill=lots"), nil)
	if err == nil || res.StatusCode != 400 {
		t.Fatalf("bad skill: %v %v", err, res)
	}
	c, _, err := websocket.DefaultDialer.Dial(wsURL(t, e, "/ws?region=mars"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _, err = c.ReadMessage()
	var ce *websocket.CloseError
	if !errorsAs(err, &ce) || ce.Code != api.CloseInvalid || !strings.Contains(ce.Text, "region") {
		t.Fatalf("unknown region over /ws: %v", err)
	}
	if n := e.queued(t); n != 0 {
		t.Fatalf("%d tickets queued", n)
	}
}

// dialEvents opens /ws/events with query and returns the socket (closed
// at the test's end) and a reader of its next JSON message that is not
// the last one again (a heartbeat's, TestEventsWebSocketSaysItLives).
func dialEvents(t *testing.T, e *env, query string) (*websocket.Conn, func() map[string]any) {
	t.Helper()
	return dialEventsAt(t, e, e.http.URL, query)
}

// dialEventsAt is dialEvents on the frontend at base.
func dialEventsAt(t *testing.T, e *env, base, query string) (*websocket.Conn, func() map[string]any) {
	t.Helper()
	c, _, err := websocket.DefaultDialer.Dial(wsURLAt(t, e, base, "/ws/events?"+query), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	var last map[string]any
	return c, func() map[string]any {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		for {
			var v map[string]any
			if err := c.ReadJSON(&v); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(v, last) {
				last = v
				return v
			}
		}
	}
}

func TestEventsWebSocket(t *testing.T) {
	t.Parallel()
	e := start(t, options{})
	c, read := dialEvents(t, e, "player_id=rich&skill=2500&region=asia")
	first := read()
	if first["status"] != "queued" || first["tier"] != "platinum" {
		t.Fatalf("first %v", first)
	}
	if err := c.WriteMessage(websocket.TextMessage, []byte(`{"type":"cancel"}`)); err != nil {
		t.Fatal(err)
	}
	if v := read(); v["status"] != "cancelled" {
		t.Fatalf("after cancel: %v", v)
	}
	_, _, err := c.ReadMessage()
	if !websocket.IsCloseError(err, api.CloseCancelled) {
		t.Fatalf("close: %v", err)
	}
}

func TestFullRegionGets503WithASuggestion(t *testing.T) {
	t.Parallel()
	e := start(t, options{minFree: 1, before: func(e *env) {
		kv, err := e.js.KeyValue(t.Context(), e.subj.CapacityBucket())
		if err != nil {
			t.Fatal(err)
		}
		for region, free := range map[string]int{"eu": 0, "us": 7} {
			data, _ := json.Marshal(events.Capacity{SchemaVersion: 1, Region: region, FreeRooms: free, TotalRooms: 10, Servers: 1, At: time.Now()})
			if _, err := kv.Put(t.Context(), region, data); err != nil {
				t.Fatal(err)
			}
		}
	}})
	var code int
	var body map[string]any
	var hdr http.Header
	accepted := uint64(0) // before the frontend has read the reports
	testkit.Eventually(t, 5*time.Second, func() bool {
		code, body, hdr = e.do(t, http.MethodPost, "/v1/tickets", `{"player_id":"a","skill":1650,"region":"eu"}`, nil)
		if code == http.StatusAccepted {
			accepted++
		}
		return code == http.StatusServiceUnavailable
	}, "full region accepted a ticket: %d %v", code, body)
	if body["suggest_region"] != "us" || hdr.Get("Retry-After") == "" {
		t.Fatalf("503 body %v, Retry-After %q", body, hdr.Get("Retry-After"))
	}
	if code, _ := e.post(t, `{"player_id":"b","skill":1650,"region":"us"}`, ""); code != 202 {
		t.Fatalf("region with free rooms: %d", code)
	}
	if code, _ := e.post(t, `{"player_id":"c","skill":1650,"region":"asia"}`, ""); code != 202 {
		t.Fatalf("region without a report: %d", code)
	}
	if n := e.queued(t); n != accepted+2 {
		t.Fatalf("%d queued, want %d", n, accepted+2)
	}
}

// Without identity the limit keys on the client's address.
func TestRateLimitPerClient(t *testing.T) {
	t.Parallel()
	e := start(t, options{insecure: true, api: api.Config{RatePerSecond: 0.5, RateBurst: 2}})
	for i := range 2 {
		if code, _ := e.post(t, `{"player_id":"p`+string(rune('0'+i))+`","skill":1650,"region":"eu"}`, ""); code != 202 {
			t.Fatalf("request %d: %d", i, code)
		}
	}
	code, body, hdr := e.do(t, http.MethodPost, "/v1/tickets", `{"player_id":"p9","skill":1650,"region":"eu"}`, nil)
	if code != http.StatusTooManyRequests || hdr.Get("Retry-After") == "" || body["error"] == "" {
		t.Fatalf("third request: %d %v", code, body)
	}
	if code, _ := e.get(t, "/v1/tickets/nope"); code != 404 {
		t.Fatalf("GET must not be limited: %d", code)
	}
}

func TestBrokerDownAnswers503AndServerLives(t *testing.T) {
	t.Parallel()
	e := start(t, options{})
	e.srv.Shutdown()
	code, body := e.post(t, `{"player_id":"a","skill":1,"region":"eu"}`, "k")
	if code != http.StatusServiceUnavailable || !strings.Contains(body["error"].(string), "retry") {
		t.Fatalf("POST with NATS down = %d %v", code, body)
	}
	res, err := http.Get(e.http.URL + "/healthz")
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("healthz after broker loss: %v %v", res, err)
	}
	res.Body.Close()
}

func TestPageAndOpenAPIAreServed(t *testing.T) {
	t.Parallel()
	e := start(t, options{})
	for path, want := range map[string]string{"/": "Find a match", "/openapi.yaml": "/v1/tickets/{id}/events"} {
		res, err := http.Get(e.http.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || !bytes.Contains(b, []byte(want)) {
			t.Fatalf("%s: %d", path, res.StatusCode)
		}
	}
}

// TestAnotherInstanceAnswersForATicket: the instance that created a ticket
// is gone; another one reports, streams and cancels it.
func TestAnotherInstanceAnswersForATicket(t *testing.T) {
	t.Parallel()
	e := start(t, options{})
	_, body := e.post(t, `{"player_id":"alice","skill":1650,"region":"eu"}`, "")
	id := body["ticket_id"].(string)
	e.http.Close() // the first instance is gone
	e.http = newFrontend(t, e, options{})
	if code, b := e.get(t, "/v1/tickets/"+id); code != 200 || b["status"] != "queued" || b["tier"] != "gold" {
		t.Fatalf("GET on another instance: %d %v", code, b)
	}
	r, _ := openEvents(t, e, id)
	if got := readSSE(t, r, 1); got[0].status != "queued" {
		t.Fatalf("events: %v", got)
	}
	if code, b, _ := e.do(t, http.MethodDelete, "/v1/tickets/"+id, "", nil); code != 200 || b["status"] != "cancelled" {
		t.Fatalf("DELETE on another instance: %d %v", code, b)
	}
	if got := readSSE(t, r, 1); got[0] != (sseEvent{"3", "cancelled"}) {
		t.Fatalf("stream after cancel: %v", got)
	}
}

// The first event describes the ticket as GET does, whether the instance
// answers from its tracker (it created the ticket) or from JetStream.
func TestServerSentEventsDescribeTheTicket(t *testing.T) {
	t.Parallel()
	e := start(t, options{})
	_, body := e.post(t, `{"player_id":"alice","skill":1650,"region":"eu","mode":"2v2"}`, "")
	id := body["ticket_id"].(string)
	_, want := e.get(t, "/v1/tickets/"+id)
	firstData := func() map[string]any {
		r, closeIt := openEvents(t, e, id)
		defer closeIt() // before the instance closes, which waits for it
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			if data, ok := strings.CutPrefix(strings.TrimRight(line, "\n"), "data: "); ok {
				var v map[string]any
				if err := json.Unmarshal([]byte(data), &v); err != nil {
					t.Fatal(err)
				}
				return v
			}
		}
	}
	for _, where := range []string{"the instance that created it", "another instance"} {
		got := firstData()
		for _, k := range []string{"ticket_id", "status", "region", "tier", "mode"} {
			if got[k] != want[k] || got[k] == nil {
				t.Errorf("%s: %s is %v, GET says %v", where, k, got[k], want[k])
			}
		}
		e.http.Close()
		e.http = newFrontend(t, e, options{})
	}
}

// openEvents opens a ticket's event stream on e's frontend; it is closed
// by closeIt or when the test ends.
func openEvents(t *testing.T, e *env, id string) (r *bufio.Reader, closeIt func()) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, e.http.URL+"/v1/tickets/"+id+"/events", nil)
	req.Header.Set("Authorization", "Bearer "+e.token(t, e.callerOf("/v1/tickets/"+id, "")))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	closeIt = func() { res.Body.Close() }
	t.Cleanup(closeIt)
	return bufio.NewReader(res.Body), closeIt
}
