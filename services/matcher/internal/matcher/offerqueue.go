package matcher

import (
	"container/heap"

	"github.com/quickmatch-dev/quickmatch/services/matcher/internal/pool"
)

// offerItem is a waiting ticket of the shard with somewhere still to be
// offered (offer.go): regions its latency budget may reach
// (pool.RegionLatency marks each offered) or a neighbouring tier its
// skill window may cross (belowDone, aboveDone mark those offered, or
// with no such tier). due is when the first of them opens, by its mode's
// widening (Unix nanoseconds).
type offerItem struct {
	p                    *pool.Pool
	e                    *pool.Entry
	belowDone, aboveDone bool
	due                  int64
	index                int
}

// offerQueue is a shard's offer items by due time (container/heap), so
// a sweep looks only at the tickets whose next offer is due, not at every
// waiting ticket: with the default tiers nearly every ticket's window
// crosses a tier bound some time. An item stays queued while its ticket
// is waiting, being taken in or being committed, and goes when the
// ticket has left (matched, ended), is expiring or has nowhere left to
// go.
type offerQueue []*offerItem

func (q offerQueue) Len() int           { return len(q) }
func (q offerQueue) Less(i, j int) bool { return q[i].due < q[j].due }
func (q offerQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index, q[j].index = i, j
}

// Push and Pop are heap.Interface's; use heap.Push and heap.Pop.
func (q *offerQueue) Push(x any) {
	it := x.(*offerItem)
	it.index = len(*q)
	*q = append(*q, it)
}

func (q *offerQueue) Pop() any {
	old := *q
	it := old[len(old)-1]
	old[len(old)-1] = nil // let it go
	*q = old[:len(old)-1]
	return it
}

// due pops the first item due at now (Unix nanoseconds), if any.
func (q *offerQueue) due(now int64) (*offerItem, bool) {
	if len(*q) == 0 || (*q)[0].due > now {
		return nil, false
	}
	return heap.Pop(q).(*offerItem), true
}
