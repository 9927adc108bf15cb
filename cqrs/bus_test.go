package cqrs_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/protobuf/proto"

	"github.com/esgen-dev/esgen/cqrs"
	"github.com/esgen-dev/esgen/es"
	"github.com/esgen-dev/esgen/es/memstore"
	"github.com/esgen-dev/esgen/internal/testagg"
	testaggv1 "github.com/esgen-dev/esgen/internal/testagg/v1"
)

func newBus(t *testing.T, store es.Store, mw ...cqrs.Middleware) *cqrs.Bus {
	t.Helper()
	repo, err := es.NewRepository(store, testagg.New())
	if err != nil {
		t.Fatal(err)
	}
	bus := cqrs.NewBus(mw...)
	if err := cqrs.Register(bus, repo); err != nil {
		t.Fatal(err)
	}
	return bus
}

func firstEvent(t *testing.T, store es.Store, stream string) es.Event {
	t.Helper()
	for e, err := range store.ReadStream(context.Background(), stream, es.StreamStart, es.Forward, 1) {
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	t.Fatalf("stream %q is empty", stream)
	return es.Event{}
}

func TestBus_RoutesEachCommandToItsAggregate(t *testing.T) {
	ctx := context.Background()
	store := memstore.New()
	bus := newBus(t, store)
	if _, err := bus.Send(ctx, &testaggv1.Open{AccountId: "a1", Owner: "Ada"}); err != nil {
		t.Fatal(err)
	}
	res, err := bus.Send(ctx, &testaggv1.Deposit{AccountId: "a1", Amount: 9})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stream != "Account-a1" || res.Version != 2 || len(res.Events) != 1 || !proto.Equal(res.Events[0], &testaggv1.Deposited{Amount: 9}) {
		t.Fatalf("Send(Deposit) = %+v; want Deposited{9} at version 2 of Account-a1", res)
	}
}

func TestBus_UnknownCommandNamesItsType(t *testing.T) {
	bus := cqrs.NewBus()
	_, err := bus.Send(context.Background(), &testaggv1.Deposit{AccountId: "a1"})
	if !errors.Is(err, cqrs.ErrUnknownCommand) || !strings.Contains(err.Error(), "testagg.v1.Deposit") {
		t.Fatalf("Send to an empty bus: %v; want ErrUnknownCommand naming testagg.v1.Deposit", err)
	}
	if _, err := bus.Send(context.Background(), nil); !errors.Is(err, es.ErrInvalidArgument) {
		t.Fatalf("Send(nil): %v; want es.ErrInvalidArgument", err)
	}
}

func TestBus_RegisteringTwiceFails(t *testing.T) {
	repo, err := es.NewRepository(memstore.New(), testagg.New())
	if err != nil {
		t.Fatal(err)
	}
	bus := cqrs.NewBus()
	if err := cqrs.Register(bus, repo); err != nil {
		t.Fatal(err)
	}
	if err := cqrs.Register(bus, repo); err == nil || !strings.Contains(err.Error(), "testagg.v1.Open already has a handler") {
		t.Fatalf("second Register: %v; want an error naming the command", err)
	}
}

func TestBus_CommandsWithoutCorrelationGetOne(t *testing.T) {
	store := memstore.New()
	bus := newBus(t, store)
	if _, err := bus.Send(context.Background(), &testaggv1.Open{AccountId: "a1"}); err != nil {
		t.Fatal(err)
	}
	m := firstEvent(t, store, "Account-a1").Metadata
	if m.CorrelationID == "" || m.CausationID == "" {
		t.Fatalf("event metadata %+v; want correlation and causation IDs", m)
	}
	ctx := es.ContextWithMetadata(context.Background(), es.Metadata{CorrelationID: "order-flow-7"})
	ctx = es.ContextWithCommandID(ctx, "cmd-1")
	if _, err := bus.Send(ctx, &testaggv1.Open{AccountId: "a2"}); err != nil {
		t.Fatal(err)
	}
	m = firstEvent(t, store, "Account-a2").Metadata
	if m.CorrelationID != "order-flow-7" || m.CausationID != "cmd-1" {
		t.Fatalf("event metadata %+v; want the caller's correlation ID and the command ID as causation", m)
	}
}

func TestMiddleware_RunsInOrderAndValidationStopsEarly(t *testing.T) {
	store := memstore.New()
	var order []string
	mark := func(name string) cqrs.Middleware {
		return func(next cqrs.Handler) cqrs.Handler {
			return func(ctx context.Context, cmd proto.Message) (cqrs.Result, error) {
				order = append(order, name)
				return next(ctx, cmd)
			}
		}
	}
	errNoOwner := errors.New("owner is required")
	validate := cqrs.Validation(func(_ context.Context, cmd proto.Message) error {
		if o, ok := cmd.(*testaggv1.Open); ok && o.Owner == "" {
			return errNoOwner
		}
		return nil
	})
	bus := newBus(t, store, mark("outer"), validate, mark("inner"))
	_, err := bus.Send(context.Background(), &testaggv1.Open{AccountId: "a1"})
	if !errors.Is(err, cqrs.ErrInvalidCommand) || !errors.Is(err, errNoOwner) || !strings.Contains(err.Error(), "testagg.v1.Open") {
		t.Fatalf("invalid command: %v; want ErrInvalidCommand wrapping the validator's error", err)
	}
	if strings.Join(order, ",") != "outer" {
		t.Fatalf("middleware ran %v; want only the outer one before validation stopped the command", order)
	}
	if _, err := bus.Send(context.Background(), &testaggv1.Open{AccountId: "a1", Owner: "Ada"}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(order, ",") != "outer,outer,inner" {
		t.Fatalf("middleware ran %v; want outer, outer, inner", order)
	}
}

func TestMiddleware_LoggingAndMetadata(t *testing.T) {
	store := memstore.New()
	var logs bytes.Buffer
	tenant := cqrs.Metadata(func(context.Context, proto.Message) es.Metadata {
		return es.Metadata{TenantID: "acme", Extra: map[string]string{"source": "api"}}
	})
	bus := newBus(t, store, cqrs.Logging(slog.New(slog.NewTextHandler(&logs, nil))), tenant)
	if _, err := bus.Send(context.Background(), &testaggv1.Open{AccountId: "a1"}); err != nil {
		t.Fatal(err)
	}
	_, _ = bus.Send(context.Background(), &testaggv1.Withdraw{AccountId: "a1", Amount: 5})
	out := logs.String()
	for _, want := range []string{`msg="command handled" command=testagg.v1.Open stream=Account-a1 version=1`, `msg="command failed" command=testagg.v1.Withdraw`, "insufficient funds"} {
		if !strings.Contains(out, want) {
			t.Errorf("log %q lacks %q", out, want)
		}
	}
	m := firstEvent(t, store, "Account-a1").Metadata
	if m.TenantID != "acme" || m.Extra["source"] != "api" || m.CorrelationID == "" {
		t.Fatalf("event metadata %+v; want tenant, extra and a correlation ID", m)
	}
}

func TestMiddleware_TracingRecordsTraceContextInEvents(t *testing.T) {
	store := memstore.New()
	bus := newBus(t, store, cqrs.Tracing(noop.NewTracerProvider()))
	traceID, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	spanID, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	parent := trace.NewSpanContext(trace.SpanContextConfig{TraceID: traceID, SpanID: spanID, TraceFlags: trace.FlagsSampled})
	ctx := trace.ContextWithSpanContext(context.Background(), parent)
	if _, err := bus.Send(ctx, &testaggv1.Open{AccountId: "a1"}); err != nil {
		t.Fatal(err)
	}
	const want = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	if got := firstEvent(t, store, "Account-a1").Metadata.TraceParent; got != want {
		t.Fatalf("traceparent %q; want %q", got, want)
	}
}

// testagg's Open carries owner, a string field; here it stands in for a
// request ID field to show that a field can carry the command ID.
func TestMiddleware_CommandIDFieldMakesResendsIdempotent(t *testing.T) {
	store := memstore.New()
	bus := newBus(t, store, cqrs.CommandIDField("owner"))
	ctx := context.Background()
	if _, err := bus.Send(ctx, &testaggv1.Open{AccountId: "a1", Owner: "req-1"}); err != nil {
		t.Fatal(err)
	}
	res, err := bus.Send(ctx, &testaggv1.Open{AccountId: "a1", Owner: "req-1"})
	if err != nil || !res.Duplicate || res.Version != 1 {
		t.Fatalf("re-sent create with the same field value = %+v, %v; want the original result marked duplicate", res, err)
	}
	if m := firstEvent(t, store, "Account-a1").Metadata; m.CausationID != "req-1" {
		t.Fatalf("causation %q; want the field's value", m.CausationID)
	}
	// Without the field set, a second create is a real conflict.
	if _, err := bus.Send(ctx, &testaggv1.Open{AccountId: "a1"}); !errors.Is(err, es.ErrAlreadyExists) {
		t.Fatalf("create without an ID: %v; want es.ErrAlreadyExists", err)
	}
}
