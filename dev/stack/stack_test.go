package stack_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"

	"github.com/quickmatch-dev/quickmatch/dev/stack"
	"github.com/quickmatch-dev/quickmatch/pkg/play"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// BinDirEnv points at prebuilt binaries (make test sets it); otherwise the
// test builds them once.
const BinDirEnv = "QUICKMATCH_BIN_DIR"

var binDir string

func TestMain(m *testing.M) {
	binDir = os.Getenv(BinDirEnv)
	if binDir == "" {
		dir, err := os.MkdirTemp("", "quickmatch-bin")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer os.RemoveAll(dir)
		root, err := testkit.RepoRoot()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		for _, pkg := range []string{"services/frontend", "services/matcher", "services/allocator", "services/game", "load"} {
			cmd := exec.Command("go", "build", "-race", "-o", filepath.Join(dir, filepath.Base(pkg)), "./"+pkg)
			cmd.Dir = root
			if out, err := cmd.CombinedOutput(); err != nil {
				fmt.Fprintf(os.Stderr, "build %s: %v\n%s", pkg, err, out)
				os.Exit(1)
			}
		}
		binDir = dir
	}
	os.Exit(m.Run())
}

type logWriter struct{ t *testing.T }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func startStack(t *testing.T, tune ...func(*stack.Config)) *stack.Stack {
	t.Helper()
	var logs io.Writer = io.Discard
	if testing.Verbose() {
		logs = logWriter{t}
	}
	// Port 0: each service binds a port of its own choosing and reports it.
	cfg := stack.Config{
		BinDir: binDir, DataDir: t.TempDir(), NATSPort: -1, Host: "127.0.0.1",
		GamePorts: []int{0, 0}, MatcherOpsPorts: []int{0, 0}, Logs: logs,
	}
	for _, f := range tune {
		f(&cfg)
	}
	s, err := stack.Start(t.Context(), cfg)
	if err != nil {
		t.Fatal(err) // with the last output of the service that failed
	}
	// Runs after Stop (cleanups run last first): a failing test shows
	// what every process said, which -v would have shown as it came.
	t.Cleanup(func() {
		if t.Failed() && !testing.Verbose() {
			t.Logf("output of the stack:\n%s", s.Output())
		}
	})
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return s
}

type ticketView struct {
	TicketID   string `json:"ticket_id"`
	Status     string `json:"status"`
	Reason     string `json:"reason"`
	Assignment *struct {
		URL       string `json:"url"`
		Room      string `json:"room"`
		JoinToken string `json:"join_token"`
		Server    string `json:"server"`
	} `json:"assignment"`
}

// httpJSON sends a request with a bearer token (none if token is "").
func httpJSON(t *testing.T, token, method, url, body string, out any) int {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if err := json.NewDecoder(res.Body).Decode(out); err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return res.StatusCode
}

// TestEndToEnd drives the system the way the README tells a new user to:
// two players over HTTP are matched, assigned and play a full game on the
// game server; two tickets typed into the nats CLI are assigned too; and a
// bad hand-typed ticket is dead-lettered without stopping anything.
func TestEndToEnd(t *testing.T) {
	s := startStack(t)
	fe := s.FrontendURL()

	t.Run("two players over HTTP are matched, assigned and play", func(t *testing.T) {
		start := time.Now()
		views := matchPair(t, fe, "alice", "bob")
		t.Logf("both tickets assigned %s after the first POST", time.Since(start))
		a, b := views[0].Assignment, views[1].Assignment
		if a.Room != b.Room || a.Server != b.Server || a.JoinToken == b.JoinToken {
			t.Fatalf("assignments do not share a room: %+v %+v", a, b)
		}
		res, err := http.Get(a.URL)
		if err != nil {
			t.Fatal(err)
		}
		page, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK || !strings.Contains(string(page), "Rock, paper, scissors") {
			t.Fatalf("GET %s: %d", a.URL, res.StatusCode)
		}
		playGame(t, a.URL, b.URL)
	})

	t.Run("nats CLI tickets and a bad one", func(t *testing.T) {
		results := testkit.StartSub(t, s.OperatorURL(), "results.>")
		deadLetters := testkit.StartSub(t, s.OperatorURL(), "deadletter.>")
		testkit.CLI(t, s.OperatorURL(), "pub", "matchmaking.eu.gold", "this is not a ticket")
		testkit.CLI(t, s.OperatorURL(), "pub", "matchmaking.eu.gold", `{"player_id":"carol","mode":"1v1","skill":1650}`)
		testkit.CLI(t, s.OperatorURL(), "pub", "matchmaking.eu.gold", `{"player_id":"dave","mode":"1v1","skill":1700}`)
		testkit.Eventually(t, 15*time.Second, func() bool {
			out := results.String()
			return strings.Count(out, `"status":"assigned"`) == 2 && strings.Contains(out, "results.carol") && strings.Contains(out, "results.dave")
		}, "nats sub shows:\n%s", results.String())
		testkit.Eventually(t, 5*time.Second, func() bool {
			return strings.Contains(deadLetters.String(), "deadletter.matcher") && strings.Contains(deadLetters.String(), "not a JSON object")
		}, "no dead letter for the bad ticket:\n%s", deadLetters.String())
	})
}

