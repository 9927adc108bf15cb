package estest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/esgen-dev/esgen/es"
)

func (c *suite) testData(t *testing.T) {
	c.run(t, "Large_payloads_round_trip", c.testLargePayloads)
	c.run(t, "Long_stream_reads_back_complete", c.testLongStream)
	c.run(t, "Unicode_stream_ID", c.testUnicodeStreamID)
	c.run(t, "Many_metadata_keys", c.testManyMetadataKeys)
	c.run(t, "Empty_data_is_empty_not_nil", c.testEmptyData)
	c.run(t, "Callers_cannot_change_the_log", c.testNoAliasing)
}

func (c *suite) testLargePayloads(t *testing.T, s es.Store) {
	const size = 1 << 20
	n := max(1, min(3, c.h.Limits.MaxBytes/(size+1024)))
	if c.h.Limits.MaxBytes < size+1024 {
		t.Skipf("Limits.MaxBytes is %d, below a 1 MiB event", c.h.Limits.MaxBytes)
	}
	rng := rand.New(rand.NewChaCha8([32]byte{1}))
	evs := Events("Blob", n)
	for i := range evs {
		evs[i].Data = make([]byte, size)
		for j := range evs[i].Data {
			evs[i].Data[j] = byte(rng.Uint32())
		}
	}
	// Every byte value, including NUL and invalid UTF-8, survives.
	copy(evs[0].Data, []byte{0, 0xff, 0xfe, '\\', '"', 0x80, 0xc0})
	mustAppend(t, s, "blob-1", es.NoStream, evs...)
	mustAppend(t, s, "blob-1", es.Exact(int64(n)), Events("Small", 1)...)
	got := readStream(t, s, "blob-1")
	if len(got) != n+1 {
		t.Fatalf("ReadStream = %d events; want %d", len(got), n+1)
	}
	for i := range evs {
		if !bytes.Equal(got[i].Data, evs[i].Data) {
			t.Fatalf("version %d: %d bytes read back differ from the %d written", i+1, len(got[i].Data), len(evs[i].Data))
		}
	}
	for _, e := range readAll(t, s) {
		if e.Version <= int64(n) && !bytes.Equal(e.Data, evs[e.Version-1].Data) {
			t.Fatalf("ReadAll: version %d: data differs from what was written", e.Version)
		}
	}
}

func (c *suite) testLongStream(t *testing.T, s es.Store) {
	n := c.scale(10_000, 2_000)
	batch := min(1000, c.h.Limits.MaxEvents)
	var want []es.EventData
	for len(want) < n {
		evs := Events("Tick", min(batch, n-len(want)))
		mustAppend(t, s, "long-1", es.Exact(int64(len(want))), evs...)
		want = append(want, evs...)
	}
	got := readStream(t, s, "long-1")
	if len(got) != n {
		t.Fatalf("forward read = %d events; want %d", len(got), n)
	}
	for i, e := range got {
		if e.Version != int64(i+1) || e.ID != want[i].ID {
			t.Fatalf("forward read: event %d is %s v%d; want %s v%d", i, e.ID, e.Version, want[i].ID, i+1)
		}
	}
	back, err := Collect(s.ReadStream(t.Context(), "long-1", es.StreamEnd, es.Backward, 0))
	if err != nil {
		t.Fatal(err)
	}
	if len(back) != n {
		t.Fatalf("backward read = %d events; want %d", len(back), n)
	}
	for i, e := range back {
		if v := int64(n - i); e.Version != v || e.ID != want[v-1].ID {
			t.Fatalf("backward read: event %d is %s v%d; want %s v%d", i, e.ID, e.Version, want[v-1].ID, v)
		}
	}
	all := readAll(t, s)
	if len(all) != n {
		t.Fatalf("ReadAll = %d events; want %d", len(all), n)
	}
	wantIncreasing(t, "ReadAll", all)
}

