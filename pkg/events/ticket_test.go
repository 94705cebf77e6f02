package events

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestDecodeTicket(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		// fields are the fields the error must name, in order; nil = valid.
		fields []string
		check  func(t *testing.T, tk Ticket)
	}{
		{name: "minimal by hand", in: `{"player_id":"alice","skill":1650}`, check: func(t *testing.T, tk Ticket) {
			if tk.Mode != DefaultMode || tk.SchemaVersion != SchemaVersion || tk.TicketID != "" {
				t.Errorf("defaults not filled: %+v", tk)
			}
		}},
		{name: "full", in: `{"schema_version":1,"ticket_id":"t-1","party":["a","b"],"mode":"2v2","skill":2100,"latencies_ms":{"eu":20,"us":90},"created_at":"2026-11-21T10:00:00Z"}`,
			check: func(t *testing.T, tk Ticket) {
				if !reflect.DeepEqual(tk.Players(), []string{"a", "b"}) || tk.LatenciesMS["us"] != 90 || tk.CreatedAt.IsZero() {
					t.Errorf("got %+v", tk)
				}
			}},
		{name: "zero skill is a skill", in: `{"player_id":"a","skill":0}`},
		{name: "not json", in: `hello`, fields: []string{""}},
		{name: "array", in: `[1,2]`, fields: []string{""}},
		{name: "truncated", in: `{"player_id":"a"`, fields: []string{""}},
		{name: "trailing data", in: `{"player_id":"a","skill":1}{}`, fields: []string{""}},
		{name: "unknown field", in: `{"player_id":"a","skill":1,"skil":2}`, fields: []string{"skil"}},
		{name: "skill is a string", in: `{"player_id":"a","skill":"high"}`, fields: []string{"skill"}},
		{name: "skill is fractional", in: `{"player_id":"a","skill":1.5}`, fields: []string{"skill"}},
		{name: "missing skill", in: `{"player_id":"a"}`, fields: []string{"skill"}},
		{name: "missing player", in: `{"skill":5}`, fields: []string{"player_id"}},
		{name: "negative skill", in: `{"player_id":"a","skill":-3}`, fields: []string{"skill"}},
		{name: "huge skill", in: `{"player_id":"a","skill":99999}`, fields: []string{"skill"}},
		{name: "player with a dot", in: `{"player_id":"a.b","skill":1}`, fields: []string{"player_id"}},
		{name: "player with a wildcard", in: `{"player_id":">","skill":1}`, fields: []string{"player_id"}},
		{name: "empty player", in: `{"player_id":"","skill":1}`, fields: []string{"player_id"}},
		{name: "player and party", in: `{"player_id":"a","party":["b"],"skill":1}`, fields: []string{"party"}},
		{name: "empty party", in: `{"party":[],"skill":1}`, fields: []string{"party"}},
		{name: "party duplicate", in: `{"party":["a","b","a"],"skill":1}`, fields: []string{"party[2]"}},
		{name: "party too big", in: `{"party":["a","b","c","d","e","f","g","h","i","j","k","l","m","n","o","p","q"],"skill":1}`, fields: []string{"party"}},
		{name: "bad mode", in: `{"player_id":"a","skill":1,"mode":"1 v 1"}`, fields: []string{"mode"}},
		{name: "empty mode", in: `{"player_id":"a","skill":1,"mode":""}`, fields: []string{"mode"}},
		{name: "latency out of range", in: `{"player_id":"a","skill":1,"latencies_ms":{"eu":-5}}`, fields: []string{"latencies_ms.eu"}},
		{name: "latency region bad", in: `{"player_id":"a","skill":1,"latencies_ms":{"e.u":5}}`, fields: []string{"latencies_ms"}},
		{name: "future schema", in: `{"schema_version":2,"player_id":"a","skill":1}`, fields: []string{"schema_version"}},
		{name: "bad ticket id", in: `{"ticket_id":"a b","player_id":"a","skill":1}`, fields: []string{"ticket_id"}},
		{name: "empty ticket id", in: `{"ticket_id":"","player_id":"a","skill":1}`, fields: []string{"ticket_id"}},
		{name: "bad time", in: `{"player_id":"a","skill":1,"created_at":"yesterday"}`, fields: []string{""}},
		{name: "several at once", in: `{"player_id":"a.b","skill":-1,"mode":"*"}`, fields: []string{"player_id", "mode", "skill"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tk, err := DecodeTicket([]byte(tt.in))
			if tt.fields == nil {
				if err != nil {
					t.Fatalf("DecodeTicket: %v", err)
				}
				if tt.check != nil {
					tt.check(t, tk)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want a *ValidationError", err)
			}
			var got []string
			for _, f := range ve.Fields {
				got = append(got, f.Field)
			}
			if !reflect.DeepEqual(got, tt.fields) {
				t.Fatalf("fields = %q, want %q (%v)", got, tt.fields, err)
			}
		})
	}
}