// devToken is a player's token from the frontend's development issuer,
// as the page gets it.
func devToken(t *testing.T, fe, player string) string {
	t.Helper()
	var tok struct {
		Token    string `json:"token"`
		PlayerID string `json:"player_id"`
	}
	if code := httpJSON(t, "", http.MethodPost, fe+"/dev/token", `{"player_id":"`+player+`"}`, &tok); code != http.StatusOK || tok.PlayerID != player {
		t.Fatalf("POST /dev/token for %s: %d %+v", player, code, tok)
	}
	return tok.Token
}

// devServerToken is a server token (a game backend's) from the frontend's
// development issuer.
func devServerToken(t *testing.T, fe string) string {
	t.Helper()
	var tok struct {
		Token string `json:"token"`
	}
	if code := httpJSON(t, "", http.MethodPost, fe+"/dev/token", `{"server":true}`, &tok); code != http.StatusOK || tok.Token == "" {
		t.Fatalf("POST /dev/token for a server token: %d %+v", code, tok)
	}
	return tok.Token
}

// matchPair queues two players of one shard over HTTP, each with its own
// token, and waits until both are assigned.
func matchPair(t *testing.T, fe, p1, p2 string) []ticketView {
	t.Helper()
	var ids, toks []string
	for _, p := range []string{p1, p2} {
		var v ticketView
		tok := devToken(t, fe, p)
		code := httpJSON(t, tok, http.MethodPost, fe+"/v1/tickets", `{"player_id":"`+p+`","mode":"1v1","skill":1650,"region":"eu"}`, &v)
		if code != http.StatusAccepted || v.Status != "queued" || v.TicketID == "" {
			t.Fatalf("POST %s: %d %+v", p, code, v)
		}
		ids, toks = append(ids, v.TicketID), append(toks, tok)
	}
	views := make([]ticketView, 2)
	for i, id := range ids {
		testkit.Eventually(t, 15*time.Second, func() bool {
			httpJSON(t, toks[i], http.MethodGet, fe+"/v1/tickets/"+id, "", &views[i])
			return views[i].Status == "assigned"
		}, "ticket %s is %q", id, views[i].Status)
	}
	return views
}

// dial opens a player's WebSocket to the room of its assignment URL
// (play.ParseURL, play.SocketURL: what the play page does).
func dial(t *testing.T, assignmentURL string) *websocket.Conn {
	t.Helper()
	base, j, err := play.ParseURL(assignmentURL)
	if err != nil {
		t.Fatal(err)
	}
	ws := play.SocketURL(base, j)
	c, _, err := websocket.DefaultDialer.DialContext(context.Background(), ws, nil)
	if err != nil {
		t.Fatalf("join %s: %v", ws, err)
	}
	return c
}

// join is dial, closed when the test ends.
func join(t *testing.T, assignmentURL string) *websocket.Conn {
	t.Helper()
	c := dial(t, assignmentURL)
	t.Cleanup(func() { c.Close() })
	return c
}

