package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// runResult is what `load run` reports (also as JSON with -json).
type runResult struct {
	Rate       float64          `json:"rate_per_second"`
	Seconds    float64          `json:"seconds"`
	Sent       int64            `json:"tickets_sent"`
	Assigned   int64            `json:"assigned"`
	Throughput float64          `json:"assigned_per_second"`
	Errors     map[string]int64 `json:"errors_by_kind"`
	// Latency from the ticket's POST (or publish, -via nats) to its
	// assignment, in milliseconds.
	Latency map[string]float64 `json:"latency_ms"`
	// Accepted is the latency of the POST alone (to the frontend's 202;
	// -via nats: to JetStream's ack),
	// of the tickets that were then assigned: where Latency is long and
	// this is too, the wait was before the ticket was even queued.
	Accepted map[string]float64 `json:"accepted_ms"`
	// Windows splits the run by arrival time (-interval): whether the rate
	// was sustained, and whether latency grew as the run went on.
	Windows []window `json:"windows,omitempty"`
}

// window is the tickets that arrived in one -interval of the run.
type window struct {
	FromSeconds float64            `json:"from_seconds"`
	Sent        int64              `json:"tickets_sent"`
	Assigned    int64              `json:"assigned"`
	Latency     map[string]float64 `json:"latency_ms"`
}

