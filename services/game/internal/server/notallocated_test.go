package server

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/agones/sdk"
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
	// One read per notHereFor of the run, and the keeper's and watch's own.
	if reads, most := rc.reads.Load()-before, int64(time.Since(start)/notHereFor)+3; reads > most {
		t.Fatalf("%d joins of a match not here made %d reads of the GameServer in %s, want %d at most", n, reads, time.Since(start).Round(time.Millisecond), most)
	}
}
