package jointoken

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// KeyID is the id of pub written in tokens: the first 8 bytes of the
// SHA-256 of its raw 32 bytes, in lowercase hex (16 characters).
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

func validKeyID(kid string) bool {
	if len(kid) != 16 {
		return false
	}
	for _, r := range kid {
		if (r < '0' || r > '9') && (r < 'a' || r > 'f') {
			return false
		}
	}
	return true
}

// DefaultReload is how often LoadKeys reads its file again when the
// config does not say.
const DefaultReload = 10 * time.Second

// KeysConfig says where a game server's public keys are.
type KeysConfig struct {
	// Path is a PEM file of one or more "PUBLIC KEY" blocks (Ed25519 in
	// PKIX form, as `openssl pkey -pubout` writes), or a directory whose
	// files each hold some (names starting with "." are skipped, symbolic
	// links followed: a mounted Kubernetes Secret or ConfigMap works).
	// Every key found is accepted.
	Path string
	// Reload is how often Path is read again, on the next Verify after it
	// passed. A token with a key id not in the set also reads it again, at
	// most once a second. Default 10 s.
	Reload time.Duration
	// OnReloadError, if set, hears why a read of Path after the first
	// failed; the keys read last stay in use until a read succeeds.
	OnReloadError func(error)
	// OnChange, if set, hears the key ids in use after a read of Path
	// that changed them (so a rotation can be followed in the logs).
	OnChange func(ids []string)
}

// unknownKeyReload bounds the reads of Path that tokens with unknown key
// ids cause: an attacker sending random ids costs one read a second.
const unknownKeyReload = time.Second

// Keys is a set of public keys, by key id, that verifies tokens. It is
// safe for concurrent use. Verify never waits for a read of the key files:
// one caller reads while the others use the set read before.
type Keys struct {
	cfg    KeysConfig
	now    func() time.Time
	set    atomic.Pointer[keySet]
	reload sync.Mutex // held by the one caller reading Path
}

type keySet struct {
	byID map[string]ed25519.PublicKey
	read time.Time // when Path was last read, or tried
}

// NewKeys returns a fixed set of keys (no file behind it).
func NewKeys(pubs ...ed25519.PublicKey) *Keys {
	k := &Keys{now: time.Now}
	k.set.Store(&keySet{byID: byID(pubs)})
	return k
}

// LoadKeys reads the keys at cfg.Path. It fails if none can be read; later
// reads that fail keep the keys read before.
func LoadKeys(cfg KeysConfig) (*Keys, error) {
	if cfg.Reload <= 0 {
		cfg.Reload = DefaultReload
	}
	if cfg.Path == "" {
		return nil, errors.New("join token public keys: no path")
	}
	k := &Keys{cfg: cfg, now: time.Now}
	pubs, err := readPublicKeys(cfg.Path)
	if err != nil {
		return nil, err
	}
	k.set.Store(&keySet{byID: byID(pubs), read: k.now()})
	return k, nil
}

// IDs are the key ids of the set, sorted, for logs.
func (k *Keys) IDs() []string {
	ids := slices.Collect(maps.Keys(k.set.Load().byID))
	slices.Sort(ids)
	return ids
}

func sameIDs(a, b map[string]ed25519.PublicKey) bool {
	if len(a) != len(b) {
		return false
	}
	for id := range a {
		if _, ok := b[id]; !ok {
			return false
		}
	}
	return true
}

// Verify checks the signature and the expiry of token and returns its grant.
func (k *Keys) Verify(token string, now time.Time) (Grant, error) {
	kid, signed, sig, err := parse(token)
	if err != nil {
		return Grant{}, err
	}
	pub, ok := k.key(kid)
	if !ok {
		return Grant{}, fmt.Errorf("%w %s", ErrUnknownKey, kid)
	}
	if !ed25519.Verify(pub, []byte(signed), sig) {
		return Grant{}, ErrSignature
	}
	return grantOf(signed, now)
}

// key finds kid, reading the key files again first when that is due.
func (k *Keys) key(kid string) (ed25519.PublicKey, bool) {
	s := k.set.Load()
	pub, ok := s.byID[kid]
	if k.cfg.Path == "" {
		return pub, ok
	}
	since := k.now().Sub(s.read)
	if since < k.cfg.Reload && (ok || since < min(unknownKeyReload, k.cfg.Reload)) {
		return pub, ok
	}
	if !k.reload.TryLock() {
		return pub, ok // another caller is reading them
	}
	defer k.reload.Unlock()
	// Another caller may have read them between our Load and the lock:
	// compare with what is in use now, or a change is reported twice.
	s = k.set.Load()
	next := &keySet{byID: s.byID, read: k.now()}
	if pubs, err := readPublicKeys(k.cfg.Path); err != nil {
		if k.cfg.OnReloadError != nil {
			k.cfg.OnReloadError(err)
		}
	} else {
		next.byID = byID(pubs)
	}
	k.set.Store(next)
	if k.cfg.OnChange != nil && !sameIDs(s.byID, next.byID) {
		k.cfg.OnChange(k.IDs())
	}
	pub, ok = next.byID[kid]
	return pub, ok
}

func byID(pubs []ed25519.PublicKey) map[string]ed25519.PublicKey {
	m := make(map[string]ed25519.PublicKey, len(pubs))
	for _, p := range pubs {
		m[KeyID(p)] = p
	}
	return m
}

