package esdbstore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/esgen-dev/esgen/es"
)

func TestExpectedRevision(t *testing.T) {
	for _, tc := range []struct {
		in   es.ExpectedVersion
		want esdb.ExpectedRevision
	}{
		{es.Any, esdb.Any{}},
		{es.NoStream, esdb.NoStream{}},
		{es.Exact(0), esdb.NoStream{}},
		{es.StreamExists, esdb.StreamExists{}},
		{es.Exact(1), esdb.Revision(0)},
		{es.Exact(3), esdb.Revision(2)},
		{es.Exact(math.MaxInt64), esdb.Revision(math.MaxInt64 - 1)},
	} {
		if got := expectedRevision(tc.in); got != tc.want {
			t.Errorf("expectedRevision(%s) = %#v; want %#v", tc.in, got, tc.want)
		}
	}
}

func TestVersionsAndRevisions(t *testing.T) {
	for _, tc := range []struct {
		revision uint64
		version  int64
	}{{0, 1}, {1, 2}, {41, 42}, {math.MaxInt64 - 1, math.MaxInt64}} {
		if got := versionOf(tc.revision); got != tc.version {
			t.Errorf("versionOf(%d) = %d; want %d", tc.revision, got, tc.version)
		}
		if got := revisionOf(tc.version); got != tc.revision {
			t.Errorf("revisionOf(%d) = %d; want %d", tc.version, got, tc.revision)
		}
	}
}

func TestPositions(t *testing.T) {
	for _, tc := range []struct {
		in   esdb.Position
		want es.Position
	}{
		{esdb.Position{Commit: 1788, Prepare: 1788}, es.Position{Commit: 1788, Prepare: 1788}},
		{esdb.Position{Commit: 2000, Prepare: 1900}, es.Position{Commit: 2000, Prepare: 1900}},
		// Stream reads on servers before 22.6 carry no position.
		{esdb.Position{Commit: math.MaxUint64, Prepare: math.MaxUint64}, es.Position{}},
	} {
		if got := position(tc.in); got != tc.want {
			t.Errorf("position(%+v) = %s; want %s", tc.in, got, tc.want)
		}
	}
	if got := allPosition(es.Position{}); got != (esdb.Start{}) {
		t.Errorf("allPosition(zero) = %#v; want esdb.Start{}", got)
	}
	p := es.Position{Commit: 10, Prepare: 7}
	if got := allPosition(p); got != (esdb.Position{Commit: 10, Prepare: 7}) {
		t.Errorf("allPosition(%s) = %#v", p, got)
	}
	// Both numbers survive the round trip.
	if got := position(allPosition(p).(esdb.Position)); got != p {
		t.Errorf("round trip of %s = %s", p, got)
	}
}

func TestStreamFrom(t *testing.T) {
	for _, tc := range []struct {
		from int64
		dir  es.Direction
		want esdb.StreamPosition
	}{
		{es.StreamStart, es.Forward, esdb.Start{}},
		{0, es.Forward, esdb.Start{}},
		{-5, es.Forward, esdb.Start{}},
		{4, es.Forward, esdb.Revision(3)},
		{es.StreamEnd, es.Backward, esdb.End{}},
		{4, es.Backward, esdb.Revision(3)},
		{1, es.Backward, esdb.Revision(0)},
		{es.StreamEnd, es.Forward, esdb.Revision(math.MaxInt64 - 1)},
	} {
		if got := streamFrom(tc.from, tc.dir); got != tc.want {
			t.Errorf("streamFrom(%d, %s) = %#v; want %#v", tc.from, tc.dir, got, tc.want)
		}
	}
}

