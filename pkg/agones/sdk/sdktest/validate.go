package sdktest

import (
	"errors"
	"fmt"

	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/quickmatch-dev/quickmatch/pkg/agones"
)

// ErrInvalid is an allocation Agones' validation refuses: the aggregated
// API answers 422 with a Status before it looks at any game server, so
// nothing is allocated and nothing changes.
var ErrInvalid = errors.New("GameServerAllocation is invalid")

// ValidateAllocation is Agones' GameServerAllocation.Validate after
// ApplyDefaults (pkg/apis/allocation/v1/gameserverallocation.go), over the
// fields of our wire type: the scheduling; every selector, reached or not
// (its label selector as Kubernetes parses it, its state, its counter
// and list bounds); the priorities; the counter and list actions; the
// metadata patch (label and annotation keys and values by Kubernetes'
// object rules: a key's name part after its prefix is at most 63
// characters). Shared by the fake's Allocate and the allocation double
// (services/allocator/internal/kube/kubetest), so both refuse the same
// requests.
//
// Our wire type drops a zero counter amount (omitempty), so an action
// with an amount of 0 reaches Agones without an amount and is refused
// like one without it.
func ValidateAllocation(spec agones.GameServerAllocationSpec) field.ErrorList {
	var errs field.ErrorList
	p := field.NewPath("spec")
	switch spec.Scheduling {
	case "", "Packed", "Distributed": // "" defaults to Packed
	default:
		errs = append(errs, field.NotSupported(p.Child("scheduling"), spec.Scheduling, []string{"Packed", "Distributed"}))
	}
	// Agones validates spec.required too; our type has no required or
	// preferred, and their defaults are always valid.
	for i, sel := range spec.Selectors {
		errs = append(errs, validateSelector(sel, p.Child("selectors").Index(i))...)
	}
	for i, pr := range spec.Priorities {
		path := p.Child("priorities").Index(i)
		if pr.Type != "Counter" && pr.Type != "List" {
			errs = append(errs, field.Invalid(path, pr.Type, `type must be "Counter" or "List"`))
		}
		if pr.Key == "" {
			errs = append(errs, field.Invalid(path, pr.Type, "key must not be nil"))
		}
		if pr.Order != "" && pr.Order != "Ascending" && pr.Order != "Descending" { // "" defaults to Ascending
			errs = append(errs, field.Invalid(path, pr.Order, `order must be "Ascending" or "Descending"`))
		}
	}
	for k, a := range spec.Counters {
		errs = append(errs, validateCounterAction(a, p.Child("counters").Key(k))...)
	}
	for k, a := range spec.Lists {
		if a.Capacity != nil && *a.Capacity < 0 {
			errs = append(errs, field.Invalid(p.Child("lists").Key(k).Child("capacity"), *a.Capacity, apivalidation.IsNegativeErrorMsg))
		}
	}
	if m := spec.Metadata; m != nil {
		mp := p.Child("metadata")
		errs = append(errs, metav1validation.ValidateLabels(m.Labels, mp.Child("labels"))...)
		errs = append(errs, apivalidation.ValidateAnnotations(m.Annotations, mp.Child("annotations"))...)
	}
	return errs
}

func validateSelector(sel agones.GameServerSelector, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if _, err := metav1.LabelSelectorAsSelector(labelSelector(sel)); err != nil {
		errs = append(errs, field.Invalid(p.Child("labelSelector"), sel.MatchLabels, fmt.Sprintf("Error converting label selector: %s", err)))
	}
	switch sel.GameServerState {
	case "", "Ready", "Allocated": // "" defaults to Ready
	default:
		errs = append(errs, field.Invalid(p.Child("gameServerState"), sel.GameServerState, "GameServerState must be either Allocated or Ready"))
	}
	for k, c := range sel.Counters {
		kp := p.Child("counters").Key(k)
		errs = append(errs, bounds(kp, "Count", c.MinCount, c.MaxCount)...)
		errs = append(errs, bounds(kp, "Available", c.MinAvailable, c.MaxAvailable)...)
	}
	for k, l := range sel.Lists {
		errs = append(errs, bounds(p.Child("lists").Key(k), "Available", l.MinAvailable, l.MaxAvailable)...)
	}
	return errs
}

// bounds is Agones' check of a min/max pair: neither negative, and the
// maximum, unless 0 (no maximum), not below the minimum.
func bounds(p *field.Path, name string, lo, hi int64) field.ErrorList {
	var errs field.ErrorList
	if lo < 0 {
		errs = append(errs, field.Invalid(p.Child("min"+name), lo, apivalidation.IsNegativeErrorMsg))
	}
	if hi < 0 {
		errs = append(errs, field.Invalid(p.Child("max"+name), hi, apivalidation.IsNegativeErrorMsg))
	}
	if hi != 0 && hi < lo {
		errs = append(errs, field.Invalid(p, hi, fmt.Sprintf("max%s must zero or greater than min%s %d", name, name, lo)))
	}
	return errs
}

func validateCounterAction(a agones.CounterAction, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if a.Amount < 0 {
		errs = append(errs, field.Invalid(p.Child("amount"), a.Amount, apivalidation.IsNegativeErrorMsg))
	}
	if a.Capacity != nil && *a.Capacity < 0 {
		errs = append(errs, field.Invalid(p.Child("capacity"), *a.Capacity, apivalidation.IsNegativeErrorMsg))
	}
	if a.Amount != 0 && a.Action == "" {
		errs = append(errs, field.Invalid(p, a.Action, `action must be "Increment" or "Decrement" if the amount is not nil`))
	}
	if a.Amount == 0 && a.Action != "" {
		errs = append(errs, field.Invalid(p, a.Amount, "amount must not be nil if action is not nil"))
	}
	return errs
}

// LabelsMatch is the label part of Agones' GameServerSelector.Matches:
// the selector's matchLabels and matchExpressions as Kubernetes evaluates
// them. A selector ValidateAllocation refuses matches nothing.
func LabelsMatch(sel agones.GameServerSelector, set map[string]string) bool {
	s, err := metav1.LabelSelectorAsSelector(labelSelector(sel))
	return err == nil && s.Matches(labels.Set(set))
}

func labelSelector(sel agones.GameServerSelector) *metav1.LabelSelector {
	ls := &metav1.LabelSelector{MatchLabels: sel.MatchLabels}
	for _, e := range sel.MatchExpressions {
		ls.MatchExpressions = append(ls.MatchExpressions, metav1.LabelSelectorRequirement{
			Key: e.Key, Operator: metav1.LabelSelectorOperator(e.Operator), Values: e.Values,
		})
	}
	return ls
}
