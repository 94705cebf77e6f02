package envflag

import (
	"flag"
	"io"
	"testing"
)

func TestParse(t *testing.T) {
	t.Setenv("NATS_URL", "nats://env:4222")
	t.Setenv("PORT", "81")
	t.Setenv("WORKERS", "not-a-number")
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	url := fs.String("nats-url", "nats://default", "")
	port := fs.Int("port", 80, "")
	name := fs.String("name", "default", "")
	if err := Parse(fs, []string{"-port", "82"}); err != nil {
		t.Fatal(err)
	}
	if *url != "nats://env:4222" || *port != 82 || *name != "default" {
		t.Fatalf("got %q %d %q", *url, *port, *name)
	}
	fs2 := flag.NewFlagSet("y", flag.ContinueOnError)
	fs2.Int("workers", 1, "")
	if err := Parse(fs2, nil); err == nil {
		t.Fatal("a bad environment value was accepted")
	}
}
