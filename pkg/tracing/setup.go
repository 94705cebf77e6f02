package tracing

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// EnvEndpoint and EnvTracesEndpoint are the SDK's standard variables
// that turn tracing on (either one); the SDK reads them itself, with
// the rest of its OTEL_* variables.
const (
	EnvEndpoint       = "OTEL_EXPORTER_OTLP_ENDPOINT"
	EnvTracesEndpoint = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	envDisabled       = "OTEL_SDK_DISABLED"
)

// EnvHelp is what a service's -h says of tracing: the SDK's OTEL_*
// variables are not flags, so envflag does not list them.
const EnvHelp = `Tracing (off by default): OpenTelemetry spans are exported over OTLP/HTTP
when ` + EnvEndpoint + ` (or ` + EnvTracesEndpoint + `) is set,
e.g. http://otel-collector:4318. The SDK's other standard variables apply:
OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_EXPORTER_OTLP_HEADERS,
OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG, OTEL_BSP_SCHEDULE_DELAY,
OTEL_SDK_DISABLED.`

// MaxAttributeBytes bounds a span attribute's value unless
// OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT (or
// OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT) sets another bound: the SDK keeps
// any length by default, and a value a player sent (a URL, a header) must
// not make a span of a megabyte that waits in the exporter's queue.
const MaxAttributeBytes = 256

// FlushBound bounds the export of the last spans at shutdown: a collector
// that does not answer must not hold up a shutdown Kubernetes is timing.
const FlushBound = 5 * time.Second

// Setup installs the global TracerProvider for service, exporting over
// OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT (or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set, and a no-op otherwise (off
// by default). Export errors are logged on log. It returns the
// provider's shutdown, which flushes within FlushBound.
//
// It sets no global propagator: the trace context travels in events.Meta
// (NATS headers) and play URLs, never through otel's TextMapPropagator.
func Setup(ctx context.Context, service string, log *slog.Logger) (shutdown func(context.Context) error, err error) {
	if !configured() {
		Install(nil)
		return func(context.Context) error { return nil }, nil
	}
	// The exporter reads the endpoint, headers, timeout and TLS settings
	// from the OTEL_EXPORTER_OTLP_* variables itself.
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("tracing: OTLP exporter: %w", err)
	}
	// service is the default; OTEL_SERVICE_NAME and
	// OTEL_RESOURCE_ATTRIBUTES (resource.Environment) override it.
	res, err := resource.Merge(resource.Default(),
		resource.NewSchemaless(attribute.String("service.name", service)))
	if err == nil {
		res, err = resource.Merge(res, resource.Environment())
	}
	if err != nil {
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	limits := sdktrace.NewSpanLimits() // reads the OTEL_*_LIMIT variables
	if limits.AttributeValueLengthLimit < 0 {
		limits.AttributeValueLengthLimit = MaxAttributeBytes
	}
	// The batcher reads OTEL_BSP_*, the provider OTEL_TRACES_SAMPLER.
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res), sdktrace.WithRawSpanLimits(limits))
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		log.Warn("tracing: export", "err", err)
	}))
	otel.SetTracerProvider(tp)
	Install(tp)
	return func(ctx context.Context) error {
		Install(nil)
		ctx, cancel := context.WithTimeout(ctx, FlushBound)
		defer cancel()
		if err := tp.Shutdown(ctx); err != nil {
			return fmt.Errorf("tracing: shutdown: %w", err)
		}
		return nil
	}, nil
}

// configured reports whether the environment asks for export.
func configured() bool {
	if strings.EqualFold(strings.TrimSpace(os.Getenv(envDisabled)), "true") {
		return false
	}
	return os.Getenv(EnvEndpoint) != "" || os.Getenv(EnvTracesEndpoint) != ""
}

// Document adds EnvHelp to the -h of fs, after its flags.
func Document(fs *flag.FlagSet) {
	usage := fs.Usage
	fs.Usage = func() {
		usage()
		fmt.Fprintf(fs.Output(), "\n%s\n", EnvHelp)
	}
}
