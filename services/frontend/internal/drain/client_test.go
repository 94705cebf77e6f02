package drain_test

import (
	"errors"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/client"
	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
	"github.com/quickmatch-dev/quickmatch/pkg/ticketapi"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/drain"
)

// The Go client reads a drain from the real frontend as ErrDrained, with
// the shard, the operator's reason (": " in it included) and the wait:
// over HTTP from the body, over the WebSocket from the 1013 close reason
// alone (ticketapi.DrainedReason and RetryAfterCloseReason, read back).
func TestGoClientReadsADrain(t *testing.T) {
	t.Parallel()
	f := startFrontend(t)
	drains, err := events.NewDrains(t.Context(), f.js, events.Subjects{})
	if err != nil {
		t.Fatal(err)
	}
	const reason = "upgrade: back at 10:30"
	if _, err := drains.Drain(t.Context(), events.Shard{Region: "eu", Tier: "gold"}, reason, "alice"); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(client.Config{BaseURL: f.url})
	if err != nil {
		t.Fatal(err)
	}
	skill := 1650
	req := ticketapi.Request{PlayerID: "p1", Skill: &skill, Region: "eu"}
	want := ticketapi.DrainedBody{Shard: "eu.gold", Reason: reason}
	check := func(err error) bool {
		var e *client.Error
		return errors.Is(err, client.ErrDrained) && errors.As(err, &e) && e.Body.Drained != nil && *e.Body.Drained == want && e.RetryAfter == drain.RetryAfter
	}
	testkit.Eventually(t, 5*time.Second, func() bool {
		v, err := c.Create(t.Context(), req)
		if err == nil {
			_, _ = c.Cancel(t.Context(), v.TicketID) // before the frontend saw the drain
		}
		return check(err)
	}, "create in a drained shard never refused as drained")
	if _, err := c.Queue(t.Context(), req, nil); !check(err) {
		t.Fatalf("queue in a drained shard: %v, want ErrDrained %+v after %v", err, want, drain.RetryAfter)
	}
}
