package identity

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
)

// ErrNotLoopback: the development issuer serves only this machine.
var ErrNotLoopback = errors.New("the development issuer is loopback only")

// Where `make run` keeps the development issuer's key: DevDataDir is
// localstack's default -data-dir, relative to the repository's root, and
// DevIssuerKeyFile the key's path under any data directory (dev/stack
// makes it there). The load tool mints its tokens with that key when it
// finds it, so the three must agree.
const (
	DevDataDir       = ".data"
	DevIssuerKeyFile = "identity/dev-issuer.pem"
)

// DevIssuer is the development issuer: `POST /dev/token` hands any caller
// on this machine a player token, so `make run`'s page and curl work with
// identity on. It exists for development only: the frontend refuses to
// start with it unless it listens on a loopback address, and the handler
// refuses requests from anywhere else.
type DevIssuer struct {
	minter *Minter
}

// NewDevIssuer returns the development issuer for the Ed25519 private key
// in path, creating the key file if it is missing.
func NewDevIssuer(path, issuer, audience string) (*DevIssuer, error) {
	key, err := LoadOrCreatePrivateKey(path)
	if err != nil {
		return nil, err
	}
	m, err := NewMinter(key, issuer, audience)
	if err != nil {
		return nil, err
	}
	return &DevIssuer{minter: m}, nil
}

// Public is the key a Verifier must trust for the issuer's tokens.
func (d *DevIssuer) Public() StaticKey { return d.minter.Public() }

// DevTokenRequest is the optional body of POST /dev/token.
type DevTokenRequest struct {
	// PlayerID to issue the token to; a random "dev-<hex>" if empty.
	PlayerID string `json:"player_id,omitempty"`
	// Server asks for a server-role token (a game backend's, named
	// "dev-backend") instead: what queues a party.
	Server bool `json:"server,omitempty"`
}

// DevToken is the answer of POST /dev/token.
type DevToken struct {
	Token    string `json:"token"`
	PlayerID string `json:"player_id"`
}

// ServeHTTP answers POST /dev/token for loopback clients.
func (d *DevIssuer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !loopbackRemote(r.RemoteAddr) || !loopbackName(r.Host) || r.Header.Get("X-Forwarded-For") != "" || !loopbackOrigin(r.Header.Get("Origin")) {
		writeErr(w, http.StatusForbidden, ErrNotLoopback.Error())
		return
	}
	var req DevTokenRequest
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1024))
	if err != nil {
		writeErr(w, http.StatusRequestEntityTooLarge, "body over 1024 bytes")
		return
	}
	if len(body) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			writeErr(w, http.StatusBadRequest, "body: "+err.Error())
			return
		}
	}
	if req.Server {
		d.issue(w, DevToken{}, func() (string, error) { return d.minter.Server("dev-backend", "") })
		return
	}
	if req.PlayerID == "" {
		var b [6]byte
		_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
		req.PlayerID = "dev-" + hex.EncodeToString(b[:])
	}
	if err := CheckPlayerID(req.PlayerID); err != nil {
		writeErr(w, http.StatusBadRequest, err.Error())
		return
	}
	d.issue(w, DevToken{PlayerID: req.PlayerID}, func() (string, error) { return d.minter.Player(req.PlayerID) })
}

// issue answers with answer and the token mint signs.
func (d *DevIssuer) issue(w http.ResponseWriter, answer DevToken, mint func() (string, error)) {
	tok, err := mint()
	if err != nil {
		writeErr(w, http.StatusInternalServerError, err.Error())
		return
	}
	answer.Token = tok
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(answer)
}

func writeErr(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// loopbackRemote reports whether a request's peer (never a forwarded
// header) is this machine.
func loopbackRemote(remote string) bool {
	ap, err := netip.ParseAddrPort(remote)
	return err == nil && ap.Addr().Unmap().IsLoopback()
}

// loopbackName reports whether a request's Host names this machine. A
// page of another site whose name it made resolve to 127.0.0.1 (DNS
// rebinding) reaches the issuer from the developer's own browser, a
// loopback peer, but under its own name: the issuer would hand it
// tokens, a server token among them. A proxy on this machine forwarding
// others' requests says X-Forwarded-For (refused too).
func loopbackName(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	return loopbackHost(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
}

// loopbackHost reports whether host (no port, no brackets) is this
// machine: localhost or a loopback address.
func loopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// loopbackOrigin reports whether a browser's Origin (none: not a
// browser's cross-site request) is a page of this machine.
func loopbackOrigin(origin string) bool {
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && loopbackName(u.Host)
}

// CheckLoopbackListen refuses a listen address that is not loopback only
// (an empty host, as in ":3000", listens on every interface).
func CheckLoopbackListen(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("listen address %q: %w", addr, err)
	}
	if !loopbackHost(host) {
		return fmt.Errorf("%w: listen address %q is not a loopback address", ErrNotLoopback, addr)
	}
	return nil
}
