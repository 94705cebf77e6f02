package deploytest

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
)

// JoinKeys is a join token key pair for test renders, as PEM: the private
// key (PKCS #8) and its public key (PKIX), the forms openssl writes and
// pkg/jointoken reads. A fixed seed: renders are the same every run.
func JoinKeys() (private, public string) {
	key := ed25519.NewKeyFromSeed([]byte("deploy-test-join-key-0123456789a"))
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		panic(err) // an Ed25519 key always marshals
	}
	pubDER, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		panic(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}))
}

// JoinKeyValues are the chart values that set JoinKeys.
func JoinKeyValues() map[string]any {
	private, public := JoinKeys()
	return map[string]any{"joinKeys": map[string]any{
		"privateKey": map[string]any{"value": private},
		"publicKeys": map[string]any{"values": []any{public}},
	}}
}
