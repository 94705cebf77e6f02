package stack

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/quickmatch-dev/quickmatch/dev/stack/proc"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// natsUsers are the users of the NATS configuration the stack makes
// passwords for: the services', the provisioning step's, and the
// operator's (people at the nats CLI).
var natsUsers = []string{"frontend", "matcher", "allocator", "matchfunction", "provisioner", "operator"}

// natsHost is where the stack's NATS listens whatever Config.Host is:
// only the services of this machine talk to it.
const natsHost = "127.0.0.1"

// startNATS starts the embedded server with the users of
// Config.NATSConfig, each with a password made for this run.
func (s *Stack) startNATS() error {
	cfg := s.cfg
	if cfg.NATSConfig == "" {
		root, err := testkit.RepoRoot()
		if err != nil {
			return fmt.Errorf("nats config: none given, and deploy/nats/nats.conf not found: %w", err)
		}
		cfg.NATSConfig = filepath.Join(root, "deploy", "nats", "nats.conf")
	}
	opts, err := s.natsOptions(cfg.NATSConfig)
	if err != nil {
		return err
	}
	opts.Host = natsHost
	opts.Port = cfg.NATSPort
	if cfg.PprofBasePort > 0 {
		opts.ProfPort = cfg.PprofBasePort
		fmt.Fprint(s.logs, proc.Prefix("nats", "profiles on http://"+net.JoinHostPort(natsHost, strconv.Itoa(cfg.PprofBasePort))+"/debug/pprof/"))
	}
	ns, err := testkit.StartServer(opts)
	if err != nil {
		return err
	}
	s.nats = ns
	return nil
}

// natsOptions loads the configuration at path with a password made for
// each user. The configuration reads its passwords from variables; a copy
// of it that defines them first is what the server loads, so the process
// environment is left alone. Host (loopback), port and store directory
// stay the stack's.
func (s *Stack) natsOptions(path string) (*server.Options, error) {
	conf, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("nats config: %w", err)
	}
	vars := "SERVER_NAME: quickmatch-stack\n"
	for _, user := range natsUsers {
		s.passwords[user] = newSecret()
		vars += fmt.Sprintf("%s_PASSWORD: %q\n", strings.ToUpper(user), s.passwords[user])
	}
	if err := os.MkdirAll(s.cfg.DataDir, 0o700); err != nil {
		return nil, err
	}
	wrapperPath := filepath.Join(s.cfg.DataDir, "nats.conf")
	if err := os.WriteFile(wrapperPath, append([]byte(vars), conf...), 0o600); err != nil {
		return nil, err
	}
	opts, err := server.ProcessConfigFile(wrapperPath)
	if err != nil {
		return nil, fmt.Errorf("nats config: %w", err)
	}
	opts.StoreDir, opts.NoSigs, opts.HTTPPort = filepath.Join(s.cfg.DataDir, "nats"), true, 0
	return opts, nil
}

// writeNATSEnv writes NATSEnvFile: the operator's settings, as the nats
// CLI reads them from the environment.
func (s *Stack) writeNATSEnv() error {
	path := s.NATSEnvFile()
	body := fmt.Sprintf("NATS_URL=%s\nNATS_USER=operator\nNATS_PASSWORD=%s\n", s.NATSURL(), s.passwords["operator"])
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		return err
	}
	return os.Chmod(path, 0o600) // a file left by an older run keeps its mode otherwise
}

func newSecret() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}
