package tickets

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// unstored are the records of tickets answered while their record could
// not be stored: a matcher put the ticket in a match, or may yet (its
// withdrawal undecided), while its creation's writes failed, and the put
// tried once more after the withdrawal failed too (finishOrWithdraw). An
// error would make each a no-show in its partners' game (chaos S57: 8 in
// one second, a tickets bucket without a leader for several seconds), so
// the creation answers the ticket, and its record is put again here, in
// the background, until stored or until its hold ends (putLater).
// Meanwhile this frontend's reads of the record are answered from here
// (Record), so the client that follows its ticket right after the 202,
// and the expiry of this frontend's tracker, find it. What it does not
// cover: another frontend answers 404 for the ticket until the put
// lands, and every frontend does once this one gave up (each record logs
// it); a frontend that stops makes one last try of each (putUnstored),
// and one that dies loses them.
type unstored struct {
	mu   sync.Mutex
	recs map[string][]byte // the record's value, by ticket id
}

// unstoredFor is how long a record is tried past the moment its ticket's
// outcome may come (at once for a match): the outcome reaches its client
// within seconds, and a bucket without a leader for longer is an outage
// its operator sees.
const unstoredFor = time.Minute

// maxUnstored bounds the records held at once, each a goroutine and a
// record's value (events.MaxPayloadBytes at most; a few hundred bytes as
// a rule).
const maxUnstored = 10000

// get returns the record held for id.
func (u *unstored) get(id string) ([]byte, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	data, ok := u.recs[id]
	return data, ok
}

// hold keeps data for id: fresh when id was not held already, ok unless
// maxUnstored are held.
func (u *unstored) hold(id string, data []byte) (fresh, ok bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if _, held := u.recs[id]; held {
		return false, true
	}
	if len(u.recs) >= maxUnstored {
		return false, false
	}
	if u.recs == nil {
		u.recs = map[string][]byte{}
	}
	u.recs[id] = data
	return true, true
}

func (u *unstored) drop(id string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	delete(u.recs, id)
}

// putLater holds an answered ticket's record and puts it in the
// background (unstored) until it is stored or until has passed; false
// when it cannot hold one more.
func (s *Service) putLater(id string, data []byte, until time.Time) bool {
	fresh, ok := s.unstored.hold(id, data)
	if fresh {
		go s.putUnstored(id, data, until)
	}
	return ok
}

// putUnstored tries a held record's put, waits of finishBackoff doubling
// to withdrawRetryMax between tries (jittered, as the withdrawals'), until
// it is stored or until has passed: any refusal is tried again, as the
// record is all its client can read. Once the frontend stops, it makes
// one last try, within a call's bound. A create, not a put, so that a
// record found there (a put that timed out but landed) counts as stored
// at once.
func (s *Service) putUnstored(id string, data []byte, until time.Time) {
	defer s.unstored.drop(id)
	ctx, cancel := context.WithDeadline(context.Background(), until)
	defer cancel()
	var err error
	for wait := finishBackoff; ; wait = min(2*wait, withdrawRetryMax) {
		if !s.withdrawals.pause(ctx, jittered(wait)) {
			break
		}
		if err = s.createRecord(ctx, id, data); err == nil {
			return
		}
	}
	why := "tried until " + until.UTC().Format(time.RFC3339)
	if ctx.Err() == nil { // the frontend stops: one last try
		why = "the frontend stopped"
		if err = s.createRecord(ctx, id, data); err == nil {
			return
		}
	}
	s.log.Error("record of an answered ticket given up: reads of it answer 404", "ticket_id", id, "why", why, "err", err)
}

// createRecord creates a held record within a call's bound; nil once it
// is stored, by this call or an earlier one.
func (s *Service) createRecord(ctx context.Context, id string, data []byte) error {
	ctx, cancel := context.WithTimeout(ctx, events.ClaimCallTimeout)
	defer cancel()
	_, err := s.kv.Create(ctx, id, data)
	if err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
		return err
	}
	s.lateWrites.add(id, s.now())
	s.log.Info("record of an answered ticket stored on a later try", "ticket_id", id)
	return nil
}

// unstoredRecord is the record held for id, if any (Record).
func (s *Service) unstoredRecord(id string) (Record, bool) {
	data, ok := s.unstored.get(id)
	if !ok {
		return Record{}, false
	}
	var rec Record
	if err := json.Unmarshal(data, &rec); err != nil {
		s.log.Error("held record unreadable", "ticket_id", id, "err", err)
		return Record{}, false
	}
	return rec, true
}
