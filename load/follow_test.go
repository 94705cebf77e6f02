package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	qmclient "github.com/quickmatch-dev/quickmatch/pkg/client"
	"github.com/quickmatch-dev/quickmatch/pkg/loadrecord"
	"github.com/quickmatch-dev/quickmatch/pkg/ticketapi"
)

// frontendStub answers a POST with a queued ticket and its event stream
// with queued, matched and assigned, as the frontend does.
func frontendStub() *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/tickets", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, `{"ticket_id":"t1","status":"queued","region":"eu","tier":"gold","mode":"1v1"}`+"\n")
	})
	mux.HandleFunc("GET /v1/tickets/{id}/events", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i, st := range []string{"queued", "matched", "assigned"} {
			var assignment string
			if st == "assigned" {
				assignment = `,"assignment":{"url":"http://game/play?room=r"}`
			}
			fmt.Fprintf(w, "id: %d\nevent: status\ndata: {\"ticket_id\":%q,\"status\":%q,\"region\":\"eu\",\"tier\":\"gold\",\"mode\":\"1v1\"%s}\n\n", i+1, r.PathValue("id"), st, assignment)
		}
	})
	return httptest.NewServer(mux)
}

// BenchmarkFollow is what one ticket of `load run` -via http costs the
// load tool (and the stub, in the same process): the POST and its event
// stream.
func BenchmarkFollow(b *testing.B) {
	srv := frontendStub()
	defer srv.Close()
	fe, err := newFrontend(srv.URL, client(false, 1, 256), nil, false)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		// Each ticket has its -timeout, as arrive gives it.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		_, kind := follow(ctx, fe, &tokens{}, 0, "p1", "eu", 1650, nil)
		cancel()
		if kind != "" {
			b.Fatal(kind)
		}
	}
}

// TestFollowKinds: what `load run` counts for each way a ticket goes.
// A stream cut while the ticket waits is resumed (Last-Event-ID) and the
// ticket counted by its outcome, not as lost; a 401 is not sent again
// with the same player's token. Each POST is recorded (-record): a
// ticket acknowledged, or a POST failed, with its kind.
func TestFollowKinds(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		post  int
		sse   func(n int, w http.ResponseWriter, r *http.Request)
		want  string
		posts int32
	}{
		{"assigned", 202, nil, "", 1},
		{"refused", 503, nil, "post_503", 1},
		{"unauthorized", 401, nil, "post_401", 1},
		{"answered nothing", 0, nil, "post_error", 1},
		{"expired", 202, func(_ int, w http.ResponseWriter, _ *http.Request) {
			io.WriteString(w, "id: 3\nevent: status\ndata: {\"ticket_id\":\"t1\",\"status\":\"expired\"}\n\n")
		}, "expired", 1},
		{"stream cut, then resumed", 202, func(n int, w http.ResponseWriter, r *http.Request) {
			if n == 1 {
				io.WriteString(w, "id: 1\nevent: status\ndata: {\"ticket_id\":\"t1\",\"status\":\"queued\"}\n\n")
				w.(http.Flusher).Flush()
				panic(http.ErrAbortHandler)
			}
			if r.Header.Get("Last-Event-ID") == "1" {
				io.WriteString(w, "id: 3\nevent: status\ndata: {\"ticket_id\":\"t1\",\"status\":\"assigned\",\"assignment\":{\"url\":\"http://game/play?room=r\"}}\n\n")
			}
		}, "", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var posts, streams atomic.Int32
			mux := http.NewServeMux()
			mux.HandleFunc("POST /v1/tickets", func(w http.ResponseWriter, _ *http.Request) {
				posts.Add(1)
				if tc.post == 0 {
					panic(http.ErrAbortHandler) // the frontend killed mid-answer
				}
				w.WriteHeader(tc.post)
				io.WriteString(w, `{"ticket_id":"t1","status":"queued","error":"no"}`)
			})
			mux.HandleFunc("GET /v1/tickets/{id}/events", func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				if tc.sse == nil {
					io.WriteString(w, "id: 3\nevent: status\ndata: {\"ticket_id\":\"t1\",\"status\":\"assigned\",\"assignment\":{\"url\":\"http://game/play?room=r\"}}\n\n")
					return
				}
				tc.sse(int(streams.Add(1)), w, r)
			})
			srv := httptest.NewServer(mux)
			defer srv.Close()
			fe, err := newFrontend(srv.URL, client(false, 1, 8), nil, false)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			var out bytes.Buffer
			rec := &recorder{enc: json.NewEncoder(&out)}
			if _, kind := follow(ctx, fe, &tokens{fixed: "tok"}, 0, "p1", "eu", 1650, rec); kind != tc.want || posts.Load() != tc.posts {
				t.Fatalf("kind %q after %d POSTs, want %q after %d", kind, posts.Load(), tc.want, tc.posts)
			}
			path := filepath.Join(t.TempDir(), "record")
			if err := os.WriteFile(path, out.Bytes(), 0o600); err != nil {
				t.Fatal(err)
			}
			acked, failed, err := loadrecord.Read(path)
			switch {
			case err != nil:
				t.Fatal(err)
			case tc.post == 202 && (len(acked) != 1 || acked[0].TicketID != "t1" || len(failed) != 0):
				t.Fatalf("recorded %q, want t1 acknowledged", out.String())
			case tc.post != 202 && (len(failed) != 1 || failed[0].Failed != tc.want || failed[0].PlayerID != "p1" ||
				failed[0].Frontend != srv.URL || failed[0].EndedAt.Before(failed[0].SentAt) || len(acked) != 0):
				t.Fatalf("recorded %q, want p1's POST failed %s", out.String(), tc.want)
			}
		})
	}
}

