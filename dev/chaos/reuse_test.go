package chaos

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// lostAck is JetStream whose first publish is stored but its ack lost.
type lostAck struct {
	jetstream.JetStream
	publishes int
}

func (l *lostAck) PublishMsg(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	l.publishes++
	ack, err := l.JetStream.PublishMsg(ctx, msg, opts...)
	if err == nil && l.publishes == 1 {
		return nil, context.DeadlineExceeded
	}
	return ack, err
}

// A reuser whose ticket's publish was stored but its ack lost publishes
// it again with the same id, and counts it acknowledged, queued once.
// It gave up at once before, its ticket queued with no client that knew
// of it: a no-show.
func TestAReusersLostAckIsAskedForAgain(t *testing.T) {
	t.Parallel()
	js := testkit.JetStream(t, testkit.Connect(t, testkit.RunServer(t)))
	if err := events.Provision(t.Context(), js, events.Topology{}); err != nil {
		t.Fatal(err)
	}
	lost := &lostAck{JetStream: js}
	u := newReuser("run", nil, lost, nil, 1)
	if !u.queue(t.Context(), "p", "p-1", "eu", 1700, viaNATS, 0) {
		t.Fatalf("a ticket stored with its ack lost was not acknowledged (errors %v)", u.errs)
	}
	s, err := js.Stream(t.Context(), events.Subjects{}.TicketsStream())
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 || lost.publishes != 2 {
		t.Fatalf("%d tickets stored after %d publishes; want 1 after 2", info.State.Msgs, lost.publishes)
	}
}

// A reuser's tries of one publish end inside JetStream's duplicate
// window: past it, a publish sent again would queue a second ticket.
func TestAReusersTriesEndInsideTheDuplicateWindow(t *testing.T) {
	if reuserTimeout >= events.DuplicateWindow {
		t.Fatalf("a reuser tries a publish for %v, past the duplicate window of %v", reuserTimeout, events.DuplicateWindow)
	}
}

// A reuser's POST that created no ticket it knows of is recorded for
// the no-show trace, with how it failed: refused with a status, or
// answered nothing (its frontend killed mid-answer).
func TestAReusersFailedPostIsRecorded(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		status int // 0: the connection dropped
		failed string
	}{
		{"refused", http.StatusServiceUnavailable, "post_503"},
		{"answered nothing", 0, "post_error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				if tc.status == 0 {
					panic(http.ErrAbortHandler)
				}
				w.WriteHeader(tc.status)
			}))
			t.Cleanup(srv.Close)
			u := newReuser("run", []string{srv.URL}, nil, nil, 1)
			if u.queue(t.Context(), "p1", "", "eu", 1650, "http", 0) {
				t.Fatal("queued")
			}
			acked, failed, errs := u.result()
			if len(acked) != 0 || errs["http"] != 1 || len(failed) != 1 || failed[0].PlayerID != "p1" || failed[0].Frontend != srv.URL ||
				failed[0].Failed != tc.failed || failed[0].EndedAt.Before(failed[0].SentAt) {
				t.Fatalf("acked %+v, failed %+v, errors %v; want p1's POST failed %s", acked, failed, errs, tc.failed)
			}
		})
	}
}

// When a player's two matches were formed is read from each match: its
// record, or, with none, its claim of the player's ticket. A match found
// in neither has no time (the checker falls back to its first result),
// and a player in one match is not read.
func TestFormedTimesReadRecordsAndClaims(t *testing.T) {
	t.Parallel()
	js, claims := provisioned(t)
	t0 := time.Now().UTC().Truncate(time.Millisecond)
	claimMatch(t, claims, newMatch("m1", t0, "a-1"))
	putRecord(t, js, newMatch("m2", t0.Add(time.Minute), "a-2"))
	claimMatch(t, claims, newMatch("m4", t0, "b-1"))
	results := []events.Result{
		assigned("a-1", "a", "m1", "s"), assigned("a-2", "a", "m2", "s"),
		assigned("c-1", "c", "m3", "s"), // a player in one match
		assigned("b-1", "b", "m4", "s"), assigned("b-2", "b", "m5", "s"),
	}
	got, err := formedTimes(t.Context(), js, results)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]time.Time{"m1": t0.Add(time.Second), "m2": t0.Add(time.Minute + time.Second), "m4": t0.Add(time.Second)}
	if len(got) != len(want) {
		t.Fatalf("formed %v, want %v", got, want)
	}
	for id, w := range want {
		if !got[id].Equal(w) {
			t.Errorf("%s formed %v, want %v", id, got[id], w)
		}
	}
}
