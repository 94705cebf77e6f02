package play_test

import (
	"encoding/json"
	"net/url"
	"strconv"
	"testing"

	"github.com/quickmatch-dev/quickmatch/pkg/play"
)

// The wire format is pinned byte for byte: assignments already handed out,
// the play page and the load tool depend on it.

func TestStatusJSON(t *testing.T) {
	b, err := json.Marshal(play.Status{Rooms: 3, MaxRooms: 100})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), `{"rooms":3,"max_rooms":100}`; got != want {
		t.Fatalf("status = %s, want %s", got, want)
	}
	var s play.Status
	if err := json.Unmarshal([]byte(`{"rooms":7,"max_rooms":10}`), &s); err != nil {
		t.Fatal(err)
	}
	if s.Rooms != 7 || s.MaxRooms != 10 || s.Backfill != nil || s.Free() != 3 {
		t.Fatalf("decoded %+v, free %d", s, s.Free())
	}
}

// TestBackfillJSON pins the requests a game server's /status carries (the
// allocator's local backend reads them), with who holds their seats,
// and the id of a request.
func TestBackfillJSON(t *testing.T) {
	st := play.Status{Rooms: 1, MaxRooms: 2, Backfill: []play.Backfill{{MatchID: "m1", Ask: 2, Seats: []int{0, 1}}}, Seated: []string{"alice"}}
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"rooms":1,"max_rooms":2,"backfill":[{"match_id":"m1","ask":2,"seats":[0,1]}],"seated":["alice"]}`
	if string(b) != want {
		t.Fatalf("status = %s, want %s", b, want)
	}
	if id := play.BackfillID("m1", 2); id != "m1-b2" {
		t.Fatalf("BackfillID = %q", id)
	}
	if n := st.Backfill[0].Free(); n != 1 {
		t.Fatalf("Free = %d", n)
	}
}

func TestWireNames(t *testing.T) {
	for got, want := range map[string]string{
		play.PagePath: "/play", play.SocketPath: "/ws", play.StatusPath: "/status",
		play.ParamRoom: "room", play.ParamToken: "token", play.ParamResume: "resume",
	} {
		if got != want {
			t.Errorf("%q, want %q", got, want)
		}
	}
}

func TestURL(t *testing.T) {
	cases := []struct {
		name, base, matchID, token, want string
	}{
		{"plain", "http://127.0.0.1:7000", "m1", "eyJ.a-b_c.sig", "http://127.0.0.1:7000/play?room=m1&token=eyJ.a-b_c.sig"},
		{"escaped", "http://gs-1.example:7000", "m 1/&x", "a+b=", "http://gs-1.example:7000/play?room=m+1%2F%26x&token=a%2Bb%3D"},
		{"trailing slash", "http://h:1/", "m", "t", "http://h:1/play?room=m&token=t"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := play.URL(c.base, c.matchID, c.token); got != c.want {
				t.Fatalf("URL = %s, want %s", got, c.want)
			}
		})
	}
}

// TestURLAsTheAllocatorBuiltIt: play.URL gives what the allocator built
// before the contract had a home.
func TestURLAsTheAllocatorBuiltIt(t *testing.T) {
	for _, c := range []struct {
		host           string
		port           int
		matchID, token string
	}{{"127.0.0.1", 7000, "m1", "x.y.z"}, {"gs-abc.default.svc", 7654, "01J 9?&=", "+/="}} {
		q := url.Values{"room": {c.matchID}, "token": {c.token}}
		before := (&url.URL{Scheme: "http", Host: c.host + ":" + strconv.Itoa(c.port), Path: "/play", RawQuery: q.Encode()}).String()
		if got := play.URL("http://"+c.host+":"+strconv.Itoa(c.port), c.matchID, c.token); got != before {
			t.Errorf("URL = %s, the allocator built %s", got, before)
		}
	}
}

func TestSocketURL(t *testing.T) {
	cases := []struct {
		name, base string
		join       play.Join
		want       string
	}{
		{"http", "http://h:7000", play.Join{MatchID: "m1", Token: "t"}, "ws://h:7000/ws?room=m1&token=t"},
		{"https", "https://h", play.Join{MatchID: "m1", Token: "t"}, "wss://h/ws?room=m1&token=t"},
		{"ws as it is", "ws://h:1/", play.Join{MatchID: "m1", Token: "t"}, "ws://h:1/ws?room=m1&token=t"},
		{"resume", "http://h:1", play.Join{MatchID: "m1", Token: "t", Resume: "k"}, "ws://h:1/ws?resume=k&room=m1&token=t"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := play.SocketURL(c.base, c.join); got != c.want {
				t.Fatalf("SocketURL = %s, want %s", got, c.want)
			}
		})
	}
}

func TestParseJoin(t *testing.T) {
	q, _ := url.ParseQuery("room=m%201&token=a%2Bb&resume=k")
	if got, want := play.ParseJoin(q), (play.Join{MatchID: "m 1", Token: "a+b", Resume: "k"}); got != want {
		t.Fatalf("ParseJoin = %+v, want %+v", got, want)
	}
	if got := play.ParseJoin(url.Values{}); got != (play.Join{}) {
		t.Fatalf("empty query = %+v", got)
	}
}

func TestParseURL(t *testing.T) {
	base, j, err := play.ParseURL(play.URL("http://10.0.0.5:7001", "m/1", "t.o+k"))
	if err != nil || base != "http://10.0.0.5:7001" || j != (play.Join{MatchID: "m/1", Token: "t.o+k"}) {
		t.Fatalf("ParseURL = %q %+v %v", base, j, err)
	}
	if got := play.SocketURL(base, j); got != "ws://10.0.0.5:7001/ws?room=m%2F1&token=t.o%2Bk" {
		t.Fatalf("socket of the page = %s", got)
	}
	for _, bad := range []string{"/play?room=m&token=t", "::", ""} {
		if _, _, err := play.ParseURL(bad); err == nil {
			t.Errorf("ParseURL(%q) accepted", bad)
		}
	}
}

// TestTraceTravels: the allocation's traceparent rides on the page URL and,
// through ParseURL and SocketURL, reaches the game server's join.
func TestTraceTravels(t *testing.T) {
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	page := play.Join{MatchID: "m1", Token: "t", Trace: tp}.PageURL("http://h:7000")
	base, j, err := play.ParseURL(page)
	if err != nil || j.Trace != tp {
		t.Fatalf("ParseURL(%s) = %+v %v, want the traceparent", page, j, err)
	}
	u, _ := url.Parse(play.SocketURL(base, j))
	if got := play.ParseJoin(u.Query()); got.Trace != tp || got.MatchID != "m1" {
		t.Fatalf("socket join %+v, want the traceparent", got)
	}
	if play.ParamTrace != "traceparent" {
		t.Errorf("ParamTrace %q", play.ParamTrace)
	}
}
