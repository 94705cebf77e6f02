package events

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// HeaderTaken seals a ticket message whose ticket the frontend took
// first (Players.TakeFirst, TakeFirstFresh: its id bound to its players
// and every player's entry naming it) before it published it: an
// HMAC-SHA256 of the message's subject and data under a key the
// frontends and the matchers share (Seals). The shard's owner takes a
// freshly sealed ticket in as live without reading the players bucket:
// that read only confirmed what the take first wrote, and cost a leader
// read per player (BENCHMARKS.md, "Tenth round"). Anything else (no seal,
// a seal it cannot verify, a redelivery, a late ticket) is taken in as
// before. Any NATS publisher can set a header, so the header alone
// proves nothing: what a publisher without the key can do is make its
// ticket read, as every ticket was. An exact copy of a sealed message
// verifies (the seal covers the subject and data, not the headers); it
// is the same ticket, with the same players, and its claim decides it,
// as the read's "live already" left it to.
//
// What the seal takes for granted is only what the read found: that an
// entry named the ticket once. A ticket superseded since is pooled until
// a match's claim (claimed superseded already) or its commit's check
// (Players.Stale) meets it, as one superseded just after the read was.
const HeaderTaken = "Quickmatch-Taken"

// MinSealKey is the shortest seal key accepted, in bytes: HMAC-SHA256's
// own output size.
const MinSealKey = sha256.Size

// Seals seals and verifies HeaderTaken, and under the matchers' own keys
// HeaderMatchSeal. The first key seals; every key verifies, so that a
// new key can be rolled out (added second, then moved first once every
// process has it, then the old one dropped) without a moment in which
// seals fail. A ticket seal that fails costs only a
// read; a match seal that fails, the match (HeaderMatchSeal).
type Seals struct {
	keys [][]byte
}

// NewSeals returns the seals of keys, each at least MinSealKey bytes.
func NewSeals(keys ...[]byte) (*Seals, error) {
	if len(keys) == 0 {
		return nil, errors.New("seal keys: none")
	}
	for i, k := range keys {
		if len(k) < MinSealKey {
			return nil, fmt.Errorf("seal key %d: %d bytes, want at least %d", i+1, len(k), MinSealKey)
		}
	}
	return &Seals{keys: keys}, nil
}

// LoadSeals reads a seal key file: one key per line, base64 (standard,
// padded: openssl rand -base64 32; for keys above 48 bytes add -A, which
// keeps the key on one line); blank lines and lines starting with '#' are
// skipped.
func LoadSeals(path string) (*Seals, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("seal key file: %w", err)
	}
	var keys [][]byte
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		k, err := base64.StdEncoding.DecodeString(string(line))
		if err != nil {
			return nil, fmt.Errorf("seal key file %s, line %d: not base64", path, n)
		}
		keys = append(keys, k)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("seal key file %s: %w", path, err)
	}
	s, err := NewSeals(keys...)
	if err != nil {
		return nil, fmt.Errorf("seal key file %s: %w", path, err)
	}
	return s, nil
}

// EnsureSealKeyFile makes a seal key file of one random key at path
// unless one is there (a local stack's: kept with its data, so that a
// restart keeps the key its tickets were sealed with); a file there that
// does not read as a key file is an error.
func EnsureSealKeyFile(path string) error {
	_, err := LoadSeals(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	key := make([]byte, MinSealKey)
	_, _ = rand.Read(key) // crypto/rand.Read never fails (Go 1.24+)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("seal key file: %w", err)
	}
	if err := os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
		return fmt.Errorf("seal key file: %w", err)
	}
	return nil
}

// SharesKeyWith reports whether s and o hold a key in common: the
// matchers' match seal keys must share none with the seal keys, which
// the frontends hold (HeaderMatchSeal).
func (s *Seals) SharesKeyWith(o *Seals) bool {
	if s == nil || o == nil {
		return false
	}
	for _, k := range s.keys {
		for _, ok := range o.keys {
			if hmac.Equal(k, ok) {
				return true
			}
		}
	}
	return false
}

// Seal is the seal of a message with subject and data, under the first
// key.
func (s *Seals) Seal(subject string, data []byte) string {
	return base64.RawURLEncoding.EncodeToString(sealSum(s.keys[0], subject, data))
}

// Verify reports whether seal is the seal of subject and data under one
// of the keys. A nil Seals verifies nothing.
func (s *Seals) Verify(subject string, data []byte, seal string) bool {
	if s == nil || seal == "" {
		return false
	}
	got, err := base64.RawURLEncoding.DecodeString(seal)
	if err != nil || len(got) != sha256.Size {
		return false
	}
	for _, k := range s.keys {
		if hmac.Equal(got, sealSum(k, subject, data)) {
			return true
		}
	}
	return false
}

// sealSum is the MAC of subject and data under key: the subject first,
// then a NUL (never in a subject), then the data, so that no two
// messages share their input.
func sealSum(key []byte, subject string, data []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(subject))
	m.Write([]byte{0})
	m.Write(data)
	return m.Sum(nil)
}
