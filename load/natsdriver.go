package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// natsDriver queues tickets the way a game backend or `nats pub` does:
// straight onto the shard's JetStream subject, without a frontend, and
// hears the outcome on the player's result subject. One wildcard
// subscription receives every player's results and hands each to the
// client waiting for that player.
type natsDriver struct {
	nc    *nats.Conn
	js    jetstream.JetStream
	subj  events.Subjects
	tiers events.Tiers

	mu      sync.Mutex
	waiting map[string]chan events.Status // by player id
}

func newNATSDriver(url, prefix, user, password string) (*natsDriver, error) {
	opts := []nats.Option{nats.Name("load"), nats.MaxReconnects(-1)}
	if user != "" {
		opts = append(opts, nats.UserInfo(user, password))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", url, err)
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(16384))
	if err != nil {
		nc.Close()
		return nil, err
	}
	d := &natsDriver{nc: nc, js: js, subj: events.Subjects{Prefix: prefix}, tiers: events.DefaultTiers, waiting: map[string]chan events.Status{}}
	sub, err := nc.Subscribe(d.subj.AllResults(), d.onResult)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("subscribe to results: %w", err)
	}
	// Results arrive in bursts of a whole run; none may be dropped.
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		nc.Close()
		return nil, err
	}
	if err := nc.Flush(); err != nil {
		nc.Close()
		return nil, err
	}
	return d, nil
}

func (d *natsDriver) close() { d.nc.Close() }

func (d *natsDriver) onResult(m *nats.Msg) {
	var r struct {
		PlayerID string        `json:"player_id"`
		Status   events.Status `json:"status"`
	}
	if json.Unmarshal(m.Data, &r) != nil {
		return
	}
	d.mu.Lock()
	ch := d.waiting[r.PlayerID]
	d.mu.Unlock()
	if ch != nil {
		select {
		case ch <- r.Status:
		default: // the client has its outcome already
		}
	}
}

// follow publishes one ticket and waits for its outcome, like follow over
// HTTP: accepted is when JetStream stored the ticket.
func (d *natsDriver) follow(ctx context.Context, player, region string, skill int) (accepted time.Time, kind string) {
	ch := make(chan events.Status, 4)
	d.mu.Lock()
	d.waiting[player] = ch
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		delete(d.waiting, player)
		d.mu.Unlock()
	}()
	tier, _ := d.tiers.For(skill)
	t := events.Ticket{SchemaVersion: events.SchemaVersion, TicketID: "t-" + player, PlayerID: player, Mode: "1v1", Skill: skill, CreatedAt: time.Now().UTC()}
	msg, err := events.NewMsg(ctx, d.subj.Ticket(region, tier), t.TicketID, t)
	if err != nil {
		return accepted, "publish_error"
	}
	fut, err := d.js.PublishMsgAsync(msg)
	if err != nil {
		return accepted, "publish_error"
	}
	select {
	case <-fut.Ok():
		accepted = time.Now()
	case err := <-fut.Err():
		return accepted, "publish_" + strings.ReplaceAll(strings.ToLower(err.Error()), " ", "_")
	case <-ctx.Done():
		return accepted, "publish_timeout"
	}
	for {
		select {
		case st := <-ch:
			switch st {
			case events.StatusAssigned:
				return accepted, ""
			case events.StatusQueued, events.StatusMatched:
			default:
				return accepted, string(st)
			}
		case <-ctx.Done():
			return accepted, "timeout"
		}
	}
}
