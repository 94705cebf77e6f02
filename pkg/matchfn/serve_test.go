package matchfn

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

func quiet() Option { return WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))) }

func oneVsOne(ids ...string) *Request {
	r := &Request{Mode: Mode{Name: "1v1", Teams: 2, TeamSize: 1}, Region: "eu", Tier: "gold"}
	for _, id := range ids {
		r.Candidates = append(r.Candidates, Candidate{TicketID: id, Players: []string{"p" + id}, Skill: 1500})
	}
	return r
}

// pairs proposes the candidates two by two, in order.
func pairs(req Request) (Reply, error) {
	var rep Reply
	for i := 0; i+1 < len(req.Candidates); i += 2 {
		rep.Matches = append(rep.Matches, Proposal{Teams: [][]string{{req.Candidates[i].TicketID}, {req.Candidates[i+1].TicketID}}})
	}
	return rep, nil
}

func TestServeAndCall(t *testing.T) {
	t.Parallel()
	nc := testkit.Connect(t, testkit.RunServer(t))
	subj := events.Subjects{Prefix: "dev"}
	var mu sync.Mutex
	var last Request
	svc, err := Serve(nc, "pairs", func(r Request) (Reply, error) {
		mu.Lock()
		defer mu.Unlock()
		last = r
		return pairs(r)
	}, WithSubjects(subj), quiet())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop() })
	info := svc.Info()
	if info.Name != "pairs" || len(info.Endpoints) != 1 || info.Endpoints[0].Subject != "dev.matchfunctions.pairs" || info.Endpoints[0].QueueGroup != "q" {
		t.Fatalf("info = %+v", info)
	}

	req := oneVsOne("a", "b", "c")
	rep, err := Call(t.Context(), nc, subj.MatchFunction("pairs"), req)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Matches) != 1 || rep.Matches[0].String() != "a | b" || rep.SchemaVersion != SchemaVersion {
		t.Fatalf("reply = %+v", rep)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(last.Candidates) != 3 || last.SchemaVersion != SchemaVersion || last.Region != "eu" {
		t.Fatalf("the function got %+v", last)
	}
	if errs := CheckReply(req, &rep); errs[0] != nil {
		t.Fatal(errs[0])
	}
}

func TestServeSendsErrors(t *testing.T) {
	t.Parallel()
	nc := testkit.Connect(t, testkit.RunServer(t))
	subj := events.Subjects{}
	var calls atomic.Int32
	svc, err := Serve(nc, "moody", func(r Request) (Reply, error) {
		calls.Add(1)
		switch r.Candidates[0].TicketID {
		case "fail":
			return Reply{}, errors.New("the ranking service is down\nsecond line")
		case "busy":
			return Reply{}, &Error{Code: "503", Description: "busy"}
		case "panic":
			panic("oops")
		case "huge":
			return Reply{Matches: make([]Proposal, MaxMessageBytes/10)}, nil
		}
		return pairs(r)
	}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop() })
	sub := subj.MatchFunction("moody")

	for _, tc := range []struct{ id, code, desc string }{
		{"fail", CodeFailed, "the ranking service is down second line"},
		{"busy", "503", "busy"},
		{"panic", CodeFailed, "panicked: oops"},
		{"huge", CodeFailed, "at most"},
	} {
		_, err := Call(t.Context(), nc, sub, oneVsOne(tc.id, "x"))
		var fe *Error
		if !errors.As(err, &fe) || fe.Code != tc.code || !strings.Contains(fe.Description, tc.desc) {
			t.Errorf("%s: err = %v, want code %s with %q", tc.id, err, tc.code, tc.desc)
		}
	}
	// It still serves after a panic.
	if rep, err := Call(t.Context(), nc, sub, oneVsOne("a", "b")); err != nil || len(rep.Matches) != 1 {
		t.Fatalf("after the panic: %+v, %v", rep, err)
	}

	// A request it cannot read never reaches the function.
	before := calls.Load()
	msg, err := nc.RequestWithContext(t.Context(), sub, []byte(`{"mode":{"name":"1v1","teams":2,"team_size":1},"region":"eu","tier":"gold","candidates":[],"x":1}`))
	if err != nil {
		t.Fatal(err)
	}
	if msg.Header.Get(micro.ErrorCodeHeader) != CodeBadRequest || !strings.Contains(msg.Header.Get(micro.ErrorHeader), "x: unknown field") || calls.Load() != before {
		t.Fatalf("bad request answered %q %q, calls %d -> %d", msg.Header.Get(micro.ErrorCodeHeader), msg.Header.Get(micro.ErrorHeader), before, calls.Load())
	}
}

func TestCallFailures(t *testing.T) {
	t.Parallel()
	nc := testkit.Connect(t, testkit.RunServer(t))
	subj := events.Subjects{}

	if _, err := Call(t.Context(), nc, subj.MatchFunction("nobody"), oneVsOne("a", "b")); !errors.Is(err, ErrNoFunction) {
		t.Errorf("no function: err = %v", err)
	}

	// A function that answers too late, and one that answers garbage,
	// served by hand.
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	slow, err := nc.Subscribe(subj.MatchFunction("slow"), func(m *nats.Msg) {
		<-release
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = slow.Unsubscribe() })
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := Call(ctx, nc, subj.MatchFunction("slow"), oneVsOne("a", "b")); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("slow function: err = %v, want a deadline", err)
	}

	for body, field := range map[string]string{
		`not json`: "",
		`{"matches":[{"teams":[["a"],["b"]]}],"extra":true}`: "extra",
		`{"matches":[{"teams":[["a"],["b.>"]]}]}`:            "matches[0].teams[1][0]",
	} {
		garbage, err := nc.Subscribe(subj.MatchFunction("garbage"), func(m *nats.Msg) { _ = m.Respond([]byte(body)) })
		if err != nil {
			t.Fatal(err)
		}
		_, err = Call(t.Context(), nc, subj.MatchFunction("garbage"), oneVsOne("a", "b"))
		_ = garbage.Unsubscribe()
		wantField(t, err, field, "")
	}
}

func TestServeRefusesABadName(t *testing.T) {
	t.Parallel()
	nc := testkit.Connect(t, testkit.RunServer(t))
	if _, err := Serve(nc, "a.>", pairs, quiet()); err == nil {
		t.Fatal("served a function named with a wildcard")
	}
}

// The request as the function receives it is the request as sent.
func TestRequestRoundTrip(t *testing.T) {
	t.Parallel()
	req := oneVsOne("a", "b")
	req.SchemaVersion = SchemaVersion
	req.Candidates[0].Attributes = &events.Attributes{Strings: map[string]string{"platform": "pc"}, Tags: []string{"newbie"}}
	req.Candidates[0].LatenciesMS = map[string]int{"us": 80}
	req.Candidates[1].WaitedMS = 1500
	data, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeRequest(data)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := json.Marshal(got)
	if string(again) != string(data) {
		t.Fatalf("round trip:\n%s\n%s", data, again)
	}
}
