// Package natsconn connects a service to NATS with the options every
// service needs: a name, credentials or TLS when configured, reconnecting
// forever with the state changes logged.
package natsconn

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// Config says how to reach NATS.
type Config struct {
	// URL is a comma-separated list of server URLs.
	URL string
	// Creds is a NATS credentials file (JWT + nkey seed), optional.
	Creds string
	// User and Password authenticate against users of the server's
	// configuration (deploy/nats/nats.conf), optional.
	User, Password string
	// TLSCA, TLSCert and TLSKey enable TLS; the pair is optional (mTLS).
	TLSCA, TLSCert, TLSKey string
	// SubjectPrefix separates deployments sharing one NATS account.
	SubjectPrefix string
}

// RegisterFlags adds the NATS flags to fs.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.URL, "nats-url", nats.DefaultURL, "NATS server URLs, comma-separated")
	fs.StringVar(&c.Creds, "nats-creds", "", "NATS credentials file (optional)")
	fs.StringVar(&c.User, "nats-user", "", "NATS user of the server configuration (optional; see deploy/nats/nats.conf)")
	fs.StringVar(&c.Password, "nats-password", "", "password of nats-user; give it as NATS_PASSWORD rather than on the command line")
	fs.StringVar(&c.TLSCA, "nats-tls-ca", "", "CA file to verify the NATS server (optional)")
	fs.StringVar(&c.TLSCert, "nats-tls-cert", "", "client certificate for NATS mTLS (optional)")
	fs.StringVar(&c.TLSKey, "nats-tls-key", "", "client key for NATS mTLS (optional)")
	fs.StringVar(&c.SubjectPrefix, "subject-prefix", "", "prefix of every subject and stream, to share one NATS between deployments")
}

// Validate reports every problem at once.
func (c *Config) Validate() error {
	var errs []error
	if c.URL == "" {
		errs = append(errs, errors.New("nats-url is empty"))
	}
	if (c.User == "") != (c.Password == "") {
		errs = append(errs, errors.New("nats-user and nats-password go together"))
	}
	if c.User != "" && c.Creds != "" {
		errs = append(errs, errors.New("nats-user and nats-creds exclude each other"))
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		errs = append(errs, errors.New("nats-tls-cert and nats-tls-key go together"))
	}
	return errors.Join(errs...)
}

// InboxPrefix is where a service's request replies arrive: _INBOX_<name>.
func InboxPrefix(name string) string { return "_INBOX_" + name }

// A connection whose server stopped answering without closing it (a
// host lost, a partition, a frozen VM: no reset ever comes) is found
// stale after PingInterval times MaxPingsOut and one more without an
// answer, and made again, to another server where there is one: 15-20 s,
// past the cuts a network heals by itself in place (the chaos runs'
// 8 s), where nats.go's defaults (2 minutes, 2) took 4-6 minutes, every
// bound of the services' contracts (seconds) run out meanwhile: a
// frontend Ready and failing every creation, an allocator pulling
// nothing.
const (
	PingInterval = 5 * time.Second
	MaxPingsOut  = 3
)

// Connect opens the connection. It waits up to 10 s for the first connect,
// then reconnects forever: a service outlives a NATS restart.
func Connect(c Config, name string, log *slog.Logger) (*nats.Conn, error) {
	opts := []nats.Option{
		nats.PingInterval(PingInterval),
		nats.MaxPingsOutstanding(MaxPingsOut),
		nats.Name(name),
		// Each service's replies arrive under its own prefix, which the
		// server configuration lets only that service's user read
		// (deploy/nats/nats.conf).
		nats.CustomInboxPrefix(InboxPrefix(name)),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.Timeout(10 * time.Second),
		nats.RetryOnFailedConnect(false),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil { // nil: our own Drain or Close
				log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("nats reconnected", "url", nc.ConnectedUrlRedacted()) }),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			log.Error("nats async error", "subject", subject, "err", err)
		}),
	}
	if c.Creds != "" {
		opts = append(opts, nats.UserCredentials(c.Creds))
	}
	if c.User != "" {
		opts = append(opts, nats.UserInfo(c.User, c.Password))
	}
	if c.TLSCA != "" {
		opts = append(opts, nats.RootCAs(c.TLSCA))
	}
	if c.TLSCert != "" {
		opts = append(opts, nats.ClientCert(c.TLSCert, c.TLSKey))
	}
	nc, err := nats.Connect(c.URL, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to nats %s: %w", Redacted(c.URL), err)
	}
	return nc, nil
}

// Redacted is urls (comma-separated, as -nats-url takes them) with any
// password replaced, to be said in an error or a log: NATS takes
// user:password@host, with or without a scheme.
func Redacted(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		p = strings.TrimSpace(p)
		if !strings.Contains(p, "://") {
			p = "nats://" + p // as nats.go reads one without a scheme
		}
		if u, err := url.Parse(p); err == nil {
			parts[i] = u.Redacted()
		} else if strings.Contains(p, "@") {
			parts[i] = "(a URL that does not parse)"
		}
	}
	return strings.Join(parts, ",")
}
