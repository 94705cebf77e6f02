package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/quickmatch-dev/quickmatch/pkg/agones"
	"github.com/quickmatch-dev/quickmatch/pkg/agones/sdk/sdktest"
	"github.com/quickmatch-dev/quickmatch/pkg/jointoken"
	"github.com/quickmatch-dev/quickmatch/pkg/play"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/ops"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// TestSIGTERMDrainsRunningRooms runs the real binary against a fake Agones
// sidecar: a game is under way when SIGTERM arrives; new rooms are refused,
// the running game is played to its end, the process exits 0 and asks
// Agones to shut the game server down.
func TestSIGTERMDrainsRunningRooms(t *testing.T) {
	fake := sdktest.New(t, sdktest.Options{Lists: map[string]int64{agones.ListRooms: 4, agones.ListPlayers: 8}})
	dir := t.TempDir()
	signer, pubPath := keyPair(t, dir, "join")
	cmd, addr, log := startGame(t, "JOIN_PUBLIC_KEYS="+pubPath, "AGONES_SDK="+fake.URL,
		"BEST_OF=1", "SHUTDOWN_GRACE=20s", "HEALTH_INTERVAL=100ms")
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	wait := func(cond func() bool, msg string) { t.Helper(); testkit.Eventually(t, 15*time.Second, cond, msg) }
	wait(func() bool { return fake.GameServer().Status.State == "Ready" }, "never Ready")
	if err := fake.Allocate(sdktest.RoomAllocation("m1", agones.Room{Mode: "1v1", Teams: [][]string{{"a"}, {"b"}}})); err != nil {
		t.Fatal(err)
	}
	dial := func(matchID, player string) (*websocket.Conn, error) {
		tok, _ := signer.Sign(jointoken.Grant{MatchID: matchID, PlayerID: player, Expires: time.Now().Add(time.Minute)})
		c, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/ws?room="+matchID+"&token="+url.QueryEscape(tok), nil)
		return c, err
	}
	read := func(c *websocket.Conn, typ string) map[string]any {
		t.Helper()
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		for {
			var m map[string]any
			if err := c.ReadJSON(&m); err != nil {
				t.Fatalf("waiting for %s: %v", typ, err)
			}
			if m["type"] == typ {
				return m
			}
		}
	}
	a, err := dial("m1", "a")
	if err != nil {
		t.Fatal(err)
	}
	b, err := dial("m1", "b")
	if err != nil {
		t.Fatal(err)
	}
	read(a, "start")
	read(b, "start")

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// New rooms are refused once it says it drains: a fixed 300 ms was
	// not always enough for the signal to be handled on a loaded machine.
	wait(func() bool { return strings.Contains(log.String(), "draining: no new rooms") }, "never said it drains after SIGTERM")
	select {
	case err := <-exited:
		t.Fatalf("exited with a game running: %v", err)
	default:
	}
	if err := fake.Allocate(sdktest.RoomAllocation("m2", agones.Room{Mode: "1v1", Teams: [][]string{{"c"}, {"d"}}})); err != nil {
		t.Fatal(err)
	}
	if _, err := dial("m2", "c"); err == nil {
		t.Fatal("a new room opened after SIGTERM")
	}
	_ = a.WriteMessage(websocket.TextMessage, []byte(`{"type":"move","move":"paper"}`))
	_ = b.WriteMessage(websocket.TextMessage, []byte(`{"type":"move","move":"rock"}`))
	if over := read(b, "over"); over["winner"] != "a" {
		t.Fatalf("over: %v", over)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("did not exit after its rooms finished")
	}
	if st := fake.GameServer().Status.State; st != "Shutdown" {
		t.Fatalf("agones state %q, want Shutdown", st)
	}
}

// TestJoinKeysRequired: a game server without public keys, or with a
// private key where its public keys belong, does not start.
func TestJoinKeysRequired(t *testing.T) {
	dir := t.TempDir()
	privPath, pubPath := filepath.Join(dir, "join.key"), filepath.Join(dir, "join.pub")
	if err := jointoken.EnsureKeyPair(privPath, pubPath); err != nil {
		t.Fatal(err)
	}
	for name, args := range map[string][]string{
		"no keys":     {"-http-addr", "127.0.0.1:0"},
		"private key": {"-http-addr", "127.0.0.1:0", "-join-public-keys", privPath},
	} {
		err := run(t.Context(), append(args, "-log-format", "text"))
		if err == nil || !strings.Contains(err.Error(), "join") {
			t.Errorf("%s: run = %v", name, err)
		}
	}
}

