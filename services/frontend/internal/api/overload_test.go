package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/yaml"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/rules"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/identity"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/ops"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/admission"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/api"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/results"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/tickets"
)

// twoAtOnce fixes the limit at two creations in flight: the adaptive
// arithmetic is the admission package's to test, the refusals are this
// file's. Its clock stands still, so that the Retry-After stays 1-3 s
// however slowly a test refuses more than it admits (review R6: two
// stalls of a second on a loaded machine gave 2-6 s).
var twoAtOnce = admission.Config{Target: time.Hour, Min: 2, Max: 2,
	Now: func() time.Time { return time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC) }}

// twoAtOnceTurned is twoAtOnce on a clock that stands still until tick
// moves it a second.
func twoAtOnceTurned() (cfg admission.Config, tick func()) {
	var mu sync.Mutex
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	cfg = twoAtOnce
	cfg.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	return cfg, func() { mu.Lock(); defer mu.Unlock(); now = now.Add(time.Second) }
}

// heldTickets is a ticket service whose creations wait until released,
// as behind a broker that stopped acking; reads and cancels answer at
// once.
type heldTickets struct {
	entered       chan string   // a creation began (its player)
	release       chan struct{} // closed: every creation ends
	mu            sync.Mutex
	n             int
	repeats       []string      // the keys Repeat was asked for
	releaseRepeat chan struct{} // closed: a held repeat ends
}

