// Package estest is the conformance suite for [es.Store] adapters.
//
// Every adapter in this module runs it from its own tests, as watermill's
// adapters run pubsub/tests:
//
//	func TestConformance(t *testing.T) {
//		estest.Run(t, estest.Harness{
//			New: func(t *testing.T) es.Store { return memstore.New() },
//		})
//	}
//
// The suite checks the contract documented on [es.Store]: expected versions,
// all-or-nothing and idempotent appends, stream and global reads, deletion
// and truncation, subscriptions that hand over from catch-up to live without
// a gap, and the rejection of malformed input. It owns no storage and starts
// nothing; [Harness.New] supplies a fresh store for each test.
package estest

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"sync"
	"testing"
	"time"

	"github.com/esgen-dev/esgen/es"
)

// Harness describes a store to the suite.
type Harness struct {
	// New returns a fresh, empty store for one test. Register cleanup with
	// t.Cleanup. Tests that receive a store may run in parallel.
	New func(t *testing.T) es.Store

	// Limits are the store's append limits; the suite tests the over-limit
	// cases with Limits.MaxEvents+1 events and Limits.MaxBytes+1 bytes. Zero
	// fields mean the fields of es.DefaultLimits.
	Limits es.Limits

	// DelayCommit, when non-nil, arranges that the next Append to stream on
	// s blocks after its events have taken their global positions and before
	// its transaction commits. It returns once arranged; waitBlocked blocks
	// until such an append is actually stuck (failing t on timeout), and
	// release lets it commit. Stores that assign positions at commit time
	// (memstore) leave it nil, and the suite then skips the visibility-gap
	// test, since such a store cannot have the gap.
	DelayCommit func(t *testing.T, s es.Store, stream string) (waitBlocked, release func())

	// Short, when true, scales down the heavy cases, as -short does.
	Short bool
}

// Run runs every conformance test as subtests of t. Tests that get their
// own store run in parallel with their siblings.
func Run(t *testing.T, h Harness) {
	t.Helper()
	if h.New == nil {
		t.Fatal("estest: Harness.New is nil")
	}
	if h.Limits.MaxEvents <= 0 {
		h.Limits.MaxEvents = es.DefaultLimits.MaxEvents
	}
	if h.Limits.MaxBytes <= 0 {
		h.Limits.MaxBytes = es.DefaultLimits.MaxBytes
	}
	c := &suite{h: h, short: h.Short || testing.Short()}
	t.Run("Append", c.testAppend)
	t.Run("ReadStream", c.testReadStream)
	t.Run("ReadAll", c.testReadAll)
	t.Run("DeleteStream", c.testDeleteStream)
	t.Run("TruncateBefore", c.testTruncateBefore)
	t.Run("Subscribe", c.testSubscribe)
	t.Run("Data", c.testData)
	t.Run("BadInput", c.testBadInput)
}

// Events returns n events of type typ, each with a new ID and distinct data
// ("typ #i"), ready to append.
func Events(typ string, n int) []es.EventData {
	evs := make([]es.EventData, n)
	for i := range evs {
		evs[i] = es.EventData{
			ID:   es.NewID(),
			Type: typ,
			Data: fmt.Appendf(nil, "%s #%d", typ, i),
		}
	}
	return evs
}

// Collect gathers the events of seq until it ends or yields an error, which
// it returns with the events gathered before it.
func Collect(seq iter.Seq2[es.Event, error]) ([]es.Event, error) {
	var evs []es.Event
	for e, err := range seq {
		if err != nil {
			return evs, err
		}
		evs = append(evs, e)
	}
	return evs, nil
}

// suite carries the harness through the tests.
type suite struct {
	h     Harness
	short bool
}

// scale returns full, or short when the heavy cases are scaled down.
func (c *suite) scale(full, short int) int {
	if c.short {
		return short
	}
	return full
}

// run runs f as a parallel subtest with a fresh store.
func (c *suite) run(t *testing.T, name string, f func(t *testing.T, s es.Store)) {
	t.Helper()
	t.Run(name, func(t *testing.T) {
		t.Parallel()
		f(t, &tracked{Store: c.store(t)})
	})
}

