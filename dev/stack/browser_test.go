package stack_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/quickmatch-dev/quickmatch/dev/stack"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// ScreenshotDirEnv, when set, receives PNGs of every tab at the end.
const ScreenshotDirEnv = "QUICKMATCH_SCREENSHOT_DIR"

func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	testkit.Missing(t, "no chromium on PATH (apt-get install chromium; .ci/run installs it)")
	return ""
}

// browser is a headless Chromium and its tabs, each a player.
type browser struct {
	t     *testing.T
	first context.Context // the first tab; the others are opened from it
	tabs  []context.Context
}

// startBrowser starts Chromium for the test, with timeout for all of it.
func startBrowser(t *testing.T, timeout time.Duration) *browser {
	t.Helper()
	exe := chromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.Headless, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-quic", true), chromedp.UserDataDir(t.TempDir()),
	)
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	t.Cleanup(cancel)
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelAlloc)
	first, cancelFirst := chromedp.NewContext(alloc)
	t.Cleanup(cancelFirst)
	if err := chromedp.Do(first); err != nil { // starts the browser
		t.Fatalf("start chromium: %v", err)
	}
	return &browser{t: t, first: first}
}

// tab opens a tab now, not under a step's timeout (the first one is the
// browser's own).
func (b *browser) tab() context.Context {
	b.t.Helper()
	if len(b.tabs) == 0 {
		b.tabs = append(b.tabs, b.first)
		return b.first
	}
	tab, cancel := chromedp.NewContext(b.first)
	b.t.Cleanup(cancel)
	if err := chromedp.Do(tab); err != nil {
		b.t.Fatalf("open tab %d: %v", len(b.tabs)+1, err)
	}
	b.tabs = append(b.tabs, tab)
	return tab
}

// find opens the frontend's page in tab and asks for a match of mode as
// player. It returns the modes the page offered.
func (b *browser) find(tab context.Context, frontend, player, mode string) []string {
	t := b.t
	t.Helper()
	// A fresh headless Chromium on a busy CI machine once never finished
	// its first navigation; the page is loaded again once before the test
	// gives up.
	var err error
	for attempt := 1; attempt <= 2; attempt++ {
		nctx, ncancel := context.WithTimeout(tab, 30*time.Second)
		err = chromedp.Do(nctx, chromedp.Navigate(frontend), chromedp.WaitVisible(chromedp.ID("go")))
		ncancel()
		if err == nil {
			break
		}
		t.Logf("%s: loading the page, attempt %d: %v", player, attempt, err)
	}
	if err != nil {
		t.Fatalf("%s: load the page: %v", player, err)
	}
	// The mode is picked from the page's own choices: a page that does not
	// offer it fails the test.
	offered := b.modes(tab)
	if !slices.Contains(offered, mode) {
		t.Fatalf("%s: the find-a-match page offers the modes %q, not %s", player, offered, mode)
	}
	if err := chromedp.Do(tab, chromedp.SetValue(chromedp.ID("player"), player), chromedp.SetValue(chromedp.ID("mode"), mode), chromedp.Click(chromedp.ID("go"))); err != nil {
		t.Fatalf("%s: find a %s match: %v", player, mode, err)
	}
	return offered
}

// modes are the modes the page in tab offers, in its order.
func (b *browser) modes(tab context.Context) []string {
	b.t.Helper()
	offered, err := chromedp.Run(tab, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#mode option")].map((o) => o.value)`))
	if err != nil {
		b.t.Fatalf("the page's modes: %v", err)
	}
	return offered
}

func moveButton(mv string) chromedp.CSS {
	return chromedp.CSS(`#moves button[data-move="` + mv + `"]`)
}

// started waits until every tab's game has started (its moves enabled).
func (b *browser) started(tabs ...context.Context) {
	b.t.Helper()
	for i, tab := range tabs {
		if err := chromedp.Do(tab, chromedp.WaitEnabled(moveButton("rock"))); err != nil {
			b.t.Fatalf("the game never started in tab %d: %v", i+1, err)
		}
	}
}

// round plays round number n: each tab throws its move, then every tab
// shows the round in its log.
func (b *browser) round(n int, tabs []context.Context, moves []string) {
	t := b.t
	t.Helper()
	for i, tab := range tabs {
		if err := chromedp.Do(tab, chromedp.WaitEnabled(moveButton(moves[i])), chromedp.Click(moveButton(moves[i]))); err != nil {
			t.Fatalf("round %d, tab %d: %v", n, i+1, err)
		}
	}
	for i, tab := range tabs {
		if err := chromedp.Do(tab, chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf("#log li:nth-child(%d)", n)))); err != nil {
			t.Fatalf("round %d not shown in tab %d: %v", n, i+1, err)
		}
	}
}

