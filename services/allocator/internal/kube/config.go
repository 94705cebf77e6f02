package kube

import (
	"cmp"
	"flag"
	"fmt"
	"os"
	"slices"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/envflag"
)

// Config of the backend.
type Config struct {
	Mode Mode
	// Timeout bounds one allocation call.
	Timeout time.Duration
	// Settle is how long a call that got no clear answer (a timeout, a
	// connection lost, a 5xx) watches for the server Agones may still
	// give the match: Agones finishes an allocation its caller gave up on.
	Settle time.Duration
	// FailuresToUnhealthy and Cooldown rule a failing cluster out for a while.
	FailuresToUnhealthy int
	Cooldown            time.Duration
}

// defaults are the one statement of the defaults: New fills a zero field
// from them, and RegisterFlags shows Mode as the flag's default.
var defaults = Config{
	Mode:                HighDensity,
	Timeout:             5 * time.Second,  // one allocation call; the handler retries within its deadline
	Settle:              3 * time.Second,  // after a call with no clear answer; the whole call is bounded at 12 s (events.AllocatorBackendCall)
	FailuresToUnhealthy: 3,                // in a row, so one blip does not rule a cluster out
	Cooldown:            10 * time.Second, // then the cluster is tried again
}

func (c *Config) setDefaults() {
	c.Mode = cmp.Or(c.Mode, defaults.Mode)
	envflag.OrDefault(&c.Timeout, defaults.Timeout)
	envflag.OrDefault(&c.Settle, defaults.Settle)
	envflag.OrDefault(&c.FailuresToUnhealthy, defaults.FailuresToUnhealthy)
	envflag.OrDefault(&c.Cooldown, defaults.Cooldown)
}

func (c *Config) validate() error {
	if !slices.Contains([]Mode{HighDensity, LabelLocking, OnePerServer}, c.Mode) {
		return fmt.Errorf("allocation mode %q: want high-density, label-locking or one-per-server", c.Mode)
	}
	return nil
}

// RegisterFlags registers the backend's flag (-allocation-mode) on fs.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar((*string)(&c.Mode), "allocation-mode", string(defaults.Mode), "kube backend: high-density, label-locking or one-per-server")
}

// Cluster is one cluster to allocate from.
type Cluster struct {
	Name string
	// Config reaches the cluster's API (see load).
	Config *rest.Config
	// Namespace and Fleet of the game servers.
	Namespace, Fleet string
	// Region the cluster's game servers serve (for capacity reports).
	Region           string
	Priority, Weight int
	// Modes the fleet hosts; empty: every mode. A match goes only to a
	// cluster whose fleet hosts its mode.
	Modes []string
	// Scheduling is the fleet's: Packed ("", the default) or
	// Distributed, asked of Agones with each allocation (an allocation
	// Packed on a Distributed fleet undid what its operator chose).
	Scheduling string
}

// Allocation scheduling strategies (Agones' Packed and Distributed).
const (
	Packed      = "Packed"
	Distributed = "Distributed"
)

// scheduling is c's strategy, Packed unless it says Distributed.
func (c *Cluster) scheduling() string {
	if c.Scheduling == Distributed {
		return Distributed
	}
	return Packed
}

func (c *Cluster) hosts(mode string) bool { return len(c.Modes) == 0 || slices.Contains(c.Modes, mode) }

// load builds a rest.Config from a kubeconfig file and context, or the
// in-cluster service account when kubeconfig is "".
func load(kubeconfig, context string) (*rest.Config, error) {
	if kubeconfig == "" {
		c, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("in-cluster config: %w", err)
		}
		return c, nil
	}
	c, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		&clientcmd.ClientConfigLoadingRules{ExplicitPath: kubeconfig},
		&clientcmd.ConfigOverrides{CurrentContext: context}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s context %q: %w", kubeconfig, context, err)
	}
	return c, nil
}

// clusterFile is one entry of the clusters file.
type clusterFile struct {
	Name       string `json:"name"`
	Kubeconfig string `json:"kubeconfig"`
	Context    string `json:"context"`
	Namespace  string `json:"namespace"`
	Fleet      string `json:"fleet"`
	Region     string `json:"region"`
	Priority   int    `json:"priority"`
	Weight     int    `json:"weight"`
	// Modes the fleet hosts ("1v1", "2v2"); absent or empty: every mode.
	Modes []string `json:"modes"`
	// Scheduling is the fleet's, Packed (absent) or Distributed.
	Scheduling string `json:"scheduling"`
}

// LoadClusters reads the clusters file (a JSON list), or, with no file,
// returns this cluster through its service account.
func LoadClusters(path, namespace, fleet, region string) ([]Cluster, error) {
	if path == "" {
		cfg, err := load("", "")
		if err != nil {
			return nil, err
		}
		return []Cluster{{Name: "local", Config: cfg, Namespace: namespace, Fleet: fleet, Region: region}}, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("clusters file: %w", err)
	}
	list, err := events.DecodeStrictList[clusterFile]("clusters file", "clusters", data)
	if err != nil {
		return nil, fmt.Errorf("clusters file %s: %w", path, err)
	}
	var out []Cluster
	for _, c := range list {
		for _, mode := range c.Modes {
			if err := events.CheckID(mode); err != nil {
				return nil, fmt.Errorf("clusters file %s: cluster %s: mode %q: %w", path, c.Name, mode, err)
			}
		}
		if c.Scheduling != "" && c.Scheduling != Packed && c.Scheduling != Distributed {
			return nil, fmt.Errorf("clusters file %s: cluster %s: scheduling %q: want %s or %s", path, c.Name, c.Scheduling, Packed, Distributed)
		}
		cfg, err := load(c.Kubeconfig, c.Context)
		if err != nil {
			return nil, fmt.Errorf("cluster %s: %w", c.Name, err)
		}
		out = append(out, Cluster{Name: c.Name, Config: cfg, Namespace: c.Namespace, Fleet: c.Fleet, Region: c.Region, Priority: c.Priority, Weight: c.Weight, Modes: c.Modes, Scheduling: c.Scheduling})
	}
	return out, nil
}
