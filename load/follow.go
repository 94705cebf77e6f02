package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
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
// sends every POST an Idempotency-Key of its own (-idempotency-keys);
// retries is how many times a keyed POST that failed is sent again
// (-retries), each time to the next frontend.
type frontend struct {
	base    string
	c       *qmclient.Client
	keyed   bool
	retries int
	next    *frontend
	// resent counts the POSTs sent again, the run's (runResult.Resent).
	resent *atomic.Int64
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
	view, took, err := create(ctx, fe, toks, p, player, ticketRequest(player, region, skill), rec)
	answered = time.Now()
	if err != nil {
		if !errors.As(err, new(*qmclient.Error)) {
			answered = time.Time{} // no status came: nothing to time
		}
		return answered, failureKind("post", err)
	}
	rec.add(loadrecord.Acked{TicketID: view.TicketID, PlayerID: player, Frontend: took.base, AcceptedAt: answered, Region: region, Skill: skill})
	view, err = took.c.Follow(ctx, view.TicketID, nil)
	switch {
	case err != nil:
		return answered, failureKind("events", err)
	case view.Status != events.StatusAssigned:
		return answered, string(view.Status)
	}
	return answered, ""
}

// create POSTs a ticket through fe and returns its view and the
// frontend that took it. With -retries, a keyed POST that failed as a
// browser's client would send again (no answer, or a refusal that
// asking again may mend) is sent again with its Idempotency-Key after its
// Retry-After or a backoff, to the next frontend, as the TypeScript
// client does behind a load balancer: a repeat answers the ticket an
// earlier attempt created, and says it repeats (qmclient.Repeat) once an
// attempt may have made it, as the TypeScript client does. Each failed
// attempt is recorded.
func create(ctx context.Context, fe frontend, toks *tokens, p int, player string, req ticketapi.Request, rec *recorder) (ticketapi.View, frontend, error) {
	var opts []qmclient.CreateOption
	if fe.keyed {
		opts = append(opts, qmclient.IdempotencyKey(rand.Text()))
	}
	repeat := false // a Repeat option is in opts
	for failures := 1; ; failures++ {
		c, err := fe.as(toks, p, player)
		if err != nil {
			return ticketapi.View{}, fe, fmt.Errorf("%w: %w", qmclient.ErrToken, err)
		}
		sent := time.Now()
		actx, cancel := ctx, context.CancelFunc(func() {})
		if fe.retries > 0 {
			actx, cancel = context.WithTimeout(ctx, attemptTimeout)
		}
		view, err := c.Create(actx, req, opts...)
		cancel()
		if err == nil {
			return view, frontend{base: fe.base, c: c}, nil
		}
		rec.add(loadrecord.FailedPost{PlayerID: player, Frontend: fe.base, SentAt: sent, EndedAt: time.Now(), Failed: failureKind("post", err)})
		if !fe.keyed || failures > fe.retries || !askAgain(ctx, err) || !sleep(ctx, retryWait(failures, err)) {
			return ticketapi.View{}, fe, err
		}
		if !repeat && qmclient.MayHaveCreated(err) {
			repeat = true // from now on: this attempt may have made the ticket
			opts = append(opts, qmclient.Repeat())
		}
		fe = *fe.next
		fe.resent.Add(1)
	}
}

// askAgain reports whether a creation that failed with err may be taken
// if sent again: the TypeScript client's isRetryable.
func askAgain(ctx context.Context, err error) bool {
	var refused *qmclient.Error
	switch {
	case ctx.Err() != nil:
		return false
	case errors.As(err, &refused):
		return refused.Retryable()
	}
	return !errors.Is(err, qmclient.ErrToken) && !errors.Is(err, qmclient.ErrMalformed) && !errors.Is(err, qmclient.ErrTooLarge)
}

// attemptTimeout bounds each attempt of a creation that may be sent again
// (-retries): the TypeScript client's requestTimeoutMs, as the chaos
// reuser's. Without -retries the POST has the ticket's whole -timeout.
const attemptTimeout = 30 * time.Second

// Backoff between a failed creation and the next attempt, as the
// TypeScript client's defaults (clients/ts/src/retry.ts).
const (
	retryFirst    = 500 * time.Millisecond
	retryMost     = 15 * time.Second
	retryAfterCap = time.Minute
)

// retryWait is the wait after the failures-th failure in a row: a
// backoff, half of it at random, or what a Retry-After asks for and up to
// half again, whichever is longer (the TypeScript client's retryDelay).
func retryWait(failures int, err error) time.Duration {
	full := min(retryMost, retryFirst<<min(failures-1, 30))
	wait := full/2 + mrand.N(full/2+1)
	var refused *qmclient.Error
	if errors.As(err, &refused) {
		if asked := min(refused.RetryAfter, retryAfterCap); asked > wait {
			wait = asked + mrand.N(asked/2+1)
		}
	}
	return wait
}

// sleep waits d, or less if ctx ends first: whether it waited all of d.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
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
