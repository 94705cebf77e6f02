package perf

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/quickmatch-dev/quickmatch/dev/stack"
)

// Report is a whole perf run: its settings and one Leg per transport.
type Report struct {
	Started  time.Time `json:"started"`
	Rate     float64   `json:"rate_per_second"`
	Duration float64   `json:"duration_seconds"` // of the arrivals, each leg
	Skills   string    `json:"skills"`
	Regions  string    `json:"regions"`
	// Players: 0, every ticket a new player's; else how many players
	// sent them, asking again once their ticket had its outcome.
	Players int `json:"players,omitempty"`
	// Burst: tickets arrived this many at one instant (0: one at a time).
	Burst int `json:"burst,omitempty"`
	// HTTP1: the http leg spoke HTTP/1.1, not h2c.
	HTTP1  bool   `json:"http1,omitempty"`
	BinDir string `json:"bin_dir"`
	// NATS says where the NATS server ran: embedded in perf's process.
	NATS string `json:"nats"`
	Legs []Leg  `json:"legs"`
}

// Leg is what one transport cost, on a fresh stack.
type Leg struct {
	Via string `json:"via"` // http, ws or nats
	// WindowSeconds is how long the measured window lasted: the load
	// tool's whole run, arrivals and the wait for every outcome.
	WindowSeconds float64 `json:"window_seconds"`
	// ChargedSeconds is the part of the window the processes' CPU is
	// charged for (every Usage but the load tool's): from the load's
	// first ticket sent to its last assignment, read to within
	// periodEvery (chargedPeriod). Messages are the whole window's.
	ChargedSeconds float64 `json:"charged_seconds"`
	// ChargedWholeWindow: the load tool gave no times (an older build),
	// and the CPU is charged for the whole window.
	ChargedWholeWindow bool `json:"charged_whole_window,omitempty"`
	// IdleSeconds is how long the stack was measured at rest before the
	// load (Usage.IdleCores); 0: not measured.
	IdleSeconds float64     `json:"idle_seconds,omitempty"`
	Load        LoadSummary `json:"load"`
	// Probe is the probe's own figures (Config.ProbeRate), nil without one:
	// what a player on a connection of its own meets while the load runs.
	// Its tickets are in the per-ticket figures beside the load's.
	Probe *LoadSummary `json:"probe,omitempty"`
	// Acknowledged and assigned tickets, and each per second of arrivals.
	Acknowledged      int64   `json:"acknowledged"`
	AckPerSecond      float64 `json:"acknowledged_per_second"`
	AssignedPerSecond float64 `json:"assigned_per_second"`
	// Processes of the system, NATS first; Total is their sum.
	Processes []Usage `json:"processes"`
	Total     Usage   `json:"total"`
	// LoadTool is the load generator, measured apart, not in Total.
	LoadTool Usage `json:"load_tool"`
	// Messages is what the NATS server carried and stored in the whole
	// window (a partnerless ticket's wait after the charged period adds
	// little: heartbeats), per assigned ticket: the count the lean path's
	// design reasons with.
	Messages *Messages `json:"nats_messages_per_assigned,omitempty"`
	// RSSSeries is each process's resident memory through the window,
	// sampled every Config.RSSEvery (none when that is 0).
	RSSSeries []RSSPoint `json:"rss_series,omitempty"`
}

// RSSPoint is one sample of RSSSeries: seconds into the window, and the
// resident memory of each process by name, in bytes.
type RSSPoint struct {
	Seconds float64          `json:"at_seconds"`
	RSS     map[string]int64 `json:"rss_bytes"`
}

// Messages are the embedded NATS server's counts over a leg's window,
// each divided by the tickets assigned (stack.NATSCounts says what each
// counts).
type Messages struct {
	In  float64 `json:"in"`
	Out float64 `json:"out"`
	API float64 `json:"jetstream_api_requests"`
	// Subscribed is the subscriptions made (stack.NATSCounts.Subscribed).
	Subscribed float64 `json:"subscriptions_made"`
	// Stored is by stream: the messages written to it (KV buckets'
	// streams are KV_<bucket>); StoredTotal their sum.
	Stored      map[string]float64 `json:"stored"`
	StoredTotal float64            `json:"stored_total"`
	// KeysAdded is by stream: the subjects holding a message at the
	// window's end less those at its start (stack.NATSCounts.Keys),
	// which is the keys the window added as long as it is shorter than
	// their lives (fewer where it removed some, as a work queue does);
	// KeysAddedTotal their sum. Each stays in the server's memory as long
	// as its message lives (a record bucket's TTL).
	KeysAdded      map[string]float64 `json:"keys_added"`
	KeysAddedTotal float64            `json:"keys_added_total"`
	// ByClient is by connection name (stack.NATSCounts.ByClient): what
	// each service sent the server and was sent.
	ByClient map[string]InOut `json:"by_client"`
}

