package rules

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// The example rule sets do what the README says they do.

func exampleMode(t *testing.T, file, mode string) (*Set, *Mode) {
	t.Helper()
	s, err := Load(filepath.Join(examplesDir, file))
	if err != nil {
		t.Fatal(err)
	}
	m, ok := s.Mode(mode)
	if !ok {
		t.Fatalf("%s has no mode %s: %v", file, mode, s.Modes())
	}
	return s, m
}

// fits compiles a and b for m and judges them after both waited waited.
func fits(m *Mode, a, b *events.Attributes, waited time.Duration) bool {
	return m.Fits(m.Compile(a), m.Compile(b), waited, waited)
}

// checkRefuses asserts that s refuses a ticket of mode carrying a, naming
// field.
func checkRefuses(t *testing.T, s *Set, mode string, a *events.Attributes, field string) {
	t.Helper()
	err := s.Check(&events.Ticket{Mode: mode, PlayerID: "p", Attributes: a}, events.Regions{"eu"})
	var ve *events.ValidationError
	if !errors.As(err, &ve) || len(ve.Fields) != 1 || ve.Fields[0].Field != field {
		t.Errorf("Check(%+v) = %v, want a refusal of %s", a, err, field)
	}
}

func TestExampleCrossplay(t *testing.T) {
	t.Parallel()
	player := func(platform, crossplay string) *events.Attributes {
		return &events.Attributes{Strings: map[string]string{"platform": platform, "crossplay": crossplay}}
	}
	xbox, ps5, pc := player("xbox", "console"), player("ps5", "console"), player("pc", "pc")
	s, ranked := exampleMode(t, "crossplay.json", "ranked-2v2")
	_, casual := exampleMode(t, "crossplay.json", "casual-2v2")
	const forever = time.Hour // nothing is dropped
	if fits(ranked, xbox, ps5, forever) || fits(ranked, pc, xbox, forever) || !fits(ranked, xbox, player("xbox", "console"), 0) {
		t.Error("ranked-2v2 does not keep every platform apart")
	}
	if !fits(casual, xbox, ps5, 0) || fits(casual, pc, xbox, forever) || fits(casual, ps5, pc, forever) || !fits(casual, pc, player("pc", "pc"), 0) {
		t.Error("casual-2v2 does not put consoles together and keep pc apart")
	}
	checkRefuses(t, s, "casual-2v2", &events.Attributes{Strings: map[string]string{"platform": "pc"}}, "attributes.strings.crossplay")
	checkRefuses(t, s, "casual-2v2", player("amiga", "pc"), "attributes.strings.platform")
}

func TestExampleRankedCasual(t *testing.T) {
	t.Parallel()
	build := func(b string) *events.Attributes { return &events.Attributes{Strings: map[string]string{"build": b}} }
	s, ranked := exampleMode(t, "ranked-casual.json", "ranked")
	_, casual := exampleMode(t, "ranked-casual.json", "casual")
	if fits(ranked, build("1.4.2"), build("1.4.3"), time.Duration(ranked.MaxWait)) || !fits(ranked, build("1.4.2"), build("1.4.2"), 0) {
		t.Error("ranked does not keep builds apart for its whole wait")
	}
	if fits(casual, build("1.4.2"), build("1.4.3"), 59*time.Second) || !fits(casual, build("1.4.2"), build("1.4.3"), 60*time.Second) {
		t.Error("casual does not drop the build rule after 60s")
	}
	if widest := ranked.Skill.At(time.Duration(ranked.MaxWait)); widest >= casual.Skill.At(0) {
		t.Errorf("ranked's widest skill window %d is not tighter than casual's first %d", widest, casual.Skill.At(0))
	}
	if ranked.Balance != BalanceSkill || casual.Balance != BalanceNone {
		t.Errorf("balance: ranked %s, casual %s", ranked.Balance, casual.Balance)
	}
	checkRefuses(t, s, "ranked", nil, "attributes.strings.build")
}

func TestExampleMaps(t *testing.T) {
	t.Parallel()
	player := func(level float64, maps ...string) *events.Attributes {
		return &events.Attributes{Sets: map[string][]string{"maps": maps}, Numbers: map[string]float64{"level": level}}
	}
	s, m := exampleMode(t, "maps.json", "competitive")
	if fits(m, player(10, "dust"), player(10, "nuke", "inferno"), 29*time.Second) ||
		!fits(m, player(10, "dust", "nuke"), player(10, "nuke", "inferno"), 0) ||
		!fits(m, player(10, "dust"), player(10, "nuke", "inferno"), 30*time.Second) {
		t.Error("the map preference is not kept 30s, then dropped")
	}
	if !fits(m, &events.Attributes{Numbers: map[string]float64{"level": 10}}, player(10, "vertigo"), 0) {
		t.Error("a player without a preference does not fit any map")
	}
	if fits(m, player(10, "dust"), player(20, "dust"), 0) || !fits(m, player(10, "dust"), player(20, "dust"), 5*time.Second) ||
		fits(m, player(10, "dust"), player(50, "dust"), time.Duration(m.MaxWait)) {
		t.Error("the level distance does not widen from 5 to 30")
	}
	checkRefuses(t, s, "competitive", player(0, "dust"), "attributes.numbers.level")
	checkRefuses(t, s, "competitive", player(10, "office"), "attributes.sets.maps[0]") // a member by its place (Check)
}

func TestExampleFreeForAll(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		mode  string
		want  StartEarly
		teams int
	}{
		{"ffa", StartEarly{MinTeams: 4, After: Duration(30 * time.Second)}, 8},
		{"2v2v2", StartEarly{MinTeams: 2, After: Duration(45 * time.Second)}, 3},
	} {
		_, m := exampleMode(t, "free-for-all.json", tt.mode)
		if m.StartEarly == nil || *m.StartEarly != tt.want || m.Teams != tt.teams || !m.AcceptsBackfill {
			t.Errorf("%s: teams %d, start_early %+v, backfill %v", tt.mode, m.Teams, m.StartEarly, m.AcceptsBackfill)
		}
	}
}
