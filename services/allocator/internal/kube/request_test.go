package kube

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/quickmatch-dev/quickmatch/pkg/agones"
	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/services/allocator/internal/allocator"
)

func twoVtwo() events.Match {
	m := events.Match{SchemaVersion: events.SchemaVersion, MatchID: "m1", Mode: "2v2", Region: "eu", Tier: "gold"}
	for i, p := range []string{"a", "b", "c", "d"} {
		m.Tickets = append(m.Tickets, events.MatchTicket{TicketID: "t-" + p, Players: []string{p}, Team: i / 2})
	}
	return m
}

// TestRequestAsksForListRoom: in every mode the allocation asks for room
// in the rooms List (one) and the players List (the whole match) in each
// selector, adds the match id and its players, and writes the room; the
// modes that share servers put the fullest first by the rooms List.
func TestRequestAsksForListRoom(t *testing.T) {
	t.Parallel()
	fits := map[string]agones.ListSelector{agones.ListRooms: {MinAvailable: 1}, agones.ListPlayers: {MinAvailable: 4}}
	adds := map[string]agones.ListAction{agones.ListRooms: {AddValues: []string{"m1"}}, agones.ListPlayers: {AddValues: []string{"a", "b", "c", "d"}}}
	fullest := []agones.Priority{{Type: "List", Key: agones.ListRooms, Order: "Ascending"}}
	for _, tt := range []struct {
		mode       Mode
		selectors  int
		priorities []agones.Priority
	}{
		{HighDensity, 2, fullest},
		{LabelLocking, 2, fullest},
		{OnePerServer, 1, nil},
	} {
		b := &Backend{cfg: Config{Mode: tt.mode}}
		gsa, err := b.Request(Cluster{Namespace: "games", Fleet: "rps"}, twoVtwo())
		if err != nil {
			t.Fatalf("%s: %v", tt.mode, err)
		}
		if len(gsa.Spec.Selectors) != tt.selectors || !reflect.DeepEqual(gsa.Spec.Priorities, tt.priorities) || !reflect.DeepEqual(gsa.Spec.Lists, adds) || gsa.Spec.Counters != nil {
			t.Errorf("%s: %+v", tt.mode, gsa.Spec)
		}
		for i, s := range gsa.Spec.Selectors {
			if !reflect.DeepEqual(s.Lists, fits) || s.Counters != nil {
				t.Errorf("%s: selector %d %+v", tt.mode, i, s)
			}
		}
		room, err := agones.DecodeRoom(gsa.Spec.Metadata.Annotations[agones.MatchAnnotationPrefix+"m1"])
		if err != nil || !reflect.DeepEqual(room, agones.Room{Mode: "2v2", Teams: [][]string{{"a", "b"}, {"c", "d"}}}) {
			t.Errorf("%s: room %+v %v", tt.mode, room, err)
		}
	}
}

// TestRequestOfARoomOpenedEarly: a match that started early asks for room for
// its players, not for the room's seats (its free seats are filled
// later, a player at a time, each added to the players List by the game
// server), adds them alone, and writes the room's full shape, its empty
// team as [].
func TestRequestOfARoomOpenedEarly(t *testing.T) {
	t.Parallel()
	m := events.Match{SchemaVersion: events.SchemaVersion, MatchID: "m1", Mode: "ffa", Region: "eu", Tier: "gold", Teams: 4, TeamSize: 1, AcceptsBackfill: true}
	for i, p := range []string{"a", "b", "c"} {
		m.Tickets = append(m.Tickets, events.MatchTicket{TicketID: "t-" + p, Players: []string{p}, Team: i})
	}
	b := &Backend{cfg: Config{Mode: HighDensity}}
	gsa, err := b.Request(Cluster{Namespace: "games", Fleet: "rps"}, m)
	if err != nil {
		t.Fatal(err)
	}
	fits := map[string]agones.ListSelector{agones.ListRooms: {MinAvailable: 1}, agones.ListPlayers: {MinAvailable: 3}}
	for i, s := range gsa.Spec.Selectors {
		if !reflect.DeepEqual(s.Lists, fits) {
			t.Errorf("selector %d %+v", i, s.Lists)
		}
	}
	if adds := gsa.Spec.Lists[agones.ListPlayers].AddValues; !reflect.DeepEqual(adds, []string{"a", "b", "c"}) {
		t.Errorf("players added: %v", adds)
	}
	v := gsa.Spec.Metadata.Annotations[agones.MatchAnnotationPrefix+"m1"]
	if v != `{"mode":"ffa","teams":[["a"],["b"],["c"],[]],"backfill":true,"team_size":1}` {
		t.Errorf("room annotation %s", v)
	}
}

