package estest

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/esgen-dev/esgen/es"
)

func (c *suite) testAppend(t *testing.T) {
	t.Run("ExpectedVersion", c.testExpectedVersion)
	c.run(t, "Empty_batch_checks_expected_version", c.testEmptyAppend)
	c.run(t, "Stores_every_field", c.testStoresEveryField)
	c.run(t, "Appends_continue_the_stream", c.testAppendsContinue)
	t.Run("Idempotent", c.testIdempotent)
	t.Run("Concurrent", func(t *testing.T) {
		c.run(t, "Exact_expected_version_one_winner_per_version", c.testConcurrentExact)
		c.run(t, "Any_all_succeed", c.testConcurrentAny)
	})
}

// outcome is what an append in a given stream state should do.
type outcome struct {
	first   int64 // on success, the version of the first event appended
	actual  int64 // on a conflict, ConcurrencyError.Actual
	ok      bool
	deleted bool // es.ErrStreamDeleted
}

func appended(first int64) outcome   { return outcome{ok: true, first: first} }
func conflicts(actual int64) outcome { return outcome{actual: actual} }

var retired = outcome{deleted: true}

func (c *suite) testExpectedVersion(t *testing.T) {
	// Each stream state is set up with 3 events ("existing") or from there.
	states := []struct {
		name  string
		setup func(t *testing.T, s es.Store, stream string)
	}{
		{"new_stream", func(*testing.T, es.Store, string) {}},
		{"existing_stream", func(t *testing.T, s es.Store, stream string) {
			mustAppend(t, s, stream, es.NoStream, Events("Seeded", 3)...)
		}},
		{"deleted_stream", func(t *testing.T, s es.Store, stream string) {
			mustAppend(t, s, stream, es.NoStream, Events("Seeded", 3)...)
			if err := s.DeleteStream(t.Context(), stream, es.Exact(3)); err != nil {
				t.Fatalf("DeleteStream(%q): %v", stream, err)
			}
		}},
		{"stream_deleted_with_reuse", func(t *testing.T, s es.Store, stream string) {
			mustAppend(t, s, stream, es.NoStream, Events("Seeded", 3)...)
			if err := s.DeleteStream(t.Context(), stream, es.Exact(3), es.AllowReuse()); err != nil {
				t.Fatalf("DeleteStream(%q, AllowReuse): %v", stream, err)
			}
		}},
	}
	// want lists the outcome in each state, in the order of states.
	modes := []struct {
		name     string
		expected es.ExpectedVersion
		want     [4]outcome
	}{
		{"Any", es.Any, [4]outcome{appended(1), appended(4), retired, appended(4)}},
		{"NoStream", es.NoStream, [4]outcome{appended(1), conflicts(3), retired, appended(4)}},
		{"StreamExists", es.StreamExists, [4]outcome{conflicts(0), appended(4), retired, conflicts(0)}},
		{"Exact_current_version", es.Exact(3), [4]outcome{conflicts(0), appended(4), retired, conflicts(0)}},
		{"Exact_older_version", es.Exact(2), [4]outcome{conflicts(0), conflicts(3), retired, conflicts(0)}},
		{"Exact_future_version", es.Exact(5), [4]outcome{conflicts(0), conflicts(3), retired, conflicts(0)}},
	}
	for _, m := range modes {
		for i, st := range states {
			want := m.want[i]
			c.run(t, m.name+"_on_"+st.name, func(t *testing.T, s es.Store) {
				const stream = "ev-1"
				st.setup(t, s, stream)
				before := readAll(t, s)
				var old []es.EventData
				if st.name == "existing_stream" {
					for _, e := range readStream(t, s, stream) {
						old = append(old, es.EventData{ID: e.ID, Type: e.Type, Data: e.Data, Metadata: e.Metadata})
					}
				}
				evs := Events("Appended", 2)
				res, err := s.Append(t.Context(), stream, m.expected, evs...)
				switch {
				case want.ok:
					if err != nil {
						t.Fatalf("Append(%s) to the %s: %v; want success", m.expected, st.name, err)
					}
					first := want.first - int64(len(old))
					if st.name == "stream_deleted_with_reuse" {
						// Versions continue after the deleted ones; a store
						// may spend versions on its deletion record.
						first = res.Version - int64(len(evs)) + 1
						if first <= 3 {
							t.Fatalf("Append(%s) to the %s returned version %d; want the new events after the deleted version 3", m.expected, st.name, res.Version)
						}
					} else if res.Version != want.first+1 {
						t.Fatalf("Append(%s) to the %s returned version %d; want %d", m.expected, st.name, res.Version, want.first+1)
					}
					// Only the current life of a stream is read: after a
					// delete with reuse, the old events are gone.
					wantStream(t, s, stream, first, append(old, evs...))
					got := readStream(t, s, stream)
					if last := got[len(got)-1]; res.Position != last.Position {
						t.Fatalf("Append returned position %s; the last event is at %s", res.Position, last.Position)
					}
					// The stream goes on from the returned version.
					mustAppend(t, s, stream, es.Exact(res.Version), Events("Next", 1)...)
					return
				case want.deleted:
					if !errors.Is(err, es.ErrStreamDeleted) {
						t.Fatalf("Append(%s) to the %s: %v; want es.ErrStreamDeleted", m.expected, st.name, err)
					}
				default:
					var ce *es.ConcurrencyError
					if !errors.As(err, &ce) || !errors.Is(err, es.ErrConcurrency) {
						t.Fatalf("Append(%s) to the %s: %v; want a *es.ConcurrencyError matching es.ErrConcurrency", m.expected, st.name, err)
					}
					if ce.Stream != stream || ce.Expected != m.expected || ce.Actual != want.actual {
						t.Fatalf("ConcurrencyError{Stream: %q, Expected: %s, Actual: %d}; want {%q, %s, %d}",
							ce.Stream, ce.Expected, ce.Actual, stream, m.expected, want.actual)
					}
				}
				if errors.Is(err, es.ErrInvalidArgument) || errors.Is(err, es.ErrDuplicateEventID) {
					t.Fatalf("Append error %v also matches an unrelated sentinel", err)
				}
				// Nothing was written.
				if st.name == "existing_stream" {
					wantStream(t, s, stream, 1, old)
				} else {
					wantNotFound(t, s, stream)
				}
				if after := readAll(t, s); len(after) != len(before) {
					t.Fatalf("failed append changed the global log from %d to %d events", len(before), len(after))
				}
			})
		}
	}
}

