package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Acked is one ticket a frontend acknowledged (202), as -record writes it.
type Acked struct {
	TicketID   string    `json:"ticket_id"`
	PlayerID   string    `json:"player_id"`
	Frontend   string    `json:"frontend"`
	AcceptedAt time.Time `json:"accepted_at"`
	// Region and Skill let a checker tell which tickets could have been
	// partners.
	Region string `json:"region,omitempty"`
	Skill  int    `json:"skill,omitempty"`
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
	rec.add(Acked{TicketID: view.TicketID, PlayerID: player, Frontend: base, AcceptedAt: *accepted, Region: region, Skill: skill})
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
