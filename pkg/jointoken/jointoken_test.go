package jointoken

import (
	"errors"
	"testing"
	"time"
)

var secret = []byte("0123456789abcdef0123")

func TestSignVerify(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	tok, err := Sign(secret, Claims{MatchID: "m1", PlayerID: "alice", Expires: now.Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	c, err := Verify(secret, tok, now)
	if err != nil || c.MatchID != "m1" || c.PlayerID != "alice" {
		t.Fatalf("Verify = %+v, %v", c, err)
	}
	tests := []struct {
		name   string
		secret []byte
		token  string
		now    time.Time
		want   error
	}{
		{"expired", secret, tok, now.Add(time.Minute), ErrExpired},
		{"other secret", []byte("another-secret-of-20b"), tok, now, ErrSignature},
		{"tampered claims", secret, "djF8bTJ8YWxpY2V8MTgwMDAwMDA2MA" + tok[len("djF8bTF8YWxpY2V8MTgwMDAwMDA2MA"):], now, ErrSignature},
		{"no dot", secret, "abc", now, ErrMalformed},
		{"not base64", secret, "!!.!!", now, ErrMalformed},
		{"empty", secret, "", now, ErrMalformed},
	}
	for _, tt := range tests {
		if _, err := Verify(tt.secret, tt.token, tt.now); !errors.Is(err, tt.want) {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.want)
		}
	}
	if _, err := Sign([]byte("short"), Claims{MatchID: "m", PlayerID: "p"}); err == nil {
		t.Error("signed with a 5-byte secret")
	}
	if _, err := Sign(secret, Claims{MatchID: "m|x", PlayerID: "p"}); err == nil {
		t.Error("signed an ambiguous match id")
	}
}

func FuzzVerify(f *testing.F) {
	tok, _ := Sign(secret, Claims{MatchID: "m1", PlayerID: "a", Expires: time.Unix(2_000_000_000, 0)})
	f.Add(tok)
	f.Add("a.b")
	f.Fuzz(func(t *testing.T, token string) {
		c, err := Verify(secret, token, time.Unix(1_800_000_000, 0))
		if err == nil && (c.MatchID == "" || c.PlayerID == "") {
			t.Fatalf("accepted %q with empty claims", token)
		}
	})
}
