// Package client is the Go client of quickmatch's frontend for game teams:
// queue a ticket (Client.Create), follow it to its outcome over
// Server-Sent Events (Client.Follow) or queue and follow it on one
// WebSocket (Client.Queue), read it (Get) and cancel it (Cancel). The
// wire types are pkg/ticketapi's, the ones the frontend answers with.
//
// Identity: a TokenSource the caller provides gives the bearer token of
// each request (sent as Authorization: Bearer). A 401 asks it once more,
// telling it which token was refused, and the request is sent again once.
//
// Following survives a broken connection: Follow reconnects with
// Last-Event-ID (the server sends only what is newer), after a backoff
// with jitter that starts again from its floor once an event arrives,
// and waits at least what a Retry-After asks for (capped by
// Config.MaxRetryAfter). A status that cannot change (404, 403, 400, 401
// after the refresh) ends it with an *Error.
//
// What a server sends is bounded: an event or a JSON answer above
// Config.MaxEventBytes ends the call with ErrTooLarge, a malformed answer
// (another ticket's, "assigned" without its assignment or with an
// assignment URL that is not http(s), ticketapi.ValidAssignmentURL,
// which is ErrAssignmentURL too, ...) with ErrMalformed (neither is
// retried: the server would send the same again; package ticketapi
// states this policy for every client), and a
// stream silent for Config.IdleTimeout (no event, no heartbeat) is
// dropped and resumed. Every call returns once its context ends,
// whatever the server does. A view's Assignment is set only when its
// status is "assigned", and then its URL is http(s): an assignment on
// any other view is dropped, not refused (the TypeScript client refuses
// none either).
//
// Redirects are never followed, with the caller's HTTPClient too: the
// frontend sends none, and following one would carry the bearer token
// to wherever it points. A 3xx is an *Error.
//
// A Client is safe for concurrent use and starts no goroutine of its own;
// Follow calls its callback on the caller's goroutine.
package client
