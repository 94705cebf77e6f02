package main

import (
	"bufio"
	"fmt"
	"io"
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
	cmd, addr := startGame(t, "JOIN_PUBLIC_KEYS="+pubPath, "AGONES_SDK="+fake.URL,
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
	time.Sleep(300 * time.Millisecond)
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
	cmd, addr := startGame(t, "JOIN_PUBLIC_KEYS="+keysDir, "JOIN_PUBLIC_KEYS_RELOAD=50ms", "AGONES_SDK=none")
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
// returns the process and the address it said it listens on. Killing it
// is the caller's (cleanup, or its own signal).
func startGame(t *testing.T, env ...string) (*exec.Cmd, string) {
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
	addrs := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(lines)
		for sc.Scan() {
			if addr, ok := listening(sc.Text()); ok {
				select {
				case addrs <- addr:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, lines) // a line too long for the scanner
	}()
	select {
	case addr := <-addrs:
		return cmd, addr
	case <-time.After(30 * time.Second):
		t.Fatal("the game server never said where it listens")
		return nil, ""
	}
}

// listening is the address of the line ops.Listen logs (text format) for
// the HTTP listener.
func listening(line string) (string, bool) {
	f := strings.Fields(line)
	if !slices.Contains(f, "msg="+ops.ListeningMsg) || !slices.Contains(f, "name="+ops.NameHTTP) {
		return "", false
	}
	for _, kv := range f {
		if addr, ok := strings.CutPrefix(kv, "addr="); ok {
			return addr, true
		}
	}
	return "", false
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
