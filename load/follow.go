package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	qmclient "github.com/quickmatch-dev/quickmatch/pkg/client"
	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/loadrecord"
	"github.com/quickmatch-dev/quickmatch/pkg/ticketapi"
)

// recorder writes the -record file's lines (loadrecord) from many
// goroutines.
type recorder struct {
	mu  sync.Mutex
	enc *json.Encoder
}

// add writes one line: a loadrecord.Acked or a loadrecord.FailedPost.
func (r *recorder) add(line any) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	_ = r.enc.Encode(line)
}

// frontend is one -url of `load run`: the client of its HTTP path and
// of its WebSockets (-via ws). keyed
// sends every POST an Idempotency-Key of its own (-idempotency-keys).
type frontend struct {
	base  string
	c     *qmclient.Client
	keyed bool
}

// newFrontend makes the client of base: its requests go through hc,
// its WebSockets through wd (nil: the client's default dialer).
func newFrontend(base string, hc *http.Client, wd *websocket.Dialer, keyed bool) (frontend, error) {
	c, err := qmclient.New(qmclient.Config{BaseURL: base, HTTPClient: hc, Dialer: wd})
	return frontend{base: base, c: c, keyed: keyed}, err
}

// as is fe's client speaking for the p-th player: one token per player,
// minted once, so that its POST and its stream (or its WebSocket) are the
// same player's. Asked again after a 401 it is the same, so the 401 is
// not tried again.
func (fe frontend) as(toks *tokens, p int, player string) (*qmclient.Client, error) {
	tok, err := toks.forPlayerAt(p, player)
	if err != nil || tok == "" {
		return fe.c, err
	}
	return fe.c.WithToken(func(context.Context, string) (string, error) { return tok, nil }), nil
}

// ticketRequest is every ticket of a run: a player's, 1v1.
func ticketRequest(player, region string, skill int) ticketapi.Request {
	return ticketapi.Request{PlayerID: player, Skill: &skill, Region: region, Mode: "1v1"}
}

// follow queues one ticket and waits for its outcome; it returns when the
// frontend answered the POST (accepted it, or refused it: a refusal is
// timed too; zero for no answer) and "" when assigned, or the kind of
// what went wrong. A stream that breaks is resumed (pkg/client), as a
// game's client does: what is counted is the ticket's outcome.
func follow(ctx context.Context, fe frontend, toks *tokens, p int, player, region string, skill int, rec *recorder) (answered time.Time, kind string) {
	c, err := fe.as(toks, p, player)
	if err != nil {
		return answered, "token_error"
	}
	var opts []qmclient.CreateOption
	if fe.keyed {
		opts = append(opts, qmclient.IdempotencyKey(rand.Text()))
	}
	sent := time.Now()
	view, err := c.Create(ctx, ticketRequest(player, region, skill), opts...)
	answered = time.Now()
	if err != nil {
		kind = failureKind("post", err)
		rec.add(loadrecord.FailedPost{PlayerID: player, Frontend: fe.base, SentAt: sent, EndedAt: answered, Failed: kind})
		if !errors.As(err, new(*qmclient.Error)) {
			answered = time.Time{} // no status came: nothing to time
		}
		return answered, kind
	}
	rec.add(loadrecord.Acked{TicketID: view.TicketID, PlayerID: player, Frontend: fe.base, AcceptedAt: answered, Region: region, Skill: skill})
	view, err = c.Follow(ctx, view.TicketID, nil)
	switch {
	case err != nil:
		return answered, failureKind("events", err)
	case view.Status != events.StatusAssigned:
		return answered, string(view.Status)
	}
	return answered, ""
}

// failureKind names what went wrong in step (post, events) for the
// run's errors: post_503, events_404, events_bad, timeout, ...
func failureKind(step string, err error) string {
	var refused *qmclient.Error
	switch {
	case errors.Is(err, qmclient.ErrToken):
		return "token_error"
	case errors.As(err, &refused):
		return fmt.Sprintf("%s_%d", step, refused.Status)
	case errors.Is(err, qmclient.ErrMalformed), errors.Is(err, qmclient.ErrTooLarge):
		if step == "post" {
			return "post_202" // accepted, but its answer unreadable
		}
		return "events_bad"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		if step == "post" {
			return "post_error"
		}
		return "timeout"
	}
	return step + "_error"
}

// openRecord opens the -record file (none without a path); close reports
// an error on stderr, as the run's result is already out by then.
func openRecord(path string) (rec *recorder, close func(), err error) {
	if path == "" {
		return nil, func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, nil, err
	}
	return &recorder{enc: json.NewEncoder(f)}, func() {
		if err := f.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "record:", err)
		}
	}, nil
}
