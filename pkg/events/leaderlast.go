package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
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
//
// A read that hears nothing before its deadline retires the subscription:
// the next read makes another. The server may have refused or dropped it
// (a permission reloaded away and back, the connection's subscription
// limit) while nats.go still holds it valid, and only a reconnect would
// send it again; a subscription per read healed at the next read, and so
// does this. Its use is safe from many goroutines.
type LeaderReader struct {
	nc *nats.Conn

	mu sync.Mutex
	// cur takes the answers of new reads; nil until the first read and
	// after it is retired.
	cur *inbox
	// reads are the reads waiting for answers, by the token in their
	// reply subjects.
	reads map[string]chan *nats.Msg
}

// inbox is one subscription of a LeaderReader, on <prefix>.<token>.<i>:
// token names the read (random, so that no one who saw one reply subject
// can tell the next), i the request within it.
type inbox struct {
	sub    *nats.Subscription
	prefix string
	// reading counts the reads whose answers come here; a retired inbox
	// is unsubscribed when the last of them ends.
	reading int
	retired bool
}

// NewLeaderReader reads through nc. It subscribes at its first read.
func NewLeaderReader(nc *nats.Conn) *LeaderReader {
	return &LeaderReader{nc: nc, reads: map[string]chan *nats.Msg{}}
}

// Close gives the subscription up once the reads under way end; a read
// after it subscribes again.
func (r *LeaderReader) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.retire(r.cur)
}

// Lasts reads the last message of each of subjects in stream from the
// stream's leader, all requests sent before any answer is awaited, their
// answers taken on an inbox of nc (its own prefix: a user may subscribe to
// its own inbox only). msgs[i] is nil when subjects[i] has no message. A
// subject must name one subject, no wildcard. ctx must end: an answer
// lost on the way is waited for until it does.
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
	reply, done, err := r.open(answers)
	if err != nil {
		for i := range errs {
			errs[i] = err
		}
		return msgs, errs
	}
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
			err = r.nc.PublishRequest(api, reply+strconv.Itoa(i), req)
		}
		if err != nil {
			errs[i] = err
			continue
		}
		waiting[i] = true
	}
	sent, heard := len(waiting), 0
	for len(waiting) > 0 && ctx.Err() == nil {
		select {
		case m := <-answers:
			i, err := strconv.Atoi(strings.TrimPrefix(m.Subject, reply))
			if err != nil || !waiting[i] {
				continue
			}
			delete(waiting, i)
			heard++
			msgs[i], errs[i] = leaderAnswer(m)
		case <-ctx.Done():
		}
	}
	for i := range waiting {
		errs[i] = ctx.Err()
	}
	// Nothing heard in all the time given: the subscription may be deaf
	// (see LeaderReader). A read given up (cancelled) says nothing of it.
	done(sent > 0 && heard == 0 && errors.Is(ctx.Err(), context.DeadlineExceeded))
	return msgs, errs
}

// open registers a read whose answers go to answers: it returns the
// prefix of their reply subjects (the request's index follows it) and
// the call that ends the read, deaf if it heard nothing in its time.
func (r *LeaderReader) open(answers chan *nats.Msg) (string, func(deaf bool), error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cur != nil && !r.cur.sub.IsValid() {
		r.retire(r.cur) // closed with its connection
	}
	if r.cur == nil {
		prefix := r.nc.NewInbox()
		sub, err := r.nc.Subscribe(prefix+".*.*", r.route(prefix))
		if err != nil {
			return "", nil, err
		}
		r.cur = &inbox{sub: sub, prefix: prefix}
	}
	in, token := r.cur, nuid.Next()
	in.reading++
	r.reads[token] = answers
	done := func(deaf bool) {
		r.mu.Lock()
		defer r.mu.Unlock()
		delete(r.reads, token)
		in.reading--
		if deaf {
			r.retire(in)
		}
		if in.retired && in.reading == 0 {
			_ = in.sub.Unsubscribe()
		}
	}
	return in.prefix + "." + token + ".", done, nil
}

// retire takes in out of use: new reads make another inbox, and in is
// unsubscribed once no read waits on it. r.mu is held.
func (r *LeaderReader) retire(in *inbox) {
	if in == nil || in.retired {
		return
	}
	in.retired = true
	if r.cur == in {
		r.cur = nil
	}
	if in.reading == 0 {
		_ = in.sub.Unsubscribe()
	}
}

// route hands an answer on prefix.<token>.<i> to its read, if still waiting.
func (r *LeaderReader) route(prefix string) nats.MsgHandler {
	return func(m *nats.Msg) {
		token, _, ok := strings.Cut(strings.TrimPrefix(m.Subject, prefix+"."), ".")
		if !ok {
			return
		}
		r.mu.Lock()
		answers := r.reads[token]
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
