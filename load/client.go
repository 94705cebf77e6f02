package main

import (
	"crypto/tls"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// sourceAddr is the i-th of the -source-ips loopback addresses, 127.0.0.1
// onwards: every 127/8 address is this machine's on Linux, so a load run
// on one machine can look like many clients, each with its own ephemeral
// ports and its own per-address limits at an -auth-insecure frontend.
func sourceAddr(i int) *net.TCPAddr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(1+i))}
}

var sourceNext atomic.Uint32

// dialer spreads connections over 127.0.0.1..n, one address per dial:
// right for WebSockets, a connection each. HTTP goes through client.
func dialer(n int) *net.Dialer {
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	if n > 1 {
		d.LocalAddr = sourceAddr(int(sourceNext.Add(1)) % n)
	}
	return d
}

// client is the HTTP client of hold and run. With sources > 1 it holds
// one transport per source address and sends requests through them in
// turn. Spreading dials alone does nothing over h2c: its transport dials
// once and puts every request on that connection's streams, so every
// request came from 127.0.0.1 whatever -source-ips said.
func client(h2c bool, sources, idle int) *http.Client {
	if sources <= 1 {
		return &http.Client{Transport: transport(h2c, idle, nil)}
	}
	rr := &roundRobin{}
	for i := range sources {
		rr.transports = append(rr.transports, transport(h2c, idle, sourceAddr(i)))
	}
	return &http.Client{Transport: rr}
}

// transport dials from local (nil: any address) and speaks h2c or
// HTTP/1.1.
func transport(h2c bool, idle int, local *net.TCPAddr) *http.Transport {
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	if local != nil {
		d.LocalAddr = local
	}
	t := &http.Transport{
		DialContext:         d.DialContext,
		MaxIdleConnsPerHost: idle,
		MaxIdleConns:        idle,
		TLSClientConfig:     &tls.Config{MinVersion: tls.VersionTLS12},
	}
	if h2c {
		var p http.Protocols
		p.SetUnencryptedHTTP2(true)
		t.Protocols = &p
		t.HTTP2 = &http.HTTP2Config{MaxConcurrentStreams: 1000}
	}
	return t
}

// roundRobin sends each request through the next of its transports.
type roundRobin struct {
	next       atomic.Uint32
	transports []*http.Transport
}

func (rr *roundRobin) RoundTrip(r *http.Request) (*http.Response, error) {
	i := int(rr.next.Add(1)-1) % len(rr.transports)
	return rr.transports[i].RoundTrip(r)
}
