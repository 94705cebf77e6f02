package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// printJSON is the -json form of every command's output.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table writes aligned columns: a header row, then rows, each cell as
// given ("-" for an empty one, so columns stay readable).
type table struct {
	tw *tabwriter.Writer
}

func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	t.row(header...)
	return t
}

func (t *table) row(cells ...string) {
	for i, c := range cells {
		if c == "" {
			cells[i] = "-"
		}
		// A tab or newline in a cell (a reason, a subject read back from
		// a message) would break the columns.
		cells[i] = strings.NewReplacer("\t", " ", "\n", " ", "\r", " ").Replace(cells[i])
	}
	fmt.Fprintln(t.tw, strings.Join(cells, "\t"))
}

func (t *table) flush() error { return t.tw.Flush() }

// section writes a titled block of "name: value" lines, the table form of
// one record.
func section(w io.Writer, title string, lines ...[2]string) {
	fmt.Fprintf(w, "%s\n", title)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, l := range lines {
		v := l[1]
		if v == "" {
			v = "-"
		}
		fmt.Fprintf(tw, "  %s:\t%s\n", l[0], v)
	}
	_ = tw.Flush()
}

// ms is a duration in milliseconds as people read it ("" for unknown).
func ms(v int64, known bool) string {
	if !known {
		return ""
	}
	return (time.Duration(v) * time.Millisecond).Round(time.Millisecond).String()
}

// at is a time as a table shows it: UTC, to the millisecond ("" for none).
func at(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

// cut is s, or its first n bytes (whole characters) and "…": a table
// cell stays one line of a readable width.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// redacted is what the CLI prints for a join token: it admits a player to
// a room, and an operator's output is pasted into tickets and chats.
const redacted = "(redacted)"

// redact returns r without its join token.
func redact(r events.Result) events.Result {
	if r.Assignment != nil {
		a := *r.Assignment
		if a.JoinToken != "" {
			a.JoinToken = redacted
		}
		// The play URL carries the token too.
		if i := strings.Index(a.URL, "?"); i >= 0 {
			a.URL = a.URL[:i] + "?" + redacted
		}
		r.Assignment = &a
	}
	return r
}

// where is an assignment as a table cell: server, address:port.
func where(a *events.Assignment) string {
	if a == nil {
		return ""
	}
	return fmt.Sprintf("%s %s:%d", a.Server, a.Address, a.Port)
}
