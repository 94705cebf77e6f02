// Package kube is the allocator's Agones backend: it creates
// allocation.agones.dev/v1 GameServerAllocations through the Kubernetes
// API of one or more clusters, with client-go for configuration and
// transport and wire types of our own (package agones).
//
// A match goes only to the clusters whose fleet hosts its mode (Cluster.
// Modes); a mode none hosts fails at once (allocator.ErrModeNotHosted).
// Those of the match's region are tried first, then the others (a region
// with no room spills over to its neighbours rather than fail its
// players); within each, by priority (lowest first), and within a
// priority in a weighted random order. A cluster that answers UnAllocated has no room:
// the next is tried (spillover). A cluster whose API fails (429, 5xx,
// timeouts, conflicts) counts a failure; after FailuresToUnhealthy in a
// row it is skipped for a cool-down, then tried again. If every cluster
// had no room, Allocate returns allocator.ErrNoCapacity; if some failed,
// it returns the error, and the request handler retries with backoff.
//
// kube.go allocates; config.go holds Config, its flag and the clusters
// (LoadClusters); capacity.go watches the GameServers for capacity
// reports; found.go finds in them the server a match was given before.
package kube

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/rest"

	"github.com/quickmatch-dev/quickmatch/pkg/agones"
	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/services/allocator/internal/allocator"
)

// Mode is how matches share game servers.
type Mode string

// The modes.
const (
	// HighDensity packs rooms onto servers: an Allocated server with a free
	// room first, then a Ready one; Packed; fullest first.
	HighDensity Mode = "high-density"
	// LabelLocking dedicates a server to one game mode: Allocated servers
	// locked to the match's mode first, then a Ready one, which gets locked.
	LabelLocking Mode = "label-locking"
	// OnePerServer gives every match a Ready server of its own.
	OnePerServer Mode = "one-per-server"
)

// LabelMode is the label a label-locked server carries: its mode's
// ModeLabel.
const LabelMode = "quickmatch.dev/mode"

// ModeLabel is mode as a label value: itself when Kubernetes takes it
// (at most 63 characters, a letter or digit at each end), else "h-" and
// the first 16 hex digits of its SHA-256. A mode may be 64 characters
// and start or end with "-" or "_" (pkg/events), and Agones refused the
// allocation of every match of such a mode (422).
func ModeLabel(mode string) string {
	if len(validation.IsValidLabelValue(mode)) == 0 {
		return mode
	}
	sum := sha256.Sum256([]byte(mode))
	return "h-" + hex.EncodeToString(sum[:8])
}

type cluster struct {
	Cluster
	hc   *http.Client
	base string

	// informer is the GameServer informer's cache, once Watch made it:
	// Watch runs beside the readers of the cache (Capacity, Backfills),
	// so it is handed over atomically.
	informer atomic.Pointer[informer]

	mu        sync.Mutex
	failures  int
	skipUntil time.Time
}

// Backend allocates from the clusters.
type Backend struct {
	cfg      Config
	clusters []*cluster
	log      *slog.Logger
	now      func() time.Time
	spills   prometheus.Counter
	unhealth *prometheus.CounterVec
	// decoded keeps the servers' requests between polls (Backfills).
	decoded decoded
}

// Register adds the backend's metrics to reg.
func (b *Backend) Register(reg prometheus.Registerer) { reg.MustRegister(b.spills, b.unhealth) }

var _ allocator.Backend = (*Backend)(nil)

// New returns a backend over clusters.
func New(cfg Config, clusters []Cluster, log *slog.Logger) (*Backend, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if len(clusters) == 0 {
		return nil, errors.New("no clusters")
	}
	b := &Backend{cfg: cfg, log: log, now: time.Now,
		spills: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "quickmatch_allocator_spillovers_total", Help: "Matches allocated in a cluster other than the first one tried.",
		}),
		unhealth: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "quickmatch_allocator_cluster_unhealthy_total", Help: "Times a cluster was ruled out for its cool-down.",
		}, []string{"cluster"}),
	}
	for _, c := range clusters {
		// The timeout goes in a copy of the config: for a plain-HTTP
		// config without one, client-go hands back http.DefaultClient,
		// and setting its Timeout would change every client in the
		// process (and race between backends).
		rc := rest.CopyConfig(c.Config)
		rc.Timeout = cfg.Timeout
		hc, err := rest.HTTPClientFor(rc)
		if err != nil {
			return nil, fmt.Errorf("cluster %s: %w", c.Name, err)
		}
		if c.Weight <= 0 {
			c.Weight = 1
		}
		b.clusters = append(b.clusters, &cluster{Cluster: c, hc: hc, base: strings.TrimRight(c.Config.Host, "/")})
	}
	return b, nil
}

