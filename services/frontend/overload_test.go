package main

import (
	"strings"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/admission"
)

// Overload control is on by default, -overload-target=0 (or
// OVERLOAD_TARGET=0) turns it off, and impossible bounds stop the start.
func TestOverloadFlags(t *testing.T) {
	c, err := parseConfig([]string{"-auth-insecure"})
	if err != nil {
		t.Fatal(err)
	}
	adm := c.api.Admission
	if !adm.On() || adm.Target != admission.DefaultTarget || adm.Min != admission.DefaultMin || adm.Max != admission.DefaultMax {
		t.Fatalf("defaults %+v, want on with the admission package's defaults", adm)
	}
	if c, err = parseConfig([]string{"-auth-insecure", "-overload-target=250ms", "-overload-min=4", "-overload-max=40"}); err != nil ||
		c.api.Admission.Target != 250*time.Millisecond || c.api.Admission.Min != 4 || c.api.Admission.Max != 40 {
		t.Fatalf("flags: %+v %v", c.api.Admission, err)
	}
	t.Setenv("OVERLOAD_TARGET", "0")
	if c, err = parseConfig([]string{"-auth-insecure"}); err != nil || c.api.Admission.On() {
		t.Fatalf("OVERLOAD_TARGET=0: %+v %v, want off", c.api.Admission, err)
	}
	for _, args := range [][]string{{"-overload-min=-1"}, {"-overload-min=50", "-overload-max=10"}} {
		if _, err := parseConfig(append([]string{"-auth-insecure"}, args...)); err == nil || !strings.Contains(err.Error(), "overload") {
			t.Errorf("%v: %v, want refused", args, err)
		}
	}
}