// InOut are messages per ticket into and out of the server.
type InOut struct {
	In  float64 `json:"in"`
	Out float64 `json:"out"`
}

// NewMessages is the difference of two readings, per ticket of assigned
// (nil when none was assigned).
func NewMessages(start, end stack.NATSCounts, assigned int64) *Messages {
	if assigned <= 0 {
		return nil
	}
	n := float64(assigned)
	m := &Messages{In: float64(end.In-start.In) / n, Out: float64(end.Out-start.Out) / n,
		API: float64(end.API-start.API) / n, Subscribed: float64(end.Subscribed-start.Subscribed) / n, Stored: map[string]float64{}, KeysAdded: map[string]float64{}, ByClient: map[string]InOut{}}
	// A counter can only grow, but a closed connection may drop off the
	// server's list (it keeps the last 10,000): a name whose sum fell
	// counts 0, an undercount perf's few connections never reach.
	grew := func(from, to uint64) float64 { return float64(to-min(from, to)) / n }
	for name, last := range end.Stored {
		// A stream made inside the window started from nothing.
		if d := grew(start.Stored[name], last); d > 0 {
			m.Stored[name] = d
			m.StoredTotal += d
		}
	}
	for name, last := range end.Keys {
		if d := (float64(last) - float64(start.Keys[name])) / n; d != 0 {
			m.KeysAdded[name] = d
			m.KeysAddedTotal += d
		}
	}
	for name, e := range end.ByClient {
		s := start.ByClient[name]
		if io := (InOut{In: grew(s.In, e.In), Out: grew(s.Out, e.Out)}); io.In > 0 || io.Out > 0 {
			m.ByClient[name] = io
		}
	}
	return m
}

// Usage is what one process (or the sum of several) used in a leg's
// window.
type Usage struct {
	Name string `json:"name"`
	Pid  int    `json:"pid,omitempty"`
	// CPUSeconds is user plus system CPU time in the leg's charged period
	// (Leg.ChargedSeconds); the load tool's is its whole run.
	CPUSeconds float64 `json:"cpu_seconds"`
	// PerThousand is CPUSeconds per 1,000 assigned tickets, Micros the
	// same per ticket in µs; both absent when none was assigned.
	PerThousand *float64 `json:"cpu_seconds_per_1000_assigned,omitempty"`
	Micros      *float64 `json:"cpu_us_per_assigned,omitempty"`
	// RSS at the end of the charged period, and the peak (for a sum: the
	// sum of each one's peak, which need not have come at the same
	// moment).
	RSS  int64 `json:"rss_bytes"`
	Peak int64 `json:"peak_rss_bytes"`
	// IdleCores is the CPU it used at rest before the load, in CPU
	// seconds per second: its idle work inside the window is about
	// IdleCores × the window, whatever the rate.
	IdleCores float64 `json:"idle_cpu_seconds_per_second"`
	// Wakes is how often its threads slept to wait and were woken, in
	// the charged period (Sample.Wakes); WakesPerTicket the same per
	// assigned ticket, absent when none was.
	Wakes          uint64   `json:"wakes"`
	WakesPerTicket *float64 `json:"wakes_per_assigned,omitempty"`

	cpu time.Duration // CPUSeconds exactly, for Sum
}

// NewUsage is the usage of process name between samples start and end,
// for the tickets assigned in the window.
func NewUsage(name string, pid int, start, end Sample, assigned int64) Usage {
	u := Usage{Name: name, Pid: pid, RSS: end.RSS, Peak: end.Peak}
	u.setCPU(end.CPU-start.CPU, assigned)
	u.setWakes(WakesBetween(start, end), assigned)
	return u
}

// setWakes sets the wakes and their number per ticket.
func (u *Usage) setWakes(wakes uint64, assigned int64) {
	u.Wakes, u.WakesPerTicket = wakes, nil
	if assigned > 0 {
		w := float64(wakes) / float64(assigned)
		u.WakesPerTicket = &w
	}
}

// setCPU sets the CPU time and its share per ticket.
func (u *Usage) setCPU(cpu time.Duration, assigned int64) {
	u.cpu, u.CPUSeconds = cpu, cpu.Seconds()
	u.PerThousand, u.Micros = nil, nil
	if assigned > 0 {
		k := PerThousand(cpu, assigned)
		us := MicrosPerTicket(cpu, assigned)
		u.PerThousand, u.Micros = &k, &us
	}
}

