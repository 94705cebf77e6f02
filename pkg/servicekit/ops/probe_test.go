package ops

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestProbe(t *testing.T) {
	var r Readiness
	mux := http.NewServeMux()
	Register(mux, &r, nil)
	hs := httptest.NewServer(mux)
	defer hs.Close()
	ctx := context.Background()
	if err := Probe(ctx, hs.URL+"/readyz", time.Second); err == nil {
		t.Fatal("probe passed while not ready")
	}
	r.Set(true)
	if err := Probe(ctx, hs.URL+"/readyz", time.Second); err != nil {
		t.Fatalf("probe failed while ready: %v", err)
	}
	if err := Probe(ctx, "http://127.0.0.1:1/readyz", time.Second); err == nil {
		t.Fatal("probe passed with nothing listening")
	}
}
