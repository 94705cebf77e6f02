package api_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/identity"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/ops"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/api"
)

// deadlineAuth refuses every token, keeping how long its verification
// was given (the time left before its context's deadline).
type deadlineAuth struct {
	left time.Duration
	ok   bool
}

func (d *deadlineAuth) Verify(ctx context.Context, _ string) (identity.Caller, error) {
	var dl time.Time
	dl, d.ok = ctx.Deadline()
	d.left = time.Until(dl)
	return identity.Caller{}, errors.New("test: refused")
}

// A creation's token verification may wait (for a JWKS read) no longer
// than Config.VerifyWait while it holds its admission slot: its context
// ends by then (the wait itself is TestOverloadGivesTheSlotBackOnEveryPath's
// "hang").
func TestVerifyWaitBoundsAVerification(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		set, want time.Duration
	}{
		{"default", 0, api.DefaultVerifyWait},
		{"set", 50 * time.Millisecond, 50 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			done := make(chan struct{})
			t.Cleanup(func() { close(done) })
			var ready ops.Readiness
			ready.Set(true)
			auth := &deadlineAuth{}
			handler, err := api.New(api.Config{Auth: auth, Admission: twoAtOnce, VerifyWait: tc.set}, &heldTickets{}, followed{}, slog.New(slog.DiscardHandler), &ready, prometheus.NewRegistry(), done)
			if err != nil {
				t.Fatal(err)
			}
			req := httptest.NewRequest(http.MethodPost, "/v1/tickets", strings.NewReader(eu))
			req.Header.Set("Authorization", "Bearer x")
			w := httptest.NewRecorder()
			handler.ServeHTTP(w, req)
			if w.Code != http.StatusUnauthorized || !auth.ok || auth.left <= 0 || auth.left > tc.want {
				t.Fatalf("%d; verification given %v (deadline %v), want at most %v", w.Code, auth.left, auth.ok, tc.want)
			}
		})
	}
}
