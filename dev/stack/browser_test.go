package stack_test

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// ScreenshotDirEnv, when set, receives PNGs of both tabs at the end.
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

// TestTwoBrowserTabsGetMatchedAndPlay is the promise of `make run`: two tabs
// of the page, one click each, are matched, land in the same room on a game
// server and play a game to its end, in a real headless Chromium.
func TestTwoBrowserTabsGetMatchedAndPlay(t *testing.T) {
	exe := chromium(t)
	s := startStack(t)

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.Headless, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-quic", true), chromedp.UserDataDir(t.TempDir()),
	)
	ctx, cancel := context.WithTimeout(t.Context(), 150*time.Second)
	defer cancel()
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	tab1, cancel1 := chromedp.NewContext(alloc)
	defer cancel1()
	if err := chromedp.Do(tab1); err != nil { // starts the browser
		t.Fatalf("start chromium: %v", err)
	}
	tab2, cancel2 := chromedp.NewContext(tab1)
	defer cancel2()
	if err := chromedp.Do(tab2); err != nil { // opens the second tab now, not under a step's timeout
		t.Fatalf("open a second tab: %v", err)
	}

	find := func(tab context.Context, player string) {
		t.Helper()
		// A fresh headless Chromium on a busy CI machine once never
		// finished its first navigation; the page is loaded again once
		// before the test gives up.
		var err error
		for attempt := 1; attempt <= 2; attempt++ {
			nctx, ncancel := context.WithTimeout(tab, 30*time.Second)
			err = chromedp.Do(nctx, chromedp.Navigate(s.FrontendURL()), chromedp.WaitVisible(chromedp.ID("go")))
			ncancel()
			if err == nil {
				break
			}
			t.Logf("%s: loading the page, attempt %d: %v", player, attempt, err)
		}
		if err == nil {
			err = chromedp.Do(tab, chromedp.SetValue(chromedp.ID("player"), player), chromedp.Click(chromedp.ID("go")))
		}
		if err != nil {
			t.Fatalf("%s: find a match: %v", player, err)
		}
	}
	find(tab1, "tab-one")
	find(tab2, "tab-two")

	rock := chromedp.CSS(`#moves button[data-move="rock"]`)
	scissors := chromedp.CSS(`#moves button[data-move="scissors"]`)
	for _, tab := range []context.Context{tab1, tab2} {
		if err := chromedp.Do(tab, chromedp.WaitEnabled(rock)); err != nil {
			t.Fatalf("the game never started in a tab: %v", err)
		}
	}
	var status1, url1 string
	for round := 1; round <= 3; round++ {
		if err := chromedp.Do(tab1, chromedp.WaitEnabled(rock), chromedp.Click(rock)); err != nil {
			t.Fatal(err)
		}
		if err := chromedp.Do(tab2, chromedp.WaitEnabled(scissors), chromedp.Click(scissors)); err != nil {
			t.Fatal(err)
		}
		// Wait until this round is in the log of both tabs.
		for _, tab := range []context.Context{tab1, tab2} {
			sel := chromedp.CSS("#log li:nth-child(" + string(rune('0'+round)) + ")")
			if err := chromedp.Do(tab, chromedp.WaitVisible(sel)); err != nil {
				t.Fatalf("round %d not shown: %v", round, err)
			}
		}
		var err error
		if status1, err = chromedp.Run(tab1, chromedp.Text(chromedp.ID("status"))); err != nil {
			t.Fatal(err)
		}
		if url1, err = chromedp.Run(tab1, chromedp.Location()); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(status1, "won the game") {
			break
		}
	}
	status2, err := chromedp.Run(tab2, chromedp.Text(chromedp.ID("status")))
	if err != nil {
		t.Fatal(err)
	}
	if dir := os.Getenv(ScreenshotDirEnv); dir != "" {
		for i, tab := range []context.Context{tab1, tab2} {
			if png, err := chromedp.Run(tab, chromedp.FullScreenshot(100)); err == nil {
				_ = os.WriteFile(filepath.Join(dir, "tab"+string(rune('1'+i))+".png"), png, 0o644)
			}
		}
	}
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
