package server

import (
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/agones"
	"github.com/quickmatch-dev/quickmatch/pkg/agones/sdk"
	"github.com/quickmatch-dev/quickmatch/pkg/agones/sdk/sdktest"
)

const labelRetiring = "label " + agones.RetiringKey + "=true" // the fake's record of SetLabel

// roomBytes is what the allocation of room r for match id adds to the
// GameServer's annotations: its room annotation.
func roomBytes(id string, teams ...[]string) int {
	return len(agones.MatchAnnotationPrefix+id) + len(agones.EncodeRoom(agones.Room{Mode: "test", Teams: teams}))
}

// playedRoomBytes is roomBytes with the seats the room keeps once its
// players joined (resume.go).
func playedRoomBytes(id string, teams ...[]string) int {
	seats := map[string]string{}
	for _, t := range teams {
		for _, p := range t {
			seats[p] = strings.Repeat("0", agones.KeyDigestLen)
		}
	}
	return roomBytes(id, teams...) + len(agones.SeatsAnnotation(id)) + len(agones.EncodeSeats(seats))
}

// lastAllocatedMax is the most Agones' last-allocated annotation takes
// (its value is an RFC 3339 time, of varying length).
var lastAllocatedMax = len(sdktest.LastAllocatedAnnotation) + len(time.RFC3339Nano)

// A server whose annotations cross the threshold labels itself retiring
// (once), still hosts its rooms and one that raced the label in, and
// after its last room shuts down instead of going back to Ready, reuse
// or not.
func TestRetiresAtTheAnnotationThreshold(t *testing.T) {
	t.Parallel()
	m1 := [][]string{{"a"}, {"b"}}
	m2 := [][]string{{strings.Repeat("c", 60)}, {strings.Repeat("d", 60)}}
	// Below it with m1's annotation, whatever the length of Agones'
	// last-allocated time; at or above it with m2's as well.
	threshold := lastAllocatedMax + roomBytes("m1", m1...) + 1
	s, hs, fake := startAgones(t, Config{BestOf: 1, Reuse: true, RetireAnnotationBytes: threshold})
	allocate(t, fake, "m1", m1...)
	waitFor(t, func() bool { return slices.Equal(s.openIDs(), []string{"m1"}) }, "m1 not opened")
	if s.isRetiring() {
		t.Fatalf("retiring below the threshold (%d bytes of annotations, threshold %d)",
			annotationBytes(fake.GameServer().ObjectMeta.Annotations), threshold)
	}
	allocate(t, fake, "m2", m2...)
	waitFor(t, func() bool { return fake.GameServer().ObjectMeta.Labels[agones.RetiringLabel] == "true" }, "not labelled retiring")
	allocate(t, fake, "m3", []string{"e"}, []string{"f"}) // raced the label in
	waitFor(t, func() bool { return len(s.openIDs()) == 3 }, "a retiring server did not open its allocated rooms")

	for _, m := range [][3]string{{"m1", "a", "b"}, {"m2", m2[0][0], m2[1][0]}, {"m3", "e", "f"}} {
		if st := fake.GameServer().Status.State; st != "Allocated" {
			t.Fatalf("state %s before %s ended, want Allocated", st, m[0])
		}
		x, y := startGame(t, hs, m[0], m[1], m[2])
		playOneRound(t, x, y)
		next(t, x, "over")
	}
	waitFor(t, func() bool { return fake.GameServer().Status.State == "Shutdown" }, "a retiring server did not shut down after its last room")
	if n := countCalls(fake, "ready"); n != 1 {
		t.Fatalf("%d ready calls: a retiring server went back to Ready", n)
	}
	if n := countCalls(fake, labelRetiring); n != 1 {
		t.Fatalf("labelled retiring %d times, want once", n)
	}
}

// Below the threshold a reused server goes back to Ready after its last
// room, unlabelled.
func TestBelowTheRetireThresholdReadyAgain(t *testing.T) {
	t.Parallel()
	m1 := [][]string{{"a"}, {"b"}}
	s, hs, fake := startAgones(t, Config{BestOf: 1, Reuse: true, RetireAnnotationBytes: lastAllocatedMax + playedRoomBytes("m1", m1...) + 1})
	allocate(t, fake, "m1", m1...)
	a, b := startGame(t, hs, "m1", "a", "b")
	playOneRound(t, a, b)
	next(t, a, "over")
	waitFor(t, func() bool { return countCalls(fake, "ready") == 2 && fake.GameServer().Status.State == "Ready" }, "not Ready again below the threshold")
	if _, ok := fake.GameServer().ObjectMeta.Labels[agones.RetiringLabel]; ok || s.isRetiring() {
		t.Fatal("retiring below the threshold")
	}
}

