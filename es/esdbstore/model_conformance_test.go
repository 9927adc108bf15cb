package esdbstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/esgen-dev/esgen/es"
	"github.com/esgen-dev/esgen/es/estest"
)

// TestConformanceOnModel runs the conformance suite through the real client
// and gRPC against the model of the server in model_test.go. It checks the
// adapter's plumbing (paging, filters, subscriptions, error mapping)
// everywhere; TestConformance checks the semantics against a real server.
func TestConformanceOnModel(t *testing.T) {
	estest.Run(t, estest.Harness{
		New: func(t *testing.T) es.Store {
			name := strings.TrimPrefix(t.Name(), "TestConformanceOnModel/")
			if why, ok := deviations[name]; ok {
				t.Skip("KurrentDB semantics: " + why)
			}
			_, s := startModel(t)
			return s
		},
		Limits: DefaultLimits,
		Short:  true,
	})
}

func TestSubscribe_ResubscribesAfterTheServerDropsIt(t *testing.T) {
	m, s := startModel(t)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	var want []es.ID
	add := func(stream string, n int) {
		t.Helper()
		evs := make([]es.EventData, n)
		for i := range evs {
			evs[i] = es.EventData{ID: es.NewID(), Type: "test.v1.Happened", Data: fmt.Appendf(nil, "%s %d", stream, i)}
			want = append(want, evs[i].ID)
		}
		if _, err := s.Append(ctx, stream, es.Any, evs...); err != nil {
			t.Fatal(err)
		}
	}
	add("a", 10)
	// A stream the filter leaves out, and a soft delete, which writes a
	// system event: neither reaches the subscriber.
	if _, err := s.Append(ctx, "other", es.Any, es.EventData{Type: "test.v1.Other", Data: []byte{}}); err != nil {
		t.Fatal(err)
	}
	m.dropAfter.Store(4)
	got := make(chan es.Event)
	errc := make(chan error, 1)
	go func() {
		for e, err := range s.Subscribe(ctx, es.Position{}, es.Filter{StreamPrefixes: []string{"a", "b"}}) {
			if err != nil {
				errc <- err
				return
			}
			select {
			case got <- e:
			case <-ctx.Done():
				return
			}
		}
	}()
	var last es.Position
	for i := range 25 {
		if i == 10 {
			// Live now; drop the renewed subscription too.
			m.dropAfter.Store(3)
			add("b", 15)
		}
		select {
		case e := <-got:
			if e.ID != want[i] {
				t.Fatalf("event %d is %s of %q; want %s (no gap, no repeat)", i, e.ID, e.StreamID, want[i])
			}
			if !last.Before(e.Position) {
				t.Fatalf("event %d at %s is not after %s", i, e.Position, last)
			}
			last = e.Position
		case err := <-errc:
			t.Fatalf("subscription ended after %d events: %v", i, err)
		case <-ctx.Done():
			t.Fatalf("subscription delivered %d of 25 events", i)
		}
	}
	if n := m.drops.Load(); n < 2 {
		t.Fatalf("the server dropped the subscription %d times; the test wants 2", n)
	}
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("subscription ended with %v; want the context's error", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("subscription did not end after its context was cancelled")
	}
}

func TestSubscribe_EndsWhenTheStoreCloses(t *testing.T) {
	_, s := startModel(t)
	errc := make(chan error, 1)
	go func() {
		for _, err := range s.Subscribe(t.Context(), es.Position{}, es.Filter{}) {
			if err != nil {
				errc <- err
				return
			}
		}
	}()
	time.Sleep(100 * time.Millisecond)
	s.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, es.ErrClosed) {
			t.Fatalf("subscription ended with %v; want es.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("subscription did not end after Close")
	}
}

func TestAppend_ConflictOnStreamDeletedWithReuseReportsVersionZero(t *testing.T) {
	_, s := startModel(t)
	ctx := t.Context()
	evs := []es.EventData{{Type: "T", Data: []byte{}}, {Type: "T", Data: []byte{}}, {Type: "T", Data: []byte{}}}
	if _, err := s.Append(ctx, "s", es.NoStream, evs...); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteStream(ctx, "s", es.Exact(3), es.AllowReuse()); err != nil {
		t.Fatal(err)
	}
	// The server reports the deleted events' last revision (2), or for
	// StreamExists that the stream is deleted; es says version 0.
	for _, exp := range []es.ExpectedVersion{es.Exact(2), es.Exact(5), es.StreamExists} {
		_, err := s.Append(ctx, "s", exp, es.EventData{Type: "T", Data: []byte{}})
		var ce *es.ConcurrencyError
		if !errors.As(err, &ce) || ce.Actual != 0 {
			t.Fatalf("Append(%s) to a stream deleted with reuse = %v; want a ConcurrencyError with actual version 0", exp, err)
		}
	}
	// A soft delete of a stream that never existed is not found.
	if err := s.DeleteStream(ctx, "never", es.Any, es.AllowReuse()); !errors.Is(err, es.ErrStreamNotFound) {
		t.Fatalf("DeleteStream(never existed, AllowReuse) = %v; want es.ErrStreamNotFound", err)
	}
}