// TestFullGameServersStopNewTickets fills both game servers (one room
// each) and checks that the frontend then refuses tickets with 503 and
// Retry-After: capacity flows from the game servers' /status through the
// allocator's reports to the frontend.
func TestFullGameServersStopNewTickets(t *testing.T) {
	s := startStack(t, func(c *stack.Config) { c.GameMaxRooms = 1 })
	fe := s.FrontendURL()
	for _, pair := range [][2]string{{"a1", "b1"}, {"a2", "b2"}} {
		views := matchPair(t, fe, pair[0], pair[1])
		join(t, views[0].Assignment.URL)
		join(t, views[1].Assignment.URL)
	}
	var body map[string]any
	var code int
	late := devToken(t, fe, "late")
	testkit.Eventually(t, 15*time.Second, func() bool {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, fe+"/v1/tickets", strings.NewReader(`{"player_id":"late","skill":1650,"region":"eu"}`))
		req.Header.Set("Authorization", "Bearer "+late)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		code = res.StatusCode
		_ = json.NewDecoder(res.Body).Decode(&body)
		return code == http.StatusServiceUnavailable && res.Header.Get("Retry-After") != ""
	}, "tickets still accepted with every server full: %d %v", code, body)
	if !strings.Contains(body["error"].(string), "capacity") {
		t.Fatalf("503 body: %v", body)
	}
}

// playGame joins both players to their room and plays until someone wins.
func playGame(t *testing.T, urlA, urlB string) {
	t.Helper()
	var conns []*websocket.Conn
	for _, raw := range []string{urlA, urlB} {
		c := dial(t, raw)
		defer c.Close()
		conns = append(conns, c)
	}
	read := func(c *websocket.Conn, typ string) map[string]any {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		for {
			_, data, err := c.ReadMessage()
			if err != nil {
				t.Fatalf("waiting for %s: %v", typ, err)
			}
			var m map[string]any
			_ = json.Unmarshal(data, &m)
			if m["type"] == typ || m["type"] == "over" {
				return m
			}
		}
	}
	read(conns[0], "start")
	read(conns[1], "start")
	for round := 0; round < 10; round++ {
		_ = conns[0].WriteMessage(websocket.TextMessage, []byte(`{"type":"move","move":"rock"}`))
		_ = conns[1].WriteMessage(websocket.TextMessage, []byte(`{"type":"move","move":"scissors"}`))
		m := read(conns[0], "round")
		read(conns[1], "round")
		if m["type"] == "over" {
			t.Fatalf("game ended early: %v", m)
		}
		// Player A plays rock against scissors: A wins every round.
		score := m["score"].(map[string]any)
		for name, points := range score {
			if points == 2.0 {
				over := read(conns[0], "over")
				if over["winner"] != name || points == score[otherKey(score, name)] {
					t.Fatalf("over: %v after %v", over, score)
				}
				return
			}
		}
	}
	t.Fatal("no winner after 10 rounds")
}

func otherKey(m map[string]any, key string) string {
	for k := range m {
		if k != key {
			return k
		}
	}
	return ""
}

// TestLoadHold runs the load tool against a frontend alone, the way
// BENCHMARKS.md does, with a few clients of each kind. Overload control is
// off, as there: the clients come at once, faster than creations answer
// on a race build, and what is measured is clients held, not admission.
func TestLoadHold(t *testing.T) {
	s := startStack(t, func(c *stack.Config) {
		c.Services = []string{"frontend"}
		c.Env = []string{"RATE_LIMIT=0", "OVERLOAD_TARGET=0"}
	})
	for _, args := range [][]string{{"-kind", "sse", "-proto", "h2c"}, {"-kind", "sse", "-proto", "http1"}, {"-kind", "ws"}} {
		cmd := exec.CommandContext(t.Context(), filepath.Join(binDir, "load"), append([]string{"hold", "-url", s.FrontendURL(), "-token-key", s.DevIssuerKeyFile(), "-clients", "200", "-hold", "500ms", "-settle", "100ms", "-json"}, args...)...)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("load hold %v: %v\n%s", args, err, out)
		}
		var r struct {
			Waiting, Failed int64
			Open            float64 `json:"server_open_connections"`
		}
		if err := json.Unmarshal(out, &r); err != nil {
			t.Fatalf("load hold %v output: %v\n%s", args, err, out)
		}
		if r.Waiting != 200 || r.Failed != 0 || r.Open != 200 {
			t.Fatalf("load hold %v: %s", args, out)
		}
	}
}