func (c *suite) testEmptyAppend(t *testing.T, s es.Store) {
	res, err := s.Append(t.Context(), "empty-1", es.NoStream)
	if err != nil || res.Version != 0 || !res.Position.IsZero() {
		t.Fatalf("empty Append(NoStream) to a new stream = %+v, %v; want version 0, zero position, no error", res, err)
	}
	wantNotFound(t, s, "empty-1")
	mustAppend(t, s, "empty-1", es.NoStream, Events("Seeded", 2)...)
	res, err = s.Append(t.Context(), "empty-1", es.Any)
	if err != nil || res.Version != 2 || !res.Position.IsZero() {
		t.Fatalf("empty Append(Any) to a stream at version 2 = %+v, %v; want version 2, zero position", res, err)
	}
	_, err = s.Append(t.Context(), "empty-1", es.NoStream)
	if !errors.Is(err, es.ErrConcurrency) {
		t.Fatalf("empty Append(NoStream) to a stream at version 2: %v; want es.ErrConcurrency", err)
	}
	if got := readAll(t, s); len(got) != 2 {
		t.Fatalf("ReadAll after empty appends = %d events; want 2", len(got))
	}
}

func (c *suite) testStoresEveryField(t *testing.T, s es.Store) {
	evs := Events("shop.order.v1.OrderPlaced", 3)
	evs[1].Metadata = es.Metadata{
		CorrelationID: "corr-1", CausationID: "cause-1", TenantID: "tenant-1", UserID: "user-1",
		TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", TraceState: "congo=t61rcWkgMzE",
		Extra: map[string]string{"source": "test"},
	}
	evs[2].ID = es.ID{} // assigned by the store
	start := time.Now()
	res := mustAppend(t, s, "order-1", es.NoStream, evs...)
	end := time.Now()
	if res.Version != 3 {
		t.Fatalf("Append of 3 events to a new stream returned version %d; want 3", res.Version)
	}
	got := readStream(t, s, "order-1")
	if len(got) != 3 {
		t.Fatalf("ReadStream = %d events; want 3", len(got))
	}
	for i, e := range got {
		wantEvent(t, e, "order-1", int64(i+1), evs[i])
		if e.RecordedAt.Location() != time.UTC {
			t.Errorf("version %d: RecordedAt %v is not in UTC", e.Version, e.RecordedAt)
		}
		// Allow for a database server whose clock differs a little.
		if e.RecordedAt.Before(start.Add(-time.Minute)) || e.RecordedAt.After(end.Add(time.Minute)) {
			t.Errorf("version %d: RecordedAt %v is not near the append (%v..%v)", e.Version, e.RecordedAt, start, end)
		}
	}
	if got[2].ID.IsZero() {
		t.Fatal("an event appended with the zero ID was stored with the zero ID")
	}
	wantIncreasing(t, "ReadStream", got)
	if res.Position != got[2].Position {
		t.Fatalf("Append returned position %s; its last event is at %s", res.Position, got[2].Position)
	}
	all := readAll(t, s)
	if len(all) != 3 {
		t.Fatalf("ReadAll = %d events; want 3", len(all))
	}
	for i := range all {
		if all[i].ID != got[i].ID || all[i].Position != got[i].Position || all[i].Version != got[i].Version {
			t.Fatalf("ReadAll event %d is %s v%d at %s; ReadStream has %s v%d at %s",
				i, all[i].ID, all[i].Version, all[i].Position, got[i].ID, got[i].Version, got[i].Position)
		}
		wantEvent(t, all[i], "order-1", int64(i+1), evs[i])
	}
}

