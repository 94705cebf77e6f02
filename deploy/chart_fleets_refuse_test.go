package deploy

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/quickmatch-dev/quickmatch/deploy/deploytest"
)

// gs is values setting these gameServers keys.
func gs(kv ...any) map[string]any {
	m := map[string]any{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return map[string]any{"gameServers": m}
}

// The Fleet and FleetAutoscaler settings Agones refuses (its CRD schemas
// and its validation: pkg/apis/agones/v1 fleet.go, gameserver.go,
// common.go; pkg/apis/autoscaling/v1 fleetautoscaler.go) are refused at
// render with the value named, as are fleets no match could use and the
// values this chart no longer reads. A fleet's own setting is named as
// gameServers.fleets[i].<key>, a default it inherits as gameServers.<key>.
func TestChartRefusesFleetValues(t *testing.T) {
	ch := deploytest.Load(t)
	base := deploytest.ValueSets()[0]
	notPEM := base64.StdEncoding.EncodeToString([]byte("hello"))
	for _, tt := range []struct {
		name string
		set  map[string]any
		want string
	}{
		// Agones: a List holds at most 1000 values.
		{"players List above 1000", gs("roomsPerServer", 100, "seatsPerRoom", 20), "gameServers.roomsPerServer 100 x gameServers.seatsPerRoom 20 = 2000 players"},
		{"a fleet's players List above 1000", fleets(map[string]any{"name": "rps", "roomsPerServer": 101}),
			"gameServers.fleets[0].roomsPerServer 101 x gameServers.seatsPerRoom 10 = 1010 players"},
		{"rooms List above 1000", gs("roomsPerServer", 1001, "seatsPerRoom", 2), "at '/gameServers/roomsPerServer': maximum: got 1,001, want 1,000"},
		// Agones: names, replicas, scheduling, labels.
		{"fleet name above 63 characters", fleets(map[string]any{"name": strings.Repeat("r", 64)}), "at '/gameServers/fleets/0/name': maxLength: got 64, want 63"},
		{"fleet name not a DNS label", fleets(map[string]any{"name": "RPS"}), "at '/gameServers/fleets/0/name': 'RPS' does not match pattern"},
		{"negative replicas", fleets(map[string]any{"name": "rps", "replicas": -1}), "at '/gameServers/fleets/0/replicas': minimum: got -1, want 0"},
		{"unknown scheduling", gs("scheduling", "Spread"), "at '/gameServers/scheduling': value must be one of 'Packed', 'Distributed'"},
		{"unknown eviction", fleets(map[string]any{"name": "rps", "eviction": "Sometimes"}), "at '/gameServers/fleets/0/eviction': value must be one of '', 'Never', 'OnUpgrade', 'Always'"},
		{"region no label value", gs("region", "-eu"), "at '/gameServers/region': '-eu' does not match pattern"},
		{"region label no label key", gs("regionLabel", "quickmatch.dev/"), "at '/gameServers/regionLabel': 'quickmatch.dev/' does not match pattern"},
		{"no fleets", gs("fleets", []any{}), "at '/gameServers/fleets': minItems: got 0, want 1"},
		{"two fleets of one name", fleets(map[string]any{"name": "rps"}, map[string]any{"name": "rps"}), `gameServers.fleets[1].name "rps": fleets[0] has that name too`},
		// Agones: a request above its limit, a negative quantity.
		{"memory request above limit", gs("resources", map[string]any{"requests": map[string]any{"memory": "512Mi"}, "limits": map[string]any{"memory": "256Mi"}}),
			"gameServers.resources.requests.memory 512Mi is above its limit 256Mi: Agones refuses it"},
		{"a fleet's cpu request above limit", fleets(map[string]any{"name": "rps", "resources": map[string]any{"requests": map[string]any{"cpu": "1"}, "limits": map[string]any{"cpu": "500m"}}}),
			"gameServers.fleets[0].resources.requests.cpu 1 is above its limit 500m: Agones refuses it"},
		{"negative quantity", gs("resources", map[string]any{"requests": map[string]any{"cpu": "-1"}}), "at '/gameServers/resources/requests/cpu': '-1' does not match pattern"},
		// Fleets no match could use.
		{"seats below the largest mode", gs("seatsPerRoom", 8), "gameServers.seatsPerRoom 8: mode 5v5 seats 10 players, so its rooms would never fit"},
		{"a fleet's seats below its mode", fleets(map[string]any{"name": "rps", "modes": []any{"2v2"}, "seatsPerRoom": 3}), "gameServers.fleets[0].seatsPerRoom 3: mode 2v2 seats 4 players, so its rooms would never fit"},
		{"unknown mode", fleets(map[string]any{"name": "rps", "modes": []any{"3v3"}}), `gameServers.fleets[0].modes: "3v3" is none of the built-in modes (1v1, 2v2, 5v5, ffa)`},
		{"a mode the rule set lacks", with(fleets(map[string]any{"name": "rps", "modes": []any{"2v2"}}), "rules", `{"modes":[{"name":"1v1","teams":2,"team_size":1,"max_wait":"1m"}]}`),
			`gameServers.fleets[0].modes: "2v2" is none of the rule set's modes (rules) (1v1)`},
		{"rules no rule set", map[string]any{"rules": `[{"name":"1v1"}]`}, "rules: want a JSON rule set, an object with a list of modes"},
		{"rules not JSON", map[string]any{"rules": `{modes`}, "rules: want a JSON rule set, an object with a list of modes"},
		{"rules without modes", map[string]any{"rules": `{"modes":[]}`}, "rules: no modes; the frontends and matchers need at least one"},
		{"a rule set's mode without a size", map[string]any{"rules": `{"modes":[{"name":"1v1"}]}`}, "rules: want each mode with name, teams and team_size"},
		{"a rule set's mode no fleet hosts", with(fleets(map[string]any{"name": "rps", "modes": []any{"1v1"}}), "rules", `{"modes":[{"name":"1v1","teams":2,"team_size":1,"max_wait":"1m"},{"name":"3v3","teams":2,"team_size":3,"max_wait":"1m"}]}`),
			"rules: no fleet hosts the mode(s) 3v3 of the rule set's modes (rules); add them to the modes of a fleet"},
		{"a built-in mode no fleet hosts", fleets(map[string]any{"name": "rps", "modes": []any{"1v1"}}),
			"rules: no fleet hosts the mode(s) 2v2, 5v5, ffa of the built-in modes; add them to the modes of a fleet"},
		{"fleet region outside regions", gs("region", "mars"), `gameServers.region "mars" is not in regions (eu, us, asia): the allocator reports capacity`},
		{"a cluster's unknown mode", map[string]any{"allocator": map[string]any{"clusters": []any{cluster("far", "us", "4v4")}}}, `allocator.clusters[0].modes: "4v4" is none of the built-in modes`},
		{"a cluster's region outside regions", map[string]any{"allocator": map[string]any{"clusters": []any{cluster("far", "mars")}}}, `allocator.clusters[0].region "mars" is not in regions (eu, us, asia)`},
		{"a cluster named as a fleet here", map[string]any{"allocator": map[string]any{"clusters": []any{cluster("local-rps", "eu")}}},
			`allocator.clusters[0].name "local-rps": gameServers.fleets[0] has that name too`},
		// FleetAutoscaler: the rooms counter is gone; Agones' own refusals.
		{"Counter policy", autoscaler("Counter", "list", map[string]any{}), "gameServers.autoscaler.policy Counter: the rooms counter is gone (rooms are a List): use List"},
		{"counter settings", map[string]any{"gameServers": map[string]any{"autoscaler": map[string]any{"counter": map[string]any{"bufferSize": 5}}}},
			"gameServers.autoscaler.counter is gone: rooms are a List now; move its settings to gameServers.autoscaler.list"},
		{"a fleet's Counter policy", fleets(map[string]any{"name": "rps", "autoscaler": map[string]any{"policy": "Counter"}}), "gameServers.fleets[0].autoscaler.policy Counter: the rooms counter is gone (rooms are a List): use List"},
		{"a fleet's bufferSize above the default minCapacity", fleets(map[string]any{"name": "rps", "autoscaler": map[string]any{"list": map[string]any{"bufferSize": 50}}}),
			"gameServers.autoscaler.list.minCapacity 40 is below gameServers.fleets[0].autoscaler.list.bufferSize 50: Agones refuses it"},
		// The form of caBundle only: Agones parses the certificates.
		{"caBundle no PEM certificate", webhook("https://scaler.example.com/autoscale", notPEM),
			"gameServers.autoscaler.webhook.caBundle: not the base64 of a PEM certificate (-----BEGIN CERTIFICATE-----); Agones refuses it"},
		{"caBundle not base64", webhook("https://scaler.example.com/autoscale", "abc"),
			"gameServers.autoscaler.webhook.caBundle: not the base64 of a PEM certificate"},
		// Agones (buildURLFromConfiguration) calls a Service over HTTPS
		// when caBundle is set; the allocator serves plain HTTP.
		{"caBundle without url", webhook("", notPEM),
			"gameServers.autoscaler.webhook.caBundle: only with gameServers.autoscaler.webhook.url; without a URL the FleetAutoscaler calls the allocator Service of this release, which serves /autoscale over plain HTTP"},
		{"webhook url no URL", webhook("scaler.example.com", ""), "at '/gameServers/autoscaler/webhook/url': 'scaler.example.com' does not match pattern"},
		{"webhook without allocator or url", with(autoscaler("Webhook", "webhook", map[string]any{}), "allocator", map[string]any{"enabled": false}),
			"gameServers.autoscaler.policy Webhook needs the allocator in this release or gameServers.autoscaler.webhook.url"},
		// Values this chart no longer reads say what replaced them.
		{"fleetName", gs("fleetName", "rps"), "gameServers.fleetName is gone: list the fleets in gameServers.fleets"},
		{"playersPerServer", gs("playersPerServer", 200), "gameServers.playersPerServer is gone: the players List holds roomsPerServer x seatsPerRoom players"},
		{"allocator.region", map[string]any{"allocator": map[string]any{"region": "eu"}}, "allocator.region is gone: each fleet has its own region, gameServers.region"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, _, err := deploytest.Render(ch, "quickmatch", base.With(t, tt.set))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error naming %q", err, tt.want)
			}
		})
	}
}

