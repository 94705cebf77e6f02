package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
	"github.com/quickmatch-dev/quickmatch/pkg/ticketapi"
)

// tsClient is the TypeScript client (clients/ts), built by its npm run
// build (make test does it before the Go tests).
const tsClient = "../../../../clients/ts"

// TestTypeScriptClientAgainstTheFrontend runs the TypeScript client's
// script against this frontend (clients/ts/test/frontend.real.mjs): it
// queues, follows over Server-Sent Events (resuming with Last-Event-ID),
// cancels, is refused, and queues and cancels over /ws/events, with a
// player's token. The test plays the matcher and allocator for the
// ticket the script names.
func TestTypeScriptClientAgainstTheFrontend(t *testing.T) {
	t.Parallel()
	node := needClient(t, "ws")
	e := start(t, options{})
	runScript(t, e, node, "test/frontend.real.mjs", "ok: the client against the real frontend", "QUICKMATCH_TOKEN="+e.token(t, "alice"))
}

// TestFindAMatchPageInChromium opens this frontend's find-a-match page in
// headless Chromium (clients/ts/test/page.real.mjs): the page's client
// queues, shows the wait, cancels, queues again and sends the player to
// the game once assigned. Identity is off: the page finds no development
// issuer and sends no token, as in a deployment that runs insecure.
func TestFindAMatchPageInChromium(t *testing.T) {
	t.Parallel()
	node := needClient(t, "puppeteer-core")
	browser := os.Getenv("CHROMIUM")
	if browser == "" {
		var err error
		if browser, err = exec.LookPath("chromium"); err != nil {
			testkit.Missing(t, "no chromium on PATH (apt-get install chromium; .ci/run installs it)")
		}
	}
	e := start(t, options{insecure: true})
	runScript(t, e, node, "test/page.real.mjs", "ok: the page queued, cancelled, and followed a ticket to its game", "CHROMIUM="+browser)
}