// tracked is the store the tests get. It remembers the newest position of
// the tests' own successful appends, so that reads of the global log can
// wait until those are visible: the contract lets a store hold an event back
// from global readers while an earlier-positioned transaction (any one, even
// another test's) may still commit, so ReadAll right after Append may lag.
type tracked struct {
	es.Store
	mu     sync.Mutex
	newest es.Position
}

func (s *tracked) Append(ctx context.Context, stream string, expected es.ExpectedVersion, events ...es.EventData) (es.AppendResult, error) {
	res, err := s.Store.Append(ctx, stream, expected, events...)
	if err == nil {
		s.mu.Lock()
		if s.newest.Before(res.Position) {
			s.newest = res.Position
		}
		s.mu.Unlock()
	}
	return res, err
}

// settle waits until every event the tests appended to s is visible to
// global readers.
func settle(t *testing.T, s es.Store) {
	t.Helper()
	tr, ok := s.(*tracked)
	if !ok {
		return
	}
	tr.mu.Lock()
	pos := tr.newest
	tr.mu.Unlock()
	waitVisible(t, tr.Store, pos)
}

// waitVisible waits until Head reaches pos.
func waitVisible(t *testing.T, s es.Store, pos es.Position) {
	t.Helper()
	deadline := time.Now().Add(visibleTimeout)
	pause := time.Millisecond
	for {
		head, err := s.Head(t.Context())
		if err != nil {
			t.Fatalf("Head: %v", err)
		}
		if !head.Before(pos) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Head is still %s %s after an append returned position %s: a committed append must become visible to global readers", head, visibleTimeout, pos)
		}
		time.Sleep(pause)
		pause = min(2*pause, 50*time.Millisecond)
	}
}

// visibleTimeout bounds how long a committed event may stay invisible to
// global readers, held back by other transactions still in flight.
const visibleTimeout = 10 * time.Second

// unwrap returns the harness's own store behind the one a test got.
func unwrap(s es.Store) es.Store {
	if tr, ok := s.(*tracked); ok {
		return tr.Store
	}
	return s
}

func (c *suite) store(t *testing.T) es.Store {
	t.Helper()
	s := c.h.New(t)
	if s == nil {
		t.Fatal("estest: Harness.New returned nil")
	}
	return s
}

// testTimeout bounds every test, so that a store that loses a wake-up fails
// the test instead of hanging it.
const testTimeout = 60 * time.Second

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

func mustAppend(t *testing.T, s es.Store, stream string, expected es.ExpectedVersion, evs ...es.EventData) es.AppendResult {
	t.Helper()
	res, err := s.Append(t.Context(), stream, expected, evs...)
	if err != nil {
		t.Fatalf("Append(%q, %s, %d events): %v", stream, expected, len(evs), err)
	}
	return res
}

// readStream reads the whole of stream forward.
func readStream(t *testing.T, s es.Store, stream string) []es.Event {
	t.Helper()
	evs, err := Collect(s.ReadStream(t.Context(), stream, es.StreamStart, es.Forward, 0))
	if err != nil {
		t.Fatalf("ReadStream(%q): %v", stream, err)
	}
	return evs
}

// readAll reads the whole global log, once the events the test appended
// are visible.
func readAll(t *testing.T, s es.Store) []es.Event {
	t.Helper()
	settle(t, s)
	evs, err := Collect(s.ReadAll(t.Context(), es.Position{}, 0))
	if err != nil {
		t.Fatalf("ReadAll: %v", err)
	}
	return evs
}

// streamVersion returns the version of stream's last readable event, or 0
// when the stream is not found. It is safe to call from any goroutine.
func streamVersion(ctx context.Context, s es.Store, stream string) (int64, error) {
	for e, err := range s.ReadStream(ctx, stream, es.StreamEnd, es.Backward, 1) {
		if errors.Is(err, es.ErrStreamNotFound) {
			return 0, nil
		}
		if err != nil {
			return 0, err
		}
		return e.Version, nil
	}
	return 0, nil
}

