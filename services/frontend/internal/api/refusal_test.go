package api_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/identity"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/ops"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/admission"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/api"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/tickets"
)

// countingAuth is a token verifier that counts its verifications. A
// token "p:<player>" is that player's; "hold" waits in Verify until held
// is closed (as a verification behind a busy CPU), "hang" until its
// context ends (10 s at most, then it passes), as a token naming a key
// id the verifier must read its JWKS for; anything else is refused. With sig set, every
// verification checks one Ed25519 signature, what a real token costs.
type countingAuth struct {
	calls   atomic.Int64
	entered chan struct{}
	held    chan struct{}
	sig     *signed
}

type signed struct {
	pub      ed25519.PublicKey
	msg, sig []byte
}

func newSigned() *signed {
	pub, priv, _ := ed25519.GenerateKey(nil)
	msg := []byte(`{"sub":"p1","aud":"quickmatch","exp":1893456000}`)
	return &signed{pub: pub, msg: msg, sig: ed25519.Sign(priv, msg)}
}

var errBadToken = errors.New("test: bad token")

func (c *countingAuth) Verify(ctx context.Context, raw string) (identity.Caller, error) {
	c.calls.Add(1)
	if c.sig != nil && !ed25519.Verify(c.sig.pub, c.sig.msg, c.sig.sig) {
		return identity.Caller{}, errBadToken
	}
	switch {
	case raw == "hold":
		c.entered <- struct{}{}
		<-c.held
		return identity.Caller{PlayerID: "held", Subject: "held"}, nil
	case raw == "hang":
		c.entered <- struct{}{}
		select {
		case <-ctx.Done():
			return identity.Caller{}, ctx.Err()
		case <-time.After(10 * time.Second): // nothing bounded the wait
			return identity.Caller{PlayerID: "hung", Subject: "hung"}, nil
		}
	case strings.HasPrefix(raw, "p:"):
		p := strings.TrimPrefix(raw, "p:")
		return identity.Caller{PlayerID: p, Subject: p}, nil
	}
	if raw == "" {
		return identity.Caller{}, identity.ErrNoToken
	}
	return identity.Caller{}, errBadToken
}

// authedHandler is the API over h with identity on (auth), overload
// control adm, and cfg's other fields.
func authedHandler(tb testing.TB, h *heldTickets, auth *countingAuth, cfg api.Config) http.Handler {
	tb.Helper()
	done := make(chan struct{})
	tb.Cleanup(func() { close(done) })
	var ready ops.Readiness
	ready.Set(true)
	cfg.Auth = auth
	handler, err := api.New(cfg, h, followed{}, slog.New(slog.DiscardHandler), &ready, prometheus.NewRegistry(), done)
	if err != nil {
		tb.Fatal(err)
	}
	return handler
}

func authedFrontend(t *testing.T, h *heldTickets, auth *countingAuth, cfg api.Config) *httptest.Server {
	t.Helper()
	hs := httptest.NewServer(authedHandler(t, h, auth, cfg))
	t.Cleanup(hs.Close)
	return hs
}

func sendAs(ctx context.Context, method, url, token, body string) answer {
	var hdr map[string]string
	if token != "" {
		hdr = map[string]string{"Authorization": "Bearer " + token}
	}
	return sendWith(ctx, method, url, hdr, body)
}

const eu = `{"skill":1650,"region":"eu"}`