// TestTypeScriptClientContract holds the TypeScript client's wire
// contract (clients/ts/src/contract.ts, exported as contract) equal to
// pkg/ticketapi's, which this frontend answers with: a path, header,
// query parameter, event name or id, close code or reason changed on one
// side only fails here, not in a player's browser.
func TestTypeScriptClientContract(t *testing.T) {
	t.Parallel()
	node := needClient(t, "ws")
	const script = `import("./dist/quickmatch.js").then(({ contract: c, ApiError }) => console.log(JSON.stringify({
  ...c, ticketPath: c.ticketPath("t-1"), eventsPath: c.eventsPath("t-1"), retryAfterMs: c.retryAfterOfReason(process.argv[1]),
  drained: c.refusalOfReason(process.argv[1]).body, full: c.refusalOfReason(process.argv[2]).body,
  createdNothing: JSON.parse(process.argv[3]).map(([status, body]) => new ApiError(status, body).createdNothing),
})));`
	reason := ticketapi.RetryAfterCloseReason(30*time.Second, ticketapi.DrainedReason("eu.gold", "maintenance"))
	full := ticketapi.RetryAfterCloseReason(5*time.Second, ticketapi.RegionFullError("eu", "us-east"))
	// Refusals a creation may get: both clients must say alike which
	// made no ticket (ticketapi.CreatedNothing), or one of them sends
	// no Quickmatch-Repeat where the other does.
	refusals := []struct {
		status int
		body   ticketapi.ErrorBody
	}{
		{503, ticketapi.ErrorBody{Error: ticketapi.OverloadedError}},
		{503, ticketapi.ErrorBody{Error: ticketapi.StartingError}},
		{503, ticketapi.ErrorBody{Error: ticketapi.RegionFullError("eu", "")}},
		{503, ticketapi.ErrorBody{Error: ticketapi.RegionFullError("eu", "us-east"), SuggestRegion: "us-east"}},
		{503, ticketapi.ErrorBody{Error: "ticket service unavailable, retry with the same Idempotency-Key"}},
		{503, ticketapi.ErrorBody{}},
		{429, ticketapi.ErrorBody{Error: "too many tickets from this player"}},
		{408, ticketapi.ErrorBody{Error: "request body not received"}},
		{500, ticketapi.ErrorBody{}},
		{502, ticketapi.ErrorBody{Error: ticketapi.OverloadedError}},
		{504, ticketapi.ErrorBody{}},
	}
	table := make([][2]any, len(refusals))
	var nothing []any
	for i, r := range refusals {
		table[i] = [2]any{r.status, r.body}
		nothing = append(nothing, ticketapi.CreatedNothing(r.status, r.body))
	}
	tableJSON, err := json.Marshal(table)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), node, "--input-type=module", "-e", script, reason, full, string(tableJSON))
	cmd.Dir = tsClient
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, out)
	}
	var got map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	want := map[string]any{
		"paths":      map[string]any{"tickets": ticketapi.PathTickets, "wsEvents": ticketapi.PathWSEvents},
		"ticketPath": ticketapi.TicketPath("t-1"),
		"eventsPath": ticketapi.EventsPath("t-1"),
		"headers": map[string]any{
			"authorization": ticketapi.HeaderAuthorization, "idempotencyKey": ticketapi.HeaderIdempotencyKey,
			"correlationId": ticketapi.HeaderCorrelationID, "traceParent": ticketapi.HeaderTraceParent,
			"lastEventId": ticketapi.HeaderLastEventID, "retryAfter": ticketapi.HeaderRetryAfter,
			"repeat": ticketapi.HeaderRepeat,
		},
		"overloadedPrefix": ticketapi.OverloadedPrefix,
		"startingError":    ticketapi.StartingError,
		"query": map[string]any{
			"region": ticketapi.QueryRegion, "mode": ticketapi.QueryMode, "skill": ticketapi.QuerySkill,
			"playerId": ticketapi.QueryPlayerID, "attributes": ticketapi.QueryAttributes, "accessToken": ticketapi.QueryAccessToken,
		},
		"eventStatus":      ticketapi.EventStatus,
		"eventIds":         map[string]any{"queued": float64(ticketapi.EventIDQueued), "matched": float64(ticketapi.EventIDMatched), "terminal": float64(ticketapi.EventIDTerminal)},
		"cancelMessage":    ticketapi.CancelMessage,
		"retryAfterReason": ticketapi.RetryAfterReason,
		"retryAfterMs":     float64(30_000),
		"regionFullText":   ticketapi.RegionFullText,
		"lostReason":       ticketapi.LostReason,
		// A 1013's reason read as the 503's body a POST would have had.
		"drained":        map[string]any{"error": ticketapi.DrainedReason("eu.gold", "maintenance"), "drained": map[string]any{"shard": "eu.gold", "reason": "maintenance"}},
		"full":           map[string]any{"error": ticketapi.RegionFullError("eu", "us-east"), "suggest_region": "us-east"},
		"createdNothing": nothing,
		"closeCodes": map[string]any{
			"expired": float64(ticketapi.CloseExpired), "failed": float64(ticketapi.CloseFailed),
			"cancelled": float64(ticketapi.CloseCancelled), "invalid": float64(ticketapi.CloseInvalid),
			"tryAgainLater": float64(websocket.CloseTryAgainLater), "following": float64(ticketapi.CloseFollowing),
		},
	}
	for k, w := range want {
		if !reflect.DeepEqual(got[k], w) {
			t.Errorf("%s: the TypeScript client has %v, pkg/ticketapi %v", k, got[k], w)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("contract.%s is not compared with pkg/ticketapi: add it here", k)
		}
	}
}

// needClient is node, once the TypeScript client is built with the npm
// package pkg installed.
func needClient(t *testing.T, pkg string) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		testkit.Missing(t, "no node on PATH (.ci/run installs it)")
	}
	for _, f := range []string{"dist/quickmatch.js", "node_modules/" + pkg + "/package.json"} {
		if _, err := os.Stat(filepath.Join(tsClient, f)); err != nil {
			testkit.Missing(t, "the TypeScript client is not built (cd clients/ts && npm ci && npm run build): "+err.Error())
		}
	}
	return node
}

// runScript runs a script of the client against e's frontend and plays
// the matcher and allocator for each "allocate <ticket id> [player]"
// line it prints (alice when it names no player); the script's last line
// must be done.
func runScript(t *testing.T, e *env, node, script, done string, env ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, script)
	cmd.Dir = tsClient
	cmd.Env = append(append(os.Environ(), "QUICKMATCH_URL="+e.http.URL), env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var lines []string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		lines = append(lines, line)
		if rest, ok := strings.CutPrefix(line, "allocate "); ok {
			id, player, _ := strings.Cut(rest, " ")
			if player == "" {
				player = "alice"
			}
			e.allocate(t, id, player)
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("%s: %v\n%s\n%s", script, err, strings.Join(lines, "\n"), stderr.String())
	}
	if len(lines) == 0 || lines[len(lines)-1] != done {
		t.Fatalf("%s did not finish:\n%s\n%s", script, strings.Join(lines, "\n"), stderr.String())
	}
}
