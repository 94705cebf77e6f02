package stack_test

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/dev/stack"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
	"github.com/quickmatch-dev/quickmatch/pkg/tracing"
)

// TestTraceFromPostToJoin runs the stack with tracing on (the SDK's
// standard OTEL_EXPORTER_OTLP_ENDPOINT, pointing at a collector in this
// test) and follows two tickets, each sent with a client's traceparent,
// from POST to the join at the game server: one trace, linked across the
// frontend, the matcher, the allocator and the game server.
//
//	client traceparent -> frontend create -> (ticket message) matcher spans
//	matcher match span, linked to both tickets' spans -> (match message)
//	allocator allocate -> (play URL) game join, frontend deliver
func TestTraceFromPostToJoin(t *testing.T) {
	col := testkit.StartOTLPCollector(t)
	s := startStack(t, func(c *stack.Config) {
		// Short batches, so spans reach the collector within the test.
		c.Env = append(c.Env, "OTEL_EXPORTER_OTLP_ENDPOINT="+col.URL, "OTEL_BSP_SCHEDULE_DELAY=100")
	})
	fe := s.FrontendURL()
	players := []string{"tracy", "trent"}
	var tickets []tracedTicket
	for _, p := range players {
		tickets = append(tickets, postTraced(t, fe, p))
	}
	var urls []string
	for _, tk := range tickets {
		var v ticketView
		testkit.Eventually(t, 15*time.Second, func() bool {
			httpJSON(t, tk.token, http.MethodGet, fe+"/v1/tickets/"+tk.id, "", &v)
			return v.Status == "assigned"
		}, "ticket %s is %q", tk.id, v.Status)
		urls = append(urls, v.Assignment.URL)
	}
	if !strings.Contains(urls[0], "traceparent=") {
		t.Errorf("play URL %s carries no traceparent: the join cannot continue the trace", urls[0])
	}
	readOutcome(t, fe, tickets[0]) // an outcome delivered over SSE: a deliver span
	for _, u := range urls {
		join(t, u)
	}

	// Spans reach the collector in batches (OTEL_BSP_SCHEDULE_DELAY):
	// wait for the whole trace, then say what it still lacks.
	deadline := time.Now().Add(30 * time.Second)
	for {
		spans := col.Spans()
		missing := checkTrace(spans, tickets)
		if len(missing) == 0 {
			t.Logf("spans received:\n%s", testkit.DumpSpans(spans))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the trace is not whole:\n- %s\nspans received:\n%s", strings.Join(missing, "\n- "), testkit.DumpSpans(spans))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// tracedTicket is a ticket posted with a client's traceparent.
type tracedTicket struct {
	player, id, token, correlation string
	trace, parent                  string // the client's trace and span ids
}

// postTraced posts a 1v1 ticket for player with a traceparent of its own.
func postTraced(t *testing.T, fe, player string) tracedTicket {
	t.Helper()
	tk := tracedTicket{player: player, token: devToken(t, fe, player), trace: randHex(16), parent: randHex(8)}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, fe+"/v1/tickets",
		strings.NewReader(`{"player_id":"`+player+`","mode":"1v1","skill":1650,"region":"eu"}`))
	req.Header.Set("Authorization", "Bearer "+tk.token)
	req.Header.Set("Traceparent", "00-"+tk.trace+"-"+tk.parent+"-01")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var v ticketView
	if err := json.NewDecoder(res.Body).Decode(&v); err != nil || res.StatusCode != http.StatusAccepted || v.TicketID == "" {
		t.Fatalf("POST %s: %d %+v %v", player, res.StatusCode, v, err)
	}
	tk.id, tk.correlation = v.TicketID, res.Header.Get("X-Correlation-Id")
	return tk
}

// readOutcome reads tk's event stream until its assigned event.
func readOutcome(t *testing.T, fe string, tk tracedTicket) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, fe+"/v1/tickets/"+tk.id+"/events", nil)
	req.Header.Set("Authorization", "Bearer "+tk.token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "data:") && strings.Contains(sc.Text(), `"status":"assigned"`) {
			return
		}
	}
	t.Fatalf("event stream of %s ended without its assignment: %v", tk.id, sc.Err())
}

