package testkit

import (
	"compress/gzip"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	"google.golang.org/protobuf/proto"
)

// OTLPCollector is a test OTLP/HTTP trace receiver (POST /v1/traces,
// protobuf, gzip or not, as the SDK's otlptracehttp exporter sends it):
// point OTEL_EXPORTER_OTLP_ENDPOINT at URL, then read Spans. One for
// pkg/tracing's export test and the whole stack's (dev/stack).
type OTLPCollector struct {
	URL   string
	mu    sync.Mutex
	spans []Span
}

// Span is what the tests read of an exported span.
type Span struct {
	Service, Name     string
	Trace, ID, Parent string     // hex; Parent "" for a root
	Links             []SpanLink // hex trace and span ids
	// Attrs holds the string and integer attributes, as text.
	Attrs map[string]string
}

// SpanLink is a span link's trace and span ids, in hex.
type SpanLink struct{ Trace, ID string }

func (s Span) String() string {
	return fmt.Sprintf("%s/%s trace=%s span=%s parent=%s links=%v", s.Service, s.Name, s.Trace, s.ID, s.Parent, s.Links)
}

// StartOTLPCollector starts a collector until the test ends.
func StartOTLPCollector(tb testing.TB) *OTLPCollector {
	tb.Helper()
	c := &OTLPCollector{}
	hs := httptest.NewServer(http.HandlerFunc(c.serve))
	tb.Cleanup(hs.Close)
	c.URL = hs.URL
	return c
}

func (c *OTLPCollector) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" {
		http.Error(w, "POST /v1/traces only", http.StatusNotFound)
		return
	}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	data, err := io.ReadAll(body)
	var req coltracepb.ExportTraceServiceRequest
	if err == nil {
		err = proto.Unmarshal(data, &req)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.add(&req)
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

func (c *OTLPCollector) add(req *coltracepb.ExportTraceServiceRequest) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		var service string
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.GetKey() == "service.name" {
				service = kv.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				s := Span{Service: service, Name: sp.GetName(), Trace: hex.EncodeToString(sp.GetTraceId()),
					ID: hex.EncodeToString(sp.GetSpanId()), Parent: hex.EncodeToString(sp.GetParentSpanId()), Attrs: map[string]string{}}
				for _, l := range sp.GetLinks() {
					s.Links = append(s.Links, SpanLink{hex.EncodeToString(l.GetTraceId()), hex.EncodeToString(l.GetSpanId())})
				}
				for _, kv := range sp.GetAttributes() {
					v := kv.GetValue().GetStringValue()
					if i, ok := kv.GetValue().GetValue().(*commonpb.AnyValue_IntValue); ok {
						v = strconv.FormatInt(i.IntValue, 10)
					}
					s.Attrs[kv.GetKey()] = v
				}
				c.spans = append(c.spans, s)
			}
		}
	}
}

// Spans is every span received so far.
func (c *OTLPCollector) Spans() []Span {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Span(nil), c.spans...)
}

// DumpSpans lists spans, one a line, by service and name.
func DumpSpans(spans []Span) string {
	lines := make([]string, len(spans))
	for i, s := range spans {
		lines[i] = s.String()
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}
