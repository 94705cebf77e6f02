package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/quickmatch-dev/quickmatch/pkg/jointoken"
	"github.com/quickmatch-dev/quickmatch/pkg/play"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/envflag"
)

type roomsResult struct {
	Rooms         int     `json:"rooms"`
	Started       int64   `json:"started"`
	Failed        int64   `json:"failed"`
	ServerRooms   float64 `json:"server_rooms"`
	ServerPlayers float64 `json:"server_players"`
	memory
	RSSPerRoom  float64  `json:"rss_bytes_per_room"`
	HeapPerRoom float64  `json:"heap_bytes_per_room"`
	FirstErrors []string `json:"first_errors,omitempty"`
}

// rooms opens N rooms on one game server, two players each (signing their
// join tokens with a private key whose public key the server holds), waits
// until every game has started, and reports the game server's memory per
// room from /metrics.
// Run it against a game server alone (bin/game with JOIN_PUBLIC_KEYS and
// MAX_ROOMS set), each room costs the client two sockets.
func rooms(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flagSet("rooms", stdout)
	base := fs.String("url", "http://127.0.0.1:7000", "game server base URL")
	metrics := fs.String("metrics-url", "", "the game server's /metrics URL, on its -ops-addr when set (default: -url's)")
	n := fs.Int("rooms", 1000, "rooms to open (two players each)")
	keyFile := fs.String("join-key-file", "", "PEM file of an Ed25519 private key whose public key is in the game server's -join-public-keys (required)")
	rate := fs.Float64("rate", 500, "rooms opened per second")
	settle := fs.Duration("settle", 3*time.Second, "pause before reading the server's memory")
	jsonOut := fs.Bool("json", false, "print the result as JSON")
	if err := envflag.Parse(fs, args); err != nil {
		return err
	}
	if *keyFile == "" {
		return fmt.Errorf("-join-key-file is required: the private key that signs the join tokens")
	}
	key, err := jointoken.LoadPrivateKey(*keyFile)
	if err != nil {
		return err
	}
	signer, err := jointoken.NewSigner(key)
	if err != nil {
		return err
	}
	metricsURL := *metrics
	if metricsURL == "" {
		metricsURL = strings.TrimRight(*base, "/") + "/metrics"
	}
	before, err := scrape(ctx, metricsURL)
	if err != nil {
		return err
	}
	res := roomsResult{Rooms: *n}
	res.before(before)
	f := &filler{base: strings.TrimRight(*base, "/"), signer: signer}
	run := runID()
	holdCtx, release := context.WithCancel(ctx)
	defer release()
	var wg sync.WaitGroup
	ramp(*n, *rate, func(i int) bool {
		room := fmt.Sprintf("bench-%s-%d", run, i)
		for team, p := range []string{"a", "b"} {
			seat := jointoken.Seat{Team: team, Teams: 2, TeamSize: 1} // a 1v1, seated as the allocator seats it
			wg.Go(func() { f.join(holdCtx, room, p, seat) })
		}
		return true
	})
	// A room with a failed join never starts: each counts its two players.
	awaitAll(ctx, func() bool { return f.started.Load()+f.failed.count()/2 >= int64(*n) })
	time.Sleep(*settle)
	after, err := scrape(ctx, metricsURL)
	if err != nil {
		return err
	}
	res.Started, res.Failed = f.started.Load(), f.failed.count()
	res.ServerRooms, res.ServerPlayers = after["quickmatch_game_rooms"], after["quickmatch_game_players_connected"]
	res.after(after)
	res.RSSPerRoom, res.HeapPerRoom = res.per(res.ServerRooms)
	res.FirstErrors = f.failed.sample()
	release()
	wg.Wait()
	if *jsonOut {
		return printJSON(stdout, res)
	}
	res.print(stdout)
	return nil
}

// print is the text form of the result.
func (res roomsResult) print(stdout io.Writer) {
	fmt.Fprintf(stdout, "rooms      %d asked, %d games started, %d failed joins\n", res.Rooms, res.Started, res.Failed)
	fmt.Fprintf(stdout, "server     %v rooms, %v players, %v goroutines\n", res.ServerRooms, res.ServerPlayers, res.Goroutines)
	fmt.Fprintf(stdout, "memory     RSS %.1f -> %.1f MiB, heap %.1f -> %.1f MiB\n", res.RSSBefore/(1<<20), res.RSSAfter/(1<<20), res.HeapBefore/(1<<20), res.HeapAfter/(1<<20))
	fmt.Fprintf(stdout, "per room   %.1f KiB RSS, %.1f KiB heap (two connected players)\n", res.RSSPerRoom/1024, res.HeapPerRoom/1024)
	for _, e := range res.FirstErrors {
		fmt.Fprintln(stdout, "error     ", e)
	}
}

// filler joins players to rooms of one game server.
type filler struct {
	base    string
	signer  *jointoken.Signer
	started atomic.Int64 // games started, counted by each room's player "a"
	failed  failures
}

// join signs player p's join token for room and seat, joins it over the
// WebSocket and stays until ctx ends, counting the game's start.
func (f *filler) join(ctx context.Context, room, p string, seat jointoken.Seat) {
	tok, err := f.signer.Sign(jointoken.Grant{MatchID: room, PlayerID: p, Expires: time.Now().Add(time.Hour), Seat: seat})
	if err != nil {
		f.failed.add(err)
		return
	}
	c, _, err := websocket.DefaultDialer.DialContext(ctx, play.SocketURL(f.base, play.Join{MatchID: room, Token: tok}), nil)
	if err != nil {
		f.failed.add(err)
		return
	}
	defer c.Close()
	go func() { <-ctx.Done(); c.Close() }()
	counted := false
	for {
		_, data, err := c.ReadMessage()
		if err != nil {
			return
		}
		var m struct {
			Type string `json:"type"`
		}
		if !counted && json.Unmarshal(data, &m) == nil && m.Type == "start" && p == "a" {
			counted = true
			f.started.Add(1)
		}
	}
}
