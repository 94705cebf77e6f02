package matchfn

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

const goodRequest = `{"schema_version":1,"mode":{"name":"2v2","teams":2,"team_size":2},"region":"eu","tier":"gold",
 "candidates":[
  {"ticket_id":"t1","players":["alice"],"skill":1650,"waited_ms":1200,"attributes":{"strings":{"platform":"pc"}},"latencies_ms":{"us":90}},
  {"ticket_id":"t2","players":["bob","carol"],"skill":1700,"waited_ms":800}]}`

func TestDecodeRequest(t *testing.T) {
	t.Parallel()
	r, err := DecodeRequest([]byte(goodRequest))
	if err != nil {
		t.Fatal(err)
	}
	if r.Mode != (Mode{Name: "2v2", Teams: 2, TeamSize: 2}) || len(r.Candidates) != 2 || r.Candidates[1].Players[1] != "carol" ||
		r.Candidates[0].Attributes.Strings["platform"] != "pc" || r.Candidates[0].LatenciesMS["us"] != 90 || r.Candidates[0].WaitedMS != 1200 {
		t.Fatalf("request = %+v", r)
	}
	if r, err := DecodeRequest([]byte(`{"mode":{"name":"1v1","teams":2,"team_size":1},"region":"eu","tier":"gold","candidates":[]}`)); err != nil || r.SchemaVersion != 1 {
		t.Fatalf("no schema_version: %+v, %v", r, err)
	}
	cand := func(c string) string {
		return `{"mode":{"name":"1v1","teams":2,"team_size":1},"region":"eu","tier":"gold","candidates":[` + c + `]}`
	}
	many := strings.Repeat(`{"ticket_id":"t","players":["p"],"skill":1,"waited_ms":0},`, MaxCandidates+1)
	for _, tc := range []struct {
		name, data, field, reason string
	}{
		{"unknown field", `{"mode":{"name":"1v1","teams":2,"team_size":1},"region":"eu","tier":"gold","candidates":[],"extra":1}`, "extra", "unknown field"},
		{"unknown candidate field", cand(`{"ticket_id":"t1","players":["a"],"skill":1,"waited_ms":0,"x":1}`), "x", "unknown field"},
		{"version", `{"schema_version":2,"mode":{"name":"1v1","teams":2,"team_size":1},"region":"eu","tier":"gold","candidates":[]}`, "schema_version", "not supported"},
		{"one team", `{"mode":{"name":"1v1","teams":1,"team_size":1},"region":"eu","tier":"gold","candidates":[]}`, "mode", "not a match"},
		{"too many players", `{"mode":{"name":"big","teams":11,"team_size":10},"region":"eu","tier":"gold","candidates":[]}`, "mode", "not a match"},
		{"region wildcard", `{"mode":{"name":"1v1","teams":2,"team_size":1},"region":"e*","tier":"gold","candidates":[]}`, "region", "only letters"},
		{"no players", cand(`{"ticket_id":"t1","players":[],"skill":1,"waited_ms":0}`), "candidates[0].players", "required"},
		{"bad player", cand(`{"ticket_id":"t1","players":["a.b"],"skill":1,"waited_ms":0}`), "candidates[0].players[0]", "only letters"},
		{"player twice", cand(`{"ticket_id":"t1","players":["a","a"],"skill":1,"waited_ms":0}`), "candidates[0].players[1]", "twice"},
		{"skill", cand(`{"ticket_id":"t1","players":["a"],"skill":10001,"waited_ms":0}`), "candidates[0].skill", "out of range"},
		{"waited", cand(`{"ticket_id":"t1","players":["a"],"skill":1,"waited_ms":-1}`), "candidates[0].waited_ms", "negative"},
		{"no ticket id", cand(`{"players":["a"],"skill":1,"waited_ms":0}`), "candidates[0].ticket_id", "required"},
		{"ticket twice", cand(`{"ticket_id":"t1","players":["a"],"skill":1,"waited_ms":0},{"ticket_id":"t1","players":["b"],"skill":1,"waited_ms":0}`), "candidates[1].ticket_id", "twice"},
		{"attribute", cand(`{"ticket_id":"t1","players":["a"],"skill":1,"waited_ms":0,"attributes":{"tags":["x","x"]}}`), "candidates[0].attributes.tags[1]", "twice"},
		{"latency", cand(`{"ticket_id":"t1","players":["a"],"skill":1,"waited_ms":0,"latencies_ms":{"us":-5}}`), "candidates[0].latencies_ms.us", "out of range"},
		{"too many candidates", cand(strings.TrimSuffix(many, ",")), "candidates", "at most"},
		{"wrong type", cand(`{"ticket_id":"t1","players":"a","skill":1,"waited_ms":0}`), "candidates.players", "must be"},
		{"trailing data", `{"mode":{"name":"1v1","teams":2,"team_size":1},"region":"eu","tier":"gold","candidates":[]} {}`, "", "after the JSON object"},
		{"not json", `garbage`, "", "not a JSON object"},
		{"too large", `{"region":"` + strings.Repeat("x", MaxMessageBytes) + `"}`, "", "at most"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := DecodeRequest([]byte(tc.data))
			wantField(t, err, tc.field, tc.reason)
		})
	}
}

