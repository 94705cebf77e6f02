package kubetest

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"sort"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/dynamic"

	"github.com/quickmatch-dev/quickmatch/pkg/agones"
	"github.com/quickmatch-dev/quickmatch/pkg/agones/sdk/sdktest"
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
	body, _ := io.ReadAll(r.Body) // before a delay: a Finish outlives the caller's connection
	if f.Delay > 0 {
		left := r.Context().Done()
		if f.Finish {
			left = nil
		}
		select {
		case <-time.After(f.Delay):
		case <-left:
			return
		}
	}
	var gsa agones.GameServerAllocation
	if err := json.Unmarshal(body, &gsa); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if errs := sdktest.ValidateAllocation(gsa.Spec); len(errs) > 0 {
		refuse(w, gsa.ObjectMeta.Name, errs)
		return
	}
	// One allocation at a time, as Agones' allocator batches them.
	c.mu.Lock()
	defer c.mu.Unlock()
	api := c.Dyn.Resource(GameServers).Namespace(ns)
	if f.Conflicts > 0 {
		api = &conflicting{ResourceInterface: api, left: f.Conflicts}
	}
	ctx := r.Context()
	if f.Finish {
		ctx = context.WithoutCancel(ctx)
	}
	out, err := allocate(ctx, api, gsa)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(out)
}

// refuse answers as Agones' Allocate does when GameServerAllocation.Validate
// fails: 422 with a Status (reason Invalid, one cause per field), before
// any game server is looked at.
func refuse(w http.ResponseWriter, name string, errs field.ErrorList) {
	st := apierrors.NewInvalid(schema.GroupKind{Group: "allocation.agones.dev", Kind: "GameServerAllocation"}, name, errs).ErrStatus
	st.TypeMeta = metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(int(st.Code))
	_ = json.NewEncoder(w).Encode(st)
}

// conflicting sends the next left GameServer updates with a stale
// resourceVersion, so that the apiserver refuses them with 409 Conflict,
// as it does when a game server changed between Agones' read and write.
type conflicting struct {
	dynamic.ResourceInterface
	left int
}

func (c *conflicting) Update(ctx context.Context, obj *unstructured.Unstructured, o metav1.UpdateOptions, sub ...string) (*unstructured.Unstructured, error) {
	if c.left > 0 {
		c.left--
		obj = obj.DeepCopy()
		obj.SetResourceVersion("1") // long gone: every object here was written after the CRDs
	}
	return c.ResourceInterface.Update(ctx, obj, o, sub...)
}

// gs is a GameServer as the double reads it: what Agones' selectors and
// priorities look at.
type gs struct {
	obj   *unstructured.Unstructured
	state string
	// counters and lists are status.counters and status.lists; a key
	// missing from the map is a counter or list the server does not have.
	counters map[string]agones.CountCap
	lists    map[string]agones.ListState
}

func read(obj *unstructured.Unstructured) gs {
	g := gs{obj: obj, counters: map[string]agones.CountCap{}, lists: map[string]agones.ListState{}}
	g.state, _, _ = unstructured.NestedString(obj.Object, "status", "state")
	counters, _, _ := unstructured.NestedMap(obj.Object, "status", "counters")
	for k := range counters {
		var c agones.CountCap
		c.Count, _, _ = unstructured.NestedInt64(obj.Object, "status", "counters", k, "count")
		c.Capacity, _, _ = unstructured.NestedInt64(obj.Object, "status", "counters", k, "capacity")
		g.counters[k] = c
	}
	lists, _, _ := unstructured.NestedMap(obj.Object, "status", "lists")
	for k := range lists {
		var l agones.ListState
		l.Capacity, _, _ = unstructured.NestedInt64(obj.Object, "status", "lists", k, "capacity")
		l.Values, _, _ = unstructured.NestedStringSlice(obj.Object, "status", "lists", k, "values")
		g.lists[k] = l
	}
	return g
}

// matches is Agones' GameServerSelector.Matches (pkg/apis/allocation/v1)
// for a selector sdktest.ValidateAllocation accepted: labels as
// Kubernetes evaluates them, then the state (Ready when unset), then each
// counter and list the selector names, which the server must have. 0 for
// a maximum means no maximum.
func (g gs) matches(s agones.GameServerSelector) bool {
	if !sdktest.LabelsMatch(s, g.obj.GetLabels()) {
		return false
	}
	if g.state != cmp.Or(s.GameServerState, "Ready") {
		return false
	}
	for k, cs := range s.Counters {
		c, ok := g.counters[k]
		if !ok {
			return false
		}
		avail := c.Capacity - c.Count
		if avail < cs.MinAvailable || cs.MaxAvailable != 0 && avail > cs.MaxAvailable || c.Count < cs.MinCount || cs.MaxCount != 0 && c.Count > cs.MaxCount {
			return false
		}
	}
	for k, ls := range s.Lists {
		l, ok := g.lists[k]
		if !ok {
			return false
		}
		avail := l.Capacity - int64(len(l.Values))
		if avail < ls.MinAvailable || ls.MaxAvailable != 0 && avail > ls.MaxAvailable || ls.ContainsValue != "" && !slices.Contains(l.Values, ls.ContainsValue) {
			return false
		}
	}
	return true
}

