package cqrs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/esgen-dev/esgen/es"
)

// ErrInvalidCommand is matched by the errors of [Validation].
var ErrInvalidCommand = errors.New("cqrs: invalid command")

func commandType(cmd proto.Message) string {
	return string(cmd.ProtoReflect().Descriptor().FullName())
}

// Logging logs every command: type, stream, version, duration and, at
// warning level, the error.
func Logging(l *slog.Logger) Middleware {
	if l == nil {
		l = slog.Default()
	}
	return func(next Handler) Handler {
		return func(ctx context.Context, cmd proto.Message) (Result, error) {
			start := time.Now()
			res, err := next(ctx, cmd)
			attrs := []any{
				"command", commandType(cmd), "stream", res.Stream, "version", res.Version,
				"duration", time.Since(start), "correlation_id", es.MetadataFromContext(ctx).CorrelationID,
			}
			switch {
			case err != nil:
				l.WarnContext(ctx, "command failed", append(attrs, "error", err)...)
			case res.Duplicate:
				l.InfoContext(ctx, "command already handled", attrs...)
			default:
				l.InfoContext(ctx, "command handled", append(attrs, "events", len(res.Events))...)
			}
			return res, err
		}
	}
}

// Validation rejects a command for which validate returns an error, before
// any aggregate is loaded. The error matches [ErrInvalidCommand] and wraps
// validate's. A protovalidate validator plugs in as
// func(_ context.Context, m proto.Message) error { return v.Validate(m) }.
func Validation(validate func(ctx context.Context, cmd proto.Message) error) Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, cmd proto.Message) (Result, error) {
			if err := validate(ctx, cmd); err != nil {
				return Result{}, fmt.Errorf("%w %s: %w", ErrInvalidCommand, commandType(cmd), err)
			}
			return next(ctx, cmd)
		}
	}
}

// Metadata adds metadata to every event a command records, from the
// context and the command: typically the tenant and user from an
// authenticated request. Fields that f leaves empty keep their values.
func Metadata(f func(ctx context.Context, cmd proto.Message) es.Metadata) Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, cmd proto.Message) (Result, error) {
			m := es.MetadataFromContext(ctx)
			add := f(ctx, cmd)
			for _, kv := range []struct {
				dst *string
				src string
			}{
				{&m.CorrelationID, add.CorrelationID}, {&m.CausationID, add.CausationID},
				{&m.TenantID, add.TenantID}, {&m.UserID, add.UserID},
				{&m.TraceParent, add.TraceParent}, {&m.TraceState, add.TraceState},
			} {
				if kv.src != "" {
					*kv.dst = kv.src
				}
			}
			if len(add.Extra) > 0 {
				extra := make(map[string]string, len(m.Extra)+len(add.Extra))
				for k, v := range m.Extra {
					extra[k] = v
				}
				for k, v := range add.Extra {
					extra[k] = v
				}
				m.Extra = extra
			}
			return next(es.ContextWithMetadata(ctx, m), cmd)
		}
	}
}

// Tracing runs every command in a span from tp (through the OpenTelemetry
// API only: the app chooses the SDK and exporter) and records the span's
// W3C trace context in the events' metadata, so that projections and
// other consumers can continue the trace.
func Tracing(tp trace.TracerProvider) Middleware {
	tracer := tp.Tracer("github.com/esgen-dev/esgen/cqrs")
	return func(next Handler) Handler {
		return func(ctx context.Context, cmd proto.Message) (Result, error) {
			typ := commandType(cmd)
			ctx, span := tracer.Start(ctx, "command "+typ, trace.WithSpanKind(trace.SpanKindInternal),
				trace.WithAttributes(attribute.String("esgen.command", typ)))
			defer span.End()
			if sc := span.SpanContext(); sc.IsValid() {
				m := es.MetadataFromContext(ctx)
				m.TraceParent = fmt.Sprintf("00-%s-%s-%s", sc.TraceID(), sc.SpanID(), sc.TraceFlags())
				m.TraceState = sc.TraceState().String()
				ctx = es.ContextWithMetadata(ctx, m)
			}
			res, err := next(ctx, cmd)
			span.SetAttributes(attribute.String("esgen.stream", res.Stream), attribute.Int64("esgen.version", res.Version))
			if err != nil {
				span.RecordError(err)
				span.SetStatus(codes.Error, err.Error())
			}
			return res, err
		}
	}
}

// CommandIDField makes commands idempotent by a field they carry: when the
// command has a string field of that name (its proto name, e.g.
// "request_id") and the field is set, its value becomes the command ID
// ([es.ContextWithCommandID]), unless the context already has one. Commands
// without the field pass through unchanged.
func CommandIDField(name string) Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, cmd proto.Message) (Result, error) {
			if es.CommandIDFromContext(ctx) == "" {
				m := cmd.ProtoReflect()
				if fd := m.Descriptor().Fields().ByName(protoreflect.Name(name)); fd != nil &&
					fd.Kind() == protoreflect.StringKind && fd.Cardinality() != protoreflect.Repeated {
					if id := m.Get(fd).String(); id != "" {
						ctx = es.ContextWithCommandID(ctx, id)
					}
				}
			}
			return next(ctx, cmd)
		}
	}
}
