package events

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// LeaderGets wraps kv so that its Get is answered by the stream leader of
// the bucket, never by another replica; every other method is kv's own.
// It is for the reads that decide ownership: a worker's beat, a shard
// lease, a claim's owner. A bucket's Get is a direct get when its stream
// allows them (nats.go turns that on in every bucket it makes), and a
// direct get is answered by any replica however far behind: one on the
// far side of a cut answers with a beat or lease seconds old, or holds the
// request (nats-io/nats.docs#815: no read-your-writes with direct gets).
// A stale read cannot take a lease or a claim (those writes compare and
// set at the leader) but it delays takeovers and names owners that gave
// a claim back since.
//
// The buckets keep direct gets on: nats.go binds a bucket to direct or
// message gets once, when it binds, and a process bound while they were
// on gets no responders from every Get once they are off. So the leader
// read is asked for here, per Get: a message get "last by subject"
// ($JS.API.STREAM.MSG.GET.<stream>), which only the leader answers. The
// legacy JetStream context sends one unless told to get directly; the
// jetstream package's Stream.GetLastMsgForSubject would follow the
// stream's AllowDirect instead.
func LeaderGets(js jetstream.JetStream, kv jetstream.KeyValue) (jetstream.KeyValue, error) {
	o := js.Options()
	var opts []nats.JSOpt
	if o.APIPrefix != "" {
		opts = append(opts, nats.APIPrefix(o.APIPrefix))
	}
	if o.Domain != "" {
		opts = append(opts, nats.Domain(o.Domain))
	}
	legacy, err := js.Conn().JetStream(opts...)
	if err != nil {
		return nil, fmt.Errorf("leader reads of bucket %s: %w", kv.Bucket(), err)
	}
	return &leaderGets{KeyValue: kv, js: legacy, async: js, reader: NewLeaderReader(js.Conn()),
		stream: BucketStream(kv.Bucket()), pre: "$KV." + kv.Bucket() + "."}, nil
}

// BindLeaderGets binds to bucket, with LeaderGets. A js that wraps the
// buckets it binds (a test injecting faults: KeyValueWrapper) wraps the
// leader reads too, so that it still sees every Get.
func BindLeaderGets(ctx context.Context, js jetstream.JetStream, bucket string) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, bucket)
	if err != nil {
		return nil, err
	}
	lg, err := LeaderGets(js, kv)
	if w, ok := js.(KeyValueWrapper); ok && err == nil {
		return w.WrapKeyValue(lg), nil
	}
	return lg, err
}

// KeyValueWrapper is a JetStream that wraps the buckets bound with
// BindLeaderGets, outside their leader reads: a test's faults.
type KeyValueWrapper interface {
	WrapKeyValue(jetstream.KeyValue) jetstream.KeyValue
}

type leaderGets struct {
	jetstream.KeyValue
	js nats.JetStreamContext
	// async writes the bucket's keys in batches (PutAll, CreateAll).
	async jetstream.JetStream
	// reader reads many keys from the leader together: the players
	// bucket's StaleBatch. It subscribes at its first read, so the
	// buckets that never read this way cost nothing.
	reader *LeaderReader
	stream string
	// pre is the subject prefix of the bucket's keys.
	pre string
}

// Get returns key's latest value as the stream leader has it; a key
// deleted or purged is not found, as with jetstream.KeyValue.Get.
func (l *leaderGets) Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	// A wildcard would make "last by subject" match other keys.
	if key == "" || strings.ContainsAny(key, "*> ") {
		return nil, jetstream.ErrInvalidKey
	}
	m, err := l.js.GetLastMsg(l.stream, l.pre+key, nats.Context(ctx))
	if errors.Is(err, nats.ErrMsgNotFound) {
		return nil, jetstream.ErrKeyNotFound
	}
	if err != nil {
		return nil, asJetStreamError(err)
	}
	if deleted(m.Header) {
		return nil, jetstream.ErrKeyNotFound
	}
	return entry{bucket: l.Bucket(), key: key, value: m.Data, header: m.Header, revision: m.Sequence, created: m.Time}, nil
}

// deleted reports whether a stored KV message is a delete or purge marker
// (nats.go jetstream/kv.go: the KV-Operation header, or the server's
// marker of a message removed by its TTL).
func deleted(h nats.Header) bool {
	switch h.Get("KV-Operation") {
	case "DEL", "PURGE":
		return true
	}
	return h.Get(jetstream.MarkerReasonHeader) != ""
}

// entry is a value read by leaderGets.Get.
type entry struct {
	bucket, key string
	value       []byte
	header      nats.Header
	revision    uint64
	created     time.Time
}

func (e entry) Bucket() string                  { return e.bucket }
func (e entry) Key() string                     { return e.key }
func (e entry) Value() []byte                   { return e.value }
func (e entry) Revision() uint64                { return e.revision }
func (e entry) Created() time.Time              { return e.created }
func (e entry) Delta() uint64                   { return 0 }
func (e entry) Operation() jetstream.KeyValueOp { return jetstream.KeyValuePut }

// Header is what was stored with the value (Claims.Read).
func (e entry) Header() nats.Header { return e.header }

var _ jetstream.KeyValueEntry = entry{}

// asJetStreamError gives an API error of the older nats.go API (GetLastMsg's)
// as the jetstream package's, which every caller of a KeyValue reads (a 503
// "no leader" is one NATS may answer soon: the frontend's expiry tries it
// again within seconds, not a wait later).
func asJetStreamError(err error) error {
	var old *nats.APIError
	if !errors.As(err, &old) {
		return err
	}
	return &jetstream.APIError{Code: old.Code, ErrorCode: jetstream.ErrorCode(old.ErrorCode), Description: old.Description}
}
