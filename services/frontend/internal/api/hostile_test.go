package api_test

// Hostile clients (issue #15): one test per defect a player, a buggy
// client or a careless proxy setup could exploit at the frontend.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/netip"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/identity"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/api"
)

// Queueing with someone else's player_id superseded their ticket: the
// player id of a player token comes from the token, never from the body.
func TestHostileQueueAsAnotherPlayer(t *testing.T) {
	t.Parallel()
	e := start(t, options{})
	for name, body := range map[string]string{
		"player_id": `{"player_id":"alice","skill":1650,"region":"eu"}`,
		"party":     `{"party":["alice","carol"],"mode":"2v2","skill":1650,"region":"eu"}`,
	} {
		code, out, _ := e.do(t, http.MethodPost, "/v1/tickets", body, e.bearer(t, "mallory"))
		if code != http.StatusForbidden {
			t.Errorf("mallory queued as %s of alice: %d %v", name, code, out)
		}
	}
	if n := e.queued(t); n != 0 {
		t.Fatalf("%d tickets queued for players the caller is not", n)
	}
	// The caller's own id comes from the token, alone or as a party of one.
	if code, out, _ := e.do(t, http.MethodPost, "/v1/tickets", `{"skill":1650,"region":"eu"}`, e.bearer(t, "mallory")); code != 202 {
		t.Fatalf("player from the token: %d %v", code, out)
	}
	if code, out, _ := e.do(t, http.MethodPost, "/v1/tickets", `{"party":["mallory"],"skill":1650,"region":"eu"}`, e.bearer(t, "mallory")); code != 202 {
		t.Fatalf("a party of the caller alone: %d %v", code, out)
	}
	// A game backend (server role) queues for anyone.
	if code, out, _ := e.do(t, http.MethodPost, "/v1/tickets", `{"player_id":"alice","skill":1650,"region":"eu"}`, e.bearer(t, "")); code != 202 {
		t.Fatalf("server role: %d %v", code, out)
	}
}

// Any caller holding a ticket id could read, follow or cancel it. Now a
// caller who is not one of its players gets exactly what an unknown id
// gets, on every entry point, and a caller without a token gets 401.
func TestHostileTicketIDHolder(t *testing.T) {
	t.Parallel()
	e := start(t, options{})
	_, body := e.post(t, `{"player_id":"alice","skill":1650,"region":"eu"}`, "")
	id := body["ticket_id"].(string)
	mallory := e.bearer(t, "mallory")
	for _, r := range []struct{ method, path string }{
		{http.MethodGet, "/v1/tickets/" + id},
		{http.MethodGet, "/v1/tickets/" + id + "/events"},
		{http.MethodDelete, "/v1/tickets/" + id},
	} {
		code, out, _ := e.do(t, r.method, r.path, "", mallory)
		_, unknown, _ := e.do(t, r.method, strings.Replace(r.path, id, "r0123456789abcdef01234567", 1), "", mallory)
		if code != http.StatusNotFound || fmt.Sprint(out) != fmt.Sprint(unknown) {
			t.Errorf("another player's %s %s: %d %v (an unknown id: %v)", r.method, r.path, code, out, unknown)
		}
		code, out, hdr := e.do(t, r.method, r.path, "", map[string]string{"Authorization": ""})
		if code != http.StatusUnauthorized || !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("no token: %s %s: %d %v %q", r.method, r.path, code, out, hdr.Get("WWW-Authenticate"))
		}
	}
	// A forged token is no token.
	forged := e.token(t, "alice")
	forged = forged[:len(forged)-4] + "AAAA"
	if code, _, hdr := e.do(t, http.MethodGet, "/v1/tickets/"+id, "", map[string]string{"Authorization": "Bearer " + forged}); code != 401 || !strings.Contains(hdr.Get("WWW-Authenticate"), "invalid_token") {
		t.Errorf("forged token: %d %q", code, hdr.Get("WWW-Authenticate"))
	}
	if _, b := e.get(t, "/v1/tickets/"+id); b["status"] != "queued" {
		t.Fatalf("alice's ticket after mallory's attempts: %v", b)
	}
	// Mallory cannot follow it over a WebSocket either: /ws and /ws/events
	// always make the caller's own ticket.
	q := "?player_id=alice&skill=1650&region=eu&access_token=" + e.token(t, "mallory")
	if _, res, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(e.http.URL, "http")+"/ws/events"+q, nil); err == nil || res.StatusCode != http.StatusForbidden {
		t.Fatalf("mallory's WebSocket for alice: %v %v", err, res)
	}
	// Alice and a game backend still can.
	if code, b, _ := e.do(t, http.MethodGet, "/v1/tickets/"+id, "", e.bearer(t, "")); code != 200 || b["status"] != "queued" {
		t.Fatalf("server role GET: %d %v", code, b)
	}
	if code, b, _ := e.do(t, http.MethodDelete, "/v1/tickets/"+id, "", nil); code != 200 || b["status"] != "cancelled" {
		t.Fatalf("alice's DELETE: %d %v", code, b)
	}
}

