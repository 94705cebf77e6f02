package agones_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/quickmatch-dev/quickmatch/pkg/agones"
	"github.com/quickmatch-dev/quickmatch/pkg/agones/sdk"
	"github.com/quickmatch-dev/quickmatch/pkg/play"
)

// TestBackfillAnnotationFits: every match id the allocator accepts
// (MaxMatchIDLen) makes both of its room's annotation keys valid for
// Kubernetes: a name part of at most 63 characters after the prefix. The
// backfill key is set through the SDK, which puts sdk.LabelPrefix before
// it, and the allocator reads it back under that name.
func TestBackfillAnnotationFits(t *testing.T) {
	t.Parallel()
	id := strings.Repeat("m", agones.MaxMatchIDLen)
	if got, want := agones.BackfillAnnotation(id), sdk.LabelPrefix+agones.BackfillKey(id); got != want {
		t.Fatalf("BackfillAnnotation = %q, the SDK stores %q", got, want)
	}
	for _, key := range []string{agones.BackfillAnnotation(id), agones.MatchAnnotationPrefix + id} {
		prefix, name, _ := strings.Cut(key, "/")
		if len(name) > 63 || prefix == "" {
			t.Errorf("%q: name part of %d characters, Kubernetes takes 63", key, len(name))
		}
	}
	if name := agones.BackfillAnnotation(id + "m")[len("agones.dev/"):]; len(name) <= 63 {
		t.Errorf("MaxMatchIDLen %d is not the longest id that fits: %q fits too", agones.MaxMatchIDLen, name)
	}
	if got := agones.BackfillAnnotation("m1"); got != "agones.dev/sdk-backfill-m1" {
		t.Errorf("BackfillAnnotation(m1) = %q", got)
	}
}

// TestDecodeBackfill: what the game server writes reads back, "" is no
// request, a request nobody can fill is an error.
func TestDecodeBackfill(t *testing.T) {
	t.Parallel()
	want := play.Backfill{MatchID: "m1", Ask: 3, Seats: []int{1, 0}}
	for name, v := range map[string]string{
		"as written":       agones.EncodeBackfill(want),
		"an unknown field": `{"match_id":"m1","ask":3,"seats":[1,0],"future":1}`,
	} {
		if got, ok, err := agones.DecodeBackfill(v); err != nil || !ok || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %+v %v %v", name, got, ok, err)
		}
	}
	if got, ok, err := agones.DecodeBackfill(""); ok || err != nil {
		t.Errorf("empty: %+v %v %v", got, ok, err)
	}
	for name, v := range map[string]string{
		"not JSON":      `m1`,
		"no match":      `{"ask":1,"seats":[1,0]}`,
		"no seats":      `{"match_id":"m1","ask":1}`,
		"one team":      `{"match_id":"m1","ask":1,"seats":[1]}`,
		"negative seat": `{"match_id":"m1","ask":1,"seats":[2,-1]}`,
		"no free seat":  `{"match_id":"m1","ask":1,"seats":[0,0]}`,
		"data after":    `{"match_id":"m1","ask":1,"seats":[1,0]} {}`,
	} {
		if got, ok, err := agones.DecodeBackfill(v); err == nil || ok {
			t.Errorf("%s: accepted as %+v", name, got)
		}
	}
}
