package api_test

import (
	"bufio"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/ops"
	"github.com/quickmatch-dev/quickmatch/pkg/ticketapi"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/api"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/results"
)

// assignedSlowStop is a results tracker whose every ticket is assigned
// already and whose Stop blocks until stopped is closed: a tracker
// behind a burst of results, or stopped (its calls wait 5 s).
type assignedSlowStop struct{ stopped chan struct{} }

func (s assignedSlowStop) Follow(ctx context.Context, t *events.Ticket, player string) (results.Waiting, error) {
	return s.Wait(ctx, t.TicketID, player)
}

func (assignedSlowStop) AskFollowed(context.Context, string) (bool, bool, error) {
	return true, true, nil
}

func (assignedSlowStop) SetHandover(func([]string), func() []string) {}

func (s assignedSlowStop) Wait(_ context.Context, id, _ string) (results.Waiting, error) {
	ch := make(chan events.Result, 1)
	ch <- events.Result{TicketID: id, Status: events.StatusAssigned, Assignment: &events.Assignment{Server: "gs-1"}}
	return results.Waiting{
		Results:  ch,
		Creation: &results.Creation{Shard: events.Shard{Region: "eu", Tier: "gold"}, Mode: "1v1"},
		Stop:     func() { <-s.stopped },
	}, nil
}

// A ticket's outcome reaches its SSE client without waiting for the
// handler's stop of its wait: the terminal event is sent as the handler
// returns, and a stop held by the tracker must not hold it (review R11).
func TestSSEOutcomeDoesNotWaitForTheStop(t *testing.T) {
	stopped := make(chan struct{})
	done := make(chan struct{})
	var ready ops.Readiness
	ready.Set(true)
	handler, err := api.New(api.Config{Insecure: true, Heartbeat: time.Minute}, &heldTickets{}, assignedSlowStop{stopped},
		slog.New(slog.DiscardHandler), &ready, prometheus.NewRegistry(), done)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(handler)
	defer hs.Close()     // last: it waits for the handler,
	defer close(done)    // which waits for its stop,
	defer close(stopped) // released first

	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, hs.URL+ticketapi.EventsPath("t-1"), nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "data:") && strings.Contains(sc.Text(), `"status":"assigned"`) {
			return
		}
	}
	t.Fatalf("no assigned event before the stop returned (%v)", sc.Err())
}