// Request builds the GameServerAllocation of a match in this mode.
//
// In every mode the allocation adds the match id to the rooms List and
// its players to the players List, and writes the room annotation
// (agones.EncodeRoom): the game server opens a room for each id in the
// rooms List (pkg/agones, room.go). Every selector asks for room in both
// lists for the whole match, since Agones cuts an allocation's addValues
// at a list's capacity without an error and would otherwise pick a
// server whose players list is full.
func (b *Backend) Request(c Cluster, m events.Match) (agones.GameServerAllocation, error) {
	room, err := allocator.RoomOf(m)
	if err != nil {
		return agones.GameServerAllocation{}, err
	}
	fleet := map[string]string{"agones.dev/fleet": c.Fleet}
	meta, lists := agones.RoomActions(m.MatchID, room)
	gsa := agones.GameServerAllocation{
		TypeMeta:   agones.TypeMeta{APIVersion: "allocation.agones.dev/v1", Kind: "GameServerAllocation"},
		ObjectMeta: agones.ObjectMeta{Namespace: c.Namespace},
		Spec:       agones.GameServerAllocationSpec{Scheduling: c.scheduling(), Metadata: meta, Lists: lists},
	}
	fits := agones.RoomFits(room)
	// A retiring server takes no more rooms (agones.RetiringLabel).
	notRetiring := []agones.LabelSelectorRequirement{{Key: agones.RetiringLabel, Operator: "DoesNotExist"}}
	// Among servers that fit, the fullest first (the fewest free rooms).
	fullest := []agones.Priority{{Type: "List", Key: agones.ListRooms, Order: "Ascending"}}
	switch b.cfg.Mode {
	case HighDensity:
		// The Allocated selector must come first, or partly full servers
		// are never reused.
		gsa.Spec.Selectors = []agones.GameServerSelector{
			{MatchLabels: fleet, MatchExpressions: notRetiring, GameServerState: agones.StateAllocated, Lists: fits},
			{MatchLabels: fleet, MatchExpressions: notRetiring, GameServerState: agones.StateReady, Lists: fits},
		}
		gsa.Spec.Priorities = fullest
	case LabelLocking:
		locked := map[string]string{"agones.dev/fleet": c.Fleet, LabelMode: ModeLabel(m.Mode)}
		gsa.Spec.Selectors = []agones.GameServerSelector{
			{MatchLabels: locked, MatchExpressions: notRetiring, GameServerState: agones.StateAllocated, Lists: fits},
			{MatchLabels: fleet, MatchExpressions: notRetiring, GameServerState: agones.StateReady, Lists: fits},
		}
		gsa.Spec.Priorities = fullest
		meta.Labels = map[string]string{LabelMode: ModeLabel(m.Mode)}
	case OnePerServer:
		gsa.Spec.Selectors = []agones.GameServerSelector{{MatchLabels: fleet, MatchExpressions: notRetiring, GameServerState: agones.StateReady, Lists: fits}}
	}
	return gsa, nil
}

// ErrAPI wraps a failed Kubernetes API call (retryable).
var ErrAPI = errors.New("kubernetes API call failed")

// Allocate finds the match a game server in the first cluster with room
// among those whose fleet hosts the match's mode. A mode no cluster hosts
// is a permanent failure (allocator.ErrModeNotHosted).
func (b *Backend) Allocate(ctx context.Context, m events.Match) (allocator.Server, error) {
	if !slices.ContainsFunc(b.clusters, func(c *cluster) bool { return c.hosts(m.Mode) }) {
		return allocator.Server{}, allocator.Permanent(fmt.Errorf("mode %q: %w", m.Mode, allocator.ErrModeNotHosted))
	}
	if _, err := allocator.RoomOf(m); err != nil {
		return allocator.Server{}, err // permanent: asking each cluster would not change it
	}
	if srv, ok := b.allocatedTo(m); ok {
		return srv, nil
	}
	var errs []error
	noRoom := 0
	tried := 0
	for _, c := range b.order(m.Mode, m.Region) {
		if dl, ok := ctx.Deadline(); ok && tried > 0 && time.Until(dl) < b.cfg.Timeout+b.cfg.Settle {
			// A call cut short leaves unclear whether it allocated: fail clearly.
			errs = append(errs, fmt.Errorf("%w: no time left to ask cluster %s", ErrAPI, c.Name))
			break
		}
		tried++
		srv, err := b.allocateIn(ctx, c, m)
		if errors.Is(err, errUnclear) {
			// Agones may be at it still: asking the next cluster, or
			// failing for the retry to ask again, would take a second
			// server.
			if found, ok := b.settle(ctx, c, m); ok {
				srv, err = found, nil
			}
		}
		switch {
		case err == nil:
			if tried > 1 {
				b.spills.Inc()
				b.log.Info("allocation spilled over", "match_id", m.MatchID, "cluster", c.Name, "clusters_tried", tried)
			}
			return srv, nil
		case errors.Is(err, allocator.ErrNoCapacity):
			noRoom++
		default:
			errs = append(errs, err)
		}
	}
	if tried == 0 {
		return allocator.Server{}, fmt.Errorf("%w: every cluster hosting mode %q is unhealthy", ErrAPI, m.Mode)
	}
	if noRoom == tried {
		return allocator.Server{}, allocator.ErrNoCapacity
	}
	// Retry while a cluster might still answer otherwise; permanent only
	// when every error was.
	retry := slices.DeleteFunc(slices.Clone(errs), func(err error) bool { return errors.Is(err, allocator.ErrPermanent) })
	if len(retry) > 0 {
		return allocator.Server{}, errors.Join(retry...)
	}
	return allocator.Server{}, errors.Join(errs...)
}

