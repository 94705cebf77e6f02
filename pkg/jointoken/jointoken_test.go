package jointoken

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// seeded keys: the same every run, so fuzz seeds and failures repeat.
func testKey(seed byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed([]byte(strings.Repeat(string(rune('a'+seed)), ed25519.SeedSize)))
}

func signer(t testing.TB, seed byte) *Signer {
	t.Helper()
	s, err := NewSigner(testKey(seed))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func pub(seed byte) ed25519.PublicKey { return testKey(seed).Public().(ed25519.PublicKey) }

var now = time.Unix(1_800_000_000, 0)

func TestSignVerify(t *testing.T) {
	t.Parallel()
	s := signer(t, 0)
	tok, err := s.Sign(Grant{MatchID: "m1", PlayerID: "alice", Expires: now.Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok, "v2."+s.KeyID()+".") || len(s.KeyID()) != 16 {
		t.Fatalf("token %q, key id %q", tok, s.KeyID())
	}
	keys := NewKeys(pub(0))
	c, err := keys.Verify(tok, now)
	if err != nil || c.MatchID != "m1" || c.PlayerID != "alice" || !c.Expires.Equal(now.Add(time.Minute)) {
		t.Fatalf("Verify = %+v, %v", c, err)
	}
	parts := strings.Split(tok, ".")
	otherGrant := base64.RawURLEncoding.EncodeToString([]byte("m1|mallory|1800000060"))
	other, _ := signer(t, 1).Sign(Grant{MatchID: "m1", PlayerID: "alice", Expires: now.Add(time.Minute)})
	otherParts := strings.Split(other, ".")
	tests := []struct {
		name  string
		keys  *Keys
		token string
		now   time.Time
		want  error
	}{
		{"expired", keys, tok, now.Add(time.Minute), ErrExpired},
		{"unknown key id", keys, other, now, ErrUnknownKey},
		{"wrong key under a known id", keys, strings.Join([]string{"v2", s.KeyID(), otherParts[2], otherParts[3]}, "."), now, ErrSignature},
		{"tampered grant", keys, strings.Join([]string{"v2", parts[1], otherGrant, parts[3]}, "."), now, ErrSignature},
		{"key id swapped", NewKeys(pub(0), pub(1)), strings.Join([]string{"v2", KeyID(pub(1)), parts[2], parts[3]}, "."), now, ErrSignature},
		{"v1 token", keys, "djF8bTF8YWxpY2V8MTgwMDAwMDA2MA.c2ln", now, ErrMalformed},
		{"other version", keys, "v3" + tok[2:], now, ErrMalformed},
		{"key id not hex", keys, strings.Join([]string{"v2", "ZZZZZZZZZZZZZZZZ", parts[2], parts[3]}, "."), now, ErrMalformed},
		{"short signature", keys, strings.Join(parts[:3], ".") + ".c2ln", now, ErrMalformed},
		{"five fields", keys, tok + ".x", now, ErrMalformed},
		{"not base64", keys, "v2." + s.KeyID() + ".!!.!!", now, ErrMalformed},
		{"too long", keys, tok + strings.Repeat("A", 1024), now, ErrMalformed},
		{"empty", keys, "", now, ErrMalformed},
	}
	for _, tt := range tests {
		if _, err := tt.keys.Verify(tt.token, tt.now); !errors.Is(err, tt.want) {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.want)
		}
	}
	if _, err := s.Sign(Grant{MatchID: "m|x", PlayerID: "p"}); err == nil {
		t.Error("signed an ambiguous match id")
	}
	if _, err := s.Sign(Grant{MatchID: "m"}); err == nil {
		t.Error("signed without a player")
	}
	if _, err := NewSigner(ed25519.PrivateKey("short")); err == nil {
		t.Error("a 5-byte private key was taken")
	}
}

func writePEM(t *testing.T, path string, pubs ...ed25519.PublicKey) {
	t.Helper()
	var data []byte
	for _, p := range pubs {
		b, err := MarshalPublicKey(p)
		if err != nil {
			t.Fatal(err)
		}
		data = append(data, b...)
	}
	// Aside, then renamed, as kubelet and EnsureKeyPair do.
	tmp := filepath.Join(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestRotation plays a key rotation against game servers that verify all
// the while: the new public key is added (to the key file, or as a second
// file of the key directory), the allocator switches, the old key is
// removed. Tokens of the old key are accepted until it is removed, those of
// the new key from when it is added, and no verification fails for any
// other reason meanwhile.
func TestRotation(t *testing.T) {
	t.Parallel()
	for _, layout := range []string{"file", "directory"} {
		t.Run(layout, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, "join.pub")
			if layout == "directory" {
				path = filepath.Join(dir, "keys")
				if err := os.Mkdir(path, 0o755); err != nil {
					t.Fatal(err)
				}
				writePEM(t, filepath.Join(path, "old.pem"), pub(0))
			} else {
				writePEM(t, path, pub(0))
			}
			var reloadErrs atomic.Int64
			var changesMu sync.Mutex
			var changes [][]string
			keys, err := LoadKeys(KeysConfig{Path: path, Reload: time.Millisecond, OnReloadError: func(error) { reloadErrs.Add(1) },
				OnChange: func(ids []string) { changesMu.Lock(); changes = append(changes, ids); changesMu.Unlock() }})
			if err != nil {
				t.Fatal(err)
			}
			old, next := signer(t, 0), signer(t, 1)
			grant := Grant{MatchID: "m1", PlayerID: "alice", Expires: time.Now().Add(time.Hour)}
			oldTok, _ := old.Sign(grant)
			newTok, _ := next.Sign(grant)

			// Verifiers run through the whole rotation.
			stop := make(chan struct{})
			var wg sync.WaitGroup
			var bad atomic.Value
			for range 4 {
				wg.Go(func() {
					for {
						select {
						case <-stop:
							return
						default:
						}
						for _, tok := range []string{oldTok, newTok} {
							if _, err := keys.Verify(tok, time.Now()); err != nil && !errors.Is(err, ErrUnknownKey) {
								bad.Store(err)
							}
						}
					}
				})
			}
			accepted := func(tok string) bool { _, err := keys.Verify(tok, time.Now()); return err == nil }
			eventually := func(cond func() bool, msg string) {
				t.Helper()
				deadline := time.Now().Add(5 * time.Second)
				for !cond() {
					if time.Now().After(deadline) {
						t.Fatal(msg)
					}
					time.Sleep(2 * time.Millisecond)
				}
			}
			if !accepted(oldTok) || accepted(newTok) {
				t.Fatal("before the rotation: want only the old key")
			}
			// 1. The new public key is added to the game servers.
			if layout == "directory" {
				writePEM(t, filepath.Join(path, "new.pem"), pub(1))
			} else {
				writePEM(t, path, pub(0), pub(1))
			}
			eventually(func() bool { return accepted(newTok) }, "the new key was never accepted")
			// 2. The allocator signs with the new key; tokens of the old
			// one are still in players' hands and still admit.
			if !accepted(oldTok) {
				t.Fatal("the old key was dropped while both are listed")
			}
			// 3. The old public key is removed.
			if layout == "directory" {
				if err := os.Remove(filepath.Join(path, "old.pem")); err != nil {
					t.Fatal(err)
				}
			} else {
				writePEM(t, path, pub(1))
			}
			eventually(func() bool {
				_, err := keys.Verify(oldTok, time.Now())
				return errors.Is(err, ErrUnknownKey)
			}, "the removed key still admits")
			if !accepted(newTok) {
				t.Fatal("the new key was dropped")
			}
			close(stop)
			wg.Wait()
			if err, _ := bad.Load().(error); err != nil {
				t.Fatalf("a verification failed during the rotation: %v", err)
			}
			if n := reloadErrs.Load(); n != 0 {
				t.Fatalf("%d reads of the keys failed", n)
			}
			// Both keys, then the new one alone: the changes a log shows.
			both := []string{KeyID(pub(0)), KeyID(pub(1))}
			slices.Sort(both)
			changesMu.Lock()
			defer changesMu.Unlock()
			if len(changes) != 2 || !slices.Equal(changes[0], both) || !slices.Equal(changes[1], []string{KeyID(pub(1))}) {
				t.Fatalf("changes %v, want %v then [%s]", changes, both, KeyID(pub(1)))
			}
		})
	}
}

// TestReloadFailureKeepsKeys: a key file that becomes unreadable or wrong
// leaves the keys read before in use, and says why.
func TestReloadFailureKeepsKeys(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "join.pub")
	writePEM(t, path, pub(0))
	errs := make(chan error, 100)
	keys, err := LoadKeys(KeysConfig{Path: path, Reload: time.Millisecond, OnReloadError: func(err error) {
		select {
		case errs <- err:
		default:
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := signer(t, 0).Sign(Grant{MatchID: "m", PlayerID: "p", Expires: time.Now().Add(time.Hour)})
	priv, _ := MarshalPrivateKey(testKey(0))
	if err := os.WriteFile(path, priv, 0o600); err != nil { // the private key mounted by mistake
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	if _, err := keys.Verify(tok, time.Now()); err != nil {
		t.Fatalf("a bad key file dropped the keys: %v", err)
	}
	select {
	case err := <-errs:
		if !strings.Contains(err.Error(), "PRIVATE KEY") {
			t.Fatalf("reload error %v", err)
		}
	case <-time.After(time.Second):
		t.Fatal("the failed read was not reported")
	}
}

func TestLoadKeysRefuses(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	priv, _ := MarshalPrivateKey(testKey(0))
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	empty := filepath.Join(dir, "empty")
	if err := os.Mkdir(empty, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, path := range map[string]string{
		"missing":         filepath.Join(dir, "nope"),
		"private key":     write("priv.pem", string(priv)),
		"not pem":         write("junk.pem", "hello"),
		"empty directory": empty,
		"empty file":      write("empty.pem", ""),
	} {
		if _, err := LoadKeys(KeysConfig{Path: path}); err == nil {
			t.Errorf("%s: loaded", name)
		}
	}
	if _, err := LoadPrivateKey(write("pub.pem", string(must(MarshalPublicKey(pub(0)))))); err == nil {
		t.Error("a public key loaded as the private key")
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// TestEnsureKeyPair: the key pair is made once and kept; the public key
// file always matches the private key.
func TestEnsureKeyPair(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	privPath, pubPath := filepath.Join(dir, "k", "join.key"), filepath.Join(dir, "p", "join.pub")
	if err := EnsureKeyPair(privPath, pubPath); err != nil {
		t.Fatal(err)
	}
	first, err := LoadPrivateKey(privPath)
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(privPath); st.Mode().Perm() != 0o600 {
		t.Fatalf("private key mode %v", st.Mode())
	}
	if err := os.Remove(pubPath); err != nil {
		t.Fatal(err)
	}
	if err := EnsureKeyPair(privPath, pubPath); err != nil {
		t.Fatal(err)
	}
	again, _ := LoadPrivateKey(privPath)
	if !first.Equal(again) {
		t.Fatal("the private key was replaced")
	}
	s, _ := NewSigner(again)
	tok, _ := s.Sign(Grant{MatchID: "m", PlayerID: "p", Expires: time.Now().Add(time.Minute)})
	keys, err := LoadKeys(KeysConfig{Path: pubPath})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keys.Verify(tok, time.Now()); err != nil {
		t.Fatal(err)
	}
}

// TestOpenSSLKeys: keys made the way the Helm README says (openssl) load.
func TestOpenSSLKeys(t *testing.T) {
	t.Parallel()
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("no openssl")
	}
	dir := t.TempDir()
	privPath, pubPath := filepath.Join(dir, "join.key"), filepath.Join(dir, "join.pub")
	for _, args := range [][]string{{"genpkey", "-algorithm", "ed25519", "-out", privPath}, {"pkey", "-in", privPath, "-pubout", "-out", pubPath}} {
		if out, err := exec.Command(openssl, args...).CombinedOutput(); err != nil {
			t.Fatalf("openssl %v: %v\n%s", args, err, out)
		}
	}
	priv, err := LoadPrivateKey(privPath)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := NewSigner(priv)
	keys, err := LoadKeys(KeysConfig{Path: pubPath})
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := s.Sign(Grant{MatchID: "m", PlayerID: "p", Expires: time.Now().Add(time.Minute)})
	if _, err := keys.Verify(tok, time.Now()); err != nil {
		t.Fatal(err)
	}
}

func FuzzVerify(f *testing.F) {
	s := signer(f, 0)
	keys := NewKeys(pub(0))
	tok, _ := s.Sign(Grant{MatchID: "m1", PlayerID: "a", Expires: time.Unix(2_000_000_000, 0)})
	f.Add(tok)
	f.Add("v2." + s.KeyID() + ".bXxwfDE.c2ln")
	f.Add("a.b")
	f.Add("djF8bTF8YWxpY2V8MTgwMDAwMDA2MA.c2ln") // a v1 token
	f.Fuzz(func(t *testing.T, token string) {
		c, err := keys.Verify(token, now)
		if err == nil && (c.MatchID == "" || c.PlayerID == "" || strings.Contains(c.MatchID+c.PlayerID, "|")) {
			t.Fatalf("accepted %q with grant %+v", token, c)
		}
		if err == nil && token != tok {
			// Ed25519 signatures are not malleable (RFC 8032 checks S < L):
			// only the token signed is accepted.
			t.Fatalf("accepted %q, which was never signed", token)
		}
	})
}

// BenchmarkSign and BenchmarkVerify: what a join token costs the allocator
// (one Sign per player) and a game server (one Verify per join).
func BenchmarkSign(b *testing.B) {
	s := signer(b, 0)
	c := Grant{MatchID: "0123456789abcdef01234567", PlayerID: "player-123456", Expires: now.Add(time.Minute)}
	for b.Loop() {
		if _, err := s.Sign(c); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	s := signer(b, 0)
	tok, _ := s.Sign(Grant{MatchID: "0123456789abcdef01234567", PlayerID: "player-123456", Expires: now.Add(time.Minute)})
	keys := NewKeys(pub(0), pub(1), pub(2))
	for b.Loop() {
		if _, err := keys.Verify(tok, now); err != nil {
			b.Fatal(err)
		}
	}
}

// TestUnknownKeyReadsAgainAtMostOnceASecond: a token of a key not in the
// set reads the key files again at once (a rotation's new key is accepted
// without waiting for Reload), but tokens with made-up key ids cost at
// most one read a second.
func TestUnknownKeyReadsAgainAtMostOnceASecond(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "join.pub")
	writePEM(t, path, pub(0))
	var reads atomic.Int64 // failed reads: the file is broken meanwhile
	keys, err := LoadKeys(KeysConfig{Path: path, Reload: time.Hour, OnReloadError: func(error) { reads.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	clock := t0
	keys.now = func() time.Time { return clock }
	newTok, _ := signer(t, 1).Sign(Grant{MatchID: "m", PlayerID: "p", Expires: t0.Add(time.Hour)})
	if err := os.WriteFile(path, []byte("broken"), 0o644); err != nil {
		t.Fatal(err)
	}
	verifyMany := func() {
		for range 100 {
			if _, err := keys.Verify(newTok, t0); !errors.Is(err, ErrUnknownKey) {
				t.Fatalf("err = %v, want ErrUnknownKey", err)
			}
		}
	}
	clock = t0.Add(500 * time.Millisecond)
	verifyMany()
	if n := reads.Load(); n != 0 {
		t.Fatalf("%d reads within a second of the last", n)
	}
	clock = t0.Add(1500 * time.Millisecond)
	verifyMany()
	if n := reads.Load(); n != 1 {
		t.Fatalf("%d reads for 100 unknown keys in one second, want 1", n)
	}
	writePEM(t, path, pub(0), pub(1))
	clock = t0.Add(3 * time.Second)
	if _, err := keys.Verify(newTok, t0); err != nil {
		t.Fatalf("the new key, added to the file, is refused: %v", err)
	}
}
