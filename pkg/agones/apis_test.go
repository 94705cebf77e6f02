package agones

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// reference reads the documents of one of Agones' reference manifests
// (../shared/agones/reference) as JSON.
func reference(t *testing.T, name string) [][]byte {
	t.Helper()
	dir := filepath.Join("..", "..", "..", "shared", "agones", "reference")
	data, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatalf("reference manifest: %v (the shared/ folder sits beside the repository)", err)
	}
	var docs [][]byte
	for _, doc := range strings.Split(string(data), "\n---") {
		j, err := yaml.YAMLToJSON([]byte(doc))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if string(j) != "null" {
			docs = append(docs, j)
		}
	}
	return docs
}

// roundTrip decodes doc strictly into v (an unknown field fails), encodes
// it again and checks that nothing was lost.
func roundTrip(t *testing.T, name string, doc []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	out, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var want, got any
	_ = json.Unmarshal(doc, &want)
	_ = json.Unmarshal(out, &got)
	if !reflect.DeepEqual(want, got) {
		t.Fatalf("%s changed in a round trip:\nwant %s\ngot  %s", name, doc, out)
	}
}

func TestGameServerAllocationReferenceRoundTrips(t *testing.T) {
	docs := reference(t, "gameserverallocation.yaml")
	if len(docs) == 0 {
		t.Fatal("no documents")
	}
	for _, doc := range docs {
		var gsa GameServerAllocation
		roundTrip(t, "gameserverallocation.yaml", doc, &gsa)
		if gsa.Kind != "GameServerAllocation" || len(gsa.Spec.Selectors) == 0 {
			t.Fatalf("decoded %+v", gsa)
		}
	}
}

func TestFleetAutoscalerReferencesRoundTrip(t *testing.T) {
	for file, check := range map[string]func(FleetAutoscaler) bool{
		"webhookfleetautoscaler.yaml": func(f FleetAutoscaler) bool {
			return f.Spec.Policy.Type == "Webhook" && f.Spec.Policy.Webhook.Service.Path == "scale"
		},
		"fleetautoscaler.yaml": func(f FleetAutoscaler) bool {
			return f.Spec.Policy.Buffer.BufferSize.Int == 5 && f.Spec.Sync.FixedInterval.Seconds == 30
		},
		"counterfleetautoscaler.yaml": func(f FleetAutoscaler) bool {
			return f.Spec.Policy.Counter.Key == "rooms" && f.Spec.Policy.Counter.MaxCapacity == 100
		},
		"listfleetautoscaler.yaml": func(f FleetAutoscaler) bool {
			return f.Spec.Policy.List.Key == "players" && f.Spec.Policy.List.BufferSize.Int == 5
		},
	} {
		docs := reference(t, file)
		if len(docs) == 0 {
			t.Fatalf("%s: no documents", file)
		}
		for _, doc := range docs {
			var fas FleetAutoscaler
			roundTrip(t, file, doc, &fas)
			if !check(fas) {
				t.Fatalf("%s decoded %+v", file, fas.Spec)
			}
		}
	}
}

func TestIntOrString(t *testing.T) {
	for _, in := range []string{`5`, `"20%"`} {
		var v IntOrString
		if err := json.Unmarshal([]byte(in), &v); err != nil {
			t.Fatal(err)
		}
		out, _ := json.Marshal(v)
		if string(out) != in {
			t.Fatalf("%s -> %s", in, out)
		}
	}
}

// TestFleetLabelsFromEitherPlace: the webhook finds the Fleet's labels
// where either version of Agones puts them.
func TestFleetLabelsFromEitherPlace(t *testing.T) {
	for name, c := range map[string]struct {
		review string
		want   map[string]string
	}{
		"top level": {`{"request":{"uid":"u","name":"f","namespace":"n","status":{"replicas":1},"labels":{"quickmatch.dev/region":"eu"}}}`,
			map[string]string{RegionLabel: "eu"}},
		"metadata": {`{"request":{"uid":"u","name":"f","namespace":"n","status":{"replicas":1},"metadata":{"name":"f","labels":{"quickmatch.dev/region":"us"},"annotations":{"a":"b"}}}}`,
			map[string]string{RegionLabel: "us"}},
		"both, metadata first": {`{"request":{"labels":{"quickmatch.dev/region":"eu","x":"1"},"metadata":{"labels":{"quickmatch.dev/region":"us"}}}}`,
			map[string]string{RegionLabel: "us", "x": "1"}},
		"none": {`{"request":{"uid":"u","name":"f"}}`, nil},
	} {
		var r FleetAutoscaleReview
		dec := json.NewDecoder(strings.NewReader(c.review))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := r.Request.FleetLabels(); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: FleetLabels = %v, want %v", name, got, c.want)
		}
	}
}
