package events

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
)

// Stale returns, of tickets (ticket id -> its players), those that are no
// longer the live ticket of every one of their players, each with the
// ticket that replaced it. A match's deciders ask after claiming its
// tickets and before deciding it (see [Players]). A player with no live
// ticket recorded (none for longer than the bucket's TTL) does not make a
// ticket stale.
func (p *Players) Stale(ctx context.Context, tickets map[string][]string) (map[string]string, error) {
	type answer struct {
		ticket, live string
		err          error
	}
	var answers []answer
	var mu sync.Mutex
	var wg sync.WaitGroup
	for id, players := range tickets {
		for _, player := range players {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cur, _, err := p.live(ctx, player)
				mu.Lock()
				answers = append(answers, answer{id, cur.TicketID, err})
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	stale := map[string]string{}
	for _, a := range answers {
		if a.err != nil {
			return nil, a.err
		}
		if a.live != "" && a.live != a.ticket {
			stale[a.ticket] = a.live
		}
	}
	return stale, nil
}

// StaleBatch is Stale for each of groups (ticket id -> its players), the
// live tickets of all their players read together: one round trip for
// the batch, where Stale makes a request per player. stale[i] and
// errs[i] are groups[i]'s; a group one of whose players could not be
// read has that error, as Stale would. The reads are the stream leader's
// (LeaderReader), as Stale's are: a replica behind the leader would
// answer with a ticket its player has replaced since, and the live
// ticket would be decided "superseded" by the ticket it replaced.
func (p *Players) StaleBatch(ctx context.Context, groups []map[string][]string) (stale []map[string]string, errs []error) {
	stale, errs = make([]map[string]string, len(groups)), make([]error, len(groups))
	reader, stream, ok := p.leaderReads()
	if !ok {
		var wg sync.WaitGroup
		for i, g := range groups {
			wg.Go(func() { stale[i], errs[i] = p.Stale(ctx, g) })
		}
		wg.Wait()
		return stale, errs
	}
	index := map[string]int{}
	var subjects []string
	for _, g := range groups {
		for _, players := range g {
			for _, pl := range players {
				if _, seen := index[pl]; !seen {
					index[pl] = len(subjects)
					subjects = append(subjects, "$KV."+p.kv.Bucket()+"."+pl)
				}
			}
		}
	}
	msgs, readErrs := leaderLastsInChunks(ctx, reader, stream, subjects)
	for i, g := range groups {
		stale[i] = map[string]string{}
		for id, players := range g {
			for _, pl := range players {
				k := index[pl]
				if readErrs[k] != nil {
					errs[i] = fmt.Errorf("live ticket of %s: %w", pl, readErrs[k])
					continue
				}
				if live := liveTicketOf(msgs[k]); live != "" && live != id {
					stale[i][id] = live
				}
			}
		}
		if errs[i] != nil {
			stale[i] = nil
		}
	}
	return stale, errs
}

// leaderReadChunk is how many leader reads StaleBatch has in flight at
// once. They go through the server's JetStream API queue, unlike direct
// gets, and a server whose queue passes 10,000 requests drops every
// request queued, everyone's (nats-server JSDefaultRequestQueueLimit): a
// batch of 64 matches of 100 players would send 6,400 at once.
const leaderReadChunk = 512

// leaderLastsInChunks is reader.Lasts, leaderReadChunk subjects at a time.
func leaderLastsInChunks(ctx context.Context, reader *LeaderReader, stream string, subjects []string) ([]*StoredMsg, []error) {
	msgs, errs := make([]*StoredMsg, 0, len(subjects)), make([]error, 0, len(subjects))
	for lo := 0; lo < len(subjects); lo += leaderReadChunk {
		m, e := reader.Lasts(ctx, stream, subjects[lo:min(lo+leaderReadChunk, len(subjects))])
		msgs, errs = append(msgs, m...), append(errs, e...)
	}
	return msgs, errs
}

// leaderReads returns the reader and the stream to read p's bucket from
// its leader with reads sent together: only for the bucket as
// NewPlayers binds it (BindLeaderGets; a test's wrapped KeyValue sees
// its reads through Stale) on the default API prefix.
func (p *Players) leaderReads() (*LeaderReader, string, bool) {
	lg, ok := p.kv.(*leaderGets)
	if !ok || lg.async == nil {
		return nil, "", false
	}
	o := lg.async.Options()
	if o.Domain != "" || (o.APIPrefix != "" && o.APIPrefix != jetstream.DefaultAPIPrefix) {
		return nil, "", false
	}
	return lg.reader, lg.stream, true
}

// liveTicketOf is the ticket id a players key's last message names, ""
// if none (no message; a delete or purge marker, whose data is empty; or
// not ours to read: as Players.live).
func liveTicketOf(m *StoredMsg) string {
	if m == nil {
		return ""
	}
	var t LiveTicket
	if json.Unmarshal(m.Data, &t) != nil {
		return ""
	}
	return t.TicketID
}
