// Package sdk is a client of the Agones SDK sidecar's HTTP gateway
// (default localhost:9358), as described by Agones' SDK API (stable and
// beta: counters and lists). It mirrors the gateway's wire format,
// including its quirks: int64 values travel as JSON strings, errors come
// back as HTTP 500 {"code":..,"message":..}, and SetLabel("mode") is
// stored as label "agones.dev/sdk-mode".
package sdk

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// DefaultURL is where the sidecar listens in a game server pod; Agones also
// sets the port in AGONES_SDK_HTTP_PORT.
const DefaultURL = "http://localhost:9358"

// LabelPrefix is what the SDK puts before a label key set through it.
const LabelPrefix = "agones.dev/sdk-"

// Errors callers branch on; the sidecar's own message is wrapped.
var (
	ErrNotFound   = errors.New("not found")
	ErrOutOfRange = errors.New("out of range")
	ErrExists     = errors.New("already exists")
	// ErrNoRoute: the gateway has no such endpoint (HTTP 404, code 5
	// "Not Found") or not for that method or list operation (HTTP 501,
	// code 12 "Method Not Allowed"), as when client and sidecar speak
	// different Agones versions. It is never ErrNotFound: "Not Found"
	// here names a path, not a missing counter, list or value, and a
	// caller that takes ErrNotFound as "already removed" must not take a
	// missing endpoint for success.
	ErrNoRoute = errors.New("no such gateway route")
)