func TestEventData(t *testing.T) {
	id := es.MustParseID("0190f6f2-3c1e-7d7a-9a4e-1f2e3d4c5b6a")
	in := es.EventData{
		ID:       id,
		Type:     "shop.order.v1.OrderPlaced",
		Data:     []byte{0, 1, 2, 0xff},
		Metadata: es.Metadata{CorrelationID: "corr-1", CausationID: "cause-1", TenantID: "t-1"},
	}
	got := eventData(&in)
	if got.EventID.String() != id.String() {
		t.Errorf("EventID = %s; want %s", got.EventID, id)
	}
	if got.EventType != in.Type || got.ContentType != esdb.ContentTypeBinary || !reflect.DeepEqual(got.Data, in.Data) {
		t.Errorf("eventData = %+v", got)
	}
	// KurrentDB reads $correlationId and $causationId from the metadata
	// JSON (the by-correlation projection uses them).
	meta := string(got.Metadata)
	for _, want := range []string{`"$correlationId":"corr-1"`, `"$causationId":"cause-1"`, `"tenantId":"t-1"`} {
		if !strings.Contains(meta, want) {
			t.Errorf("metadata %s does not contain %s", meta, want)
		}
	}

	bare := eventData(&es.EventData{Type: "T", Data: []byte{}})
	if bare.EventID == uuid.Nil {
		t.Error("an event with the zero ID was given no ID")
	}
	if bare.Metadata != nil {
		t.Errorf("zero metadata encodes as %q; want none", bare.Metadata)
	}
	if again := eventData(&es.EventData{Type: "T", Data: []byte{}}); again.EventID == bare.EventID {
		t.Error("two events with the zero ID got the same ID")
	}
}

func TestEvent(t *testing.T) {
	id := uuid.MustParse("0190f6f2-3c1e-7d7a-9a4e-1f2e3d4c5b6a")
	created := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.FixedZone("CET", 3600))
	r := esdb.RecordedEvent{
		EventID:      id,
		EventType:    "shop.order.v1.OrderPlaced",
		StreamID:     "order-1",
		EventNumber:  4,
		Position:     esdb.Position{Commit: 900, Prepare: 900},
		CreatedDate:  created,
		Data:         []byte("payload"),
		UserMetadata: []byte(`{"$correlationId":"c","userId":"u","k":"v"}`),
	}
	e, err := event(&r)
	if err != nil {
		t.Fatal(err)
	}
	want := es.Event{
		ID:         es.MustParseID(id.String()),
		StreamID:   "order-1",
		Type:       "shop.order.v1.OrderPlaced",
		Version:    5,
		Position:   es.Position{Commit: 900, Prepare: 900},
		Data:       []byte("payload"),
		Metadata:   es.Metadata{CorrelationID: "c", UserID: "u", Extra: map[string]string{"k": "v"}},
		RecordedAt: created.UTC(),
	}
	if !reflect.DeepEqual(e, want) {
		t.Errorf("event = %+v\nwant   %+v", e, want)
	}
	if e.RecordedAt.Location() != time.UTC {
		t.Errorf("RecordedAt is in %s; want UTC", e.RecordedAt.Location())
	}

	// Empty data is empty, not nil; no metadata is the zero Metadata.
	r.Data, r.UserMetadata = nil, nil
	e, err = event(&r)
	if err != nil || e.Data == nil || len(e.Data) != 0 || !e.Metadata.IsZero() {
		t.Errorf("event without data or metadata = %+v, %v", e, err)
	}

	// Metadata written by another client that is not esgen's JSON is an
	// error naming the event, not a panic.
	r.UserMetadata = []byte(`{"n": 1}`)
	if _, err := event(&r); err == nil || !strings.Contains(err.Error(), `"order-1"`) {
		t.Errorf("event with foreign metadata: %v; want an error naming the stream", err)
	}
}