// available is the room a Counter or List priority compares: capacity
// minus count, or minus the number of values; ok is false when the
// server has no such counter or list.
func (g gs) available(p agones.Priority) (int64, bool) {
	switch p.Type {
	case "Counter":
		c, ok := g.counters[p.Key]
		return c.Capacity - c.Count, ok
	case "List":
		l, ok := g.lists[p.Key]
		return l.Capacity - int64(len(l.Values)), ok
	}
	return 0, false
}

// before is Agones' Packed order (compareGameServersForPakcedStrategy,
// all servers on one node here): Allocated servers first, then each
// priority in turn (Ascending: the least room first; a server that has
// the counter or list before one that has not, in either order), then
// the name.
func before(a, b gs, priorities []agones.Priority) bool {
	if a.state != b.state {
		return a.state == agones.StateAllocated
	}
	for _, p := range priorities {
		aa, aok := a.available(p)
		ba, bok := b.available(p)
		switch {
		case aok && bok && aa != ba:
			if p.Order == "Descending" {
				return aa > ba
			}
			return aa < ba
		case aok != bok:
			return aok
		}
	}
	return a.obj.GetName() < b.obj.GetName()
}

// allocationAttempts is Agones' allocationRetry.Steps: a failed
// GameServer update is retried, each time choosing again from fresh
// state.
const allocationAttempts = 5

// allocate is Agones' allocation over the GameServers api lists: the
// servers in Packed order, the first selector that matches one wins
// (findGameServerForAllocation), then the allocation is applied and the
// GameServer updated. If the update fails on every attempt Agones answers
// UnAllocated (ErrGameServerUpdateConflict, agones#4267); it never
// answers Contention for it.
func allocate(ctx context.Context, api dynamic.ResourceInterface, gsa agones.GameServerAllocation) (agones.GameServerAllocation, error) {
	for range allocationAttempts {
		chosen, err := find(ctx, api, gsa.Spec)
		if err != nil {
			return gsa, err
		}
		if chosen == nil {
			break
		}
		if err := apply(chosen, gsa); err != nil {
			return gsa, err
		}
		updated, err := api.Update(ctx, chosen, metav1.UpdateOptions{})
		if err != nil {
			continue
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

// find is the server the allocation takes, nil if no selector matches one.
// Without selectors Agones uses its defaulted required one: Ready.
func find(ctx context.Context, api dynamic.ResourceInterface, spec agones.GameServerAllocationSpec) (*unstructured.Unstructured, error) {
	sels := spec.Selectors
	if len(sels) == 0 {
		sels = []agones.GameServerSelector{{}}
	}
	list, err := api.List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	var all []gs
	for i := range list.Items {
		all = append(all, read(&list.Items[i]))
	}
	sort.SliceStable(all, func(i, j int) bool { return before(all[i], all[j], spec.Priorities) })
	for _, sel := range sels {
		if i := slices.IndexFunc(all, func(g gs) bool { return g.matches(sel) }); i >= 0 {
			return all[i].obj, nil
		}
	}
	return nil, nil
}

// apply is Agones' applyAllocationToGameServer: metadata, the
// last-allocated annotation, the Allocated state, then the counter and
// list actions through the helpers the fake SDK uses too
// (sdktest.ApplyCounterAction, ApplyListAction: lists cut at capacity
// silently). An action on a counter or list the server does not have, or
// one that cannot run, fails alone (Agones records an event) and the
// allocation stands.
func apply(obj *unstructured.Unstructured, gsa agones.GameServerAllocation) error {
	labels, annotations := obj.GetLabels(), obj.GetAnnotations()
	if labels == nil {
		labels = map[string]string{}
	}
	if annotations == nil {
		annotations = map[string]string{}
	}
	if m := gsa.Spec.Metadata; m != nil {
		maps.Copy(labels, m.Labels)
		maps.Copy(annotations, m.Annotations)
	}
	ts, _ := time.Now().MarshalText()
	annotations[sdktest.LastAllocatedAnnotation] = string(ts)
	obj.SetLabels(labels)
	obj.SetAnnotations(annotations)
	if err := unstructured.SetNestedField(obj.Object, agones.StateAllocated, "status", "state"); err != nil {
		return err
	}
	g := read(obj)
	for k, a := range gsa.Spec.Counters {
		if c, ok := g.counters[k]; ok {
			c, _ = sdktest.ApplyCounterAction(c, a)
			if err := unstructured.SetNestedMap(obj.Object, map[string]any{"count": c.Count, "capacity": c.Capacity}, "status", "counters", k); err != nil {
				return err
			}
		}
	}
	for k, a := range gsa.Spec.Lists {
		if l, ok := g.lists[k]; ok {
			l, _ = sdktest.ApplyListAction(l, a)
			if err := unstructured.SetNestedStringSlice(obj.Object, l.Values, "status", "lists", k, "values"); err != nil {
				return err
			}
			if err := unstructured.SetNestedField(obj.Object, l.Capacity, "status", "lists", k, "capacity"); err != nil {
				return err
			}
		}
	}
	return nil
}
