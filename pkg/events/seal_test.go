package events_test

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

func sealKey(b byte) []byte { return bytes.Repeat([]byte{b}, events.MinSealKey) }

// A seal verifies for its own subject and data under any key of the set,
// and for nothing else: another subject, other data (one byte), another
// key, a cut or padded seal, an empty one; a nil Seals verifies nothing.
func TestSealVerifiesOnlyItsOwnMessage(t *testing.T) {
	t.Parallel()
	old, _ := events.NewSeals(sealKey(1))
	rolled, _ := events.NewSeals(sealKey(2), sealKey(1)) // a new key first, the old one still verifying
	other, _ := events.NewSeals(sealKey(3))
	subj, data := "matchmaking.eu.gold", []byte(`{"ticket_id":"t1","player_id":"ann"}`)
	seal := old.Seal(subj, data)
	if !old.Verify(subj, data, seal) || !rolled.Verify(subj, data, seal) {
		t.Fatal("a seal does not verify under its own key")
	}
	if old.Verify(subj, data, rolled.Seal(subj, data)) {
		// The rolled set seals with its first key, which old lacks.
		t.Fatal("a seal under a key old does not hold verifies")
	}
	tampered := bytes.Replace(data, []byte("ann"), []byte("bob"), 1)
	for name, ok := range map[string]bool{
		"other subject":  old.Verify("matchmaking.us.gold", data, seal),
		"other data":     old.Verify(subj, tampered, seal),
		"other key":      other.Verify(subj, data, seal),
		"cut":            old.Verify(subj, data, seal[:len(seal)-2]),
		"padded":         old.Verify(subj, data, seal+"AA"),
		"empty":          old.Verify(subj, data, ""),
		"not base64":     old.Verify(subj, data, strings.Repeat("!", len(seal))),
		"nil seals":      (*events.Seals)(nil).Verify(subj, data, seal),
		"subject joined": old.Verify("matchmaking.eu", append([]byte(".gold"), data...), seal),
	} {
		if ok {
			t.Errorf("%s: verified", name)
		}
	}
}

// A match a claim carries is sealed for the claim's owner: its seal
// verifies for that owner and match under the matchers' keys, and not
// for another owner (a genuine match's seal copied onto claims of
// another), another match, no seal, or a frontend's key; no keys (nil)
// seal nothing.
func TestAMatchsSealVerifiesOnlyItsOwnerAndMatch(t *testing.T) {
	t.Parallel()
	matchers, _ := events.NewSeals(sealKey(1))
	frontends, _ := events.NewSeals(sealKey(2))
	match := []byte(`{"match_id":"m1","tickets":[{"ticket_id":"t1"},{"ticket_id":"t2"}]}`)
	owner := events.MatchOwner("m1")
	r := events.ClaimRead{Owner: owner, Match: match, MatchSeal: matchers.SealMatch(owner, match)}
	if !r.SealedBy(matchers) {
		t.Fatal("a match sealed by the matchers' key does not verify")
	}
	if s := (*events.Seals)(nil).SealMatch(owner, match); s != "" {
		t.Fatalf("no keys sealed %q", s)
	}
	for name, r := range map[string]events.ClaimRead{
		"other owner":   {Owner: events.MatchOwner("m2"), Match: match, MatchSeal: r.MatchSeal},
		"other match":   {Owner: owner, Match: bytes.Replace(match, []byte("t2"), []byte("t3"), 1), MatchSeal: r.MatchSeal},
		"no seal":       {Owner: owner, Match: match},
		"frontend's":    {Owner: owner, Match: match, MatchSeal: frontends.SealMatch(owner, match)},
		"no match":      {Owner: owner, MatchSeal: matchers.SealMatch(owner, nil)},
		"a ticket seal": {Owner: owner, Match: match, MatchSeal: matchers.Seal("matchmaking.eu.gold", match)},
	} {
		if r.SealedBy(matchers) {
			t.Errorf("%s: verified", name)
		}
	}
	if r.SealedBy(nil) {
		t.Error("nil seals verified a match")
	}
	rolled, _ := events.NewSeals(sealKey(3), sealKey(1))
	if !matchers.SharesKeyWith(rolled) || matchers.SharesKeyWith(frontends) || matchers.SharesKeyWith(nil) {
		t.Error("SharesKeyWith: want true for a key in common (second of the other), false for none or no keys")
	}
}

