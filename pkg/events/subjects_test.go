package events

import (
	"strings"
	"testing"
)

func TestSubjects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		got  string
		want string
	}{
		{"ticket", Subjects{}.Ticket("eu", "gold"), "matchmaking.eu.gold"},
		{"all tickets", Subjects{}.AllTickets(), "matchmaking.>"},
		{"result", Subjects{}.Result("alice"), "results.alice"},
		{"allocation", Subjects{}.Allocation("us"), "allocations.us"},
		{"backfill", Subjects{}.Backfill("eu", "gold"), "backfills.eu.gold"},
		{"all backfills", Subjects{}.AllBackfills(), "backfills.>"},
		{"backfills stream", Subjects{Prefix: "dev"}.BackfillsStream(), "DEV_BACKFILLS"},
		{"dead letter", Subjects{}.DeadLetter("matcher"), "deadletter.matcher"},
		{"prefixed ticket", Subjects{Prefix: "staging"}.Ticket("eu", "gold"), "staging.matchmaking.eu.gold"},
		{"prefixed result", Subjects{Prefix: "a.b"}.Result("p1"), "a.b.results.p1"},
		{"stream", Subjects{}.TicketsStream(), "TICKETS"},
		{"prefixed stream", Subjects{Prefix: "team-a.dev"}.TicketsStream(), "TEAM_A_DEV_TICKETS"},
		{"prefixed bucket", Subjects{Prefix: "dev"}.TicketsBucket(), "DEV_tickets"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, tt.got, tt.want)
		}
	}
}

func TestParseTicket(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, prefix, subject, region, tier, err string
	}{
		{name: "plain", subject: "matchmaking.eu.gold", region: "eu", tier: "gold"},
		{name: "prefixed", prefix: "dev", subject: "dev.matchmaking.us.silver", region: "us", tier: "silver"},
		{name: "other prefix", prefix: "dev", subject: "matchmaking.us.silver", err: "not a ticket subject"},
		{name: "too short", subject: "matchmaking.eu", err: "want"},
		{name: "too long", subject: "matchmaking.eu.gold.x", err: "want"},
		{name: "empty region", subject: "matchmaking..gold", err: "region: empty"},
		{name: "wildcard tier", subject: "matchmaking.eu.*", err: "tier"},
		{name: "results", subject: "results.alice", err: "not a ticket subject"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			region, tier, err := Subjects{Prefix: tt.prefix}.ParseTicket(tt.subject)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil || region != tt.region || tier != tt.tier {
				t.Fatalf("got %q %q %v, want %q %q", region, tier, err, tt.region, tt.tier)
			}
		})
	}
}

func TestValidatePrefix(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"", "dev", "team-a.dev"} {
		if err := ValidatePrefix(ok); err != nil {
			t.Errorf("ValidatePrefix(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"a..b", "*", "dev.>", "a b", ".dev"} {
		if err := ValidatePrefix(bad); err == nil {
			t.Errorf("ValidatePrefix(%q) = nil, want an error", bad)
		}
	}
}

func FuzzParseTicket(f *testing.F) {
	for _, s := range []string{"matchmaking.eu.gold", "matchmaking..", "matchmaking.eu.gold.x", "results.a", "matchmaking.*.>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, subject string) {
		region, tier, err := Subjects{}.ParseTicket(subject)
		if err != nil {
			return
		}
		if back := (Subjects{}).Ticket(region, tier); back != subject {
			t.Fatalf("ParseTicket(%q) = %q %q, which builds %q", subject, region, tier, back)
		}
	})
}

func TestCoveringFilter(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"matchmaking.eu.gold":        "matchmaking.eu.gold",
		"matchmaking.*.gold":         "matchmaking.*.gold",
		"matchmaking.>":              "matchmaking.>",
		"matchmaking.eu.>":           "matchmaking.eu.>",
		"matchmaking.>.gold":         "matchmaking.>",
		"matchmaking.e$u.gold.x":     "matchmaking.*.gold.x",
		"matchmaking..gold":          "matchmaking.*.gold",
		"staging.matchmaking.a*.>.x": "staging.matchmaking.*.>",
	} {
		if got := CoveringFilter(in); got != want {
			t.Errorf("CoveringFilter(%q) = %q, want %q", in, got, want)
		}
	}
}