func TestDecodeReply(t *testing.T) {
	t.Parallel()
	r, err := DecodeReply([]byte(`{"schema_version":1,"matches":[{"teams":[["t1","t3"],["t2"]]}]}`))
	if err != nil || len(r.Matches) != 1 || r.Matches[0].String() != "t1,t3 | t2" {
		t.Fatalf("reply = %+v, %v", r, err)
	}
	if r, err := DecodeReply([]byte(`{"matches":[]}`)); err != nil || r.SchemaVersion != 1 {
		t.Fatalf("no schema_version: %+v, %v", r, err)
	}
	hundredOne := "[" + strings.TrimSuffix(strings.Repeat(`["t"],`, 101), ",") + "]"
	for _, tc := range []struct {
		name, data, field, reason string
	}{
		{"unknown field", `{"matches":[],"score":1}`, "score", "unknown field"},
		{"unknown proposal field", `{"matches":[{"teams":[],"score":1}]}`, "score", "unknown field"},
		{"version", `{"schema_version":3,"matches":[]}`, "schema_version", "not supported"},
		{"wildcard id", `{"matches":[{"teams":[["t1"],["*"]]}]}`, "matches[0].teams[1][0]", "only letters"},
		{"empty id", `{"matches":[{"teams":[["t1"],[""]]}]}`, "matches[0].teams[1][0]", "empty"},
		{"too many teams", `{"matches":[{"teams":` + hundredOne + `}]}`, "matches[0].teams", "at most"},
		{"wrong type", `{"matches":[{"teams":"t1"}]}`, "matches.teams", "must be"},
		{"garbage", `}{`, "", "not a JSON object"},
		{"truncated", `{"matches":[`, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := DecodeReply([]byte(tc.data))
			wantField(t, err, tc.field, tc.reason)
		})
	}
}

// wantField fails unless err is a validation error naming field with a
// reason containing reason.
func wantField(t *testing.T, err error, field, reason string) {
	t.Helper()
	var ve *events.ValidationError
	if !errors.As(err, &ve) || !errors.Is(err, events.ErrInvalid) {
		t.Fatalf("err = %v, want a validation error", err)
	}
	for _, f := range ve.Fields {
		if f.Field == field && strings.Contains(f.Reason, reason) {
			return
		}
	}
	t.Fatalf("err = %v, want %s: ...%s...", err, field, reason)
}

func TestCheckReply(t *testing.T) {
	t.Parallel()
	req := &Request{Mode: Mode{Name: "2v2", Teams: 2, TeamSize: 2}, Candidates: []Candidate{
		{TicketID: "a", Players: []string{"pa"}}, {TicketID: "b", Players: []string{"pb"}},
		{TicketID: "c", Players: []string{"pc"}}, {TicketID: "d", Players: []string{"pd"}},
		{TicketID: "duo", Players: []string{"px", "py"}}, {TicketID: "e", Players: []string{"pe"}},
		{TicketID: "a2", Players: []string{"pa"}}, // pa's visitor copy beside a newer ticket
		{TicketID: "trio", Players: []string{"p1", "p2", "p3"}},
	}}
	for _, tc := range []struct {
		name  string
		teams [][][]string // proposals
		want  []Reason     // "" for good
	}{
		{"good", [][][]string{{{"a", "b"}, {"c", "d"}}}, []Reason{""}},
		{"party on one team", [][][]string{{{"duo"}, {"a", "b"}}}, []Reason{""}},
		{"two good", [][][]string{{{"a", "b"}, {"c", "d"}}, {{"duo"}, {"e", "a2"}}}, []Reason{"", ""}},
		{"unknown ticket", [][][]string{{{"a", "zz"}, {"c", "d"}}}, []Reason{ReasonUnknownTicket}},
		{"ticket twice in a proposal", [][][]string{{{"a", "a"}, {"c", "d"}}}, []Reason{ReasonTicketTwice}},
		{"ticket twice across teams", [][][]string{{{"a", "b"}, {"a", "d"}}}, []Reason{ReasonTicketTwice}},
		{"ticket twice across proposals: both refused, others stand", [][][]string{
			{{"a", "b"}, {"c", "d"}}, {{"duo"}, {"e", "a2"}}, {{"c", "d"}, {"a", "b"}},
		}, []Reason{ReasonTicketTwice, "", ReasonTicketTwice}},
		{"three teams", [][][]string{{{"a", "b"}, {"c", "d"}, {}}}, []Reason{ReasonTeams}},
		{"one team", [][][]string{{{"a", "b", "c", "d"}}}, []Reason{ReasonTeams}},
		{"no teams", [][][]string{{}}, []Reason{ReasonTeams}},
		{"team too big", [][][]string{{{"a", "b", "e"}, {"c", "d"}}}, []Reason{ReasonTeamSize}},
		{"party makes a team too big", [][][]string{{{"trio"}, {"c", "d"}}}, []Reason{ReasonTeamSize}},
		{"team too small", [][][]string{{{"a"}, {"c", "d"}}}, []Reason{ReasonTeamSize}},
		{"empty team", [][][]string{{{"a", "b"}, {}}}, []Reason{ReasonTeamSize}},
		{"player twice", [][][]string{{{"a", "b"}, {"a2", "d"}}}, []Reason{ReasonPlayerTwice}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rep := &Reply{}
			for _, p := range tc.teams {
				rep.Matches = append(rep.Matches, Proposal{Teams: p})
			}
			errs := CheckReply(req, rep)
			if len(errs) != len(tc.want) {
				t.Fatalf("%d verdicts for %d proposals", len(errs), len(tc.want))
			}
			for i, err := range errs {
				var pe *ProposalError
				switch {
				case tc.want[i] == "" && err != nil:
					t.Errorf("proposal %d: %v, want good", i, err)
				case tc.want[i] != "" && (!errors.As(err, &pe) || pe.Reason != tc.want[i]):
					t.Errorf("proposal %d: %v, want %s", i, err, tc.want[i])
				}
			}
		})
	}
}

