package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// reuser is the part of the load that reuses player ids: beside the load
// tool's one-ticket players, it queues players who ask twice, in two
// regions, over HTTP and over NATS, the second ticket right after the
// first was acknowledged. The checker then holds the system to one live
// ticket per player and no player twice in one match.
//
// Each episode is one new player and two tickets:
//   - HTTP in one region, then HTTP in another (through the other frontend);
//   - NATS in one region, then HTTP in another;
//   - HTTP in one region, then NATS in another.
type reuser struct {
	run     string
	fronts  []string
	js      jetstream.JetStream
	token   func(player string) (string, error)
	regions []string
	rng     *mrand.Rand
	hc      *http.Client

	mu    sync.Mutex
	acked []Acked
	// failed are its POSTs that created no ticket it knows of, as the
	// load tool's record has its own (noshow.go traces both).
	failed []FailedPost
	errs   map[string]int
}

// reuserTimeout bounds a reuser's request: the TypeScript client's
// default (requestTimeoutMs). A creation under a cut may take seconds
// (its writes tried again, then its withdrawal), and a client that hangs
// up first ends those tries, its ticket withdrawn or left a no-show.
const reuserTimeout = 30 * time.Second

func newReuser(run string, fronts []string, js jetstream.JetStream, token func(string) (string, error), seed uint64) *reuser {
	return &reuser{
		run: run, fronts: fronts, js: js, token: token, regions: []string{"eu", "us", "asia"},
		rng: mrand.New(mrand.NewPCG(seed, 0x2e05e)), hc: &http.Client{Timeout: reuserTimeout},
		errs: map[string]int{},
	}
}

// drive runs an episode every period until the context ends or until.
func (u *reuser) drive(ctx context.Context, period time.Duration, until time.Time) {
	t := time.NewTicker(period)
	defer t.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if time.Now().After(until) {
			return
		}
		u.episode(ctx, n)
	}
}

func (u *reuser) episode(ctx context.Context, n int) {
	player := fmt.Sprintf("reuse-%s-%d", u.run, n)
	first := u.regions[u.rng.IntN(len(u.regions))]
	second := u.regions[(u.rng.IntN(len(u.regions)-1)+1+slices.Index(u.regions, first))%len(u.regions)]
	skill := 1600 + u.rng.IntN(400) // the load tool's tier: partners are there
	viaFirst, viaSecond := "http", "http"
	switch n % 3 {
	case 1:
		viaFirst = viaNATS
	case 2:
		viaSecond = viaNATS
	}
	if !u.queue(ctx, player, player+"-1", first, skill, viaFirst, 0) {
		return
	}
	u.queue(ctx, player, player+"-2", second, skill, viaSecond, 1)
}

// queue sends one ticket and records it if it was acknowledged.
func (u *reuser) queue(ctx context.Context, player, ticketID, region string, skill int, via string, front int) bool {
	var err error
	var status int
	var base string
	sent := time.Now()
	switch via {
	case viaNATS:
		err = u.publish(ctx, player, ticketID, region, skill)
	default:
		base = u.fronts[front%len(u.fronts)]
		ticketID, status, err = u.post(ctx, base, player, region, skill)
	}
	if err != nil {
		u.mu.Lock()
		u.errs[via]++
		if via != viaNATS {
			failed := "post_error" // no status: cut off, or timed out
			if status != 0 {
				failed = fmt.Sprintf("post_%d", status)
			}
			u.failed = append(u.failed, FailedPost{PlayerID: player, Frontend: base, SentAt: sent, EndedAt: time.Now(), Failed: failed})
		}
		u.mu.Unlock()
		return false
	}
	u.mu.Lock()
	u.acked = append(u.acked, Acked{TicketID: ticketID, PlayerID: player, Frontend: via, AcceptedAt: time.Now(), Via: via, Region: region, Skill: skill})
	u.mu.Unlock()
	return true
}

