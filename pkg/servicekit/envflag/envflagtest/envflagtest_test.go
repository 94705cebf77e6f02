package envflagtest

import (
	"strings"
	"testing"
)

// TestDocDiffers: a package comment that says what -h says passes, across
// line breaks; one that only points at about (the text go doc would then
// show) fails, and the error shows both.
func TestDocDiffers(t *testing.T) {
	if err := docDiffers("testdata/same", "same says what its -h says, across a line break."); err != nil {
		t.Fatal(err)
	}
	err := docDiffers("testdata/drift", "drift replays matches.")
	if err == nil || !strings.Contains(err.Error(), "want: Command drift replays matches.") {
		t.Fatalf("err = %v, want the package comment's drift from about", err)
	}
	if err := docDiffers("testdata/none", "none"); err == nil {
		t.Fatal("a directory without a package comment passed")
	}
}

// TestNamesEnv: the variable is found after its flag, with or without a
// default, and not as the start of a longer name.
func TestNamesEnv(t *testing.T) {
	out := "\n  -nats-url string  (NATS_URL, default nats://127.0.0.1:4222)\n  -key-file string  (KEY_FILE)\n  -id string  (ID_PREFIX)\n"
	for env, want := range map[string]bool{"NATS_URL": true, "KEY_FILE": true, "ID": false, "NATS": false, "PORT": false} {
		if got := namesEnv(out, env); got != want {
			t.Errorf("namesEnv(%s) = %v, want %v", env, got, want)
		}
	}
}
