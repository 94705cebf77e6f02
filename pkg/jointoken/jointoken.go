// Package jointoken signs and verifies the tokens that admit a player to a
// room on a game server. The allocator signs one per player when it assigns
// a match, with an Ed25519 private key only it holds; game servers hold only
// public keys, so they can verify a token but never make one. A game server
// admits the player only to that room, only as that player, and only until
// the token expires.
//
// A token is four fields joined by ".":
//
//	v2.<kid>.<base64url(grant)>.<base64url(signature)>
//
// with grant "<match id>|<player id>|<unix expiry>", followed for a
// seated grant by "|<team>|<teams>|<team size>", for a seat in a room
// that accepts backfill by "|backfill" as well, and then for a seat in a
// room that started early by "|starts=<players>" (ids are subject tokens,
// with no '|', so the grant cannot be made ambiguous; a grant without a field
// added later reads as before, so tokens signed before it still verify;
// a verifier older than a field refuses a grant that has it as
// malformed, never reads it as another seat: a game server must be
// updated before the allocator signs seats it cannot read), kid the key
// id of the signing key (KeyID: the first 8 bytes of the SHA-256 of the raw
// 32-byte public key, in hex), and the signature Ed25519 over the first
// three fields as written, "v2.<kid>.<base64url(grant)>". base64url is
// without padding (RFC 4648 section 5).
//
// The key id lets keys rotate with no downtime: game servers verify with a
// set of public keys (Keys, read from a PEM file or a directory and re-read
// when it changes), so a rotation is: add the new public key to the game
// servers, switch the allocator to the new private key, and once the
// tokens signed with the old one have expired (the allocator's
// join-token-ttl), remove the old public key.
//
// Version 1 (HMAC-SHA256 with a secret shared by the allocator and every
// game server) is no longer accepted: accepting it would mean game servers
// still hold the secret that mints tokens, which is what version 2 takes
// away from them. A token lives minutes, so what a switch costs is the
// joins signed by an allocator of the old version on a game server of the
// new one (or the reverse) while both roll out; those matches fail and
// their players queue again.
package jointoken

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"

	"github.com/quickmatch-dev/quickmatch/pkg/play"
)

// Errors callers branch on.
var (
	ErrMalformed  = errors.New("join token is malformed")
	ErrUnknownKey = errors.New("join token is signed with an unknown key")
	ErrSignature  = errors.New("join token signature does not match")
	ErrExpired    = errors.New("join token has expired")
)

// Grant is what a token says: this player may join this match's room until
// Expires. (Not "claims": in this project a claim is a ticket's entry in
// the claims bucket, events.Claims.)
type Grant struct {
	MatchID  string
	PlayerID string
	Expires  time.Time
	// Seat is where the player sits in the room. A game server without
	// Agones (the local stack) learns the room's shape from its players'
	// tokens, since no allocation annotation tells it.
	Seat Seat
}

// Seat is team Team (0-based) of Teams teams of TeamSize players: 2v2 is
// Teams 2, TeamSize 2; a free-for-all of 3 is Teams 3, TeamSize 1. The
// zero Seat says nothing: a room of two players, as before seats.
type Seat struct {
	Team, Teams, TeamSize int
	// AcceptsBackfill says the room accepts backfill: it frees the seat of
	// a player gone for good and admits another to it. A game server
	// without Agones learns it from the tokens, as it learns the room's
	// shape. Only a seated grant carries it, as the field `backfill`
	// (backfillField): tokens already issued keep that spelling.
	AcceptsBackfill bool
	// Starts, for a room that started early (events.Match.Teams), is how many
	// players its game starts with: the match's players, fewer than the
	// room's seats, whose other seats are free from the start. Zero: the
	// game starts when every seat is taken. A game server without Agones
	// learns it from the tokens, as it learns the room's shape (with
	// Agones, the room annotation names the players the game starts
	// with). Only a seated grant carries it.
	Starts int
}

func (s Seat) valid() bool {
	// A game starts with two players at least, and a room that starts
	// with every seat taken says 0, so each room has one Starts.
	return s == Seat{} || play.ValidShape(s.Teams, s.TeamSize) && s.Team >= 0 && s.Team < s.Teams &&
		(s.Starts == 0 || s.Starts >= 2 && s.Starts < s.Teams*s.TeamSize)
}

const (
	version = "v2"
	// backfillField is the grant's seventh field for Seat.AcceptsBackfill.
	backfillField = "backfill"
	// startsPrefix + Seat.Starts is the grant's last field for a room
	// started early. Named, not a bare number: the fields after the seat
	// are optional, so each says what it is.
	startsPrefix = "starts="
	// maxTokenBytes bounds what Verify reads; a real token is about 150 bytes.
	maxTokenBytes = 1024
)

// enc is base64url without padding. Strict refuses non-zero trailing
// bits, and parse refuses CR and LF (which the decoder skips), so a token
// has one spelling: what was signed is the only string accepted.
var enc = base64.RawURLEncoding.Strict()

// Signer signs tokens with one private key. It is safe for concurrent use.
type Signer struct {
	key ed25519.PrivateKey
	kid string
}