// publish sends the ticket on NATS as a careful client does: a publish
// whose ack did not come (NATS slow, or cut off) is sent again with the
// same ticket id, its message id, until reuserTimeout. JetStream's
// duplicate window answers the second publish with the first one's ack,
// so the ticket is queued once and the client learns that it was. One
// given up at the first timeout could be queued all the same, with no
// client that knew of it: a no-show (chaos S49e to S51b: 5 of 13).
func (u *reuser) publish(ctx context.Context, player, ticketID, region string, skill int) error {
	t := events.Ticket{SchemaVersion: events.SchemaVersion, TicketID: ticketID, PlayerID: player, Mode: "1v1", Skill: skill, CreatedAt: time.Now().UTC()}
	tier, _ := events.Tiers(events.DefaultTiers).For(skill)
	ctx, cancel := context.WithTimeout(ctx, reuserTimeout)
	defer cancel()
	pub := events.NewPublisher(u.js, events.Subjects{})
	for wait := publishRetryWait; ; wait = min(2*wait, 8*publishRetryWait) {
		pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := pub.Ticket(pctx, region, tier, t)
		pcancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
	}
}

// publishRetryWait is the first wait before a publish is sent again.
// The tries end within reuserTimeout, well inside JetStream's duplicate
// window (events.DuplicateWindow, 2 minutes), past which a second
// publish would queue a second ticket.
const publishRetryWait = 250 * time.Millisecond

func (u *reuser) post(ctx context.Context, base, player, region string, skill int) (id string, status int, err error) {
	body, _ := json.Marshal(map[string]any{"player_id": player, "skill": skill, "region": region, "mode": "1v1"})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/tickets", bytes.NewReader(body))
	if err != nil {
		return "", 0, err
	}
	if u.token != nil {
		tok, err := u.token(player)
		if err != nil {
			return "", 0, err
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	res, err := u.hc.Do(req)
	if err != nil {
		return "", 0, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusAccepted {
		_, _ = io.Copy(io.Discard, res.Body)
		return "", res.StatusCode, fmt.Errorf("POST: %s", res.Status)
	}
	var view struct {
		TicketID string `json:"ticket_id"`
	}
	if err := json.NewDecoder(res.Body).Decode(&view); err != nil || view.TicketID == "" {
		return "", res.StatusCode, fmt.Errorf("POST answer: %v", err)
	}
	return view.TicketID, res.StatusCode, nil
}

func (u *reuser) result() ([]Acked, []FailedPost, map[string]int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]Acked(nil), u.acked...), append([]FailedPost(nil), u.failed...), u.errs
}

// formedTimes reads when each match that put a player in two matches was
// formed, from the match (matchOf: its record, else its claim of the
// player's ticket).
func formedTimes(ctx context.Context, js jetstream.JetStream, results []events.Result) (map[string]time.Time, error) {
	// byPlayer maps each player's match ids to the player's ticket in it,
	// whose claim carries the match.
	byPlayer := map[string]map[string]string{}
	for _, r := range results {
		if r.Status != events.StatusAssigned || r.MatchID == "" {
			continue
		}
		if byPlayer[r.PlayerID] == nil {
			byPlayer[r.PlayerID] = map[string]string{}
		}
		byPlayer[r.PlayerID][r.MatchID] = r.TicketID
	}
	subj := events.Subjects{}
	records, err := js.KeyValue(ctx, subj.MatchesBucket())
	if err != nil {
		return nil, fmt.Errorf("matches bucket: %w", err)
	}
	claims, err := events.NewClaims(ctx, js, subj)
	if err != nil {
		return nil, err
	}
	out := map[string]time.Time{}
	for _, matches := range byPlayer {
		if len(matches) < 2 {
			continue
		}
		for id, ticket := range matches {
			// No match read (its record aged out, its claims given
			// back): the checker falls back to the first result.
			if m, ok := matchOf(ctx, records, claims, id, ticket); ok && !m.CreatedAt.IsZero() {
				out[id] = m.CreatedAt
			}
		}
	}
	return out, nil
}

// connectJS connects to the cluster for the reuser's NATS tickets and the
// checker's reads.
func connectJS(urls string) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := nats.Connect(urls, nats.MaxReconnects(-1), nats.ReconnectWait(250*time.Millisecond))
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}