func TestEncodeFittingLeavesOutTheYoungest(t *testing.T) {
	t.Parallel()
	req := &Request{SchemaVersion: 1, Mode: Mode{Name: "1v1", Teams: 2, TeamSize: 1}, Region: "eu", Tier: "gold"}
	for i := range 1000 {
		req.Candidates = append(req.Candidates, Candidate{TicketID: fmt.Sprintf("t%04d", i), Players: []string{fmt.Sprintf("p%04d", i)}, Skill: i})
	}
	data, err := encodeFitting(req, 8000)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) > 8000 || len(req.Candidates) == 0 || len(req.Candidates) >= 1000 || req.Candidates[0].TicketID != "t0000" {
		t.Fatalf("%d bytes, %d candidates", len(data), len(req.Candidates))
	}
	var back Request
	if err := json.Unmarshal(data, &back); err != nil || len(back.Candidates) != len(req.Candidates) {
		t.Fatalf("encoded %d candidates, req says %d: %v", len(back.Candidates), len(req.Candidates), err)
	}
	if _, err := encodeFitting(&Request{Candidates: []Candidate{{TicketID: "t"}}}, 10); err == nil {
		t.Fatal("a request that cannot fit was encoded")
	}
}

func TestSubject(t *testing.T) {
	t.Parallel()
	if got := (events.Subjects{}).MatchFunction("mmf"); got != "matchfunctions.mmf" {
		t.Errorf("subject = %q", got)
	}
	if got := (events.Subjects{Prefix: "dev"}).MatchFunction("mmf"); got != "dev.matchfunctions.mmf" {
		t.Errorf("prefixed subject = %q", got)
	}
}

func FuzzDecodeRequest(f *testing.F) {
	f.Add([]byte(goodRequest))
	f.Add([]byte(`{"candidates":[{"players":["a"],"attributes":{"sets":{"m":["x"]}}}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeRequest(data)
		if err != nil {
			return
		}
		again, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := DecodeRequest(again); err != nil {
			t.Fatalf("a decoded request does not decode again: %v\n%s", err, again)
		}
	})
}

func FuzzDecodeReply(f *testing.F) {
	f.Add([]byte(`{"schema_version":1,"matches":[{"teams":[["t1","t3"],["t2"]]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeReply(data)
		if err != nil {
			return
		}
		req := &Request{Mode: Mode{Teams: 2, TeamSize: 1}, Candidates: []Candidate{{TicketID: "t1", Players: []string{"a"}}}}
		if errs := CheckReply(req, &r); len(errs) != len(r.Matches) {
			t.Fatalf("%d verdicts for %d proposals", len(errs), len(r.Matches))
		}
	})
}

// BenchmarkEncodeFitting: a call of the most candidates a mode may ask
// for (MaxFunctionCandidates), each with sixteen 64-byte strings, of
// which about 700 fit a message.
func BenchmarkEncodeFitting(b *testing.B) {
	attrs := &events.Attributes{Strings: map[string]string{}}
	for i := range 16 {
		attrs.Strings[fmt.Sprintf("attribute%02d", i)] = strings.Repeat("v", 64)
	}
	all := make([]Candidate, 10000)
	for i := range all {
		all[i] = Candidate{TicketID: fmt.Sprintf("t%05d", i), Players: []string{fmt.Sprintf("p%05d", i)}, Skill: i, Attributes: attrs}
	}
	for b.Loop() {
		req := &Request{SchemaVersion: 1, Mode: Mode{Name: "1v1", Teams: 2, TeamSize: 1}, Region: "eu", Tier: "gold", Candidates: slices.Clone(all)}
		if _, err := encodeFitting(req, MaxMessageBytes); err != nil {
			b.Fatal(err)
		}
	}
}
