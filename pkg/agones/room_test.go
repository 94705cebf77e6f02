package agones

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// TestDecodeRoom: what the allocator writes reads back; a field a newer
// allocator adds is ignored; a room the game server could not seat is an
// error.
func TestDecodeRoom(t *testing.T) {
	t.Parallel()
	want := Room{Mode: "2v2", Teams: [][]string{{"a", "b"}, {"c", "d"}}}
	for name, v := range map[string]string{
		"as written":       EncodeRoom(want),
		"an unknown field": `{"mode":"2v2","teams":[["a","b"],["c","d"]],"future":true}`,
	} {
		if got, err := DecodeRoom(v); err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %+v %v", name, got, err)
		}
	}
	many := make([]string, MaxRoomPlayers+1)
	for i := range many {
		many[i] = fmt.Sprintf(`["p%d"]`, i)
	}
	for name, v := range map[string]string{
		"not JSON":        `a,b`,
		"no teams":        `{"mode":"1v1"}`,
		"one team":        `{"mode":"1v1","teams":[["a","b"]]}`,
		"an empty team":   `{"mode":"1v1","teams":[["a"],[]]}`,
		"an empty player": `{"mode":"1v1","teams":[["a"],[""]]}`,
		"a player twice":  `{"mode":"1v1","teams":[["a"],["a"]]}`,
		"data after":      `{"mode":"1v1","teams":[["a"],["b"]]} {}`,
		"too many":        `{"mode":"ffa","teams":[` + strings.Join(many, ",") + `]}`,
	} {
		if got, err := DecodeRoom(v); err == nil {
			t.Errorf("%s: accepted as %+v", name, got)
		}
	}
}

// TestRoomBackfill: a room that accepts backfill says so; one that does
// not writes the room as before.
func TestRoomBackfill(t *testing.T) {
	t.Parallel()
	r := Room{Mode: "2v2", Teams: [][]string{{"a", "b"}, {"c", "d"}}, Backfill: true}
	if v := EncodeRoom(r); v != `{"mode":"2v2","teams":[["a","b"],["c","d"]],"backfill":true}` {
		t.Fatalf("EncodeRoom = %s", v)
	}
	if got, err := DecodeRoom(EncodeRoom(r)); err != nil || !reflect.DeepEqual(got, r) {
		t.Fatalf("DecodeRoom = %+v, %v", got, err)
	}
	r.Backfill = false
	if v := EncodeRoom(r); v != `{"mode":"2v2","teams":[["a","b"],["c","d"]]}` {
		t.Fatalf("EncodeRoom without backfill = %s", v)
	}
}