// runLoad is the open-arrival load: tickets arrive at -rate per second for
// -duration, whatever the system does with them (an arrival never waits
// for an earlier one). Each client queues a ticket and follows it over
// Server-Sent Events until it is assigned, failed or expired. Time to
// assignment goes into an HDR histogram.
func runLoad(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	base := fs.String("url", "http://127.0.0.1:3000", "frontend base URLs, comma-separated: tickets go to each in turn")
	recordPath := fs.String("record", "", "write every acknowledged ticket (JSON lines: ticket_id, player_id, frontend, accepted_at) to this file, for a checker")
	rate := fs.Float64("rate", 200, "tickets per second")
	duration := fs.Duration("duration", 30*time.Second, "how long tickets arrive")
	timeout := fs.Duration("timeout", 30*time.Second, "how long one ticket may wait for its assignment")
	regions := fs.String("regions", "eu,us,asia", "regions to spread tickets over")
	skills := fs.String("skills", "1600-1999", "skill range of the tickets (one tier keeps every ticket a partner)")
	h2c := fs.Bool("h2c", true, "speak HTTP/2 cleartext to the frontend (streams, not a socket per client)")
	sources := fs.Int("source-ips", 1, "spread client sockets over 127.0.0.1..N")
	jsonOut := fs.Bool("json", false, "print the result as JSON")
	via := fs.String("via", "http", "how tickets arrive: http (POST and Server-Sent Events to -url) or nats (published on the shard's JetStream subject, outcome on the player's result subject, no frontend)")
	natsURL := fs.String("nats-url", "nats://127.0.0.1:4222", "NATS server, with -via nats")
	natsPrefix := fs.String("subject-prefix", "", "subject prefix of the deployment, with -via nats")
	natsUser := fs.String("nats-user", "", "NATS user, with -via nats (it must publish tickets and subscribe to results)")
	natsPassword := fs.String("nats-password", "", "NATS password, with -via nats")
	interval := fs.Duration("interval", 0, "also report each interval of arrivals on its own (e.g. 10s): sent, assigned, latency")
	cpuProfile := fs.String("cpuprofile", "", "write the load tool's own CPU profile to this file (it shares the machine with what it measures)")
	var toks tokens
	toks.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := toks.setup(); err != nil {
		return err
	}
	if *cpuProfile != "" {
		stop, err := profileCPU(*cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	var lo, hi int
	if _, err := fmt.Sscanf(*skills, "%d-%d", &lo, &hi); err != nil || hi < lo {
		return fmt.Errorf("-skills %q: want lo-hi", *skills)
	}
	regionList := strings.Split(*regions, ",")
	bases := strings.Split(*base, ",")
	for i := range bases {
		bases[i] = strings.TrimRight(strings.TrimSpace(bases[i]), "/")
	}
	var rec *recorder
	if *recordPath != "" {
		f, err := os.Create(*recordPath)
		if err != nil {
			return err
		}
		rec = &recorder{enc: json.NewEncoder(f)}
		defer func() {
			if err := f.Close(); err != nil {
				fmt.Fprintln(os.Stderr, "record:", err)
			}
		}()
	}
	var ticket func(ctx context.Context, i int, player, region string, skill int) (time.Time, string)
	switch *via {
	case "http":
		hc := client(*h2c, *sources, 256)
		ticket = func(ctx context.Context, i int, player, region string, skill int) (time.Time, string) {
			return follow(ctx, hc, &toks, bases[i%len(bases)], player, region, skill, rec)
		}
	case "nats":
		d, err := newNATSDriver(*natsURL, *natsPrefix, *natsUser, *natsPassword)
		if err != nil {
			return err
		}
		defer d.close()
		ticket = func(ctx context.Context, _ int, player, region string, skill int) (time.Time, string) {
			return d.follow(ctx, player, region, skill)
		}
	default:
		return fmt.Errorf("-via %q: want http or nats", *via)
	}
	hist := hdrhistogram.New(1, int64(10*time.Minute/time.Microsecond), 3)
	acceptHist := hdrhistogram.New(1, int64(10*time.Minute/time.Microsecond), 3)
	var histMu sync.Mutex
	var windows []*hdrhistogram.Histogram
	var windowSent []int64
	if *interval > 0 {
		k := int(math.Ceil(float64(*duration) / float64(*interval)))
		windows, windowSent = make([]*hdrhistogram.Histogram, k), make([]int64, k)
		for j := range windows {
			windows[j] = hdrhistogram.New(1, int64(10*time.Minute/time.Microsecond), 3)
		}
	}
	var sent, assigned atomic.Int64
	var errMu sync.Mutex
	errs := map[string]int64{}
	fail := func(kind string) {
		errMu.Lock()
		errs[kind]++
		errMu.Unlock()
	}
	run := fmt.Sprintf("%x", time.Now().UnixNano()&0xffffff)
	var wg sync.WaitGroup
	start := time.Now()
	// Exactly rate × duration arrivals, the i-th at i/rate seconds.
	n := int(*rate * duration.Seconds())
	for i := range n {
		if ctx.Err() != nil {
			break
		}
		at := start.Add(time.Duration(float64(i) / *rate * float64(time.Second)))
		if d := time.Until(at); d > 0 {
			time.Sleep(d)
		}
		wg.Add(1)
		sent.Add(1)
		w := -1
		if windows != nil {
			w = min(int(at.Sub(start) / *interval), len(windows)-1)
			windowSent[w]++
		}
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, *timeout)
			defer cancel()
			t0 := time.Now()
			accepted, kind := ticket(cctx, i, fmt.Sprintf("run-%s-%d", run, i), regionList[i%len(regionList)], lo+rand.IntN(hi-lo+1))
			if kind != "" {
				fail(kind)
				return
			}
			assigned.Add(1)
			histMu.Lock()
			_ = hist.RecordValue(time.Since(t0).Microseconds())
			_ = acceptHist.RecordValue(accepted.Sub(t0).Microseconds())
			if w >= 0 {
				_ = windows[w].RecordValue(time.Since(t0).Microseconds())
			}
			histMu.Unlock()
		}()
	}
	arrivals := time.Since(start)
	wg.Wait()
	res := runResult{Rate: *rate, Seconds: arrivals.Seconds(), Sent: sent.Load(), Assigned: assigned.Load(), Errors: errs}
	res.Throughput = float64(res.Assigned) / arrivals.Seconds()
	quantiles := func(h *hdrhistogram.Histogram) map[string]float64 {
		ms := func(q float64) float64 { return float64(h.ValueAtQuantile(q)) / 1000 }
		return map[string]float64{"p50": ms(50), "p90": ms(90), "p99": ms(99), "p99.9": ms(99.9), "max": float64(h.Max()) / 1000}
	}
	res.Latency, res.Accepted = quantiles(hist), quantiles(acceptHist)
	for j, h := range windows {
		res.Windows = append(res.Windows, window{FromSeconds: (time.Duration(j) * *interval).Seconds(), Sent: windowSent[j], Assigned: h.TotalCount(), Latency: quantiles(h)})
	}
	if *jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	fmt.Fprintf(stdout, "arrivals    %d tickets at %.0f/s over %.1fs\n", res.Sent, res.Rate, res.Seconds)
	fmt.Fprintf(stdout, "assigned    %d (%.0f/s)\n", res.Assigned, res.Throughput)
	sendTo, ackBy := "POST", "202"
	if *via == "nats" {
		sendTo, ackBy = "publish", "stored"
	}
	fmt.Fprintf(stdout, "latency ms  p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f  (%s to assignment)\n",
		res.Latency["p50"], res.Latency["p90"], res.Latency["p99"], res.Latency["p99.9"], res.Latency["max"], sendTo)
	fmt.Fprintf(stdout, "accepted ms p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f  (%s to %s, of those)\n",
		res.Accepted["p50"], res.Accepted["p90"], res.Accepted["p99"], res.Accepted["p99.9"], res.Accepted["max"], sendTo, ackBy)
	for _, w := range res.Windows {
		fmt.Fprintf(stdout, "from %5.0fs  sent %d  assigned %d  p50 %.1f  p99 %.1f  max %.1f ms\n",
			w.FromSeconds, w.Sent, w.Assigned, w.Latency["p50"], w.Latency["p99"], w.Latency["max"])
	}
	kinds := make([]string, 0, len(errs))
	for k := range errs {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		fmt.Fprintf(stdout, "error       %s: %d\n", k, errs[k])
	}
	return nil
}