// NewSigner returns a signer for key.
func NewSigner(key ed25519.PrivateKey) (*Signer, error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("join token private key is %d bytes, want %d (Ed25519)", len(key), ed25519.PrivateKeySize)
	}
	return &Signer{key: key, kid: KeyID(key.Public().(ed25519.PublicKey))}, nil
}

// KeyID is the id of the signer's key, written in every token it signs.
func (s *Signer) KeyID() string { return s.kid }

// Sign returns the token for c.
func (s *Signer) Sign(c Grant) (string, error) {
	if c.MatchID == "" || c.PlayerID == "" || strings.Contains(c.MatchID+c.PlayerID, "|") || !c.Seat.valid() {
		return "", fmt.Errorf("sign join token: %w: match %q player %q seat %+v", ErrMalformed, c.MatchID, c.PlayerID, c.Seat)
	}
	grant := c.MatchID + "|" + c.PlayerID + "|" + strconv.FormatInt(c.Expires.Unix(), 10)
	if c.Seat != (Seat{}) {
		grant += "|" + strconv.Itoa(c.Seat.Team) + "|" + strconv.Itoa(c.Seat.Teams) + "|" + strconv.Itoa(c.Seat.TeamSize)
		if c.Seat.AcceptsBackfill {
			grant += "|" + backfillField
		}
		if c.Seat.Starts != 0 {
			grant += "|" + startsPrefix + strconv.Itoa(c.Seat.Starts)
		}
	}
	signed := version + "." + s.kid + "." + enc.EncodeToString([]byte(grant))
	// curve25519-voi signs in half crypto/ed25519's time (BenchmarkSign:
	// the allocator signs a token for every player it places, a fifth of
	// its CPU before), and Ed25519 signing is deterministic: the same
	// signature, byte for byte (TestSignaturesAreTheStandardLibrarys).
	return signed + "." + enc.EncodeToString(voi.Sign(voi.PrivateKey(s.key), []byte(signed))), nil
}

// parse splits token and checks its form; it verifies nothing.
func parse(token string) (kid, signed string, sig []byte, err error) {
	if len(token) > maxTokenBytes || strings.ContainsAny(token, "\r\n") {
		return "", "", nil, ErrMalformed
	}
	parts := strings.Split(token, ".")
	if len(parts) != 4 || parts[0] != version || !validKeyID(parts[1]) {
		return "", "", nil, ErrMalformed
	}
	sig, err = enc.DecodeString(parts[3])
	if err != nil || len(sig) != ed25519.SignatureSize {
		return "", "", nil, ErrMalformed
	}
	return parts[1], token[:len(token)-len(parts[3])-1], sig, nil
}

// grantOf decodes the grant of a token whose signature was verified.
func grantOf(signed string, now time.Time) (Grant, error) {
	b64 := signed[strings.LastIndexByte(signed, '.')+1:]
	raw, err := enc.DecodeString(b64)
	if err != nil {
		return Grant{}, ErrMalformed
	}
	parts := strings.Split(string(raw), "|")
	if len(parts) != 3 && (len(parts) < 6 || len(parts) > 8) || parts[0] == "" || parts[1] == "" {
		return Grant{}, ErrMalformed
	}
	exp, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil || strconv.FormatInt(exp, 10) != parts[2] { // one spelling, as for the seat
		return Grant{}, ErrMalformed
	}
	c := Grant{MatchID: parts[0], PlayerID: parts[1], Expires: time.Unix(exp, 0)}
	if len(parts) >= 6 {
		if c.Seat, err = seatOf(parts[3:]); err != nil {
			return Grant{}, err
		}
	}
	if !now.Before(c.Expires) {
		return c, ErrExpired
	}
	return c, nil
}

// seatOf reads a seated grant's fields after the expiry: team, teams,
// team size, then "backfill" if the room accepts it, then "starts=<n>"
// if it started early, each in the one spelling Sign writes.
func seatOf(fields []string) (Seat, error) {
	var n [3]int
	for i, p := range fields[:3] {
		var ok bool
		if n[i], ok = number(p); !ok {
			return Seat{}, ErrMalformed
		}
	}
	s := Seat{Team: n[0], Teams: n[1], TeamSize: n[2]}
	rest := fields[3:]
	// The flag has one spelling too: present as written, or absent.
	if len(rest) > 0 && rest[0] == backfillField {
		s.AcceptsBackfill, rest = true, rest[1:]
	}
	if len(rest) > 0 {
		v, named := strings.CutPrefix(rest[0], startsPrefix)
		var ok bool
		// 0 is never written: it is the field's absence (valid bounds
		// the rest).
		if s.Starts, ok = number(v); !named || !ok || s.Starts == 0 {
			return Seat{}, ErrMalformed
		}
		rest = rest[1:]
	}
	if len(rest) > 0 || s.Teams == 0 || !s.valid() {
		return Seat{}, ErrMalformed
	}
	return s, nil
}

// number reads p, a number of a seat, if p is its one spelling: Atoi
// takes "+1" and "01", and a signed grant has one spelling.
func number(p string) (int, bool) {
	n, err := strconv.Atoi(p)
	return n, err == nil && strconv.Itoa(n) == p
}
