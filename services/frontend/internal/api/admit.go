package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2" // which Retry-After; crypto/rand is for ids
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/identity"
	"github.com/quickmatch-dev/quickmatch/pkg/ticketapi"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/admission"
)

// Overload control at the edge (package admission). Past capacity most
// requests that would create a ticket are refused, so a refusal must cost
// next to nothing, and above all no signature check (~50 µs of Ed25519
// per token, where the whole refusal is under a microsecond). So the
// creation's slot is taken first, before the token is verified and the
// body decoded: a request that finds none is refused at once.
//
// Checking the limit first and taking the slot after the token, as
// before, let every request that came while the admitted ones were being
// verified pass the check (the slots were still free), pay its signature
// and its decoding, and then be refused; under a busy CPU a verification
// takes long, and many pass.
//
// Why admitting before authenticating opens no hole: a slot is held by
// work the frontend does on its own CPU (the verification, the decoding,
// the creation's broker round trips) and by no wait the client paces,
// but one bounded: a WebSocket's 101, written while its slot is held
// (the slot must be taken before the token is verified, so it cannot
// wait for the upgrade), may block on a client that does not read for
// up to the upgrader's HandshakeTimeout, and only for a verified caller
// within its rate limit and stream cap. So a POST's body is read before
// its slot is taken (a client sending it slowly holds its connection, as
// before, but no slot), and a bad token holds a slot for its verification
// alone. The price, accepted: a POST with a bad token, or past its rate
// limit, has its body read (up to events.MaxPayloadBytes, BodyTimeout)
// before its 401 or 429, so 413, 408 or 400 may come first. The
// slot is given back on every path (slot.release, deferred by whoever
// took it): a refused token, the rate limit, a bad body, a client that
// left, a panic. A refusal for overload takes no rate limit token: the
// limit counts what the frontend works on. What a verification may wait
// for (a JWKS read) while it holds the slot is bounded (Config.VerifyWait).
// Refusals counted before the token also set the Retry-After of the
// next ones (admission.Limiter.RetryAfter): a flood while the frontend
// is full lengthens the wait of the honest players refused with it (up
// to 15 s), never admits or refuses anyone who would not have been;
// the limiter's doubling makes it keep at it for three seconds.

// slot is an admitted creation's admission slot, given back once: by the
// creation when it ends (API.create), or when its handler returns before
// (a refusal, a client that left, a panic). A WebSocket's handler lives
// on after its creation, so the creation cannot wait for the handler's
// return. Only the request's goroutine uses it.
type slot struct {
	adm  admission.Slot
	done bool
	// answered: its repeat's refusal was taken back (admission.Slot.Answered).
	answered bool
}

// repeat reports whether the slot is a repeat slot (serveRepeat): its
// request is answered from its ticket (tickets.Service.AnswerRepeat),
// never made anew.
func (s *slot) repeat() bool { return s.adm.Repeat() }

// answer takes back the refusal counted for a repeat slot whose repeat
// was answered from its ticket, the first time only: each take-back
// removes a refusal (admission.Slot.Answered).
func (s *slot) answer() {
	if !s.answered {
		s.answered = true
		s.adm.Answered()
	}
}

// release gives the slot back, the first time only; measured is
// admission.Slot.Done's.
func (s *slot) release(measured bool) {
	if !s.done {
		s.done = true
		s.adm.Done(measured)
	}
}

// creation is the handler of a request that creates a ticket, admitted
// in its slot and authenticated.
type creation func(w http.ResponseWriter, r *http.Request, c identity.Caller, sl *slot)

// admit serves a request that creates a ticket (a WebSocket's): see
// enter. Reads, event streams and cancels never pass here: a player
// already queued is still told and may still leave.
func (a *API) admit(h creation) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sl, c, ok := a.enter(w, r, func() { a.overloaded(w) })
		if !ok {
			return
		}
		defer sl.release(false)
		h(w, r, c, sl)
	}
}

