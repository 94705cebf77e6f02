package events

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// StoredMsg is a message as a stream's leader holds it (its headers are
// not read: no caller needs them yet).
type StoredMsg struct {
	Subject  string    `json:"subject"`
	Sequence uint64    `json:"seq"`
	Data     []byte    `json:"data"`
	Time     time.Time `json:"time"`
}

// LeaderReader reads the last message of subjects from a stream's leader
// (Lasts), its answers taken on one subscription of nc, made at the first
// read and kept for the next. A subscription per read cost the server a SUB
// and an UNSUB each time, and a wildcard SUB walks the server's cache of
// subjects matched (up to a thousand) to add itself: about a tenth of the
// embedded server's CPU at 402 tickets/s, for the matchers' one read per
// commit batch (BENCHMARKS.md, "Eighth round"). nats.go's own requests
// share one subscription per connection for the same reason.
type LeaderReader struct {
	nc *nats.Conn

	mu sync.Mutex
	// sub takes every answer, on prefix.<call>.<i>; nil until the first
	// read, and made again after the connection lost it.
	sub    *nats.Subscription
	prefix string
	last   uint64
	calls  map[uint64]chan *nats.Msg
}

// NewLeaderReader reads through nc. It subscribes at its first read.
func NewLeaderReader(nc *nats.Conn) *LeaderReader {
	return &LeaderReader{nc: nc, calls: map[uint64]chan *nats.Msg{}}
}

// LeaderLasts reads the last messages of subjects once, through a reader of
// its own: for a caller that reads once (a test, a tool). A caller that
// reads again keeps a LeaderReader.
func LeaderLasts(ctx context.Context, nc *nats.Conn, stream string, subjects []string) (msgs []*StoredMsg, errs []error) {
	r := NewLeaderReader(nc)
	defer r.Close()
	return r.Lasts(ctx, stream, subjects)
}

// Close gives the subscription up; a read after it subscribes again.
func (r *LeaderReader) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sub != nil {
		_ = r.sub.Unsubscribe()
		r.sub = nil
	}
}

// Lasts reads the last message of each of subjects in stream from the
// stream's leader, all requests sent before any answer is awaited, their
// answers taken on an inbox of nc (its own prefix: a user may subscribe to
// its own inbox only). msgs[i] is nil when subjects[i] has no message. A
// subject must name one subject, no wildcard.
//
// It is a message get "last by subject" ($JS.API.STREAM.MSG.GET.<stream>),
// which only the leader answers, not a direct get: any replica answers a
// direct get however far behind it is (see LeaderGets), and a replica
// on the near side of a healed cut answers "nothing more" for results it
// has not got yet. The price is that every read goes to one server; a
// caller with many subjects sends them in batches.
func (r *LeaderReader) Lasts(ctx context.Context, stream string, subjects []string) (msgs []*StoredMsg, errs []error) {
	msgs, errs = make([]*StoredMsg, len(subjects)), make([]error, len(subjects))
	if len(subjects) == 0 {
		return msgs, errs
	}
	answers := make(chan *nats.Msg, len(subjects)) // never full: one answer per request
	inbox, done, err := r.open(answers)
	if err != nil {
		for i := range errs {
			errs[i] = err
		}
		return msgs, errs
	}
	defer done()
	api := jetstream.DefaultAPIPrefix + "STREAM.MSG.GET." + stream
	waiting := map[int]bool{}
	for i, s := range subjects {
		if s == "" || strings.ContainsAny(s, "*> ") {
			errs[i] = fmt.Errorf("leader get of %q: not one subject", s)
			continue
		}
		req, err := json.Marshal(struct {
			LastFor string `json:"last_by_subj"`
		}{s})
		if err == nil {
			err = r.nc.PublishRequest(api, inbox+strconv.Itoa(i), req)
		}
		if err != nil {
			errs[i] = err
			continue
		}
		waiting[i] = true
	}
	for len(waiting) > 0 {
		if ctx.Err() != nil {
			break // given up: answers still to come are dropped (route)
		}
		select {
		case m := <-answers:
			i, err := strconv.Atoi(strings.TrimPrefix(m.Subject, inbox))
			if err != nil || !waiting[i] {
				continue
			}
			delete(waiting, i)
			msgs[i], errs[i] = leaderAnswer(m)
		case <-ctx.Done():
		}
	}
	for i := range waiting {
		errs[i] = ctx.Err()
	}
	return msgs, errs
}

// open registers a read whose answers go to answers: it returns the
// prefix of their reply subjects (the request's index follows it) and
// the call that ends the read.
func (r *LeaderReader) open(answers chan *nats.Msg) (string, func(), error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sub == nil || !r.sub.IsValid() {
		prefix := r.nc.NewInbox()
		sub, err := r.nc.Subscribe(prefix+".*.*", r.route(prefix))
		if err != nil {
			return "", nil, err
		}
		r.sub, r.prefix = sub, prefix
	}
	r.last++
	call := r.last
	r.calls[call] = answers
	done := func() {
		r.mu.Lock()
		delete(r.calls, call)
		r.mu.Unlock()
	}
	return r.prefix + "." + strconv.FormatUint(call, 10) + ".", done, nil
}

// route hands an answer on prefix.<call>.<i> to its read, if still waiting.
func (r *LeaderReader) route(prefix string) nats.MsgHandler {
	return func(m *nats.Msg) {
		call, _, ok := strings.Cut(strings.TrimPrefix(m.Subject, prefix+"."), ".")
		id, err := strconv.ParseUint(call, 10, 64)
		if !ok || err != nil {
			return
		}
		r.mu.Lock()
		answers := r.calls[id]
		r.mu.Unlock()
		select {
		case answers <- m: // nil once the read ended: not taken
		default:
		}
	}
}

// leaderAnswer reads a message get's answer: the message, nil for "no
// message", or the error (a 503 "no responders" when the request
// reached no JetStream, say).
func leaderAnswer(m *nats.Msg) (*StoredMsg, error) {
	if st := m.Header.Get("Status"); st != "" && len(m.Data) == 0 {
		return nil, fmt.Errorf("leader get: %s %s", st, m.Header.Get("Description"))
	}
	var resp struct {
		Message *StoredMsg `json:"message"`
		Error   *struct {
			Code        int    `json:"code"`
			ErrCode     int    `json:"err_code"`
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(m.Data, &resp); err != nil {
		return nil, fmt.Errorf("leader get: %w", err)
	}
	switch {
	case resp.Error != nil && resp.Error.ErrCode == int(jetstream.JSErrCodeMessageNotFound):
		return nil, nil // not "stream not found", also a 404
	case resp.Error != nil:
		return nil, fmt.Errorf("leader get: %d %s", resp.Error.Code, resp.Error.Description)
	case resp.Message == nil:
		return nil, fmt.Errorf("leader get: an answer without a message")
	}
	return resp.Message, nil
}
