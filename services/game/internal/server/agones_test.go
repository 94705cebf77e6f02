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
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/quickmatch-dev/quickmatch/pkg/agones"
	"github.com/quickmatch-dev/quickmatch/pkg/agones/sdk"
	"github.com/quickmatch-dev/quickmatch/pkg/agones/sdk/sdktest"
)

// newFake is a fake sidecar whose GameServer has a rooms List (capacity
// 10) and a players List (capacity 40), as the chart's Fleet declares.
func newFake(t *testing.T) *sdktest.Server {
	t.Helper()
	return sdktest.New(t, sdktest.Options{Lists: map[string]int64{agones.ListRooms: 10, agones.ListPlayers: 40}})
}

// readyFake is a new fake sidecar whose GameServer a process before the
// one under test has already made Ready, and a client of it that plays
// that process or Agones.
func readyFake(t *testing.T) (*sdktest.Server, *sdk.Client) {
	t.Helper()
	fake := newFake(t)
	client := sdk.New(fake.URL)
	if err := client.Ready(t.Context()); err != nil {
		t.Fatal(err)
	}
	return fake, client
}

// startAgones runs a game server against a new fake sidecar, once Ready.
func startAgones(t *testing.T, cfg Config) (*Server, *httptest.Server, *sdktest.Server) {
	t.Helper()
	fake := newFake(t)
	s, hs, _ := runOn(t, fake, cfg)
	waitFor(t, func() bool { return fake.GameServer().Status.State == "Ready" }, "never Ready")
	return s, hs, fake
}

// runOn runs a game server process against fake. crash ends that
// process for Agones: its sidecar link goes dead (every call fails) and
// its lifecycle stops, as when its container dies. Its rooms are ended
// before crash returns (their releases fail on the dead link), so that
// nothing of it can reach a sidecar later: a fake of another test may
// listen on the port of this link once it is closed.
func runOn(t *testing.T, fake *sdktest.Server, cfg Config) (s *Server, hs *httptest.Server, crash func()) {
	t.Helper()
	return runOnSDK(t, fake, cfg, nil)
}

