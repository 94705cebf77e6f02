package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/envflag"
	"github.com/quickmatch-dev/quickmatch/pkg/ticketapi"
)

// holdResult is what `load hold` reports (also as JSON with -json).
type holdResult struct {
	Kind          string  `json:"kind"`
	Proto         string  `json:"proto"`
	Clients       int     `json:"clients"`
	Waiting       int64   `json:"waiting"`
	Failed        int64   `json:"failed"`
	Dropped       int64   `json:"dropped_during_hold"`
	RampSeconds   float64 `json:"ramp_seconds"`
	ServerOpen    float64 `json:"server_open_connections"`
	ServerWaiting float64 `json:"server_waiting_tickets"`
	memory
	RSSPerClient  float64  `json:"rss_bytes_per_client"`
	HeapPerClient float64  `json:"heap_bytes_per_client"`
	FirstErrors   []string `json:"first_errors,omitempty"`
}

// hold opens clients that each queue a ticket and then wait on it, over
// Server-Sent Events or the /ws WebSocket, keeps them all open for a while,
// and reports the frontend's memory per waiting client from its /metrics.
// Run it against a frontend with no matcher (localstack -services frontend)
// so that tickets stay waiting, and with RATE_LIMIT=0: every client comes
// from this one address.
func hold(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flagSet("hold", stdout)
	base := fs.String("url", "http://127.0.0.1:3000", "frontend base URL")
	clients := fs.Int("clients", 1000, "waiting clients to open")
	kind := fs.String("kind", "sse", "how clients wait: sse (POST then GET .../events) or ws (/ws)")
	proto := fs.String("proto", "http1", "sse transport: http1 (a socket per client) or h2c (HTTP/2 streams over shared sockets)")
	rate := fs.Float64("rate", 2000, "new clients per second")
	holdFor := fs.Duration("hold", 10*time.Second, "how long to keep every client open once all are waiting")
	settle := fs.Duration("settle", 3*time.Second, "pause before reading the frontend's memory")
	sources := fs.Int("source-ips", 1, "spread client sockets over 127.0.0.1..N (more ephemeral ports)")
	region := fs.String("region", "eu", "ticket region")
	skill := fs.Int("skill", 1650, "ticket skill")
	jsonOut := fs.Bool("json", false, "print the result as JSON")
	h := &holder{}
	h.tokens.register(fs)
	if err := envflag.Parse(fs, args); err != nil {
		return err
	}
	if err := h.tokens.setup(os.Stderr); err != nil {
		return err
	}
	if *kind != "sse" && *kind != "ws" {
		return fmt.Errorf("-kind %q: want sse or ws", *kind)
	}
	metricsURL := strings.TrimRight(*base, "/") + "/metrics"
	before, err := scrape(ctx, metricsURL)
	if err != nil {
		return err
	}
	res := holdResult{Kind: *kind, Proto: *proto, Clients: *clients}
	res.before(before)
	if *kind == "ws" {
		res.Proto = "http1"
	}

	h.base, h.region, h.skill, h.run = strings.TrimRight(*base, "/"), *region, *skill, runID()
	h.api = client(*proto == "h2c", *sources, 64)
	h.stream = client(*proto == "h2c", *sources, 0)
	holdCtx, release := context.WithCancel(ctx)
	defer release()
	var wg sync.WaitGroup
	start := ramp(*clients, *rate, func(i int) bool {
		if ctx.Err() != nil {
			return false
		}
		wg.Go(func() { h.client(holdCtx, i, *kind, *sources) })
		return true
	})
	awaitAll(ctx, func() bool { return h.waiting.Load()+h.failed.count() >= int64(*clients) })
	res.RampSeconds = time.Since(start).Seconds()
	awaitCounted(ctx, metricsURL, h.waiting.Load)
	time.Sleep(*settle)
	after, err := scrape(ctx, metricsURL)
	if err != nil {
		return err
	}
	res.Waiting, res.Failed = h.waiting.Load(), h.failed.count()
	res.after(after)
	res.ServerOpen = openOf(after)
	res.ServerWaiting = after["quickmatch_frontend_waiting_tickets"]
	res.RSSPerClient, res.HeapPerClient = res.per(float64(res.Waiting))
	// Clients that stop waiting while nothing happens are the server
	// dropping them: the figure the hold is for.
	waitingAtStart := h.waiting.Load()
	select {
	case <-time.After(*holdFor):
	case <-ctx.Done():
	}
	res.Dropped = waitingAtStart - h.waiting.Load()
	res.FirstErrors = h.failed.sample()
	release()
	wg.Wait()

	if *jsonOut {
		return printJSON(stdout, res)
	}
	res.print(stdout, *holdFor)
	return nil
}