func (c *suite) testAppendsContinue(t *testing.T, s es.Store) {
	var want []es.EventData
	var last es.AppendResult
	for i := range 5 {
		evs := Events(fmt.Sprintf("Step%d", i), i+1)
		res := mustAppend(t, s, "steps-1", es.Exact(last.Version), evs...)
		if res.Version != last.Version+int64(len(evs)) {
			t.Fatalf("append %d returned version %d; want %d", i, res.Version, last.Version+int64(len(evs)))
		}
		if !last.Position.Before(res.Position) {
			t.Fatalf("append %d returned position %s, not after the previous %s", i, res.Position, last.Position)
		}
		last = res
		want = append(want, evs...)
		// Another stream in between, to interleave the global log.
		mustAppend(t, s, "other-1", es.Any, Events("Other", 1)...)
	}
	wantStream(t, s, "steps-1", 1, want)
}

func (c *suite) testIdempotent(t *testing.T) {
	c.run(t, "Same_batch_twice", func(t *testing.T, s es.Store) {
		evs := Events("Placed", 3)
		first := mustAppend(t, s, "idem-1", es.NoStream, evs...)
		again := mustAppend(t, s, "idem-1", es.Any, evs...)
		if again != first {
			t.Fatalf("re-sent append returned %+v; the original returned %+v", again, first)
		}
		wantStream(t, s, "idem-1", 1, evs)
		if n := len(readAll(t, s)); n != 3 {
			t.Fatalf("ReadAll = %d events after a re-sent append; want 3", n)
		}
	})
	c.run(t, "Same_batch_with_stale_expected_version", func(t *testing.T, s es.Store) {
		evs := Events("Placed", 2)
		first := mustAppend(t, s, "idem-1", es.NoStream, evs...)
		more := Events("Shipped", 2)
		mustAppend(t, s, "idem-1", es.Exact(2), more...)
		// A retry of the first append, whose NoStream no longer holds,
		// is recognised by its IDs.
		again, err := s.Append(t.Context(), "idem-1", es.NoStream, evs...)
		if err != nil {
			t.Fatalf("re-sent Append(NoStream) after the stream moved on: %v; want success", err)
		}
		if again != first {
			t.Fatalf("re-sent append returned %+v; the original returned %+v", again, first)
		}
		wantStream(t, s, "idem-1", 1, append(evs, more...))
	})
	c.run(t, "Single_event_retry", func(t *testing.T, s es.Store) {
		evs := Events("Placed", 1)
		first := mustAppend(t, s, "idem-1", es.Exact(0), evs...)
		again := mustAppend(t, s, "idem-1", es.Exact(0), evs...)
		if again != first {
			t.Fatalf("re-sent append returned %+v; the original returned %+v", again, first)
		}
		wantStream(t, s, "idem-1", 1, evs)
	})
	dup := func(name string, change func(e *es.EventData) (stream string)) {
		c.run(t, name, func(t *testing.T, s es.Store) {
			evs := Events("Placed", 2)
			mustAppend(t, s, "idem-1", es.NoStream, evs...)
			changed := evs[1]
			changed.Data = append([]byte(nil), changed.Data...)
			stream := change(&changed)
			_, err := s.Append(t.Context(), stream, es.Any, changed)
			if !errors.Is(err, es.ErrDuplicateEventID) {
				t.Fatalf("Append reusing ID %s for a different event: %v; want es.ErrDuplicateEventID", changed.ID, err)
			}
			wantStream(t, s, "idem-1", 1, evs)
			if stream != "idem-1" {
				wantNotFound(t, s, stream)
			}
			if n := len(readAll(t, s)); n != 2 {
				t.Fatalf("ReadAll = %d events after a rejected append; want 2", n)
			}
		})
	}
	dup("Same_ID_different_data", func(e *es.EventData) string { e.Data = append(e.Data, '!'); return "idem-1" })
	dup("Same_ID_different_type", func(e *es.EventData) string { e.Type = "Cancelled"; return "idem-1" })
	dup("Same_ID_other_stream", func(e *es.EventData) string { return "idem-2" })
	c.run(t, "Batch_partly_stored", func(t *testing.T, s es.Store) {
		evs := Events("Placed", 2)
		mustAppend(t, s, "idem-1", es.NoStream, evs...)
		fresh := Events("Shipped", 1)
		for _, batch := range [][]es.EventData{
			{evs[1], fresh[0]},
			{fresh[0], evs[0], evs[1]},
		} {
			_, err := s.Append(t.Context(), "idem-1", es.Any, batch...)
			if !errors.Is(err, es.ErrDuplicateEventID) {
				t.Fatalf("Append of a batch partly stored already: %v; want es.ErrDuplicateEventID", err)
			}
		}
		wantStream(t, s, "idem-1", 1, evs)
		if ids(readAll(t, s))[fresh[0].ID] {
			t.Fatal("the new event of a rejected, partly stored batch is in the global log")
		}
	})
	c.run(t, "Zero_IDs_are_assigned", func(t *testing.T, s es.Store) {
		seen := map[es.ID]bool{}
		for range 2 {
			evs := Events("Anonymous", 5)
			for i := range evs {
				evs[i].ID = es.ID{}
			}
			mustAppend(t, s, "anon-1", es.Any, evs...)
			mustAppend(t, s, "anon-1", es.Any, evs...) // not a retry: no IDs
		}
		got := readStream(t, s, "anon-1")
		if len(got) != 20 {
			t.Fatalf("ReadStream = %d events; want 20 (appends without IDs are never duplicates)", len(got))
		}
		for _, e := range got {
			if e.ID.IsZero() {
				t.Fatalf("version %d was stored with the zero ID", e.Version)
			}
			if seen[e.ID] {
				t.Fatalf("version %d has ID %s, already assigned to another event", e.Version, e.ID)
			}
			seen[e.ID] = true
		}
	})
}

