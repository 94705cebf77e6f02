package main

import (
	"strings"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/identity"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/api"
)

// A token's verification is bounded by -verify-wait (VERIFY_WAIT) while
// its creation holds a slot, and remembered in a cache of
// -auth-token-cache-size tokens (negative: none); a wait that is not
// above 0, or a cache of 0, stops the start.
func TestVerifyFlags(t *testing.T) {
	c, err := parseConfig([]string{"-auth-insecure"})
	if err != nil {
		t.Fatal(err)
	}
	if c.api.VerifyWait != api.DefaultVerifyWait || c.auth.tokenCacheSize != identity.DefaultTokenCacheSize {
		t.Fatalf("defaults %v, %d; want the api and identity packages' defaults", c.api.VerifyWait, c.auth.tokenCacheSize)
	}
	if c, err = parseConfig([]string{"-auth-insecure", "-verify-wait=250ms", "-auth-token-cache-size=-1"}); err != nil ||
		c.api.VerifyWait != 250*time.Millisecond || c.auth.tokenCacheSize != -1 {
		t.Fatalf("flags: %v, %d, %v", c.api.VerifyWait, c.auth.tokenCacheSize, err)
	}
	t.Setenv("VERIFY_WAIT", "3s")
	t.Setenv("AUTH_TOKEN_CACHE_SIZE", "100")
	if c, err = parseConfig([]string{"-auth-insecure"}); err != nil || c.api.VerifyWait != 3*time.Second || c.auth.tokenCacheSize != 100 {
		t.Fatalf("VERIFY_WAIT=3s AUTH_TOKEN_CACHE_SIZE=100: %v, %d, %v", c.api.VerifyWait, c.auth.tokenCacheSize, err)
	}
	for _, tc := range []struct {
		arg, flag string
	}{
		{"-verify-wait=-1s", "-verify-wait"},
		{"-verify-wait=0", "-verify-wait"},
		{"-auth-token-cache-size=0", "-auth-token-cache-size"},
		{"-auth-token-cache-size=16384000000", "-auth-token-cache-size"},
		{"-heartbeat=30s", "-heartbeat"}, // not below -write-timeout's 30 s
	} {
		if _, err := parseConfig([]string{"-auth-insecure", tc.arg}); err == nil || !strings.Contains(err.Error(), tc.flag) {
			t.Errorf("%s: %v, want refused", tc.arg, err)
		}
	}
}
