package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/client"
	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/ticketapi"
)

// The Go client (pkg/client) reads this frontend's refusals as the kinds
// a caller branches on, over HTTP and over the WebSocket: the texts come
// from one place (pkg/ticketapi), and this test holds the two ends to it
// with the real handler, not a copy of its words.
func TestGoClientTypesTheRealRefusals(t *testing.T) {
	t.Parallel()
	t.Run("overloaded", func(t *testing.T) {
		t.Parallel()
		h := &heldTickets{entered: make(chan string, 2), release: make(chan struct{})}
		c := goClient(t, heldFrontend(t, h, twoAtOnce).URL, nil)
		held := make(chan error, 2)
		for _, p := range []string{"a", "b"} {
			go func() {
				_, err := c.Create(t.Context(), request(p, "eu"))
				held <- err
			}()
		}
		<-h.entered
		<-h.entered
		for _, call := range []string{"create", "queue"} {
			var err error
			if call == "create" {
				_, err = c.Create(refusal(t), request("c", "eu"))
			} else {
				_, err = c.Queue(refusal(t), request("c", "eu"), nil)
			}
			var e *client.Error
			if !errors.Is(err, client.ErrOverloaded) || !errors.As(err, &e) || e.RetryAfter < time.Second || e.RetryAfter > 3*time.Second {
				t.Errorf("%s past the limit: %v (%+v), want ErrOverloaded with Retry-After 1-3 s", call, err, e)
			}
		}
		close(h.release)
		for range 2 {
			if err := <-held; err != nil {
				t.Errorf("held creation: %v", err)
			}
		}
	})
	t.Run("region full", func(t *testing.T) {
		t.Parallel()
		e := start(t, options{minFree: 1, before: func(e *env) { reportCapacity(t, e, map[string]int{"eu": 0, "us": 7}) }})
		c := goClient(t, e.http.URL, func(context.Context, string) (string, error) { return e.token(t, "a"), nil })
		var err error
		var refused *client.Error
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			// Before the frontend read both reports, a ticket is queued
			// (cancelled, so that the player may queue again) or no
			// region is suggested.
			var v ticketapi.View
			if v, err = c.Create(t.Context(), request("a", "eu")); err == nil {
				_, _ = c.Cancel(t.Context(), v.TicketID)
				continue
			}
			if !errors.As(err, &refused) || refused.Body.SuggestRegion != "" {
				break
			}
		}
		if !errors.Is(err, client.ErrRegionFull) || !errors.As(err, &refused) || refused.Body.SuggestRegion != "us" || refused.RetryAfter <= 0 {
			t.Fatalf("create in a full region: %v (%+v), want ErrRegionFull suggesting us", err, refused)
		}
		_, err = c.Queue(t.Context(), request("a", "eu"), nil)
		if !errors.Is(err, client.ErrRegionFull) || !errors.As(err, &refused) || refused.RetryAfter <= 0 {
			t.Fatalf("queue in a full region: %v (%+v), want ErrRegionFull after the upgrade (1013)", err, refused)
		}
		if _, err := c.Queue(t.Context(), request("a", "mars"), nil); !errors.Is(err, client.ErrInvalid) {
			t.Fatalf("queue in an unknown region: %v, want ErrInvalid (4400)", err)
		}
	})
}

// The Go client follows the real frontend's event stream (its event
// name, ids and ticket) to the outcome, and resumes it from the id it
// has.
func TestGoClientFollowsTheRealStream(t *testing.T) {
	t.Parallel()
	e := start(t, options{})
	c := goClient(t, e.http.URL, func(context.Context, string) (string, error) { return e.token(t, "a"), nil })
	v, err := c.Create(t.Context(), request("a", "eu"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Cancel(t.Context(), v.TicketID); err != nil {
		t.Fatal(err)
	}
	var seen []events.Status
	// An event the client does not take as the contract's is skipped, and
	// the stream followed on: the bound turns that into a failure.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	out, err := c.Follow(ctx, v.TicketID, func(v ticketapi.View) { seen = append(seen, v.Status) })
	if err != nil || out.Status != events.StatusCancelled || out.TicketID != v.TicketID || len(seen) != 1 {
		t.Fatalf("follow: %+v %v, saw %v; want the cancelled ticket once", out, err, seen)
	}
}

func goClient(t *testing.T, base string, tok client.TokenSource) *client.Client {
	t.Helper()
	c, err := client.New(client.Config{BaseURL: base, Token: tok})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func request(player, region string) ticketapi.Request {
	skill := 1650
	return ticketapi.Request{PlayerID: player, Skill: &skill, Region: region}
}

// reportCapacity writes each region's free rooms as its allocators would.
func reportCapacity(t *testing.T, e *env, free map[string]int) {
	t.Helper()
	kv, err := e.js.KeyValue(t.Context(), e.subj.CapacityBucket())
	if err != nil {
		t.Fatal(err)
	}
	for region, n := range free {
		data, _ := json.Marshal(events.Capacity{SchemaVersion: 1, Region: region, FreeRooms: n, TotalRooms: 10, Servers: 1, At: time.Now()})
		if _, err := kv.Put(t.Context(), region, data); err != nil {
			t.Fatal(err)
		}
	}
}