func (c *suite) testUnicodeStreamID(t *testing.T, s es.Store) {
	const stream = "訂單-😀-ünï"
	evs := Events("Ünïcode.Typé", 2)
	mustAppend(t, s, stream, es.NoStream, evs...)
	mustAppend(t, s, "訂單-other", es.NoStream, Events("Other", 1)...)
	wantStream(t, s, stream, 1, evs)
	all := readAll(t, s)
	if len(all) != 3 || all[0].StreamID != stream || all[1].StreamID != stream {
		t.Fatalf("ReadAll = %d events; want 3, the first two of %q", len(all), stream)
	}
	r := subscribe(t, s, es.Position{}, es.Filter{StreamPrefixes: []string{"訂單-😀"}})
	for _, want := range evs {
		if e := r.next(t, 5*time.Second, "an event of the unicode stream"); e.ID != want.ID || e.StreamID != stream {
			t.Fatalf("subscription by unicode prefix yielded %s of %q; want %s of %q", e.ID, e.StreamID, want.ID, stream)
		}
	}
	if err := s.DeleteStream(t.Context(), stream, es.Exact(2)); err != nil {
		t.Fatalf("DeleteStream(%q): %v", stream, err)
	}
	wantNotFound(t, s, stream)
}

func (c *suite) testManyMetadataKeys(t *testing.T, s es.Store) {
	md := es.Metadata{
		CorrelationID: "corr-ü-1",
		CausationID:   "cause \"quoted\"",
		TenantID:      "tenant\\backslash",
		UserID:        "user\nnewline\ttab",
		TraceParent:   "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		TraceState:    "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE",
		Extra:         make(map[string]string, 200),
	}
	for i := range 200 {
		md.Extra[fmt.Sprintf("key-%03d", i)] = fmt.Sprintf("value %d: 訂單 😀 \x01 </script> %s", i, strings.Repeat("x", i))
	}
	md.Extra["empty"] = ""
	md.Extra["$custom"] = "dollar"
	evs := Events("WithMetadata", 2)
	evs[0].Metadata = md
	mustAppend(t, s, "meta-1", es.NoStream, evs...)
	wantStream(t, s, "meta-1", 1, evs)
	all := readAll(t, s)
	if len(all) != 2 || !metadataEqual(all[0].Metadata, md) {
		t.Fatal("ReadAll returned different metadata from what was appended")
	}
	if !all[1].Metadata.IsZero() {
		t.Fatalf("an event appended without metadata reads back with %+v", all[1].Metadata)
	}
	r := subscribe(t, s, es.Position{}, es.Filter{})
	if e := r.next(t, 5*time.Second, "the event"); !metadataEqual(e.Metadata, md) {
		t.Fatal("Subscribe returned different metadata from what was appended")
	}
}

func (c *suite) testEmptyData(t *testing.T, s es.Store) {
	evs := []es.EventData{{ID: es.NewID(), Type: "Empty", Data: []byte{}}}
	mustAppend(t, s, "empty-1", es.NoStream, evs...)
	got := readStream(t, s, "empty-1")
	all := readAll(t, s)
	for what, evs := range map[string][]es.Event{"ReadStream": got, "ReadAll": all} {
		if len(evs) != 1 {
			t.Fatalf("%s = %d events; want 1", what, len(evs))
		}
		if d := evs[0].Data; d == nil || len(d) != 0 {
			t.Fatalf("%s: empty data reads back as %#v; want an empty, non-nil slice", what, d)
		}
	}
}

func (c *suite) testNoAliasing(t *testing.T, s es.Store) {
	evs := Events("Mutable", 2)
	evs[0].Metadata.Extra = map[string]string{"k": "v"}
	want := make([]es.EventData, len(evs))
	for i, e := range evs {
		want[i] = e
		want[i].Data = bytes.Clone(e.Data)
	}
	want[0].Metadata.Extra = map[string]string{"k": "v"}
	mustAppend(t, s, "alias-1", es.NoStream, evs...)
	// The caller reuses its buffers after the append...
	evs[0].Data[0] = '!'
	evs[0].Metadata.Extra["k"] = "changed"
	// ...and modifies what it read.
	got := readStream(t, s, "alias-1")
	all := readAll(t, s)
	if len(got) != 2 || len(all) != 2 || got[0].Metadata.Extra == nil {
		t.Fatalf("read back %d events from the stream and %d from the log; want 2 each, the first with metadata", len(got), len(all))
	}
	got[1].Data[0] = '!'
	got[0].Metadata.Extra["k"] = "changed"
	all[1].Data[0] = '?'
	wantStream(t, s, "alias-1", 1, want)
	for _, e := range readAll(t, s) {
		if !bytes.Equal(e.Data, want[e.Version-1].Data) {
			t.Fatalf("ReadAll: version %d data was changed through a caller's slice", e.Version)
		}
	}
}

