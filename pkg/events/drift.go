package events

import (
	"encoding/json"
	"reflect"
)

// Provision updates a stream, consumer or bucket only when its live
// configuration has drifted from the declaration. The comparison is of
// whole configurations, so that a field added to a declaration is applied
// without being listed here: the wanted configuration is the live one with
// every field the declaration sets laid over it, and it is compared with
// the live one as a whole. What the server filled in and the declaration
// does not set (its metadata, a pull consumer's max waiting, ...) is left
// as it is.
//
// A field is "set" when encoding/json writes it. nats.go tags with
// omitempty the fields whose zero value means "not set", so those are laid
// over only when non-zero, and the fields it always writes are always laid
// over: a stream's retention, discard policy, storage, max age, direct
// get, mirror direct, compression and max consumers; a consumer's deliver,
// ack and replay policies and its replicas. So a stream compressed by
// hand, or a consumer moved to one replica by hand, is put back as
// declared: the declaration is the truth, and the way to change such a
// field is to change it there. That leaves one limit: a declared zero of
// an omitempty field cannot override a live non-zero one on its own (a
// stream declared with no subject transform or rollup, a bucket declared
// with compression off, keep what they have), except for the fields each
// kind lists in its rules' zeros below, whose declared zero means "none"
// and is enforced. The update, when one is due for another field, sends
// the declaration itself, so fields it leaves unset (that rollup
// included) go back to the server's defaults then; changing an immutable
// field (retention, storage) fails there, with the stream named (see
// Provision).

// rules say how one kind of configuration is compared, by Go field name
// (TestRulesNameRealFields checks the names).
type rules struct {
	// zeros are the omitempty fields whose declared zero is enforced.
	zeros []string
	// unlimited are limits where the server's -1 and a declared 0 both
	// mean "no limit".
	unlimited []string
	// atLeastOne are counts the server takes 0 for 1 in (replicas, history).
	atLeastOne []string
}

var (
	// A stream without a description or a message size limit has none.
	streamRules = rules{
		zeros:      []string{"Description", "MaxMsgSize"},
		unlimited:  []string{"MaxConsumers", "MaxMsgs", "MaxBytes", "MaxMsgSize", "MaxMsgsPerSubject"},
		atLeastOne: []string{"Replicas"},
	}
	// A consumer without a description, filter, delivery limit, deliver
	// subject or group has none.
	consumerRules = rules{
		zeros:     []string{"Description", "FilterSubject", "MaxDeliver", "DeliverSubject", "DeliverGroup"},
		unlimited: []string{"MaxDeliver", "MaxAckPending"},
	}
	// A bucket (as [jetstream.KeyValueStatus.Config] reads it back from its
	// stream) without a description, TTL, byte cap or value size limit has
	// none, and its zero storage is file storage.
	bucketRules = rules{
		zeros:      []string{"Description", "TTL", "MaxBytes", "MaxValueSize", "Storage"},
		unlimited:  []string{"MaxBytes", "MaxValueSize"},
		atLeastOne: []string{"History", "Replicas"},
	}
)

// differs reports whether live lacks something decl sets.
func differs[T any](live, decl T, r rules) (bool, error) {
	have, err := overlay(live)
	if err != nil {
		return false, err
	}
	want, err := overlay(live, decl)
	if err != nil {
		return false, err
	}
	w, h, d := reflect.ValueOf(&want).Elem(), reflect.ValueOf(&have).Elem(), reflect.ValueOf(decl)
	for _, f := range r.zeros {
		w.FieldByName(f).Set(d.FieldByName(f))
	}
	for _, v := range []reflect.Value{w, h} {
		for _, f := range r.unlimited {
			// The server's -1 and our 0 are the same "no limit".
			if x := v.FieldByName(f); x.Int() <= 0 {
				x.SetInt(-1)
			}
		}
		for _, f := range r.atLeastOne {
			if x := v.FieldByName(f); x.IsZero() {
				x.Set(reflect.ValueOf(1).Convert(x.Type()))
			}
		}
	}
	return !reflect.DeepEqual(want, have), nil
}

// overlay decodes the JSON of each layer onto one fresh value, so a later
// layer replaces what an earlier one set in every field it writes (and
// merges into maps), and nothing shares memory with the layers.
func overlay[T any](layers ...T) (T, error) {
	var out T
	for _, l := range layers {
		b, err := json.Marshal(l)
		if err != nil {
			return out, err
		}
		if err := json.Unmarshal(b, &out); err != nil {
			return out, err
		}
	}
	return out, nil
}
