package tickets

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// A record keeps the stored shape it always had (region and tier as fields
// of their own), so frontends of two versions read each other's records.
func TestRecordStoredShape(t *testing.T) {
	t.Parallel()
	rec := Record{Ticket: events.Ticket{TicketID: "t1", PlayerID: "p1", Mode: "1v1"}, Shard: events.Shard{Region: "eu", Tier: "gold"}, RequestHash: "h"}
	data, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"ticket":{`, `"region":"eu"`, `"tier":"gold"`, `"request_hash":"h"`} {
		if !strings.Contains(string(data), want) {
			t.Errorf("stored record %s lacks %s", data, want)
		}
	}
	var back Record
	if err := json.Unmarshal([]byte(`{"ticket":{"ticket_id":"t1","player_id":"p1","mode":"1v1"},"region":"eu","tier":"gold","request_hash":"h"}`), &back); err != nil {
		t.Fatal(err)
	}
	if back.Ticket.TicketID != "t1" || back.Shard != rec.Shard || back.RequestHash != "h" {
		t.Fatalf("decoded %+v, want %+v", back, rec)
	}
}