func TestSubscriptionFilter(t *testing.T) {
	all := subscriptionFilter(es.Filter{})
	if all.Type != esdb.EventFilterType || all.Regex == "" {
		t.Fatalf("filter for everything = %+v; want the exclusion of system events", all)
	}
	system := regexp.MustCompile(all.Regex)
	if system.MatchString("$metadata") || !system.MatchString("shop.order.v1.OrderPlaced") {
		t.Errorf("regex %q does not exclude exactly the system events", all.Regex)
	}

	streams := subscriptionFilter(es.Filter{StreamPrefixes: []string{"order-", "cart-"}, EventTypes: []string{"Paid"}})
	if streams.Type != esdb.StreamFilterType || !reflect.DeepEqual(streams.Prefixes, []string{"order-", "cart-"}) || streams.Regex != "" {
		t.Errorf("filter by prefixes = %+v; want the prefixes on stream names", streams)
	}

	types := subscriptionFilter(es.Filter{EventTypes: []string{"shop.v1.Paid", "shop.v1.Placed (legacy)"}})
	if types.Type != esdb.EventFilterType || len(types.Prefixes) != 0 {
		t.Fatalf("filter by types = %+v; want a regex on event types", types)
	}
	re := regexp.MustCompile(types.Regex)
	for typ, want := range map[string]bool{
		"shop.v1.Paid":            true,
		"shop.v1.Placed (legacy)": true,
		"shop.v1.Unpaid":          false,
		"shop.v1.Paid2":           false,
		"shopXv1.Paid":            false, // the dot is literal
		"$metadata":               false,
	} {
		if got := re.MatchString(typ); got != want {
			t.Errorf("type regex %q matches %q: %v; want %v", types.Regex, typ, got, want)
		}
	}
}

func TestActualVersion(t *testing.T) {
	for _, tc := range []struct {
		msg     string
		version int64
		ok      bool
	}{
		// The append response, as the client renders it.
		{"[ErrorCodeWrongExpectedVersion] an append request failed the optimistic concurrency on the server: wrong expected version: expecting '2' but got '4'", 5, true},
		{"wrong expected version: expecting 'no_stream' but got '0'", 1, true},
		{"wrong expected version: expecting 'stream_exists' but got 'no_stream'", 0, true},
		// The server's exception, as deletes (and older servers' appends)
		// report it.
		{"rpc error: code = FailedPrecondition desc = Delete failed due to WrongExpectedVersion. Stream: del-1, Expected version: 1, Actual version: 2", 3, true},
		{"rpc error: code = FailedPrecondition desc = Append failed due to WrongExpectedVersion. Stream: s, Expected version: -1, Actual version: -1", 0, true},
		{"Append failed due to WrongExpectedVersion. Stream: s, Expected version: 3, Actual version: ", 0, false},
		{"something else entirely", 0, false},
	} {
		v, ok := actualVersion(tc.msg)
		if v != tc.version || ok != tc.ok {
			t.Errorf("actualVersion(%q) = %d, %v; want %d, %v", tc.msg, v, ok, tc.version, tc.ok)
		}
	}
}

