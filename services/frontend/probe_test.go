package main

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/service/servicetest"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
	"github.com/quickmatch-dev/quickmatch/pkg/ticketapi"
)

// A frontend (re)started while NATS is away answers /healthz on its API
// address (so that a Kubernetes startup or liveness probe does not
// restart it into a crash loop) and says not ready until it is bound; it
// used to listen only once bound. Once ready, it serves its API there.
func TestProbesWhileWaitingForNATS(t *testing.T) {
	t.Parallel()
	servicetest.CheckProbesWhileWaiting(t, run, func(addr string) []string {
		return []string{"-http-addr", addr, "-auth-insecure"}
	}, func(addr string) {
		code, _, body := post(t, addr)
		if code != http.StatusAccepted {
			t.Fatalf("POST once ready: %d %+v, want 202", code, body)
		}
	})
}

// post POSTs a ticket to the frontend at addr, and returns the status,
// the Retry-After and the error body (empty unless refused).
func post(t *testing.T, addr string) (int, string, ticketapi.ErrorBody) {
	t.Helper()
	res, err := http.Post("http://"+addr+ticketapi.PathTickets, "application/json", strings.NewReader(`{"player_id":"p1","region":"eu","skill":1500}`))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body ticketapi.ErrorBody
	if res.StatusCode >= 300 {
		_ = json.NewDecoder(res.Body).Decode(&body)
	}
	return res.StatusCode, res.Header.Get(ticketapi.HeaderRetryAfter), body
}

// While it waits, a request to the API is told to come back (503,
// Retry-After, the contract's body), not 404 as a mux of probes alone
// would say to a POST that works a moment later.
func TestAPIWhileWaitingForNATS(t *testing.T) {
	t.Parallel()
	addr := servicetest.StartWithoutNATS(t, run, func(addr string) []string {
		return []string{"-http-addr", addr, "-auth-insecure"}
	}).Addr
	alive := func() bool {
		res, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			res.Body.Close()
		}
		return err == nil
	}
	testkit.Eventually(t, 10*time.Second, alive, "the API address does not answer while the frontend waits for NATS")
	if code, retry, body := post(t, addr); code != http.StatusServiceUnavailable || retry == "" || body.Error != ticketapi.StartingError {
		t.Fatalf("POST while starting: %d, Retry-After %q, %+v; want 503, a Retry-After, %q", code, retry, body, ticketapi.StartingError)
	}
}

// A key or rule set file that does not read ends the frontend at once,
// NATS or not: waiting for NATS first hid it behind a healthy probe.
func TestBadFilesEndWithoutNATS(t *testing.T) {
	t.Parallel()
	for name, args := range map[string][]string{
		"rules": {"-auth-insecure", "-rules", "/nonexistent/rules.json"},
		"key":   {"-auth-issuer", "studio", "-auth-public-keys", "/nonexistent/key.pem"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			servicetest.CheckRefusedWithoutNATS(t, run, func(addr string) []string {
				return append([]string{"-http-addr", addr}, args...)
			}, "/nonexistent/")
		})
	}
}

// With -ops-addr (the Helm chart sets it), /metrics is served there and
// not on the API's address, which is the players' and keeps its probes:
// the metrics (traffic, refusals, the trace ids of exemplars) were
// anyone's who reached the frontend.
func TestMetricsOffThePlayersPort(t *testing.T) {
	t.Parallel()
	ports, err := testkit.Ports(1)
	if err != nil {
		t.Fatal(err)
	}
	opsAddr := "127.0.0.1:" + strconv.Itoa(ports[0])
	servicetest.CheckProbesWhileWaiting(t, run, func(addr string) []string {
		return []string{"-http-addr", addr, "-ops-addr", opsAddr, "-auth-insecure"}
	}, func(addr string) {
		get := func(url string) int {
			res, err := http.Get(url)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			return res.StatusCode
		}
		if code := get("http://" + addr + "/metrics"); code == http.StatusOK {
			t.Fatalf("/metrics on the API's address: %d", code)
		}
		for _, path := range []string{"/metrics", "/healthz", "/readyz"} {
			if code := get("http://" + opsAddr + path); code != http.StatusOK {
				t.Fatalf("%s on the ops address: %d", path, code)
			}
		}
		if code := get("http://" + addr + "/readyz"); code != http.StatusOK {
			t.Fatalf("/readyz on the API's address: %d", code)
		}
	})
}
