package api_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/ops"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/api"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/tickets"
)

type env struct {
	srv  *server.Server
	js   jetstream.JetStream
	http *httptest.Server
	subj events.Subjects
}

func start(t *testing.T) *env {
	t.Helper()
	s := testkit.RunServer(t)
	nc := testkit.Connect(t, s, nats.MaxReconnects(0))
	js := testkit.JetStream(t, nc)
	e := &env{srv: s, js: js}
	if err := events.Provision(t.Context(), js, events.Topology{}); err != nil {
		t.Fatal(err)
	}
	svc, err := tickets.New(t.Context(), js, e.subj, events.DefaultRegions, events.DefaultTiers)
	if err != nil {
		t.Fatal(err)
	}
	var ready ops.Readiness
	ready.Set(true)
	h, err := api.New(svc, slog.New(slog.NewTextHandler(io.Discard, nil)), &ready, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	e.http = httptest.NewServer(h)
	t.Cleanup(e.http.Close)
	return e
}

func (e *env) post(t *testing.T, body, key string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, e.http.URL+"/v1/tickets", strings.NewReader(body))
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	return do(t, req)
}

func (e *env) get(t *testing.T, path string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, e.http.URL+path, nil)
	return do(t, req)
}

func do(t *testing.T, req *http.Request) (int, map[string]any) {
	t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		t.Fatalf("%s %s: body is not JSON: %v", req.Method, req.URL.Path, err)
	}
	return res.StatusCode, body
}

func TestCreateAndGetTicket(t *testing.T) {
	t.Parallel()
	e := start(t)
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
	if err != nil || tk.TicketID != id || tk.PlayerID != "alice" || raw.Header.Get(jetstream.MsgIDHeader) != id {
		t.Fatalf("queued ticket %s: %v", raw.Data, err)
	}
	if code, body := e.get(t, "/v1/tickets/"+id); code != 200 || body["status"] != "queued" {
		t.Fatalf("GET = %d %v", code, body)
	}

	// The allocator's result, published on the player's subject, is what a
	// later GET reports, from any frontend.
	pub := events.NewPublisher(e.js, e.subj)
	as := &events.Assignment{Server: "gs-1", Address: "127.0.0.1", Port: 7000, URL: "http://127.0.0.1:7000/play?room=m1", Room: "m1", MatchID: "m1", JoinToken: "tok"}
	if err := pub.Result(t.Context(), events.Result{TicketID: id, PlayerID: "alice", Status: events.StatusAssigned, MatchID: "m1", Assignment: as}); err != nil {
		t.Fatal(err)
	}
	code, body = e.get(t, "/v1/tickets/"+id)
	a, _ := body["assignment"].(map[string]any)
	if code != 200 || body["status"] != "assigned" || a["url"] != as.URL || body["match_id"] != "m1" {
		t.Fatalf("GET after assignment = %d %v", code, body)
	}

	// A result of another ticket of the same player does not leak in.
	code, body = e.post(t, `{"player_id":"alice","skill":1650,"region":"eu"}`, "")
	if code != http.StatusAccepted {
		t.Fatal(code, body)
	}
	if _, body := e.get(t, "/v1/tickets/"+body["ticket_id"].(string)); body["status"] != "queued" {
		t.Fatalf("new ticket shows %v", body)
	}
}

func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	e := start(t)
	req := `{"player_id":"bob","skill":1300,"region":"us"}`
	_, first := e.post(t, req, "key-1")
	code, second := e.post(t, req, "key-1")
	if code != http.StatusAccepted || first["ticket_id"] != second["ticket_id"] {
		t.Fatalf("repeat gave %d %v, first %v", code, second, first)
	}
	if n := testkit.StreamMsgs(t, e.js, e.subj.TicketsStream()); n != 1 {
		t.Fatalf("%d tickets queued for one idempotent request", n)
	}
	code, body := e.post(t, `{"player_id":"bob","skill":1400,"region":"us"}`, "key-1")
	if code != http.StatusConflict {
		t.Fatalf("key reused for another request: %d %v", code, body)
	}
}

func TestBadRequestsNameTheFieldAndQueueNothing(t *testing.T) {
	t.Parallel()
	e := start(t)
	tests := []struct {
		name, body string
		code       int
		field      string
	}{
		{"not json", `player=alice`, 400, ""},
		{"unknown field", `{"player_id":"a","skill":1,"region":"eu","colour":"red"}`, 400, "colour"},
		{"missing skill", `{"player_id":"a","region":"eu"}`, 400, "skill"},
		{"skill is text", `{"player_id":"a","skill":"pro","region":"eu"}`, 400, "skill"},
		{"skill out of range", `{"player_id":"a","skill":-1,"region":"eu"}`, 400, "skill"},
		{"missing region", `{"player_id":"a","skill":1}`, 400, "region"},
		{"unknown region", `{"player_id":"a","skill":1,"region":"mars"}`, 400, "region"},
		{"player with a wildcard", `{"player_id":"a.*","skill":1,"region":"eu"}`, 400, "player_id"},
		{"no player", `{"skill":1,"region":"eu"}`, 400, "player_id"},
		{"bad mode", `{"player_id":"a","skill":1,"region":"eu","mode":"x y"}`, 400, "mode"},
		{"too large", `{"player_id":"` + strings.Repeat("a", 70000) + `"}`, 413, ""},
	}
	for _, tt := range tests {
		code, body := e.post(t, tt.body, "")
		if code != tt.code {
			t.Errorf("%s: status %d, want %d (%v)", tt.name, code, tt.code, body)
			continue
		}
		if body["error"] == "" {
			t.Errorf("%s: no error message", tt.name)
		}
		if tt.field != "" {
			fields, _ := body["fields"].([]any)
			if len(fields) == 0 || fields[0].(map[string]any)["field"] != tt.field {
				t.Errorf("%s: fields %v, want %q first", tt.name, body["fields"], tt.field)
			}
		}
	}
	if n := testkit.StreamMsgs(t, e.js, e.subj.TicketsStream()); n != 0 {
		t.Fatalf("bad requests queued %d tickets", n)
	}
	if code, _ := e.get(t, "/v1/tickets/nope"); code != http.StatusNotFound {
		t.Fatalf("unknown ticket: %d", code)
	}
}

func TestBrokerDownAnswers503AndServerLives(t *testing.T) {
	t.Parallel()
	e := start(t)
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

func TestPageIsServed(t *testing.T) {
	t.Parallel()
	e := start(t)
	res, err := http.Get(e.http.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || !bytes.Contains(b, []byte("Find a match")) {
		t.Fatalf("page: %d", res.StatusCode)
	}
}

func TestEveryBadFieldIsNamed(t *testing.T) {
	t.Parallel()
	e := start(t)
	code, body := e.post(t, `{"player_id":"x.y","skill":-4,"region":"mars"}`, "")
	var got []string
	for _, f := range body["fields"].([]any) {
		got = append(got, f.(map[string]any)["field"].(string))
	}
	if code != 400 || strings.Join(got, ",") != "player_id,skill,region" {
		t.Fatalf("%d fields %v", code, got)
	}
}