// A key file holds one base64 key per line, the first sealing; comments
// and blank lines are skipped; a short key, bad base64 or no key at all
// is refused.
func TestLoadSeals(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	k1, k2 := base64.StdEncoding.EncodeToString(sealKey(1)), base64.StdEncoding.EncodeToString(sealKey(2))
	s, err := events.LoadSeals(write("two", "# rolled on Monday\n"+k2+"\n\n"+k1+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	old, _ := events.NewSeals(sealKey(1))
	if !s.Verify("s", nil, old.Seal("s", nil)) {
		t.Error("the second key does not verify")
	}
	if old.Verify("s", nil, s.Seal("s", nil)) {
		t.Error("the file's seal is not its first key's")
	}
	for name, content := range map[string]string{
		"short":    base64.StdEncoding.EncodeToString(sealKey(1)[:events.MinSealKey-1]),
		"bad":      "not base64 at all\n",
		"empty":    "# nothing\n\n",
		"one good": k1 + "\n" + "c2hvcnQ=\n",
	} {
		if _, err := events.LoadSeals(write(name, content)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := events.LoadSeals(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing file: accepted")
	}
}

// EnsureSealKeyFile makes a key file once and keeps it after.
func TestEnsureSealKeyFile(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "seal", "seal.keys")
	if err := events.EnsureSealKeyFile(p); err != nil {
		t.Fatal(err)
	}
	first, err := events.LoadSeals(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := events.EnsureSealKeyFile(p); err != nil {
		t.Fatal(err)
	}
	again, err := events.LoadSeals(p)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Verify("s", nil, first.Seal("s", nil)) {
		t.Error("a second call replaced the key")
	}
	if err := os.WriteFile(p, []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := events.EnsureSealKeyFile(p); err == nil {
		t.Error("a bad key file was kept without an error")
	}
}

// FuzzSealVerify: a seal from anywhere (a NATS publisher's header) never
// panics Verify, and verifies only if it decodes to the message's own MAC
// under one of the keys: what Seal gives, and nothing a publisher
// without the key can make from another message's seal.
func FuzzSealVerify(f *testing.F) {
	s, err := events.NewSeals(sealKey(1), sealKey(2))
	if err != nil {
		f.Fatal(err)
	}
	subj := "matchmaking.eu.gold"
	data := []byte(`{"ticket_id":"t1"}`)
	good := s.Seal(subj, data)
	f.Add(subj, data, good)
	f.Add(subj+"x", data, good)
	f.Add(subj, []byte(`{"ticket_id":"t2"}`), good)
	f.Add(subj, data, good[:len(good)-1])
	f.Add(subj, data, good+"=")
	f.Add(subj, data, "")
	f.Add("", []byte{}, strings.Repeat("A", 43))
	f.Fuzz(func(t *testing.T, subject string, data []byte, seal string) {
		if !s.Verify(subject, data, seal) {
			return
		}
		got, err := base64.RawURLEncoding.DecodeString(seal)
		if err != nil {
			t.Fatalf("verified a seal %q that does not decode: %v", seal, err)
		}
		own, _ := base64.RawURLEncoding.DecodeString(s.Seal(subject, data))
		other, _ := events.NewSeals(sealKey(2))
		second, _ := base64.RawURLEncoding.DecodeString(other.Seal(subject, data))
		if !bytes.Equal(got, own) && !bytes.Equal(got, second) {
			t.Fatalf("verified %q for %q, %q: not its MAC under any key", seal, subject, data)
		}
	})
}

// FuzzLoadSeals: a seal key file of any content (a mounted Secret edited
// by hand) never panics LoadSeals; one it accepts has keys of
// MinSealKey bytes at least, and seals what it verifies.
func FuzzLoadSeals(f *testing.F) {
	key := base64.StdEncoding.EncodeToString(sealKey(3))
	f.Add([]byte(key + "\n"))
	f.Add([]byte("# comment\n\n  " + key + "  \r\n" + key))
	f.Add([]byte(key[:20] + "\n"))
	f.Add([]byte("not base64!\n"))
	f.Add([]byte(""))
	f.Add([]byte(strings.Repeat("A", 70000)))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, content []byte) {
		p := filepath.Join(dir, "seal.keys")
		if err := os.WriteFile(p, content, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := events.LoadSeals(p)
		if err != nil {
			if s != nil {
				t.Fatal("an error with seals")
			}
			return
		}
		if !s.Verify("a.b", content, s.Seal("a.b", content)) {
			t.Fatal("accepted keys do not verify their own seal")
		}
	})
}
