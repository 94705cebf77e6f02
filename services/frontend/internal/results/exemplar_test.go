package results

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/ops"
)

// TestTimeToAssignmentCarriesTheTraceID (#21): an assigned ticket's time
// to assignment is observed with the trace id of the request that
// created it as its exemplar, and /metrics shows it to a scraper that
// asks for OpenMetrics.
func TestTimeToAssignmentCarriesTheTraceID(t *testing.T) {
	t.Parallel()
	const trace = "4bf92f3577b34da6a3ce929d0e0e4736"
	st := newStack(t, false, nil)
	ctx := events.WithMeta(t.Context(), events.Meta{TraceParent: "00-" + trace + "-00f067aa0ba902b7-01"})
	traced := st.track(t, ctx, "traced", "p1")
	st.tell(t, "traced", "p1", events.StatusAssigned)
	await(t, traced, "assigned")
	for range traced.Results { // closed once the ticket is done with, after its observation
	}

	mux := http.NewServeMux()
	ops.Register(mux, &ops.Readiness{}, st.reg)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/openmetrics-text; version=1.0.0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/openmetrics-text") {
		t.Fatalf("/metrics answered %q to a scraper asking for OpenMetrics", ct)
	}
	var bucket string
	for line := range strings.Lines(string(body)) {
		if strings.HasPrefix(line, "quickmatch_frontend_time_to_assignment_seconds_bucket") && strings.Contains(line, " # {") {
			bucket = line
		}
	}
	if !strings.Contains(bucket, `# {trace_id="`+trace+`"}`) {
		t.Fatalf("no exemplar with the ticket's trace id on the time to assignment:\n%s", body)
	}
}

func TestTraceOf(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, header string
		want         bool
	}{
		{"valid", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", true},
		{"none", "", false},
		{"upper case", "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", false},
		{"short", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa", false},
		{"not hex", "00-4bf92f3577b34da6a3ce929d0e0e47zz-00f067aa0ba902b7-01", false},
		{"all zero", "00-00000000000000000000000000000000-00f067aa0ba902b7-01", false},
		{"wrong dashes", "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01", false},
	} {
		if got := traceOf(events.Meta{TraceParent: c.header}) != (traceID{}); got != c.want {
			t.Errorf("%s: kept %v, want %v", c.name, got, c.want)
		}
	}
}
