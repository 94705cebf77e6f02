package main

import (
	"sync"
	"sync/atomic"
)

// failures counts failed clients and keeps the first few errors, so a run
// that goes wrong says why without printing thousands of lines.
type failures struct {
	n     atomic.Int64
	mu    sync.Mutex
	first []string
}

func (f *failures) add(err error) {
	f.n.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.first) < 5 {
		f.first = append(f.first, err.Error())
	}
}

func (f *failures) count() int64 { return f.n.Load() }

func (f *failures) sample() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.first...)
}
