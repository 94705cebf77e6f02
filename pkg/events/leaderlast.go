package events

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
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

// LeaderLasts reads the last message of each of subjects in stream from
// the stream's leader, all requests sent before any answer is awaited,
// their answers taken on one inbox of nc (its own prefix: a user may
// subscribe to its own inbox only). msgs[i] is nil when subjects[i] has
// no message. A subject must name one subject, no wildcard.
//
// It is a message get "last by subject" ($JS.API.STREAM.MSG.GET.<stream>),
// which only the leader answers, not a direct get: any replica answers a
// direct get however far behind it is (see LeaderGets), and a replica
// on the near side of a healed cut answers "nothing more" for results it
// has not got yet. The price is that every read goes to one server; a
// caller with many subjects sends them in batches.
func LeaderLasts(ctx context.Context, nc *nats.Conn, stream string, subjects []string) (msgs []*StoredMsg, errs []error) {
	msgs, errs = make([]*StoredMsg, len(subjects)), make([]error, len(subjects))
	if len(subjects) == 0 {
		return msgs, errs
	}
	inbox := nc.NewInbox()
	answers := make(chan *nats.Msg, len(subjects)) // never full: one answer per request
	sub, err := nc.ChanSubscribe(inbox+".*", answers)
	if err != nil {
		for i := range errs {
			errs[i] = err
		}
		return msgs, errs
	}
	defer func() { _ = sub.Unsubscribe() }()
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
			err = nc.PublishRequest(api, inbox+"."+strconv.Itoa(i), req)
		}
		if err != nil {
			errs[i] = err
			continue
		}
		waiting[i] = true
	}
	for len(waiting) > 0 {
		select {
		case m := <-answers:
			i, err := strconv.Atoi(strings.TrimPrefix(m.Subject, inbox+"."))
			if err != nil || !waiting[i] {
				continue
			}
			delete(waiting, i)
			msgs[i], errs[i] = leaderAnswer(m)
		case <-ctx.Done():
			for i := range waiting {
				errs[i] = ctx.Err()
			}
			return msgs, errs
		}
	}
	return msgs, errs
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