// Idempotency keys were global: a second client sending the same key and
// body received the first client's assignment, join token included.
func TestHostileIdempotencyKeyIsPerCaller(t *testing.T) {
	t.Parallel()
	e := start(t, options{})
	body := `{"player_id":"alice","skill":1650,"region":"eu"}`
	_, first, _ := e.do(t, http.MethodPost, "/v1/tickets", body, map[string]string{"Idempotency-Key": "k1"})
	id := first["ticket_id"].(string)
	e.allocate(t, id, "alice")
	code, out, _ := e.do(t, http.MethodPost, "/v1/tickets", body, map[string]string{"Idempotency-Key": "k1", "Authorization": "Bearer " + e.token(t, "mallory")})
	if out["ticket_id"] == id || out["assignment"] != nil {
		t.Fatalf("mallory, replaying alice's key and body, got %d %v", code, out)
	}
	// The same key from two players names two tickets.
	mine := `{"skill":1650,"region":"eu"}`
	_, a, _ := e.do(t, http.MethodPost, "/v1/tickets", mine, map[string]string{"Idempotency-Key": "k2", "Authorization": "Bearer " + e.token(t, "alice")})
	code, m, _ := e.do(t, http.MethodPost, "/v1/tickets", mine, map[string]string{"Idempotency-Key": "k2", "Authorization": "Bearer " + e.token(t, "mallory")})
	if code != 202 || a["ticket_id"] == nil || a["ticket_id"] == m["ticket_id"] {
		t.Fatalf("one key, two players: alice %v, mallory %d %v", a, code, m)
	}
	// A client-chosen ticket id names a ticket for everyone, so only the
	// server role may choose one.
	code, out, _ = e.do(t, http.MethodPost, "/v1/tickets", `{"ticket_id":"`+id+`","skill":1650,"region":"eu"}`, e.bearer(t, "mallory"))
	if code != http.StatusBadRequest || out["ticket_id"] == id {
		t.Fatalf("a player choosing an existing ticket id: %d %v", code, out)
	}
}