// TestJoinKeyRotation runs the real binary with a directory of public
// keys and rotates them while it serves: a second key is added, then the
// first removed. Joins with tokens of each key are admitted exactly while
// its public key is in the directory; the process is never restarted.
func TestJoinKeyRotation(t *testing.T) {
	dir := t.TempDir()
	keysDir := filepath.Join(dir, "public")
	signers := map[string]*jointoken.Signer{}
	for _, name := range []string{"old", "new"} {
		signers[name], _ = keyPair(t, dir, name)
	}
	place := func(name string) {
		t.Helper()
		data, err := os.ReadFile(filepath.Join(dir, name+".pub"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(keysDir, name+".pem"), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(keysDir, 0o755); err != nil {
		t.Fatal(err)
	}
	place("old")
	cmd, addr, _ := startGame(t, "JOIN_PUBLIC_KEYS="+keysDir, "JOIN_PUBLIC_KEYS_RELOAD=50ms", "AGONES_SDK=none")
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	room := 0
	// joins says whether a token of key name admits, to a room of its own.
	joins := func(name string) bool {
		room++
		id := fmt.Sprintf("m%d", room)
		tok, err := signers[name].Sign(jointoken.Grant{MatchID: id, PlayerID: "a", Expires: time.Now().Add(time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		c, res, err := websocket.DefaultDialer.Dial("ws://"+addr+"/ws?room="+id+"&token="+url.QueryEscape(tok), nil)
		if err == nil {
			c.Close()
			return true
		}
		if res == nil {
			return false // not listening yet
		}
		if res.StatusCode != 403 {
			t.Fatalf("join with the %s key: %v (status %d)", name, err, res.StatusCode)
		}
		return false
	}
	eventually := func(cond func() bool, msg string) { t.Helper(); testkit.Eventually(t, 15*time.Second, cond, msg) }
	eventually(func() bool { return joins("old") }, "the old key never admitted")
	if joins("new") {
		t.Fatal("the new key admitted before it was added")
	}
	place("new")
	eventually(func() bool { return joins("new") }, "the added key never admitted")
	if !joins("old") {
		t.Fatal("the old key stopped admitting while both are listed")
	}
	if err := os.Remove(filepath.Join(keysDir, "old.pem")); err != nil {
		t.Fatal(err)
	}
	eventually(func() bool { return !joins("old") }, "the removed key still admits")
	if !joins("new") {
		t.Fatal("the new key stopped admitting")
	}
}

// startGame builds the game server and starts it with env (on top of the
// test's environment) on port 0, logging text to the test's stderr; it
// returns the process, the address it said it listens on and what it
// logs (so far, at each read). Killing it is the caller's (cleanup, or
// its own signal).
func startGame(t *testing.T, env ...string) (*exec.Cmd, string, *testkit.SyncBuffer) {
	t.Helper()
	cmd, addrs, log := startGameOn(t, []string{ops.NameHTTP}, env...)
	return cmd, addrs[ops.NameHTTP], log
}

// startGameOn is startGame, returning the address of each listener names
// has (ops.NameHTTP, ops.NameOps) once it said where it listens.
func startGameOn(t *testing.T, names []string, env ...string) (*exec.Cmd, map[string]string, *testkit.SyncBuffer) {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "game")
	if out, err := exec.Command("go", "build", "-race", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin)
	cmd.Env = append(append(os.Environ(), "HTTP_ADDR=127.0.0.1:0", "LOG_FORMAT=text"), env...)
	lines, w := io.Pipe()
	cmd.Stdout, cmd.Stderr = os.Stderr, io.MultiWriter(os.Stderr, w)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = w.Close() })
	found := make(chan map[string]string, 1)
	log := &testkit.SyncBuffer{}
	go func() {
		addrs := map[string]string{}
		sc := bufio.NewScanner(lines)
		for sc.Scan() {
			if name, addr, ok := listening(sc.Text()); ok && slices.Contains(names, name) && len(addrs) < len(names) {
				addrs[name] = addr
				if len(addrs) == len(names) {
					found <- addrs
				}
			}
			fmt.Fprintln(log, sc.Text())
		}
		_, _ = io.Copy(log, lines) // the rest, after a line too long for the scanner
	}()
	select {
	case addrs := <-found:
		return cmd, addrs, log
	case <-time.After(30 * time.Second):
		t.Fatalf("the game server never said where its listeners %v are", names)
		return nil, nil, nil
	}
}

// listening is the listener's name and address of the line ops.Listen
// logs (text format).
func listening(line string) (name, addr string, ok bool) {
	f := strings.Fields(line)
	if !slices.Contains(f, "msg="+ops.ListeningMsg) {
		return "", "", false
	}
	for _, kv := range f {
		if v, found := strings.CutPrefix(kv, "addr="); found {
			addr = v
		}
		if v, found := strings.CutPrefix(kv, "name="); found {
			name = v
		}
	}
	return name, addr, name != "" && addr != ""
}

// keyPair makes the join key pair name in dir: the signer of its private
// key, and the path of its public key.
func keyPair(t *testing.T, dir, name string) (*jointoken.Signer, string) {
	t.Helper()
	privPath, pubPath := filepath.Join(dir, name+".key"), filepath.Join(dir, name+".pub")
	if err := jointoken.EnsureKeyPair(privPath, pubPath); err != nil {
		t.Fatal(err)
	}
	priv, err := jointoken.LoadPrivateKey(privPath)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := jointoken.NewSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	return signer, pubPath
}

// TestOpsPathsAreOffThePlayersPort: with -ops-addr set, the port players
// reach serves the play page and the WebSocket only: /status (the open
// match ids, the ids of players seated in rooms asking for backfill) and
// /metrics answer on the ops port alone.
func TestOpsPathsAreOffThePlayersPort(t *testing.T) {
	dir := t.TempDir()
	_, pubPath := keyPair(t, dir, "join")
	cmd, addrs, _ := startGameOn(t, []string{ops.NameHTTP, ops.NameOps},
		"JOIN_PUBLIC_KEYS="+pubPath, "AGONES_SDK=none", "OPS_ADDR=127.0.0.1:0")
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	get := func(addr, path string) int {
		t.Helper()
		res, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	for path, want := range map[string][2]int{
		play.StatusPath: {404, 200}, "/metrics": {404, 200}, "/healthz": {404, 200},
		play.PagePath: {200, 404},
	} {
		if got := [2]int{get(addrs[ops.NameHTTP], path), get(addrs[ops.NameOps], path)}; got != want {
			t.Errorf("GET %s: %d on the players' port and %d on the ops port, want %v", path, got[0], got[1], want)
		}
	}
}
