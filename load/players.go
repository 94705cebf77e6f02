package main

import "sync/atomic"

// cast is who sends a run's tickets (-players). With size 0 every ticket
// is a new player's. With size N, N players send them, each asking again
// as soon as their last ticket has its outcome, as a player back from a
// match does: the frontend then reads and replaces the player's live
// ticket, which it does not for a new player. An arrival that finds all N
// waiting is a new player's.
type cast struct {
	free chan int // players 0..size-1 with no ticket waiting
	next atomic.Int64
	// asked marks each of the size players once they have sent a ticket;
	// returning counts the tickets sent by a player marked.
	asked     []atomic.Bool
	returning atomic.Int64
}

func newCast(size int) *cast {
	c := &cast{free: make(chan int, size), asked: make([]atomic.Bool, size)}
	for p := range size {
		c.free <- p
	}
	c.next.Store(int64(size))
	return c
}

// take is the player of the next arrival, by index.
func (c *cast) take() int {
	select {
	case p := <-c.free:
		if c.asked[p].Swap(true) {
			c.returning.Add(1)
		}
		return p
	default:
		return int(c.next.Add(1) - 1)
	}
}

// give takes player p back once their ticket has its outcome; a new
// player beyond the cast does not come back.
func (c *cast) give(p int) {
	if p < len(c.asked) {
		c.free <- p
	}
}
