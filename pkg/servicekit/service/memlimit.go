package service

import (
	"log/slog"
	"math"

	"github.com/KimMachineGun/automemlimit/memlimit"
)

// memoryShare is the share of its container's memory limit a service's
// heap is held to (GOMEMLIMIT).
const memoryShare = 0.9

// setMemoryLimit sets GOMEMLIMIT to memoryShare of the cgroup's memory
// limit, unless GOMEMLIMIT is set (or AUTOMEMLIMIT=off). The garbage
// collector knows no container's limit: a service that grew towards it (a
// frontend's sockets on launch day, a matcher's pool) was OOM-killed
// rather than made to collect more often. GOMAXPROCS follows the
// container's CPU limit by itself since Go 1.25.
func setMemoryLimit(log *slog.Logger) {
	limit, err := memlimit.Set(memlimit.WithRatio(memoryShare), memlimit.WithProvider(memlimit.FromCgroup))
	switch {
	case err != nil:
		log.Debug("no memory limit read from the cgroup; GOMEMLIMIT left as it is", "err", err)
	case limit < math.MaxInt64:
		log.Info("heap held under a memory limit (GOMEMLIMIT, or a share of the cgroup's: AUTOMEMLIMIT, default 0.9)", "gomemlimit_bytes", limit)
	}
}