// Once a player had a newer ticket, GET and SSE reported the older,
// already decided ticket as queued forever (only the player's latest
// result was read).
func TestHostileOlderTicketKeepsItsStatus(t *testing.T) {
	t.Parallel()
	e := start(t, options{})
	_, b := e.post(t, `{"player_id":"alice","skill":1650,"region":"eu"}`, "")
	assigned := b["ticket_id"].(string)
	e.allocate(t, assigned, "alice")
	_, b = e.post(t, `{"player_id":"alice","skill":1650,"region":"eu"}`, "")
	cancelled := b["ticket_id"].(string)
	if code, _, _ := e.do(t, http.MethodDelete, "/v1/tickets/"+cancelled, "", nil); code != 200 {
		t.Fatal("cancel")
	}
	// A ticket claimed by a match whose result is gone from the stream
	// still reads as matched, from its claim.
	_, b = e.post(t, `{"player_id":"alice","skill":1650,"region":"eu"}`, "")
	claimedOnly := b["ticket_id"].(string)
	if won, _, err := e.claims.Claim(t.Context(), claimedOnly, events.MatchOwner("m9")); !won || err != nil {
		t.Fatal(err)
	}
	// The newest ticket supersedes none of these: each is decided.
	_, b = e.post(t, `{"player_id":"alice","skill":1650,"region":"eu"}`, "")
	latest := b["ticket_id"].(string)
	e.http.Close() // another instance answers, from JetStream alone
	e.http = newFrontend(t, e, options{})
	for id, want := range map[string]string{assigned: "assigned", cancelled: "cancelled", latest: "queued", claimedOnly: "matched"} {
		if code, b := e.get(t, "/v1/tickets/"+id); code != 200 || b["status"] != want {
			t.Errorf("GET of ticket %s: %d %v, want %s", id, code, b, want)
		}
	}
	for id, want := range map[string]sseEvent{assigned: {"3", "assigned"}, cancelled: {"3", "cancelled"}} {
		r, closeIt := openEvents(t, e, id)
		got := readSSE(t, r, 1)
		closeIt()
		if got[0] != want {
			t.Errorf("events of ticket %s: %v, want %v", id, got, want)
		}
	}
}

// With trust-proxy on, the leftmost X-Forwarded-For entry, which the
// client writes, keyed the rate limit: a new made-up address per request
// was never limited. The key is the rightmost address no trusted proxy
// added, and only a trusted proxy's header is believed at all.
func TestHostileForwardedForDoesNotKeyTheLimit(t *testing.T) {
	t.Parallel()
	e := start(t, options{insecure: true, api: api.Config{
		RatePerSecond: 0.1, RateBurst: 2, TrustProxy: true,
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("10.0.0.0/8")},
	}})
	post := func(i int, xff string) int {
		code, _, _ := e.do(t, http.MethodPost, "/v1/tickets", fmt.Sprintf(`{"player_id":"p%d","skill":1650,"region":"eu"}`, i), map[string]string{"X-Forwarded-For": xff})
		return code
	}
	// The client 203.0.113.7 prepends a new made-up address each time; the
	// load balancer (10.0.0.2) appended the real one.
	var codes []int
	for i := range 4 {
		codes = append(codes, post(i, fmt.Sprintf("198.51.100.%d, 203.0.113.7, 10.0.0.2", i)))
	}
	if codes[2] != http.StatusTooManyRequests || codes[3] != http.StatusTooManyRequests {
		t.Fatalf("spoofed leftmost X-Forwarded-For escaped the limit: %v", codes)
	}
	// Another real client behind the same proxy has its own budget.
	if code := post(9, "203.0.113.8, 10.0.0.2"); code != 202 {
		t.Fatalf("another client: %d", code)
	}
}

// The rate limit keys on the player when the caller is authenticated: two
// players behind one address (a NAT) do not share a budget, and one player
// cannot escape it by changing addresses.
func TestRateLimitKeysOnThePlayer(t *testing.T) {
	t.Parallel()
	e := start(t, options{api: api.Config{RatePerSecond: 0.1, RateBurst: 2}})
	for i, p := range []string{"alice", "alice", "bob", "bob"} {
		if code, out, _ := e.do(t, http.MethodPost, "/v1/tickets", `{"skill":1650,"region":"eu"}`, e.bearer(t, p)); code != 202 {
			t.Fatalf("request %d of %s: %d %v", i, p, code, out)
		}
	}
	if code, _, _ := e.do(t, http.MethodPost, "/v1/tickets", `{"skill":1650,"region":"eu"}`, e.bearer(t, "alice")); code != http.StatusTooManyRequests {
		t.Fatalf("alice's third request: %d", code)
	}
	// A game backend queueing for its players is not held to a player's
	// budget: it refused a party service's 21st request in a second.
	for i := range 10 {
		if code, out, _ := e.do(t, http.MethodPost, "/v1/tickets", fmt.Sprintf(`{"player_id":"p%d","skill":1650,"region":"eu"}`, i), e.bearer(t, "")); code != 202 {
			t.Fatalf("a game backend's request %d: %d %v", i, code, out)
		}
	}
}

