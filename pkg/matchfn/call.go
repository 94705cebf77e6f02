package matchfn

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
)

// ErrNoFunction is returned by Call when no copy of the function is
// serving its subject (NATS has no responders).
var ErrNoFunction = errors.New("no match function serving")

// Call sends req to the match function at subject (events.Subjects.
// MatchFunction) and waits for its reply until ctx ends (a timeout is
// context.DeadlineExceeded). It sets req.SchemaVersion, and leaves out
// the youngest candidates, in req itself, until the request fits the
// smaller of MaxMessageBytes and the server's max_payload: check the
// reply against req as sent (CheckReply). The reply is decoded strictly
// (DecodeReply); a function's refusal is an *Error.
func Call(ctx context.Context, nc *nats.Conn, subject string, req *Request) (Reply, error) {
	req.SchemaVersion = SchemaVersion
	data, err := encodeFitting(req, min(MaxMessageBytes, int(nc.MaxPayload())))
	if err != nil {
		return Reply{}, err
	}
	msg, err := nc.RequestWithContext(ctx, subject, data)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return Reply{}, fmt.Errorf("%w: %s", ErrNoFunction, subject)
	case err != nil:
		return Reply{}, fmt.Errorf("call match function %s: %w", subject, err)
	}
	if code := msg.Header.Get(micro.ErrorCodeHeader); code != "" {
		return Reply{}, &Error{Code: code, Description: msg.Header.Get(micro.ErrorHeader)}
	}
	return DecodeReply(msg.Data)
}

// encodeFitting encodes req, leaving out its youngest candidates until it
// fits in limit bytes. The candidates that cannot fit are left out
// before the request is encoded (fitting): ten thousand with their
// attributes, encoded whole to keep seven hundred, cost 80-100 ms a
// call.
func encodeFitting(req *Request, limit int) ([]byte, error) {
	all := req.Candidates
	req.Candidates = nil
	base, _ := json.Marshal(req) // the request's own fields; fails as the loop's would, said there
	req.Candidates = all
	if n := fitting(all, limit-len(base)); n < len(all) {
		clear(all[n:])
		req.Candidates = all[:n]
	}
	for {
		data, err := json.Marshal(req)
		if err != nil {
			return nil, fmt.Errorf("encode match function request: %w", err)
		}
		n := len(req.Candidates)
		if len(data) <= limit {
			return data, nil
		}
		if n == 0 {
			return nil, fmt.Errorf("match function request of no candidates is %d bytes, above %d", len(data), limit)
		}
		// Candidates are about the same size: keep the share that fits,
		// with a tenth to spare, and at least one fewer.
		keep := min(n-1, int(float64(n)*float64(limit)/float64(len(data))*0.9))
		clear(req.Candidates[keep:])
		req.Candidates = req.Candidates[:keep]
	}
}

// fitting is how many of the first candidates fit in limit bytes, as
// far as their own encodings go (a comma each): the request's other
// fields are left to encodeFitting's loop. One that does not encode is
// kept, for the request's encoding to say why.
func fitting(cs []Candidate, limit int) int {
	total := 0
	for i := range cs {
		b, err := json.Marshal(&cs[i])
		if err != nil {
			return len(cs)
		}
		if total += len(b) + 1; total > limit {
			return i
		}
	}
	return len(cs)
}
