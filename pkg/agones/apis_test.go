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

func TestWebhookFleetAutoscalerReferenceRoundTrips(t *testing.T) {
	for _, doc := range reference(t, "webhookfleetautoscaler.yaml") {
		var fas FleetAutoscaler
		roundTrip(t, "webhookfleetautoscaler.yaml", doc, &fas)
		if fas.Spec.Policy.Type != "Webhook" || fas.Spec.Policy.Webhook == nil || fas.Spec.Policy.Webhook.Service.Path != "scale" {
			t.Fatalf("decoded %+v", fas)
		}
	}
}
