package api_test

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// A stream opened after its ticket's outcome came (past capacity, about
// half of them: the assignment beats the client's GET) is answered from
// the tracker's memory with the outcome alone, not from two reads of the
// stored state, each a round trip to the NATS server. Here the stored
// results are gone, so the reads would fail: the stream still says
// assigned, and ends.
func TestAStreamOpenedAfterTheOutcomeIsAnsweredFromMemory(t *testing.T) {
	t.Parallel()
	e := start(t, options{})
	_, body := e.post(t, `{"player_id":"alice","skill":1650,"region":"eu"}`, "")
	id := body["ticket_id"].(string)
	e.allocate(t, id, "alice")
	testkit.Eventually(t, 5*time.Second, func() bool {
		res, err := http.Get(e.http.URL + "/metrics")
		if err != nil {
			return false
		}
		defer res.Body.Close()
		m, _ := io.ReadAll(res.Body)
		return bytes.Contains(m, []byte(`quickmatch_frontend_ticket_outcomes_total{status="assigned"} 1`))
	}, "the tracker never heard the outcome")
	if err := e.js.DeleteStream(t.Context(), e.subj.ResultsStream()); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, e.http.URL+"/v1/tickets/"+id+"/events", nil)
	req.Header.Set("Authorization", "Bearer "+e.token(t, "alice"))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		t.Fatalf("stream opened after the outcome: %d %s (its stored state read)", res.StatusCode, b)
	}
	r := bufio.NewReader(res.Body)
	if got := readSSE(t, r, 1); got[0] != (sseEvent{"3", "assigned"}) {
		t.Fatalf("first event %v, want the outcome", got)
	}
	if _, err := r.ReadString('\n'); err != io.EOF {
		t.Fatalf("stream did not end after the outcome: %v", err)
	}
}