// A creation's slot is taken before its token is verified: while two
// creations (the limit) are being verified, a third POST is refused at
// once with 503 overloaded and costs no verification, and so is a
// WebSocket's. (Checking the limit before the token and taking the slot
// after, as before, let every request that came while the verifications
// ran pass the check, pay its signature, and be refused or admitted past
// the limit after.) The two are admitted once verified, and give their
// slots back.
func TestOverloadRefusesBeforeVerifyingTheToken(t *testing.T) {
	t.Parallel()
	h := &heldTickets{entered: make(chan string, 8), release: make(chan struct{})}
	close(h.release)
	auth := &countingAuth{entered: make(chan struct{}, 8), held: make(chan struct{})}
	hs := authedFrontend(t, h, auth, api.Config{Admission: twoAtOnce})
	verified := sync.OnceFunc(func() { close(auth.held) })
	t.Cleanup(verified) // before the server closes: it waits for its handlers
	held := make([]chan answer, 2)
	for i := range held {
		held[i] = make(chan answer, 1)
		go func() { held[i] <- sendAs(t.Context(), http.MethodPost, hs.URL+"/v1/tickets", "hold", eu) }()
	}
	for range held {
		<-auth.entered
	}
	checkOverloaded(t, "a POST while two are verified", sendAs(refusal(t), http.MethodPost, hs.URL+"/v1/tickets", "p:c", eu))
	conn, res, err := websocket.DefaultDialer.DialContext(refusal(t), "ws"+strings.TrimPrefix(hs.URL, "http")+"/ws/events",
		http.Header{"Authorization": {"Bearer p:d"}})
	if err == nil {
		conn.Close()
		t.Fatal("/ws/events: upgraded while two are verified")
	}
	if res == nil || res.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("/ws/events while two are verified: %v %v, want 503", res, err)
	}
	if n := auth.calls.Load(); n != 2 {
		t.Fatalf("%d verifications, want 2: a refused creation's token was verified", n)
	}
	verified()
	for i, c := range held {
		if a := <-c; a.code != http.StatusAccepted {
			t.Fatalf("held creation %d: %d %v, want 202", i, a.code, a.err)
		}
	}
	if in := metric(t, hs.URL, "quickmatch_frontend_creations_in_flight"); in != 0 {
		t.Fatalf("%v creations in flight after all ended", in)
	}
}

// Every way a creation ends before or in its ticket service gives its
// slot back. With a limit of one, a slot left taken would refuse the
// good creation sent after each case.
func TestOverloadGivesTheSlotBackOnEveryPath(t *testing.T) {
	t.Parallel()
	h := &heldTickets{entered: make(chan string, 64), release: make(chan struct{})}
	close(h.release)
	auth := &countingAuth{entered: make(chan struct{}, 8), held: make(chan struct{})}
	one := admission.Config{Target: time.Hour, Min: 1, Max: 1}
	hs := authedFrontend(t, h, auth, api.Config{Admission: one, RatePerSecond: 0.001, RateBurst: 4, BodyTimeout: 300 * time.Millisecond})
	post := func(ctx context.Context, token, body string) answer {
		return sendAs(ctx, http.MethodPost, hs.URL+"/v1/tickets", token, body)
	}
	tests := []struct {
		name string
		do   func() answer
		want int
	}{
		{"no token", func() answer { return post(t.Context(), "", eu) }, 401},
		{"bad token", func() answer { return post(t.Context(), "forged", eu) }, 401},
		{"rate limited", func() answer {
			for range 4 { // the burst
				if a := post(t.Context(), "p:rl", eu); a.code != http.StatusAccepted {
					return a
				}
				<-h.entered
			}
			return post(t.Context(), "p:rl", eu)
		}, 429},
		{"malformed body", func() answer { return post(t.Context(), "p:m", `{"skill":`) }, 400},
		{"body too large", func() answer { return post(t.Context(), "p:l", `{"region":"`+strings.Repeat("a", 70000)+`"}`) }, 413},
		{"refused by the ticket service", func() answer { return post(t.Context(), "p:v", `{"skill":1,"region":"mars"}`) }, 400},
		{"slow body", func() answer { return slowPost(t, hs.URL, "p:s") }, 408},
		// No token: refused before its body is read (else 413).
		{"no token, body too large", func() answer { return post(t.Context(), "", `{"region":"`+strings.Repeat("a", 70000)+`"}`) }, 401},
		{"a verification that waits (a JWKS read)", func() answer { return post(t.Context(), "hang", eu) }, 401},
		{"client gone while verified", func() answer {
			ctx, cancel := context.WithCancel(t.Context())
			go func() {
				<-auth.entered
				cancel()
			}()
			return post(ctx, "hang", eu)
		}, 0},
	}
	for i, tt := range tests {
		if a := tt.do(); a.code != tt.want {
			t.Fatalf("%s: %d %v, want %d", tt.name, a.code, a.err, tt.want)
		}
		testkit.Eventually(t, 5*time.Second, func() bool { return metric(t, hs.URL, "quickmatch_frontend_creations_in_flight") == 0 },
			tt.name+": its slot was not given back")
		if a := post(t.Context(), "p:ok"+string(rune('a'+i)), eu); a.code != http.StatusAccepted {
			t.Fatalf("after %s: a good creation got %d %v", tt.name, a.code, a.err)
		}
		<-h.entered
	}
}

