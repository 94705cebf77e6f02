// Package autoscale is a FleetAutoscaler webhook that sizes a game-server
// fleet from real demand: the tickets waiting in the fleet's region, read
// from the Fleet's region label (Config.RegionLabel), which Agones sends
// with the request (FleetAutoscaleRequest.FleetLabels). Each fleet is
// sized from its own region's demand.
//
// Rooms are the Fleet's aggregated rooms List (agones.ListRooms): its
// count is the live rooms, its capacity the rooms the servers can host.
// Agones sums the List from what each server's SDK set, and a server may
// be compromised: one that raised its List's capacity would make its
// fleet look free, and the fleet would not grow. So no server counts for
// more rooms than its Fleet's spec gives it: the Fleet's
// agones.RoomsPerServerLabel (the chart sets it), else
// Config.RoomsPerServer.
//
// Agones posts a FleetAutoscaleReview every sync period (30 s by default).
// The answer keeps every server in use (allocated or reserved) and adds
// enough Ready servers for the rooms that the waiting players need beyond
// the free rooms of allocated servers, plus a buffer:
//
//	rooms needed   = ceil(waiting players / players per room)
//	rooms short    = max(0, rooms needed - free rooms on allocated servers)
//	                 (a server counted for its spec's rooms at most)
//	ready wanted   = ceil(rooms short / rooms per server) + buffer
//	replicas       = allocated + reserved + ready wanted, within [min, max]
package autoscale

import (
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/agones"
	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/envflag"
)

// Demand says how many players wait for a match in a region.
type Demand interface {
	Waiting(ctx context.Context, region string) (int, error)
}

// Config of the webhook.
type Config struct {
	// PlayersPerRoom is the players of one match (2 for 1v1).
	PlayersPerRoom int
	// RoomsPerServer is a server's rooms (its rooms List's capacity in
	// the Fleet's spec) for a Fleet without agones.RoomsPerServerLabel:
	// the rooms a server counts for when the fleet reports no rooms
	// List, and the most when it does.
	RoomsPerServer int
	// Buffer is the Ready servers kept beyond the demand.
	Buffer int
	// MinReplicas and MaxReplicas bound the answer.
	MinReplicas, MaxReplicas int32
	// RegionLabel is the fleet label naming its region; fleets without it
	// are in DefaultRegion.
	RegionLabel   string
	DefaultRegion string
}

// defaults are the one statement of the defaults: New and Desired fill a
// zero field from them (but Buffer and MinReplicas, where zero is a
// choice), and RegisterFlags shows them as the flags' defaults.
var defaults = Config{
	PlayersPerRoom: 2,  // 1v1
	RoomsPerServer: 10, // a guess: the chart sets it, and labels its Fleets
	Buffer:         1,  // one Ready server for the next match's burst
	MaxReplicas:    1000,
	RegionLabel:    agones.RegionLabel, // the chart labels each Fleet with it
	DefaultRegion:  "eu",               // where a Fleet without the label is
}

func (c *Config) setDefaults() {
	envflag.OrDefault(&c.PlayersPerRoom, defaults.PlayersPerRoom)
	envflag.OrDefault(&c.RoomsPerServer, defaults.RoomsPerServer)
	envflag.OrDefault(&c.MaxReplicas, defaults.MaxReplicas)
	c.RegionLabel = cmp.Or(c.RegionLabel, defaults.RegionLabel)
	c.DefaultRegion = cmp.Or(c.DefaultRegion, defaults.DefaultRegion)
}

// RegisterFlags registers the webhook's flags on fs.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.IntVar(&c.Buffer, "autoscale-buffer", defaults.Buffer, "FleetAutoscaler webhook: Ready servers kept beyond the demand")
	fs.IntVar(&c.PlayersPerRoom, "autoscale-players-per-room", defaults.PlayersPerRoom, "FleetAutoscaler webhook: players of one match")
	fs.IntVar(&c.RoomsPerServer, "autoscale-rooms-per-server", defaults.RoomsPerServer, "FleetAutoscaler webhook: rooms per server (the rooms List capacity of the Fleet's spec) of a Fleet without the "+agones.RoomsPerServerLabel+" label: used when the fleet has no rooms List, and the most a server counts for when it has (its SDK may raise the capacity)")
	fs.StringVar(&c.RegionLabel, "autoscale-region-label", defaults.RegionLabel, "FleetAutoscaler webhook: the Fleet label naming its region, whose waiting tickets size it")
	fs.StringVar(&c.DefaultRegion, "autoscale-default-region", defaults.DefaultRegion, "FleetAutoscaler webhook: the region of a Fleet without the region label")
}

// Desired is the replica count for a fleet with status st, whose
// servers host at most spec rooms each (0: Config.RoomsPerServer), when
// waiting players wait in its region.
func (c Config) Desired(st agones.FleetStatus, spec, waiting int) int32 {
	c.setDefaults()
	most := int64(cmp.Or(spec, c.RoomsPerServer))
	perServer := most
	freeOnAllocated := int64(0)
	if rooms, ok := st.Lists[agones.ListRooms]; ok {
		capacity := min(rooms.AllocatedCapacity, int64(st.AllocatedReplicas)*most)
		freeOnAllocated = max(0, capacity-rooms.AllocatedCount)
		if st.Replicas > 0 && rooms.Capacity > 0 {
			perServer = min(max(1, rooms.Capacity/int64(st.Replicas)), most)
		}
	}
	needed := (int64(waiting) + int64(c.PlayersPerRoom) - 1) / int64(c.PlayersPerRoom)
	short := max(0, needed-freeOnAllocated)
	ready := (short+perServer-1)/perServer + int64(c.Buffer)
	want := int64(st.AllocatedReplicas) + int64(st.ReservedReplicas) + ready
	return int32(min(max(want, int64(c.MinReplicas)), int64(c.MaxReplicas)))
}

