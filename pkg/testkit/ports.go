package testkit

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// Ports returns n loopback ports, each probed free, for servers that
// cannot be started on port 0 and asked where they went (a NATS node
// must know its peers' route ports before any starts, and a restarted
// node must come back on the ports its clients were given).
//
// They are taken below the kernel's ephemeral range on purpose. A port
// the kernel hands out for port 0 is also one it hands out as the local
// port of an outbound connection: between the probe and the server's
// bind, or while a killed node is down, a route dialing out can take it,
// and the node then fails "address already in use" again and again
// (connect picks nearby ports for the same destination). CI saw exactly
// that on a chaos run.
func Ports(n int) ([]int, error) {
	low, _ := ephemeralRange()
	// A random start keeps two test processes probing at once apart.
	const floor = 10000
	if low <= floor+n {
		return nil, fmt.Errorf("ephemeral range starts at %d: no room below it for %d ports", low, n)
	}
	next := floor + rand.IntN(low-floor)
	var out []int
	for tries := 0; len(out) < n && tries < low-floor; tries++ {
		p := next
		if next++; next >= low {
			next = floor
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			continue
		}
		l.Close()
		out = append(out, p)
	}
	if len(out) < n {
		return nil, fmt.Errorf("only %d of %d ports free below %d", len(out), n, low)
	}
	return out, nil
}

// ephemeralRange is the kernel's range for port 0 and outbound
// connections; Linux's default where it cannot be read.
func ephemeralRange() (low, high int) {
	low, high = 32768, 60999
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return low, high
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return low, high
	}
	l, err1 := strconv.Atoi(f[0])
	h, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil {
		return low, high
	}
	return l, h
}