func TestTicketCheckShard(t *testing.T) {
	t.Parallel()
	tk := Ticket{SchemaVersion: 1, PlayerID: "a", Mode: "1v1", Skill: 1650}
	if err := tk.CheckShard("eu", "gold", DefaultRegions, DefaultTiers); err != nil {
		t.Fatalf("gold ticket on gold shard: %v", err)
	}
	if err := tk.CheckShard("eu", "silver", DefaultRegions, DefaultTiers); err == nil || !strings.Contains(err.Error(), `skill: 1650 belongs to tier "gold"`) {
		t.Fatalf("wrong tier: %v", err)
	}
	if err := tk.CheckShard("mars", "gold", DefaultRegions, DefaultTiers); err == nil || !strings.Contains(err.Error(), "unknown region") {
		t.Fatalf("unknown region: %v", err)
	}
	if err := tk.CheckShard("eu", "diamond", DefaultRegions, DefaultTiers); err == nil || !strings.Contains(err.Error(), "unknown tier") {
		t.Fatalf("unknown tier: %v", err)
	}
}

func TestTicketBoundCreated(t *testing.T) {
	t.Parallel()
	stored := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	wait := 5 * time.Minute
	tests := []struct {
		name    string
		created time.Time
		want    time.Time // zero: rejected
	}{
		{"left out", time.Time{}, stored},
		{"a little ahead", stored.Add(30 * time.Second), stored},
		{"too far ahead", stored.Add(MaxClockSkew + time.Second), time.Time{}},
		{"waited a while", stored.Add(-3 * time.Minute), stored.Add(-3 * time.Minute)},
		{"queued again after its max wait", stored.Add(-wait - CreatedAtSlack), stored.Add(-wait - CreatedAtSlack)},
		{"too old", stored.Add(-wait - CreatedAtSlack - time.Second), time.Time{}},
		{"an hour old", stored.Add(-time.Hour), time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tk := Ticket{CreatedAt: tt.created}
			err := tk.BoundCreated(stored, wait)
			switch {
			case tt.want.IsZero() && (err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "created_at")):
				t.Fatalf("want a created_at error, got %v (created_at %s)", err, tk.CreatedAt)
			case !tt.want.IsZero() && err != nil:
				t.Fatal(err)
			case !tt.want.IsZero() && !tk.CreatedAt.Equal(tt.want):
				t.Fatalf("created_at = %s, want %s", tk.CreatedAt, tt.want)
			}
		})
	}
}

func TestDeriveTicketID(t *testing.T) {
	t.Parallel()
	data := []byte(`{"player_id":"a","skill":1}`)
	at := time.Unix(1_800_000_000, 5)
	a := DeriveTicketID("matchmaking.eu.gold", 7, at, data)
	if a != DeriveTicketID("matchmaking.eu.gold", 7, at, data) {
		t.Fatal("not deterministic")
	}
	if a == DeriveTicketID("matchmaking.eu.gold", 8, at, data) {
		t.Fatal("two messages with the same bytes got the same id")
	}
	if a == DeriveTicketID("matchmaking.eu.gold", 7, at.Add(time.Second), data) {
		t.Fatal("a recreated stream repeats ids")
	}
	if err := checkToken(a); err != nil {
		t.Fatalf("derived id %q is not a token: %v", a, err)
	}
}

func TestMatchID(t *testing.T) {
	t.Parallel()
	if MatchID([]string{"a", "b"}) != MatchID([]string{"b", "a"}) {
		t.Fatal("match id depends on ticket order")
	}
	if MatchID([]string{"a", "b"}) == MatchID([]string{"a", "c"}) {
		t.Fatal("different matches share an id")
	}
	if MatchID([]string{"ab", "c"}) == MatchID([]string{"a", "bc"}) {
		t.Fatal("ids are concatenated ambiguously")
	}
	// The same tickets queued again (new messages) make another match.
	if MatchID([]string{MatchKey("a", 1), MatchKey("b", 2)}) == MatchID([]string{MatchKey("a", 7), MatchKey("b", 8)}) {
		t.Fatal("a match of requeued tickets has the id of their first match")
	}
}

