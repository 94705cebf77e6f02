package api_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/ops"
	"github.com/quickmatch-dev/quickmatch/pkg/ticketapi"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/api"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/results"
)

// handedResults is a results tracker whose every ticket's outcome came
// before its wait: Wait hands it, its channel closed (Tracker.Wait).
type handedResults struct{ assignedSlowStop }

func (h handedResults) Follow(ctx context.Context, t *events.Ticket, player string) (results.Waiting, error) {
	return h.Wait(ctx, t.TicketID, player)
}

func (handedResults) Wait(_ context.Context, id, _ string) (results.Waiting, error) {
	ch := make(chan events.Result, 1)
	ch <- events.Result{TicketID: id, Status: events.StatusAssigned, Assignment: &events.Assignment{Server: "gs-1", Address: "127.0.0.1", Port: 7000}}
	close(ch)
	return results.Waiting{Results: ch, Creation: &results.Creation{Shard: events.Shard{Region: "eu", Tier: "gold"}, Mode: "1v1"}, Stop: func() {}}, nil
}

// An events WebSocket whose ticket's outcome came before its wait sends
// the outcome once and closes normally, as one that waited for it does;
// it does not go on to follow a wait that is over.
func TestAnEventsWebSocketWhoseOutcomeCameFirstSendsItAndCloses(t *testing.T) {
	t.Parallel()
	done := make(chan struct{})
	defer close(done)
	var ready ops.Readiness
	ready.Set(true)
	release := make(chan struct{})
	close(release)
	handler, err := api.New(api.Config{Insecure: true, Heartbeat: time.Minute}, &heldTickets{entered: make(chan string, 1), release: release}, handedResults{},
		slog.New(slog.DiscardHandler), &ready, prometheus.NewRegistry(), done)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(handler)
	defer hs.Close()
	c, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(hs.URL, "http")+ticketapi.PathWSEvents+"?region=eu&skill=1650&player_id=p1", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	_, msg, err := c.ReadMessage()
	if err != nil || !strings.Contains(string(msg), `"status":"assigned"`) {
		t.Fatalf("first message %s (%v), want the outcome", msg, err)
	}
	_, msg, err = c.ReadMessage()
	var closed *websocket.CloseError
	if !errors.As(err, &closed) || closed.Code != websocket.CloseNormalClosure {
		t.Fatalf("after the outcome: %s, %v; want a normal close", msg, err)
	}
}