// profileCPU writes a CPU profile of this process to path until stop.
func profileCPU(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "cpu profile:", err)
		}
	}, nil
}

// Acked is one ticket a frontend acknowledged (202), as -record writes it.
type Acked struct {
	TicketID   string    `json:"ticket_id"`
	PlayerID   string    `json:"player_id"`
	Frontend   string    `json:"frontend"`
	AcceptedAt time.Time `json:"accepted_at"`
}

// recorder writes Acked lines from many goroutines.
type recorder struct {
	mu  sync.Mutex
	enc *json.Encoder
}

func (r *recorder) add(a Acked) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	_ = r.enc.Encode(a)
}

// follow queues one ticket and waits for its outcome; it returns when the
// frontend accepted it and "" when assigned, or the kind of what went
// wrong.
func follow(ctx context.Context, hc *http.Client, toks *tokens, base, player, region string, skill int, rec *recorder) (accepted time.Time, kind string) {
	kind = followTicket(ctx, hc, toks, base, player, region, skill, rec, &accepted)
	return accepted, kind
}

func followTicket(ctx context.Context, hc *http.Client, toks *tokens, base, player, region string, skill int, rec *recorder, accepted *time.Time) string {
	body := fmt.Sprintf(`{"player_id":%q,"skill":%d,"region":%q,"mode":"1v1"}`, player, skill, region)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/tickets", strings.NewReader(body))
	// One token per player, minted once: the POST and the stream are the
	// same player's.
	if err := toks.authorize(req.Header, player); err != nil {
		return "token_error"
	}
	auth := req.Header.Get("Authorization")
	res, err := hc.Do(req)
	if err != nil {
		return "post_error"
	}
	var view struct {
		TicketID string `json:"ticket_id"`
	}
	err = json.NewDecoder(res.Body).Decode(&view)
	res.Body.Close()
	if res.StatusCode != http.StatusAccepted || err != nil {
		return fmt.Sprintf("post_%d", res.StatusCode)
	}
	*accepted = time.Now()
	rec.add(Acked{TicketID: view.TicketID, PlayerID: player, Frontend: base, AcceptedAt: *accepted})
	req, _ = http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/tickets/"+view.TicketID+"/events", nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	res, err = hc.Do(req)
	if err != nil {
		return "events_error"
	}
	defer res.Body.Close()
	r := bufio.NewReader(res.Body)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			if ctx.Err() != nil {
				return "timeout"
			}
			return "events_closed"
		}
		if !strings.HasPrefix(line, "data: ") {
			continue
		}
		var v struct {
			Status string `json:"status"`
		}
		if json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &v) != nil {
			return "events_bad"
		}
		switch v.Status {
		case "assigned":
			return ""
		case "queued", "matched":
		default:
			return v.Status
		}
	}
}