func webhook(url, caBundle string) map[string]any {
	return autoscaler("Webhook", "webhook", map[string]any{"url": url, "caBundle": caBundle})
}

// What Agones accepts still renders, and a fleet's own 0 or false wins
// over the default (a plain merge would let the default's 2 and true win).
// The caBundle is a real certificate, one Agones' own check
// (AppendCertsFromPEM) takes: the chart checks its form only.
func TestChartRendersFleetValuesAgonesAccepts(t *testing.T) {
	base := deploytest.ValueSets()[0]
	ca := base64.StdEncoding.EncodeToString(selfSignedCA(t))
	for _, tt := range []struct {
		name  string
		set   map[string]any
		check func(t *testing.T, r rendered)
	}{
		{"players List of exactly 1000", gs("roomsPerServer", 100, "seatsPerRoom", 10), nil},
		{"request equal to its limit in other units", gs("resources", map[string]any{
			"requests": map[string]any{"memory": "1Gi", "cpu": "0.5"}, "limits": map[string]any{"memory": "1024Mi", "cpu": "500m"}}), nil},
		{"https webhook with a CA", webhook("https://scaler.example.com/autoscale", ca), func(t *testing.T, r rendered) {
			if w := r.autoscalers["rps"].Spec.Policy.Webhook; w == nil || w.CABundle != ca || w.URL == "" {
				t.Errorf("webhook %+v", w)
			}
		}},
		// Agones 1.54 and later: an https URL without caBundle trusts the
		// system's CAs.
		{"https webhook without caBundle", webhook("https://scaler.example.com/autoscale", ""), func(t *testing.T, r rendered) {
			if w := r.autoscalers["rps"].Spec.Policy.Webhook; w == nil || w.CABundle != "" || w.URL != "https://scaler.example.com/autoscale" || w.Service != nil {
				t.Errorf("webhook %+v", w)
			}
		}},
		{"a fleet's replicas 0 and no autoscaler", fleets(map[string]any{"name": "idle", "replicas": 0, "autoscaler": map[string]any{"enabled": false}}, map[string]any{"name": "rps"}),
			func(t *testing.T, r rendered) {
				if r.fleets["idle"].Spec.Replicas != 0 || r.autoscalers["idle"] != nil || r.fleets["rps"].Spec.Replicas != 2 || r.autoscalers["rps"] == nil {
					t.Errorf("idle: %d replicas, autoscaler %v; rps: %d replicas", r.fleets["idle"].Spec.Replicas, r.autoscalers["idle"], r.fleets["rps"].Spec.Replicas)
				}
			}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := render(t, base.With(t, tt.set))
			if tt.check != nil {
				tt.check(t, r)
			}
		})
	}
}
