package agones

import "encoding/json"

// Wire types for the Agones APIs quickmatch speaks, owned here because the
// Agones Go module cannot be fetched. They carry the fields quickmatch
// reads or writes; the tests round-trip them through Agones' own
// reference manifests so that a misspelled field fails.

// TypeMeta is apiVersion and kind.
type TypeMeta struct {
	APIVersion string `json:"apiVersion,omitempty"`
	Kind       string `json:"kind,omitempty"`
}

// ObjectMeta is the part of Kubernetes object metadata used here.
type ObjectMeta struct {
	Name        string            `json:"name,omitempty"`
	Namespace   string            `json:"namespace,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// GameServerAllocation is allocation.agones.dev/v1 GameServerAllocation.
type GameServerAllocation struct {
	TypeMeta   `json:",inline"`
	ObjectMeta ObjectMeta                 `json:"metadata,omitempty"`
	Spec       GameServerAllocationSpec   `json:"spec"`
	Status     GameServerAllocationStatus `json:"status,omitzero"`
}

// GameServerAllocationSpec is what to allocate and what to change on it.
type GameServerAllocationSpec struct {
	// Selectors are tried in order; the first that matches a game server wins.
	Selectors  []GameServerSelector     `json:"selectors,omitempty"`
	Scheduling string                   `json:"scheduling,omitempty"` // Packed or Distributed
	Metadata   *MetaPatch               `json:"metadata,omitempty"`
	Priorities []Priority               `json:"priorities,omitempty"`
	Counters   map[string]CounterAction `json:"counters,omitempty"`
	Lists      map[string]ListAction    `json:"lists,omitempty"`
}

// GameServerSelector picks game servers by labels, state, counters and lists.
type GameServerSelector struct {
	MatchLabels      map[string]string          `json:"matchLabels,omitempty"`
	MatchExpressions []LabelSelectorRequirement `json:"matchExpressions,omitempty"`
	GameServerState  string                     `json:"gameServerState,omitempty"` // Ready or Allocated
	Counters         map[string]CounterSelector `json:"counters,omitempty"`
	Lists            map[string]ListSelector    `json:"lists,omitempty"`
}

// LabelSelectorRequirement is a Kubernetes set-based label requirement.
type LabelSelectorRequirement struct {
	Key      string   `json:"key"`
	Operator string   `json:"operator"`
	Values   []string `json:"values,omitempty"`
}

// CounterSelector bounds a counter's count and available room.
type CounterSelector struct {
	MinCount     int64 `json:"minCount,omitempty"`
	MaxCount     int64 `json:"maxCount,omitempty"`
	MinAvailable int64 `json:"minAvailable,omitempty"`
	MaxAvailable int64 `json:"maxAvailable,omitempty"`
}

// ListSelector bounds a list's values and available room.
type ListSelector struct {
	ContainsValue string `json:"containsValue,omitempty"`
	MinAvailable  int64  `json:"minAvailable,omitempty"`
	MaxAvailable  int64  `json:"maxAvailable,omitempty"`
}

// MetaPatch is the labels and annotations an allocation puts on the server.
type MetaPatch struct {
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// Priority orders candidate servers by a counter or list.
type Priority struct {
	Type  string `json:"type"` // Counter or List
	Key   string `json:"key"`
	Order string `json:"order"` // Ascending or Descending
}

// CounterAction changes a counter of the allocated server.
type CounterAction struct {
	Action   string `json:"action,omitempty"` // Increment or Decrement
	Amount   int64  `json:"amount,omitempty"`
	Capacity *int64 `json:"capacity,omitempty"`
}

// ListAction changes a list of the allocated server.
type ListAction struct {
	AddValues    []string `json:"addValues,omitempty"`
	DeleteValues []string `json:"deleteValues,omitempty"`
	Capacity     *int64   `json:"capacity,omitempty"`
}

// GameServerAllocationStatus is the outcome.
type GameServerAllocationStatus struct {
	// State is Allocated, UnAllocated (nothing fits) or Contention.
	State          string               `json:"state,omitempty"`
	GameServerName string               `json:"gameServerName,omitempty"`
	Ports          []GameServerPort     `json:"ports,omitempty"`
	Address        string               `json:"address,omitempty"`
	NodeName       string               `json:"nodeName,omitempty"`
	Source         string               `json:"source,omitempty"`
	Metadata       *MetaPatch           `json:"metadata,omitempty"`
	Counters       map[string]CountCap  `json:"counters,omitempty"`
	Lists          map[string]ListState `json:"lists,omitempty"`
}

// Allocation outcomes. StateAllocated is also the GameServer state of an
// allocated server, as StateReady is of one Agones may allocate or scale
// down (the values of status.state and of a selector's gameServerState).
const (
	StateAllocated   = "Allocated"
	StateUnAllocated = "UnAllocated"
	StateContention  = "Contention"
	StateReady       = "Ready"
	// StateRequestReady: the game server asked to be Ready and Agones has
	// not yet made it so.
	StateRequestReady = "RequestReady"
)

// GameServerPort is a named port of an allocated server.
type GameServerPort struct {
	Name string `json:"name"`
	Port int32  `json:"port"`
}

// CountCap is a counter's count and capacity.
type CountCap struct {
	Count    int64 `json:"count"`
	Capacity int64 `json:"capacity"`
}

// ListState is a list's capacity and values.
type ListState struct {
	Capacity int64    `json:"capacity"`
	Values   []string `json:"values,omitempty"`
}

// FleetAutoscaler is autoscaling.agones.dev/v1 FleetAutoscaler.
type FleetAutoscaler struct {
	TypeMeta   `json:",inline"`
	ObjectMeta ObjectMeta          `json:"metadata,omitempty"`
	Spec       FleetAutoscalerSpec `json:"spec"`
}

// FleetAutoscalerSpec names the fleet, the policy and how often it runs.
type FleetAutoscalerSpec struct {
	FleetName string       `json:"fleetName"`
	Policy    ScalerPolicy `json:"policy"`
	Sync      *ScalerSync  `json:"sync,omitempty"`
}

// ScalerPolicy is one of Buffer, Webhook, Counter, List.
type ScalerPolicy struct {
	Type    string         `json:"type"`
	Buffer  *BufferPolicy  `json:"buffer,omitempty"`
	Webhook *WebhookPolicy `json:"webhook,omitempty"`
	Counter *CounterPolicy `json:"counter,omitempty"`
	List    *CounterPolicy `json:"list,omitempty"`
}

// BufferPolicy keeps BufferSize Ready servers (a count or "20%").
type BufferPolicy struct {
	BufferSize  IntOrString `json:"bufferSize"`
	MinReplicas int32       `json:"minReplicas,omitempty"`
	MaxReplicas int32       `json:"maxReplicas"`
}

// CounterPolicy keeps BufferSize free capacity of a counter or list.
type CounterPolicy struct {
	Key         string      `json:"key"`
	BufferSize  IntOrString `json:"bufferSize"`
	MinCapacity int64       `json:"minCapacity,omitempty"`
	MaxCapacity int64       `json:"maxCapacity"`
}

// ScalerSync is how often the autoscaler runs.
type ScalerSync struct {
	Type          string         `json:"type"`
	FixedInterval *FixedInterval `json:"fixedInterval,omitempty"`
}

// FixedInterval is a sync period in seconds.
type FixedInterval struct {
	Seconds int32 `json:"seconds"`
}

// IntOrString is a number or a string such as "20%", as Kubernetes writes
// buffer sizes.
type IntOrString struct {
	Int   int64
	Str   string
	IsStr bool
}

// MarshalJSON writes the number or the string.
func (v IntOrString) MarshalJSON() ([]byte, error) {
	if v.IsStr {
		return json.Marshal(v.Str)
	}
	return json.Marshal(v.Int)
}

// UnmarshalJSON reads 5 or "20%".
func (v *IntOrString) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		v.IsStr = true
		return json.Unmarshal(b, &v.Str)
	}
	v.IsStr = false
	return json.Unmarshal(b, &v.Int)
}

// WebhookPolicy says where Agones sends FleetAutoscaleReviews.
type WebhookPolicy struct {
	URL      string      `json:"url,omitempty"`
	Service  *ServiceRef `json:"service,omitempty"`
	CABundle string      `json:"caBundle,omitempty"`
}

// ServiceRef is a Kubernetes service and path.
type ServiceRef struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	Path      string `json:"path,omitempty"`
	Port      *int32 `json:"port,omitempty"`
}

// FleetAutoscaleReview is what Agones posts to a webhook autoscaler, and
// what the webhook answers (the same object with Response set).
type FleetAutoscaleReview struct {
	TypeMeta `json:",inline"`
	Request  *FleetAutoscaleRequest  `json:"request"`
	Response *FleetAutoscaleResponse `json:"response"`
}

// FleetAutoscaleRequest describes the fleet to scale. Agones sends the
// Fleet's labels and annotations (feature FleetAutoscaleRequestMetaData,
// beta, on by default) in one of two places by version: top-level
// labels/annotations, or a metadata object; FleetLabels reads either.
type FleetAutoscaleRequest struct {
	UID         string            `json:"uid"`
	Name        string            `json:"name"`
	Namespace   string            `json:"namespace"`
	Status      FleetStatus       `json:"status"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	MetaData    *ObjectMeta       `json:"metadata,omitempty"`
}

