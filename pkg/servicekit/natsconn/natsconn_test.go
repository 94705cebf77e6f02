package natsconn

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"

	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// certs writes a CA, a server certificate for 127.0.0.1 and a client
// certificate, all signed by the CA, into dir.
func certs(t *testing.T, dir string) (ca, serverCert, serverKey, clientCert, clientKey string) {
	t.Helper()
	write := func(name, typ string, der []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	leaf := func(name string, serial int64, usage x509.ExtKeyUsage) (string, string) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name}, NotBefore: time.Now().Add(-time.Hour),
			NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{usage}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		keyDER, _ := x509.MarshalECPrivateKey(key)
		return write(name+".crt", "CERTIFICATE", der), write(name+".key", "EC PRIVATE KEY", keyDER)
	}
	ca = write("ca.crt", "CERTIFICATE", caDER)
	serverCert, serverKey = leaf("server", 2, x509.ExtKeyUsageServerAuth)
	clientCert, clientKey = leaf("client", 3, x509.ExtKeyUsageClientAuth)
	return
}

// A service connects over TLS with -nats-tls-ca, and with mutual TLS
// when the server asks for a client certificate; without the CA, or
// without its certificate under mTLS, it is refused.
func TestConnectTLSAndMutualTLS(t *testing.T) {
	ca, sc, sk, cc, ck := certs(t, t.TempDir())
	for _, mutual := range []bool{false, true} {
		opts := testkit.ServerOptions(t.TempDir())
		opts.Port = -1
		tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: sc, KeyFile: sk, CaFile: ca, Verify: mutual})
		if err != nil {
			t.Fatal(err)
		}
		opts.TLSConfig, opts.TLS, opts.TLSVerify = tc, true, mutual
		s, err := testkit.StartServer(opts)
		if err != nil {
			t.Fatal(err)
		}
		url := strings.Replace(s.ClientURL(), "nats://", "tls://", 1)
		good := Config{URL: url, TLSCA: ca}
		if mutual {
			good.TLSCert, good.TLSKey = cc, ck
		}
		nc, err := Connect(good, "tls-test", quiet)
		if err != nil {
			t.Fatalf("mutual=%v: %v", mutual, err)
		}
		if !nc.TLSRequired() {
			t.Errorf("mutual=%v: connected without TLS", mutual)
		}
		nc.Close()
		bad := Config{URL: url}
		if mutual {
			bad.TLSCA = ca // trusts the server, but shows no certificate
		}
		if nc, err := Connect(bad, "tls-test", quiet); err == nil {
			nc.Close()
			t.Errorf("mutual=%v: connected with %+v", mutual, bad)
		}
		s.Shutdown()
	}
	if err := (&Config{URL: "tls://x", TLSCert: "c"}).Validate(); err == nil {
		t.Error("a certificate without its key was accepted")
	}
}

// A service connects with a NATS credentials file (-nats-creds) to a
// server in operator (JWT) mode; a wrong or missing one is refused.
func TestConnectCredentialsFile(t *testing.T) {
	okp, _ := nkeys.CreateOperator()
	opub, _ := okp.PublicKey()
	oc := jwt.NewOperatorClaims(opub)
	ojwt, err := oc.Encode(okp)
	if err != nil {
		t.Fatal(err)
	}
	operator, _ := jwt.DecodeOperatorClaims(ojwt)
	akp, _ := nkeys.CreateAccount()
	apub, _ := akp.PublicKey()
	ajwt, err := jwt.NewAccountClaims(apub).Encode(okp)
	if err != nil {
		t.Fatal(err)
	}
	creds := func(signer nkeys.KeyPair) string {
		ukp, _ := nkeys.CreateUser()
		upub, _ := ukp.PublicKey()
		useed, _ := ukp.Seed()
		ujwt, err := jwt.NewUserClaims(upub).Encode(signer)
		if err != nil {
			t.Fatal(err)
		}
		data, err := jwt.FormatUserConfig(ujwt, useed)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "user.creds")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	resolver := &server.MemAccResolver{}
	if err := resolver.Store(apub, ajwt); err != nil {
		t.Fatal(err)
	}
	opts := testkit.ServerOptions(t.TempDir())
	opts.Port, opts.JetStream = -1, false
	opts.TrustedOperators, opts.AccountResolver = []*jwt.OperatorClaims{operator}, resolver
	s, err := testkit.StartServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown()
	nc, err := Connect(Config{URL: s.ClientURL(), Creds: creds(akp)}, "creds-test", quiet)
	if err != nil {
		t.Fatalf("with the account's credentials: %v", err)
	}
	nc.Close()
	stranger, _ := nkeys.CreateAccount() // an account the operator never signed
	if nc, err := Connect(Config{URL: s.ClientURL(), Creds: creds(stranger)}, "creds-test", quiet); err == nil {
		nc.Close()
		t.Error("credentials of an unknown account were accepted")
	}
	if nc, err := Connect(Config{URL: s.ClientURL()}, "creds-test", quiet); err == nil {
		nc.Close()
		t.Error("connected without credentials")
	}
}

// TestNoPasswordInTheLogs: a URL may carry its user's password (NATS
// takes user:password@host); a connection that fails says which servers
// it could not reach, without it. (A reconnection's log line takes
// nats.go's ConnectedUrlRedacted.)
func TestNoPasswordInTheLogs(t *testing.T) {
	t.Parallel()
	_, err := Connect(Config{URL: "nats://frontend:s3cret-pw@127.0.0.1:1, nats://127.0.0.1:2"}, "frontend", quiet)
	if err == nil || strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("connect error %v: want the servers named and no password", err)
	}
	// nats.go takes a URL without a scheme; url.Parse reads its user as one.
	for _, u := range []string{"frontend:s3cret-pw@127.0.0.1:4222", "tls://frontend:s3cret-pw@nats:4222,nats://a:s3cret@b:1"} {
		if got := Redacted(u); strings.Contains(got, "s3cret") || !strings.Contains(got, "frontend") {
			t.Errorf("Redacted(%q) = %q", u, got)
		}
	}
}

// TestASilentServerIsLeft: a connection whose every byte is held both
// ways (no reset: a host lost, a partition) is found stale and left
// within seconds (PingInterval, MaxPingsOut), not the 4-6 minutes of
// nats.go's defaults, during which a service stayed Ready and every call
// of its ran out its bound.
func TestASilentServerIsLeft(t *testing.T) {
	t.Parallel()
	srv := testkit.RunServer(t)
	link := testkit.NewLink(t, strings.TrimPrefix(srv.ClientURL(), "nats://"))
	nc, err := Connect(Config{URL: link.URL()}, "svc", quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	link.Cut(testkit.Both)
	bound := PingInterval*(MaxPingsOut+1) + 5*time.Second
	testkit.Eventually(t, bound, func() bool { return !nc.IsConnected() }, "still connected to a server silent for %s", bound)
}
