package matchfn

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// Endpoint is the name of a match function's one micro endpoint.
const Endpoint = "match"

// Func is a match function: it proposes matches from a request's
// candidates. It is called for one request at a time per Serve; an error
// is sent back as an Error (CodeFailed, or the code of an *Error it
// returns) and makes the matcher apply the mode's on_failure.
type Func func(Request) (Reply, error)

// Option changes how Serve serves.
type Option func(*serveOpts)

type serveOpts struct {
	subj    events.Subjects
	version string
	log     *slog.Logger
}

// WithSubjects serves under a deployment's subject prefix (the matcher's
// -subject-prefix); the default is no prefix.
func WithSubjects(s events.Subjects) Option { return func(o *serveOpts) { o.subj = s } }

// WithVersion is the function's own version, as micro's INFO shows it
// (SemVer); default "1.0.0".
func WithVersion(v string) Option { return func(o *serveOpts) { o.version = v } }

// WithLogger logs what cannot be sent back (a failed respond, a panic);
// default slog.Default().
func WithLogger(l *slog.Logger) Option { return func(o *serveOpts) { o.log = l } }

// Serve serves f as the match function named service on nc until the
// returned service is stopped or nc is closed: a micro service of that
// name whose endpoint Endpoint listens on
// events.Subjects.MatchFunction(service) in queue group "q", so several
// copies share the requests. Requests are decoded strictly
// (DecodeRequest); one that cannot be read is answered with an Error
// CodeBadRequest and f is not called. A panic in f is answered with an
// Error CodeFailed and logged: the function keeps serving.
func Serve(nc *nats.Conn, service string, f Func, opts ...Option) (micro.Service, error) {
	o := serveOpts{version: "1.0.0", log: slog.Default()}
	for _, opt := range opts {
		opt(&o)
	}
	if err := events.CheckToken(service); err != nil {
		return nil, fmt.Errorf("match function service name: %w", err)
	}
	svc, err := micro.AddService(nc, micro.Config{
		Name:        service,
		Version:     o.version,
		Description: "quickmatch match function",
		Metadata:    map[string]string{"schema_version": strconv.Itoa(SchemaVersion)},
	})
	if err != nil {
		return nil, fmt.Errorf("match function %s: %w", service, err)
	}
	h := handler{f: f, log: o.log.With("match_function", service)}
	if err := svc.AddEndpoint(Endpoint, micro.HandlerFunc(h.handle), micro.WithEndpointSubject(o.subj.MatchFunction(service))); err != nil {
		_ = svc.Stop() // nothing served yet; the endpoint's error is the one to report
		return nil, fmt.Errorf("match function %s endpoint: %w", service, err)
	}
	return svc, nil
}

type handler struct {
	f   Func
	log *slog.Logger
}

func (h handler) handle(r micro.Request) {
	req, err := DecodeRequest(r.Data())
	if err != nil {
		h.fail(r, CodeBadRequest, err.Error())
		return
	}
	rep, err := h.call(req)
	if err != nil {
		var fe *Error
		if errors.As(err, &fe) {
			h.fail(r, fe.Code, fe.Description)
		} else {
			h.fail(r, CodeFailed, err.Error())
		}
		return
	}
	rep.SchemaVersion = SchemaVersion
	data, err := json.Marshal(rep)
	switch {
	case err != nil:
		h.fail(r, CodeFailed, "encode reply: "+err.Error())
		return
	case len(data) > MaxMessageBytes:
		h.fail(r, CodeFailed, fmt.Sprintf("reply is %d bytes, at most %d allowed", len(data), MaxMessageBytes))
		return
	}
	if err := r.Respond(data); err != nil {
		h.log.Warn("send match function reply", "err", err)
	}
}

// call runs the function, turning a panic into an error.
func (h handler) call(req Request) (rep Reply, err error) {
	defer func() {
		if p := recover(); p != nil {
			h.log.Error("match function panicked", "panic", p)
			err = fmt.Errorf("match function panicked: %v", p)
		}
	}()
	return h.f(req)
}

// maxDescription bounds an error's description: it travels in a header.
const maxDescription = 1024

func (h handler) fail(r micro.Request, code, description string) {
	// A header value is one line.
	description = strings.Map(func(c rune) rune {
		if c == '\r' || c == '\n' {
			return ' '
		}
		return c
	}, description)
	if len(description) > maxDescription {
		description = description[:maxDescription]
	}
	if err := r.Error(code, description, nil); err != nil {
		h.log.Warn("send match function error", "code", code, "err", err)
	}
}
