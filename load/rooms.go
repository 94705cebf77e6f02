package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/quickmatch-dev/quickmatch/pkg/jointoken"
)

type roomsResult struct {
	Rooms         int      `json:"rooms"`
	Started       int64    `json:"started"`
	Failed        int64    `json:"failed"`
	ServerRooms   float64  `json:"server_rooms"`
	ServerPlayers float64  `json:"server_players"`
	RSSBefore     float64  `json:"rss_before_bytes"`
	RSSAfter      float64  `json:"rss_after_bytes"`
	HeapBefore    float64  `json:"heap_inuse_before_bytes"`
	HeapAfter     float64  `json:"heap_inuse_after_bytes"`
	Goroutines    float64  `json:"goroutines_after"`
	RSSPerRoom    float64  `json:"rss_bytes_per_room"`
	HeapPerRoom   float64  `json:"heap_bytes_per_room"`
	FirstErrors   []string `json:"first_errors,omitempty"`
}

// rooms opens N rooms on one game server, two players each (signing their
// join tokens with a private key whose public key the server holds), waits
// until every game has started, and reports the game server's memory per
// room from /metrics.
// Run it against a game server alone (bin/game with JOIN_PUBLIC_KEYS and
// MAX_ROOMS set), each room costs the client two sockets.
func rooms(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("rooms", flag.ContinueOnError)
	base := fs.String("url", "http://127.0.0.1:7000", "game server base URL")
	n := fs.Int("rooms", 1000, "rooms to open (two players each)")
	keyFile := fs.String("join-key-file", "", "PEM file of an Ed25519 private key whose public key is in the game server's -join-public-keys (required)")
	rate := fs.Float64("rate", 500, "rooms opened per second")
	settle := fs.Duration("settle", 3*time.Second, "pause before reading the server's memory")
	jsonOut := fs.Bool("json", false, "print the result as JSON")
	if err := fs.Parse(args); err != nil {
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
	metricsURL := strings.TrimRight(*base, "/") + "/metrics"
	before, err := scrape(ctx, metricsURL)
	if err != nil {
		return err
	}
	res := roomsResult{Rooms: *n, RSSBefore: before["process_resident_memory_bytes"], HeapBefore: before["go_memstats_heap_inuse_bytes"]}
	ws := strings.Replace(strings.TrimRight(*base, "/"), "http", "ws", 1) + "/ws?"
	run := fmt.Sprintf("%x", time.Now().UnixNano()&0xffffff)
	var started atomic.Int64
	var failed failures
	fail := failed.add
	holdCtx, release := context.WithCancel(ctx)
	defer release()
	var wg sync.WaitGroup
	start := time.Now()
	interval := time.Duration(float64(time.Second) / *rate)
	for i := range *n {
		room := fmt.Sprintf("bench-%s-%d", run, i)
		for _, p := range []string{"a", "b"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				tok, err := signer.Sign(jointoken.Grant{MatchID: room, PlayerID: p, Expires: time.Now().Add(time.Hour)})
				if err != nil {
					fail(err)
					return
				}
				c, _, err := websocket.DefaultDialer.DialContext(holdCtx, ws+url.Values{"room": {room}, "token": {tok}}.Encode(), nil)
				if err != nil {
					fail(err)
					return
				}
				defer c.Close()
				go func() { <-holdCtx.Done(); c.Close() }()
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
						started.Add(1)
					}
				}
			}()
		}
		if d := time.Until(start.Add(time.Duration(i+1) * interval)); d > 0 {
			time.Sleep(d)
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for started.Load()+failed.count()/2 < int64(*n) && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(*settle)
	after, err := scrape(ctx, metricsURL)
	if err != nil {
		return err
	}
	res.Started, res.Failed = started.Load(), failed.count()
	res.ServerRooms, res.ServerPlayers = after["quickmatch_game_rooms"], after["quickmatch_game_players_connected"]
	res.RSSAfter, res.HeapAfter, res.Goroutines = after["process_resident_memory_bytes"], after["go_memstats_heap_inuse_bytes"], after["go_goroutines"]
	if res.ServerRooms > 0 {
		res.RSSPerRoom = (res.RSSAfter - res.RSSBefore) / res.ServerRooms
		res.HeapPerRoom = (res.HeapAfter - res.HeapBefore) / res.ServerRooms
	}
	res.FirstErrors = failed.sample()
	release()
	wg.Wait()
	if *jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	fmt.Fprintf(stdout, "rooms      %d asked, %d games started, %d failed joins\n", res.Rooms, res.Started, res.Failed)
	fmt.Fprintf(stdout, "server     %v rooms, %v players, %v goroutines\n", res.ServerRooms, res.ServerPlayers, res.Goroutines)
	fmt.Fprintf(stdout, "memory     RSS %.1f -> %.1f MiB, heap %.1f -> %.1f MiB\n", res.RSSBefore/(1<<20), res.RSSAfter/(1<<20), res.HeapBefore/(1<<20), res.HeapAfter/(1<<20))
	fmt.Fprintf(stdout, "per room   %.1f KiB RSS, %.1f KiB heap (two connected players)\n", res.RSSPerRoom/1024, res.HeapPerRoom/1024)
	for _, e := range res.FirstErrors {
		fmt.Fprintln(stdout, "error     ", e)
	}
	return nil
}