// With -idempotency-keys every POST carries a key of its own, as a
// browser's does; without, none (the unkeyed creation path).
func TestFollowSendsIdempotencyKeys(t *testing.T) {
	t.Parallel()
	for _, keyed := range []bool{false, true} {
		t.Run(fmt.Sprint("keyed=", keyed), func(t *testing.T) {
			t.Parallel()
			keys := make(chan string, 3)
			srv := frontendStub()
			defer srv.Close()
			wrapped := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodPost {
					keys <- r.Header.Get(ticketapi.HeaderIdempotencyKey)
				}
				srv.Config.Handler.ServeHTTP(w, r)
			}))
			defer wrapped.Close()
			fe, err := newFrontend(wrapped.URL, client(false, 1, 8), nil, keyed)
			if err != nil {
				t.Fatal(err)
			}
			seen := map[string]bool{}
			for range 3 {
				if _, kind := follow(t.Context(), fe, &tokens{}, 0, "p1", "eu", 1650, nil); kind != "" {
					t.Fatal(kind)
				}
				k := <-keys
				if (k != "") != keyed || seen[k] && keyed {
					t.Fatalf("POST sent Idempotency-Key %q (keyed %v, seen %v)", k, keyed, seen)
				}
				seen[k] = true
			}
		})
	}
}

