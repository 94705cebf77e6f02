package kubetest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"

	"github.com/quickmatch-dev/quickmatch/pkg/agones"
)

func (c *Cluster) serveAllocation(w http.ResponseWriter, r *http.Request, ns string) {
	c.mu.Lock()
	c.calls++
	var f Fault
	if len(c.faults) > 0 {
		f, c.faults = c.faults[0], c.faults[1:]
	}
	c.mu.Unlock()
	if f.Status != 0 {
		http.Error(w, fmt.Sprintf(`{"kind":"Status","code":%d}`, f.Status), f.Status)
		return
	}
	if f.Delay > 0 {
		select {
		case <-time.After(f.Delay):
		case <-r.Context().Done():
			return
		}
	}
	body, _ := io.ReadAll(r.Body)
	var gsa agones.GameServerAllocation
	if err := json.Unmarshal(body, &gsa); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	// One allocation at a time, as Agones' allocator batches them.
	c.mu.Lock()
	defer c.mu.Unlock()
	out, err := allocate(r.Context(), c.Dyn.Resource(GameServers).Namespace(ns), gsa)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(out)
}

type gs struct {
	obj   *unstructured.Unstructured
	state string
	count map[string]int64
	capa  map[string]int64
	lcap  map[string]int64
	vals  map[string][]string
}

func read(obj *unstructured.Unstructured) gs {
	g := gs{obj: obj, count: map[string]int64{}, capa: map[string]int64{}, lcap: map[string]int64{}, vals: map[string][]string{}}
	g.state, _, _ = unstructured.NestedString(obj.Object, "status", "state")
	counters, _, _ := unstructured.NestedMap(obj.Object, "status", "counters")
	for k := range counters {
		g.count[k], _, _ = unstructured.NestedInt64(obj.Object, "status", "counters", k, "count")
		g.capa[k], _, _ = unstructured.NestedInt64(obj.Object, "status", "counters", k, "capacity")
	}
	lists, _, _ := unstructured.NestedMap(obj.Object, "status", "lists")
	for k := range lists {
		g.lcap[k], _, _ = unstructured.NestedInt64(obj.Object, "status", "lists", k, "capacity")
		g.vals[k], _, _ = unstructured.NestedStringSlice(obj.Object, "status", "lists", k, "values")
	}
	return g
}

func (g gs) matches(s agones.GameServerSelector) bool {
	labels := g.obj.GetLabels()
	for k, v := range s.MatchLabels {
		if labels[k] != v {
			return false
		}
	}
	for _, e := range s.MatchExpressions {
		v, has := labels[e.Key]
		switch e.Operator {
		case "In":
			if !has || !slices.Contains(e.Values, v) {
				return false
			}
		case "NotIn":
			if has && slices.Contains(e.Values, v) {
				return false
			}
		case "Exists":
			if !has {
				return false
			}
		case "DoesNotExist":
			if has {
				return false
			}
		}
	}
	state := s.GameServerState
	if state == "" {
		state = "Ready"
	}
	if g.state != state {
		return false
	}
	for k, cs := range s.Counters {
		count, ok := g.count[k]
		if !ok {
			return false
		}
		avail := g.capa[k] - count
		if count < cs.MinCount || cs.MaxCount > 0 && count > cs.MaxCount || avail < cs.MinAvailable || cs.MaxAvailable > 0 && avail > cs.MaxAvailable {
			return false
		}
	}
	for k, ls := range s.Lists {
		vals, ok := g.vals[k]
		if !ok && g.lcap[k] == 0 {
			return false
		}
		avail := g.lcap[k] - int64(len(vals))
		if ls.ContainsValue != "" && !slices.Contains(vals, ls.ContainsValue) || avail < ls.MinAvailable || ls.MaxAvailable > 0 && avail > ls.MaxAvailable {
			return false
		}
	}
	return true
}

