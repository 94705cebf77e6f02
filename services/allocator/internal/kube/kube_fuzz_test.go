package kube

import (
	"errors"
	"testing"

	"github.com/quickmatch-dev/quickmatch/services/allocator/internal/allocator"
)

// FuzzServerOf: whatever the Kubernetes API (or something pretending to
// be it) answers, the allocator never panics, and never sends players to a
// server without a name, an address and a port.
func FuzzServerOf(f *testing.F) {
	f.Add([]byte(`{"apiVersion":"allocation.agones.dev/v1","kind":"GameServerAllocation","status":{"state":"Allocated","gameServerName":"gs-1","address":"10.0.0.1","ports":[{"name":"default","port":7042}]}}`))
	f.Add([]byte(`{"status":{"state":"UnAllocated"}}`))
	f.Add([]byte(`{"status":{"state":"Contention"}}`))
	f.Add([]byte(`{"status":{"state":"Allocated","gameServerName":"gs","address":"","ports":[]}}`))
	f.Add([]byte(`{"status":{"state":"Allocated","gameServerName":"gs","address":"h","ports":[{"port":-1}]}}`))
	f.Add([]byte(`<html>502 Bad Gateway</html>`))
	f.Add([]byte(`{"status":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		srv, err := ServerOf(data, "c1")
		if err == nil {
			if srv.Name == "" || srv.Address == "" || srv.Port <= 0 || srv.Port > 65535 || srv.Cluster != "c1" {
				t.Fatalf("accepted an unusable server %+v from %q", srv, data)
			}
			return
		}
		if !errors.Is(err, errBadAnswer) && !errors.Is(err, allocator.ErrNoCapacity) && !errors.Is(err, ErrAPI) {
			t.Fatalf("error of no known kind: %v", err)
		}
	})
}