// slowPost sends a creation whose body never ends.
func slowPost(t *testing.T, base, token string) answer {
	t.Helper()
	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.Close() })
	go func() { _, _ = pw.Write([]byte(`{"skill":`)) }()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, base+"/v1/tickets", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return answer{err: err}
	}
	defer res.Body.Close()
	return answer{code: res.StatusCode}
}

// nopWriter is a ResponseWriter that keeps nothing but the status.
type nopWriter struct {
	h    http.Header
	code int
}

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *nopWriter) WriteHeader(code int)        { w.code = code }

// rewind is a request body read again from its start each time.
type rewind struct{ *strings.Reader }

func (rewind) Close() error { return nil }

// BenchmarkRefusedCreation is the frontend's cost of a POST refused for
// overload (two creations held in flight at a limit of two), its token
// checked by a verifier that costs one Ed25519 signature as a real one:
// what every refused request costs past capacity.
func BenchmarkRefusedCreation(b *testing.B) {
	h := &heldTickets{entered: make(chan string, 8), release: make(chan struct{})}
	auth := &countingAuth{sig: newSigned()}
	handler := authedHandler(b, h, auth, api.Config{Admission: twoAtOnce})
	defer close(h.release)
	for range 2 {
		req := httptest.NewRequest(http.MethodPost, "/v1/tickets", strings.NewReader(eu))
		req.Header.Set("Authorization", "Bearer p:held")
		go handler.ServeHTTP(httptest.NewRecorder(), req)
		<-h.entered
	}
	body := rewind{strings.NewReader(eu)}
	req := httptest.NewRequest(http.MethodPost, "/v1/tickets", body)
	req.Header.Set("Authorization", "Bearer p:c")
	w := &nopWriter{h: http.Header{}}
	auth.calls.Store(0)
	b.ReportAllocs()
	for b.Loop() {
		_, _ = body.Seek(0, io.SeekStart)
		clear(w.h)
		handler.ServeHTTP(w, req)
		if w.code != http.StatusServiceUnavailable {
			b.Fatalf("status %d, want 503", w.code)
		}
	}
	b.ReportMetric(float64(auth.calls.Load())/float64(b.N), "verifies/op")
}

// slowTickets creates every ticket in a fixed time, as a broker at its
// capacity.
type slowTickets struct {
	*heldTickets
	took time.Duration
}

func (s slowTickets) Create(context.Context, identity.Caller, tickets.Request, string) (tickets.View, error) {
	time.Sleep(s.took)
	return tickets.View{TicketID: "t", Status: events.StatusQueued, Region: "eu", Tier: "gold", Mode: "1v1"}, nil
}