// FleetLabels is the Fleet's labels as the request carries them: those
// under metadata, then the top-level ones for keys metadata lacks; nil
// if the request carries none (an Agones with the feature off).
func (r FleetAutoscaleRequest) FleetLabels() map[string]string {
	var out map[string]string
	add := func(m map[string]string) {
		for k, v := range m {
			if _, ok := out[k]; ok {
				continue
			}
			if out == nil {
				out = make(map[string]string, len(m))
			}
			out[k] = v
		}
	}
	if r.MetaData != nil {
		add(r.MetaData.Labels)
	}
	add(r.Labels)
	return out
}

// FleetAutoscaleResponse is the webhook's answer.
type FleetAutoscaleResponse struct {
	UID      string `json:"uid"`
	Scale    bool   `json:"scale"`
	Replicas int32  `json:"replicas"`
}

// FleetStatus is a fleet's replica counts and aggregated counters and
// lists (Agones aggregates both the same way).
type FleetStatus struct {
	Replicas          int32                       `json:"replicas"`
	ReadyReplicas     int32                       `json:"readyReplicas"`
	ReservedReplicas  int32                       `json:"reservedReplicas"`
	AllocatedReplicas int32                       `json:"allocatedReplicas"`
	Counters          map[string]AggregatedStatus `json:"counters,omitempty"`
	Lists             map[string]AggregatedStatus `json:"lists,omitempty"`
}

// AggregatedStatus sums a counter or a list over a fleet's servers.
type AggregatedStatus struct {
	AllocatedCount    int64 `json:"allocatedCount"`
	AllocatedCapacity int64 `json:"allocatedCapacity"`
	Count             int64 `json:"count"`
	Capacity          int64 `json:"capacity"`
}