// postTicket serves POST /v1/tickets: refused before its token is
// checked, and without waiting for its body (skipBody), while the
// creations in flight are at their limit already
// (admission.Limiter.Full); else its body is read before its slot is
// taken (enter), a wait the client paces.
func (a *API) postTicket(w http.ResponseWriter, r *http.Request) {
	if a.admission.Full() {
		if !a.saysRepeat(r) {
			skipBody(w, r)
			a.overloaded(w)
		} else if body, ok := a.readBody(w, r); ok { // before its slot, as a creation's
			a.serveRepeat(w, r, body)
		}
		return
	}
	if !a.cfg.Insecure && identity.FromRequest(r) == "" {
		// No token at all: 401 (or 429) at once, its body not waited for.
		skipBody(w, r)
		a.identify(r.Context(), w, r, true)
		return
	}
	body, ok := a.readBody(w, r)
	if !ok {
		return
	}
	sl, c, ok := a.enter(w, r, func() {
		if a.saysRepeat(r) { // full since Full said no
			a.serveRepeat(w, r, body)
		} else {
			a.overloaded(w)
		}
	})
	if !ok {
		return
	}
	defer sl.release(false)
	a.createTicket(w, r, c, sl, body)
}

// saysRepeat reports whether r is a keyed POST, with a token, whose
// client says it repeats one whose ticket may exist
// (ticketapi.HeaderRepeat): past the limit it is served in a repeat
// slot (serveRepeat), not refused unread. One with no token is refused
// unread, as any creation past the limit is.
func (a *API) saysRepeat(r *http.Request) bool {
	return r.Header.Get(ticketapi.HeaderRepeat) == "1" && r.Header.Get(ticketapi.HeaderIdempotencyKey) != "" &&
		(a.cfg.Insecure || identity.FromRequest(r) != "")
}

// serveRepeat serves a POST past the limit that saysRepeat, its body
// read, in a repeat slot (admission.Limiter.AcquireRepeat): answered
// from the ticket an earlier attempt made, refused for overload if none
// did. Refused before its key was read, such a client was told to wait
// like a new player until it gave up on a ticket it held, perhaps
// matched already (chaos S75: a no-show).
//
// A client may say it repeats when it does not: it then costs its
// token's verification and a read of a record (and, for a ticket of its
// still waiting, what any repeat costs: republish), within the few
// repeat slots, and is refused (or rate limited) as it would have been.
func (a *API) serveRepeat(w http.ResponseWriter, r *http.Request, body []byte) {
	adm, ok := a.admission.AcquireRepeat()
	if !ok {
		// Its ticket may exist, matched already: told to come back in
		// 1-3 s, not the overload's growing wait, which could outlast
		// its client's patience (the no-show these slots are for).
		a.met.repeats.WithLabelValues(repeatNoSlot).Inc()
		a.refuseOverloaded(w, overloadRetryAfter(1))
		return
	}
	sl := &slot{adm: adm}
	defer sl.release(false)
	if c, ok := a.creator(w, r); ok {
		a.createTicket(w, r, c, sl, body)
	}
}

// Outcomes of a repeat served past the limit (apiMetrics.repeats).
const (
	repeatAnswered = "answered"  // 202, from the ticket an earlier attempt made
	repeatNoTicket = "no_ticket" // none was made: refused for overload
	repeatNoSlot   = "no_slot"   // the repeats' slots were taken: refused for overload
	repeatFailed   = "failed"    // any other error answer (its ticket service's, a client gone)
)

// closeUnread lets an answer that leaves the request's body unread go out
// at once, and closes the connection after it. Over HTTP/1.1, net/http
// reads what is left of an unread body (up to 256 KiB) before it writes
// the answer, to reuse the connection, and the server has no read
// deadline: a client sending its body slowly would hold the answer (and
// a goroutine) as long as it liked. "Connection: close" skips that read.
// net/http still reads that much after the answer, before it closes, and
// a close with the client's bytes unread would be a TCP reset, which can
// lose the answer at a client still sending; that read is bounded by a
// read deadline closeDrain away, which a slow client held open as long
// as it liked. HTTP/2 needs none of it: Go's server answers at once and
// resets the request's stream (RST_STREAM NO_ERROR), while the header
// would make it send GOAWAY to the whole connection, every client behind
// a proxy's with it.
func closeUnread(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor == 1 && r.ContentLength != 0 {
		w.Header().Set("Connection", "close")
		_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(closeDrain))
	}
}

