package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/identity"
)

// load run with -token-key sends every player's own token on the POST and
// on its event stream, and the tokens pass a verifier that trusts the key.
func TestRunMintsATokenPerPlayer(t *testing.T) {
	t.Parallel()
	key := filepath.Join(t.TempDir(), "dev.pem")
	dev, err := identity.NewDevIssuer(key, identity.DevIssuerName, identity.DevAudience)
	if err != nil {
		t.Fatal(err)
	}
	v, err := identity.New(t.Context(), identity.Config{Issuer: identity.DevIssuerName, Audience: identity.DevAudience, Keys: []identity.StaticKey{dev.Public()}})
	if err != nil {
		t.Fatal(err)
	}
	var refused, streams atomic.Int64
	owners := map[string]string{}
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := v.Verify(r.Context(), identity.FromRequest(r))
		if err != nil {
			refused.Add(1)
			http.Error(w, `{"error":"unauthorized"}`, http.StatusUnauthorized)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		switch {
		case r.Method == http.MethodPost:
			var body struct {
				PlayerID string `json:"player_id"`
			}
			b, _ := io.ReadAll(r.Body)
			if json.Unmarshal(b, &body) != nil || body.PlayerID != c.PlayerID {
				http.Error(w, `{"error":"forbidden"}`, http.StatusForbidden)
				return
			}
			id := fmt.Sprintf("t%d", len(owners))
			owners[id] = c.PlayerID
			w.WriteHeader(http.StatusAccepted)
			fmt.Fprintf(w, `{"ticket_id":%q,"status":"queued"}`, id)
		case strings.HasSuffix(r.URL.Path, "/events"):
			id := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/v1/tickets/"), "/events")
			if owners[id] != c.PlayerID {
				http.Error(w, `{"error":"ticket not found"}`, http.StatusNotFound)
				return
			}
			streams.Add(1)
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprintf(w, "id: 3\nevent: status\ndata: {\"ticket_id\":%q,\"status\":\"assigned\",\"assignment\":{\"url\":\"http://game/play?room=r\"}}\n\n", id)
		}
	}))
	defer srv.Close()
	var out strings.Builder
	err = runLoad(context.Background(), []string{"-url", srv.URL, "-rate", "50", "-duration", "200ms", "-h2c=false", "-json", "-token-key", key}, &out, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var res runResult
	if err := json.Unmarshal([]byte(out.String()), &res); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	if res.Sent == 0 || res.Assigned != res.Sent || refused.Load() != 0 || streams.Load() != res.Sent {
		t.Fatalf("sent %d, assigned %d, refused %d, streams %d: %s", res.Sent, res.Assigned, refused.Load(), streams.Load(), out.String())
	}
	// Without a key the same run is refused: the fake checks tokens.
	out.Reset()
	if err := runLoad(context.Background(), []string{"-url", srv.URL, "-rate", "20", "-duration", "100ms", "-h2c=false", "-json"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if refused.Load() == 0 {
		t.Fatal("requests without a token were not refused")
	}
}

// load run mints every player's token before the first arrival (a real
// client has its token before it asks for a match): forPlayerAt then
// hands out the token minted ahead, the same each time, where minting on
// arrival makes a new one (a new jti) on every call. Past the bounds
// (too many players, a run whose last token would be near its expiry)
// nothing is minted ahead, and the note says why.
func TestMintAhead(t *testing.T) {
	t.Parallel()
	key, err := identity.LoadOrCreatePrivateKey(filepath.Join(t.TempDir(), "dev.pem"))
	if err != nil {
		t.Fatal(err)
	}
	minter, err := identity.NewMinter(key, identity.DevIssuerName, identity.DevAudience)
	if err != nil {
		t.Fatal(err)
	}
	v, err := identity.New(t.Context(), identity.Config{Issuer: identity.DevIssuerName, Audience: identity.DevAudience, Keys: []identity.StaticKey{minter.Public()}})
	if err != nil {
		t.Fatal(err)
	}
	name := func(i int) string { return fmt.Sprintf("p-%d", i) }
	toks := &tokens{minter: minter}
	a, _ := toks.forPlayerAt(3, "p-3")
	b, _ := toks.forPlayerAt(3, "p-3")
	if a == b {
		t.Fatal("minting on arrival gave the same token twice: the test cannot tell minted ahead")
	}
	var note strings.Builder
	if err := toks.mintAhead(t.Context(), 100, time.Minute, name, &note); err != nil || len(toks.ahead) != 100 || !strings.Contains(note.String(), "100 tokens minted ahead") {
		t.Fatalf("mintAhead: %d tokens, %v, note %q", len(toks.ahead), err, note.String())
	}
	for _, i := range []int{0, 3, 99} {
		a, _ := toks.forPlayerAt(i, name(i))
		b, _ := toks.forPlayerAt(i, name(i))
		c, err := v.Verify(t.Context(), a)
		if a == "" || a != b || err != nil || c.PlayerID != name(i) {
			t.Fatalf("arrival %d: not its player's token minted ahead (%+v, %v)", i, c, err)
		}
	}
	if tok, _ := toks.forPlayerAt(100, "p-100"); tok == "" { // past the run: minted as before
		t.Fatal("an arrival not minted ahead got no token")
	}
	for _, tc := range []struct {
		n    int
		span time.Duration
		why  string
	}{{maxAhead + 1, time.Minute, "more than"}, {10, 51 * time.Minute, "outlives"}} {
		toks := &tokens{minter: minter}
		var note strings.Builder
		if err := toks.mintAhead(t.Context(), tc.n, tc.span, name, &note); err != nil || toks.ahead != nil || !strings.Contains(note.String(), tc.why) {
			t.Fatalf("%d players, span %s: minted ahead (%v), note %q", tc.n, tc.span, err, note.String())
		}
	}
}
