package server

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/quickmatch-dev/quickmatch/pkg/agones"
	"github.com/quickmatch-dev/quickmatch/pkg/agones/sdk"
	"github.com/quickmatch-dev/quickmatch/pkg/agones/sdk/sdktest"
)

// startAgones runs a game server against a fake sidecar whose GameServer
// has a rooms counter (capacity 10) and a players list (capacity 20).
func startAgones(t *testing.T, cfg Config) (*Server, *httptest.Server, *sdktest.Server) {
	t.Helper()
	fake := sdktest.New(t, sdktest.Options{Counters: map[string]int64{agones.CounterRooms: 10}, Lists: map[string]int64{agones.ListPlayers: 20}})
	cfg.JoinKeys = keys
	cfg.SDK = sdk.New(fake.URL)
	cfg.HealthEvery = 50 * time.Millisecond
	s, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	waitFor(t, func() bool { return fake.GameServer().Status.State == "Ready" }, "never Ready")
	return s, hs, fake
}

func waitFor(t *testing.T, cond func() bool, msg string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal(msg)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// allocate plays the allocator's GameServerAllocation for a match.
func allocate(t *testing.T, fake *sdktest.Server, match string, players ...string) {
	t.Helper()
	if err := fake.Allocate(map[string]string{agones.MatchAnnotationPrefix + match: strings.Join(players, ",")},
		map[string]int64{agones.CounterRooms: 1}, map[string][]string{agones.ListPlayers: players}); err != nil {
		t.Fatal(err)
	}
}

// playOneRound: a plays rock, b scissors; a wins the round.
func playOneRound(t *testing.T, a, b *websocket.Conn) {
	t.Helper()
	move(t, a, "rock")
	move(t, b, "scissors")
}

func TestAgonesReadyAndHealth(t *testing.T) {
	t.Parallel()
	_, _, fake := startAgones(t, Config{})
	waitFor(t, func() bool { return fake.Healths() >= 2 }, "no health pings")
}

func TestAllocatedRoomAdmitsOnlyItsPlayersAndIsGivenBack(t *testing.T) {
	t.Parallel()
	_, hs, fake := startAgones(t, Config{BestOf: 1, Reuse: true})
	allocate(t, fake, "m1", "alice", "bob")
	// A valid token, but for a player the match was not allocated to.
	if _, res, err := dial(t, hs, "m1", token(t, "m1", "eve", time.Minute)); err == nil || res.StatusCode != http.StatusForbidden {
		t.Fatalf("eve joined: %v", err)
	}
	// A valid token for a match not allocated here.
	if _, res, err := dial(t, hs, "m9", token(t, "m9", "alice", time.Minute)); err == nil || res.StatusCode != http.StatusForbidden {
		t.Fatalf("unallocated room: %v", err)
	}
	a, b := startGame(t, hs, "m1", "alice", "bob")
	playOneRound(t, a, b)
	if m := next(t, a, "over"); m.Winner != "alice" {
		t.Fatalf("over %+v", m)
	}
	waitFor(t, func() bool {
		c := fake.Calls()
		return slices.Contains(c, "counter rooms -1") && slices.Contains(c, "list players -alice") && slices.Contains(c, "list players -bob")
	}, "room not given back")
	// Reuse: once empty, back to Ready (the second ready call).
	waitFor(t, func() bool {
		n := 0
		for _, c := range fake.Calls() {
			if c == "ready" {
				n++
			}
		}
		return n == 2 && fake.GameServer().Status.State == "Ready"
	}, "not ready again for reuse")
	gs := fake.GameServer()
	if gs.Status.Counters[agones.CounterRooms].Count != 0 || len(gs.Status.Lists[agones.ListPlayers].Values) != 0 {
		t.Fatalf("counts after the room: %+v", gs.Status)
	}
}

func TestEmptyServerShutsDownWithoutReuse(t *testing.T) {
	t.Parallel()
	_, hs, fake := startAgones(t, Config{BestOf: 1, Reuse: false})
	allocate(t, fake, "m1", "a", "b")
	a, b := startGame(t, hs, "m1", "a", "b")
	playOneRound(t, a, b)
	next(t, a, "over")
	waitFor(t, func() bool { return fake.GameServer().Status.State == "Shutdown" }, "did not shut down when empty")
}

func TestAbandonedAllocationIsGivenBack(t *testing.T) {
	t.Parallel()
	s, _, fake := startAgones(t, Config{IdleTimeout: 200 * time.Millisecond, Reuse: true})
	allocate(t, fake, "m1", "ghost1", "ghost2")
	waitFor(t, func() bool { return s.Rooms() == 1 }, "allocated room not opened from the watch")
	waitFor(t, func() bool {
		return fake.GameServer().Status.Counters[agones.CounterRooms].Count == 0 && slices.Contains(fake.Calls(), "list players -ghost2")
	}, "abandoned room not given back")
}

func TestDrainLetsRunningRoomsFinish(t *testing.T) {
	t.Parallel()
	s, hs, fake := startAgones(t, Config{BestOf: 1, Reuse: true})
	allocate(t, fake, "m1", "a", "b")
	a, b := startGame(t, hs, "m1", "a", "b")
	drained := make(chan struct{})
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Drain(ctx) // SIGTERM
		close(drained)
	}()
	waitFor(t, func() bool { s.mu.Lock(); defer s.mu.Unlock(); return s.draining }, "not draining")
	allocate(t, fake, "m2", "c", "d")
	if _, res, err := dial(t, hs, "m2", token(t, "m2", "c", time.Minute)); err == nil || res.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("new room while draining: %v", err)
	}
	select {
	case <-drained:
		t.Fatal("drain finished with a game running")
	case <-time.After(100 * time.Millisecond):
	}
	playOneRound(t, a, b)
	if m := next(t, b, "over"); m.Winner != "a" {
		t.Fatalf("over %+v", m)
	}
	<-drained
	if st := fake.GameServer().Status.State; st != "Shutdown" {
		t.Fatalf("state after drain %q", st)
	}
}