func (h *heldTickets) Create(ctx context.Context, _ identity.Caller, req tickets.Request, _ string) (tickets.View, error) {
	if req.Region == "mars" {
		return tickets.View{}, &events.ValidationError{Kind: "ticket", Fields: []events.FieldError{{Field: "region", Reason: "unknown region"}}}
	}
	h.entered <- req.PlayerID
	select {
	case <-h.release:
	case <-ctx.Done():
		return tickets.View{}, ctx.Err()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.n++
	return tickets.View{TicketID: fmt.Sprintf("t%d", h.n), Status: events.StatusQueued, Region: req.Region, Tier: "gold", Mode: "1v1"}, nil
}

// AnswerRepeat answers the repeat of the key "made" (an earlier attempt made
// ticket "made"), holds one of "held" until releaseRepeat, and has no ticket
// for any other key.
func (h *heldTickets) AnswerRepeat(ctx context.Context, _ identity.Caller, req tickets.Request, key string) (tickets.View, error) {
	h.mu.Lock()
	h.repeats = append(h.repeats, key)
	h.mu.Unlock()
	switch key {
	case "made":
		return tickets.View{TicketID: "made", Status: events.StatusMatched, Region: req.Region, Tier: "gold", Mode: "1v1"}, nil
	case "held":
		h.entered <- key
		select {
		case <-h.releaseRepeat:
		case <-ctx.Done():
			return tickets.View{}, ctx.Err()
		}
	}
	return tickets.View{}, tickets.ErrNotFound
}

func (h *heldTickets) Get(context.Context, identity.Caller, string) (tickets.View, error) {
	return tickets.View{TicketID: "old", Status: events.StatusQueued}, nil
}

func (h *heldTickets) Cancel(context.Context, identity.Caller, string, string) (tickets.View, error) {
	return tickets.View{TicketID: "old", Status: events.StatusCancelled}, nil
}

func (h *heldTickets) RecordFor(context.Context, identity.Caller, string) (tickets.Record, error) {
	return tickets.Record{}, tickets.ErrNotFound
}

func (h *heldTickets) View(context.Context, tickets.Record, string) (tickets.View, error) {
	return tickets.View{}, tickets.ErrNotFound
}

func (h *heldTickets) RuleSet() *rules.Set     { return rules.Default() }
func (h *heldTickets) Regions() events.Regions { return events.DefaultRegions }

// followed is a results tracker that follows every ticket, none ending.
type followed struct{}

func (f followed) Follow(ctx context.Context, t *events.Ticket, player string) (results.Waiting, error) {
	return f.Wait(ctx, t.TicketID, player)
}

func (followed) AskFollowed(context.Context, string) (bool, bool, error) { return true, true, nil }

func (followed) SetHandover(func([]string), func() []string) {}

func (followed) Wait(context.Context, string, string) (results.Waiting, error) {
	return results.Waiting{
		Results:  make(chan events.Result),
		Creation: &results.Creation{Shard: events.Shard{Region: "eu", Tier: "gold"}, Mode: "1v1"},
		Stop:     func() {},
	}, nil
}

// heldFrontend serves the API over h, without identity (the server role
// for every caller), in the wrappers given.
func heldFrontend(t *testing.T, h *heldTickets, adm admission.Config, wrap ...func(http.Handler) http.Handler) *httptest.Server {
	t.Helper()
	return heldFrontendLogged(t, h, adm, slog.New(slog.DiscardHandler), wrap...)
}

// heldFrontendLogged is heldFrontend logging to log.
func heldFrontendLogged(t *testing.T, h *heldTickets, adm admission.Config, log *slog.Logger, wrap ...func(http.Handler) http.Handler) *httptest.Server {
	t.Helper()
	done := make(chan struct{})
	var ready ops.Readiness
	ready.Set(true)
	cfg := api.Config{Insecure: true, Heartbeat: 100 * time.Millisecond, Admission: adm}
	handler, err := api.New(cfg, h, followed{}, log, &ready, prometheus.NewRegistry(), done)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range wrap {
		handler = w(handler)
	}
	hs := httptest.NewServer(handler)
	t.Cleanup(func() {
		close(done)
		hs.Close()
	})
	return hs
}

// fullFrontend is a held frontend (heldFrontendLogged) of cfg, its two
// creation slots (twoAtOnce's limit) taken by creations of players a
// and b, held until the test ends.
func fullFrontend(t *testing.T, cfg admission.Config, log *slog.Logger) (*heldTickets, *httptest.Server) {
	t.Helper()
	h := &heldTickets{entered: make(chan string, 8), release: make(chan struct{}), releaseRepeat: make(chan struct{})}
	hs := heldFrontendLogged(t, h, cfg, log)
	held := []<-chan answer{postInBackground(t.Context(), hs.URL, "a"), postInBackground(t.Context(), hs.URL, "b")}
	for range held {
		<-h.entered
	}
	t.Cleanup(func() { // before the server's close (heldFrontendLogged's)
		close(h.release)
		for _, c := range held {
			<-c
		}
	})
	return h, hs
}

type answer struct {
	code int
	body map[string]any
	hdr  http.Header
	err  error
}

// send makes one request; it may run on any goroutine (it never fails
// the test itself).
func send(ctx context.Context, method, url, body string) answer {
	return sendWith(ctx, method, url, nil, body)
}

// sendWith is send with the headers hdr.
func sendWith(ctx context.Context, method, url string, hdr map[string]string, body string) answer {
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		return answer{err: err}
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return answer{err: err}
	}
	defer res.Body.Close()
	a := answer{code: res.StatusCode, hdr: res.Header}
	if res.Header.Get("Content-Type") == "application/json" {
		a.err = json.NewDecoder(res.Body).Decode(&a.body)
	}
	return a
}

// postInBackground sends a ticket request for player and delivers its
// answer on the channel.
func postInBackground(ctx context.Context, base, player string) <-chan answer {
	out := make(chan answer, 1)
	go func() {
		out <- send(ctx, http.MethodPost, base+"/v1/tickets", `{"player_id":"`+player+`","skill":1650,"region":"eu"}`)
	}()
	return out
}