func TestConcurrencyError(t *testing.T) {
	read := func(v int64, state streamState, err error) func() (int64, streamState, error) {
		return func() (int64, streamState, error) { return v, state, err }
	}
	noRead := func() (int64, streamState, error) {
		t.Error("read the stream although the server's message settles the version")
		return 0, stateLive, nil
	}
	const appendMsg = "wrong expected version: expecting '2' but got '4'"
	for _, tc := range []struct {
		name     string
		expected es.ExpectedVersion
		msg      string
		latest   func() (int64, streamState, error)
		want     int64
	}{
		{"live stream: the server's version", es.Exact(3), appendMsg, read(5, stateLive, nil), 5},
		{"live stream, read newer: still the server's", es.Exact(3), appendMsg, read(9, stateLive, nil), 5},
		{"no stream: no read", es.StreamExists, "wrong expected version: expecting 'stream_exists' but got 'no_stream'", noRead, 0},
		{"deleted with reuse: version 0", es.Exact(2), "Append failed due to WrongExpectedVersion. Stream: s, Expected version: 1, Actual version: 2", read(0, stateAbsent, nil), 0},
		{"tombstoned: version 0", es.Exact(2), appendMsg, read(0, stateRetired, nil), 0},
		{"no version in the message: read it", es.NoStream, "Append failed due to WrongExpectedVersion. Stream: s, Expected version: -1, Actual version: ", read(7, stateLive, nil), 7},
		{"read fails: the server's version", es.Exact(3), appendMsg, read(0, stateLive, errors.New("unavailable")), 5},
	} {
		ce := concurrencyError("s", tc.expected, tc.msg, tc.latest)
		if ce.Stream != "s" || ce.Expected != tc.expected || ce.Actual != tc.want {
			t.Errorf("%s: ConcurrencyError{%q, %s, %d}; want {\"s\", %s, %d}", tc.name, ce.Stream, ce.Expected, ce.Actual, tc.expected, tc.want)
		}
		if !errors.Is(ce, es.ErrConcurrency) {
			t.Errorf("%s: does not match es.ErrConcurrency", tc.name)
		}
	}
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want failure
	}{
		{"wrong expected version on append", appendWrongVersion(t), failWrongVersion},
		{"wrong expected version on delete", fmt.Errorf("failed to perform delete, details: %w",
			status.Error(codes.FailedPrecondition, "Delete failed due to WrongExpectedVersion. Stream: s, Expected version: 1, Actual version: 2")), failWrongVersion},
		{"partly stored batch", status.Error(codes.InvalidArgument, "Invalid Transaction"), failPartlyStored},
		{"append too large", status.Error(codes.InvalidArgument, "Maximum Append Size of 1048576 Exceeded."), failTooLarge},
		{"other", status.Error(codes.Unavailable, "connection refused"), failOther},
	} {
		if got, _ := classify(tc.err); got != tc.want {
			t.Errorf("classify(%s) = %d; want %d", tc.name, got, tc.want)
		}
	}
}

// appendWrongVersion gets a genuine wrong-expected-version error out of the
// client's error type, whose fields are unexported: esdb.FromError keeps an
// *esdb.Error as it is.
func appendWrongVersion(t *testing.T) error {
	t.Helper()
	e, _ := esdb.FromError(errors.New("wrong expected version: expecting '2' but got '4'"))
	return e
}

func TestFail(t *testing.T) {
	s := New(nil)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"partly stored", status.Error(codes.InvalidArgument, "Invalid Transaction"), es.ErrDuplicateEventID},
		{"too large", status.Error(codes.InvalidArgument, "Maximum Append Size of 1048576 Exceeded."), es.ErrBatchTooLarge},
	} {
		err := s.fail(ctx, `append to "s"`, tc.err)
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), `append to "s"`) {
			t.Errorf("fail(%s) = %v; want an error naming the call and matching %v", tc.name, err, tc.want)
		}
	}

	// Anything else is an *Error that keeps the description but not the
	// gRPC error.
	raw := status.Error(codes.Unavailable, "connection refused")
	err := s.fail(ctx, "read head", raw)
	var e *Error
	if !errors.As(err, &e) || !strings.Contains(e.Error(), "connection refused") || !strings.HasPrefix(e.Error(), "esdbstore: read head: ") {
		t.Fatalf("fail(unavailable) = %v; want an *Error naming the call", err)
	}
	if _, ok := status.FromError(err); ok {
		t.Error("a gRPC status is reachable through the error")
	}
	if errors.Is(err, raw) {
		t.Error("the raw gRPC error is reachable through the error")
	}

	// A done context wins, so callers can match it.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.fail(cctx, "read head", raw); !errors.Is(err, context.Canceled) {
		t.Errorf("fail with a cancelled context = %v; want context.Canceled", err)
	}
}