// closeDrain is how long a connection closed for its unread body
// (closeUnread) may still be read: a body on its way comes in far less,
// and a goroutine waits no longer for one that never ends. It runs from
// before the answer is written, so an answer whose write takes that long
// (a client that does not read) leaves no time to read, and its close is
// a reset again.
const closeDrain = time.Second

// skipBody is closeUnread for a refusal that needs none of the body, but
// the connection is kept when the body has all come: it is read as far
// as the server has it buffered (its 4 KiB read buffer), under a read
// deadline already past, so the socket is never waited on. A ticket's
// body comes with its headers, in one segment, and is all there; a body
// still on its way (or one announced with Expect: 100-continue, which
// must not be invited, or larger than any payload) closes the connection
// with the answer, as before. Closing it on every refusal made each
// refused client, and each proxy's connection to the frontend, dial
// again: past capacity, when most requests are refused, the dials took
// the CPU the admitted tickets needed (perf -http1 at 4,500/s:
// BENCHMARKS, thirty-second round). On a body read to its end, net/http
// clears the deadline before it listens for the next request; on one
// not, it takes the failed read for a client gone and cancels
// r.Context(): no refusal after this waits on it (the no-token path's
// Verify of an empty token answers before it looks).
func skipBody(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor != 1 || r.ContentLength == 0 {
		return
	}
	if r.ContentLength <= events.MaxPayloadBytes && r.Header.Get("Expect") == "" &&
		http.NewResponseController(w).SetReadDeadline(time.Now()) == nil {
		n, err := io.Copy(io.Discard, io.LimitReader(r.Body, events.MaxPayloadBytes+1))
		if err == nil && n <= events.MaxPayloadBytes {
			return // read to its end: the connection stays
		}
	}
	closeUnread(w, r)
}

// enter takes a creation's slot, then finds its caller (the rate limit
// applies, and a player's limit of creations). ok false: it answered why
// (401, 429, or with full when there is no slot: the caller's answer to
// a request past the limit) and holds nothing; else the caller gives sl
// back (deferred release).
func (a *API) enter(w http.ResponseWriter, r *http.Request, full func()) (sl *slot, c identity.Caller, ok bool) {
	adm, taken := a.admission.Acquire()
	if !taken {
		full()
		return nil, c, false
	}
	sl = &slot{adm: adm}
	defer func() {
		if !ok { // refused, or a panic in the verifier
			sl.release(false)
		}
	}()
	c, ok = a.creator(w, r)
	return sl, c, ok
}

// creator finds the caller of a creation in its slot: its token
// verified, waiting Config.VerifyWait at most, and within the rate
// limit and its player's limit of creations. ok false: it answered why
// (401, 429).
func (a *API) creator(w http.ResponseWriter, r *http.Request) (c identity.Caller, ok bool) {
	ctx, cancel := context.WithTimeout(r.Context(), a.cfg.VerifyWait)
	defer cancel()
	c, ok = a.identify(ctx, w, r, true)
	return c, ok && a.allowCreation(w, c)
}

// DefaultVerifyWait is Config.VerifyWait's default (the -verify-wait
// flag's). It bounds what a creation's token verification may wait for
// (not its CPU work, which no context stops): the read of a JWKS for a
// key id the verifier does not know, and the wait for its rate limiter
// (identity.Config.UnknownKIDEvery). Its slot is held meanwhile, and
// anyone can send a token naming an unknown key id: without the bound,
// such tokens would hold every slot for the verifier's HTTP timeout (10 s
// by default) and refuse every creation. A token of a key just rotated
// in whose JWKS read takes longer is refused (401) and its client asks
// again; the JWKS is also read on its refresh interval. A longer wait
// lets such a read finish on a slow identity provider, at the price of
// slots held that long by tokens that name unknown key ids.
const DefaultVerifyWait = time.Second