// Error is an error answer of the gateway.
type Error struct {
	Status  int
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string {
	return fmt.Sprintf("agones sdk: %d %s (code %d)", e.Status, e.Message, e.Code)
}

// Is maps the gateway's answers to the sentinels. The sdk-server's own
// refusals come back as HTTP 500 (code 2) whose message starts with the
// reason ("not found. ...", "out of range. ...", "already exists. ...");
// routing failures of the gateway are ErrNoRoute only.
func (e *Error) Is(target error) bool {
	route := e.Status == http.StatusNotFound || e.Status == http.StatusNotImplemented || e.Status == http.StatusMethodNotAllowed
	if target == ErrNoRoute {
		return route
	}
	if route {
		return false
	}
	m := strings.ToLower(e.Message)
	switch target {
	case ErrNotFound:
		return strings.Contains(m, "not found")
	case ErrOutOfRange:
		return strings.Contains(m, "out of range")
	case ErrExists:
		return strings.Contains(m, "already exists")
	}
	return false
}

// GameServer is the part of the GameServer the SDK shows.
type GameServer struct {
	ObjectMeta ObjectMeta `json:"object_meta"`
	Status     Status     `json:"status"`
}

// ObjectMeta is the GameServer's metadata.
type ObjectMeta struct {
	Name        string            `json:"name"`
	Namespace   string            `json:"namespace,omitempty"`
	UID         string            `json:"uid,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// Status is the GameServer's status.
type Status struct {
	State    string                   `json:"state"`
	Address  string                   `json:"address,omitempty"`
	Ports    []Port                   `json:"ports,omitempty"`
	Counters map[string]CounterStatus `json:"counters,omitempty"`
	Lists    map[string]ListStatus    `json:"lists,omitempty"`
}

// Port is a named port of the GameServer.
type Port struct {
	Name string `json:"name"`
	Port int    `json:"port"`
}

// CounterStatus is a counter as the GameServer status carries it.
type CounterStatus struct {
	Count    Int64 `json:"count"`
	Capacity Int64 `json:"capacity"`
}

// ListStatus is a list as the GameServer status carries it.
type ListStatus struct {
	Capacity Int64    `json:"capacity"`
	Values   []string `json:"values"`
}

// Counter is a counter as the beta API carries it.
type Counter struct {
	Name     string `json:"name,omitempty"`
	Count    Int64  `json:"count"`
	Capacity Int64  `json:"capacity"`
}

// List is a list as the beta API carries it.
type List struct {
	Name     string   `json:"name,omitempty"`
	Capacity Int64    `json:"capacity"`
	Values   []string `json:"values"`
}

// Int64 is an int64 that the gateway writes as a JSON string ("3"); it
// reads a number too.
type Int64 int64

// MarshalJSON writes the value as a string, as the gateway does.
func (i Int64) MarshalJSON() ([]byte, error) { return json.Marshal(strconv.FormatInt(int64(i), 10)) }

// UnmarshalJSON reads "3" or 3.
func (i *Int64) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "" || s == "null" {
		*i = 0
		return nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("int64 %s: %w", b, err)
	}
	*i = Int64(v)
	return nil
}

// Client talks to one sidecar.
type Client struct {
	base string
	hc   *http.Client
}

// New returns a client of the gateway at base (DefaultURL in a pod).
func New(base string) *Client {
	return &Client{base: strings.TrimRight(base, "/"), hc: &http.Client{Timeout: 10 * time.Second}}
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader = http.NoBody
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("agones sdk %s: %w", path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return fmt.Errorf("agones sdk %s: %w", path, err)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("agones sdk %s %s: %w", method, path, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("agones sdk %s %s: %w", method, path, err)
	}
	if res.StatusCode != http.StatusOK {
		e := &Error{Status: res.StatusCode}
		if json.Unmarshal(data, e) != nil || e.Message == "" {
			e.Message = strings.TrimSpace(string(data))
		}
		return fmt.Errorf("%s %s: %w", method, path, e)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("agones sdk %s %s: bad answer %.200q: %w", method, path, data, err)
	}
	return nil
}

var empty = struct{}{}

// Ready marks the game server ready to be allocated (again).
func (c *Client) Ready(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/ready", empty, nil)
}

// Health is one health ping; Agones restarts a game server that stops.
func (c *Client) Health(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/health", empty, nil)
}

// Allocate marks the game server allocated from inside.
func (c *Client) Allocate(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/allocate", empty, nil)
}

// Shutdown asks Agones to delete the game server.
func (c *Client) Shutdown(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/shutdown", empty, nil)
}

// Reserve keeps the game server from allocation and scale-down for d.
func (c *Client) Reserve(ctx context.Context, d time.Duration) error {
	return c.do(ctx, http.MethodPost, "/reserve", map[string]string{"seconds": strconv.FormatInt(int64(d/time.Second), 10)}, nil)
}

// SetLabel sets label LabelPrefix+key; the sidecar takes any key, even
// an empty one (label "agones.dev/sdk-").
func (c *Client) SetLabel(ctx context.Context, key, value string) error {
	return c.do(ctx, http.MethodPut, "/metadata/label", map[string]string{"key": key, "value": value}, nil)
}

// SetAnnotation sets annotation LabelPrefix+key.
func (c *Client) SetAnnotation(ctx context.Context, key, value string) error {
	return c.do(ctx, http.MethodPut, "/metadata/annotation", map[string]string{"key": key, "value": value}, nil)
}

// GameServer returns the game server as it is now.
func (c *Client) GameServer(ctx context.Context) (GameServer, error) {
	var gs GameServer
	err := c.do(ctx, http.MethodGet, "/gameserver", nil, &gs)
	return gs, err
}

// Watch calls f with the game server as the gateway streams it, the
// current state first, until ctx ends or the stream breaks (the error
// says which; ctx's end returns nil). The gateway streams one
// {"result": GameServer} object per line. Not every change is streamed:
// a sidecar in local mode streams state, label and annotation changes
// (and a changed GameServer file) but not counter or list changes made
// through the SDK, so read those with Counter, List or GameServer.
func (c *Client) Watch(ctx context.Context, f func(GameServer)) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/watch/gameserver", nil)
	if err != nil {
		return err
	}
	hc := &http.Client{} // no timeout: the stream lasts
	res, err := hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("agones sdk watch: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("agones sdk watch: %s", res.Status)
	}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var msg struct {
			Result *GameServer `json:"result"`
			Error  *Error      `json:"error"`
		}
		if err := json.Unmarshal(line, &msg); err != nil {
			return fmt.Errorf("agones sdk watch: bad line %.200q: %w", line, err)
		}
		if msg.Error != nil {
			return fmt.Errorf("agones sdk watch: %w", msg.Error)
		}
		if msg.Result != nil {
			f(*msg.Result)
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("agones sdk watch: %w", err)
	}
	return errors.New("agones sdk watch: stream ended")
}

// Counter returns a counter.
func (c *Client) Counter(ctx context.Context, name string) (Counter, error) {
	var out Counter
	err := c.do(ctx, http.MethodGet, "/v1beta1/counters/"+url.PathEscape(name), nil, &out)
	return out, err
}

// CounterUpdate is one PATCH of a counter. The gateway applies what is
// set, in this order, all or nothing: Capacity (below 0 is out of range;
// a capacity below the count keeps the count), then Count, then
// CountDiff (each out of range if the count would leave [0, capacity]).
// A zero CountDiff is no change.
type CounterUpdate struct {
	Capacity  *int64
	Count     *int64
	CountDiff int64
}

// UpdateCounter applies u to a counter (ErrNotFound if it is not
// declared, ErrOutOfRange as CounterUpdate says).
//
// The answer is the counter after the update from a sidecar in local
// mode, but an empty Counter from one in a cluster: there Agones batches
// counter and list writes into later GameServer updates and answers
// before they land (Count reads them back). Never read the result.
func (c *Client) UpdateCounter(ctx context.Context, name string, u CounterUpdate) (Counter, error) {
	body := map[string]string{}
	if u.Capacity != nil {
		body["capacity"] = strconv.FormatInt(*u.Capacity, 10)
	}
	if u.Count != nil {
		body["count"] = strconv.FormatInt(*u.Count, 10)
	}
	if u.CountDiff != 0 {
		body["countDiff"] = strconv.FormatInt(u.CountDiff, 10)
	}
	var out Counter
	err := c.do(ctx, http.MethodPatch, "/v1beta1/counters/"+url.PathEscape(name), body, &out)
	return out, err
}

// CounterDiff adds diff (negative to subtract) to a counter; the gateway
// answers ErrOutOfRange if the count would leave [0, capacity]. See
// UpdateCounter about the answer.
func (c *Client) CounterDiff(ctx context.Context, name string, diff int64) (Counter, error) {
	return c.UpdateCounter(ctx, name, CounterUpdate{CountDiff: diff})
}

// SetCounterCapacity sets a counter's capacity; a count above it stays.
// See UpdateCounter about the answer.
func (c *Client) SetCounterCapacity(ctx context.Context, name string, capacity int64) (Counter, error) {
	return c.UpdateCounter(ctx, name, CounterUpdate{Capacity: &capacity})
}

// List returns a list.
func (c *Client) List(ctx context.Context, name string) (List, error) {
	var out List
	err := c.do(ctx, http.MethodGet, "/v1beta1/lists/"+url.PathEscape(name), nil, &out)
	return out, err
}

// AddListValue appends value: ErrOutOfRange if the list is full (checked
// first, so a full list answers that even for a value it holds),
// ErrExists if present. An empty value is a value. The answer is empty
// from a sidecar in a cluster, as for UpdateCounter: read it back with
// List.
func (c *Client) AddListValue(ctx context.Context, name, value string) (List, error) {
	var out List
	err := c.do(ctx, http.MethodPost, "/v1beta1/lists/"+url.PathEscape(name)+":addValue", map[string]string{"value": value}, &out)
	return out, err
}

// RemoveListValue removes value (ErrNotFound if absent). The answer is
// empty from a sidecar in a cluster, as for AddListValue.
func (c *Client) RemoveListValue(ctx context.Context, name, value string) (List, error) {
	var out List
	err := c.do(ctx, http.MethodPost, "/v1beta1/lists/"+url.PathEscape(name)+":removeValue", map[string]string{"value": value}, &out)
	return out, err
}
