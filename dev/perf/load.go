package perf

import (
	"encoding/json"
	"fmt"
	"strings"
)

// LoadSummary is the part of `load run -json`'s result a leg reports.
type LoadSummary struct {
	Rate    float64 `json:"rate_per_second"`
	Seconds float64 `json:"seconds"` // how long the arrivals took
	Sent    int64   `json:"tickets_sent"`
	// Assigned tickets, of Sent.
	Assigned int64 `json:"assigned"`
	// Errors by kind: post_503, publish_..., timeout, expired, ...
	Errors map[string]int64 `json:"errors_by_kind"`
	// Latency is from a ticket's POST (or publish) to its assignment,
	// Accepted from its POST to the 202 (or to JetStream's ack), in
	// milliseconds: p50, p90, p99, p99.9, max.
	Latency  map[string]float64 `json:"latency_ms"`
	Accepted map[string]float64 `json:"accepted_ms"`
	// Refused POSTs (503: overload control, a full region, a drain, a
	// frontend still starting; also in Errors as post_503) and how long
	// each took from the POST to its 503, in milliseconds (absent when
	// none): the excess beyond capacity is to be refused at once (#20's
	// target: within 50 ms).
	Refused        int64              `json:"refused"`
	RefusedLatency map[string]float64 `json:"refused_ms,omitempty"`
}

// ParseLoadSummary decodes the output of `load run -json`.
func ParseLoadSummary(out []byte) (LoadSummary, error) {
	var s LoadSummary
	if err := json.Unmarshal(out, &s); err != nil {
		return s, fmt.Errorf("load run -json: %w", err)
	}
	if s.Sent <= 0 || s.Latency == nil {
		return s, fmt.Errorf("load run -json: no tickets_sent or latency_ms in %.200q", out)
	}
	return s, nil
}

// refusedBefore are the prefixes of the load tool's error kinds for a
// ticket that was never acknowledged: its token could not be made, its
// POST failed or was refused (post_error, post_503, ...), or its publish
// was not stored. Every other kind (timeout, expired, events_404,
// events_bad, events_error, ...) happened to a ticket the system had
// acknowledged.
var refusedBefore = []string{"token_", "post_", "publish_"}

// Acknowledged is how many tickets the system acknowledged: the frontend
// answered 202, or JetStream stored the published ticket.
func (s LoadSummary) Acknowledged() int64 {
	n := s.Sent
	for kind, count := range s.Errors {
		for _, p := range refusedBefore {
			if strings.HasPrefix(kind, p) {
				n -= count
				break
			}
		}
	}
	return n
}
