package chaos

// The two sides of the history the checker reads: the tickets the
// frontends acknowledged (the load tool's record) and every result
// published.

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// history is every result published, read from the RESULTS stream by an
// ordered consumer that follows the cluster through node restarts.
type history struct {
	nc      *nats.Conn
	cc      jetstream.ConsumeContext
	mu      sync.Mutex
	results []events.Result
	bad     int
}

func watchResults(ctx context.Context, urls string) (*history, error) {
	nc, js, err := connectJS(urls)
	if err != nil {
		return nil, err
	}
	subj := events.Subjects{}
	var c jetstream.Consumer
	for deadline := time.Now().Add(30 * time.Second); ; {
		c, err = js.OrderedConsumer(ctx, subj.ResultsStream(), jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy})
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("results history: %w", err)
	}
	h := &history{nc: nc}
	h.cc, err = c.Consume(func(m jetstream.Msg) {
		var r events.Result
		h.mu.Lock()
		defer h.mu.Unlock()
		if err := json.Unmarshal(m.Data(), &r); err != nil {
			h.bad++
			return
		}
		h.results = append(h.results, r)
	})
	if err != nil {
		nc.Close()
		return nil, err
	}
	return h, nil
}

func (h *history) all() []events.Result {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]events.Result(nil), h.results...)
}

func (h *history) close() {
	h.cc.Stop()
	h.nc.Close()
}