// A slow request body held its handler and connection without limit.
func TestHostileSlowBodyIsCut(t *testing.T) {
	t.Parallel()
	e := start(t, options{api: api.Config{BodyTimeout: 300 * time.Millisecond}})
	c, err := net.Dial("tcp", strings.TrimPrefix(e.http.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /v1/tickets HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{\"skill\":", e.token(t, "alice"))
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer 3 s into a body that never ends (body timeout 300 ms): %v", err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusRequestTimeout {
		t.Fatalf("slow body: %d", res.StatusCode)
	}
}

// Over h2c, as the load tool and many game backends speak, a body that
// never ends is cut as over HTTP/1.1, and without a GOAWAY to the whole
// connection: the next request on it, a proxy's other client's, is
// served on it. Its 408 said "Connection: close", which Go's HTTP/2
// server takes for a GOAWAY.
func TestHostileSlowBodyIsCutOverH2C(t *testing.T) {
	t.Parallel()
	e := start(t, options{api: api.Config{BodyTimeout: 300 * time.Millisecond}, h2c: true})
	pr, pw := io.Pipe()
	defer pw.Close()
	go func() { _, _ = io.WriteString(pw, `{"skill":`) }()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.http.URL+"/v1/tickets", pr)
	req.Header.Set("Authorization", "Bearer "+e.token(t, "alice"))
	req.Header.Set("Content-Type", "application/json")
	c := h2cClient()
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("no answer 3 s into a body that never ends (body timeout 300 ms): %v", err)
	}
	res.Body.Close()
	if res.ProtoMajor != 2 || res.StatusCode != http.StatusRequestTimeout {
		t.Fatalf("slow body over %s: %d", res.Proto, res.StatusCode)
	}
	var reused bool
	trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }}
	next, _ := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodGet, e.http.URL+"/openapi.yaml", nil)
	if res, err = c.Do(next); err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if !reused {
		t.Fatal("the next request needed a new connection: the 408 closed the shared one")
	}
}

// One address could open any number of SSE streams (and WebSockets): each
// is a goroutine, a socket and a NATS subscription held for minutes.
func TestHostileStreamsPerClientAreCapped(t *testing.T) {
	t.Parallel()
	e := start(t, options{api: api.Config{MaxStreamsPerClient: 2}})
	_, b := e.post(t, `{"player_id":"alice","skill":1650,"region":"eu"}`, "")
	id := b["ticket_id"].(string)
	for range 2 {
		r, _ := openEvents(t, e, id)
		readSSE(t, r, 1)
	}
	code, out, hdr := e.do(t, http.MethodGet, "/v1/tickets/"+id+"/events", "", nil)
	if code != http.StatusTooManyRequests || hdr.Get("Retry-After") == "" {
		t.Fatalf("third stream of one client: %d %v", code, out)
	}
	// Refused before anything is read or followed: a stream past the
	// cap read the ticket's record and results (and tracked it) first.
	// Tickets this frontend does not follow, whose reads go to NATS.
	before := e.natsIn(t)
	for i := range 20 {
		path := fmt.Sprintf("/v1/tickets/r%024d/events", i)
		if code, _, _ := e.do(t, http.MethodGet, path, "", e.bearer(t, "alice")); code != http.StatusTooManyRequests {
			t.Fatalf("a stream past the cap: %d", code)
		}
	}
	if n := e.natsIn(t) - before; n >= 20 {
		t.Errorf("20 streams refused past the cap sent NATS %d messages", n)
	}
	if _, res, err := websocket.DefaultDialer.Dial(wsURL(t, e, "/ws/events?player_id=alice&skill=1650&region=eu"), nil); err == nil || res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("a WebSocket past the cap: %v %v", err, res)
	}
	// Another player has streams of their own.
	_, b = e.post(t, `{"player_id":"bob","skill":1650,"region":"eu"}`, "")
	r, _ := openEvents(t, e, b["ticket_id"].(string))
	readSSE(t, r, 1)
}

