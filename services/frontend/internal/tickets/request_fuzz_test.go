package tickets

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// FuzzRequest: any body POSTed to /v1/tickets is either refused with a
// validation error that names its fields, or becomes a ticket the
// matchers accept (decode and rule set) on the subject of its region and
// tier; nothing panics.
func FuzzRequest(f *testing.F) {
	f.Add(`{"player_id":"alice","mode":"1v1","skill":1650,"region":"eu"}`)
	f.Add(`{"party":["a","b"],"mode":"2v2","skill":100,"region":"us","latencies_ms":{"eu":40,"us":12}}`)
	f.Add(`{"player_id":"","skill":-1,"region":"mars","mode":"9v9"}`)
	f.Add(`{"player_id":"x","skill":1e309,"region":"eu"}`)
	f.Add(`{"player_id":"x","skill":1,"region":"eu","unknown":true}`)
	f.Add(`{"player_id":"x"} trailing`)
	f.Add(`[]`)
	f.Add(`{"player_id":"x","skill":1,"region":"eu","attributes":{"strings":{"platform":"pc"},"sets":{"maps":["dust"]},"numbers":{"level":3},"tags":["newbie"]}}`)
	f.Add(`{"player_id":"x","skill":1,"region":"eu","attributes":{"numbers":{"platform":1e308},"tags":["vip","vip"]}}`)
	s := testService(f, testRuleSet)
	subj := events.Subjects{}
	f.Fuzz(func(t *testing.T, body string) {
		var req Request
		if err := events.DecodeStrict("request", []byte(body), &req); err != nil {
			var ve *events.ValidationError
			if !errors.As(err, &ve) || len(ve.Fields) == 0 {
				t.Fatalf("decode error that names no field: %v", err)
			}
			return
		}
		ticket, shard, err := s.build(s.RuleSet(), req)
		region, tier := shard.Region, shard.Tier
		if err != nil {
			var ve *events.ValidationError
			if !errors.As(err, &ve) || len(ve.Fields) == 0 || ve.Fields[0].Field == "" {
				t.Fatalf("refusal that names no field: %v", err)
			}
			return
		}
		// What is published decodes as the matchers decode it, and passes
		// the rule set's check they make.
		data, err := json.Marshal(ticket)
		if err != nil {
			t.Fatal(err)
		}
		back, err := events.DecodeTicket(data)
		if err != nil {
			t.Fatalf("built a ticket the matchers cannot decode %s: %v", data, err)
		}
		if err := s.cfg.Rules.Get().Check(&back, s.cfg.Regions); err != nil {
			t.Fatalf("built a ticket the rule set refuses %s: %v", data, err)
		}
		r, tr, err := subj.ParseTicket(subj.Ticket(region, tier))
		if err != nil || r != region || tr != tier || strings.ContainsAny(region+tier, ".*> ") {
			t.Fatalf("ticket subject for %q/%q: %v", region, tier, err)
		}
	})
}
