package natsconn

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Unanswered reports an error that says NATS did not answer, or not in
// time, rather than answering no: a call that timed out, a request nobody
// (or no JetStream) took, async publishes stalled for want of acks (the
// client's limit of pending ones reached), a connection down, draining
// or closed, or
// JetStream's 503 ("JetStream system temporarily unavailable", no leader
// yet) in either of nats.go's APIs. What was asked may still be done once
// NATS answers, so the caller tries again (soon, or on the next delivery)
// and never fails it for this. Any other error (a record that does not
// decode, a key that exists, a permission) would come again.
func Unanswered(err error) bool {
	var (
		api    *jetstream.APIError
		legacy *nats.APIError // nats.go's older API
	)
	if (errors.As(err, &api) && api.Code == http.StatusServiceUnavailable) ||
		(errors.As(err, &legacy) && legacy.Code == http.StatusServiceUnavailable) {
		return true
	}
	for _, e := range []error{
		context.DeadlineExceeded, nats.ErrTimeout, nats.ErrNoResponders, nats.ErrNoServers,
		nats.ErrConnectionReconnecting, nats.ErrDisconnected, nats.ErrConnectionDraining, nats.ErrConnectionClosed,
		jetstream.ErrNoStreamResponse, jetstream.ErrAsyncPublishTimeout, jetstream.ErrTooManyStalledMsgs, jetstream.ErrConnectionClosed,
	} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// SubscriptionRefused reports whether err, a connection's last error
// read after a flush that followed a subscribe, is the server refusing
// that subscription to subject for want of a permission. nats.go's
// subscribe returns before the server has looked, and the refusal comes
// apart (the connection's error handler logs it): without this check a
// service whose user lacks the permission is ready, and idle for good.
func SubscriptionRefused(err error, subject string) bool {
	return refused(err, `Subscription to "`+subject+`"`)
}

// RequestRefused reports whether err, a connection's last error, is the
// server refusing a request for want of a permission: a JetStream API
// request the user may not publish, or a reply inbox it may not
// subscribe to. The request then gets no answer and times out. Not any
// violation: a refused publish of another kind (a bucket's key the user
// may not write) says nothing of a request's timeout.
func RequestRefused(err error) bool {
	return refused(err, `Publish to "$JS.API.`) || refused(err, `Subscription to "_INBOX`)
}

// refused reports a permissions violation whose text (the server's, as
// nats.go keeps it) holds what.
func refused(err error, what string) bool {
	return errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), what)
}
