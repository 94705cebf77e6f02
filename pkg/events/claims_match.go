package events

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The match in its claims. Each claim a matcher's commit makes carries
// the match (its JSON, in the HeaderMatch header), so whoever meets a
// claim of a match whose matcher died (or stalls) reads there what to
// decide and send: the claim is the match's record. A separate record,
// written before the claims, cost a stored message and a round trip a
// match (BENCHMARKS, thirty-sixth and thirty-seventh rounds). The claim's
// value stays its owner, so a reader that knows nothing of the header
// (a service of an older release, during a rolling upgrade) reads the
// claim as it did.
//
// Records are still written where a claim cannot carry the match (a
// bucket written through its own methods: CarriesMatch), where its
// carried bytes would cost more than the record they save
// (MaxMatchCarried), where the allocator reads the match by its id (a
// room that takes backfill), and while a matcher of a release that reads
// only records may meet the claims (the matchers' -match-records).

// HeaderMatch carries the encoded match on each of its claims.
const HeaderMatch = "Quickmatch-Match"

// HeaderMatchSeal seals the match a claim carries (Seals.SealMatch):
// an HMAC-SHA256 of the claim's owner and the match under a key only the
// matchers hold (their -match-seal-key-file). The frontends may write
// claims too (a cancel, a supersession, a take), so without it a
// compromised frontend could write claims carrying a match of its own
// making, and a matcher meeting them would send it: it would choose the
// teams. A matcher with match seal keys takes a carried match only if
// its seal verifies; one that does not is read from the match's record,
// if it has one, as a claim that carries nothing is, and otherwise never
// sent from the claim (undone if undecided). The seal binds the match to
// its claims' owner, not to each claim: a writer of claims can still
// free a ticket or write over its claim, which no seal prevents.
const HeaderMatchSeal = "Quickmatch-Match-Seal"

// MaxMatchCarried bounds the bytes a match's claims carry in all (its
// encoding times its claims): each claim carries it whole, so what a
// match's claims carry grows with the square of its tickets. A 1v1
// match (two claims of about 0.5 KiB each) and a 2v2 (four of 0.9 KiB)
// are carried; a 5v5 (ten claims of a match of 2 KiB) stores its record
// instead, as before, where the record is a tenth of a message a ticket
// and its claims would carry 20 KiB.
const MaxMatchCarried = 8 << 10

// CarriedBy reports whether claims of keys carry a match encoded in
// size bytes (MaxMatchCarried).
func CarriedBy(size, keys int) bool { return size*keys <= MaxMatchCarried }

// matchHeader is the header of a claim that carries match, sealed by
// seal if set; nil for none.
func matchHeader(match []byte, seal string) nats.Header {
	if match == nil {
		return nil
	}
	h := nats.Header{HeaderMatch: []string{string(match)}}
	if seal != "" {
		h.Set(HeaderMatchSeal, seal)
	}
	return h
}

// SealMatch is the seal of match carried by claims of owner
// (HeaderMatchSeal), under the first key; "" for a nil s (no keys: the
// match is carried unsealed).
func (s *Seals) SealMatch(owner string, match []byte) string {
	if s == nil {
		return ""
	}
	return s.Seal(owner, match)
}

// SealedBy reports whether the match r carries is sealed by one of the
// keys of s for r's owner. A nil s verifies nothing.
func (r ClaimRead) SealedBy(s *Seals) bool {
	return r.Match != nil && s.Verify(r.Owner, r.Match, r.MatchSeal)
}

// ClaimRead is a claim as Claims.Read finds it.
type ClaimRead struct {
	// Owner holds the claim; "" if nobody does.
	Owner string
	// Match is the encoded match the claim carries (HeaderMatch), nil if
	// it carries none: not a match's, or made by a matcher of an older
	// release or through a bucket that stores no headers.
	Match []byte
	// MatchSeal is the seal of Match (HeaderMatchSeal), "" if none.
	MatchSeal string
	// Created is when the claim was stored (the NATS server's clock).
	Created time.Time
}

// Read reads the claim of key with the match it carries, if any.
func (c *Claims) Read(ctx context.Context, key string) (ClaimRead, error) {
	e, err := c.get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return ClaimRead{}, nil
	}
	if err != nil {
		return ClaimRead{}, fmt.Errorf("claim of ticket %s: %w", key, err)
	}
	r := ClaimRead{Owner: string(e.Value()), Created: e.Created()}
	if h, ok := e.(interface{ Header() nats.Header }); ok {
		if v := h.Header().Get(HeaderMatch); v != "" {
			r.Match, r.MatchSeal = []byte(v), h.Header().Get(HeaderMatchSeal)
		}
	}
	return r, nil
}

// CarriesMatch reports whether the claims made here carry their match
// (HeaderMatch): false for a bucket written through its own methods (a
// test's faults), whose writes store the value alone.
func (c *Claims) CarriesMatch() bool {
	_, _, ok := batchable(c.kv)
	return ok
}

// create creates the claim of key for owner, carrying match (sealed by
// seal) if set, as kv.Create would: stored if the key has no value, or
// only a delete marker (a claim given back). A key that exists is an
// error for which keyExists holds.
func (c *Claims) create(ctx context.Context, key, owner string, match []byte, seal string) error {
	js, pre, ok := batchable(c.kv)
	if match == nil || !ok {
		_, err := c.kv.Create(ctx, key, []byte(owner))
		return err
	}
	msg := &nats.Msg{Subject: pre + key, Header: matchHeader(match, seal), Data: []byte(owner)}
	msg.Header.Set(jetstream.ExpectedLastSubjSeqHeader, "0")
	_, err := js.PublishMsg(ctx, msg)
	if err == nil || !keyExists(err) {
		return err
	}
	// As jetstream's Create: a key whose last message is a delete marker
	// is written at the marker's revision, so that a create racing it
	// still finds the key taken.
	lg := c.kv.(*leaderGets) // batchable says so
	last, gerr := lg.js.GetLastMsg(lg.stream, pre+key, nats.Context(ctx))
	if gerr != nil || !deleted(last.Header) {
		return err
	}
	msg.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(last.Sequence, 10))
	_, err = js.PublishMsg(ctx, msg)
	return err
}
