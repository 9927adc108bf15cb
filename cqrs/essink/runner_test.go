package essink

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/esgen-dev/esgen/cqrs"
	"github.com/esgen-dev/esgen/es"
	"github.com/esgen-dev/esgen/es/memstore"
)

type orders struct{ index string }

func (orders) Name() string { return "orders" }
func (orders) EventTypes() []string {
	return []string{"OrderPlaced", "OrderPaid", "OrderShipped", "OrderCancelled"}
}
func (p orders) Handle(ctx context.Context, rec es.Event) error {
	return orderProjection(p.index)(ctx, rec)
}

// The runner pauses through an outage (the breaker keeps it from hammering
// the cluster) and catches up after it, with the same documents as without.
func TestRunner_PausesThroughAnOutageAndCatchesUp(t *testing.T) {
	tg := fakeTarget(t)
	sink := newSink(t, tg, WithBreaker(2, 30*time.Millisecond))
	store := memstore.New()
	ctx := t.Context()
	appendEv := func(stream, typ string) {
		t.Helper()
		if _, err := store.Append(ctx, stream, es.Any, es.EventData{Type: typ, Data: []byte{}}); err != nil {
			t.Fatal(err)
		}
	}
	r, err := cqrs.NewRunner(store, sink, orders{"orders"},
		cqrs.WithBatch(10, 5*time.Millisecond), cqrs.WithRetry(3, 5*time.Millisecond, 20*time.Millisecond),
		cqrs.WithRunnerLogger(discard()))
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := r.Run(runCtx); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	defer func() { stop(); wg.Wait() }()

	waitCheckpoint := func(what string) {
		t.Helper()
		head, err := store.Head(ctx)
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			cp, err := sink.Checkpoint(ctx, "orders")
			if err == nil && cp == head {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: checkpoint %s, %v; want head %s", what, cp, err, head)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	appendEv("order-1", "OrderPlaced")
	appendEv("order-2", "OrderPlaced")
	appendEv("order-1", "OrderPaid")
	waitCheckpoint("before the outage")

	tg.fake.SetDown(http.StatusServiceUnavailable)
	appendEv("order-2", "OrderCancelled")
	appendEv("order-1", "OrderShipped")
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(r.Status().LastError, ErrUnavailable.Error()) {
		if time.Now().After(deadline) {
			t.Fatalf("runner status during the outage: %+v", r.Status())
		}
		time.Sleep(5 * time.Millisecond)
	}
	tg.fake.SetDown(0)
	waitCheckpoint("after the outage")

	if d := getDoc(t, tg.client, "orders", "order-1"); d.Source["status"] != "shipped" {
		t.Fatalf("order-1: %+v", d)
	}
	if d := getDoc(t, tg.client, "orders", "order-2"); d.Found {
		t.Fatalf("order-2 was cancelled but is %+v", d)
	}
}