// readBody reads a creation's body, bounded in size and in time; false
// means it answered why not.
func (a *API) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	// The server has no whole-request read deadline (it would cut event
	// streams), so the body's read is bounded here.
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(a.cfg.BodyTimeout))
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, events.MaxPayloadBytes))
	_ = rc.SetReadDeadline(time.Time{})
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		a.reject(w, "too_large", http.StatusRequestEntityTooLarge, ErrorBody{Error: fmt.Sprintf("request body over %d bytes", events.MaxPayloadBytes)})
		return nil, false
	case errors.Is(err, os.ErrDeadlineExceeded):
		closeUnread(w, r) // the rest of the body is waited for only closeDrain more, after the answer
		a.reject(w, "slow_body", http.StatusRequestTimeout, ErrorBody{Error: fmt.Sprintf("request body not received within %s", a.cfg.BodyTimeout)})
		return nil, false
	case err != nil:
		a.reject(w, "bad_body", http.StatusBadRequest, ErrorBody{Error: "request body unreadable"})
		return nil, false
	}
	return body, true
}

// overloadedBody is the body of every overload refusal, encoded once.
var overloadedBody = func() []byte {
	b, _ := json.Marshal(ErrorBody{Error: ticketapi.OverloadedError}) // an ErrorBody always encodes
	return append(b, '\n')
}()

// retryAfterValues are the Retry-After header values of 0 to
// 3×admission.MaxRetryAfter seconds, made once: an answer takes its own
// without an allocation. Shared between answers, never written.
var retryAfterValues = func() [][]string {
	vs := make([][]string, 3*admission.MaxRetryAfter+1)
	for i := range vs {
		vs[i] = []string{strconv.Itoa(i)}
	}
	return vs
}()

// overloadRetryAfter is the Retry-After of an overload refusal: the
// limiter's (admission.Limiter.RetryAfter, 1 s until refusals outnumber
// admissions), and up to twice as much again at random, so that the
// clients refused in one moment do not all come back in the same second
// (1-3 s at the least).
func overloadRetryAfter(base int) []string {
	return retryAfterValues[base+rand.IntN(2*base+1)]
}

var jsonType = []string{"application/json"}

// overloaded answers a creation refused by overload control, with as
// little work as an answer takes: no encoding, no label look-up.
func (a *API) overloaded(w http.ResponseWriter) {
	a.refuseOverloaded(w, overloadRetryAfter(a.admission.RetryAfter()))
}

// refuseOverloaded is overloaded with its Retry-After (a retryAfterValues
// entry).
func (a *API) refuseOverloaded(w http.ResponseWriter, retryAfter []string) {
	a.met.overloaded.Inc()
	h := w.Header()
	h[ticketapi.HeaderRetryAfter] = retryAfter
	h["Content-Type"] = jsonType
	w.WriteHeader(http.StatusServiceUnavailable)
	_, _ = w.Write(overloadedBody) // the client may be gone; nothing to do
}

// startingBody is the body of every answer Starting refuses.
var startingBody = func() []byte {
	b, _ := json.Marshal(ErrorBody{Error: ticketapi.StartingError}) // an ErrorBody always encodes
	return append(b, '\n')
}()

// Starting is the frontend's handler while it connects and binds: probes
// (/healthz, /readyz, and /metrics unless -ops-addr serves it) from
// probes, to which it adds "/": 503
// with Retry-After to everything else (ticketapi.StartingError), where a
// plain mux would say 404 to a POST /tickets that will work in a moment.
// Not counted in the API's rejections: those are made with the API.
func Starting(probes *http.ServeMux) http.Handler {
	probes.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		h := w.Header()
		h[ticketapi.HeaderRetryAfter] = retryAfterValues[1]
		h["Content-Type"] = jsonType
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write(startingBody)
	})
	return probes
}
