package main

import (
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/identity"
)

// TestSourceIPsOverH2C: -source-ips 3 sends from three addresses over h2c
// too, where a transport keeps one connection for every request (it sent
// everything from 127.0.0.1).
func TestSourceIPsOverH2C(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	from := map[string]bool{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor != 2 {
			http.Error(w, "want h2c", http.StatusBadRequest)
			return
		}
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		mu.Lock()
		from[host] = true
		mu.Unlock()
	}))
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetHTTP1(true)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	defer srv.Close()
	hc := client(true, 3, 8)
	for range 6 {
		res, err := hc.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("status %d", res.StatusCode)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(from) != 3 {
		t.Fatalf("requests came from %v, want 127.0.0.1-3", from)
	}
}

// TestTokensDefaultToMakeRunKey: with neither -token-key nor -token, the
// key make run wrote is used, and said so; -token, or no such file, keeps
// the run without it.
func TestTokensDefaultToMakeRunKey(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	var none strings.Builder
	if err := (&tokens{}).setup(&none); err != nil || none.Len() != 0 {
		t.Fatalf("no key file: %v, %q", err, none.String())
	}
	if err := os.MkdirAll(filepath.Dir(devIssuerKey), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := identity.NewDevIssuer(devIssuerKey, identity.DevIssuerName, identity.DevAudience); err != nil {
		t.Fatal(err)
	}
	var note strings.Builder
	tk := &tokens{issuer: identity.DevIssuerName, audience: identity.DevAudience}
	if err := tk.setup(&note); err != nil {
		t.Fatal(err)
	}
	if tok, err := tk.forPlayer("p1"); err != nil || tok == "" || !strings.Contains(note.String(), devIssuerKey) {
		t.Fatalf("default key: token %q, %v, note %q", tok, err, note.String())
	}
	fixed := &tokens{fixed: "server-token"}
	if err := fixed.setup(&note); err != nil || fixed.minter != nil {
		t.Fatalf("-token was overridden: %v", err)
	}
}