// A process restarted in place on a GameServer an earlier process
// labelled retiring is retiring from the label alone (its threshold is
// far above these annotations), and does not label it again.
func TestRestartOnARetiringServerStillRetires(t *testing.T) {
	t.Parallel()
	fake, client := readyFake(t)
	allocate(t, fake, "m1", []string{"a"}, []string{"b"})
	if err := client.SetLabel(t.Context(), agones.RetiringKey, "true"); err != nil {
		t.Fatal(err) // the earlier process
	}
	s, hs, _ := runOn(t, fake, Config{BestOf: 1, Reuse: true})
	waitFor(t, func() bool { return slices.Equal(s.openIDs(), []string{"m1"}) }, "m1 not opened after the restart")
	a, b := startGame(t, hs, "m1", "a", "b")
	playOneRound(t, a, b)
	next(t, a, "over")
	waitFor(t, func() bool { return fake.GameServer().Status.State == "Shutdown" }, "a labelled server did not shut down after its last room")
	if r, l := countCalls(fake, "ready"), countCalls(fake, labelRetiring); r != 1 || l != 1 {
		t.Fatalf("%d ready calls, %d labels: want only the earlier process's", r, l)
	}
}

// A process that starts on a GameServer already over the threshold with
// no live room (it crashed between its last room and Ready) asks Agones
// to shut it down: Ready would offer a server no allocation may pick.
func TestStartingOverTheThresholdShutsDown(t *testing.T) {
	t.Parallel()
	fake, client := readyFake(t)
	allocate(t, fake, "old", []string{"a"}, []string{"b"})
	for _, lv := range [][2]string{{agones.ListPlayers, "a"}, {agones.ListPlayers, "b"}, {agones.ListRooms, "old"}} {
		if _, err := client.RemoveListValue(t.Context(), lv[0], lv[1]); err != nil {
			t.Fatal(err)
		}
	}
	_, _, _ = runOn(t, fake, Config{RetireAnnotationBytes: roomBytes("old", []string{"a"}, []string{"b"})})
	waitFor(t, func() bool { return fake.GameServer().Status.State == "Shutdown" }, "started over the threshold and did not shut down")
	waitFor(t, func() bool { return countCalls(fake, labelRetiring) == 1 }, "not labelled retiring")
	if n := countCalls(fake, "ready"); n != 1 {
		t.Fatalf("%d ready calls: the process went Ready over the threshold", n)
	}
}

// annotationsOf returns annotations whose size, as Kubernetes counts it
// (every key and value), is n: a room annotation and Agones' own.
func annotationsOf(n int) map[string]string {
	a := map[string]string{sdktest.LastAllocatedAnnotation: "2026-12-01T20:30:19Z"}
	key := agones.MatchAnnotationPrefix + "m1"
	a[key] = strings.Repeat("x", n-annotationBytes(a)-len(key))
	return a
}

// The threshold is "at or above", counted over keys and values, and a
// GameServer seen many times is labelled once.
func TestRetireThreshold(t *testing.T) {
	t.Parallel()
	const threshold = 1000
	for _, c := range []struct {
		name     string
		gs       sdk.GameServer
		retiring bool
		labels   int
	}{
		{"one byte below", sdk.GameServer{ObjectMeta: sdk.ObjectMeta{Annotations: annotationsOf(threshold - 1)}}, false, 0},
		{"at", sdk.GameServer{ObjectMeta: sdk.ObjectMeta{Annotations: annotationsOf(threshold)}}, true, 1},
		{"above", sdk.GameServer{ObjectMeta: sdk.ObjectMeta{Annotations: annotationsOf(threshold + 5000)}}, true, 1},
		{"labelled already", sdk.GameServer{ObjectMeta: sdk.ObjectMeta{Annotations: annotationsOf(100),
			Labels: map[string]string{agones.RetiringLabel: "true"}}}, true, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			fake := newFake(t)
			s, err := New(Config{JoinKeys: keys, SDK: sdk.New(fake.URL), RetireAnnotationBytes: threshold},
				slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				t.Fatal(err)
			}
			for range 3 {
				s.observe(c.gs)
			}
			s.wg.Wait() // the label, if any
			if s.isRetiring() != c.retiring {
				t.Errorf("retiring %v at %d bytes, want %v", s.isRetiring(), annotationBytes(c.gs.ObjectMeta.Annotations), c.retiring)
			}
			if n := countCalls(fake, labelRetiring); n != c.labels {
				t.Errorf("%d labels, want %d", n, c.labels)
			}
		})
	}
}

// A threshold that leaves no room for the largest room's annotation
// under Kubernetes' limit is refused.
func TestRetireThresholdLeavesRoomForTheLargestRoom(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		bytes int
		ok    bool
	}{{0, true}, {192 << 10, true}, {annotationLimit - largestRoomAnnotation, true}, {annotationLimit - largestRoomAnnotation + 1, false}, {annotationLimit, false}} {
		_, err := New(Config{JoinKeys: keys, RetireAnnotationBytes: c.bytes}, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if (err == nil) != c.ok {
			t.Errorf("RetireAnnotationBytes %d: %v", c.bytes, err)
		}
	}
	if largestRoomAnnotation < 25000 || largestRoomAnnotation > 29000 {
		t.Errorf("largest room annotation %d bytes: 100 players of 64-byte ids take about 7 KB, their kept seats 10 KB, and as many let go 10 KB more", largestRoomAnnotation)
	}
}