// checkTrace says what the spans lack of one trace from the tickets'
// POSTs to their players' joins (nothing: it is whole).
func checkTrace(spans []testkit.Span, tickets []tracedTicket) (missing []string) {
	by := func(service, name string, ok func(testkit.Span) bool) []testkit.Span {
		var out []testkit.Span
		for _, s := range spans {
			if s.Service == service && (name == "" || s.Name == name) && (ok == nil || ok(s)) {
				out = append(out, s)
			}
		}
		return out
	}
	for _, tk := range tickets {
		creates := by("frontend", tracing.SpanCreate, func(s testkit.Span) bool { return s.Trace == tk.trace && s.Parent == tk.parent })
		switch {
		case len(creates) == 0:
			missing = append(missing, "frontend: no create span of "+tk.player+"'s ticket in the client's trace "+tk.trace+" (child of its traceparent)")
		case creates[0].Attrs[tracing.AttrCorrelationID] != tk.correlation:
			missing = append(missing, "frontend: create span of "+tk.player+" has correlation id "+creates[0].Attrs[tracing.AttrCorrelationID]+", want "+tk.correlation)
		}
		if len(by("matcher", "", func(s testkit.Span) bool { return s.Trace == tk.trace })) == 0 {
			missing = append(missing, "matcher: no span in "+tk.player+"'s ticket trace (waiting in the pool, child of the create span via the ticket's traceparent header) [H5, services/matcher]")
		}
	}
	if len(by("matcher", "", nil)) == 0 {
		return append(missing, "matcher: no span at all from service.name=matcher: its spans (H5, services/matcher) are missing or not exported")
	}
	// The match span: the matcher's commit span, linked to the spans of both tickets.
	linksTo := func(s testkit.Span, trace string) bool {
		return slices.ContainsFunc(s.Links, func(l testkit.SpanLink) bool { return l.Trace == trace })
	}
	matches := by("matcher", tracing.SpanCommit, func(s testkit.Span) bool { return linksTo(s, tickets[0].trace) && linksTo(s, tickets[1].trace) })
	if len(matches) == 0 {
		return append(missing, "matcher: no match span linked to both tickets' traces ("+tickets[0].trace+", "+tickets[1].trace+") [H5, services/matcher]")
	}
	match := matches[0]
	allocs := by("allocator", tracing.SpanAllocate, func(s testkit.Span) bool { return s.Trace == match.Trace })
	if len(allocs) == 0 {
		return append(missing, "allocator: no allocate span in the match span's trace "+match.Trace+" (the match must be published with the trace context of its span) ["+
			strings.Join(names(by("allocator", tracing.SpanAllocate, nil)), "; ")+"]")
	}
	if allocs[0].Attrs[tracing.AttrCorrelationID] == "" {
		missing = append(missing, "allocator: allocate span has no correlation id: the match was published without one")
	}
	isAlloc := func(s testkit.Span) bool {
		return slices.ContainsFunc(allocs, func(a testkit.Span) bool { return a.ID == s.Parent })
	}
	// One value, one key: the joins name their room by the match id the
	// commit and the allocation carry.
	sameMatch := func(s testkit.Span) bool {
		return isAlloc(s) && s.Attrs[tracing.AttrMatchID] != "" && s.Attrs[tracing.AttrMatchID] == match.Attrs[tracing.AttrMatchID]
	}
	if n := len(by("game", tracing.SpanJoin, sameMatch)); n < len(tickets) {
		missing = append(missing, "game: "+strconv.Itoa(n)+" join spans children of the allocate span with the match's "+tracing.AttrMatchID+", want one per player")
	}
	if len(by("frontend", tracing.SpanDeliver, isAlloc)) == 0 {
		missing = append(missing, "frontend: no deliver span (the assigned outcome written over SSE) child of the allocate span")
	}
	return missing
}

func names(spans []testkit.Span) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.String())
	}
	return out
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
