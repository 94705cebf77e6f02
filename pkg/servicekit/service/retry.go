package service

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/natsconn"
)

// Backoff of the start-up retries (connecting, provisioning, waiting for
// the topology): from retryMin, doubling, to retryMax, which also paces
// the log lines saying why.
const (
	retryMin = 250 * time.Millisecond
	retryMax = 5 * time.Second
)

// ErrPermanent marks a start-up error that retrying cannot fix (see
// isPermanent): Connect and Provision return it at once instead of retrying.
var ErrPermanent = errors.New("not retried")

// retry calls try until it returns nil or a permanent error, or ctx ends,
// waiting with capped exponential backoff between attempts and logging
// each failed one with msg; the error it returns starts with what, when
// not empty. NATS starting after the service (docker compose, a rolling
// restart, a cluster still electing its JetStream leader) is normal; ending the process for it only hands the same retry
// to whatever restarts processes, with less said about why.
//
// nc, when not nil, is the connection try's requests go over. A request
// the server refuses for want of a permission gets no answer: the server
// says why apart, on the connection (its last error), and the request
// times out. An attempt during which the connection was told so fails
// permanently, with what the server said, instead of being retried as a
// timeout while the service never becomes ready.
func retry(ctx context.Context, nc *nats.Conn, log *slog.Logger, what, msg string, try func(context.Context) error) error {
	if what != "" {
		what += ": "
	}
	wait := retryMin
	for attempt := 1; ; attempt++ {
		before := lastError(nc)
		err := try(ctx)
		if err == nil {
			return nil
		}
		if last := lastError(nc); last != before && natsconn.RequestRefused(last) {
			err = fmt.Errorf("%w; the server said: %w", err, last)
		}
		if isPermanent(err) {
			if errors.Is(err, ErrPermanent) {
				return fmt.Errorf("%s%w", what, err)
			}
			return fmt.Errorf("%s%w (%w)", what, err, ErrPermanent)
		}
		log.Warn(msg, "attempt", attempt, "err", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s%w (last: %w)", what, ctx.Err(), err)
		case <-time.After(wait):
		}
		wait = min(2*wait, retryMax)
	}
}

// isPermanent reports the errors of a wrong configuration, which no amount
// of waiting fixes: credentials NATS refuses, a permission the NATS user
// lacks, a credentials, key or CA file that cannot be read, a certificate
// that does not verify. They fail fast so that the process ends saying so
// (and Kubernetes shows a crash loop) instead of retrying quietly while
// never becoming ready. A password rotated on the server before the
// service's secret is the one case retrying could outlast; a restart with
// the new secret is what fixes it there too. A JetStream API error is
// permanent when the server refuses the configuration itself (see
// refusedConfig). Everything else (no server reachable, a timeout, other
// JetStream API errors, among them the "no suitable peers" of a cluster
// still forming) is retried.
func isPermanent(err error) bool {
	var (
		api     *jetstream.APIError
		path    *fs.PathError
		verify  *tls.CertificateVerificationError
		unknown x509.UnknownAuthorityError
		host    x509.HostnameError
		invalid x509.CertificateInvalidError
	)
	return errors.Is(err, ErrPermanent) ||
		errors.Is(err, nats.ErrAuthorization) || errors.Is(err, nats.ErrAuthExpired) ||
		errors.Is(err, nats.ErrAuthRevoked) || errors.Is(err, nats.ErrAccountAuthExpired) ||
		errors.Is(err, nats.ErrPermissionViolation) ||
		errors.As(err, &path) || errors.As(err, &verify) || errors.As(err, &unknown) ||
		errors.As(err, &host) || errors.As(err, &invalid) ||
		(errors.As(err, &api) && refusedConfig(api))
}

