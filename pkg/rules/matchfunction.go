package rules

import (
	"fmt"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// What a mode does when its match function fails or times out.
const (
	// OnFailureFallback forms the shard's matches with the built-in rules
	// until the function answers again.
	OnFailureFallback = "fallback"
	// OnFailureWait forms none: the tickets wait (and expire) until the
	// function answers again.
	OnFailureWait = "wait"
)

// MatchFunction names an external match function for a mode (see the
// matcher's hook): a NATS service that proposes matches from candidates.
type MatchFunction struct {
	// Service is the function's NATS micro service name; the matcher
	// sends requests to events.Subjects.MatchFunction(Service).
	Service string `json:"service"`
	// Timeout bounds one call; zero means DefaultFunctionTimeout.
	Timeout Duration `json:"timeout,omitempty"`
	// OnFailure is OnFailureFallback (the default) or OnFailureWait.
	OnFailure string `json:"on_failure,omitempty"`
	// MaxCandidates bounds the tickets of one call; zero means
	// DefaultMaxCandidates.
	MaxCandidates int `json:"max_candidates,omitempty"`
}

// Defaults and bounds of a match function.
const (
	DefaultFunctionTimeout = 2 * time.Second
	// MaxFunctionTimeout bounds a call (and so does half the mode's
	// max_wait, within): one call per mode and shard is in flight, and
	// a function that hangs holds off both its mode's matches and the
	// fallback for as long as the call may take.
	MaxFunctionTimeout   = 10 * time.Second
	DefaultMaxCandidates = 1000
	// MaxFunctionCandidates bounds max_candidates: what one request may
	// carry (pkg/matchfn reads requests by the same bound).
	MaxFunctionCandidates = 10000
)

// withDefaults is mf with its zero settings filled in; nil stays nil.
func (mf *MatchFunction) withDefaults() *MatchFunction {
	if mf == nil {
		return nil
	}
	c := *mf
	if c.Timeout == 0 {
		c.Timeout = Duration(DefaultFunctionTimeout)
	}
	if c.OnFailure == "" {
		c.OnFailure = OnFailureFallback
	}
	if c.MaxCandidates == 0 {
		c.MaxCandidates = DefaultMaxCandidates
	}
	return &c
}

// check reports what is wrong with a mode's match function.
func (mf *MatchFunction) check() []error {
	if mf == nil {
		return nil
	}
	var errs []error
	if err := events.CheckToken(mf.Service); err != nil {
		errs = append(errs, fmt.Errorf("match_function.service: %w", err))
	}
	if mf.Timeout <= 0 || mf.MaxCandidates < 1 || mf.MaxCandidates > MaxFunctionCandidates {
		errs = append(errs, fmt.Errorf("match_function: want a positive timeout and 1 to %d max_candidates", MaxFunctionCandidates))
	}
	if mf.OnFailure != OnFailureFallback && mf.OnFailure != OnFailureWait {
		errs = append(errs, fmt.Errorf("match_function.on_failure %q: want %q or %q", mf.OnFailure, OnFailureFallback, OnFailureWait))
	}
	return errs
}

// within is mf taken within what mode m can use, as checkMode finds it
// (a rule set that loaded before still loads): a timeout past
// MaxFunctionTimeout or half m's max_wait is taken at the lesser, and
// max_candidates below one match's players (which no proposal could
// fill, so the mode would never match) at one match's players.
func (mf *MatchFunction) within(m *Mode) *MatchFunction {
	if mf == nil {
		return nil
	}
	c := *mf
	c.Timeout = min(c.Timeout, Duration(MaxFunctionTimeout), max(m.MaxWait/2, 1))
	c.MaxCandidates = max(c.MaxCandidates, m.Teams*m.TeamSize)
	return &c
}
