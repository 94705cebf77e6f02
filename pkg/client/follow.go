package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/ticketapi"
)

// Follow follows a ticket over Server-Sent Events until its terminal
// status (assigned, cancelled, expired, failed), which it returns. fn, if
// not nil, is called with every status event, the terminal one included:
// queued (again when its expected wait moves), matched, then the last.
//
// A stream that breaks, ends early or stays silent past IdleTimeout is
// resumed with Last-Event-ID after a backoff (and at least a Retry-After
// the server asked for), for as long as ctx lasts: bound it with ctx. A
// refusal that asking again cannot mend (404, 403, 400, a 401 after the
// token's refresh) ends it with an *Error; so does ErrTooLarge or
// ErrMalformed. When ctx ends it returns ctx's error.
func (c *Client) Follow(ctx context.Context, ticketID string, fn func(ticketapi.View)) (ticketapi.View, error) {
	return c.follow(ctx, ticketID, 0, fn)
}

// follow is Follow from after event id last (0: from the start).
func (c *Client) follow(ctx context.Context, ticketID string, last int, fn func(ticketapi.View)) (ticketapi.View, error) {
	attempt := 0
	for {
		v, got, err := c.stream(ctx, ticketID, &last, fn)
		if err == nil {
			return v, nil
		}
		if ctx.Err() != nil {
			return ticketapi.View{}, fmt.Errorf("quickmatch follow %s: %w", ticketID, ctx.Err())
		}
		var refused *Error
		isRefusal := errors.As(err, &refused)
		if isRefusal && !refused.retryable() || errors.Is(err, ErrTooLarge) || errors.Is(err, ErrMalformed) || errors.Is(err, ErrToken) {
			return ticketapi.View{}, fmt.Errorf("quickmatch follow %s: %w", ticketID, err)
		}
		if got {
			attempt = 0 // the stream worked: start again from the floor
		}
		wait := c.backoff(attempt)
		attempt++
		if isRefusal {
			if asked := min(refused.RetryAfter, c.cfg.MaxRetryAfter); asked > wait {
				// Up to half again: every client of a frontend that
				// restarts is told the same, and waiting it exactly
				// brought them all back in one moment.
				wait = asked + rand.N(asked/2+1)
			}
		}
		if err := c.sleep(ctx, wait); err != nil {
			return ticketapi.View{}, fmt.Errorf("quickmatch follow %s: %w", ticketID, err)
		}
	}
}

// sleep waits d or until ctx ends (Client.sleep; tests record the waits).
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// errStreamEnded: the stream ended before the ticket's terminal status.
var errStreamEnded = errors.New("event stream ended before the outcome")

// stream reads one connection's events, from after *last, which it moves
// on; got says whether any event came. err is nil only with the
// terminal view.
func (c *Client) stream(ctx context.Context, ticketID string, last *int, fn func(ticketapi.View)) (v ticketapi.View, got bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The idle watch cancels the request: a server that never answers,
	// or whose stream goes silent, is given up on and the stream resumed.
	idle := watchIdle(c.cfg.IdleTimeout, cancel)
	defer idle.stop()
	res, err := c.do(ctx, http.MethodGet, ticketapi.EventsPath(url.PathEscape(ticketID)), nil, func(h http.Header) {
		h.Set("Accept", "text/event-stream")
		if *last > 0 {
			h.Set(ticketapi.HeaderLastEventID, strconv.Itoa(*last))
		}
	})
	if err != nil {
		return v, false, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return v, false, readError(res, int64(c.cfg.MaxEventBytes))
	}
	if mt, _, _ := strings.Cut(res.Header.Get("Content-Type"), ";"); !strings.EqualFold(strings.TrimSpace(mt), "text/event-stream") {
		return v, false, fmt.Errorf("quickmatch events: content type %.40q: %w", res.Header.Get("Content-Type"), ErrMalformed)
	}
	r := newSSEReader(&idleReader{r: res.Body, w: idle}, c.cfg.MaxEventBytes)
	for {
		ev, err := r.next()
		if err != nil {
			return v, got, fmt.Errorf("%w: %w", errStreamEnded, err)
		}
		if !ev.status {
			continue // not ours: a newer server's, say
		}
		id := ev.id
		if id < 0 {
			return v, got, fmt.Errorf("quickmatch events: an event id Last-Event-ID cannot take: %w", ErrMalformed)
		}
		if v, err = decodeEvent(ev.data, fn != nil, ticketID); err != nil {
			return v, got, err
		}
		*last, got = id, true
		if fn != nil {
			fn(v)
		}
		if v.Status.Terminal() {
			return v, got, nil
		}
	}
}

// decodeEvent reads a status event of ticket id: whole, or only its
// ticket id and status unless whole or terminal (whatever its event id
// says): Follow without a callback needs no more of the events before
// the outcome, and a load generator following thousands is spared the
// rest. What breaks the contract is ErrMalformed (checkView).
func decodeEvent(data []byte, whole bool, id string) (v ticketapi.View, err error) {
	if !whole {
		var head struct {
			TicketID string        `json:"ticket_id"`
			Status   events.Status `json:"status"`
		}
		err = json.Unmarshal(data, &head)
		v.TicketID, v.Status = head.TicketID, head.Status
		whole = err == nil && v.Status.Terminal()
	}
	if whole {
		err = json.Unmarshal(data, &v)
	}
	if err != nil {
		return v, fmt.Errorf("quickmatch events: a status event: %w: %w", ErrMalformed, err)
	}
	if err := checkView(&v, id); err != nil {
		return v, fmt.Errorf("quickmatch events: %w", err)
	}
	return v, nil
}

// checkView is ErrMalformed for a view that breaks the contract (package
// ticketapi's policy): a status no view has, another ticket than id (any
// ticket's id, not empty, when id is ""), "assigned" without the URL
// of its assignment, or with one that ticketapi.ValidAssignmentURL
// refuses (ErrAssignmentURL too). It drops the assignment of a view that is not "assigned", so
// that no view handed back carries an assignment unchecked (the
// TypeScript client does not refuse such a view either).
func checkView(v *ticketapi.View, id string) error {
	switch {
	case v.Status.Rank() == 0:
		return fmt.Errorf("a status %.40q: %w", v.Status, ErrMalformed)
	case v.TicketID == "" || id != "" && v.TicketID != id:
		return fmt.Errorf("ticket %.80q, not %q: %w", v.TicketID, id, ErrMalformed)
	case v.Status != events.StatusAssigned:
		v.Assignment = nil
		return nil
	case v.Assignment == nil || v.Assignment.URL == "":
		return fmt.Errorf("assigned without its assignment: %w", ErrMalformed)
	case !ticketapi.ValidAssignmentURL(v.Assignment.URL):
		return fmt.Errorf("assignment URL %.80q: %w: %w", v.Assignment.URL, ErrAssignmentURL, ErrMalformed)
	}
	return nil
}

// backoff is the wait before reconnection attempt n (0 first): doubling
// from MinBackoff up to MaxBackoff, each drawn from its upper half so
// that clients cut off together do not come back together.
func (c *Client) backoff(n int) time.Duration {
	ceil := c.cfg.MinBackoff << min(n, 20)
	if ceil > c.cfg.MaxBackoff || ceil <= 0 {
		ceil = c.cfg.MaxBackoff
	}
	return ceil/2 + rand.N(ceil/2+1)
}
