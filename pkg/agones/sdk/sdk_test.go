package sdk

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestRoutingErrorsAreNotRefusals: a gateway without the endpoint answers
// "Not Found" (404, code 5); that must not read as ErrNotFound, which a
// caller removing a list value may take for "already removed".
func TestRoutingErrorsAreNotRefusals(t *testing.T) {
	for _, c := range []struct {
		status  int
		body    string
		noRoute bool
		want    error
	}{
		{http.StatusNotFound, `{"code":5,"message":"Not Found","details":[]}`, true, nil},
		{http.StatusNotImplemented, `{"code":12,"message":"Method Not Allowed","details":[]}`, true, nil},
		{http.StatusInternalServerError, `{"code":2,"message":"not found. Value: a not found in List: players","details":[]}`, false, ErrNotFound},
		{http.StatusInternalServerError, `{"code":2,"message":"out of range. No available capacity. Current Capacity: 2, List Size: 2","details":[]}`, false, ErrOutOfRange},
		{http.StatusInternalServerError, `{"code":2,"message":"already exists. Value: a already in List: players","details":[]}`, false, ErrExists},
	} {
		hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(c.status)
			_, _ = w.Write([]byte(c.body))
		}))
		_, err := New(hs.URL).RemoveListValue(t.Context(), "players", "a")
		hs.Close()
		if errors.Is(err, ErrNoRoute) != c.noRoute {
			t.Errorf("%d %s: ErrNoRoute = %v", c.status, c.body, !c.noRoute)
		}
		for _, s := range []error{ErrNotFound, ErrOutOfRange, ErrExists} {
			if errors.Is(err, s) != (s == c.want) {
				t.Errorf("%d %s: errors.Is(%v) = %v", c.status, c.body, s, !(s == c.want))
			}
		}
	}
}

// TestUpdateCounterSendsOnlyWhatIsSet: one PATCH carries capacity, count
// and countDiff as the gateway reads them (int64 as strings), and none
// that is unset.
func TestUpdateCounterSendsOnlyWhatIsSet(t *testing.T) {
	var got []string
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := make([]byte, 256)
		n, _ := r.Body.Read(b)
		got = append(got, r.Method+" "+r.URL.Path+" "+string(b[:n]))
		_, _ = w.Write([]byte(`{}`))
	}))
	defer hs.Close()
	c := New(hs.URL)
	three := int64(3)
	if _, err := c.UpdateCounter(t.Context(), "rooms", CounterUpdate{Capacity: &three, CountDiff: -1}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CounterDiff(t.Context(), "rooms", 2); err != nil {
		t.Fatal(err)
	}
	want := []string{
		`PATCH /v1beta1/counters/rooms {"capacity":"3","countDiff":"-1"}`,
		`PATCH /v1beta1/counters/rooms {"countDiff":"2"}`,
	}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("sent %q, want %q", got, want)
	}
}
