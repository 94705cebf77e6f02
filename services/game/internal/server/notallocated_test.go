package server

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/agones/sdk"
	"github.com/quickmatch-dev/quickmatch/pkg/jointoken"
)

// readCounter counts the reads of the whole GameServer.
type readCounter struct {
	*sdk.Client
	reads atomic.Int64
}

func (c *readCounter) GameServer(ctx context.Context) (sdk.GameServer, error) {
	c.reads.Add(1)
	return c.Client.GameServer(ctx)
}

// A player replaying its own token of a match that is not here (another
// server's, or a room ended before a restart) made a sidecar read of the
// whole GameServer per request, refused or not (review of 2026-12-05:
// 500 requests, 500 reads, 6 ms each with 180 KiB of annotations). A read
// that did not find the match answers its joins for notHereFor.
func TestJoinsOfAMatchNotHereShareTheirRead(t *testing.T) {
	t.Parallel()
	fake := newFake(t)
	var rc *readCounter
	_, hs, _ := runOnSDK(t, fake, Config{}, func(c *sdk.Client) SDK { rc = &readCounter{Client: c}; return rc })
	waitFor(t, func() bool { return fake.GameServer().Status.State == "Ready" }, "never Ready")
	u := hs.URL + "/ws?room=elsewhere&token=" + token(t, "elsewhere", "mallory", time.Minute)
	before := rc.reads.Load()
	start := time.Now()
	const n = 300
	for range n {
		res, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusForbidden {
			t.Fatalf("a join of a match not here: %d", res.StatusCode)
		}
	}
	// Two a notHereFor at most (one may start as the last ends), and a
	// few of the keeper's and the watch's own.
	if reads, most := rc.reads.Load()-before, 2*int64(time.Since(start)/notHereFor)+6; reads > most {
		t.Fatalf("%d joins of a match not here made %d reads of the GameServer in %s, want %d at most", n, reads, time.Since(start).Round(time.Millisecond), most)
	}
}

// slowReads is a sidecar whose reads of the GameServer take 6 ms, as
// one with 180 KiB of annotations does.
type slowReads struct{ readCounter }

func (c *slowReads) GameServer(ctx context.Context) (sdk.GameServer, error) {
	c.reads.Add(1)
	select {
	case <-ctx.Done():
		return sdk.GameServer{}, ctx.Err()
	case <-time.After(6 * time.Millisecond):
	}
	return c.Client.GameServer(ctx)
}

// A join that hangs up at once cancelled the read it started (it ran on
// the request's context), so nothing was remembered, and every such
// request read again (review of 35835d8: 300 requests, 302 reads); a
// join that shared that read was refused with it. The shared read is
// the server's own now.
func TestJoinsThatHangUpShareTheirReadToo(t *testing.T) {
	t.Parallel()
	fake := newFake(t)
	var rc *slowReads
	_, hs, _ := runOnSDK(t, fake, Config{}, func(c *sdk.Client) SDK { rc = &slowReads{readCounter{Client: c}}; return rc })
	waitFor(t, func() bool { return fake.GameServer().Status.State == "Ready" }, "never Ready")
	host := strings.TrimPrefix(hs.URL, "http://")
	path := "/ws?room=elsewhere&token=" + token(t, "elsewhere", "mallory", time.Minute)
	before := rc.reads.Load()
	start := time.Now()
	const n = 200
	for range n {
		c, err := net.Dial("tcp", host)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path)
		_ = c.(*net.TCPConn).SetLinger(0)
		c.Close()
		time.Sleep(5 * time.Millisecond)
	}
	// Two a notHereFor at most (one may start as the last ends), and a
	// few of the keeper's and the watch's own.
	if reads, most := rc.reads.Load()-before, 2*int64(time.Since(start)/notHereFor)+6; reads > most {
		t.Fatalf("%d joins that hung up made %d reads of the GameServer in %s, want %d at most", n, reads, time.Since(start).Round(time.Millisecond), most)
	}
}

// Expired tokens with anything as a resume key made a read of the
// GameServer each for a room not open here (review of c065cce), where
// they only need one before the process has opened the rooms the last
// one left. Once it has, they cost no read; nor does a resume key of no
// key's form, ever.
func TestExpiredTokensReadNothingOnceTheRoomsAreOpen(t *testing.T) {
	t.Parallel()
	fake := newFake(t)
	var rc *readCounter
	s, hs, _ := runOnSDK(t, fake, Config{}, func(c *sdk.Client) SDK { rc = &readCounter{Client: c}; return rc })
	waitFor(t, func() bool { return fake.GameServer().Status.State == "Ready" && s.reopenedAll.Load() }, "never Ready")
	key := strings.Repeat("ab", 16)
	before := rc.reads.Load()
	for i := range 100 {
		match := fmt.Sprint("gone", i) // each a match of its own: no notHere memory helps
		_, res, err := dialResume(t, hs, match, seatedToken(t, match, "mallory", jointoken.Seat{}, time.Now().Add(-time.Minute)), key)
		if err == nil || res == nil || res.StatusCode != http.StatusForbidden {
			t.Fatalf("an expired token of a match not here: %v, want 403", err)
		}
	}
	// A few are the keeper's and the watch's own (a CI run under -race
	// saw 3); each token reading it would make 100.
	if reads := rc.reads.Load() - before; reads > 10 {
		t.Fatalf("100 expired tokens of matches not here made %d reads of the GameServer", reads)
	}
}
