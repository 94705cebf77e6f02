package deploy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/deploy/deploytest"
)

// The Webhook policy (the allocator's /autoscale) sizes a fleet from
// every ticket waiting in its region: tickets carry no mode in their
// subject. A fleet with it must be alone in its region among the fleets
// this release knows (gameServers.fleets, and allocator.clusters for its
// allocator), or two fleets would each be sized from the demand of both.
// The shipped single-cluster example had exactly that: rps and rps-teams
// in eu, both Webhook.
func TestChartRefusesWebhookFleetsSharingARegion(t *testing.T) {
	ch := deploytest.Load(t)
	base := deploytest.ValueSets()[0]
	const why = "; the webhook sizes a fleet from every ticket waiting in its region (tickets carry no mode), " +
		"so each would be sized from the demand of all: use List for them, or keep one fleet per region"
	duels := func() map[string]any { return map[string]any{"name": "rps", "modes": []any{"1v1"}, "seatsPerRoom": 2} }
	teams := func() map[string]any { return map[string]any{"name": "rps-teams", "modes": []any{"2v2", "5v5", "ffa"}} }
	for _, tt := range []struct {
		name string
		set  map[string]any
		want string
	}{
		{"two Webhook fleets in one region", map[string]any{"gameServers": map[string]any{
			"fleets": []any{duels(), teams()}, "autoscaler": map[string]any{"policy": "Webhook"}}},
			`gameServers.autoscaler.policy Webhook: region "eu" has fleets rps, rps-teams` + why},
		{"a Webhook fleet beside a List fleet", fleets(duels(), with(teams(), "autoscaler", map[string]any{"policy": "Webhook"})),
			`gameServers.fleets[1].autoscaler.policy Webhook: region "eu" has fleets rps, rps-teams` + why},
		{"a Webhook fleet beside another cluster's fleet", with(fleets(map[string]any{"name": "rps", "autoscaler": map[string]any{"policy": "Webhook"}}),
			"allocator", map[string]any{"clusters": []any{cluster("far", "eu", "2v2")}}),
			`gameServers.fleets[0].autoscaler.policy Webhook: region "eu" has fleets rps, allocator.clusters[0] (far, fleet rps)` + why},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, _, err := deploytest.Render(ch, "quickmatch", base.With(t, tt.set))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error naming %q", err, tt.want)
			}
		})
	}
}

// The webhook turns waiting players into rooms with one number for every
// fleet (-autoscale-players-per-room, default 2). The chart sets it to the
// players of the smallest mode hosted by a fleet whose Webhook calls this
// release's allocator, the least over such fleets: the smallest mode asks
// for the most rooms, so no fleet is sized short. Without such a fleet
// the flag keeps its default.
func TestChartSetsWebhookPlayersPerRoom(t *testing.T) {
	base := deploytest.ValueSets()[0]
	hook := map[string]any{"policy": "Webhook"}
	for _, tt := range []struct {
		name string
		set  map[string]any
		want string // "" = not set
	}{
		{"every mode", autoscaler("Webhook", "webhook", map[string]any{}), "2"},
		{"team modes", with(fleets(map[string]any{"name": "rps", "modes": []any{"5v5", "2v2"}, "autoscaler": hook}), "rules", ruleSet("5v5", "2v2")), "4"},
		{"the least over regions", with(fleets(
			map[string]any{"name": "teams-eu", "region": "eu", "modes": []any{"5v5"}, "autoscaler": hook},
			map[string]any{"name": "ffa-us", "region": "us", "modes": []any{"ffa"}, "autoscaler": hook}),
			"regions", []any{"eu", "us"}, "rules", ruleSet("5v5", "ffa")), "8"},
		{"a List fleet does not count", with(fleets(
			map[string]any{"name": "teams-eu", "region": "eu", "modes": []any{"5v5"}, "autoscaler": hook},
			map[string]any{"name": "duels-us", "region": "us", "modes": []any{"1v1"}, "seatsPerRoom": 2}), "rules", ruleSet("5v5", "1v1")), "10"},
		{"List only", nil, ""},
		{"a webhook of another allocator", webhook("https://scaler.example.com/autoscale", ""), ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := render(t, base.With(t, tt.set))
			got, ok := r.allocator["AUTOSCALE_PLAYERS_PER_ROOM"]
			if got != tt.want || ok != (tt.want != "") {
				t.Errorf("AUTOSCALE_PLAYERS_PER_ROOM %q (set: %v), want %q", got, ok, tt.want)
			}
		})
	}
}

// selfSignedCA is the PEM of a new self-signed CA certificate, which
// Agones' caBundle check (x509.CertPool.AppendCertsFromPEM) accepts.
func selfSignedCA(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "quickmatch test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	out := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if !x509.NewCertPool().AppendCertsFromPEM(out) {
		t.Fatal("the test CA is not what Agones accepts")
	}
	return out
}