func TestDrainDeadlineEndsRoomsWithAReason(t *testing.T) {
	t.Parallel()
	s, hs, fake := startAgones(t, Config{Reuse: true})
	allocate(t, fake, "m1", "a", "b")
	a, b := startGame(t, hs, "m1", "a", "b")
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	s.Drain(ctx)
	if m := next(t, a, "over"); !strings.Contains(m.Reason, "shutting down") {
		t.Fatalf("a was told %+v", m)
	}
	if m := next(t, b, "over"); !strings.Contains(m.Reason, "shutting down") {
		t.Fatalf("b was told %+v", m)
	}
	if st := fake.GameServer().Status.State; st != "Shutdown" {
		t.Fatalf("state %q", st)
	}
}

// The sidecar may start after the game server: Ready is retried until it
// answers instead of the process exiting.
func TestAgonesWaitsForALateSidecar(t *testing.T) {
	fake := sdktest.New(t, sdktest.Options{Counters: map[string]int64{agones.CounterRooms: 10}, Lists: map[string]int64{agones.ListPlayers: 20}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there until the "sidecar" starts
	s, err := New(Config{JoinKeys: keys, SDK: sdk.New("http://" + addr), HealthEvery: 50 * time.Millisecond},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	time.Sleep(1200 * time.Millisecond) // a few refused Ready calls
	select {
	case err := <-done:
		t.Fatalf("Run gave up while the sidecar was starting: %v", err)
	default:
	}
	target, _ := url.Parse(fake.URL)
	late := httptest.NewUnstartedServer(httputil.NewSingleHostReverseProxy(target))
	if late.Listener, err = net.Listen("tcp", addr); err != nil {
		t.Skipf("port %s was taken meanwhile: %v", addr, err)
	}
	late.Start()
	defer late.Close()
	waitFor(t, func() bool { return fake.GameServer().Status.State == "Ready" }, "never Ready after the sidecar started")
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}
