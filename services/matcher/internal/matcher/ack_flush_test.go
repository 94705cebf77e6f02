package matcher

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// TestFlushOnACutConnectionEnds: the naks a stopping runner hands back
// are flushed within flushWait on a connection cut both ways, not
// nats.go's 10 s, which held the hand-back of every shard past a pod's
// grace (a read-only audit's finding).
func TestFlushOnACutConnectionEnds(t *testing.T) {
	t.Parallel()
	srv := testkit.RunServer(t)
	link := testkit.NewLink(t, strings.TrimPrefix(srv.ClientURL(), "nats://"))
	nc := testkit.ConnectURL(t, link.URL(), nats.MaxReconnects(0))
	a := acker{nc: nc}
	link.Cut(testkit.Both)
	a.handBack("reply.to.nothing")
	start := time.Now()
	a.flush()
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("flush took %s on a cut connection, want flushWait (%s)", took.Round(time.Millisecond), flushWait)
	}
}
