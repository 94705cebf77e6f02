package autoscale

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/quickmatch-dev/quickmatch/pkg/agones"
)

// FuzzWebhook: whatever Agones (or anyone who reaches the port) posts,
// the webhook answers 200 with a review whose replicas stay within the
// configured bounds, or 400 naming the problem; it never panics.
func FuzzWebhook(f *testing.F) {
	f.Add(`{"apiVersion":"autoscaling.agones.dev/v1","kind":"FleetAutoscaleReview","request":{"uid":"u1","name":"rps","namespace":"default","status":{"replicas":3,"readyReplicas":1,"allocatedReplicas":2,"lists":{"rooms":{"count":5,"capacity":30,"allocatedCount":5,"allocatedCapacity":20}}}}}`)
	f.Add(`{"request":{"uid":"u","status":{"replicas":-5,"lists":{"rooms":{"capacity":-1,"allocatedCapacity":-9223372036854775808}}}}}`)
	f.Add(`{"request":{"uid":"u","labels":{"quickmatch.dev/region":"us"},"status":{"replicas":2147483647,"allocatedReplicas":2147483647,"reservedReplicas":2147483647}}}`)
	f.Add(`{"request":{"uid":"u","metadata":{"labels":{"quickmatch.dev/region":"eu"}},"labels":{"quickmatch.dev/region":"us"},"status":{"replicas":1}}}`)
	f.Add(`{"request":{"uid":"u","metadata":null,"status":{"replicas":1}}}`)
	f.Add(`{"request":null}`)
	f.Add(`not json`)
	cfg := Config{MinReplicas: 1, MaxReplicas: 50, Buffer: 1}
	h := New(cfg, fixedDemand{"eu": 37, "us": 1 << 30}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	f.Fuzz(func(t *testing.T, body string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/autoscale", strings.NewReader(body)))
		switch rec.Code {
		case http.StatusBadRequest:
			if !strings.Contains(rec.Body.String(), "invalid fleet autoscale review") {
				t.Fatalf("400 without a reason: %s", rec.Body)
			}
		case http.StatusOK:
			var out agones.FleetAutoscaleReview
			if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out.Response == nil {
				t.Fatalf("200 with %q: %v", rec.Body, err)
			}
			if out.Response.Scale && (out.Response.Replicas < 1 || out.Response.Replicas > 50) {
				t.Fatalf("scaled to %d, outside 1..50, for %s", out.Response.Replicas, body)
			}
		default:
			t.Fatalf("status %d for %q", rec.Code, body)
		}
	})
}