// print is the text form of the result.
func (res holdResult) print(stdout io.Writer, holdFor time.Duration) {
	mib := func(b float64) string { return fmt.Sprintf("%.1f MiB", b/(1<<20)) }
	fmt.Fprintf(stdout, "clients     %d %s over %s: %d waiting, %d failed, %d dropped during a %s hold (ramp %.1fs)\n",
		res.Clients, res.Kind, res.Proto, res.Waiting, res.Failed, res.Dropped, holdFor, res.RampSeconds)
	fmt.Fprintf(stdout, "frontend    %v open connections, %v waiting tickets, %v goroutines\n", res.ServerOpen, res.ServerWaiting, res.Goroutines)
	fmt.Fprintf(stdout, "memory      RSS %s -> %s, heap in use %s -> %s\n", mib(res.RSSBefore), mib(res.RSSAfter), mib(res.HeapBefore), mib(res.HeapAfter))
	fmt.Fprintf(stdout, "per client  %.1f KiB RSS, %.1f KiB heap\n", res.RSSPerClient/1024, res.HeapPerClient/1024)
	for _, e := range res.FirstErrors {
		fmt.Fprintln(stdout, "error      ", e)
	}
}

type holder struct {
	base, region, run string
	skill             int
	api, stream       *http.Client
	tokens            tokens
	waiting           atomic.Int64
	failed            failures
}

func (h *holder) fail(err error) { h.failed.add(err) }

// client queues one ticket and waits on it until ctx ends.
func (h *holder) client(ctx context.Context, i int, kind string, sources int) {
	player := fmt.Sprintf("hold-%s-%d", h.run, i)
	hdr := http.Header{}
	if err := h.tokens.authorize(hdr, player); err != nil {
		h.fail(err)
		return
	}
	if kind == "ws" {
		skill := h.skill
		q, _ := ticketapi.Request{PlayerID: player, Region: h.region, Skill: &skill}.WSQuery() // nothing a query cannot carry
		u := strings.Replace(h.base, "http", "ws", 1) + ticketapi.PathWS + "?" + q.Encode()
		d := websocket.Dialer{NetDialContext: dialer(sources).DialContext, HandshakeTimeout: 30 * time.Second}
		c, _, err := d.DialContext(ctx, u, hdr)
		if err != nil {
			h.fail(err)
			return
		}
		defer c.Close()
		h.waiting.Add(1)
		defer h.waiting.Add(-1)
		go func() { <-ctx.Done(); c.Close() }()
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				return
			}
		}
	}
	body := fmt.Sprintf(`{"player_id":%q,"skill":%d,"region":%q}`, player, h.skill, h.region)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, h.base+ticketapi.PathTickets, strings.NewReader(body))
	maps.Copy(req.Header, hdr)
	res, err := h.api.Do(req)
	if err != nil {
		h.fail(err)
		return
	}
	var view struct {
		TicketID string `json:"ticket_id"`
		Error    string `json:"error"`
	}
	err = json.NewDecoder(res.Body).Decode(&view)
	res.Body.Close()
	if err != nil || res.StatusCode != http.StatusAccepted {
		h.fail(fmt.Errorf("POST: %d %s %v", res.StatusCode, view.Error, err))
		return
	}
	req, _ = http.NewRequestWithContext(ctx, http.MethodGet, h.base+ticketapi.EventsPath(url.PathEscape(view.TicketID)), nil)
	maps.Copy(req.Header, hdr)
	res, err = h.stream.Do(req)
	if err != nil {
		h.fail(err)
		return
	}
	defer res.Body.Close()
	r := bufio.NewReader(res.Body)
	counted := false
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			if !counted && ctx.Err() == nil {
				h.fail(fmt.Errorf("events: %w", err))
			}
			if counted {
				h.waiting.Add(-1)
			}
			return
		}
		if !counted && strings.HasPrefix(line, "data: ") && strings.Contains(line, `"status":"queued"`) {
			counted = true
			h.waiting.Add(1)
		}
	}
}

// awaitCounted waits until the frontend counts every waiting client open
// (at most awaitAll's bound). A WebSocket client counts itself waiting at
// its handshake, the server only once its ticket is created after it:
// the figures per client are taken of clients the server has set up.
func awaitCounted(ctx context.Context, metricsURL string, waiting func() int64) {
	awaitAll(ctx, func() bool {
		m, err := scrape(ctx, metricsURL)
		return err == nil && openOf(m) >= float64(waiting())
	})
}

// openOf is the frontend's open connections, of both kinds, in a scrape.
func openOf(m map[string]float64) float64 {
	return m[`quickmatch_frontend_open_connections{kind="sse"}`] + m[`quickmatch_frontend_open_connections{kind="ws"}`]
}