// TestLoadRooms runs the load tool's rooms mode against a game server of
// the stack, the way BENCHMARKS.md does, with a few rooms.
func TestLoadRooms(t *testing.T) {
	s := startStack(t, func(c *stack.Config) { c.Services = []string{"game"} })
	cmd := exec.CommandContext(t.Context(), filepath.Join(binDir, "load"), "rooms", "-url", s.GameURL(0), "-join-key-file", s.JoinKeyFile(), "-rooms", "50", "-settle", "200ms", "-json")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("load rooms: %v\n%s", err, out)
	}
	var r struct {
		Started, Failed int64
		ServerRooms     float64 `json:"server_rooms"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("output: %v\n%s", err, out)
	}
	if r.Started != 50 || r.Failed != 0 || r.ServerRooms != 50 {
		t.Fatalf("load rooms: %s", out)
	}
}

// TestLoadRun runs the load tool's open-arrival mode against the whole
// stack, briefly: every ticket with a partner is assigned.
func TestLoadRun(t *testing.T) {
	s := startStack(t, func(c *stack.Config) { c.Env = []string{"RATE_LIMIT=0"} })
	// 60 tickets over the 3 regions: 20 each, all paired. Over HTTP to the
	// frontend, then straight onto JetStream as a game backend would.
	// Over HTTP every player has its own token, minted with the stack's
	// development issuer key; NATS has no player identity.
	for _, via := range [][]string{{"-via", "http", "-url", s.FrontendURL(), "-token-key", s.DevIssuerKeyFile()}, {"-via", "nats", "-nats-url", s.OperatorURL()}} {
		t.Run(via[1], func(t *testing.T) {
			args := append([]string{"run", "-rate", "60", "-duration", "1s", "-interval", "500ms", "-timeout", "20s", "-json"}, via...)
			out, err := exec.CommandContext(t.Context(), filepath.Join(binDir, "load"), args...).Output()
			if err != nil {
				t.Fatalf("load run: %v\n%s", err, out)
			}
			var r struct {
				Sent     int64              `json:"tickets_sent"`
				Assigned int64              `json:"assigned"`
				Errors   map[string]int64   `json:"errors_by_kind"`
				Latency  map[string]float64 `json:"latency_ms"`
				Accepted map[string]float64 `json:"accepted_ms"`
				Windows  []struct {
					From     float64            `json:"from_seconds"`
					Sent     int64              `json:"tickets_sent"`
					Assigned int64              `json:"assigned"`
					Latency  map[string]float64 `json:"latency_ms"`
				} `json:"windows"`
			}
			if err := json.Unmarshal(out, &r); err != nil {
				t.Fatalf("output: %v\n%s", err, out)
			}
			if r.Sent != 60 || r.Assigned != 60 || len(r.Errors) != 0 || r.Latency["max"] <= 0 || r.Accepted["max"] <= 0 || r.Accepted["max"] > r.Latency["max"] {
				t.Fatalf("load run: %s", out)
			}
			// Two half-second windows of 30 arrivals each, every one assigned.
			if len(r.Windows) != 2 || r.Windows[1].From != 0.5 {
				t.Fatalf("windows: %s", out)
			}
			for _, w := range r.Windows {
				if w.Sent != 30 || w.Assigned != 30 || w.Latency["max"] <= 0 || w.Latency["max"] > r.Latency["max"] {
					t.Fatalf("window %+v of %s", w, out)
				}
			}
		})
	}
}

// The stack's NATS (make run's) takes no client without credentials:
// results.> carries every player's join token. It listens on loopback
// only, whatever the services' host, and the operator's credentials it
// prints work, written to a file only its owner reads.
func TestStackNATSNeedsCredentials(t *testing.T) {
	s := startStack(t, func(c *stack.Config) { c.Services = []string{"game"} })
	nc, err := nats.Connect(s.NATSURL(), nats.MaxReconnects(0))
	if err == nil {
		nc.Close()
		t.Fatalf("connected to %s without credentials", s.NATSURL())
	}
	if !strings.HasPrefix(s.NATSURL(), "nats://127.0.0.1:") {
		t.Errorf("NATS listens on %s", s.NATSURL())
	}
	nc, err = nats.Connect(s.OperatorURL(), nats.MaxReconnects(0))
	if err != nil {
		t.Fatalf("operator: %v", err)
	}
	nc.Close()
	fi, err := os.Stat(s.NATSEnvFile())
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s: %v %v", s.NATSEnvFile(), fi, err)
	}
	env, _ := os.ReadFile(s.NATSEnvFile())
	if !strings.Contains(string(env), "NATS_USER=operator\n") || !strings.Contains(string(env), "NATS_PASSWORD=") {
		t.Errorf("%s:\n%s", s.NATSEnvFile(), env)
	}
}

// violations records the lines of service logs in which NATS refused
// something.
type violations struct {
	mu    sync.Mutex
	lines []string
	next  io.Writer
}

func (v *violations) Write(p []byte) (int, error) {
	// "Permissions Violation", as NATS says it; not any "permission" (the
	// test's own name is in the paths some services log).
	if s := string(p); strings.Contains(strings.ToLower(s), "permissions violation") {
		v.mu.Lock()
		v.lines = append(v.lines, strings.TrimSpace(s))
		v.mu.Unlock()
	}
	return v.next.Write(p)
}

func (v *violations) all() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]string(nil), v.lines...)
}

// The whole flow works with each service logged in as its own NATS user
// of deploy/nats/nats.conf, least privilege: two players over HTTP are
// matched, assigned and play; an operator's hand-typed tickets are
// assigned; and no service ever hits a permission violation.
func TestEndToEndWithNATSPermissions(t *testing.T) {
	root, err := testkit.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	v := &violations{next: io.Discard}
	if testing.Verbose() {
		v.next = logWriter{t}
	}
	s := startStack(t, func(c *stack.Config) {
		c.NATSConfig = filepath.Join(root, "deploy", "nats", "nats.conf")
		c.Logs = v
	})
	views := matchPair(t, s.FrontendURL(), "erin", "frank")
	playGame(t, views[0].Assignment.URL, views[1].Assignment.URL)

	// A cancel goes from the frontend to the matchers (cancels.*.*).
	var tv ticketView
	ivan := devToken(t, s.FrontendURL(), "ivan")
	if code := httpJSON(t, ivan, http.MethodPost, s.FrontendURL()+"/v1/tickets", `{"player_id":"ivan","mode":"5v5","skill":100,"region":"us"}`, &tv); code != http.StatusAccepted {
		t.Fatalf("POST: %d %+v", code, tv)
	}
	if code := httpJSON(t, ivan, http.MethodDelete, s.FrontendURL()+"/v1/tickets/"+tv.TicketID, "", &tv); code != http.StatusOK || tv.Status != "cancelled" {
		t.Fatalf("DELETE: %d %+v", code, tv)
	}

	u, _ := url.Parse(s.NATSURL())
	u.User = url.UserPassword("operator", s.NATSPassword("operator"))
	results := testkit.StartSub(t, u.String(), "results.>")
	testkit.CLI(t, u.String(), "pub", "matchmaking.eu.gold", `{"player_id":"gina","mode":"1v1","skill":1650}`)
	testkit.CLI(t, u.String(), "pub", "matchmaking.eu.gold", `{"player_id":"hank","mode":"1v1","skill":1700}`)
	testkit.Eventually(t, 15*time.Second, func() bool {
		return strings.Count(results.String(), `"status":"assigned"`) == 2
	}, "nats sub shows:\n%s", results.String())
	if _, err := testkit.TryCLI(t, s.NATSURL(), "pub", "matchmaking.eu.gold", `{"player_id":"x","mode":"1v1","skill":1}`); err == nil {
		t.Error("a publish without credentials was accepted")
	}
	time.Sleep(time.Second) // a late refusal would be logged by now
	if lines := v.all(); len(lines) > 0 {
		t.Fatalf("permission violations:\n%s", strings.Join(lines, "\n"))
	}
}
