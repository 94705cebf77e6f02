package testkit

import (
	"bytes"
	"io"
	"log/slog"
	"sync"
)

// LogWatch is a logger's output that tells when lines holding each of
// some texts have been written: a test acts at the moment the code under
// test says it reached a step (every retry began) instead of after a
// guessed sleep.
type LogWatch struct {
	mu   sync.Mutex
	left [][]byte
	seen chan struct{}
}

// WatchLog watches for texts, each in a line of its own or not.
func WatchLog(texts ...string) *LogWatch {
	w := &LogWatch{seen: make(chan struct{})}
	for _, t := range texts {
		w.left = append(w.left, []byte(t))
	}
	return w
}

// Logger is a text logger writing to w.
func (w *LogWatch) Logger() *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

// Seen is closed once every text was written.
func (w *LogWatch) Seen() <-chan struct{} { return w.seen }

// Write takes one line (slog writes each record at once) and drops it.
func (w *LogWatch) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.left) > 0 {
		for i := len(w.left) - 1; i >= 0; i-- {
			if bytes.Contains(p, w.left[i]) {
				w.left = append(w.left[:i], w.left[i+1:]...)
			}
		}
		if len(w.left) == 0 {
			close(w.seen)
		}
	}
	return io.Discard.Write(p)
}
