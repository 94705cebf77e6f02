package api_test

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/rules"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/api"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/tickets"
)

// A ticket's attributes are kept as sent: in the ticket record, in the
// ticket published for the matchers and, with the Idempotency-Key, in
// what a repeat is compared with.
func TestAttributesAreStoredAndPublished(t *testing.T) {
	t.Parallel()
	e := start(t, options{})
	const attrs = `{"strings":{"platform":"console"},"sets":{"maps":["dust","nuke"]},"numbers":{"level":30},"tags":["newbie"]}`
	body := `{"party":["ann","ben"],"mode":"2v2","skill":1650,"region":"eu","attributes":` + attrs + `}`
	code, out := e.post(t, body, "k1")
	if code != http.StatusAccepted {
		t.Fatalf("POST = %d %v", code, out)
	}
	id := out["ticket_id"].(string)
	want := &events.Attributes{Strings: map[string]string{"platform": "console"}, Sets: map[string][]string{"maps": {"dust", "nuke"}},
		Numbers: map[string]float64{"level": 30}, Tags: []string{"newbie"}}

	st, err := e.js.Stream(t.Context(), e.subj.TicketsStream())
	if err != nil {
		t.Fatal(err)
	}
	raw, err := st.GetLastMsgForSubject(t.Context(), e.subj.Ticket("eu", "gold"))
	if err != nil {
		t.Fatal(err)
	}
	published, err := events.DecodeTicket(raw.Data)
	if err != nil || published.TicketID != id || !reflect.DeepEqual(published.Attributes, want) {
		t.Fatalf("published %s: %v, want attributes %+v", raw.Data, err, want)
	}

	kv, err := e.js.KeyValue(t.Context(), e.subj.TicketsBucket())
	if err != nil {
		t.Fatal(err)
	}
	entry, err := kv.Get(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	var rec tickets.Record
	if err := json.Unmarshal(entry.Value(), &rec); err != nil || !reflect.DeepEqual(rec.Ticket.Attributes, want) {
		t.Fatalf("record %s: %v, want attributes %+v", entry.Value(), err, want)
	}

	// The same request again is a repeat; other attributes under the same
	// key are another request.
	if code, again := e.post(t, body, "k1"); code != http.StatusAccepted || again["ticket_id"] != id {
		t.Fatalf("repeat = %d %v", code, again)
	}
	other := `{"party":["ann","ben"],"mode":"2v2","skill":1650,"region":"eu","attributes":{"strings":{"platform":"pc"}}}`
	if code, out := e.post(t, other, "k1"); code != http.StatusConflict {
		t.Fatalf("key reused with other attributes = %d %v, want 409", code, out)
	}
}

// A required attribute left out is refused, with the field named, and
// nothing is queued or stored.
func TestRequiredAttributeIsRefused(t *testing.T) {
	t.Parallel()
	e := start(t, options{rules: fixedRules(t, `{
	  "attributes": {"platform": {"kind": "string", "values": ["pc", "console"], "required": true}},
	  "modes": [{"name": "1v1", "teams": 2, "team_size": 1, "max_wait": "5m"}]}`)})
	code, out := e.post(t, `{"player_id":"amy","skill":1650,"region":"eu"}`, "")
	fields, _ := out["fields"].([]any)
	if code != http.StatusBadRequest || len(fields) != 1 || fields[0].(map[string]any)["field"] != "attributes.strings.platform" {
		t.Fatalf("POST without platform = %d %v, want 400 naming attributes.strings.platform", code, out)
	}
	if e.queued(t) != 0 || e.stored(t) != 0 {
		t.Fatal("a refused ticket was queued or stored")
	}
	if code, out := e.post(t, `{"player_id":"amy","skill":1650,"region":"eu","attributes":{"strings":{"platform":"pc"}}}`, ""); code != http.StatusAccepted {
		t.Fatalf("POST with platform = %d %v", code, out)
	}
}

// A reload of the rule set takes effect without a restart: the page
// offers the new modes, a new mode is taken and a removed one refused.
func TestRuleSetReloadChangesModes(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "rules.json")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(`{"modes":[{"name":"1v1","teams":2,"team_size":1,"max_wait":"5m"},{"name":"2v2","teams":2,"team_size":2,"max_wait":"5m"}]}`)
	cur, err := rules.Open(path, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	e := start(t, options{rules: cur})
	if got := pageModes(t, e); !slices.Equal(got, []string{"1v1", "2v2"}) {
		t.Fatalf("page offers %q before the reload", got)
	}
	write(`{"modes":[{"name":"2v2","teams":2,"team_size":2,"max_wait":"5m"},{"name":"3v3","teams":2,"team_size":3,"max_wait":"5m"}]}`)
	if !cur.Reload() {
		t.Fatal("the new rule set was not put in force")
	}
	if got := pageModes(t, e); !slices.Equal(got, []string{"2v2", "3v3"}) {
		t.Fatalf("page offers %q after the reload, want [2v2 3v3]", got)
	}
	if code, out := e.post(t, `{"party":["a","b","c"],"mode":"3v3","skill":1650,"region":"eu"}`, ""); code != http.StatusAccepted {
		t.Fatalf("the new mode = %d %v", code, out)
	}
	if code, out := e.post(t, `{"player_id":"d","mode":"1v1","skill":1650,"region":"eu"}`, ""); code != http.StatusBadRequest {
		t.Fatalf("the removed mode = %d %v", code, out)
	}
	// A bad file keeps the rules in force.
	write(`{"modes":[]}`)
	if cur.Reload() {
		t.Fatal("a rule set without modes was put in force")
	}
	if got := pageModes(t, e); !slices.Equal(got, []string{"2v2", "3v3"}) {
		t.Fatalf("page offers %q after a bad file", got)
	}
}

// pageModes are the modes the find-a-match page offers.
func pageModes(t *testing.T, e *env) []string {
	t.Helper()
	res, err := http.Get(e.http.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	var modes []string
	for _, m := range optionRE.FindAllStringSubmatch(string(b), -1) {
		modes = append(modes, m[1])
	}
	return modes
}

// A WebSocket client gives its attributes as the attributes query
// parameter (the JSON object a POST carries): what is taken is kept in
// the ticket, what is malformed is a plain 400 naming the field before
// the upgrade, and what the rule set refuses closes 4400 naming it.
func TestWebSocketAttributes(t *testing.T) {
	t.Parallel()
	e := start(t, options{rules: fixedRules(t, `{
	  "attributes": {"platform": {"kind": "string", "values": ["pc", "console"], "required": true}},
	  "modes": [{"name": "1v1", "teams": 2, "team_size": 1, "max_wait": "5m"}]}`)})
	dial := func(player, attrs string) (*websocket.Conn, *http.Response, error) {
		q := url.Values{"player_id": {player}, "skill": {"1650"}, "region": {"eu"}}
		if attrs != "" {
			q.Set("attributes", attrs)
		}
		return websocket.DefaultDialer.Dial(wsURL(t, e, "/ws/events?"+q.Encode()), nil)
	}

	_, res, err := dial("wsa", `{"strings":{"platform":7}}`)
	if err == nil || res.StatusCode != http.StatusBadRequest {
		t.Fatalf("malformed attributes: %v %v, want 400", err, res)
	}
	var body api.ErrorBody
	// As a POST's body names it (the contract's decoder names the map).
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil || len(body.Fields) != 1 || body.Fields[0].Field != "attributes.strings" {
		t.Fatalf("malformed attributes: %+v %v, want the field attributes.strings", body, err)
	}
	res.Body.Close()

	for attrs, want := range map[string]string{"": "attributes.strings.platform", `{"strings":{"platform":"switch"}}`: "attributes.strings.platform"} {
		c, _, err := dial("wsb", attrs)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, _, err = c.ReadMessage()
		c.Close()
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != api.CloseInvalid || !strings.Contains(ce.Text, want) {
			t.Fatalf("attributes %q: %v, want close %d naming %s", attrs, err, api.CloseInvalid, want)
		}
	}
	if n := e.queued(t); n != 0 {
		t.Fatalf("%d refused tickets queued", n)
	}

	c, _, err := dial("wsc", `{"strings":{"platform":"pc"}}`)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var v map[string]any
	if err := c.ReadJSON(&v); err != nil || v["status"] != "queued" {
		t.Fatalf("first event %v: %v", v, err)
	}
	st, err := e.js.Stream(t.Context(), e.subj.TicketsStream())
	if err != nil {
		t.Fatal(err)
	}
	raw, err := st.GetLastMsgForSubject(t.Context(), e.subj.Ticket("eu", "gold"))
	if err != nil {
		t.Fatal(err)
	}
	if tk, err := events.DecodeTicket(raw.Data); err != nil || tk.Attributes == nil || tk.Attributes.Strings["platform"] != "pc" {
		t.Fatalf("published %s: %v", raw.Data, err)
	}
}