// runOnSDK is runOn with the process's sidecar client wrapped by wrap
// (nil: not wrapped), for a test that injects faults into it.
func runOnSDK(t *testing.T, fake *sdktest.Server, cfg Config, wrap func(*sdk.Client) SDK) (s *Server, hs *httptest.Server, crash func()) {
	t.Helper()
	target, _ := url.Parse(fake.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	var dead atomic.Bool
	link := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if dead.Load() {
			http.Error(w, "process gone", http.StatusServiceUnavailable)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(link.Close)
	cfg.JoinKeys = keys
	cfg.SDK = sdk.New(link.URL)
	if wrap != nil {
		cfg.SDK = wrap(sdk.New(link.URL))
	}
	if cfg.HealthEvery == 0 {
		cfg.HealthEvery = 50 * time.Millisecond
	}
	s, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	s.retryWait = time.Millisecond // a gone process gives up at once
	hs = httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var crashed atomic.Bool
	crash = func() {
		if crashed.Swap(true) {
			return
		}
		dead.Store(true)
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		endRooms(s)
	}
	t.Cleanup(crash)
	return s, hs, crash
}

// endRooms ends every room of s at once and waits for their ends (a
// drain whose deadline has passed).
func endRooms(s *Server) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s.Drain(ctx)
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

// allocate plays the allocator's GameServerAllocation of match to teams
// (pkg/agones/room.go).
func allocate(t *testing.T, fake *sdktest.Server, match string, teams ...[]string) {
	t.Helper()
	if err := fake.Allocate(sdktest.RoomAllocation(match, agones.Room{Mode: "test", Teams: teams})); err != nil {
		t.Fatalf("allocate %s: %v", match, err)
	}
}

// lists are the values of the fake's rooms and players Lists.
func lists(fake *sdktest.Server) (rooms, players []string) {
	st := fake.GameServer().Status
	return st.Lists[agones.ListRooms].Values, st.Lists[agones.ListPlayers].Values
}

// openIDs are the match ids of the rooms open on s, sorted.
func (s *Server) openIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for id := range s.rooms {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
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
	allocate(t, fake, "m1", []string{"alice"}, []string{"bob"})
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
		return slices.Contains(c, "list rooms -m1") && slices.Contains(c, "list players -alice") && slices.Contains(c, "list players -bob")
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
	if rooms, players := lists(fake); len(rooms) != 0 || len(players) != 0 {
		t.Fatalf("lists after the room: rooms %v players %v", rooms, players)
	}
}

// The players List holds a player once, however many live rooms here
// seat them (Agones drops an allocation's duplicates): a room that ends
// leaves a player seated in another live room in the List.
func TestPlayerSeatedInAnotherLiveRoomStaysListed(t *testing.T) {
	t.Parallel()
	s, hs, fake := startAgones(t, Config{BestOf: 1, Reuse: true})
	allocate(t, fake, "m1", []string{"a"}, []string{"b"})
	allocate(t, fake, "m2", []string{"b"}, []string{"c"})
	waitFor(t, func() bool { return len(s.openIDs()) == 2 }, "rooms not opened")
	a, b := startGame(t, hs, "m1", "a", "b")
	playOneRound(t, a, b)
	next(t, a, "over")
	waitFor(t, func() bool { r, _ := lists(fake); return slices.Equal(r, []string{"m2"}) }, "m1 not given back")
	if _, players := lists(fake); !slices.Equal(players, []string{"b", "c"}) {
		t.Fatalf("players %v after m1, want b (still in m2) and c", players)
	}
	b2, c := startGame(t, hs, "m2", "b", "c")
	playOneRound(t, b2, c)
	next(t, c, "over")
	waitFor(t, func() bool { r, p := lists(fake); return len(r) == 0 && len(p) == 0 }, "m2 not given back")
}

// A join can reach the server before the watch brings the allocation:
// it reads the GameServer, and only a match in the rooms List opens, not
// one with an annotation alone.
func TestJoinBeforeTheWatchChecksTheRoomsList(t *testing.T) {
	t.Parallel()
	fake, client := readyFake(t)
	allocate(t, fake, "old", []string{"a"}, []string{"b"})
	if _, err := client.RemoveListValue(t.Context(), agones.ListRooms, "old"); err != nil {
		t.Fatal(err) // "old" ended: its annotation stays, as in Agones
	}
	allocate(t, fake, "new", []string{"a"}, []string{"b"})
	s, err := New(Config{JoinKeys: keys, SDK: client}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	// Its rooms end before the fake stops (cleanups run last first).
	t.Cleanup(func() { endRooms(s) })
	hs := httptest.NewServer(s.Handler()) // no Run: no watch
	t.Cleanup(hs.Close)
	if _, res, err := dial(t, hs, "old", token(t, "old", "a", time.Minute)); err == nil || res.StatusCode != http.StatusForbidden {
		t.Fatalf("a room with an annotation but not in the rooms List opened: %v", err)
	}
	next(t, join(t, hs, "new", "a"), "welcome")
	if ids := s.openIDs(); !slices.Equal(ids, []string{"new"}) {
		t.Fatalf("open rooms %v", ids)
	}
}

// A live id whose room cannot be read (here the annotation of an older
// allocator, "a,b") can never be played: its rooms slot is given back
// rather than held for the server's life.
func TestUnreadableRoomIsGivenBack(t *testing.T) {
	t.Parallel()
	s, _, fake := startAgones(t, Config{Reuse: true})
	spec := sdktest.RoomAllocation("m1", agones.Room{Mode: "1v1", Teams: [][]string{{"a"}, {"b"}}})
	spec.Metadata.Annotations[agones.MatchAnnotationPrefix+"m1"] = "a,b"
	if err := fake.Allocate(spec); err != nil {
		t.Fatal(err)
	}
	// Its players too: no readable room seats them.
	waitFor(t, func() bool { r, p := lists(fake); return len(r) == 0 && len(p) == 0 }, "unreadable room's slot and players not given back")
	if ids := s.openIDs(); len(ids) != 0 {
		t.Fatalf("open rooms %v", ids)
	}
	waitFor(t, func() bool { return fake.GameServer().Status.State == "Ready" }, "not Ready again")
}

func TestEmptyServerShutsDownWithoutReuse(t *testing.T) {
	t.Parallel()
	_, hs, fake := startAgones(t, Config{BestOf: 1, Reuse: false})
	allocate(t, fake, "m1", []string{"a"}, []string{"b"})
	a, b := startGame(t, hs, "m1", "a", "b")
	playOneRound(t, a, b)
	next(t, a, "over")
	waitFor(t, func() bool { return fake.GameServer().Status.State == "Shutdown" }, "did not shut down when empty")
}

func TestAbandonedAllocationIsGivenBack(t *testing.T) {
	t.Parallel()
	s, _, fake := startAgones(t, Config{IdleTimeout: 200 * time.Millisecond, Reuse: true})
	allocate(t, fake, "m1", []string{"ghost1"}, []string{"ghost2"})
	waitFor(t, func() bool { return s.Rooms() == 1 }, "allocated room not opened from the watch")
	waitFor(t, func() bool { r, p := lists(fake); return len(r) == 0 && len(p) == 0 }, "abandoned room not given back")
}

func TestDrainLetsRunningRoomsFinish(t *testing.T) {
	t.Parallel()
	s, hs, fake := startAgones(t, Config{BestOf: 1, Reuse: true})
	allocate(t, fake, "m1", []string{"a"}, []string{"b"})
	a, b := startGame(t, hs, "m1", "a", "b")
	drained := make(chan struct{})
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Drain(ctx) // SIGTERM
		close(drained)
	}()
	waitFor(t, func() bool { s.mu.Lock(); defer s.mu.Unlock(); return s.draining }, "not draining")
	allocate(t, fake, "m2", []string{"c"}, []string{"d"})
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
	allocate(t, fake, "m1", []string{"a"}, []string{"b"})
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
	fake := newFake(t)
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
