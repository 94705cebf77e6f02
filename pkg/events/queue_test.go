package events_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

func TestQueueKey(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, region, tier, mode, want, field string
	}{
		{name: "shard and mode", region: "eu", tier: "gold", mode: "2v2", want: "eu.gold.2v2"},
		{name: "mode with a dot", region: "eu", tier: "gold", mode: "ranked.2v2", field: "mode"},
		{name: "mode a wildcard", region: "eu", tier: "gold", mode: ">", field: "mode"},
		{name: "empty tier", region: "eu", tier: "", mode: "1v1", field: "tier"},
		{name: "region with a space", region: "e u", tier: "gold", mode: "1v1", field: "region"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := events.QueueKey(c.region, c.tier, c.mode)
			if c.field == "" {
				if err != nil || got != c.want {
					t.Fatalf("QueueKey = %q, %v; want %q", got, err, c.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.field) {
				t.Fatalf("QueueKey = %q, %v; want an error naming %s", got, err, c.field)
			}
		})
	}
}

func TestDecodeQueueStats(t *testing.T) {
	t.Parallel()
	good := `{"schema_version":1,"region":"eu","tier":"gold","mode":"2v2","waiting":3,"expected_wait_ms":12500,"matched":40,"updated_at":"2026-11-21T10:00:00Z"}`
	for _, c := range []struct {
		name, data string
		field      string // "" when it decodes, "-" when it names none
		wait       time.Duration
	}{
		{name: "figures", data: good, wait: 12500 * time.Millisecond},
		{name: "unknown wait left out", data: `{"schema_version":1,"region":"eu","tier":"gold","mode":"2v2","waiting":1,"matched":0,"updated_at":"2026-11-21T10:00:00Z"}`},
		// A newer matcher may add a field while older frontends run.
		{name: "a newer field", data: strings.Replace(good, `"matched"`, `"p90_wait_ms":20000,"matched"`, 1), wait: 12500 * time.Millisecond},
		{name: "negative wait", data: strings.Replace(good, "12500", "-1", 1), field: "expected_wait_ms"},
		{name: "negative waiting", data: strings.Replace(good, `"waiting":3`, `"waiting":-3`, 1), field: "waiting"},
		{name: "mode not a token", data: strings.Replace(good, `"2v2"`, `"a.b"`, 1), field: "mode"},
		{name: "another version", data: strings.Replace(good, `"schema_version":1`, `"schema_version":9`, 1), field: "schema_version"},
		{name: "no time", data: strings.Replace(good, `"2026-11-21T10:00:00Z"`, `"0001-01-01T00:00:00Z"`, 1), field: "updated_at"},
		{name: "wrong type", data: strings.Replace(good, `"waiting":3`, `"waiting":"3"`, 1), field: "waiting"},
		{name: "not an object", data: `[]`, field: "-"},
	} {
		t.Run(c.name, func(t *testing.T) {
			q, err := events.DecodeQueueStats([]byte(c.data))
			if c.field != "" {
				var ve *events.ValidationError
				if !errors.As(err, &ve) || c.field != "-" && ve.Fields[0].Field != c.field {
					t.Fatalf("err = %v, want one naming %s", err, c.field)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			d, ok := q.ExpectedWait()
			if d != c.wait || ok != (c.wait > 0) {
				t.Fatalf("ExpectedWait = %s, %v; want %s", d, ok, c.wait)
			}
		})
	}
}

// What a matcher writes, a frontend reads back as it was; an unknown
// wait is left out of the JSON.
func TestQueueStatsRoundTrip(t *testing.T) {
	t.Parallel()
	in := events.QueueStats{SchemaVersion: events.SchemaVersion, Region: "us", Tier: "bronze", Mode: "ffa", Waiting: 7,
		UpdatedAt: time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)}
	data, _ := json.Marshal(in)
	if strings.Contains(string(data), "expected_wait_ms") {
		t.Fatalf("unknown wait written: %s", data)
	}
	out, err := events.DecodeQueueStats(data)
	if err != nil || out != in {
		t.Fatalf("decoded %+v, %v; want %+v", out, err, in)
	}
}

// Provisioning makes the queue bucket: latest figures only, dropped a
// minute after their writer stops.
func TestQueueBucketIsProvisioned(t *testing.T) {
	t.Parallel()
	js := provisioned(t, events.Topology{})
	kv, err := js.KeyValue(t.Context(), events.Subjects{}.QueueBucket())
	if err != nil {
		t.Fatal(err)
	}
	st, err := kv.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st.History() != 1 || st.TTL() != events.QueueStatsTTL {
		t.Fatalf("queue bucket: history %d, ttl %s; want 1 and %s", st.History(), st.TTL(), events.QueueStatsTTL)
	}
}

func FuzzDecodeQueueStats(f *testing.F) {
	f.Add([]byte(`{"schema_version":1,"region":"eu","tier":"gold","mode":"2v2","waiting":3,"expected_wait_ms":12500,"matched":40,"updated_at":"2026-11-21T10:00:00Z"}`))
	f.Add([]byte(`{"schema_version":1}`))
	f.Add([]byte(`{`))
	f.Fuzz(func(t *testing.T, data []byte) {
		q, err := events.DecodeQueueStats(data)
		if err != nil {
			if !errors.Is(err, events.ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
			return
		}
		if _, err := events.QueueKey(q.Region, q.Tier, q.Mode); err != nil || q.Waiting < 0 || q.Matched < 0 || q.ExpectedWaitMS < 0 {
			t.Fatalf("accepted %+v (%v)", q, err)
		}
	})
}