// With -retries, a keyed POST that failed as a browser's client would
// send again (no answer; a 408, 429, 500, 502, 503 or 504 that is not a
// drained shard or a region with room) is sent again with the same key,
// after its Retry-After, to the next frontend, and the ticket followed
// there; one refused for good, or one with its tries spent, is not.
// Every failed attempt is recorded, with its frontend and kind.
func TestAFailedKeyedPostIsSentAgainWithItsKey(t *testing.T) {
	t.Parallel()
	const (
		drained  = `{"error":"shard drained","drained":{"shard":"eu.gold","reason":"maintenance"}}`
		full     = `{"error":"` + ticketapi.RegionFullText + `"}`
		suggests = `{"error":"` + ticketapi.RegionFullText + `","suggest_region":"us"}`
		overload = `{"error":"` + ticketapi.OverloadedError + `"}`
	)
	for _, tc := range []struct {
		name        string
		first, then int // statuses of the first frontend and the next (0: no answer)
		body        string
		retryAfter  string // the refusals' Retry-After
		retries     int
		want        string
		posts       int32  // POSTs in all
		repeat      string // the POSTs after the first say they repeat (Quickmatch-Repeat)
	}{
		{"503 then taken", 503, 202, "", "", 8, "", 2, "1"},
		{"no answer then taken", 0, 202, "", "", 8, "", 2, "1"},
		{"overloaded then taken", 503, 202, overload, "", 8, "", 2, ""},
		{"429 then taken after its Retry-After", 429, 202, "", "1", 8, "", 2, ""},
		{"region full, none with room named, then taken", 503, 202, full, "", 8, "", 2, ""},
		{"region full, one with room named", 503, 202, suggests, "", 8, "post_503", 1, ""},
		{"drained", 503, 202, drained, "", 8, "post_503", 1, ""},
		{"501", 501, 202, "", "", 8, "post_501", 1, ""},
		{"tries spent", 503, 503, "", "", 2, "post_503", 3, "1"},
		{"no retries", 503, 202, "", "", 0, "post_503", 1, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var posts atomic.Int32
			type post struct {
				key, repeat string
				at          time.Time
			}
			sent := make(chan post, 10)
			stub := func(status int) *httptest.Server {
				srv := frontendStub()
				t.Cleanup(srv.Close)
				wrapped := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.Method == http.MethodPost {
						posts.Add(1)
						sent <- post{r.Header.Get(ticketapi.HeaderIdempotencyKey), r.Header.Get(ticketapi.HeaderRepeat), time.Now()}
						switch {
						case status == 0:
							panic(http.ErrAbortHandler)
						case status != 202:
							if tc.retryAfter != "" {
								w.Header().Set(ticketapi.HeaderRetryAfter, tc.retryAfter)
							}
							w.WriteHeader(status)
							io.WriteString(w, cmp.Or(tc.body, `{"error":"unavailable"}`))
							return
						}
					}
					srv.Config.Handler.ServeHTTP(w, r)
				}))
				t.Cleanup(wrapped.Close)
				return wrapped
			}
			a, b := stub(tc.first), stub(tc.then)
			fes := make([]frontend, 2)
			var resent atomic.Int64
			for i, srv := range []*httptest.Server{a, b} {
				fe, err := newFrontend(srv.URL, client(false, 1, 8), nil, true)
				if err != nil {
					t.Fatal(err)
				}
				fe.retries, fe.next, fe.resent = tc.retries, &fes[(i+1)%2], &resent
				fes[i] = fe
			}
			var out bytes.Buffer
			rec := &recorder{enc: json.NewEncoder(&out)}
			if _, kind := follow(t.Context(), fes[0], &tokens{fixed: "tok"}, 0, "p1", "eu", 1650, rec); kind != tc.want || posts.Load() != tc.posts {
				t.Fatalf("kind %q after %d POSTs, want %q after %d", kind, posts.Load(), tc.want, tc.posts)
			}
			if resent.Load() != int64(tc.posts-1) {
				t.Fatalf("%d POSTs counted sent again of %d, want %d", resent.Load(), tc.posts, tc.posts-1)
			}
			var first post
			for i := range posts.Load() {
				p := <-sent
				if i == 0 {
					first = p
				}
				if p.key == "" || p.key != first.key {
					t.Fatalf("POSTs sent keys %q and %q, want one key", first.key, p.key)
				}
				want := tc.repeat
				if i == 0 {
					want = ""
				}
				if p.repeat != want {
					t.Fatalf("POST %d said it repeats %q, want %q", i+1, p.repeat, want)
				}
				if i == 1 && tc.retryAfter != "" && p.at.Sub(first.at) < time.Second {
					t.Fatalf("sent again %s after a Retry-After of %ss", p.at.Sub(first.at), tc.retryAfter)
				}
			}
			path := filepath.Join(t.TempDir(), "record")
			if err := os.WriteFile(path, out.Bytes(), 0o600); err != nil {
				t.Fatal(err)
			}
			acked, failed, err := loadrecord.Read(path)
			if err != nil {
				t.Fatal(err)
			}
			wantFailed := int(tc.posts)
			if tc.want == "" {
				wantFailed--
				if len(acked) != 1 || acked[0].Frontend != b.URL {
					t.Fatalf("recorded %q, want the ticket acknowledged by %s", out.String(), b.URL)
				}
			}
			if len(failed) != wantFailed {
				t.Fatalf("recorded %q, want %d failed POSTs", out.String(), wantFailed)
			}
			wantKind := failureKind("post", &qmclient.Error{Status: tc.first})
			if tc.first == 0 {
				wantKind = "post_error"
			}
			for i, f := range failed {
				if want := []string{a.URL, b.URL}[i%2]; f.Frontend != want || f.Failed != wantKind && i == 0 {
					t.Fatalf("failed POST %d recorded %+v, want to %s, the first %s", i, f, want, wantKind)
				}
			}
		})
	}
}
