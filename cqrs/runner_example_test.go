package cqrs_test

import (
	"context"
	"fmt"
	"time"

	"github.com/esgen-dev/esgen/cqrs"
	"github.com/esgen-dev/esgen/es"
	"github.com/esgen-dev/esgen/es/memstore"
)

// A Runner feeds a projection from the log into its sink, from the sink's
// checkpoint, until its context is done. memSink (runner_test.go) is a small
// transactional in-memory Sink; counter counts events per stream.
func ExampleRunner() {
	ctx := context.Background()
	store := memstore.New()
	for _, stream := range []string{"s-1", "s-2", "s-1"} {
		_, _ = store.Append(ctx, stream, es.Any, es.EventData{Type: "test.Counted", Data: []byte{}})
	}
	head, _ := store.Head(ctx)

	sink := newMemSink()
	r, err := cqrs.NewRunner(store, sink, counter{}, cqrs.WithBatch(100, 10*time.Millisecond))
	if err != nil {
		panic(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(runCtx) }()
	for r.Status().Checkpoint != head {
		time.Sleep(time.Millisecond)
	}
	stop()
	fmt.Println("Run:", <-done)

	model, checkpoint, _ := sink.snapshot()
	fmt.Println("s-1:", model["s-1"], "s-2:", model["s-2"])
	fmt.Println("checkpoint at head:", checkpoint == head)
	fmt.Println("state:", r.Status().State)
	// Output:
	// Run: <nil>
	// s-1: 2 s-2: 1
	// checkpoint at head: true
	// state: stopped
}
