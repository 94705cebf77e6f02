package events

import "testing"

// BenchmarkDecodeTicket is the cost of reading and validating one
// hand-typed ticket, as a shard owner does for every ticket.
func BenchmarkDecodeTicket(b *testing.B) {
	data := []byte(`{"ticket_id":"r5fea7018a813bf7acfef4250","player_id":"alice","mode":"1v1","skill":1650,"latencies_ms":{"eu":20,"us":95},"created_at":"2026-11-21T20:32:02.740Z"}`)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := DecodeTicket(data); err != nil {
			b.Fatal(err)
		}
	}
}