// The development issuer (make run) hands a loopback client a token the
// frontend accepts; the page uses it as the access_token of its stream.
func TestDevIssuerToken(t *testing.T) {
	t.Parallel()
	dev, err := identity.NewDevIssuer(filepath.Join(t.TempDir(), "dev.pem"), identity.DevIssuerName, identity.DevAudience)
	if err != nil {
		t.Fatal(err)
	}
	v, err := identity.New(t.Context(), identity.Config{Issuer: identity.DevIssuerName, Audience: identity.DevAudience, Keys: []identity.StaticKey{dev.Public()}})
	if err != nil {
		t.Fatal(err)
	}
	e := start(t, options{api: api.Config{Auth: v, DevIssuer: dev}})
	code, tok, _ := e.do(t, http.MethodPost, "/dev/token", `{"player_id":"tab1"}`, map[string]string{"Authorization": ""})
	if code != 200 || tok["player_id"] != "tab1" || tok["token"] == nil {
		t.Fatalf("POST /dev/token: %d %v", code, tok)
	}
	bearer := map[string]string{"Authorization": "Bearer " + tok["token"].(string)}
	code, b, _ := e.do(t, http.MethodPost, "/v1/tickets", `{"player_id":"tab1","skill":1650,"region":"eu"}`, bearer)
	if code != 202 {
		t.Fatalf("POST with a dev token: %d %v", code, b)
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, e.http.URL+"/v1/tickets/"+b["ticket_id"].(string)+"/events?access_token="+tok["token"].(string), nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if got := readSSE(t, bufio.NewReader(res.Body), 1); res.StatusCode != 200 || got[0].status != "queued" {
		t.Fatalf("events with access_token: %d %v", res.StatusCode, got)
	}
	// A test's own minter is not trusted by this frontend.
	if code, _, _ := e.do(t, http.MethodGet, "/v1/tickets/"+b["ticket_id"].(string), "", e.bearer(t, "tab1")); code != 401 {
		t.Fatalf("a token from an untrusted key: %d", code)
	}
}

// Queueing again, in another region, supersedes the player's waiting
// ticket before the 202: from then on the older one can never be matched
// (its claim is taken) and its players have been told why.
func TestHostileSecondTicketSupersedesBeforeTheAnswer(t *testing.T) {
	t.Parallel()
	e := start(t, options{})
	_, b := e.post(t, `{"player_id":"alice","skill":1650,"region":"eu"}`, "")
	older := b["ticket_id"].(string)
	_, b = e.post(t, `{"player_id":"alice","skill":1250,"region":"us"}`, "")
	newer := b["ticket_id"].(string)
	owner, err := e.claims.Owner(t.Context(), older)
	if err != nil || owner != events.OwnerSuperseded {
		t.Fatalf("claim of the older ticket after the newer one's 202: %q %v, want %q", owner, err, events.OwnerSuperseded)
	}
	if code, b := e.get(t, "/v1/tickets/"+older); code != 200 || b["status"] != "cancelled" || !strings.Contains(fmt.Sprint(b["reason"]), newer) {
		t.Fatalf("GET of the older ticket: %d %v, want cancelled, superseded by %s", code, b, newer)
	}
	if code, b := e.get(t, "/v1/tickets/"+newer); code != 200 || b["status"] != "queued" {
		t.Fatalf("GET of the newer ticket: %d %v", code, b)
	}
}

// A player's Traceparent and X-Correlation-Id travel with its ticket
// (and the correlation id on to its match): what is not well formed is
// not passed on, whatever its size (events.Meta.Bounded).
func TestMalformedTraceContextIsNotPassedOn(t *testing.T) {
	t.Parallel()
	e := start(t, options{})
	hdr := map[string]string{
		"Traceparent":      "00-" + strings.Repeat("a", 60<<10),
		"X-Correlation-Id": "two\tparts",
	}
	code, body, _ := e.do(t, http.MethodPost, "/v1/tickets", `{"player_id":"alice","mode":"1v1","skill":1650,"region":"eu"}`, hdr)
	if code != http.StatusAccepted {
		t.Fatalf("POST = %d %v", code, body)
	}
	st, _ := e.js.Stream(t.Context(), e.subj.TicketsStream())
	raw, err := st.GetLastMsgForSubject(t.Context(), "matchmaking.eu.gold")
	if err != nil {
		t.Fatal(err)
	}
	if tp := raw.Header.Get(events.HeaderTraceParent); tp != "" {
		t.Errorf("ticket published with a traceparent of %d bytes", len(tp))
	}
	if cid := raw.Header.Get(events.HeaderCorrelationID); cid == "" || strings.Contains(cid, "\t") {
		t.Errorf("ticket published with correlation id %q, want the frontend's own", cid)
	}
}

// A player named its own skill and attributes, and so played wherever it
// liked (a console player in the pc pool, a veteran among newcomers).
// With a ticket claim configured they are its token's: a request may
// repeat them, not change them, over POST and /ws alike.
func TestHostileSkillAndAttributesComeFromTheToken(t *testing.T) {
	t.Parallel()
	e := start(t, options{})
	v, err := identity.New(t.Context(), identity.Config{Issuer: identity.DevIssuerName, Audience: identity.DevAudience,
		Keys: []identity.StaticKey{e.minter.Public()}, TicketClaim: "qm"})
	if err != nil {
		t.Fatal(err)
	}
	e.http = newFrontend(t, e, options{api: api.Config{Auth: v}})
	tok, err := e.minter.Sign(jwt.MapClaims{"sub": "ann", "qm": map[string]any{
		"skill": 1650, "attributes": map[string]any{"strings": map[string]any{"platform": "console"}, "tags": []string{"newbie"}}}})
	if err != nil {
		t.Fatal(err)
	}
	hdr := map[string]string{"Authorization": "Bearer " + tok}
	for name, body := range map[string]string{
		"another skill":      `{"skill":2900,"region":"eu"}`,
		"another platform":   `{"region":"eu","attributes":{"strings":{"platform":"pc"},"tags":["newbie"]}}`,
		"no longer a newbie": `{"region":"eu","attributes":{"strings":{"platform":"console"}}}`,
	} {
		if code, out, _ := e.do(t, http.MethodPost, "/v1/tickets", body, hdr); code != http.StatusForbidden {
			t.Errorf("%s: %d %v", name, code, out)
		}
	}
	u := "ws" + strings.TrimPrefix(e.http.URL, "http") + "/ws?region=eu&skill=2900&access_token=" + url.QueryEscape(tok)
	if _, resp, err := websocket.DefaultDialer.Dial(u, nil); err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("/ws with another skill: %v %v", resp, err)
	}
	if n := e.queued(t); n != 0 {
		t.Fatalf("%d tickets queued with what the token does not say", n)
	}
	// Left out, or repeated (tags in any order), they are the token's.
	for _, body := range []string{`{"region":"eu"}`, `{"skill":1650,"region":"eu","attributes":{"tags":["newbie"],"strings":{"platform":"console"}}}`} {
		if code, out, _ := e.do(t, http.MethodPost, "/v1/tickets", body, hdr); code != http.StatusAccepted {
			t.Fatalf("%s: %d %v", body, code, out)
		}
		st, _ := e.js.Stream(t.Context(), e.subj.TicketsStream())
		raw, err := st.GetLastMsgForSubject(t.Context(), "matchmaking.eu.gold")
		if err != nil {
			t.Fatal(err)
		}
		tk, err := events.DecodeTicket(raw.Data)
		if err != nil || tk.PlayerID != "ann" || tk.Skill != 1650 || tk.Attributes.Strings["platform"] != "console" || !tk.Attributes.HasTag("newbie") {
			t.Fatalf("queued %s: %v", raw.Data, err)
		}
	}
}