// wantNotFound checks that stream reads as not found.
func wantNotFound(t *testing.T, s es.Store, stream string) {
	t.Helper()
	evs, err := Collect(s.ReadStream(t.Context(), stream, es.StreamStart, es.Forward, 0))
	if !errors.Is(err, es.ErrStreamNotFound) {
		t.Fatalf("ReadStream(%q) = %d events, error %v; want es.ErrStreamNotFound", stream, len(evs), err)
	}
	if len(evs) > 0 {
		t.Fatalf("ReadStream(%q) yielded %d events before es.ErrStreamNotFound", stream, len(evs))
	}
}

// wantStream checks that stream reads forward as exactly want, starting at
// version first.
func wantStream(t *testing.T, s es.Store, stream string, first int64, want []es.EventData) {
	t.Helper()
	got := readStream(t, s, stream)
	if len(got) != len(want) {
		t.Fatalf("ReadStream(%q) = %d events (%s); want %d", stream, len(got), versions(got), len(want))
	}
	for i := range got {
		wantEvent(t, got[i], stream, first+int64(i), want[i])
	}
}

// wantEvent checks that e is want, stored as version of stream.
func wantEvent(t *testing.T, e es.Event, stream string, version int64, want es.EventData) {
	t.Helper()
	if e.StreamID != stream || e.Version != version {
		t.Fatalf("event %s is version %d of %q; want version %d of %q", e.ID, e.Version, e.StreamID, version, stream)
	}
	if !want.ID.IsZero() && e.ID != want.ID {
		t.Fatalf("version %d of %q has ID %s; want %s", version, stream, e.ID, want.ID)
	}
	if e.Type != want.Type {
		t.Fatalf("version %d of %q has type %q; want %q", version, stream, e.Type, want.Type)
	}
	if e.Data == nil {
		t.Fatalf("version %d of %q has nil Data; the contract says never nil", version, stream)
	}
	if string(e.Data) != string(want.Data) {
		t.Fatalf("version %d of %q has data %.60q (%d bytes); want %.60q (%d bytes)", version, stream, e.Data, len(e.Data), want.Data, len(want.Data))
	}
	if !metadataEqual(e.Metadata, want.Metadata) {
		t.Fatalf("version %d of %q has metadata %+v; want %+v", version, stream, e.Metadata, want.Metadata)
	}
	if e.Position.IsZero() {
		t.Fatalf("version %d of %q has the zero position", version, stream)
	}
}

func metadataEqual(a, b es.Metadata) bool {
	if a.CorrelationID != b.CorrelationID || a.CausationID != b.CausationID || a.TenantID != b.TenantID ||
		a.UserID != b.UserID || a.TraceParent != b.TraceParent || a.TraceState != b.TraceState ||
		len(a.Extra) != len(b.Extra) {
		return false
	}
	for k, v := range a.Extra {
		if w, ok := b.Extra[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// versions describes the versions of evs, for failure messages.
func versions(evs []es.Event) string {
	if len(evs) == 0 {
		return "none"
	}
	if len(evs) > 8 {
		return fmt.Sprintf("versions %d..%d", evs[0].Version, evs[len(evs)-1].Version)
	}
	s := "versions"
	for _, e := range evs {
		s += fmt.Sprintf(" %d", e.Version)
	}
	return s
}

// ids returns the set of IDs in evs.
func ids(evs []es.Event) map[es.ID]bool {
	m := make(map[es.ID]bool, len(evs))
	for _, e := range evs {
		m[e.ID] = true
	}
	return m
}

// wantIncreasing checks that positions in evs strictly increase.
func wantIncreasing(t *testing.T, what string, evs []es.Event) {
	t.Helper()
	for i := 1; i < len(evs); i++ {
		if !evs[i-1].Position.Before(evs[i].Position) {
			t.Fatalf("%s: event %d at %s is not after event %d at %s", what, i, evs[i].Position, i-1, evs[i-1].Position)
		}
	}
}

// cancelled returns a context that is already cancelled.
func cancelled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

// within runs f in a goroutine and fails t if it does not return within d,
// or returns an error. A store that hangs leaks that goroutine, which must
// therefore not use t, but the test reports the hang.
func within(t *testing.T, d time.Duration, what string, f func() error) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	case <-time.After(d):
		t.Fatalf("%s did not return within %s", what, d)
	}
}