func (c *suite) testBadInput(t *testing.T) {
	// bad appends a batch that must be rejected and checks that nothing was
	// written: "bad-1" keeps its 2 events and "bad-2" does not exist.
	bad := func(name string, wantErr error, mentions []string, appendFn func(t *testing.T, s es.Store) error) {
		c.run(t, name, func(t *testing.T, s es.Store) {
			seed := Events("Seeded", 2)
			mustAppend(t, s, "bad-1", es.NoStream, seed...)
			err := appendFn(t, s)
			if !errors.Is(err, wantErr) {
				t.Fatalf("Append: %v; want an error matching %q", err, wantErr)
			}
			if errors.Is(err, es.ErrConcurrency) {
				t.Fatalf("Append: %v also matches es.ErrConcurrency", err)
			}
			for _, m := range mentions {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not mention %s", err, m)
				}
			}
			wantStream(t, s, "bad-1", 1, seed)
			wantNotFound(t, s, "bad-2")
			if n := len(readAll(t, s)); n != 2 {
				t.Fatalf("ReadAll = %d events after a rejected append; want 2", n)
			}
		})
	}
	// withBad returns 3 good events with one spoiled.
	withBad := func(i int, spoil func(e *es.EventData)) []es.EventData {
		evs := Events("Good", 3)
		spoil(&evs[i])
		return evs
	}
	appendTo := func(stream string, exp es.ExpectedVersion, evs []es.EventData) func(*testing.T, es.Store) error {
		return func(t *testing.T, s es.Store) error {
			_, err := s.Append(t.Context(), stream, exp, evs...)
			return err
		}
	}
	bad("Empty_stream_ID", es.ErrInvalidArgument, []string{"stream"}, appendTo("", es.Any, Events("Good", 1)))
	bad("Empty_event_type", es.ErrInvalidArgument, []string{`"bad-2"`, "event 1"},
		appendTo("bad-2", es.NoStream, withBad(1, func(e *es.EventData) { e.Type = "" })))
	bad("Empty_event_type_on_existing_stream", es.ErrInvalidArgument, []string{`"bad-1"`, "event 2"},
		appendTo("bad-1", es.Exact(2), withBad(2, func(e *es.EventData) { e.Type = "" })))
	bad("Nil_data", es.ErrInvalidArgument, []string{`"bad-1"`, "event 2"},
		appendTo("bad-1", es.Any, withBad(2, func(e *es.EventData) { e.Data = nil })))
	bad("Invalid_expected_version", es.ErrInvalidArgument, []string{`"bad-1"`, "-7"},
		appendTo("bad-1", es.ExpectedVersion(-7), Events("Good", 1)))
	bad("Duplicate_IDs_in_batch", es.ErrInvalidArgument, []string{`"bad-2"`, "events 0 and 2"},
		appendTo("bad-2", es.Any, func() []es.EventData {
			evs := Events("Good", 3)
			evs[2].ID = evs[0].ID
			return evs
		}()))
	bad("Reserved_metadata_key", es.ErrInvalidArgument, []string{`"bad-1"`, "event 0", "$correlationId"},
		appendTo("bad-1", es.Any, withBad(0, func(e *es.EventData) {
			e.Metadata.Extra = map[string]string{"$correlationId": "x"}
		})))
	bad("Batch_over_MaxEvents", es.ErrBatchTooLarge, []string{`"bad-1"`},
		appendTo("bad-1", es.Any, Events("Good", c.h.Limits.MaxEvents+1)))
	bad("Batch_over_MaxEvents_is_invalid_argument", es.ErrInvalidArgument, []string{`"bad-2"`},
		appendTo("bad-2", es.NoStream, Events("Good", c.h.Limits.MaxEvents+1)))
	if c.h.Limits.MaxBytes <= 64<<20 {
		bad("Batch_over_MaxBytes", es.ErrBatchTooLarge, []string{`"bad-1"`},
			func(t *testing.T, s es.Store) error {
				evs := Events("Huge", 2)
				evs[1].Data = make([]byte, c.h.Limits.MaxBytes)
				_, err := s.Append(t.Context(), "bad-1", es.Any, evs...)
				return err
			})
	}
	bad("Cancelled_context", context.Canceled, []string{`"bad-1"`},
		func(t *testing.T, s es.Store) error {
			_, err := s.Append(cancelled(), "bad-1", es.Exact(2), Events("Good", 2)...)
			return err
		})
	bad("Cancelled_context_new_stream", context.Canceled, []string{`"bad-2"`},
		func(t *testing.T, s es.Store) error {
			_, err := s.Append(cancelled(), "bad-2", es.NoStream, Events("Good", 1)...)
			return err
		})
}
