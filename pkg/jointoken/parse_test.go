package jointoken

import (
	"strings"
	"testing"
)

// TestParsePublicKeysRefusesTextOutsideBlocks: a file that holds text
// besides its PUBLIC KEY blocks (`openssl pkey -text` output, which spells
// the private key out in hex, before or between the blocks) is refused:
// a game server must not be handed a private key in any form.
func TestParsePublicKeysRefusesTextOutsideBlocks(t *testing.T) {
	t.Parallel()
	block := string(must(MarshalPublicKey(pub(0))))
	other := string(must(MarshalPublicKey(pub(1))))
	text := "ED25519 Private-Key:\npriv:\n    32:e9:72:ef:b2:3d:44:90:0d:eb:c9:9c:7f:59:90:\n"
	for name, data := range map[string]string{
		"text before":           text + block,
		"text between":          block + text + other,
		"text after":            block + text,
		"a broken block before": "-----BEGIN PUBLIC KEY-----\nnot base64\n" + block,
	} {
		if pubs, err := ParsePublicKeys([]byte(data)); err == nil {
			t.Errorf("%s: accepted %d keys", name, len(pubs))
		}
	}
	pubs, err := ParsePublicKeys([]byte("\n\n" + block + "\n \n" + other + "\n\t"))
	if err != nil || len(pubs) != 2 {
		t.Fatalf("two blocks with space around them: %d keys, %v", len(pubs), err)
	}
	if _, err := ParsePublicKeys([]byte(strings.TrimSpace(text))); err == nil {
		t.Fatal("text alone accepted")
	}
}
