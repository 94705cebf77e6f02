package testkit

import (
	"net"
	"strconv"
	"testing"
)

// A port handed to a server that binds it later must not be one the
// kernel can give an outbound connection meanwhile.
func TestPortsAreOutsideTheEphemeralRange(t *testing.T) {
	low, high := ephemeralRange()
	ports, err := Ports(9)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range ports {
		if p >= low && p <= high {
			t.Errorf("port %d is in the ephemeral range %d-%d", p, low, high)
		}
		if seen[p] {
			t.Errorf("port %d given twice", p)
		}
		seen[p] = true
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			t.Errorf("port %d not free: %v", p, err)
			continue
		}
		l.Close()
	}
}