// readPublicKeys reads every public key of a PEM file or a directory.
func readPublicKeys(path string) ([]ed25519.PublicKey, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("join token public keys: %w", err)
	}
	files := []string{path}
	if info.IsDir() {
		files = nil
		entries, err := os.ReadDir(path)
		if err != nil {
			return nil, fmt.Errorf("join token public keys: %w", err)
		}
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".") {
				continue // Kubernetes volumes keep their versions in ..data
			}
			full := filepath.Join(path, e.Name())
			if st, err := os.Stat(full); err != nil || !st.Mode().IsRegular() {
				continue // a dangling link or a directory
			}
			files = append(files, full)
		}
	}
	var pubs []ed25519.PublicKey
	for _, f := range files {
		data, err := os.ReadFile(f)
		if info.IsDir() && errors.Is(err, fs.ErrNotExist) {
			continue // removed since the listing: a rotation dropping a key
		}
		if err != nil {
			return nil, fmt.Errorf("join token public keys: %w", err)
		}
		got, err := ParsePublicKeys(data)
		if err != nil {
			return nil, fmt.Errorf("join token public keys %s: %w", f, err)
		}
		pubs = append(pubs, got...)
	}
	if len(pubs) == 0 {
		return nil, fmt.Errorf("join token public keys: no key in %s", path)
	}
	return pubs, nil
}

// ParsePublicKeys returns the Ed25519 keys of the "PUBLIC KEY" PEM blocks
// of data. A private key is refused: a game server must not hold one. So
// is any text but white space outside the blocks (pem.Decode skips it): it
// may be a key spelled out, as `openssl pkey -text` prints a private key.
func ParsePublicKeys(data []byte) ([]ed25519.PublicKey, error) {
	var pubs []ed25519.PublicKey
	for {
		block, rest := pem.Decode(data)
		if block == nil {
			if strings.TrimSpace(string(rest)) != "" {
				return nil, errors.New("not PEM")
			}
			break
		}
		// What Decode read must be white space and the one block: text,
		// or a malformed block it skipped, before it is refused.
		read := data[:len(data)-len(rest)]
		begin := bytes.Index(read, []byte("-----BEGIN"))
		if strings.TrimSpace(string(read[:begin])) != "" || bytes.Count(read, []byte("-----BEGIN")) != 1 {
			return nil, errors.New("text outside the PEM blocks")
		}
		data = rest
		if block.Type != "PUBLIC KEY" {
			return nil, fmt.Errorf("a %q PEM block where only PUBLIC KEY blocks belong", block.Type)
		}
		key, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("public key: %w", err)
		}
		pub, ok := key.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("a %T public key: want Ed25519", key)
		}
		pubs = append(pubs, pub)
	}
	return pubs, nil
}

// LoadPrivateKey reads an Ed25519 private key from a PEM file holding one
// "PRIVATE KEY" block (PKCS #8, as `openssl genpkey -algorithm ed25519`
// writes).
func LoadPrivateKey(path string) (ed25519.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("join token private key: %w", err)
	}
	priv, err := ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("join token private key %s: %w", path, err)
	}
	return priv, nil
}

// ParsePrivateKey reads an Ed25519 private key from PEM data whose first
// block is a "PRIVATE KEY" (PKCS #8). Its errors do not say which key it
// was: the caller, who knows, does.
func ParsePrivateKey(data []byte) (ed25519.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, errors.New("want a PEM PRIVATE KEY block")
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	priv, ok := key.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("a %T key, want Ed25519", key)
	}
	return priv, nil
}

// MarshalPrivateKey is key as a PEM "PRIVATE KEY" block (PKCS #8).
func MarshalPrivateKey(key ed25519.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("marshal join token private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// MarshalPublicKey is pub as a PEM "PUBLIC KEY" block (PKIX).
func MarshalPublicKey(pub ed25519.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("marshal join token public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// EnsureKeyPair makes a development key pair: an Ed25519 private key at
// privPath (mode 0600) unless one is there already, and its public key at
// pubPath (written every time, so it always matches). The local stack and
// tests use it; deployments make their keys with openssl (deploy/helm).
func EnsureKeyPair(privPath, pubPath string) error {
	priv, err := LoadPrivateKey(privPath)
	if errors.Is(err, fs.ErrNotExist) {
		_, priv, err = ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return fmt.Errorf("generate join token key: %w", err)
		}
		data, err := MarshalPrivateKey(priv)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(privPath), 0o700); err != nil {
			return fmt.Errorf("join token private key: %w", err)
		}
		if err := os.WriteFile(privPath, data, 0o600); err != nil {
			return fmt.Errorf("join token private key: %w", err)
		}
	} else if err != nil {
		return err
	}
	data, err := MarshalPublicKey(priv.Public().(ed25519.PublicKey))
	if err != nil {
		return err
	}
	if old, err := os.ReadFile(pubPath); err == nil && string(old) == string(data) {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(pubPath), 0o700); err != nil {
		return fmt.Errorf("join token public key: %w", err)
	}
	// Written aside, then renamed: a game server reading it meanwhile sees
	// the old file or the new one, never half of one. A dot name: a reader
	// of the directory skips it.
	tmp := filepath.Join(filepath.Dir(pubPath), "."+filepath.Base(pubPath)+".tmp")
	if err := os.WriteFile(tmp, data, 0o644); err != nil { //nolint:gosec // a public key
		return fmt.Errorf("join token public key: %w", err)
	}
	if err := os.Rename(tmp, pubPath); err != nil {
		return fmt.Errorf("join token public key: %w", err)
	}
	return nil
}