// BenchmarkOverloadedCreations offers creations far past capacity (64
// clients at once against two slots of 1 ms creations) and reports what
// the frontend spends per request: ns/op and allocs are per request,
// admitted or refused; verifies/refusal is the tokens verified beyond
// the admitted ones' own, per refused request (the signature checks the
// refusals cost).
func BenchmarkOverloadedCreations(b *testing.B) {
	auth := &countingAuth{sig: newSigned()}
	done := make(chan struct{})
	defer close(done)
	var ready ops.Readiness
	ready.Set(true)
	t := slowTickets{heldTickets: &heldTickets{}, took: time.Millisecond}
	handler, err := api.New(api.Config{Auth: auth, Admission: twoAtOnce}, t, followed{}, slog.New(slog.DiscardHandler), &ready, prometheus.NewRegistry(), done)
	if err != nil {
		b.Fatal(err)
	}
	var admitted, refused atomic.Int64
	b.SetParallelism(32)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		body := rewind{strings.NewReader(eu)}
		req := httptest.NewRequest(http.MethodPost, "/v1/tickets", body)
		req.Header.Set("Authorization", "Bearer p:c")
		w := &nopWriter{h: http.Header{}}
		for pb.Next() {
			_, _ = body.Seek(0, io.SeekStart)
			clear(w.h)
			handler.ServeHTTP(w, req)
			switch w.code {
			case http.StatusAccepted:
				admitted.Add(1)
			case http.StatusServiceUnavailable:
				refused.Add(1)
			default:
				b.Errorf("status %d", w.code)
			}
		}
	})
	if n := refused.Load(); n > 0 {
		b.ReportMetric(float64(auth.calls.Load()-admitted.Load())/float64(n), "verifies/refusal")
	}
	b.ReportMetric(float64(refused.Load())/float64(admitted.Load()+refused.Load()), "refused/op")
}

// A repeat served past the limit (Quickmatch-Repeat) is checked as any
// creation: one with no token is refused for overload unread (no
// verification), a bad token is a 401, a body too large a 413, a
// malformed one a 400, and a player past its creations' rate a 429, none
// looked up; a good one is answered from its ticket.
func TestOverloadChecksARepeatsTokenAndRateLimit(t *testing.T) {
	t.Parallel()
	h := &heldTickets{entered: make(chan string, 8), release: make(chan struct{})}
	auth := &countingAuth{entered: make(chan struct{}, 8), held: make(chan struct{})}
	hs := authedFrontend(t, h, auth, api.Config{Admission: twoAtOnce, CreateRatePerSecond: 0.001, CreateRateBurst: 1})
	held := make([]chan answer, 2)
	for i, token := range []string{"p:a", "p:b"} {
		held[i] = make(chan answer, 1)
		go func() { held[i] <- sendAs(t.Context(), http.MethodPost, hs.URL+"/v1/tickets", token, eu) }()
	}
	for range held {
		<-h.entered
	}
	repeatWith := func(token, body string) answer {
		hdr := map[string]string{"Idempotency-Key": "made", "Quickmatch-Repeat": "1"}
		if token != "" {
			hdr["Authorization"] = "Bearer " + token
		}
		return sendWith(refusal(t), http.MethodPost, hs.URL+"/v1/tickets", hdr, body)
	}
	repeatAs := func(token string) answer { return repeatWith(token, eu) }
	checkOverloaded(t, "a repeat with no token", repeatAs(""))
	if n := auth.calls.Load(); n != 2 {
		t.Fatalf("%d verifications, want the two held creations': a repeat with no token was verified", n)
	}
	if a := repeatAs("forged"); a.code != http.StatusUnauthorized {
		t.Fatalf("a repeat with a bad token: %d %v, want 401", a.code, a.body)
	}
	if a := repeatWith("p:d", `{"region":"`+strings.Repeat("a", 70000)+`"}`); a.code != http.StatusRequestEntityTooLarge {
		t.Fatalf("a repeat with a body too large: %d %v, want 413", a.code, a.body)
	}
	if a := repeatWith("p:d", `{"skill":`); a.code != http.StatusBadRequest {
		t.Fatalf("a repeat with a malformed body: %d %v, want 400", a.code, a.body)
	}
	if a := repeatAs("p:c"); a.code != http.StatusAccepted || a.body["ticket_id"] != "made" {
		t.Fatalf("a repeat of a ticket made: %d %v, want 202 with it", a.code, a.body)
	}
	if a := repeatAs("p:c"); a.code != http.StatusTooManyRequests {
		t.Fatalf("a repeat past its player's rate: %d %v, want 429", a.code, a.body)
	}
	h.mu.Lock()
	asked := slices.Clone(h.repeats)
	h.mu.Unlock()
	if !slices.Equal(asked, []string{"made"}) {
		t.Fatalf("looked up %q, want only the good repeat's", asked)
	}
	close(h.release)
	for _, c := range held {
		<-c
	}
}