// A player could create tickets at the request limit (20 a second), and
// each leaves records in NATS for over an hour whatever becomes of it:
// some 500,000 keys a player. A player's creations have a limit of their
// own, over POST and WebSocket alike; a game backend's do not.
func TestHostilePlayerCreationsAreLimited(t *testing.T) {
	t.Parallel()
	e := start(t, options{api: api.Config{CreateRatePerSecond: 0.01, CreateRateBurst: 3}})
	hdr := e.bearer(t, "mallory")
	for i := range 3 {
		if code, out, _ := e.do(t, http.MethodPost, "/v1/tickets", `{"skill":1650,"region":"eu"}`, hdr); code != http.StatusAccepted {
			t.Fatalf("creation %d: %d %v", i, code, out)
		}
	}
	code, out, h := e.do(t, http.MethodPost, "/v1/tickets", `{"skill":1650,"region":"eu"}`, hdr)
	if code != http.StatusTooManyRequests || h.Get("Retry-After") == "" {
		t.Fatalf("a fourth creation at once: %d %v %v", code, out, h)
	}
	if _, resp, err := websocket.DefaultDialer.Dial(wsURL(t, e, "/ws?region=eu&skill=1650&player_id=mallory"), nil); err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("a creation over /ws past the limit: %v %v", resp, err)
	}
	// Reads are not creations, and another player has a limit of its own.
	if code, _, _ := e.do(t, http.MethodGet, "/v1/tickets/nope", "", hdr); code != http.StatusNotFound {
		t.Fatalf("a read past the creation limit: %d", code)
	}
	if code, out, _ := e.do(t, http.MethodPost, "/v1/tickets", `{"skill":1650,"region":"eu"}`, e.bearer(t, "alice")); code != http.StatusAccepted {
		t.Fatalf("another player: %d %v", code, out)
	}
	for i := range 10 {
		if code, out, _ := e.do(t, http.MethodPost, "/v1/tickets", fmt.Sprintf(`{"player_id":"p%d","skill":1650,"region":"eu"}`, i), e.bearer(t, "")); code != http.StatusAccepted {
			t.Fatalf("a game backend's creation %d: %d %v", i, code, out)
		}
	}
}

