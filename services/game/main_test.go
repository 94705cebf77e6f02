package main

import (
	"encoding/hex"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/quickmatch-dev/quickmatch/pkg/agones"
	"github.com/quickmatch-dev/quickmatch/pkg/agones/sdk/sdktest"
	"github.com/quickmatch-dev/quickmatch/pkg/jointoken"
)

// TestSIGTERMDrainsRunningRooms runs the real binary against a fake Agones
// sidecar: a game is under way when SIGTERM arrives; new rooms are refused,
// the running game is played to its end, the process exits 0 and asks
// Agones to shut the game server down.
func TestSIGTERMDrainsRunningRooms(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "game")
	if out, err := exec.Command("go", "build", "-race", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	fake := sdktest.New(t, sdktest.Options{Counters: map[string]int64{agones.CounterRooms: 4}, Lists: map[string]int64{agones.ListPlayers: 8}})
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	secret := []byte("sigterm-test-secret-0123")
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "HTTP_ADDR="+addr, "JOIN_SECRET="+hexOf(secret), "AGONES_SDK="+fake.URL,
		"BEST_OF=1", "SHUTDOWN_GRACE=20s", "LOG_FORMAT=text", "HEALTH_INTERVAL=100ms")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	wait := func(cond func() bool, msg string) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatal(msg)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	wait(func() bool { return fake.GameServer().Status.State == "Ready" }, "never Ready")
	if err := fake.Allocate(map[string]string{agones.MatchAnnotationPrefix + "m1": "a,b"}, map[string]int64{agones.CounterRooms: 1}, map[string][]string{agones.ListPlayers: {"a", "b"}}); err != nil {
		t.Fatal(err)
	}
	dial := func(room, player string) (*websocket.Conn, error) {
		tok, _ := jointoken.Sign(secret, jointoken.Claims{MatchID: room, PlayerID: player, Expires: time.Now().Add(time.Minute)})
		c, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/ws?room="+room+"&token="+url.QueryEscape(tok), nil)
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
	if err := fake.Allocate(map[string]string{agones.MatchAnnotationPrefix + "m2": "c,d"}, map[string]int64{agones.CounterRooms: 1}, nil); err != nil {
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

func hexOf(b []byte) string { return hex.EncodeToString(b) }
