package rules

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"
)

// DefaultReload is how often the frontend and the matcher read the rule
// set file again (their -rules-reload): a few seconds, so an edit reaches
// both within the same few seconds once their copies of the file have it
// (a matcher waits that long for the rule set a ticket was checked under:
// Set.Version), at the cost of one small file read.
const DefaultReload = 5 * time.Second

// Current is the rule set in force, read from a file and read again when
// the file changes. A changed file that does not parse or check is logged
// and the set in force is kept: a bad edit never takes modes away.
type Current struct {
	path string
	log  *slog.Logger
	set  atomic.Pointer[Set]
	// last is the file's content the set in force or the last refusal
	// came from, so an unchanged file is not parsed again.
	last []byte
	// onChange, if set, is called with each new set (after it is in force).
	onChange func(*Set)
}

// Fixed is a Current that never changes: set in force without a file.
func Fixed(s *Set) *Current {
	c := &Current{}
	c.set.Store(s)
	return c
}

// Open reads the rule set at path; a bad file is an error, since a
// service must not start without its rules. No path is the built-in rule
// set (Default), which never changes.
func Open(path string, log *slog.Logger) (*Current, error) {
	if path == "" {
		return Fixed(Default()), nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	s, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("rule set %s: %w", path, err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Current{path: path, log: log, last: data}
	c.set.Store(s)
	return c, nil
}

// Get is the rule set in force.
func (c *Current) Get() *Set { return c.set.Load() }

// OnChange sets a function called with each new rule set. Call it before
// Watch.
func (c *Current) OnChange(f func(*Set)) { c.onChange = f }

// Watch reads the file again every interval until ctx ends, putting a
// changed, good rule set in force. It reads the content rather than
// watching events: a Kubernetes ConfigMap volume changes by swapping a
// symlink, which file events report unreliably. A Fixed Current returns at
// once.
func (c *Current) Watch(ctx context.Context, every time.Duration) {
	if c.path == "" {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.Reload()
		}
	}
}

// Reload reads the file once and puts it in force if it changed and is
// good. It reports whether a new set is in force.
func (c *Current) Reload() bool {
	if c.path == "" {
		return false // Fixed: no file
	}
	data, err := os.ReadFile(c.path)
	if err != nil {
		c.log.Error("rule set not read; the rules in force are kept", "path", c.path, "err", err)
		return false
	}
	if bytes.Equal(data, c.last) {
		return false
	}
	c.last = data
	s, err := Parse(data)
	if err != nil {
		c.log.Error("rule set refused; the rules in force are kept", "path", c.path, "err", err)
		return false
	}
	c.set.Store(s)
	c.log.Info("rule set reloaded", "path", c.path, "modes", s.Modes(), "version", s.Version())
	if c.onChange != nil {
		c.onChange(s)
	}
	return true
}