// writers is how many goroutines append concurrently.
const writers = 16

func (c *suite) testConcurrentExact(t *testing.T, s es.Store) {
	ctx := testContext(t)
	const stream = "counter-1"
	n := int64(c.scale(320, 64))
	var (
		mu     sync.Mutex
		wins   = map[int64][]es.ID{}
		lost   = map[es.ID]bool{}
		misses int
		wg     sync.WaitGroup
		start  = make(chan struct{})
	)
	for w := range writers {
		wg.Go(func() {
			<-start
			for i := 0; ; i++ {
				v, err := streamVersion(ctx, s, stream)
				if err != nil {
					t.Errorf("writer %d: read version: %v", w, err)
					return
				}
				if v >= n {
					return
				}
				// A writer that lost makes its next attempt at a later
				// version, so it cannot need more than n attempts.
				if int64(i) > n {
					t.Errorf("writer %d: %d attempts for %d versions: the version read back does not advance (at %d)", w, i, n, v)
					return
				}
				// Let the other writers read the same version, so that
				// they race for it even on a store as fast as memory.
				runtime.Gosched()
				e := es.EventData{ID: es.NewID(), Type: "Incremented", Data: fmt.Appendf(nil, "writer %d try %d", w, i)}
				res, err := s.Append(ctx, stream, es.Exact(v), e)
				var ce *es.ConcurrencyError
				switch {
				case errors.As(err, &ce):
					if ce.Actual <= v {
						t.Errorf("writer %d: Append(Exact(%d)) lost to a stream at version %d", w, v, ce.Actual)
						return
					}
					mu.Lock()
					lost[e.ID] = true
					misses++
					mu.Unlock()
				case err != nil:
					t.Errorf("writer %d: Append(Exact(%d)): %v", w, v, err)
					return
				case res.Version != v+1:
					t.Errorf("writer %d: Append(Exact(%d)) returned version %d; want %d", w, v, res.Version, v+1)
					return
				default:
					mu.Lock()
					wins[res.Version] = append(wins[res.Version], e.ID)
					mu.Unlock()
				}
			}
		})
	}
	close(start)
	wg.Wait()
	if t.Failed() {
		return
	}
	got := readStream(t, s, stream)
	if int64(len(got)) != n {
		t.Fatalf("stream has %d events (%s); want %d", len(got), versions(got), n)
	}
	seen := map[es.ID]bool{}
	for i, e := range got {
		v := int64(i + 1)
		if e.Version != v {
			t.Fatalf("event %d has version %d; want %d (contiguous)", i, e.Version, v)
		}
		if len(wins[v]) != 1 {
			t.Fatalf("version %d was won by %d appends; want exactly 1", v, len(wins[v]))
		}
		if e.ID != wins[v][0] {
			t.Fatalf("version %d holds %s; the append that won it wrote %s", v, e.ID, wins[v][0])
		}
		if seen[e.ID] || lost[e.ID] {
			t.Fatalf("version %d holds %s, which is doubled or whose append failed", v, e.ID)
		}
		seen[e.ID] = true
	}
	t.Logf("%d versions by %d writers, %d conflicts", n, writers, misses)
}

