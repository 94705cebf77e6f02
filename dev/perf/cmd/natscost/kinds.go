package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// kind is one kind of message: how to send one, and to wait for the
// answers of those sent.
type kind struct {
	// send sends message i. A sync kind's returns once the server
	// answered; an async kind's once the message is on its way, and wait
	// waits for the answers.
	send  func(ctx context.Context, i int) error
	async bool
	wait  func(ctx context.Context) error
	close func()
}

// kinds are what the system's messages are made of, each with what it
// stands for.
var kinds = []struct{ name, help string }{
	{"core", "a core NATS publish no one hears"},
	{"core-delivered", "a core NATS publish one subscriber hears (a result to a frontend)"},
	{"js-file", "a JetStream publish, awaited asynchronously, to a file stream (R1), a subject per message (a ticket, a result)"},
	{"js-memory", "the same to a memory stream"},
	{"kv-create", "a KV create of a new key, file, awaited (a claim, a player's entry, a record)"},
	{"leader-read", "a last-by-subject message get through the JetStream API (pkg/events' leader reads)"},
}

func kindNames() []string {
	var out []string
	for _, k := range kinds {
		out = append(out, k.name)
	}
	return out
}

func kindHelp() string {
	var out []string
	for _, k := range kinds {
		out = append(out, k.name+": "+k.help)
	}
	return strings.Join(out, "; ")
}

func pickKinds(s string) ([]string, error) {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if !slices.Contains(kindNames(), f) {
			return nil, fmt.Errorf("-kinds: no kind %q (%s)", f, strings.Join(kindNames(), ", "))
		}
		out = append(out, f)
	}
	return out, nil
}

// newKind sets kind name up on nc, on a stream or bucket made anew.
func newKind(ctx context.Context, name string, nc *nats.Conn, size int) (*kind, error) {
	data := make([]byte, size)
	// An async publish refused (a nak, a stream full) is answered, but
	// not stored: the run fails rather than count it (review R12).
	var refused atomic.Pointer[error]
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(inFlight),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, m *nats.Msg, err error) {
			err = fmt.Errorf("publish %s: %w", m.Subject, err)
			refused.CompareAndSwap(nil, &err)
		}))
	if err != nil {
		return nil, err
	}
	nop := func() {}
	flush := func(ctx context.Context) error { return nc.FlushWithContext(ctx) }
	switch name {
	case "core":
		return &kind{async: true, wait: flush, close: nop, send: func(_ context.Context, _ int) error {
			return nc.Publish("cost.core", data)
		}}, nil
	case "core-delivered":
		return delivered(ctx, nc, data)
	case "js-file", "js-memory":
		storage, prefix := jetstream.FileStorage, "cost.file."
		if name == "js-memory" {
			storage, prefix = jetstream.MemoryStorage, "cost.memory."
		}
		if err := fresh(ctx, js, jetstream.StreamConfig{Name: "COST_" + strings.ToUpper(name[3:]), Subjects: []string{prefix + ">"}, Storage: storage}); err != nil {
			return nil, err
		}
		return &kind{async: true, close: nop,
			send: func(_ context.Context, i int) error {
				_, err := js.PublishAsync(prefix+strconv.Itoa(i), data)
				return err
			},
			wait: func(ctx context.Context) error {
				select {
				case <-js.PublishAsyncComplete():
					if err := refused.Load(); err != nil {
						return *err
					}
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			}}, nil
	case "kv-create":
		_ = js.DeleteKeyValue(ctx, "cost")
		kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "cost", Storage: jetstream.FileStorage})
		if err != nil {
			return nil, err
		}
		var key atomic.Int64 // a new key each create, however i repeats
		return &kind{close: nop, wait: flush, send: func(ctx context.Context, _ int) error {
			_, err := kv.Create(ctx, "k"+strconv.FormatInt(key.Add(1), 10), data)
			return err
		}}, nil
	case "leader-read":
		return leaderRead(ctx, js, data)
	}
	return nil, fmt.Errorf("no kind %q", name)
}

// inFlight bounds the messages awaiting their answer in a flat-out run.
const inFlight = 256

// readKeys is how many subjects leader-read reads from, in turn.
const readKeys = 1000

