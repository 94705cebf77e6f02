package events_test

import (
	"testing"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// TestTicketCarriesItsRuleSetVersion: a ticket published as checked under
// a rule set carries that set's version (HeaderRules), which a matcher on
// other rules reads to wait for them; a ticket published without one
// carries no header, and is judged at once as before.
func TestTicketCarriesItsRuleSetVersion(t *testing.T) {
	t.Parallel()
	topo := events.Topology{}
	js := provisioned(t, topo)
	pub := events.NewPublisher(js, topo.Subjects)
	st, err := js.Stream(t.Context(), topo.Subjects.TicketsStream())
	if err != nil {
		t.Fatal(err)
	}
	for id, version := range map[string]string{"stamped": "0123abcd", "plain": ""} {
		tk := events.Ticket{TicketID: id, PlayerID: "p-" + id, Mode: "1v1", Skill: 1650}
		ack, err := pub.TicketUnder(t.Context(), "eu", "gold", tk, version)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := st.GetMsg(t.Context(), ack.Sequence)
		if err != nil {
			t.Fatal(err)
		}
		if got := raw.Header.Get(events.HeaderRules); got != version {
			t.Errorf("%s: header %s = %q, want %q", id, events.HeaderRules, got, version)
		}
		if _, ok := raw.Header[events.HeaderRules]; version == "" && ok {
			t.Errorf("%s: an empty %s header", id, events.HeaderRules)
		}
	}
}