func (c *suite) testConcurrentAny(t *testing.T, s es.Store) {
	ctx := testContext(t)
	const stream = "any-1"
	per := c.scale(25, 8)
	var (
		mu      sync.Mutex
		batches = map[int64][]es.EventData{} // by the version of the batch's last event
		wg      sync.WaitGroup
		start   = make(chan struct{})
	)
	for w := range writers {
		wg.Go(func() {
			<-start
			for range per {
				evs := Events(fmt.Sprintf("Writer%d", w), 2)
				res, err := s.Append(ctx, stream, es.Any, evs...)
				if err != nil {
					t.Errorf("writer %d: Append(Any): %v", w, err)
					return
				}
				mu.Lock()
				if _, dup := batches[res.Version]; dup {
					t.Errorf("two appends returned version %d", res.Version)
				}
				batches[res.Version] = evs
				mu.Unlock()
			}
		})
	}
	close(start)
	wg.Wait()
	if t.Failed() {
		return
	}
	total := writers * per * 2
	got := readStream(t, s, stream)
	if len(got) != total {
		t.Fatalf("stream has %d events; want %d", len(got), total)
	}
	seen := map[es.ID]bool{}
	for i, e := range got {
		if e.Version != int64(i+1) {
			t.Fatalf("event %d has version %d; want %d (contiguous)", i, e.Version, i+1)
		}
		if seen[e.ID] {
			t.Fatalf("ID %s appears twice", e.ID)
		}
		seen[e.ID] = true
	}
	// Each batch is contiguous, at the versions its append returned.
	for v, evs := range batches {
		for j, want := range evs {
			if e := got[v-int64(len(evs))+int64(j)]; e.ID != want.ID {
				t.Fatalf("batch ending at version %d: version %d holds %s; want %s", v, e.Version, e.ID, want.ID)
			}
		}
	}
}