func allocate(ctx context.Context, api dynamic.ResourceInterface, gsa agones.GameServerAllocation) (agones.GameServerAllocation, error) {
	list, err := api.List(ctx, metav1.ListOptions{})
	if err != nil {
		return gsa, err
	}
	var all []gs
	for i := range list.Items {
		all = append(all, read(&list.Items[i]))
	}
	for _, sel := range gsa.Spec.Selectors {
		var cands []gs
		for _, g := range all {
			if g.matches(sel) {
				cands = append(cands, g)
			}
		}
		if len(cands) == 0 {
			continue
		}
		// Packed with priorities: for a Counter priority, Ascending puts the
		// smallest available capacity first; then by name.
		sort.SliceStable(cands, func(i, j int) bool {
			for _, p := range gsa.Spec.Priorities {
				if p.Type != "Counter" {
					continue
				}
				ai := cands[i].capa[p.Key] - cands[i].count[p.Key]
				aj := cands[j].capa[p.Key] - cands[j].count[p.Key]
				if ai != aj {
					if p.Order == "Descending" {
						return ai > aj
					}
					return ai < aj
				}
			}
			return cands[i].obj.GetName() < cands[j].obj.GetName()
		})
		chosen := cands[0].obj
		if err := apply(chosen, gsa); err != nil {
			return gsa, err
		}
		updated, err := api.Update(ctx, chosen, metav1.UpdateOptions{})
		if err != nil {
			gsa.Status.State = agones.StateContention
			return gsa, nil // Agones answers a lost race as Contention
		}
		gsa.Status.State = agones.StateAllocated
		gsa.Status.GameServerName = updated.GetName()
		gsa.Status.Address, _, _ = unstructured.NestedString(updated.Object, "status", "address")
		ports, _, _ := unstructured.NestedSlice(updated.Object, "status", "ports")
		for _, p := range ports {
			pm, _ := p.(map[string]any)
			name, _ := pm["name"].(string)
			port, _ := pm["port"].(int64)
			gsa.Status.Ports = append(gsa.Status.Ports, agones.GameServerPort{Name: name, Port: int32(port)})
		}
		return gsa, nil
	}
	gsa.Status.State = agones.StateUnAllocated
	return gsa, nil
}

func apply(obj *unstructured.Unstructured, gsa agones.GameServerAllocation) error {
	if err := unstructured.SetNestedField(obj.Object, agones.StateAllocated, "status", "state"); err != nil {
		return err
	}
	for k, a := range gsa.Spec.Counters {
		count, _, _ := unstructured.NestedInt64(obj.Object, "status", "counters", k, "count")
		capa, _, _ := unstructured.NestedInt64(obj.Object, "status", "counters", k, "capacity")
		if a.Action == "Decrement" {
			count -= a.Amount
		} else {
			count += a.Amount
		}
		count = min(max(count, 0), capa)
		if err := unstructured.SetNestedField(obj.Object, count, "status", "counters", k, "count"); err != nil {
			return err
		}
	}
	for k, a := range gsa.Spec.Lists {
		vals, _, _ := unstructured.NestedStringSlice(obj.Object, "status", "lists", k, "values")
		for _, v := range a.AddValues {
			if !slices.Contains(vals, v) {
				vals = append(vals, v)
			}
		}
		vals = slices.DeleteFunc(vals, func(v string) bool { return slices.Contains(a.DeleteValues, v) })
		if err := unstructured.SetNestedStringSlice(obj.Object, vals, "status", "lists", k, "values"); err != nil {
			return err
		}
	}
	if m := gsa.Spec.Metadata; m != nil {
		labels, annotations := obj.GetLabels(), obj.GetAnnotations()
		if labels == nil {
			labels = map[string]string{}
		}
		if annotations == nil {
			annotations = map[string]string{}
		}
		for k, v := range m.Labels {
			labels[k] = v
		}
		for k, v := range m.Annotations {
			annotations[k] = v
		}
		obj.SetLabels(labels)
		obj.SetAnnotations(annotations)
	}
	return nil
}