// refusal bounds a request that should be refused at once: past the
// limit nothing ends a held creation, so one that waits instead would
// hang the test (the bound turns that into a failure; it measures
// nothing).
func refusal(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// checkOverloaded fails unless a is the refusal of overload control:
// 503, a Retry-After of whole seconds (1-3), and a body saying why.
func checkOverloaded(t *testing.T, what string, a answer) {
	t.Helper()
	if a.err != nil {
		t.Fatalf("%s: %d %v: %v", what, a.code, a.body, a.err)
	}
	checkRefused(t, what, a, 1, 3)
	if msg, _ := a.body["error"].(string); !strings.HasPrefix(msg, "overloaded") {
		t.Fatalf("%s: error %q, want it to say overloaded", what, msg)
	}
}

// metric is the value of one sample line of the frontend's /metrics, -1
// if it has none.
func metric(t *testing.T, base, sample string) float64 {
	t.Helper()
	a, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Body.Close()
	text, _ := io.ReadAll(a.Body)
	for line := range strings.Lines(string(text)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), sample+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	return -1
}

// Two creations are held in flight, the limit: every further creation,
// by POST or either WebSocket, is refused at once with 503 overloaded,
// while reads, event streams and cancels are answered; once the held
// ones end (202 each), creations are admitted again.
func TestOverloadRefusesCreationsPastTheLimit(t *testing.T) {
	t.Parallel()
	h := &heldTickets{entered: make(chan string, 8), release: make(chan struct{})}
	hs := heldFrontend(t, h, twoAtOnce)
	held := []<-chan answer{postInBackground(t.Context(), hs.URL, "a"), postInBackground(t.Context(), hs.URL, "b")}
	for range held {
		<-h.entered
	}

	checkOverloaded(t, "a third POST", send(refusal(t), http.MethodPost, hs.URL+"/v1/tickets", `{"player_id":"c","skill":1650,"region":"eu"}`))
	for _, path := range []string{"/ws", "/ws/events"} {
		conn, res, err := websocket.DefaultDialer.DialContext(refusal(t), "ws"+strings.TrimPrefix(hs.URL, "http")+path+"?player_id=d", nil)
		if err == nil {
			conn.Close()
			t.Fatalf("%s: upgraded past the limit", path)
		}
		if res == nil {
			t.Fatalf("%s: %v", path, err)
		}
		a := answer{code: res.StatusCode, hdr: res.Header}
		a.err = json.NewDecoder(res.Body).Decode(&a.body)
		checkOverloaded(t, path, a)
	}
	if got := metric(t, hs.URL, `quickmatch_frontend_rejections_total{reason="overloaded"}`); got != 3 {
		t.Fatalf("overloaded rejections counted: %v, want 3", got)
	}
	if in, lim := metric(t, hs.URL, "quickmatch_frontend_creations_in_flight"), metric(t, hs.URL, "quickmatch_frontend_creation_limit"); in != 2 || lim != 2 {
		t.Fatalf("gauges: %v in flight, limit %v; want 2, 2", in, lim)
	}

	// A player already queued still reads, follows and cancels.
	if a := send(t.Context(), http.MethodGet, hs.URL+"/v1/tickets/old", ""); a.code != http.StatusOK {
		t.Fatalf("GET while overloaded: %d %v", a.code, a.body)
	}
	if a := send(t.Context(), http.MethodDelete, hs.URL+"/v1/tickets/old", ""); a.code != http.StatusOK || a.body["status"] != "cancelled" {
		t.Fatalf("DELETE while overloaded: %d %v", a.code, a.body)
	}
	ctx, stop := context.WithCancel(t.Context())
	if a := send(ctx, http.MethodGet, hs.URL+"/v1/tickets/old/events", ""); a.code != http.StatusOK || a.hdr.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("event stream while overloaded: %d %v", a.code, a.hdr)
	}
	stop()

	close(h.release)
	for i, c := range held {
		if a := <-c; a.code != http.StatusAccepted {
			t.Fatalf("held creation %d: %d %v %v, want 202", i, a.code, a.body, a.err)
		}
	}
	if a := <-postInBackground(t.Context(), hs.URL, "e"); a.code != http.StatusAccepted {
		t.Fatalf("POST once the held ones ended: %d %v", a.code, a.body)
	}
	<-h.entered
}

