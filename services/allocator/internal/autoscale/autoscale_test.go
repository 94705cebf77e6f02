package autoscale

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/quickmatch-dev/quickmatch/pkg/agones"
	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/envflag"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

func TestDesired(t *testing.T) {
	t.Parallel()
	rooms := func(allocCount, allocCap, capTotal int64) map[string]agones.AggregatedStatus {
		return map[string]agones.AggregatedStatus{agones.ListRooms: {AllocatedCount: allocCount, AllocatedCapacity: allocCap, Capacity: capTotal}}
	}
	tests := []struct {
		name    string
		cfg     Config
		st      agones.FleetStatus
		spec    int // the Fleet's rooms-per-server label
		waiting int
		want    int32
	}{
		{"idle fleet keeps the buffer", Config{Buffer: 2}, agones.FleetStatus{Replicas: 5, ReadyReplicas: 5}, 0, 0, 2},
		{"demand beyond free rooms adds servers", Config{Buffer: 1},
			agones.FleetStatus{Replicas: 5, ReadyReplicas: 2, AllocatedReplicas: 3, Lists: rooms(28, 30, 50)}, 0, 40, 6},
		{"free rooms on allocated servers absorb demand", Config{Buffer: 1},
			agones.FleetStatus{Replicas: 4, ReadyReplicas: 1, AllocatedReplicas: 3, Lists: rooms(10, 30, 40)}, 0, 30, 4},
		{"reserved servers are kept", Config{}, agones.FleetStatus{Replicas: 3, ReservedReplicas: 2, AllocatedReplicas: 1}, 0, 0, 3},
		{"no rooms list uses rooms per server", Config{RoomsPerServer: 4}, agones.FleetStatus{Replicas: 1, ReadyReplicas: 1}, 0, 20, 3},
		{"bounded by max", Config{MaxReplicas: 10}, agones.FleetStatus{Replicas: 1}, 0, 10000, 10},
		{"bounded by min", Config{MinReplicas: 3}, agones.FleetStatus{}, 0, 0, 3},
		// Four full servers whose SDKs raised their rooms List to 1000:
		// counted for their spec's 10 rooms (-autoscale-rooms-per-server),
		// or the 20 of their Fleet's label, not for 4,000 free rooms.
		{"a raised List capacity hides no demand", Config{Buffer: 1, RoomsPerServer: 10},
			agones.FleetStatus{Replicas: 4, AllocatedReplicas: 4, Lists: rooms(40, 4000, 4000)}, 0, 40, 7},
		{"the Fleet's label bounds a server", Config{Buffer: 1, RoomsPerServer: 10},
			agones.FleetStatus{Replicas: 4, AllocatedReplicas: 4, Lists: rooms(80, 4000, 4000)}, 20, 40, 6},
	}
	for _, tt := range tests {
		if got := tt.cfg.Desired(tt.st, tt.spec, tt.waiting); got != tt.want {
			t.Errorf("%s: got %d, want %d", tt.name, got, tt.want)
		}
	}
}

type fixedDemand map[string]int

func (d fixedDemand) Waiting(_ context.Context, region string) (int, error) {
	n, ok := d[region]
	if !ok {
		return 0, errors.New("no figure")
	}
	return n, nil
}

// review is a FleetAutoscaleReview as Agones posts it, with a status field
// (players) this webhook does not use.
const review = `{"apiVersion":"autoscaling.agones.dev/v1","kind":"FleetAutoscaleReview","request":{"uid":"4a7b1c1e-0000","name":"rps-us","namespace":"games",
 "status":{"replicas":5,"readyReplicas":2,"reservedReplicas":0,"allocatedReplicas":3,"players":{"count":6,"capacity":60},
 "lists":{"rooms":{"allocatedCount":28,"allocatedCapacity":30,"count":28,"capacity":50}}},
 "labels":{"quickmatch.dev/region":"us"}},"response":null}`

