package api_test

import (
	"bufio"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// A player who named another in a "party" with themself superseded that
// player's waiting ticket, put them in a match they never asked for, and,
// listing them first, read their join token from the party's ticket
// (review of 2026-12-05). A player token now queues its own player only;
// the victim's ticket waits on untouched.
func TestHostilePartyOfSomeoneElse(t *testing.T) {
	t.Parallel()
	e := start(t, options{})
	code, b, _ := e.do(t, http.MethodPost, "/v1/tickets", `{"skill":1650,"region":"eu"}`, e.bearer(t, "carol"))
	if code != http.StatusAccepted {
		t.Fatalf("carol: %d %v", code, b)
	}
	carols := b["ticket_id"].(string)
	for _, party := range []string{`["carol","mallory"]`, `["mallory","carol"]`} {
		code, out, _ := e.do(t, http.MethodPost, "/v1/tickets", `{"party":`+party+`,"mode":"2v2","skill":1650,"region":"eu"}`, e.bearer(t, "mallory"))
		if code != http.StatusForbidden || !strings.Contains(out["error"].(string), "server token") {
			t.Errorf("mallory's party %s: %d %v, want 403 naming the server token", party, code, out)
		}
	}
	if _, v, _ := e.do(t, http.MethodGet, "/v1/tickets/"+carols, "", e.bearer(t, "carol")); v["status"] != "queued" {
		t.Fatalf("carol's ticket after mallory's parties: %v", v)
	}
	if n := e.queued(t); n != 1 {
		t.Fatalf("%d tickets queued, want carol's alone", n)
	}
}

// Every view of a party's ticket was made of its first player's results,
// so each other player read the first one's join token (which admits the
// first player alone) and never its own. Each player now sees its own
// result on GET, on its event stream, from the frontend that created the
// ticket and from another; the server role sees the first player's.
func TestEachPartyPlayerSeesItsOwnJoinToken(t *testing.T) {
	t.Parallel()
	e := start(t, options{})
	code, b, _ := e.do(t, http.MethodPost, "/v1/tickets", `{"party":["ann","ben"],"mode":"2v2","skill":1650,"region":"eu"}`, e.bearer(t, ""))
	if code != http.StatusAccepted {
		t.Fatalf("the party service's POST: %d %v", code, b)
	}
	id := b["ticket_id"].(string)
	streams := map[string]*sseStream{}
	for _, p := range []string{"ann", "ben"} {
		streams[p] = openEventsAs(t, e, id, p)
		if got := streams[p].next(t); got["status"] != "queued" {
			t.Fatalf("%s's first event: %v", p, got)
		}
	}
	if won, _, err := e.claims.Claim(t.Context(), id, events.MatchOwner("m1")); !won || err != nil {
		t.Fatalf("claim: %v %v", won, err)
	}
	// Ben is told first, then ann: each on its own subject, each its token.
	for _, p := range []string{"ben", "ann"} {
		as := &events.Assignment{Server: "gs-1", Address: "127.0.0.1", Port: 7000, URL: "http://127.0.0.1:7000/play?room=m1&token=token-of-" + p,
			Room: "m1", MatchID: "m1", JoinToken: "token-of-" + p}
		if err := e.pub.Result(t.Context(), events.Result{TicketID: id, PlayerID: p, Status: events.StatusAssigned, MatchID: "m1", Assignment: as}); err != nil {
			t.Fatal(err)
		}
	}
	tokenOf := func(v map[string]any) any {
		a, _ := v["assignment"].(map[string]any)
		return a["join_token"]
	}
	for _, p := range []string{"ann", "ben"} {
		if got := streams[p].next(t); got["status"] != "assigned" || tokenOf(got) != "token-of-"+p {
			t.Errorf("%s's event stream: %v, want its own token", p, got)
		}
	}
	check := func(where string) {
		t.Helper()
		for _, p := range []string{"ann", "ben"} {
			if _, v, _ := e.do(t, http.MethodGet, "/v1/tickets/"+id, "", e.bearer(t, p)); tokenOf(v) != "token-of-"+p {
				t.Errorf("%s: %s's GET: %v, want its own token", where, p, v)
			}
			// A stream opened after the outcome reads it from the stream.
			if got := openEventsAs(t, e, id, p).next(t); tokenOf(got) != "token-of-"+p {
				t.Errorf("%s: %s's late event stream: %v, want its own token", where, p, got)
			}
		}
		if _, v, _ := e.do(t, http.MethodGet, "/v1/tickets/"+id, "", e.bearer(t, "")); tokenOf(v) != "token-of-ann" {
			t.Errorf("%s: the server role's GET: %v, want the first player's", where, v)
		}
	}
	check("the frontend that created it")
	e.http.Close()
	e.http = newFrontend(t, e, options{})
	check("another frontend")
	// A cancel of the decided ticket answers 409 with the view: the
	// caller's own (it was the first player's, join token and all).
	for _, p := range []string{"ann", "ben"} {
		if code, v, _ := e.do(t, http.MethodDelete, "/v1/tickets/"+id, "", e.bearer(t, p)); code != http.StatusConflict || tokenOf(v) != "token-of-"+p {
			t.Errorf("%s's DELETE: %d %v, want 409 with its own token", p, code, v)
		}
	}
}

// sseStream is a ticket's event stream as one caller reads it.
type sseStream struct{ r *bufio.Reader }

// openEventsAs opens a ticket's event stream with player's token (the
// server role's for ""); it is closed when the test ends.
func openEventsAs(t *testing.T, e *env, id, player string) *sseStream {
	t.Helper()
	return openEventsWith(t, e, http.DefaultClient, id, player)
}

// openEventsWith is openEventsAs through client c.
func openEventsWith(t *testing.T, e *env, c *http.Client, id, player string) *sseStream {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, e.http.URL+"/v1/tickets/"+id+"/events", nil)
	req.Header.Set("Authorization", "Bearer "+e.token(t, player))
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	if res.StatusCode != http.StatusOK {
		t.Fatalf("%s's event stream of %s: %d", player, id, res.StatusCode)
	}
	return &sseStream{r: bufio.NewReader(res.Body)}
}

// next is the data of the stream's next event.
func (s *sseStream) next(t *testing.T) map[string]any {
	t.Helper()
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			t.Fatalf("event stream: %v", err)
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