// TestAllocateRefusesBeforeAnyCall: a mode no cluster hosts, and a match
// no room can seat, fail as permanent without reaching a cluster (the
// cluster here does not exist).
func TestAllocateRefusesBeforeAnyCall(t *testing.T) {
	t.Parallel()
	b, err := New(Config{}, []Cluster{{Name: "duel", Config: &rest.Config{Host: "http://127.0.0.1:1"}, Fleet: "rps", Modes: []string{"1v1"}}},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Allocate(t.Context(), twoVtwo()); !errors.Is(err, allocator.ErrPermanent) || !errors.Is(err, allocator.ErrModeNotHosted) || !strings.Contains(err.Error(), `"2v2"`) {
		t.Errorf("2v2 on a 1v1 fleet: %v", err)
	}
	uneven := events.Match{SchemaVersion: events.SchemaVersion, MatchID: "m2", Mode: "1v1", Region: "eu", Tickets: []events.MatchTicket{
		{TicketID: "t1", Players: []string{"a", "b"}, Team: 0}, {TicketID: "t2", Players: []string{"c"}, Team: 1},
	}}
	if _, err := b.Allocate(t.Context(), uneven); !errors.Is(err, allocator.ErrPermanent) || errors.Is(err, ErrAPI) {
		t.Errorf("uneven teams: %v", err)
	}
}

// TestLoadClustersModes: a clusters file entry's modes are read, absent
// is every mode, and a mode that is not a token is refused.
func TestLoadClustersModes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:6443"}}]
users: [{name: u, user: {token: x}}]
contexts: [{name: ctx, context: {cluster: c, user: u}}]
current-context: ctx
`), 0o600); err != nil {
		t.Fatal(err)
	}
	write := func(body string) string {
		p := filepath.Join(dir, "clusters.json")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	got, err := LoadClusters(write(`[{"name":"duel","kubeconfig":"`+kubeconfig+`","fleet":"rps-duel","region":"eu","modes":["1v1"]},
		{"name":"any","kubeconfig":"`+kubeconfig+`","fleet":"rps","region":"us"}]`), "", "", "")
	if err != nil || len(got) != 2 || !reflect.DeepEqual(got[0].Modes, []string{"1v1"}) || got[1].Modes != nil || !got[1].hosts("5v5") || got[0].hosts("2v2") {
		t.Fatalf("%+v %v", got, err)
	}
	if _, err := LoadClusters(write(`[{"name":"bad","kubeconfig":"`+kubeconfig+`","fleet":"rps","modes":["1v1","a.b"]}]`), "", "", ""); err == nil || !strings.Contains(err.Error(), `"a.b"`) {
		t.Fatalf("bad mode: %v", err)
	}
	// A fleet's scheduling is asked of Agones with its allocations: an
	// allocation Packed on a Distributed fleet undid its operator's choice.
	got, err = LoadClusters(write(`[{"name":"spread","kubeconfig":"`+kubeconfig+`","fleet":"rps","region":"eu","scheduling":"Distributed"}]`), "", "", "")
	if err != nil || got[0].Scheduling != Distributed {
		t.Fatalf("%+v %v", got, err)
	}
	b, err := New(Config{Mode: HighDensity}, got, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		c    Cluster
		want string
	}{{got[0], Distributed}, {Cluster{Name: "p", Fleet: "rps"}, Packed}} {
		if gsa, err := b.Request(tc.c, twoVtwo()); err != nil || gsa.Spec.Scheduling != tc.want {
			t.Fatalf("%s: scheduling %q %v, want %s", tc.c.Name, gsa.Spec.Scheduling, err, tc.want)
		}
	}
	if _, err := LoadClusters(write(`[{"name":"bad","kubeconfig":"`+kubeconfig+`","fleet":"rps","scheduling":"Spread"}]`), "", "", ""); err == nil || !strings.Contains(err.Error(), `"Spread"`) {
		t.Fatalf("bad scheduling: %v", err)
	}
}

// TestOrderPrefersTheMatchRegion: clusters of the match's region come
// before a higher-priority cluster elsewhere; the others stay as the
// spillover, and a mode a cluster does not host leaves it out.
func TestOrderPrefersTheMatchRegion(t *testing.T) {
	t.Parallel()
	host := &rest.Config{Host: "http://127.0.0.1:1"}
	b, err := New(Config{}, []Cluster{
		{Name: "us-1", Config: host, Fleet: "rps", Region: "us", Priority: 0},
		{Name: "eu-1", Config: host, Fleet: "rps", Region: "eu", Priority: 1},
		{Name: "eu-duel", Config: host, Fleet: "duel", Region: "eu", Priority: 2, Modes: []string{"1v1"}},
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	names := func(cs []*cluster) (out []string) {
		for _, c := range cs {
			out = append(out, c.Name)
		}
		return out
	}
	for _, tt := range []struct {
		mode, region string
		want         []string
	}{
		{"2v2", "eu", []string{"eu-1", "us-1"}},
		{"2v2", "us", []string{"us-1", "eu-1"}},
		{"1v1", "eu", []string{"eu-1", "eu-duel", "us-1"}},
		{"1v1", "asia", []string{"us-1", "eu-1", "eu-duel"}},
	} {
		if got := names(b.order(tt.mode, tt.region)); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s in %s: %v, want %v", tt.mode, tt.region, got, tt.want)
		}
	}
}

// TestNewLeavesTheDefaultClientAlone: for a plain-HTTP cluster client-go
// hands back http.DefaultClient; the backend's timeout must not be set
// on it (it was, and raced between backends built in parallel).
func TestNewLeavesTheDefaultClientAlone(t *testing.T) {
	before := http.DefaultClient.Timeout
	b, err := New(Config{Timeout: 7 * time.Second}, []Cluster{{Name: "plain", Config: &rest.Config{Host: "http://127.0.0.1:1"}, Fleet: "rps"}},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if http.DefaultClient.Timeout != before {
		t.Fatalf("http.DefaultClient.Timeout became %v", http.DefaultClient.Timeout)
	}
	if got := b.clusters[0].hc; got == http.DefaultClient || got.Timeout != 7*time.Second {
		t.Fatalf("the cluster's client: default=%v timeout=%v", got == http.DefaultClient, got.Timeout)
	}
}