// natsIn is how many messages e's NATS server has taken in.
func (e *env) natsIn(t *testing.T) int64 {
	t.Helper()
	v, err := e.srv.Varz(nil)
	if err != nil {
		t.Fatal(err)
	}
	return v.InMsgs
}

// A WebSocket client whose ticket a match holds (its cancel cannot end
// it) sent {"type":"cancel"} frames back to back, each a cancel of 4-6
// JetStream requests, at no limit. Now one a second a socket.
func TestHostileCancelFramesArePaced(t *testing.T) {
	t.Parallel()
	e := start(t, options{})
	c, read := dialEvents(t, e, "player_id=mallory&skill=1650&region=eu&mode=1v1")
	first := read()
	id, _ := first["ticket_id"].(string)
	owner := events.MatchOwner("m0123456789abcdef01234567")
	if won, _, err := e.claims.Claim(t.Context(), id, owner); err != nil || !won {
		t.Fatalf("claim %s for a match: %v %v", id, won, err)
	}
	before := e.natsIn(t)
	// A frame every 2 ms for half a second: frames that come while a
	// cancel is under way count as one, so a flood is paced by the
	// cancel's round trips, not by the frames.
	for range 250 {
		if err := c.WriteMessage(websocket.TextMessage, []byte(`{"type":"cancel"}`)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // the last frames read and handled
	if n := e.natsIn(t) - before; n > 100 {
		t.Fatalf("250 cancel frames in half a second sent NATS %d messages", n)
	}
	// The match fails and gives the ticket back; a cancel asked within
	// the second of the last is tried once it is over, not dropped.
	if err := e.claims.Release(t.Context(), []string{id}, owner); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteMessage(websocket.TextMessage, []byte(`{"type":"cancel"}`)); err != nil {
		t.Fatal(err)
	}
	if v := read(); v["status"] != "cancelled" {
		t.Fatalf("after a cancel asked too soon: %v", v)
	}
}
