package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
)

// ErrInvalid is matched by every validation failure: errors.Is(err, ErrInvalid).
var ErrInvalid = errors.New("invalid payload")

// FieldError is one problem with one field. Field is the JSON name, with a
// dotted path or index for nested values ("party[2]", "latencies_ms.eu").
type FieldError struct {
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

func (e FieldError) String() string {
	if e.Field == "" {
		return e.Reason
	}
	return e.Field + ": " + e.Reason
}

// ValidationError lists every problem found in one payload, so a person who
// typed a ticket by hand sees all of them at once.
type ValidationError struct {
	// Kind is the payload type: "ticket", "match", "result".
	Kind   string       `json:"kind"`
	Fields []FieldError `json:"fields"`
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.String()
	}
	return "invalid " + e.Kind + ": " + strings.Join(parts, "; ")
}

// Is makes errors.Is(err, ErrInvalid) true.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

// FieldErrors collects the problems of one payload, each naming its
// field, so that all of them are told at once (Err). It is the one
// collector of every decoder and check of a contract: this package's,
// pkg/matchfn's and the rule set's (rules.Set.Check). Past
// MaxFieldErrors it only counts the rest, so a hostile payload of
// thousands of bad values costs a few lines.
type FieldErrors struct {
	// Kind is the payload type, as ValidationError.Kind.
	Kind string
	list []FieldError
	more int
}

// MaxFieldErrors bounds the problems one error lists; the rest are
// counted in a last "and N more problems".
const MaxFieldErrors = 20

// Add reports a problem of field.
func (f *FieldErrors) Add(field, format string, args ...any) {
	if len(f.list) >= MaxFieldErrors {
		f.more++
		return
	}
	f.list = append(f.list, FieldError{Field: field, Reason: fmt.Sprintf(format, args...)})
}

// version checks a payload's schema version.
func (f *FieldErrors) version(v int) {
	if v != SchemaVersion {
		f.Add("schema_version", "version %d is not supported, want %d", v, SchemaVersion)
	}
}

// Token checks that v, the value of field, is an id or name that is safe
// as a subject token (see checkToken), and reports whether it is.
func (f *FieldErrors) Token(field, v string) bool {
	if err := checkToken(v); err != nil {
		f.Add(field, "%v", err)
		return false
	}
	return true
}

func (f *FieldErrors) Err() error {
	if len(f.list) == 0 {
		return nil
	}
	list := f.list
	if f.more > 0 {
		list = append(slices.Clip(list), FieldError{Reason: fmt.Sprintf("and %d more problems", f.more)})
	}
	return &ValidationError{Kind: f.Kind, Fields: list}
}

// decodeChecked decodes data into a T with decode (DecodeStrict or
// decodeFromService), then checks its fields with check, which reports
// every problem it finds, so all of them are told at once.
func decodeChecked[T any](kind string, data []byte, decode func(string, []byte, any) error, check func(*T, *FieldErrors)) (T, error) {
	var v T
	if err := decode(kind, data, &v); err != nil {
		var zero T
		return zero, err
	}
	fe := &FieldErrors{Kind: kind}
	check(&v, fe)
	return v, fe.Err()
}

// MaxPayloadBytes bounds every payload this package decodes.
const MaxPayloadBytes = 64 << 10

// DecodeStrict decodes exactly one JSON object into v, rejecting unknown
// fields and trailing data, and turns encoding/json's errors into a
// *ValidationError of the given kind that names the field. Every decoder of
// outside input uses it: the payload decoders here, and the HTTP API.
func DecodeStrict(kind string, data []byte, v any) error {
	return DecodeStrictUpTo(kind, MaxPayloadBytes, data, v)
}

// DecodeStrictUpTo is DecodeStrict for a payload of at most limit bytes:
// an exchange whose messages are larger than any payload here by design
// (a match function's request of a thousand candidates, pkg/matchfn).
func DecodeStrictUpTo(kind string, limit int, data []byte, v any) error {
	fe := &FieldErrors{Kind: kind}
	trimmed, ok := jsonObject(fe, limit, data)
	if !ok {
		return fe.Err()
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		addJSONError(fe, err)
		return fe.Err()
	}
	if dec.More() {
		fe.Add("", "data after the JSON object")
		return fe.Err()
	}
	if _, err := dec.Token(); err != io.EOF {
		fe.Add("", "data after the JSON object")
		return fe.Err()
	}
	return nil
}

// DecodeStrictList reads a file holding a JSON list (modes, clusters)
// as strictly as DecodeStrict reads an object. DecodeStrict wants an
// object, so the list is read as the value of field, and each error names
// its element as field[i].
func DecodeStrictList[T any](kind, field string, data []byte) ([]T, error) {
	var list []T
	holder := reflect.StructOf([]reflect.StructField{{
		Name: "List", Type: reflect.TypeFor[*[]T](), Tag: reflect.StructTag(`json:"` + field + `"`),
	}})
	v := reflect.New(holder)
	v.Elem().Field(0).Set(reflect.ValueOf(&list))
	wrapped := append(append([]byte(`{"`+field+`":`), data...), '}')
	if err := DecodeStrict(kind, wrapped, v.Interface()); err != nil {
		return nil, err
	}
	return list, nil
}

// decodeFromService decodes a payload that only our own services publish
// (a match on the allocations stream, which only the matcher's NATS user
// may publish). Size, syntax, types and trailing data are checked as in
// DecodeStrict, and the caller checks every field as it does for outside
// input; unknown fields are ignored, so that a newer service may add one
// while older ones still run (a rolling upgrade). It is also a little
// cheaper: one json.Unmarshal, no Decoder (BenchmarkDecodeMatch: 7-8 µs
// against 8.6-9.5 µs strictly, 840 against 1,632 bytes allocated).
func decodeFromService(kind string, data []byte, v any) error {
	fe := &FieldErrors{Kind: kind}
	trimmed, ok := jsonObject(fe, MaxPayloadBytes, data)
	if !ok {
		return fe.Err()
	}
	if err := json.Unmarshal(trimmed, v); err != nil {
		addJSONError(fe, err)
		return fe.Err()
	}
	return nil
}

// jsonObject checks that data is a JSON object of an allowed size, and
// returns it without surrounding space.
func jsonObject(fe *FieldErrors, limit int, data []byte) ([]byte, bool) {
	if len(data) > limit {
		fe.Add("", "payload is %d bytes, at most %d allowed", len(data), limit)
		return nil, false
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		fe.Add("", "not a JSON object")
		return nil, false
	}
	return trimmed, true
}

// addJSONError names what encoding/json found wrong.
func addJSONError(fe *FieldErrors, err error) {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		fe.Add(typeErr.Field, "must be %s, got JSON %s", typeErr.Type.String(), typeErr.Value)
	case errors.As(err, &syntaxErr):
		fe.Add("", "malformed JSON at byte %d: %v", syntaxErr.Offset, syntaxErr)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		fe.Add(field, "unknown field")
	case errors.Is(err, io.ErrUnexpectedEOF):
		fe.Add("", "truncated JSON")
	default:
		fe.Add("", "%v", err)
	}
}
