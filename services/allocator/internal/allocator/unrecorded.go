package allocator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// unrecorded are the servers this allocator was given for matches whose
// record's write then failed (NATS slow, or cut off just then), by match
// id, each with the token of the reservation it was given under. The
// next request for the match in this process (a retry of the delivery,
// or its redelivery) writes that server into the reservation, if the
// record is still it, instead of asking the backend again. Before, it
// waited, as every request does for a reservation it did not write, for
// the record to go stale (events.AllocatorReservationStale, 30 s): chaos
// S49e had 12 tickets 27-41 s late so. A request in another process
// cannot know what the backend gave: this one writes the server in
// anyway once NATS answers it (reconcile), and that request finds it.
type unrecorded struct {
	mu sync.Mutex
	m  map[string]unrecordedServer
}

// unrecordedServer is a server given for a match and not recorded: the
// record to write, under the reservation of token, and when it was
// given.
type unrecordedServer struct {
	token string
	rec   record
	at    time.Time
}

// The servers remembered: at most maxUnrecorded, each forgotten once its
// reservation has surely gone stale and been taken over (another request
// then asks the backend, which finds the server: the kube backend by its
// rooms List), or once a request for its match recalled it. Its match's
// redelivery may go to another allocator, or never come (a room gone).
const (
	maxUnrecorded    = events.AllocatorMaxAckPending
	unrecordedForget = 2 * events.AllocatorReservationStale
)

// remember keeps u for matchID (nil: nothing is kept, as in the tests
// that make records of their own). Full, it first forgets the servers
// past unrecordedForget; still full, it keeps nothing and says so.
func (ur *unrecorded) remember(matchID string, u unrecordedServer, log *slog.Logger) {
	ur.keep(matchID, u, log, true)
}

// putBack keeps u again for matchID after a try to record it failed,
// unless a server was remembered for the match meanwhile: that one was
// given under a later reservation, and u's, taken over, is not the
// record's any more: putting u back over it would lose that server, and
// the match would wait 30 s for its reservation.
func (ur *unrecorded) putBack(matchID string, u unrecordedServer, log *slog.Logger) {
	ur.keep(matchID, u, log, false)
}

// keep is remember, or putBack when it does not replace.
func (ur *unrecorded) keep(matchID string, u unrecordedServer, log *slog.Logger, replace bool) {
	if ur == nil || u.token == "" {
		return
	}
	ur.mu.Lock()
	defer ur.mu.Unlock()
	if ur.m == nil {
		ur.m = map[string]unrecordedServer{}
	}
	if _, ok := ur.m[matchID]; ok && !replace {
		return
	}
	if len(ur.m) >= maxUnrecorded {
		maps.DeleteFunc(ur.m, func(_ string, old unrecordedServer) bool { return u.at.Sub(old.at) >= unrecordedForget })
	}
	if len(ur.m) >= maxUnrecorded {
		log.Warn("too many servers not recorded; this one's match waits for its reservation to go stale", "match_id", matchID, "kept", len(ur.m))
		return
	}
	ur.m[matchID] = u
}

// recall hands over and forgets the server remembered for matchID.
// Whatever its age: the record, read before it is written
// (recordGiven), says whether the reservation is still the one it was
// given under.
func (ur *unrecorded) recall(matchID string) (unrecordedServer, bool) {
	if ur == nil {
		return unrecordedServer{}, false
	}
	ur.mu.Lock()
	defer ur.mu.Unlock()
	u, ok := ur.m[matchID]
	delete(ur.m, matchID)
	return u, ok
}

// keys are the matches whose server is remembered.
func (ur *unrecorded) keys() []string {
	if ur == nil {
		return nil
	}
	ur.mu.Lock()
	defer ur.mu.Unlock()
	return slices.Collect(maps.Keys(ur.m))
}

// unused says that u's server, given for the match and never recorded,
// will not be used: the record went another way (another request's
// server, a failure, a requeue, or no record). Its room waits for
// players who never come, until its idle timeout ends it (the game
// server's -idle-timeout, 2 min by default).
func (rs *records) unused(key string, u unrecordedServer) {
	if u.rec.Server != nil {
		rs.log.Warn("server given and not used: the match's record went another way", "match_id", key, "server", u.rec.Server.Name)
	}
}

// recordServer writes r, the server the backend just gave, into the
// match's reservation (revision rev). The server is ours now: try hard
// to remember it, stopping or not, within one call's bound for every try
// and wait together (what events.AllocatorStopGrace leaves after the
// backend's call): each try waited its own 5 s before, 26.5 s in all
// when NATS did not answer. The caller keeps a server it could not
// record (unrecorded).
func (rs *records) recordServer(ctx context.Context, key string, r record, rev uint64) error {
	data, _ := json.Marshal(r) // always encodes
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), events.ClaimCallTimeout)
	defer cancel()
	var err error
	for i := range 5 {
		if _, err = rs.kv.Update(wctx, key, data, rev); err == nil || i == 4 {
			break
		}
		select {
		case <-wctx.Done():
		case <-time.After(time.Duration(50<<i) * time.Millisecond):
		}
		if wctx.Err() != nil {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("record allocation of %s: %w", key, err)
	}
	return nil
}

// recordGiven writes u's server into the match's record if the record
// is still the pending reservation u was given under (compare-and-set
// on its revision). done: the record holds a server now, u's or, when a
// write whose answer was lost stored it, or another request took the
// reservation over, the record's (reused: not u's); not done: the record
// is no longer u's reservation (given back, failed, requeued, taken
// over), and the request goes the usual way. A write that fails
// puts u back for the next try.
func (rs *records) recordGiven(ctx context.Context, key string, u unrecordedServer) (r record, done, reused bool, err error) {
	e, err := rs.reader().Get(ctx, key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		rs.unused(key, u)
		return record{}, false, false, nil
	case err != nil:
		rs.unrecorded.putBack(key, u, rs.log)
		return record{}, false, false, fmt.Errorf("allocation record of %s: %w", key, err)
	}
	var cur record
	_ = json.Unmarshal(e.Value(), &cur)
	switch {
	case cur.Server != nil:
		reused = u.rec.Server == nil || *cur.Server != *u.rec.Server
		if reused {
			rs.unused(key, u)
		}
		return cur, true, reused, nil
	case !cur.reservedBy(u.token):
		rs.unused(key, u)
		return record{}, false, false, nil
	}
	data, _ := json.Marshal(u.rec) // always encodes
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), events.ClaimCallTimeout)
	defer cancel()
	if _, err := rs.kv.Update(wctx, key, data, e.Revision()); err != nil {
		rs.unrecorded.putBack(key, u, rs.log)
		return record{}, false, false, fmt.Errorf("record allocation of %s: %w", key, err)
	}
	rs.log.Info("match's server recorded on a later try", "match_id", key)
	rs.reconciledBy("server_recorded")
	return u.rec, true, false, nil
}
