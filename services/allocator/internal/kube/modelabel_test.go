package kube

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"
)

// TestModeLabelIsALabelValue: label locking labels a server with its
// mode; a mode Kubernetes takes as a label value is itself, one it does
// not (64 characters, "-" or "_" at an end: pkg/events allows both) a
// short hash, distinct per mode. Agones refused (422) the allocation of
// every match of such a mode.
func TestModeLabelIsALabelValue(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("m", 64)
	seen := map[string]string{}
	for _, mode := range []string{"2v2", "duel-", "_duel", long, strings.Repeat("m", 63)} {
		got := ModeLabel(mode)
		if errs := validation.IsValidLabelValue(got); len(errs) != 0 {
			t.Errorf("%q: label %q: %v", mode, got, errs)
		}
		if other, ok := seen[got]; ok {
			t.Errorf("%q and %q share label %q", mode, other, got)
		}
		seen[got] = mode
	}
	if ModeLabel("2v2") != "2v2" {
		t.Errorf("a valid mode changed: %q", ModeLabel("2v2"))
	}
}
