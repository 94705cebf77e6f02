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

// unstored are the records of tickets a matcher put in a match while
// their creation's writes failed, whose put failed once more after the
// withdrawal found the match (finishOrWithdraw). An error would make each
// a no-show in its partners' game (chaos S57: 8 in one second, a tickets
// bucket without a leader for several seconds), so the creation answers
// the ticket, and its record is put again here, in the background, until
// stored or unstoredFor has passed. Meanwhile this frontend's reads of
// the record are answered from here (Record), so the client that follows
// its ticket right after the 202 hears its outcome. What it does not
// cover: another frontend hears 404 for the ticket until the put lands,
// and a frontend that stops or dies before then loses the records it
// holds (Stop logs them).
type unstored struct {
	mu   sync.Mutex
	recs map[string][]byte // the record's value, by ticket id
}

// unstoredFor bounds the tries of one record: the ticket's outcome reaches
// its client within seconds of the match, and a bucket without a leader
// for longer is an outage its operator sees.
const unstoredFor = time.Minute

// maxUnstored bounds the records held at once, each a goroutine.
const maxUnstored = 10000

// get returns the record held for id.
func (u *unstored) get(id string) ([]byte, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	data, ok := u.recs[id]
	return data, ok
}

// hold keeps data for id; false when maxUnstored are held already.
func (u *unstored) hold(id string, data []byte) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.recs) >= maxUnstored {
		return false
	}
	if u.recs == nil {
		u.recs = map[string][]byte{}
	}
	u.recs[id] = data
	return true
}

func (u *unstored) drop(id string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	delete(u.recs, id)
}

// putLater holds a matched ticket's record and puts it in the
// background (unstored); false when it cannot hold one more.
func (s *Service) putLater(id string, data []byte) bool {
	if !s.unstored.hold(id, data) {
		return false
	}
	go s.putUnstored(id, data)
	return true
}

// putUnstored tries a held record's put, waits of finishBackoff doubling
// to withdrawRetryMax between tries, until it is stored, refused for
// good, unstoredFor has passed or the frontend stops. A create, not a
// put: a record there already (a put that timed out went through) is
// never written over.
func (s *Service) putUnstored(id string, data []byte) {
	defer s.unstored.drop(id)
	ctx, cancel := context.WithTimeout(context.Background(), unstoredFor)
	defer cancel()
	for wait := finishBackoff; ; wait = min(2*wait, withdrawRetryMax) {
		if !s.withdrawals.pause(ctx, wait) {
			s.log.Error("record of a matched ticket left unstored: other frontends answer 404 for it",
				"ticket_id", id, "why", stopOrTimeout(ctx))
			return
		}
		pctx, pcancel := context.WithTimeout(ctx, events.ClaimCallTimeout)
		_, err := s.kv.Create(pctx, id, data)
		pcancel()
		if err == nil || errors.Is(err, jetstream.ErrKeyExists) {
			s.lateWrites.add(id, s.now())
			s.log.Info("record of a matched ticket stored on a later try", "ticket_id", id)
			return
		}
		if lasting(err) {
			s.log.Error("record of a matched ticket refused: other frontends answer 404 for it", "ticket_id", id, "err", err)
			return
		}
	}
}

// stopOrTimeout says why a wait of putUnstored ended.
func stopOrTimeout(ctx context.Context) string {
	if ctx.Err() != nil {
		return "tried for " + unstoredFor.String()
	}
	return "frontend stopping"
}

// unstoredRecord is the record held for id, if any (Record).
func (s *Service) unstoredRecord(id string) (Record, bool) {
	data, ok := s.unstored.get(id)
	if !ok {
		return Record{}, false
	}
	var rec Record
	if err := json.Unmarshal(data, &rec); err != nil {
		return Record{}, false
	}
	return rec, true
}
