package client_test

import (
	"context"
	"errors"
	"log"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/client"
	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/ticketapi"
)

// A player queues, waits for the outcome and joins its game; a refusal
// says whether to come back later and when.
func ExampleClient_Follow() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, err := client.New(client.Config{
		BaseURL: "http://127.0.0.1:3000",
		Token: func(ctx context.Context, refused string) (string, error) {
			return "the player's token from the studio's identity provider", nil
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	skill := 1650
	t, err := c.Create(ctx, ticketapi.Request{Mode: "1v1", Skill: &skill, Region: "eu"}, client.IdempotencyKey("match-request-1"))
	var refused *client.Error
	switch {
	case errors.Is(err, client.ErrDrained), errors.Is(err, client.ErrOverloaded), errors.Is(err, client.ErrRegionFull):
		errors.As(err, &refused)
		log.Printf("try again in %s: %s (try region %q)", refused.RetryAfter, refused.Body.Error, refused.Body.SuggestRegion)
		return
	case err != nil:
		log.Fatal(err)
	}
	outcome, err := c.Follow(ctx, t.TicketID, func(v ticketapi.View) {
		log.Printf("%s, expected wait %d ms", v.Status, v.ExpectedWaitMS)
	})
	if err != nil {
		log.Fatal(err)
	}
	if outcome.Status == events.StatusAssigned {
		log.Printf("play at %s", outcome.Assignment.URL)
	}
}
