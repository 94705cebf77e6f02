package drain_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/rules"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/ops"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/api"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/capacity"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/drain"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/results"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/tickets"
)

// frontend is a frontend wired as main wires it, without identity.
type frontend struct {
	url string
	js  jetstream.JetStream
	reg *prometheus.Registry
}

func startFrontend(t *testing.T) *frontend {
	t.Helper()
	nc := testkit.Connect(t, testkit.RunServer(t))
	js := testkit.JetStream(t, nc)
	subj := events.Subjects{}
	if err := events.Provision(t.Context(), js, events.Topology{Subjects: subj}); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	reg := prometheus.NewRegistry()
	set := rules.Fixed(rules.Default())
	var svc *tickets.Service
	tracker := results.New(nc, subj, log, reg, results.ModeWaits(set, 0), func(ctx context.Context, id string) results.Retry { return svc.Expire(ctx, id) })
	testkit.Run(t, tracker.Run)
	full, err := capacity.New(t.Context(), js, subj, 0, log)
	if err != nil {
		t.Fatal(err)
	}
	drains, err := drain.New(t.Context(), js, subj, log)
	if err != nil {
		t.Fatal(err)
	}
	testkit.Run(t, drains.Run)
	cfg := tickets.Config{Regions: events.DefaultRegions, Tiers: events.DefaultTiers, Rules: set}
	cfg.Drains = drains
	svc, err = tickets.New(t.Context(), cfg, js, subj, tracker, full, log)
	if err != nil {
		t.Fatal(err)
	}
	var ready ops.Readiness
	ready.Set(true)
	done := make(chan struct{})
	h, err := api.New(api.Config{Insecure: true}, svc, tracker, log, &ready, reg, done)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(h)
	t.Cleanup(func() {
		close(done)
		hs.Close()
	})
	return &frontend{url: hs.URL, js: js, reg: reg}
}

func (f *frontend) do(t *testing.T, method, path, body string, hdr map[string]string) (int, map[string]any, http.Header) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), method, f.url+path, strings.NewReader(body))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
		t.Fatalf("%s %s: body is not JSON: %v", method, path, err)
	}
	return res.StatusCode, out, res.Header
}

func (f *frontend) post(t *testing.T, player, region, key string) (int, map[string]any, http.Header) {
	t.Helper()
	return f.do(t, http.MethodPost, "/v1/tickets", `{"player_id":"`+player+`","skill":1650,"region":"`+region+`"}`,
		map[string]string{"Idempotency-Key": key})
}

// A drained shard's new tickets get 503 with the shard, the operator's
// reason and Retry-After, and are not queued; the shard's waiting ticket
// is still read, repeated (its own Idempotency-Key) and cancelled; other
// shards, another tier of the region included, take tickets; a resume
// admits again.
func TestDrainedShardRefusesNewTicketsOnly(t *testing.T) {
	t.Parallel()
	f := startFrontend(t)
	code, early, _ := f.post(t, "early", "eu", "k-early")
	if code != http.StatusAccepted || early["tier"] != "gold" {
		t.Fatalf("before the drain: %d %v", code, early)
	}
	id := early["ticket_id"].(string)
	drains, err := events.NewDrains(t.Context(), f.js, events.Subjects{})
	if err != nil {
		t.Fatal(err)
	}
	const reason = "eu game servers upgrade, back at 10:30"
	eu := events.Shard{Region: "eu", Tier: "gold"}
	if _, err := drains.Drain(t.Context(), eu, reason, "alice"); err != nil {
		t.Fatal(err)
	}

	var body map[string]any
	var hdr http.Header
	queued := uint64(1) // and any taken before the frontend saw the drain
	testkit.Eventually(t, 5*time.Second, func() bool {
		code, body, hdr = f.post(t, "late", "eu", "")
		if code == http.StatusAccepted {
			queued++
		}
		return code != http.StatusAccepted
	}, "a drained shard kept taking tickets")
	drained, _ := body["drained"].(map[string]any)
	if code != http.StatusServiceUnavailable || drained["shard"] != "eu.gold" || drained["reason"] != reason ||
		!strings.Contains(body["error"].(string), "eu.gold") || !strings.Contains(body["error"].(string), reason) ||
		hdr.Get("Retry-After") != "30" {
		t.Fatalf("drained shard's answer: %d %v, Retry-After %q", code, body, hdr.Get("Retry-After"))
	}
	if n := rejections(t, f.reg, "drained"); n < 1 {
		t.Errorf("rejections{reason=drained} = %g", n)
	}

	if code, v, _ := f.post(t, "early", "eu", "k-early"); code != http.StatusAccepted || v["ticket_id"] != id {
		t.Errorf("a repeat of a ticket taken before the drain: %d %v", code, v)
	}
	if code, v, _ := f.do(t, http.MethodGet, "/v1/tickets/"+id, "", nil); code != http.StatusOK || v["status"] != "queued" {
		t.Errorf("read of a drained shard's ticket: %d %v", code, v)
	}
	if code, _, _ := f.post(t, "other", "us", ""); code != http.StatusAccepted {
		t.Errorf("another region: %d", code)
	}
	silver := `{"player_id":"low","skill":1300,"region":"eu"}`
	if code, v, _ := f.do(t, http.MethodPost, "/v1/tickets", silver, nil); code != http.StatusAccepted || v["tier"] != "silver" {
		t.Errorf("another tier of the region: %d %v", code, v)
	}
	if code, v, _ := f.do(t, http.MethodDelete, "/v1/tickets/"+id, "", nil); code != http.StatusOK || v["status"] != "cancelled" {
		t.Errorf("cancel of a drained shard's ticket: %d %v", code, v)
	}
	if n := testkit.StreamMsgs(t, f.js, events.Subjects{}.TicketsStream()); n != queued+2 {
		t.Errorf("%d tickets queued, want %d: a refused one was queued", n, queued+2)
	}

	if _, err := drains.Resume(t.Context(), eu); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 5*time.Second, func() bool {
		code, body, _ = f.post(t, "again", "eu", "k-again")
		return code == http.StatusAccepted
	}, "resumed shard still refuses: %d %v", code, body)
}

// rejections is the frontend's count of requests refused for reason.
func rejections(t *testing.T, reg *prometheus.Registry, reason string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, fam := range fams {
		if fam.GetName() != "quickmatch_frontend_rejections_total" {
			continue
		}
		for _, m := range fam.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == reason {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
