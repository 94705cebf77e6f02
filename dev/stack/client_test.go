package stack_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/client"
	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/ticketapi"
)

// TestGoClient drives the stack through pkg/client, as a game team would:
// two players are matched and assigned, a ticket is cancelled, and a
// follow whose connection is cut resumes where it was (Last-Event-ID) and
// still sees the outcome.
func TestGoClient(t *testing.T) {
	s := startStack(t)
	fe := s.FrontendURL()
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	player := func(t *testing.T, base, name string, hc *http.Client) *client.Client {
		t.Helper()
		tok := devToken(t, fe, name)
		c, err := client.New(client.Config{BaseURL: base, HTTPClient: hc, MinBackoff: 50 * time.Millisecond,
			Token: func(context.Context, string) (string, error) { return tok, nil }})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	skill := 1650

	t.Run("two players are matched and assigned", func(t *testing.T) {
		a, b := player(t, fe, "gc-alice", nil), player(t, fe, "gc-bob", nil)
		va, err := a.Create(ctx, ticketapi.Request{Mode: "1v1", Skill: &skill, Region: "eu"})
		if err != nil || va.Status != events.StatusQueued {
			t.Fatalf("create: %+v %v", va, err)
		}
		done := follow(ctx, a, va.TicketID)
		vb, err := b.Create(ctx, ticketapi.Request{Mode: "1v1", Skill: &skill, Region: "eu"})
		if err != nil {
			t.Fatal(err)
		}
		rb := <-follow(ctx, b, vb.TicketID)
		ra := <-done
		for _, r := range []followed{ra, rb} {
			if r.err != nil || r.view.Status != events.StatusAssigned || r.view.Assignment == nil || r.view.Assignment.URL == "" {
				t.Fatalf("follow: %+v %v (saw %v)", r.view, r.err, r.seen)
			}
		}
		if ra.view.MatchID != rb.view.MatchID {
			t.Fatalf("matches %s and %s", ra.view.MatchID, rb.view.MatchID)
		}
	})

	t.Run("two players queue over the WebSocket", func(t *testing.T) {
		out := make(chan followed, 2)
		for _, name := range []string{"gc-wanda", "gc-xavi"} {
			c := player(t, fe, name, nil)
			go func() {
				var r followed
				r.view, r.err = c.Queue(ctx, ticketapi.Request{Mode: "1v1", Skill: &skill, Region: "eu"}, func(v ticketapi.View) { r.seen = append(r.seen, v.Status) })
				out <- r
			}()
		}
		for range 2 {
			if r := <-out; r.err != nil || r.view.Status != events.StatusAssigned || r.seen[0] != events.StatusQueued {
				t.Fatalf("queue: %+v %v (saw %v)", r.view, r.err, r.seen)
			}
		}
	})

	t.Run("refusals are typed, a refused token is refreshed", func(t *testing.T) {
		tok := devToken(t, fe, "gc-yann")
		var asked []string
		c, err := client.New(client.Config{BaseURL: fe, Token: func(_ context.Context, refused string) (string, error) {
			asked = append(asked, refused)
			if refused == "" {
				return "not-a-token", nil
			}
			return tok, nil
		}})
		if err != nil {
			t.Fatal(err)
		}
		bad := 99999
		_, err = c.Create(ctx, ticketapi.Request{Mode: "1v1", Skill: &bad, Region: "eu"})
		var e *client.Error
		if !errors.Is(err, client.ErrInvalid) || !errors.As(err, &e) || len(e.Body.Fields) == 0 || e.Body.Fields[0].Field != "skill" {
			t.Fatalf("a skill out of range: %v", err)
		}
		if len(asked) != 2 || asked[1] != "not-a-token" {
			t.Fatalf("token source asked with %q", asked)
		}
		if _, err := c.Queue(ctx, ticketapi.Request{Mode: "no-such-mode", Skill: &skill, Region: "eu"}, nil); !errors.Is(err, client.ErrInvalid) {
			t.Fatalf("an unknown mode over the WebSocket: %v", err)
		}
	})

	t.Run("a ticket is cancelled", func(t *testing.T) {
		c := player(t, fe, "gc-carol", nil)
		v, err := c.Create(ctx, ticketapi.Request{Mode: "1v1", Skill: &skill, Region: "asia"})
		if err != nil {
			t.Fatal(err)
		}
		if v, err = c.Cancel(ctx, v.TicketID); err != nil || v.Status != events.StatusCancelled {
			t.Fatalf("cancel: %+v %v", v, err)
		}
		if r := <-follow(ctx, c, v.TicketID); r.err != nil || r.view.Status != events.StatusCancelled {
			t.Fatalf("follow after the cancel: %+v %v", r.view, r.err)
		}
		if _, err := c.Get(ctx, "no-such-ticket"); !errors.Is(err, client.ErrNotFound) {
			t.Fatalf("an unknown ticket: %v", err)
		}
	})

	t.Run("a follow resumes after its connection is cut", func(t *testing.T) {
		px := newCutProxy(t, s.FrontendURL())
		var mu sync.Mutex
		var lastIDs []string
		hc := &http.Client{Transport: recordLastEventID(&mu, &lastIDs)}
		d := player(t, px.url, "gc-dave", hc)
		v, err := d.Create(ctx, ticketapi.Request{Mode: "1v1", Skill: &skill, Region: "us"})
		if err != nil {
			t.Fatal(err)
		}
		queued := make(chan struct{}, 1)
		done := make(chan followed, 1)
		go func() {
			var r followed
			r.view, r.err = d.Follow(ctx, v.TicketID, func(v ticketapi.View) {
				r.seen = append(r.seen, v.Status)
				if v.Status == events.StatusQueued {
					select {
					case queued <- struct{}{}:
					default:
					}
				}
			})
			done <- r
		}()
		<-queued
		px.cut() // the stream dies with the ticket still queued
		e := player(t, fe, "gc-erin", nil)
		if _, err := e.Create(ctx, ticketapi.Request{Mode: "1v1", Skill: &skill, Region: "us"}); err != nil {
			t.Fatal(err)
		}
		r := <-done
		if r.err != nil || r.view.Status != events.StatusAssigned || r.seen[0] != events.StatusQueued {
			t.Fatalf("follow: %+v %v (saw %v)", r.view, r.err, r.seen)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(lastIDs) < 2 || lastIDs[0] != "" || lastIDs[1] != "1" || px.conns() < 2 {
			t.Fatalf("event streams opened with Last-Event-ID %q over %d connections", lastIDs, px.conns())
		}
	})
}

type followed struct {
	view ticketapi.View
	seen []events.Status
	err  error
}

// follow follows a ticket on its own goroutine.
func follow(ctx context.Context, c *client.Client, id string) <-chan followed {
	out := make(chan followed, 1)
	go func() {
		var r followed
		r.view, r.err = c.Follow(ctx, id, func(v ticketapi.View) { r.seen = append(r.seen, v.Status) })
		out <- r
	}()
	return out
}

// recordLastEventID is a transport that notes the Last-Event-ID of each
// event stream it opens.
func recordLastEventID(mu *sync.Mutex, ids *[]string) http.RoundTripper {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	return roundTrip(func(r *http.Request) (*http.Response, error) {
		if r.Method == http.MethodGet {
			mu.Lock()
			*ids = append(*ids, r.Header.Get("Last-Event-ID"))
			mu.Unlock()
		}
		return tr.RoundTrip(r)
	})
}

type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// cutProxy forwards TCP to the frontend; cut closes every connection it
// holds, as a network that drops them would.
type cutProxy struct {
	url   string
	mu    sync.Mutex
	open  []net.Conn
	count int
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	p := &cutProxy{url: "http://" + ln.Addr().String()}
	host := target[len("http://"):]
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", host)
			if err != nil {
				in.Close()
				continue
			}
			p.mu.Lock()
			p.open, p.count = append(p.open, in, out), p.count+1
			p.mu.Unlock()
			go func() { _, _ = io.Copy(out, in); out.Close() }()
			go func() { _, _ = io.Copy(in, out); in.Close() }()
		}
	}()
	t.Cleanup(p.cut)
	return p
}

func (p *cutProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.open {
		c.Close()
	}
	p.open = nil
}

func (p *cutProxy) conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.count
}
