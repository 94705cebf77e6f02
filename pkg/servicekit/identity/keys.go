package identity

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/quickmatch-dev/quickmatch/pkg/jointoken"
)

// ErrBadKey is returned for a key file that holds no usable key.
var ErrBadKey = errors.New("unusable key")

// KeyID names a public key: the SHA-256 of its PKIX encoding, base64url,
// cut to 22 characters (128 bits). The Minter puts it in a token's kid
// header; the Verifier files a static key under it.
func KeyID(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrBadKey, err)
	}
	sum := sha256.Sum256(der)
	return base64.RawURLEncoding.EncodeToString(sum[:])[:22], nil
}

// LoadPublicKeys reads every PEM block of a file: public keys (PKIX "PUBLIC
// KEY", PKCS#1 "RSA PUBLIC KEY") and certificates. Private keys are refused,
// so that a verifier is never handed a signing key by mistake (a Minter's
// key is read with LoadPrivateKey, and its public half given with Public).
func LoadPublicKeys(path string) ([]crypto.PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("public keys %s: %w", path, err)
	}
	var keys []crypto.PublicKey
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		var k any
		switch b.Type {
		case "PUBLIC KEY":
			k, err = x509.ParsePKIXPublicKey(b.Bytes)
		case "RSA PUBLIC KEY":
			k, err = x509.ParsePKCS1PublicKey(b.Bytes)
		case "CERTIFICATE":
			var c *x509.Certificate
			if c, err = x509.ParseCertificate(b.Bytes); err == nil {
				k = c.PublicKey
			}
		default:
			return nil, fmt.Errorf("%w: %s: PEM block %q is not a public key", ErrBadKey, path, b.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrBadKey, path, err)
		}
		switch k.(type) {
		case *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey:
		default:
			return nil, fmt.Errorf("%w: %s: %T keys are not supported", ErrBadKey, path, k)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: %s has no PEM public key", ErrBadKey, path)
	}
	return keys, nil
}

// LoadPrivateKey reads an Ed25519 private key (PKCS#8 PEM).
func LoadPrivateKey(path string) (ed25519.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("private key %s: %w", path, err)
	}
	// The same form as a join-token signing key (PKCS#8 Ed25519 PEM), so
	// one parser reads both.
	priv, err := jointoken.ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrBadKey, path, err)
	}
	return priv, nil
}

// LoadOrCreatePrivateKey reads an Ed25519 private key, first writing a new
// one (mode 0600, its directory 0700) if the file does not exist. It is
// for the development issuer: a key kept between runs, so tokens and the
// load tool keep working across restarts of `make run`.
func LoadOrCreatePrivateKey(path string) (ed25519.PrivateKey, error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		if err := WritePrivateKey(path); err != nil {
			return nil, err
		}
	}
	return LoadPrivateKey(path)
}

// EnsureKeyPair loads (or first makes) the Ed25519 private key at privPath
// and writes its public half to pubPath (mode 0600), the form
// -auth-public-keys reads: the development issuer's key, or the key a
// load test mints players' tokens with.
func EnsureKeyPair(privPath, pubPath string) error {
	key, err := LoadOrCreatePrivateKey(privPath)
	if err != nil {
		return err
	}
	pub, err := PublicKeyPEM(key.Public())
	if err != nil {
		return err
	}
	if err := os.WriteFile(pubPath, pub, 0o600); err != nil {
		return fmt.Errorf("public key %s: %w", pubPath, err)
	}
	return nil
}

// WritePrivateKey writes a new Ed25519 private key as PKCS#8 PEM. It
// refuses to replace an existing file.
func WritePrivateKey(path string) error {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("generate key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return fmt.Errorf("encode key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("key directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create key %s: %w", path, err)
	}
	if err := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
		_ = f.Close()
		return fmt.Errorf("write key %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write key %s: %w", path, err)
	}
	return nil
}

// PublicKeyPEM encodes a public key as a PKIX "PUBLIC KEY" PEM block, the
// form -auth-public-keys reads.
func PublicKeyPEM(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadKey, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}
