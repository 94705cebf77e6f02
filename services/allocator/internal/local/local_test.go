package local

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/services/allocator/internal/allocator"
)

// fakeGame answers /status like the game server does.
func fakeGame(t *testing.T, name string, rooms, max *atomic.Int32) Target {
	t.Helper()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/status" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintf(w, `{"rooms":%d,"max_rooms":%d}`, rooms.Load(), max.Load())
	}))
	t.Cleanup(hs.Close)
	host, port, _ := net.SplitHostPort(hs.Listener.Addr().String())
	p, _ := strconv.Atoi(port)
	return Target{Server: allocator.Server{Name: name, Address: host, Port: p}}
}

func TestAllocatePrefersRoomAndSkipsFullAndDown(t *testing.T) {
	t.Parallel()
	var aRooms, aMax, bRooms, bMax atomic.Int32
	aRooms.Store(9)
	aMax.Store(10)
	bRooms.Store(2)
	bMax.Store(10)
	down := Target{Server: allocator.Server{Name: "down", Address: "127.0.0.1", Port: 1}}
	// b is seen by players at another address than the allocator reads
	// its /status from, as in docker-compose.
	gb := fakeGame(t, "b", &bRooms, &bMax)
	gb.StatusAddr = net.JoinHostPort(gb.Address, strconv.Itoa(gb.Port))
	gb.Address, gb.Port = "players.example", 7001
	b := New([]Target{fakeGame(t, "a", &aRooms, &aMax), gb, down})
	ctx := context.Background()
	if _, known := b.Capacity("eu"); known {
		t.Fatal("capacity known before any poll")
	}
	b.poll(ctx)
	if c, known := b.Capacity("eu"); c.FreeRooms != 9 || c.TotalRooms != 20 || c.Servers != 2 || c.AllocatedServers != 2 || !known {
		t.Fatalf("capacity %+v (known %v)", c, known)
	}
	s, err := b.Allocate(ctx, events.Match{MatchID: "m1"})
	if err != nil || s.Name != "b" || s.Address != "players.example" || s.Port != 7001 {
		t.Fatalf("first match went to %+v (%v), want b at players.example:7001 (8 free)", s, err)
	}
	if again, _ := b.Allocate(ctx, events.Match{MatchID: "m1"}); again != s {
		t.Fatal("the same match got another server")
	}
	bRooms.Store(10) // b fills up
	b.poll(ctx)
	if s, _ := b.Allocate(ctx, events.Match{MatchID: "m2"}); s.Name != "a" {
		t.Fatalf("m2 went to %s, want a", s.Name)
	}
	aRooms.Store(10)
	b.poll(ctx)
	if _, err := b.Allocate(ctx, events.Match{MatchID: "m3"}); !errors.Is(err, allocator.ErrNoCapacity) {
		t.Fatalf("all full: %v", err)
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	s, err := Parse("g1=127.0.0.1:7000, 127.0.0.1:7001, g3=localhost:7002@game-3:7000")
	if err != nil || len(s) != 3 || s[0].Name != "g1" || s[1].Name != "local-7001" || s[1].Port != 7001 ||
		s[2].Address != "localhost" || s[2].Port != 7002 || s[2].StatusAddr != "game-3:7000" || s[0].StatusAddr != "" {
		t.Fatalf("%+v %v", s, err)
	}
	for _, bad := range []string{"", "nohost", "h:99999", "h:x", "h:1@nohost"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}