// Handler serves the webhook.
type Handler struct {
	cfg    Config
	demand Demand
	log    *slog.Logger
}

// New returns the webhook handler.
func New(cfg Config, demand Demand, log *slog.Logger) *Handler {
	cfg.setDefaults()
	return &Handler{cfg: cfg, demand: demand, log: log}
}

// ServeHTTP answers one FleetAutoscaleReview.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST a FleetAutoscaleReview", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
		return
	}
	// Lenient on purpose: Agones adds status fields between versions (and
	// behind feature flags); a webhook that refused them would stop
	// autoscaling after an Agones upgrade. Only what we use is required.
	var review agones.FleetAutoscaleReview
	if err := json.Unmarshal(body, &review); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid fleet autoscale review: " + err.Error()})
		return
	}
	if review.Request == nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid fleet autoscale review: request: required"})
		return
	}
	req := review.Request
	region := req.FleetLabels()[h.cfg.RegionLabel]
	if region == "" {
		// Said every sync: a fleet sized from another region's demand is
		// a misconfiguration (a game cluster with another region label,
		// or Agones' FleetAutoscaleRequestMetaData gate off), not a choice.
		region = h.cfg.DefaultRegion
		h.log.Warn("autoscale: fleet has no region label; sized from the default region", "fleet", req.Name,
			"label", h.cfg.RegionLabel, "default_region", region)
	}
	waiting, err := h.demand.Waiting(r.Context(), region)
	if err != nil {
		// Without a demand figure, keep the fleet as it is rather than
		// scale on a guess; Agones asks again next sync.
		h.log.Warn("autoscale: demand unknown; fleet left as it is", "fleet", req.Name, "region", region, "err", err)
		waiting = -1
	}
	resp := &agones.FleetAutoscaleResponse{UID: req.UID, Replicas: req.Status.Replicas}
	if waiting >= 0 {
		resp.Replicas = h.cfg.Desired(req.Status, h.roomsPerServer(req), waiting)
		resp.Scale = resp.Replicas != req.Status.Replicas
	}
	h.log.Info("autoscale", "fleet", req.Name, "region", region, "waiting_players", waiting,
		"replicas", req.Status.Replicas, "allocated", req.Status.AllocatedReplicas, "desired", resp.Replicas)
	review.Response = resp
	if review.APIVersion == "" {
		review.APIVersion, review.Kind = "autoscaling.agones.dev/v1", "FleetAutoscaleReview"
	}
	writeJSON(w, http.StatusOK, review)
}

// roomsPerServer is the rooms a server of req's Fleet hosts, as its
// agones.RoomsPerServerLabel says (written by whoever deploys the Fleet,
// never by a game server); 0 (Config.RoomsPerServer) without one that
// reads as a count a List may hold, which is said. A Fleet without the
// label whose servers say they hold more than Config.RoomsPerServer is
// said too: it is sized as if they held no more.
func (h *Handler) roomsPerServer(req *agones.FleetAutoscaleRequest) int {
	v, ok := req.FleetLabels()[agones.RoomsPerServerLabel]
	if !ok {
		if rooms, ok := req.Status.Lists[agones.ListRooms]; ok && req.Status.Replicas > 0 && rooms.Capacity/int64(req.Status.Replicas) > int64(h.cfg.RoomsPerServer) {
			h.log.Warn("autoscale: fleet's servers say they hold more rooms than -autoscale-rooms-per-server, and it has no rooms-per-server label; sized for no more",
				"fleet", req.Name, "label", agones.RoomsPerServerLabel, "rooms_per_server", h.cfg.RoomsPerServer, "rooms", rooms.Capacity, "replicas", req.Status.Replicas)
		}
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 || n > agones.MaxListCapacity {
		h.log.Warn("autoscale: fleet's rooms-per-server label is no count a List may hold; -autoscale-rooms-per-server used", "fleet", req.Name,
			"label", agones.RoomsPerServerLabel, "value", v)
		return 0
	}
	return n
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// StreamDemand counts the tickets of a region still waiting in JetStream:
// those of its shards and the visitors offered to them.
type StreamDemand struct {
	JS   jetstream.JetStream
	Subj events.Subjects
}

// Waiting sums the messages on the region's ticket and offer subjects.
func (d StreamDemand) Waiting(ctx context.Context, region string) (int, error) {
	total := 0
	for _, q := range []struct{ stream, filter string }{
		{d.Subj.OffersStream(), d.Subj.Offer(region, "*")},
		{d.Subj.TicketsStream(), d.Subj.Ticket(region, "*")},
	} {
		st, err := d.JS.Stream(ctx, q.stream)
		if err != nil {
			return 0, fmt.Errorf("demand: %w", err)
		}
		info, err := st.Info(ctx, jetstream.WithSubjectFilter(q.filter))
		if err != nil {
			return 0, fmt.Errorf("demand: %s: %w", q.filter, err)
		}
		for _, n := range info.State.Subjects {
			total += int(n)
		}
	}
	return total, nil
}