func TestDecodeMatchAndResult(t *testing.T) {
	t.Parallel()
	m := Match{SchemaVersion: 1, MatchID: "m1", Mode: "1v1", Region: "eu", Tier: "gold",
		Tickets: []MatchTicket{{TicketID: "t1", Players: []string{"a"}}, {TicketID: "t2", Players: []string{"b"}, Team: 1}}}
	data, _ := json.Marshal(m)
	got, err := DecodeMatch(data)
	if err != nil || !reflect.DeepEqual(got.Players(), []string{"a", "b"}) {
		t.Fatalf("DecodeMatch = %+v, %v", got, err)
	}
	if _, err := DecodeMatch([]byte(`{"schema_version":1,"match_id":"m1","mode":"1v1","region":"eu","tickets":[{"ticket_id":"t","players":["x.y"]}]}`)); err == nil || !strings.Contains(err.Error(), "tickets[0].players[0]") {
		t.Fatalf("bad player in match: %v", err)
	}
	// A field a newer matcher adds is ignored; wrong types, trailing data
	// and missing fields are not.
	plus := strings.Replace(string(data), `{`, `{"priority":3,`, 1)
	if got, err := DecodeMatch([]byte(plus)); err != nil || got.MatchID != "m1" {
		t.Fatalf("match with a newer field: %+v, %v", got, err)
	}
	for bad, want := range map[string]string{
		strings.Replace(string(data), `"mode":"1v1"`, `"mode":7`, 1): "mode",
		string(data) + `{}`: "malformed JSON",
		strings.Replace(string(data), `"match_id":"m1",`, ``, 1): "match_id",
		`[1]`: "not a JSON object",
	} {
		if _, err := DecodeMatch([]byte(bad)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("DecodeMatch(%s) = %v, want an error naming %q", bad, err, want)
		}
	}
	if _, err := DecodeResult([]byte(`{"schema_version":1,"ticket_id":"t","player_id":"a","status":"assigned"}`)); err == nil || !strings.Contains(err.Error(), "assignment") {
		t.Fatalf("assigned without assignment: %v", err)
	}
	if _, err := DecodeResult([]byte(`{"schema_version":1,"ticket_id":"t","player_id":"a","status":"lost"}`)); err == nil || !strings.Contains(err.Error(), "status") {
		t.Fatalf("unknown status: %v", err)
	}
}

func TestNewDeadLetterKeepsBytes(t *testing.T) {
	t.Parallel()
	raw := []byte{0xff, 0xfe, '{'}
	_, verr := DecodeTicket(raw)
	d := NewDeadLetter("matcher", "matchmaking.eu.gold", 3, raw, verr, time.Now())
	data, _ := json.Marshal(d)
	var back DeadLetter
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if string(back.Payload) != string(raw) || back.Text != "" || len(back.Fields) != 1 {
		t.Fatalf("dead letter lost data: %+v", back)
	}
}

// TestNewDeadLetterCutsOversizedPayload: a message near the server's max
// payload must still make a dead letter that fits the dead-letter stream.
func TestNewDeadLetterCutsOversizedPayload(t *testing.T) {
	t.Parallel()
	raw := []byte(`{"player_id":"a","skill":1,"pad":"` + strings.Repeat("x", 1<<20) + `"}`)
	_, verr := DecodeTicket(raw)
	if verr == nil || !strings.Contains(verr.Error(), "at most 65536") {
		t.Fatalf("oversized ticket: %v", verr)
	}
	d := NewDeadLetter("matcher", "matchmaking.eu.gold", 3, raw, verr, time.Now())
	data, _ := json.Marshal(d)
	if len(data) > 4*MaxPayloadBytes || len(d.Payload) != MaxPayloadBytes || d.PayloadBytes != len(raw) {
		t.Fatalf("dead letter of %d bytes: payload %d, payload_bytes %d", len(data), len(d.Payload), d.PayloadBytes)
	}
}

// FuzzDecodeTicket checks that no input panics the decoder, that whatever it
// accepts passes Validate, and that an accepted ticket survives a round trip.
func FuzzDecodeTicket(f *testing.F) {
	for _, s := range []string{
		`{"player_id":"alice","skill":1650}`,
		`{"party":["a","b"],"mode":"2v2","skill":100,"latencies_ms":{"eu":20}}`,
		`{"ticket_id":"x","player_id":"a","skill":1,"created_at":"2026-01-01T00:00:00Z"}`,
		`{"skill":"x"}`, `[]`, `{`, `null`, `{"player_id":"a","skill":1}{}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		tk, err := DecodeTicket(data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
			return
		}
		if err := tk.Validate(); err != nil {
			t.Fatalf("accepted ticket fails Validate: %v", err)
		}
		out, err := json.Marshal(tk)
		if err != nil {
			t.Fatal(err)
		}
		back, err := DecodeTicket(out)
		if err != nil {
			t.Fatalf("re-encoded ticket %s rejected: %v", out, err)
		}
		if !reflect.DeepEqual(normalise(back), normalise(tk)) {
			t.Fatalf("round trip changed the ticket:\n%+v\n%+v", tk, back)
		}
	})
}

func normalise(t Ticket) Ticket {
	t.CreatedAt = t.CreatedAt.UTC()
	if len(t.LatenciesMS) == 0 {
		t.LatenciesMS = nil
	}
	return t
}