// PerThousand is CPU seconds per 1,000 of n tickets.
func PerThousand(cpu time.Duration, n int64) float64 {
	return cpu.Seconds() * 1000 / float64(n)
}

// MicrosPerTicket is CPU µs per ticket, of n tickets.
func MicrosPerTicket(cpu time.Duration, n int64) float64 {
	return float64(cpu.Microseconds()) / float64(n)
}

// Sum is the usage of every process of us together, named name.
func Sum(name string, us []Usage, assigned int64) Usage {
	total := Usage{Name: name}
	var cpu time.Duration
	var wakes uint64
	for _, u := range us {
		cpu += u.cpu
		wakes += u.Wakes
		total.RSS += u.RSS
		total.Peak += u.Peak
	}
	total.setCPU(cpu, assigned)
	total.setWakes(wakes, assigned)
	return total
}

// Print writes rep as tables, one per leg, then the totals side by side.
func Print(w io.Writer, rep Report) {
	fmt.Fprintf(w, "perf: %.0f tickets/s for %gs per leg, skills %s, regions %s, binaries %s\nNATS: %s\n",
		rep.Rate, rep.Duration, rep.Skills, rep.Regions, rep.BinDir, rep.NATS)
	if rep.Burst > 1 {
		fmt.Fprintf(w, "arrivals in bursts of %d at the same mean rate\n", rep.Burst)
	}
	if rep.HTTP1 {
		fmt.Fprintln(w, "the http leg over HTTP/1.1")
	}
	if rep.Players > 0 {
		fmt.Fprintf(w, "players: %d, each asking again once their ticket has its outcome\n", rep.Players)
	}
	for _, l := range rep.Legs {
		printLeg(w, l)
	}
	if len(rep.Legs) > 1 {
		fmt.Fprintln(w, "\ntotals (system, load tool excluded):")
		for _, l := range rep.Legs {
			fmt.Fprintf(w, "  %-5s %s µs/ticket, %s CPU s per 1,000, %.0f assigned/s, p99 %.1f ms, peak RSS %s MiB, idle %.1f%% CPU\n",
				l.Via, orDash(l.Total.Micros, "%.0f"), orDash(l.Total.PerThousand, "%.3f"),
				l.AssignedPerSecond, l.Load.Latency["p99"], mib(l.Total.Peak), l.Total.IdleCores*100)
		}
	}
}

