package kube

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"k8s.io/client-go/rest"
)

// TestWhichAnswersAreUnclear: a call whose answer leaves open whether
// Agones allocated (errUnclear: settled before anything else is asked)
// is one that may have reached Agones without its answer coming back:
// a timeout, a gateway's 502 or 504, a 500, a 2xx that cannot be read.
// One that surely did not (its request never written: no connection
// made; a 429; a 503: no Agones behind the aggregator) is not settled,
// so it costs no wait.
func TestWhichAnswersAreUnclear(t *testing.T) {
	t.Parallel()
	answer := func(status int, body string, delay time.Duration) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
				return
			}
			w.WriteHeader(status)
			_, _ = io.WriteString(w, body)
		}))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + closed.Addr().String()
	_ = closed.Close()
	for _, tt := range []struct {
		name    string
		url     string
		unclear bool
	}{
		{"timeout", answer(http.StatusCreated, "{}", time.Second), true},
		{"500", answer(http.StatusInternalServerError, "", 0), true},
		{"502", answer(http.StatusBadGateway, "", 0), true},
		{"504", answer(http.StatusGatewayTimeout, "", 0), true},
		{"201 unreadable", answer(http.StatusCreated, "{not json", 0), true},
		{"201 Allocated nowhere", answer(http.StatusCreated, `{"status":{"state":"Allocated","gameServerName":"gs"}}`, 0), true},
		{"429", answer(http.StatusTooManyRequests, "", 0), false},
		{"503", answer(http.StatusServiceUnavailable, "", 0), false},
		{"connection refused", refused, false},
		{"connection never made (a dial timed out, or unreachable)", "http://10.255.255.1:81", false},
	} {
		b, err := New(Config{Mode: OnePerServer, Timeout: 200 * time.Millisecond}, []Cluster{{Name: "one", Config: &rest.Config{Host: tt.url}, Namespace: "default", Fleet: "rps"}}, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		_, err = b.allocateIn(t.Context(), b.clusters[0], twoVtwo())
		if err == nil || errors.Is(err, errUnclear) != tt.unclear {
			t.Errorf("%s: %v, want unclear %t", tt.name, err, tt.unclear)
		}
	}
}

// TestATooManyRequestsIsNoClusterFailure: a 429 (the API server's
// priority and fairness) is a busy cluster: three in a row skipped the
// cluster for its cooldown, and with one cluster every match failed.
func TestATooManyRequestsIsNoClusterFailure(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	t.Cleanup(srv.Close)
	b, err := New(Config{Mode: OnePerServer, Timeout: time.Second}, []Cluster{{Name: "one", Config: &rest.Config{Host: srv.URL}, Namespace: "default", Fleet: "rps"}}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	for range b.cfg.FailuresToUnhealthy + 2 {
		if _, err := b.allocateIn(t.Context(), b.clusters[0], twoVtwo()); !errors.Is(err, ErrAPI) {
			t.Fatalf("a 429: %v, want a retryable API error", err)
		}
	}
	if !b.clusters[0].skipUntil.IsZero() {
		t.Fatalf("the cluster is skipped until %v after 429s", b.clusters[0].skipUntil)
	}
}
