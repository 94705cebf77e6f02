// Package loadrecord is the record the load tool writes (`load run
// -record`) and a checker reads (dev/chaos): one JSON line per POST, an
// Acked for each ticket a frontend acknowledged, and a FailedPost for
// each POST that created none its client knows of.
package loadrecord

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"time"
)

// Acked is a ticket a frontend acknowledged to the load tool: the
// client's side of the history.
type Acked struct {
	TicketID   string    `json:"ticket_id"`
	PlayerID   string    `json:"player_id"`
	Frontend   string    `json:"frontend"`
	AcceptedAt time.Time `json:"accepted_at"`
	// Via is how the ticket arrived: "http" (a frontend's 202; the
	// default) or "nats" (JetStream's publish ack, no frontend).
	Via string `json:"via,omitempty"`
	// Region and Skill are what the ticket asked for: a checker tells
	// from them which tickets could have been partners.
	Region string `json:"region,omitempty"`
	Skill  int    `json:"skill,omitempty"`
}

// FailedPost is a POST that created no ticket its client knows of:
// refused with a status, or answered nothing (its connection failed, or
// it timed out). A ticket it queued all the same has no client, unless a
// later attempt with the same Idempotency-Key got it as its answer (an
// Acked line then names it): a checker that finds one assigned and never
// acknowledged (a no-show) traces it to its player's failed POST by its
// created_at, and tells a frontend that died answering from one that
// answered an error.
type FailedPost struct {
	PlayerID string    `json:"player_id"`
	Frontend string    `json:"frontend"`
	SentAt   time.Time `json:"sent_at"`
	EndedAt  time.Time `json:"ended_at"`
	// Failed is the load tool's kind of failure: post_503, post_error, ...
	Failed string `json:"failed"`
}

// Read reads a record's two kinds of line.
func Read(path string) ([]Acked, []FailedPost, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("load record: %w", err)
	}
	defer f.Close()
	var acked []Acked
	var failed []FailedPost
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var fp FailedPost
		if err := json.Unmarshal(sc.Bytes(), &fp); err != nil {
			return nil, nil, fmt.Errorf("load record: %w", err)
		}
		if fp.Failed != "" {
			failed = append(failed, fp)
			continue
		}
		var a Acked
		if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
			return nil, nil, fmt.Errorf("load record: %w", err)
		}
		acked = append(acked, a)
	}
	return acked, failed, sc.Err()
}