func printLeg(w io.Writer, l Leg) {
	sendTo := map[string]string{"http": "POST", "ws": "connect", "nats": "publish"}[l.Via]
	period := "first ticket sent to last assignment"
	if l.ChargedWholeWindow {
		period = "all of it: the load tool gave no times"
	}
	fmt.Fprintf(w, "\n== %s: %d sent, %d acknowledged (%.1f/s), %d assigned (%.1f/s); window %.1f s, CPU charged for %.1f s of it (%s)\n",
		l.Via, l.Load.Sent, l.Acknowledged, l.AckPerSecond, l.Load.Assigned, l.AssignedPerSecond, l.WindowSeconds, l.ChargedSeconds, period)
	printLatency(w, l, sendTo)
	// Numbers align right; names, padded to one width here, stay left.
	width := len("process")
	for _, u := range append(slices.Clone(l.Processes), l.Total, l.LoadTool) {
		width = max(width, len(u.Name))
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%-*s\tpid\tCPU s\tCPU s/1000\tµs/ticket\twakes/ticket\tidle %%CPU\tRSS MiB\tpeak MiB\t\n", width, "process")
	row := func(u Usage) {
		pid := ""
		if u.Pid > 0 {
			pid = fmt.Sprint(u.Pid)
		}
		idle := "-"
		if l.IdleSeconds > 0 && u.Name != l.LoadTool.Name {
			idle = fmt.Sprintf("%.1f", u.IdleCores*100)
		}
		fmt.Fprintf(tw, "%-*s\t%s\t%.2f\t%s\t%s\t%s\t%s\t%s\t%s\t\n", width, u.Name, pid, u.CPUSeconds,
			orDash(u.PerThousand, "%.3f"), orDash(u.Micros, "%.0f"), orDash(u.WakesPerTicket, "%.1f"), idle, mib(u.RSS), mib(u.Peak))
	}
	for _, u := range l.Processes {
		row(u)
	}
	row(l.Total)
	row(l.LoadTool)
	_ = tw.Flush() // w's own errors are the caller's (stdout)
	if m := l.Messages; m != nil {
		fmt.Fprintf(w, "nats per ticket: %.1f messages in, %.1f out, %.1f JetStream API requests, %.3f subscriptions made, %.1f stored:",
			m.In, m.Out, m.API, m.Subscribed, m.StoredTotal)
		for _, name := range largestFirst(m.Stored) {
			fmt.Fprintf(w, " %s %.2f", name, m.Stored[name])
		}
		fmt.Fprintf(w, "\nnats keys added per ticket (kept while their messages live): %.2f:", m.KeysAddedTotal)
		for _, name := range largestFirst(m.KeysAdded) {
			if math.Abs(m.KeysAdded[name]) >= 0.005 { // a work queue's few left at rest
				fmt.Fprintf(w, " %s %.2f", name, m.KeysAdded[name])
			}
		}
		fmt.Fprint(w, "\nnats per ticket by connection (in/out):")
		for _, name := range slices.Sorted(maps.Keys(m.ByClient)) {
			fmt.Fprintf(w, " %s %.1f/%.1f", cmp.Or(name, "(unnamed)"), m.ByClient[name].In, m.ByClient[name].Out)
		}
		fmt.Fprintln(w)
	}
	if len(l.RSSSeries) > 0 {
		fmt.Fprintln(w, "RSS MiB through the window:")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprint(tw, "at s\t")
		for _, u := range l.Processes {
			fmt.Fprintf(tw, "%s\t", u.Name)
		}
		fmt.Fprintln(tw)
		for _, p := range l.RSSSeries {
			fmt.Fprintf(tw, "%.0f\t", p.Seconds)
			for _, u := range l.Processes {
				fmt.Fprintf(tw, "%s\t", mib(p.RSS[u.Name]))
			}
			fmt.Fprintln(tw)
		}
		_ = tw.Flush()
	}
}

// printLatency prints a leg's latency, its probe's, its windows' and its
// errors.
func printLatency(w io.Writer, l Leg, sendTo string) {
	fmt.Fprintf(w, "latency   p50 %.1f ms, p99 %.1f ms (%s to assignment); accepted p50 %.1f ms, p99 %.1f ms\n",
		l.Load.Latency["p50"], l.Load.Latency["p99"], sendTo, l.Load.Accepted["p50"], l.Load.Accepted["p99"])
	if r := l.Load.RefusedLatency; l.Load.Refused > 0 {
		fmt.Fprintf(w, "refused   %d: p50 %.1f ms, p99 %.1f ms, max %.1f ms (%s to 503)\n",
			l.Load.Refused, r["p50"], r["p99"], r["max"], sendTo)
	}
	if l.Load.Resent > 0 {
		fmt.Fprintf(w, "resent    %d POSTs sent again (-retries): a ticket counts once, timed from its first POST to its last answer\n", l.Load.Resent)
	}
	if p := l.Probe; p != nil {
		fmt.Fprintf(w, "probe     %.0f/s on its own connection: %d assigned, p50 %.1f ms, p99 %.1f ms (%s to assignment); accepted p50 %.1f ms, p99 %.1f ms",
			p.Rate, p.Assigned, p.Latency["p50"], p.Latency["p99"], sendTo, p.Accepted["p50"], p.Accepted["p99"])
		if r := p.RefusedLatency; p.Refused > 0 {
			fmt.Fprintf(w, "; refused %d: p50 %.1f ms, p99 %.1f ms, max %.1f ms", p.Refused, r["p50"], r["p99"], r["max"])
		}
		fmt.Fprintln(w)
	}
	for _, win := range l.Load.Windows {
		fmt.Fprintf(w, "from %4.0f s  sent %d, assigned %d: p50 %.1f ms, p99 %.1f ms", win.FromSeconds, win.Sent, win.Assigned, win.Latency["p50"], win.Latency["p99"])
		if r := win.RefusedLatency; win.Refused > 0 {
			fmt.Fprintf(w, "; refused %d: p50 %.1f ms, p99 %.1f ms, max %.1f ms", win.Refused, r["p50"], r["p99"], r["max"])
		}
		fmt.Fprintln(w)
	}
	for _, kind := range slices.Sorted(maps.Keys(l.Load.Errors)) {
		fmt.Fprintf(w, "error     %s: %d\n", kind, l.Load.Errors[kind])
	}
}

// orDash formats *v, or "-" when there is none.
func orDash(v *float64, format string) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf(format, *v)
}

// mib formats bytes in MiB, "-" for none (the load tool's RSS: it has
// exited when it is measured).
func mib(b int64) string {
	if b <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", float64(b)/(1<<20))
}

// largestFirst is the names of byName, the largest figure first (by
// name among equals).
func largestFirst(byName map[string]float64) []string {
	return slices.SortedFunc(maps.Keys(byName), func(a, b string) int {
		return cmp.Or(cmp.Compare(byName[b], byName[a]), strings.Compare(a, b))
	})
}