func TestErrorTemporary(t *testing.T) {
	for code, want := range map[esdb.ErrorCode]bool{
		esdb.ErrorUnavailable:              true,
		esdb.ErrorCodeDeadlineExceeded:     true,
		esdb.ErrorCodeNotLeader:            true,
		esdb.ErrorAborted:                  true,
		esdb.ErrorCodeAccessDenied:         false,
		esdb.ErrorCodeUnauthenticated:      false,
		esdb.ErrorCodeUnknown:              false,
		esdb.ErrorCodeWrongExpectedVersion: false,
	} {
		if got := (&Error{Code: code}).Temporary(); got != want {
			t.Errorf("Error{Code: %d}.Temporary() = %v; want %v", code, got, want)
		}
	}
}

func TestRetryable(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{status.Error(codes.Unavailable, "server restarting"), true},
		{status.Error(codes.DeadlineExceeded, "slow"), true},
		{errors.New("EOF"), true},
		{status.Error(codes.PermissionDenied, "no access to $all"), false},
		{status.Error(codes.Unauthenticated, "bad password"), false},
		{status.Error(codes.Unimplemented, "old server"), false},
		{fmt.Errorf("%w: bad metadata", errDecode), false},
	} {
		if got := retryable(tc.err); got != tc.want {
			t.Errorf("retryable(%v) = %v; want %v", tc.err, got, tc.want)
		}
	}
}

func TestOpen_BadConnectionString(t *testing.T) {
	if _, err := Open("http://[::1"); err == nil || !strings.Contains(err.Error(), "connection string") {
		t.Fatalf("Open(bad URL) = %v; want an error about the connection string", err)
	}
	for in, want := range map[string]string{
		"kurrentdb://localhost:2113?tls=false":  "esdb://localhost:2113?tls=false",
		"kdb+discover://a:2113,b:2113":          "esdb+discover://a:2113,b:2113",
		"esdb://admin:changeit@localhost:2113":  "esdb://admin:changeit@localhost:2113",
		"kurrentdb+discover://cluster.dns:2113": "esdb+discover://cluster.dns:2113",
		"kurrent://localhost:2113?tls=false":    "esdb://localhost:2113?tls=false",
	} {
		if got := esdbScheme(in); got != want {
			t.Errorf("esdbScheme(%q) = %q; want %q", in, got, want)
		}
	}
	s, err := Open("kurrentdb://localhost:2113?tls=false")
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(context.Background(), "s", es.Any, es.EventData{Type: "T", Data: []byte{}}); !errors.Is(err, es.ErrClosed) {
		t.Fatalf("Append after Close = %v; want es.ErrClosed", err)
	}
	for _, err := range s.Subscribe(context.Background(), es.Position{}, es.Filter{}) {
		if !errors.Is(err, es.ErrClosed) {
			t.Fatalf("Subscribe after Close = %v; want es.ErrClosed", err)
		}
	}
}

func TestValidationBeforeAnyCall(t *testing.T) {
	// A Store without a client proves that bad input never reaches the
	// server.
	s := New(nil)
	ctx := context.Background()
	if _, err := s.Append(ctx, "", es.Any, es.EventData{Type: "T", Data: []byte{}}); !errors.Is(err, es.ErrInvalidArgument) {
		t.Errorf("Append to an empty stream ID = %v", err)
	}
	big := es.EventData{Type: "T", Data: make([]byte, DefaultLimits.MaxBytes+1)}
	if _, err := s.Append(ctx, "s", es.Any, big); !errors.Is(err, es.ErrBatchTooLarge) {
		t.Errorf("Append over the server's default append size = %v; want es.ErrBatchTooLarge", err)
	}
	if err := s.DeleteStream(ctx, "s", es.ExpectedVersion(-9)); !errors.Is(err, es.ErrInvalidArgument) {
		t.Errorf("DeleteStream with a bad expected version = %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Append(cctx, "s", es.Any, es.EventData{Type: "T", Data: []byte{}}); !errors.Is(err, context.Canceled) {
		t.Errorf("Append with a cancelled context = %v", err)
	}
	for _, err := range s.ReadAll(cctx, es.Position{}, 0) {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("ReadAll with a cancelled context = %v", err)
		}
	}
}