// text is the text of the element sel of tab.
func (b *browser) text(tab context.Context, sel string) string {
	b.t.Helper()
	s, err := chromedp.Run(tab, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

// eval is the string a JavaScript expression gives in tab.
func (b *browser) eval(tab context.Context, js string) string {
	b.t.Helper()
	s, err := chromedp.Run(tab, chromedp.Evaluate[string](js))
	if err != nil {
		b.t.Fatalf("%s: %v", js, err)
	}
	return s
}

// screenshots writes a PNG of every tab to ScreenshotDirEnv, if set.
func (b *browser) screenshots(prefix string) {
	dir := os.Getenv(ScreenshotDirEnv)
	if dir == "" {
		return
	}
	for i, tab := range b.tabs {
		if png, err := chromedp.Run(tab, chromedp.FullScreenshot(100)); err == nil {
			_ = os.WriteFile(filepath.Join(dir, fmt.Sprintf("%stab%d.png", prefix, i+1)), png, 0o644)
		}
	}
}

// TestTwoBrowserTabsGetMatchedAndPlay is the promise of `make run`: two tabs
// of the page, one click each, are matched, land in the same room on a game
// server and play a game to its end, in a real headless Chromium.
func TestTwoBrowserTabsGetMatchedAndPlay(t *testing.T) {
	chromium(t)
	s := startStack(t)
	b := startBrowser(t, 150*time.Second)
	tab1, tab2 := b.tab(), b.tab()
	b.find(tab1, s.FrontendURL(), "tab-one", "1v1")
	b.find(tab2, s.FrontendURL(), "tab-two", "1v1")
	tabs := []context.Context{tab1, tab2}
	b.started(tabs...)
	var status1 string
	for round := 1; round <= 3; round++ {
		b.round(round, tabs, []string{"rock", "scissors"})
		if status1 = b.text(tab1, "#status"); strings.Contains(status1, "won the game") {
			break
		}
	}
	status2 := b.text(tab2, "#status")
	url1, err := chromedp.Run(tab1, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	b.screenshots("")
	if !strings.Contains(url1, "/play?room=") {
		t.Fatalf("tab one is at %s, not on a game server", url1)
	}
	if !strings.Contains(status1, "You won the game!") || !strings.Contains(status2, "tab-one won the game") {
		t.Fatalf("tab one says %q, tab two says %q", status1, status2)
	}
	// The tabs got there with identity on: the page took its tokens from
	// the development issuer, and a request without one is refused.
	var refused map[string]any
	if code := httpJSON(t, "", http.MethodPost, s.FrontendURL()+"/v1/tickets", `{"player_id":"tab-one","skill":1650,"region":"eu"}`, &refused); code != http.StatusUnauthorized {
		t.Fatalf("a ticket without a token: %d %v", code, refused)
	}
}

// gameOver waits until tab's status tells the game's end, and returns it.
func (b *browser) gameOver(tab context.Context) string {
	b.t.Helper()
	if _, err := chromedp.Run(tab, chromedp.Poll[bool](`/won the game|share the win/.test(document.getElementById("status").textContent)`,
		chromedp.WithPollingInterval(100*time.Millisecond))); err != nil {
		b.t.Fatalf("the game's end never shown: %v (status %q)", err, b.text(tab, "#status"))
	}
	return b.text(tab, "#status")
}

// playersTable is what a tab's table of players shows: "team:player=throw"
// for each row, in order.
func (b *browser) playersTable(tab context.Context) string {
	return b.eval(tab, `[...document.querySelectorAll("#players tbody tr")].map((r) => r.dataset.team + ":" + r.dataset.player + "=" + r.cells[2].textContent).join(",")`)
}

// browserRules is the rule set of TestBrowserTabsPlayTeamsAndFreeForAll,
// read by the frontend and the matcher: 2v2, and a free-for-all of three
// rather than the built-in eight.
const browserRules = `{"modes":[{"name":"1v1","teams":2,"team_size":1,"max_wait":"2m"},
{"name":"2v2","teams":2,"team_size":2,"max_wait":"2m"},
{"name":"ffa","teams":3,"team_size":1,"max_wait":"2m"}]}`

// browserModeNames are the rule set's modes in that test: the modes its
// page must offer, no more.
const browserModeNames = "1v1,2v2,ffa"

// TestBrowserTabsPlayTeamsAndFreeForAll: four tabs ask for 2v2, land in
// one room as two teams, see every player with their team and every
// throw, and the team that throws rock against scissors wins; then three
// tabs play a free-for-all of three rounds, where the one throwing rock
// against two scissors scores 2 a round and wins.
func TestBrowserTabsPlayTeamsAndFreeForAll(t *testing.T) {
	chromium(t)
	rulesFile := filepath.Join(t.TempDir(), "rules.json")
	if err := os.WriteFile(rulesFile, []byte(browserRules), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startStack(t, func(c *stack.Config) {
		c.Env = append(c.Env, "RULES="+rulesFile)
	})
	b := startBrowser(t, 300*time.Second)
	defer b.screenshots("")

	// 2v2 in four tabs.
	var duo []context.Context
	for i := 1; i <= 4; i++ {
		tab := b.tab()
		offered := b.find(tab, s.FrontendURL(), fmt.Sprintf("duo-%d", i), "2v2")
		if want := strings.Split(browserModeNames, ","); !slices.Equal(offered, want) {
			t.Fatalf("the page offers the modes %q, want the rule set's %q", offered, want)
		}
		duo = append(duo, tab)
	}
	b.started(duo...)
	moves, teams := make([]string, 4), map[string]int{}
	for i, tab := range duo {
		team := b.eval(tab, `document.querySelector("#players tr.you").dataset.team`)
		teams[team]++
		moves[i] = map[string]string{"0": "rock", "1": "scissors"}[team]
	}
	if teams["0"] != 2 || teams["1"] != 2 {
		t.Fatalf("teams of the four tabs: %v", teams)
	}
	b.round(1, duo, moves)
	b.round(2, duo, moves) // "Team 1" (data-team 0, rock) takes both: 4 duels to 0
	for i, tab := range duo {
		status := b.gameOver(tab)
		want := "Your team won the game!"
		if moves[i] == "scissors" {
			want = "Team 1 ("
		}
		if !strings.Contains(status, want) {
			t.Fatalf("2v2 tab %d (%s) says %q, want %q", i+1, moves[i], status, want)
		}
		rows := b.playersTable(tab)
		for p := 1; p <= 4; p++ {
			if !strings.Contains(rows, fmt.Sprintf("duo-%d=%s", p, moves[p-1])) {
				t.Fatalf("2v2 tab %d shows players %s: duo-%d's %s missing", i+1, rows, p, moves[p-1])
			}
		}
	}

	// A free-for-all of three in three more tabs.
	var ffa []context.Context
	for i := 1; i <= 3; i++ {
		tab := b.tab()
		b.find(tab, s.FrontendURL(), fmt.Sprintf("ffa-%d", i), "ffa")
		ffa = append(ffa, tab)
	}
	b.started(ffa...)
	for round := 1; round <= 3; round++ {
		b.round(round, ffa, []string{"rock", "scissors", "scissors"})
	}
	for i, tab := range ffa {
		status := b.gameOver(tab)
		want := "ffa-1 won the game."
		if i == 0 {
			want = "You won the game!"
		}
		if !strings.Contains(status, want) {
			t.Fatalf("free-for-all tab %d says %q, want %q", i+1, status, want)
		}
	}
	if score := b.text(ffa[0], "#score"); !strings.Contains(score, "you 6") {
		t.Fatalf("free-for-all score in tab 1: %q", score)
	}
}
