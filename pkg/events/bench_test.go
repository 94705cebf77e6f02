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

// BenchmarkDecodeMatch is the allocator's read of one 1v1 match.
func BenchmarkDecodeMatch(b *testing.B) {
	data := []byte(`{"schema_version":1,"match_id":"m5b1c0e3f2a9d8c7b6a5f4e3d","mode":"1v1","region":"eu","tier":"gold","created_at":"2026-11-22T03:20:59.444758244Z","tickets":[{"ticket_id":"r5fea7018a813bf7acfef4250","players":["run-1a2b3c-1041"],"team":0,"skill":1805,"created_at":"2026-11-22T03:20:59.440Z"},{"ticket_id":"r6aeb7018a813bf7acfef4251","players":["run-1a2b3c-1044"],"team":1,"skill":1808,"created_at":"2026-11-22T03:20:59.441Z"}]}`)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := DecodeMatch(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSealMatch is what a matcher's commit spends to seal the
// match its claims carry (HeaderMatchSeal): one 1v1 match, as
// BenchmarkDecodeMatch's.
func BenchmarkSealMatch(b *testing.B) {
	data := []byte(`{"schema_version":1,"match_id":"m5b1c0e3f2a9d8c7b6a5f4e3d","mode":"1v1","region":"eu","tier":"gold","created_at":"2026-11-22T03:20:59.444758244Z","tickets":[{"ticket_id":"r5fea7018a813bf7acfef4250","players":["run-1a2b3c-1041"],"team":0,"skill":1805,"created_at":"2026-11-22T03:20:59.440Z"},{"ticket_id":"r6aeb7018a813bf7acfef4251","players":["run-1a2b3c-1044"],"team":1,"skill":1808,"created_at":"2026-11-22T03:20:59.441Z"}]}`)
	key := make([]byte, MinSealKey)
	s, err := NewSeals(key)
	if err != nil {
		b.Fatal(err)
	}
	owner := MatchOwner("m5b1c0e3f2a9d8c7b6a5f4e3d")
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if s.SealMatch(owner, data) == "" {
			b.Fatal("no seal")
		}
	}
}
