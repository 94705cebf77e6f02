// Package jointoken signs and verifies the tokens that admit a player to a
// room on a game server. The allocator signs one per player when it assigns
// a match; the game server verifies it with the same secret and admits the
// player only to that room, only as that player, and only until it expires.
//
// A token is base64url(claims) "." base64url(HMAC-SHA256(secret, claims)),
// with claims "v1|<match id>|<player id>|<unix expiry>". Ids are subject
// tokens (no '|'), so the claims cannot be made ambiguous.
package jointoken

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// MinSecretBytes is the shortest secret accepted.
const MinSecretBytes = 16

// Errors callers branch on.
var (
	ErrMalformed = errors.New("join token is malformed")
	ErrSignature = errors.New("join token signature does not match")
	ErrExpired   = errors.New("join token has expired")
)

// Claims are what a token says.
type Claims struct {
	MatchID  string
	PlayerID string
	Expires  time.Time
}

const version = "v1"

var enc = base64.RawURLEncoding

// Sign returns the token for c.
func Sign(secret []byte, c Claims) (string, error) {
	if len(secret) < MinSecretBytes {
		return "", fmt.Errorf("join token secret is %d bytes, at least %d needed", len(secret), MinSecretBytes)
	}
	if c.MatchID == "" || c.PlayerID == "" || strings.Contains(c.MatchID+c.PlayerID, "|") {
		return "", fmt.Errorf("sign join token: %w: match %q player %q", ErrMalformed, c.MatchID, c.PlayerID)
	}
	claims := strings.Join([]string{version, c.MatchID, c.PlayerID, strconv.FormatInt(c.Expires.Unix(), 10)}, "|")
	return enc.EncodeToString([]byte(claims)) + "." + enc.EncodeToString(mac(secret, claims)), nil
}

// Verify checks the signature and the expiry of token and returns its claims.
func Verify(secret []byte, token string, now time.Time) (Claims, error) {
	body, sig, ok := strings.Cut(token, ".")
	if !ok || len(token) > 1024 {
		return Claims{}, ErrMalformed
	}
	claims, err := enc.DecodeString(body)
	if err != nil {
		return Claims{}, ErrMalformed
	}
	gotMAC, err := enc.DecodeString(sig)
	if err != nil {
		return Claims{}, ErrMalformed
	}
	if !hmac.Equal(gotMAC, mac(secret, string(claims))) {
		return Claims{}, ErrSignature
	}
	parts := strings.Split(string(claims), "|")
	if len(parts) != 4 || parts[0] != version {
		return Claims{}, ErrMalformed
	}
	exp, err := strconv.ParseInt(parts[3], 10, 64)
	if err != nil {
		return Claims{}, ErrMalformed
	}
	c := Claims{MatchID: parts[1], PlayerID: parts[2], Expires: time.Unix(exp, 0)}
	if !now.Before(c.Expires) {
		return c, ErrExpired
	}
	return c, nil
}

func mac(secret []byte, claims string) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(claims))
	return h.Sum(nil)
}