// order lists the healthy clusters that host mode: those of region first,
// then by priority, weighted random within.
func (b *Backend) order(mode, region string) []*cluster {
	now := b.now()
	var out []*cluster
	for _, c := range b.clusters {
		if !c.hosts(mode) {
			continue
		}
		c.mu.Lock()
		ok := now.After(c.skipUntil)
		c.mu.Unlock()
		if ok {
			out = append(out, c)
		}
	}
	keys := make(map[*cluster]float64, len(out))
	for _, c := range out {
		// Weighted random order (Efraimidis-Spirakis): larger weight, earlier.
		keys[c] = -rand.Float64() / float64(c.Weight)
	}
	slices.SortStableFunc(out, func(a, b *cluster) int {
		// The match's own region first: its players measured their
		// latency to it, and the frontends gate admission on its
		// capacity. Other regions only take the spillover.
		if ah, bh := a.Region == region, b.Region == region; ah != bh {
			if ah {
				return -1
			}
			return 1
		}
		if a.Priority != b.Priority {
			return a.Priority - b.Priority
		}
		switch {
		case keys[a] < keys[b]:
			return -1
		case keys[a] > keys[b]:
			return 1
		}
		return 0
	})
	return out
}

func (b *Backend) allocateIn(ctx context.Context, c *cluster, m events.Match) (allocator.Server, error) {
	gsa, err := b.Request(c.Cluster, m)
	if err != nil {
		return allocator.Server{}, err
	}
	body, _ := json.Marshal(gsa) // our wire types always encode
	u := c.base + "/apis/allocation.agones.dev/v1/namespaces/" + url.PathEscape(c.Namespace) + "/gameserverallocations"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return allocator.Server{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	var wrote atomic.Bool // the request went out: Agones may have it
	req = req.WithContext(httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteRequest: func(httptrace.WroteRequestInfo) { wrote.Store(true) },
	}))
	res, err := c.hc.Do(req)
	if err != nil {
		err = fmt.Errorf("%w: cluster %s: %w", ErrAPI, c.Name, err)
		if ctx.Err() == nil { // cut short by its caller, the cluster is not at fault
			c.failed(b, err)
		}
		if !wrote.Load() { // a connection never made, a TLS handshake or proxy that failed
			return allocator.Server{}, err
		}
		return allocator.Server{}, fmt.Errorf("%w (%w)", err, errUnclear)
	}
	defer res.Body.Close()
	data, rerr := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if res.StatusCode == http.StatusUnprocessableEntity {
		// Agones refused the request itself (its Validate): the cluster is
		// healthy, and asking again cannot change the answer.
		return allocator.Server{}, allocator.Permanent(fmt.Errorf("%w: cluster %s refused the allocation: %.300s", errRefused, c.Name, data))
	}
	if res.StatusCode != http.StatusCreated && res.StatusCode != http.StatusOK {
		err := fmt.Errorf("%w: cluster %s: %s: %.200s", ErrAPI, c.Name, res.Status, data)
		switch res.StatusCode {
		case http.StatusInternalServerError, http.StatusBadGateway, http.StatusGatewayTimeout:
			// Agones may be at it still (a gateway's timeout, Agones
			// failing after it allocated); a 503 is the aggregator
			// finding no Agones to ask.
			err = fmt.Errorf("%w (%w)", err, errUnclear)
		case http.StatusTooManyRequests:
			// The API server's priority and fairness holding this client
			// back: a busy cluster, not a failing one. Counted as a
			// failure, three in a row skipped the cluster for the
			// cooldown, and with one cluster every match failed then.
			return allocator.Server{}, err
		}
		c.failed(b, err)
		return allocator.Server{}, err
	}
	srv, err := ServerOf(data, c.Name)
	if rerr != nil {
		err = fmt.Errorf("cluster %s: %w: %w", c.Name, errBadAnswer, rerr)
	}
	if errors.Is(err, errBadAnswer) {
		// Agones answered, so it may have allocated: the answer cut
		// short, or a server players cannot be sent to.
		c.failed(b, err)
		return allocator.Server{}, fmt.Errorf("%w: %w (%w)", ErrAPI, err, errUnclear)
	}
	c.ok()
	return srv, err
}

var (
	errBadAnswer = errors.New("bad answer")
	errRefused   = errors.New("allocation request refused")
	// errUnclear: the call may have allocated (Backend.settle).
	errUnclear = errors.New("no clear answer")
)

func (c *cluster) failed(b *Backend, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failures++
	if c.failures >= b.cfg.FailuresToUnhealthy {
		c.skipUntil = b.now().Add(b.cfg.Cooldown)
		c.failures = 0
		b.unhealth.WithLabelValues(c.Name).Inc()
		b.log.Warn("cluster unhealthy; skipped for a while", "cluster", c.Name, "cooldown", b.cfg.Cooldown, "err", err)
	}
}

func (c *cluster) ok() {
	c.mu.Lock()
	c.failures = 0
	c.mu.Unlock()
}
