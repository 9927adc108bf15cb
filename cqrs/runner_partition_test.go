package cqrs_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/esgen-dev/esgen/cqrs"
	"github.com/esgen-dev/esgen/es"
	"github.com/esgen-dev/esgen/es/memstore"
)

func TestPartitions_EachStreamGoesToOnePartitionAndAllEventsOnce(t *testing.T) {
	st := memstore.New()
	sink := newMemSink()
	head := appendN(t, st, 40, 10, "test.Counted")
	parts := cqrs.Partitions(counter{}, 3)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	runners := make([]*cqrs.Runner, len(parts))
	for i, p := range parts {
		runners[i] = newRunner(t, st, sink, p, cqrs.WithBatch(16, time.Millisecond))
		wg.Go(func() {
			if err := runners[i].Run(ctx); err != nil {
				t.Error(err)
			}
		})
	}
	waitUntil := time.Now().Add(10 * time.Second)
	for _, r := range runners {
		for r.Status().Checkpoint != head {
			if time.Now().After(waitUntil) {
				t.Fatalf("partition not at head: %+v", r.Status())
			}
			time.Sleep(time.Millisecond)
		}
	}
	cancel()
	wg.Wait()
	model, _, _ := sink.snapshot()
	for i := range 40 {
		if n := model[fmt.Sprintf("s-%d", i)]; n != 10 {
			t.Fatalf("stream s-%d counted %d times, want 10", i, n)
		}
	}
	if parts[1].Name() != "counter/1-of-3" {
		t.Fatalf("partition name %q", parts[1].Name())
	}
	// Each stream is handled by exactly one partition, the one PartitionOf
	// names, and every partition gets some.
	used := map[int]bool{}
	for i := range 40 {
		stream := fmt.Sprintf("s-%d", i)
		var handledBy []int
		for k := range parts {
			rec := recorder{}
			if err := cqrs.Partitions(&rec, 3)[k].Handle(context.Background(), es.Event{StreamID: stream}); err != nil {
				t.Fatal(err)
			}
			if rec.n > 0 {
				handledBy = append(handledBy, k)
			}
		}
		if len(handledBy) != 1 || handledBy[0] != cqrs.PartitionOf(stream, 3) {
			t.Fatalf("stream %s handled by partitions %v, want only %d", stream, handledBy, cqrs.PartitionOf(stream, 3))
		}
		used[handledBy[0]] = true
	}
	if len(used) != 3 {
		t.Fatalf("only partitions %v got streams", used)
	}
}

type recorder struct{ n int }

func (*recorder) Name() string                             { return "rec" }
func (*recorder) EventTypes() []string                     { return nil }
func (r *recorder) Handle(context.Context, es.Event) error { r.n++; return nil }