// A creation refused by the ticket service (here: an unknown region)
// gives its slot back: after many, of two slots, creations are still
// admitted, and nothing is left in flight.
func TestOverloadLeavesNoSlotTaken(t *testing.T) {
	t.Parallel()
	h := &heldTickets{entered: make(chan string, 8), release: make(chan struct{})}
	close(h.release)
	hs := heldFrontend(t, h, twoAtOnce)
	for i := range 5 {
		if a := send(t.Context(), http.MethodPost, hs.URL+"/v1/tickets", `{"player_id":"x","skill":1,"region":"mars"}`); a.code != http.StatusBadRequest {
			t.Fatalf("bad request %d: %d %v", i, a.code, a.body)
		}
		conn, _, err := websocket.DefaultDialer.DialContext(t.Context(), "ws"+strings.TrimPrefix(hs.URL, "http")+"/ws?region=mars", nil)
		if err != nil {
			t.Fatalf("bad WebSocket request %d: %v (it is refused after the upgrade)", i, err)
		}
		// Its close comes after its slot is given back.
		if _, _, err := conn.ReadMessage(); !websocket.IsCloseError(err, api.CloseInvalid) {
			t.Fatalf("bad WebSocket request %d: %v, want a close 4400", i, err)
		}
		conn.Close()
		if a := <-postInBackground(t.Context(), hs.URL, "p"+strconv.Itoa(i)); a.code != http.StatusAccepted {
			t.Fatalf("creation %d: %d %v", i, a.code, a.body)
		}
		<-h.entered
	}
	if in := metric(t, hs.URL, "quickmatch_frontend_creations_in_flight"); in != 0 {
		t.Fatalf("%v creations in flight after all ended", in)
	}
}

// Behind a real broker whose link is cut (its acks held, as when it is
// far past its capacity), the creations in flight stop at the limit and
// the excess is refused at once; when the link heals the held ones are
// queued and new ones admitted.
func TestOverloadWhileTheBrokerHoldsItsAcks(t *testing.T) {
	t.Parallel()
	s := testkit.RunServer(t)
	direct := testkit.Connect(t, s)
	djs := testkit.JetStream(t, direct)
	if err := events.Provision(t.Context(), djs, events.Topology{}); err != nil {
		t.Fatal(err)
	}
	link := testkit.NewLink(t, strings.TrimPrefix(s.ClientURL(), "nats://"))
	nc := testkit.ConnectURL(t, link.URL(), nats.MaxReconnects(0))
	e := &env{srv: s, nc: nc, js: testkit.JetStream(t, nc), owners: map[string]string{}}
	e.http = newFrontend(t, e, options{insecure: true, api: api.Config{Admission: twoAtOnce}})
	t.Cleanup(link.Heal) // let held requests end before the frontend closes

	link.Cut(testkit.Both)
	held := []<-chan answer{postInBackground(t.Context(), e.http.URL, "a"), postInBackground(t.Context(), e.http.URL, "b")}
	testkit.Eventually(t, 5*time.Second, func() bool {
		return metric(t, e.http.URL, "quickmatch_frontend_creations_in_flight") == 2
	}, "the two creations never went in flight")
	checkOverloaded(t, "a POST past the limit", send(refusal(t), http.MethodPost, e.http.URL+"/v1/tickets", `{"player_id":"c","skill":1650,"region":"eu"}`))

	link.Heal()
	for i, c := range held {
		if a := <-c; a.code != http.StatusAccepted {
			t.Fatalf("held creation %d: %d %v %v, want 202 once the broker acks", i, a.code, a.body, a.err)
		}
	}
	if a := <-postInBackground(t.Context(), e.http.URL, "d"); a.code != http.StatusAccepted {
		t.Fatalf("POST after the heal: %d %v", a.code, a.body)
	}
	if n := testkit.StreamMsgs(t, djs, e.subj.TicketsStream()); n != 3 {
		t.Fatalf("%d tickets queued, want the 3 admitted", n)
	}
}

