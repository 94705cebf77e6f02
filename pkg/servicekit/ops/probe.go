package ops

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// ProbeCommand is the first argument that turns a service binary into its
// own health probe: "frontend probe http://127.0.0.1:3000/readyz". The
// images are distroless (no shell, no curl), so docker-compose healthchecks
// run the service binary itself.
const ProbeCommand = "probe"

// MaybeProbe runs the probe and exits when args (os.Args[1:]) ask for it,
// and returns otherwise.
func MaybeProbe(args []string) {
	if len(args) == 0 || args[0] != ProbeCommand {
		return
	}
	if len(args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: probe URL")
		os.Exit(2)
	}
	if err := Probe(context.Background(), args[1], 3*time.Second); err != nil {
		fmt.Fprintln(os.Stderr, "probe:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// Probe GETs url and succeeds on a 2xx answer within timeout.
func Probe(ctx context.Context, url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 512))
	if res.StatusCode/100 != 2 {
		return fmt.Errorf("%s: %s %s", url, res.Status, body)
	}
	return nil
}
