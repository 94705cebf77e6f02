package deploytest

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/quickmatch-dev/quickmatch/pkg/agones"
)

// Fleet is agones.dev/v1 Fleet with the fields the chart writes, from
// ../shared/agones/crds.yaml; its pod template is the real core/v1 type.
type Fleet struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              FleetSpec `json:"spec"`
}

// FleetSpec is the Fleet's spec.
type FleetSpec struct {
	Replicas   int32                     `json:"replicas"`
	Scheduling string                    `json:"scheduling"`
	Priorities []agones.Priority         `json:"priorities"`
	Strategy   appsv1.DeploymentStrategy `json:"strategy"`
	Template   GameServerTemplate        `json:"template"`
}

// GameServerTemplate is a GameServer template.
type GameServerTemplate struct {
	metav1.ObjectMeta `json:"metadata"`
	Spec              GameServerSpec `json:"spec"`
}

// GameServerSpec is the part of agones.dev/v1 GameServer spec the chart sets.
type GameServerSpec struct {
	Ports    []GameServerPort       `json:"ports"`
	Health   GameServerHealth       `json:"health"`
	Eviction *Eviction              `json:"eviction,omitempty"`
	Counters map[string]CounterSpec `json:"counters"`
	Lists    map[string]ListSpec    `json:"lists"`
	Template corev1.PodTemplateSpec `json:"template"`
}

// Eviction is a GameServer's eviction tolerance.
type Eviction struct {
	Safe string `json:"safe"`
}

// GameServerPort is one port of a GameServer.
type GameServerPort struct {
	Name          string `json:"name"`
	PortPolicy    string `json:"portPolicy"`
	ContainerPort int32  `json:"containerPort"`
	Protocol      string `json:"protocol"`
}

// GameServerHealth is a GameServer's health checking.
type GameServerHealth struct {
	InitialDelaySeconds int32 `json:"initialDelaySeconds"`
	PeriodSeconds       int32 `json:"periodSeconds"`
	FailureThreshold    int32 `json:"failureThreshold"`
}

// CounterSpec is a counter's initial state. The chart writes no counter
// (the rooms counter became the rooms List); the field is decoded so that
// a test sees one that comes back.
type CounterSpec struct {
	Count    *int64 `json:"count"`
	Capacity *int64 `json:"capacity"`
}

// ListSpec is a list's capacity and values.
type ListSpec struct {
	Capacity *int64   `json:"capacity"`
	Values   []string `json:"values,omitempty"`
}

// Monitor is monitoring.coreos.com/v1 ServiceMonitor or PodMonitor, the
// fields the chart writes.
type Monitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Selector  metav1.LabelSelector `json:"selector"`
		Endpoints []struct {
			Port     string `json:"port"`
			Path     string `json:"path"`
			Interval string `json:"interval"`
		} `json:"endpoints,omitempty"`
		// Port names a container port of the pod (the game server's
		// ops port is none of its GameServer's ports).
		PodMetricsEndpoints []struct {
			Port     string `json:"port"`
			Path     string `json:"path"`
			Interval string `json:"interval"`
		} `json:"podMetricsEndpoints,omitempty"`
	} `json:"spec"`
}

// Typed decodes an object strictly into the Go type of its kind: an
// unknown or misspelled field is an error.
func Typed(o Object) (any, error) {
	var v any
	switch o.APIVersion + " " + o.Kind {
	case "apps/v1 Deployment":
		v = &appsv1.Deployment{}
	case "v1 Service":
		v = &corev1.Service{}
	case "v1 ServiceAccount":
		v = &corev1.ServiceAccount{}
	case "v1 ConfigMap":
		v = &corev1.ConfigMap{}
	case "v1 Secret":
		v = &corev1.Secret{}
	case "v1 Pod":
		v = &corev1.Pod{}
	case "batch/v1 Job":
		v = &batchv1.Job{}
	case "policy/v1 PodDisruptionBudget":
		v = &policyv1.PodDisruptionBudget{}
	case "autoscaling/v2 HorizontalPodAutoscaler":
		v = &autoscalingv2.HorizontalPodAutoscaler{}
	case "networking.k8s.io/v1 NetworkPolicy":
		v = &networkingv1.NetworkPolicy{}
	case "networking.k8s.io/v1 Ingress":
		v = &networkingv1.Ingress{}
	case "rbac.authorization.k8s.io/v1 Role":
		v = &rbacv1.Role{}
	case "rbac.authorization.k8s.io/v1 RoleBinding":
		v = &rbacv1.RoleBinding{}
	case "agones.dev/v1 Fleet":
		v = &Fleet{}
	case "autoscaling.agones.dev/v1 FleetAutoscaler":
		v = &agones.FleetAutoscaler{}
	case "monitoring.coreos.com/v1 ServiceMonitor", "monitoring.coreos.com/v1 PodMonitor":
		v = &Monitor{}
	default:
		return nil, fmt.Errorf("%s: no Go type for %s %s", o, o.APIVersion, o.Kind)
	}
	if err := yaml.UnmarshalStrict(o.YAML, v); err != nil {
		return nil, fmt.Errorf("%s: %w", o, err)
	}
	return v, nil
}
