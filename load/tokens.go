package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/identity"
)

// tokens gives each simulated player its bearer token, so that every run
// goes through the frontend's identity checks as real players do: minted
// per player with an Ed25519 key the frontend trusts (-token-key: the
// development issuer's key file, or a key whose public half is in the
// frontend's -auth-public-keys), or one token for every request (-token:
// a server-role token from the studio's identity provider, which may queue
// for any player). With neither, requests carry no token (a frontend run
// with -auth-insecure).
type tokens struct {
	keyFile, fixed, issuer, audience string
	minter                           *identity.Minter
	// ahead are the tokens mintAhead minted, by player index; read-only
	// after.
	ahead []string
}

func (t *tokens) register(fs *flag.FlagSet) {
	fs.StringVar(&t.keyFile, "token-key", "", "Ed25519 private key PEM file to mint each player's token with (default: "+devIssuerKey+", make run's, when that file is there and -token is not given)")
	fs.StringVar(&t.fixed, "token", "", "one bearer token for every request (a server-role token), instead of -token-key")
	fs.StringVar(&t.issuer, "issuer", identity.DevIssuerName, "iss of minted tokens (the frontend's -auth-issuer)")
	fs.StringVar(&t.audience, "audience", identity.DevAudience, "aud of minted tokens (the frontend's -auth-audience)")
}

// devIssuerKey is where `make run` keeps its development issuer's key,
// seen from the repository's root.
const devIssuerKey = identity.DevDataDir + "/" + identity.DevIssuerKeyFile

// setup reads the key; call it after parsing the flags. Given neither
// -token-key nor -token, it takes make run's development issuer key when
// that file is there, and says so on note: make run's frontend refuses
// every ticket without a token (401), and limits those refused clients by
// address, so a first `load run` without one saw mostly 429s and took
// them for the rate limit. A deployment that does not trust the key
// refuses the tokens as it would no token; one without identity
// (-auth-insecure) ignores them.
func (t *tokens) setup(note io.Writer) error {
	if t.keyFile != "" && t.fixed != "" {
		return errors.New("-token-key and -token: give one")
	}
	if t.keyFile == "" && t.fixed == "" {
		if _, err := os.Stat(devIssuerKey); err == nil {
			t.keyFile = devIssuerKey
			fmt.Fprintf(note, "load: each player's token is minted with %s, make run's development issuer (-token-key or -token to choose)\n", devIssuerKey)
		}
	}
	if t.keyFile == "" {
		return nil
	}
	m, err := identity.NewMinterFile(t.keyFile, t.issuer, t.audience)
	if err != nil {
		return fmt.Errorf("-token-key: %w", err)
	}
	t.minter = m
	return nil
}

// maxAhead bounds mintAhead: past it a run's tokens are minted as its
// players arrive, as before. Each costs about 350 bytes kept (a ~300
// character JWT and its string header): 350 MB at the bound.
const maxAhead = 1_000_000

// mintAhead mints the tokens of the n players name gives (by player
// index) before the first of them arrives, on every core, and says so
// on note; or why not, and then they are minted as they arrive: more
// than maxAhead, or a run of span (the arrivals and the last one's
// timeout) whose last token would be within 10 minutes of its expiry. A
// real client has its token before it asks for a match (from the
// studio's login), so its minting is no part of what the load measures;
// minted on arrival, it cost the load tool a sixth of its CPU at 2,400
// POSTs a second (about 34 µs each), on the cores the system under test
// shares with it (BENCHMARKS.md, #20's sixth round).
func (t *tokens) mintAhead(ctx context.Context, n int, span time.Duration, name func(i int) string, note io.Writer) error {
	switch {
	case t.minter == nil:
		return nil
	case n > maxAhead:
		fmt.Fprintf(note, "load: %d players are more than %d: each token is minted as its player arrives\n", n, maxAhead)
		return nil
	case span > t.minter.TTL-10*time.Minute:
		fmt.Fprintf(note, "load: a %s run outlives a token minted ahead (%s): each is minted as its player arrives\n", span, t.minter.TTL)
		return nil
	}
	start := time.Now()
	toks := make([]string, n)
	workers := runtime.GOMAXPROCS(0)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n && ctx.Err() == nil; i += workers {
				if toks[i], errs[w] = t.minter.Player(name(i)); errs[w] != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(append(errs, ctx.Err())...); err != nil {
		return err
	}
	t.ahead = toks
	fmt.Fprintf(note, "load: %d tokens minted ahead in %s\n", n, time.Since(start).Round(time.Millisecond))
	return nil
}

// forPlayerAt is the token of the p-th player, named player: minted
// ahead, or now (forPlayer).
func (t *tokens) forPlayerAt(p int, player string) (string, error) {
	if p < len(t.ahead) {
		return t.ahead[p], nil
	}
	return t.forPlayer(player)
}

// forPlayer is the token of player, "" without identity.
func (t *tokens) forPlayer(player string) (string, error) {
	if t.minter != nil {
		return t.minter.Player(player)
	}
	return t.fixed, nil
}

// authorize sets the Authorization header of player's request.
func (t *tokens) authorize(h http.Header, player string) error {
	tok, err := t.forPlayer(player)
	if err != nil {
		return err
	}
	if tok != "" {
		h.Set("Authorization", "Bearer "+tok)
	}
	return nil
}