// The OpenAPI description states the overload refusal on every endpoint
// that creates a ticket, and on no other; the drained 503 on the one
// that answers it (POST: /ws refuses a drain after the upgrade, with a
// close its description states), and on no other.
func TestOpenAPIStatesTheOverloadRefusal(t *testing.T) {
	t.Parallel()
	hs := heldFrontend(t, &heldTickets{}, twoAtOnce)
	res, err := http.Get(hs.URL + "/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	text, _ := io.ReadAll(res.Body)
	type response struct {
		Ref string `json:"$ref"`
	}
	var doc struct {
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components struct {
			Responses map[string]struct{ Description string } `json:"responses"`
		} `json:"components"`
	}
	if err := yaml.Unmarshal(text, &doc); err != nil {
		t.Fatal(err)
	}
	creates := map[string]bool{"POST /v1/tickets": true, "GET /ws": true, "GET /ws/events": true}
	for path, ops := range doc.Paths {
		for method, raw := range ops {
			var op struct {
				Description string
				Responses   map[string]response
			}
			if method == "parameters" || json.Unmarshal(raw, &op) != nil {
				continue
			}
			name := strings.ToUpper(method) + " " + path
			ref, ok := op.Responses["503"]
			desc := doc.Components.Responses[strings.TrimPrefix(ref.Ref, "#/components/responses/")].Description
			if says := ok && strings.Contains(desc, "overloaded"); says != creates[name] {
				t.Errorf("%s: its 503 says overloaded: %v, want %v", name, says, creates[name])
			}
			if says := ok && strings.Contains(desc, "drained"); says != (name == "POST /v1/tickets") {
				t.Errorf("%s: its 503 says drained: %v", name, says)
			}
			if name == "GET /ws" && !(strings.Contains(op.Description, "drained") && strings.Contains(op.Description, "retry after")) {
				t.Errorf("%s: its description does not state the drain's close and when to retry", name)
			}
		}
	}
}

// Past the limit for a second, ten refusals to two admissions: the next
// refusal's Retry-After is 2 s (five refusals per admission, but at most
// doubling from 1) and up to twice as much again, not 1-3 s; a second
// second of ten refusals and none admitted gives 4 s (ten per admission,
// doubling from 2). So clients that ask again come back no faster than
// the frontend can take them. The gauge says each.
func TestOverloadRetryAfterGrowsWithTheOverload(t *testing.T) {
	t.Parallel()
	cfg, tick := twoAtOnceTurned()
	_, hs := fullFrontend(t, cfg, slog.New(slog.DiscardHandler))
	for _, want := range []int{2, 4} {
		for i := range 10 {
			checkRefused(t, fmt.Sprintf("POST %d", i), send(refusal(t), http.MethodPost, hs.URL+"/v1/tickets", `{"player_id":"c","skill":1650,"region":"eu"}`), 1, 3*want/2)
		}
		tick()
		a := send(refusal(t), http.MethodPost, hs.URL+"/v1/tickets", `{"player_id":"c","skill":1650,"region":"eu"}`)
		checkRefused(t, "the next second's first POST", a, want, 3*want)
		if got := metric(t, hs.URL, "quickmatch_frontend_overload_retry_after_seconds"); got != float64(want) {
			t.Fatalf("Retry-After gauge %v, want %d", got, want)
		}
	}
}

// checkRefused fails unless a is an overload refusal whose Retry-After is
// lo to hi seconds.
func checkRefused(t *testing.T, what string, a answer, lo, hi int) {
	t.Helper()
	retry, err := strconv.Atoi(a.hdr.Get("Retry-After"))
	if a.code != http.StatusServiceUnavailable || err != nil || retry < lo || retry > hi {
		t.Fatalf("%s: %d, Retry-After %q; want 503 with %d-%d", what, a.code, a.hdr.Get("Retry-After"), lo, hi)
	}
}

// Past the limit, a keyed POST whose client says it repeats one
// (Quickmatch-Repeat) is answered from the ticket an earlier attempt
// made, where it was refused before its key was read (chaos S75: a
// client whose first POST was cut short was refused until it gave up on
// its matched ticket); one whose key made none is refused for overload.
// A POST that does not say so, or names no key, is refused without a
// look-up, and the repeats served at once are bounded (here one).
func TestOverloadServesRepeatsOfTicketsMade(t *testing.T) {
	t.Parallel()
	cfg, tick := twoAtOnceTurned()
	h, hs := fullFrontend(t, cfg, slog.New(slog.DiscardHandler))
	// Two seconds of ten refusals each: the overload's Retry-After is
	// 4 s now, 4-12 with its jitter.
	for range 2 {
		for range 10 {
			send(refusal(t), http.MethodPost, hs.URL+"/v1/tickets", `{"player_id":"c","skill":1650,"region":"eu"}`)
		}
		tick()
	}
	post := func(ctx context.Context, hdr map[string]string) answer {
		return sendWith(ctx, http.MethodPost, hs.URL+"/v1/tickets", hdr, `{"player_id":"c","skill":1650,"region":"eu"}`)
	}
	const key, repeat = "Idempotency-Key", "Quickmatch-Repeat"
	if a := post(refusal(t), map[string]string{key: "made", repeat: "1"}); a.code != http.StatusAccepted || a.body["ticket_id"] != "made" || a.body["status"] != "matched" {
		t.Fatalf("repeat of a ticket made: %d %v %v, want 202 with its ticket", a.code, a.body, a.err)
	}
	for what, hdr := range map[string]map[string]string{
		"repeat of a key that made nothing": {key: "none", repeat: "1"},
		"keyed POST not said to repeat":     {key: "made"},
		"keyed POST said not to repeat":     {key: "made", repeat: "0"},
		"repeat without a key":              {repeat: "1"},
	} {
		checkRefused(t, what, post(refusal(t), hdr), 4, 12) // the overload's wait: no ticket of theirs is known
	}

	inSlot := make(chan answer, 1)
	go func() { inSlot <- post(t.Context(), map[string]string{key: "held", repeat: "1"}) }()
	<-h.entered
	// Its ticket may exist: told 1-3 s, not the overload's 4-12.
	checkOverloaded(t, "a repeat while the one repeat's slot is taken", post(refusal(t), map[string]string{key: "made", repeat: "1"}))
	h.mu.Lock()
	asked := slices.Clone(h.repeats)
	h.mu.Unlock()
	if want := []string{"made", "none", "held"}; !slices.Equal(asked, want) {
		t.Fatalf("looked up %q, want %q", asked, want)
	}

	close(h.releaseRepeat)
	checkRefused(t, "the held repeat, of a key that made nothing", <-inSlot, 4, 12)
	if a := post(refusal(t), map[string]string{key: "made", repeat: "1"}); a.code != http.StatusAccepted || a.body["ticket_id"] != "made" {
		t.Fatalf("repeat once the slot is given back: %d %v", a.code, a.body)
	}
	for outcome, want := range map[string]float64{"answered": 2, "no_ticket": 2, "no_slot": 1, "failed": 0} {
		if got := metric(t, hs.URL, `quickmatch_frontend_overload_repeats_total{outcome="`+outcome+`"}`); got != want {
			t.Fatalf("repeats past the limit %s: %v, want %v", outcome, got, want)
		}
	}
}

// A repeat answered past the limit takes back the refusal counted for
// it (admission.Slot.Answered): its client will not come back, so the
// refused are not told to wait for it. Two seconds of five refusals
// (0 admissions), four of them repeats answered: 1-3 s; counted, the
// wait doubled to 4 s (4-12 with its jitter).
func TestOverloadRepeatsAnsweredDoNotLengthenTheWait(t *testing.T) {
	t.Parallel()
	cfg, tick := twoAtOnceTurned()
	_, hs := fullFrontend(t, cfg, slog.New(slog.DiscardHandler))
	tick() // a window with no admission in it
	post := func(hdr map[string]string) answer {
		return sendWith(refusal(t), http.MethodPost, hs.URL+"/v1/tickets", hdr, `{"player_id":"c","skill":1650,"region":"eu"}`)
	}
	for range 2 {
		for range 4 {
			if a := post(map[string]string{"Idempotency-Key": "made", "Quickmatch-Repeat": "1"}); a.code != http.StatusAccepted {
				t.Fatalf("repeat of a ticket made: %d %v %v, want 202", a.code, a.body, a.err)
			}
		}
		checkOverloaded(t, "a new player's POST", post(nil))
		tick()
	}
	checkOverloaded(t, "a new player's POST after two seconds of answered repeats", post(nil))
}

// Each move of the overload refusal's Retry-After is in the frontend's
// log (admission.Config.Log, which New fills in): the gauge is sampled.
func TestOverloadRetryAfterMovesAreLogged(t *testing.T) {
	t.Parallel()
	cfg, tick := twoAtOnceTurned()
	var buf testkit.SyncBuffer
	_, hs := fullFrontend(t, cfg, slog.New(slog.NewTextHandler(&buf, nil)))
	for range 10 {
		send(refusal(t), http.MethodPost, hs.URL+"/v1/tickets", `{"player_id":"c","skill":1650,"region":"eu"}`)
	}
	tick()
	checkRefused(t, "a POST after a second of ten refusals", send(refusal(t), http.MethodPost, hs.URL+"/v1/tickets", `{"player_id":"c","skill":1650,"region":"eu"}`), 2, 6)
	if got := buf.String(); !strings.Contains(got, `msg="overload Retry-After moved" retry_after_seconds=2 was_seconds=1`) {
		t.Fatalf("frontend's log:\n%s\nwant the Retry-After's move from 1 to 2 s", got)
	}
}

// A repeat that came while a slot was free, and found none once its body
// was in (the limit filled meanwhile), is served in a repeat slot too,
// not refused with the overload's wait (review R2).
func TestOverloadServesARepeatThatFoundTheLimitFullAfterItsBody(t *testing.T) {
	t.Parallel()
	h := &heldTickets{entered: make(chan string, 8), release: make(chan struct{}), releaseRepeat: make(chan struct{})}
	arrived := make(chan struct{}, 1)
	hs := heldFrontend(t, h, twoAtOnce, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Quickmatch-Repeat") != "" {
				arrived <- struct{}{}
			}
			next.ServeHTTP(w, r)
		})
	})
	first := postInBackground(t.Context(), hs.URL, "a")
	<-h.entered
	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.Close() })
	req, err := http.NewRequestWithContext(refusal(t), http.MethodPost, hs.URL+"/v1/tickets", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Idempotency-Key", "made")
	req.Header.Set("Quickmatch-Repeat", "1")
	answered := make(chan answer, 1)
	go func() {
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			answered <- answer{err: err}
			return
		}
		defer res.Body.Close()
		a := answer{code: res.StatusCode, hdr: res.Header}
		a.err = json.NewDecoder(res.Body).Decode(&a.body)
		answered <- a
	}()
	if _, err := pw.Write([]byte(`{"player_id":"c",`)); err != nil {
		t.Fatal(err)
	}
	<-arrived // its handler runs, and reads its body: the limit was not full
	second := postInBackground(t.Context(), hs.URL, "b")
	<-h.entered // the limit is full now
	if _, err := pw.Write([]byte(`"skill":1650,"region":"eu"}`)); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	if a := <-answered; a.code != http.StatusAccepted || a.body["ticket_id"] != "made" {
		t.Fatalf("repeat whose body came after the limit filled: %d %v %v, want 202 with its ticket", a.code, a.body, a.err)
	}
	close(h.release)
	<-first
	<-second
}