// refusedConfig reports a JetStream API error that says the declared
// topology cannot be applied as it is: a bad request (the 400s, such as a
// stream name in use with another configuration, or replicas that cannot
// change), or an invalid stream configuration (10052, which JetStream
// answers with a 500, for instance for a storage type that cannot change
// in place), or replicas a single server cannot have (10074). Only "no
// suitable peers" (10005) is a 400 that time fixes: a cluster still
// forming.
func refusedConfig(e *jetstream.APIError) bool {
	const (
		noSuitablePeers      jetstream.ErrorCode = 10005
		invalidStreamConfig  jetstream.ErrorCode = 10052
		replicasNotSupported jetstream.ErrorCode = 10074 // R3 on one server
	)
	return (e.Code == 400 && e.ErrorCode != noSuitablePeers) ||
		e.ErrorCode == invalidStreamConfig || e.ErrorCode == replicasNotSupported
}

// connect is natsconn.Connect as name, retried until NATS answers. Only
// not reaching a server is retried: any other connect error (a URL that
// does not parse, a credentials file with no key, a CA file that is not
// PEM) is the configuration's, and ends start-up at once.
func connect(ctx context.Context, c natsconn.Config, name string, log *slog.Logger) (*nats.Conn, error) {
	var nc *nats.Conn
	err := retry(ctx, nil, log, "", "cannot reach NATS yet; retrying", func(ctx context.Context) error {
		var err error
		nc, err = dial(ctx, c, name, log)
		if err != nil && !unreachable(err) && ctx.Err() == nil {
			return fmt.Errorf("%w (%w)", err, ErrPermanent)
		}
		return err
	})
	return nc, err
}

// dial is natsconn.Connect, given up when ctx ends: nats.Connect takes
// no context, and a server that accepts and never answers holds it for
// its whole timeout (10 s) per URL, past a pod's grace at a stop. A
// connection that comes after ctx ended is closed.
func dial(ctx context.Context, c natsconn.Config, name string, log *slog.Logger) (*nats.Conn, error) {
	type dialed struct {
		nc  *nats.Conn
		err error
	}
	out := make(chan dialed, 1)
	go func() {
		nc, err := natsconn.Connect(c, name, log)
		out <- dialed{nc, err}
	}()
	select {
	case d := <-out:
		return d.nc, d.err
	case <-ctx.Done():
		go func() {
			if d := <-out; d.nc != nil {
				d.nc.Close()
			}
		}()
		return nil, ctx.Err()
	}
}

// unreachable reports a connect error that says no server answered (yet):
// none reachable, a dial or read that failed or timed out, a connection
// closed during the handshake.
func unreachable(err error) bool {
	var (
		netErr  net.Error
		badAddr *net.AddrError // a URL whose address does not parse: a net.Error, not a network one
	)
	if errors.As(err, &badAddr) {
		return false
	}
	return errors.Is(err, nats.ErrNoServers) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrStaleConnection) || errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) || errors.As(err, &netErr)
}

// Retry calls try as Connect waits for NATS and the topology: until it
// returns nil or an error no waiting fixes (see isPermanent), or ctx
// ends, with the same backoff, logging each failure as what. A service
// binds its buckets and reads what it must know before it is ready (the
// drains in force) through it. A restart during a NATS partition or a
// stream's leader election meets a bucket that does not answer for
// seconds after the topology was found; ending the process for that
// hands the same wait to whatever restarts processes, whose backoff
// (Kubernetes' crash loop) outlasts the outage. A permission the NATS
// user lacks is not waited out: an attempt during which the server
// refused one on nc (try's connection) ends start-up, saying which.
func Retry(ctx context.Context, nc *nats.Conn, log *slog.Logger, what string, try func(context.Context) error) error {
	return retry(ctx, nc, log, what, what+": "+RetryNote, try)
}

// lastError is nc's last error, nil without a connection. Each error the
// server sends is a new value, so two readings differ when one came in
// between, even if it says the same.
func lastError(nc *nats.Conn) error {
	if nc == nil {
		return nil
	}
	return nc.LastError()
}

// RetryNote ends the message Retry logs for each failed attempt.
const RetryNote = "failed; retrying"