// leaderRead reads the last message of one of readKeys subjects, each
// stored once, through the JetStream API (the stream does not allow
// direct gets: pkg/events reads from the leader so).
func leaderRead(ctx context.Context, js jetstream.JetStream, data []byte) (*kind, error) {
	if err := fresh(ctx, js, jetstream.StreamConfig{Name: "COST_READ", Subjects: []string{"cost.read.>"}, Storage: jetstream.FileStorage}); err != nil {
		return nil, err
	}
	for i := range readKeys {
		if _, err := js.PublishAsync("cost.read."+strconv.Itoa(i), data); err != nil {
			return nil, err
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	s, err := js.Stream(ctx, "COST_READ")
	if err != nil {
		return nil, err
	}
	return &kind{close: func() {}, wait: func(context.Context) error { return nil }, send: func(ctx context.Context, i int) error {
		_, err := s.GetLastMsgForSubject(ctx, "cost.read."+strconv.Itoa(i%readKeys))
		return err
	}}, nil
}

// delivered publishes on nc to a subject one subscriber, on a connection
// of its own, hears; wait waits until it heard every message sent.
func delivered(ctx context.Context, nc *nats.Conn, data []byte) (*kind, error) {
	sc, err := nats.Connect(nc.ConnectedUrl(), nats.Name("natscost-subscriber"))
	if err != nil {
		return nil, err
	}
	var heard, sent atomic.Int64
	if _, err := sc.Subscribe("cost.delivered", func(*nats.Msg) { heard.Add(1) }); err != nil {
		sc.Close()
		return nil, err
	}
	if err := sc.FlushWithContext(ctx); err != nil {
		sc.Close()
		return nil, err
	}
	return &kind{async: true, close: sc.Close,
		send: func(_ context.Context, _ int) error {
			sent.Add(1)
			return nc.Publish("cost.delivered", data)
		},
		wait: func(ctx context.Context) error {
			for heard.Load() < sent.Load() {
				select {
				case <-time.After(time.Millisecond):
				case <-ctx.Done():
					return fmt.Errorf("heard %d of %d: %w", heard.Load(), sent.Load(), ctx.Err())
				}
			}
			return nil
		}}, nil
}

// fresh makes the stream cfg anew: a run's subjects and messages are its
// own.
func fresh(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) error {
	if err := js.DeleteStream(ctx, cfg.Name); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return err
	}
	_, err := js.CreateStream(ctx, cfg)
	return err
}

// paced sends k's messages at rate a second for d, burst at a time (every
// burst/rate seconds), each sync one on a goroutine of its own so that
// none waits for another's answer, and returns how many it sent once
// every one is answered.
func paced(ctx context.Context, k *kind, rate float64, burst int, d time.Duration) (int, error) {
	every := time.Duration(float64(burst) / rate * float64(time.Second))
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	record := func(err error) {
		if err != nil {
			mu.Lock()
			if first == nil {
				first = err
			}
			mu.Unlock()
		}
	}
	start, n := time.Now(), 0
	for b := 0; time.Duration(b)*every < d; b++ {
		if wait := time.Until(start.Add(time.Duration(b) * every)); wait > 0 {
			if err := sleep(ctx, wait); err != nil {
				return n, err
			}
		}
		for range burst {
			i := n
			n++
			if k.async {
				record(k.send(ctx, i))
				continue
			}
			wg.Go(func() { record(k.send(ctx, i)) })
		}
	}
	wg.Wait()
	record(answered(ctx, k))
	return n, first
}

// flatOut sends k's messages as fast as the server answers them for d,
// with up to inFlight awaiting their answer, and returns how many it
// sent once every one is answered.
func flatOut(ctx context.Context, k *kind, d time.Duration) (int, error) {
	var n atomic.Int64
	end := time.Now().Add(d)
	if k.async {
		// inFlight at a time, each round answered before the next: a
		// core publish has no answer of its own, and one sent faster
		// than the server reads would only queue in this process.
		for time.Now().Before(end) {
			for range inFlight {
				if err := k.send(ctx, int(n.Add(1))); err != nil {
					return int(n.Load()), err
				}
			}
			if err := answered(ctx, k); err != nil {
				return int(n.Load()), err
			}
		}
	} else {
		var g sync.WaitGroup
		errs := make([]error, inFlight)
		for w := range inFlight {
			g.Go(func() {
				for time.Now().Before(end) && errs[w] == nil {
					errs[w] = k.send(ctx, int(n.Add(1)))
				}
			})
		}
		g.Wait()
		if err := errors.Join(errs...); err != nil {
			return int(n.Load()), err
		}
	}
	return int(n.Load()), answered(ctx, k)
}

// answered waits, for up to answerWait, until every message k sent is
// answered.
func answered(ctx context.Context, k *kind) error {
	ctx, cancel := context.WithTimeout(ctx, answerWait)
	defer cancel()
	return k.wait(ctx)
}

// answerWait bounds the wait for a run's answers: far above a healthy
// server's milliseconds.
const answerWait = 30 * time.Second

// freePort is a TCP port nothing listens on now.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