func post(t *testing.T, h http.Handler, method, body string) (int, agones.FleetAutoscaleReview, string) {
	t.Helper()
	req := httptest.NewRequest(method, "/autoscale", strings.NewReader(body))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var out agones.FleetAutoscaleReview
	_ = json.Unmarshal(rec.Body.Bytes(), &out)
	return rec.Code, out, rec.Body.String()
}

func TestWebhookAnswersAgones(t *testing.T) {
	t.Parallel()
	h := New(Config{Buffer: 1}, fixedDemand{"us": 40}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	code, out, raw := post(t, h, http.MethodPost, review)
	if code != 200 || out.Response == nil {
		t.Fatalf("%d %s", code, raw)
	}
	if r := out.Response; r.UID != "4a7b1c1e-0000" || !r.Scale || r.Replicas != 6 {
		t.Fatalf("response %+v", r)
	}
	// Demand unknown: keep the fleet as it is.
	h = New(Config{}, fixedDemand{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if _, out, _ := post(t, h, http.MethodPost, review); out.Response.Scale || out.Response.Replicas != 5 {
		t.Fatalf("unknown demand: %+v", out.Response)
	}
}

func TestWebhookBadInput(t *testing.T) {
	t.Parallel()
	h := New(Config{}, fixedDemand{"eu": 1}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	for _, tt := range []struct {
		method, body string
		code         int
	}{
		{http.MethodPost, `not json`, 400},
		{http.MethodPost, `{"response":null}`, 400},
		{http.MethodGet, ``, 405},
	} {
		if code, _, raw := post(t, h, tt.method, tt.body); code != tt.code {
			t.Errorf("%s %q: %d %s", tt.method, tt.body, code, raw)
		}
	}
}

func TestStreamDemandCountsWaitingTickets(t *testing.T) {
	t.Parallel()
	s := testkit.RunServer(t)
	js := testkit.JetStream(t, testkit.Connect(t, s))
	subj := events.Subjects{}
	if err := events.Provision(t.Context(), js, events.Topology{}); err != nil {
		t.Fatal(err)
	}
	for _, subject := range []string{subj.Offer("eu", "gold"), subj.Offer("eu", "silver"), subj.Ticket("eu", "gold"), subj.Offer("us", "gold")} {
		if _, err := js.Publish(t.Context(), subject, []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	d := StreamDemand{JS: js, Subj: subj}
	for region, want := range map[string]int{"eu": 3, "us": 1, "asia": 0} {
		if got, err := d.Waiting(t.Context(), region); err != nil || got != want {
			t.Errorf("%s: %d %v, want %d", region, got, err, want)
		}
	}
}

// TestEachFleetSizedFromItsRegion: two fleets in two regions, each sized
// from its own region's tickets waiting in JetStream. Agones sends the
// Fleet's labels under request.metadata (FleetAutoscaleRequestMetaData)
// or, in other versions, as request.labels: both are read.
func TestEachFleetSizedFromItsRegion(t *testing.T) {
	t.Parallel()
	s := testkit.RunServer(t)
	js := testkit.JetStream(t, testkit.Connect(t, s))
	subj := events.Subjects{}
	if err := events.Provision(t.Context(), js, events.Topology{}); err != nil {
		t.Fatal(err)
	}
	waiting := map[string]int{"eu": 60, "us": 4}
	for region, n := range waiting {
		for range n {
			if _, err := js.Publish(t.Context(), subj.Ticket(region, "gold"), []byte(`{}`)); err != nil {
				t.Fatal(err)
			}
		}
	}
	h := New(Config{Buffer: 1, PlayersPerRoom: 2}, StreamDemand{JS: js, Subj: subj}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	// Two idle servers of 10 rooms each, in each region.
	const status = `"status":{"replicas":2,"readyReplicas":2,"lists":{"rooms":{"count":0,"capacity":20}}}`
	for _, tt := range []struct {
		name, request string
		want          int32
	}{
		// 60 players: 30 rooms, 3 servers, plus the buffer.
		{"eu, top-level labels", `{"uid":"u-eu","name":"rps-eu","labels":{"quickmatch.dev/region":"eu"},` + status + `}`, 4},
		// 4 players: 2 rooms, 1 server, plus the buffer.
		{"us, metadata labels", `{"uid":"u-us","name":"rps-us","metadata":{"name":"rps-us","labels":{"quickmatch.dev/region":"us"}},` + status + `}`, 2},
	} {
		code, out, raw := post(t, h, http.MethodPost, `{"request":`+tt.request+`}`)
		if code != 200 || out.Response == nil || out.Response.Replicas != tt.want {
			t.Errorf("%s: %d %s, want %d replicas", tt.name, code, raw, tt.want)
		}
	}
}

// TestRegionFlags: the region label and the default region are settings
// (flags, or their environment variables), and the webhook uses them.
func TestRegionFlags(t *testing.T) {
	t.Setenv("AUTOSCALE_REGION_LABEL", "example.com/zone")
	t.Setenv("AUTOSCALE_DEFAULT_REGION", "asia")
	var cfg Config
	fs := flag.NewFlagSet("allocator", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	if err := envflag.Parse(fs, nil); err != nil {
		t.Fatal(err)
	}
	if cfg.RegionLabel != "example.com/zone" || cfg.DefaultRegion != "asia" {
		t.Fatalf("config %+v", cfg)
	}
	h := New(cfg, fixedDemand{"us": 40, "asia": 0}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	for _, tt := range []struct {
		labels string
		want   int32
	}{
		{`{"example.com/zone":"us"}`, 3},      // 20 rooms: 2 servers of 10, plus the buffer
		{`{"quickmatch.dev/region":"us"}`, 1}, // not the configured label: the default region, asia
	} {
		_, out, raw := post(t, h, http.MethodPost, `{"request":{"uid":"u","metadata":{"labels":`+tt.labels+`},"status":{"replicas":1}}}`)
		if out.Response == nil || out.Response.Replicas != tt.want {
			t.Errorf("labels %s: %s, want %d", tt.labels, raw, tt.want)
		}
	}
}

// TestRoomsPerServerFromTheFleetLabel: the Fleet's rooms-per-server label
// bounds its servers; one that does not read as a positive count is
// passed over for -autoscale-rooms-per-server.
func TestRoomsPerServerFromTheFleetLabel(t *testing.T) {
	t.Parallel()
	h := New(Config{}, fixedDemand{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	for v, want := range map[string]int{"20": 20, "1000": 1000, "1001": 0, "9223372036854775807": 0, "0": 0, "-3": 0, "many": 0, "": 0} {
		req := &agones.FleetAutoscaleRequest{Labels: map[string]string{agones.RoomsPerServerLabel: v}}
		if got := h.roomsPerServer(req); got != want {
			t.Errorf("label %q: %d rooms per server, want %d", v, got, want)
		}
	}
	if got := h.roomsPerServer(&agones.FleetAutoscaleRequest{}); got != 0 {
		t.Errorf("no label: %d", got)
	}
}

// TestAnUnlabelledFleetBeyondTheCapIsSaid: a Fleet without the
// rooms-per-server label whose servers say they hold more rooms than
// -autoscale-rooms-per-server is sized for no more, and the webhook says
// so (an operator's own Fleet, labelled by no chart).
func TestAnUnlabelledFleetBeyondTheCapIsSaid(t *testing.T) {
	t.Parallel()
	var logs strings.Builder
	h := New(Config{RoomsPerServer: 5}, fixedDemand{"us": 40}, slog.New(slog.NewTextHandler(&logs, nil)))
	if code, _, raw := post(t, h, http.MethodPost, review); code != 200 { // 50 rooms on 5 servers
		t.Fatalf("%d %s", code, raw)
	}
	if !strings.Contains(logs.String(), "sized for no more") {
		t.Fatalf("nothing said of a fleet counted for fewer rooms than it shows: %s", logs.String())
	}
	logs.Reset()
	h = New(Config{RoomsPerServer: 10}, fixedDemand{"us": 40}, slog.New(slog.NewTextHandler(&logs, nil)))
	post(t, h, http.MethodPost, review)
	if strings.Contains(logs.String(), "sized for no more") {
		t.Fatalf("said of a fleet within the cap: %s", logs.String())
	}
}
