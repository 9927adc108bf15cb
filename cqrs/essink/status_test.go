package essink

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/esgen-dev/esgen/cqrs"
	"github.com/esgen-dev/esgen/es"
	"github.com/esgen-dev/esgen/es/memstore"
)

// poisoned fails every time on the events of stream "order-bad".
type poisoned struct{ orderDocsV }

func (p poisoned) Handle(ctx context.Context, rec es.Event) error {
	if rec.StreamID == "order-bad" {
		return errors.New("cannot project order-bad")
	}
	return p.orderDocsV.Handle(ctx, rec)
}

func appendTyped(t *testing.T, store es.Store, stream string, types ...string) es.AppendResult {
	t.Helper()
	var res es.AppendResult
	for _, typ := range types {
		var err error
		if res, err = store.Append(context.Background(), stream, es.Any, es.EventData{Type: typ, Data: []byte{}}); err != nil {
			t.Fatal(err)
		}
	}
	return res
}

func TestPark_RecordsTheEventWithTheError(t *testing.T) {
	for _, action := range []cqrs.FailureAction{cqrs.SkipOnFailure, cqrs.StopOnFailure} {
		t.Run(action.String(), func(t *testing.T) {
			eachTarget(t, func(t *testing.T, tg target) {
				ctx := t.Context()
				s := newSink(t, tg)
				store := memstore.New()
				appendTyped(t, store, "order-1", "OrderPlaced")
				bad := appendTyped(t, store, "order-bad", "OrderPlaced")
				appendTyped(t, store, "order-2", "OrderPlaced")
				p := poisoned{orderDocsV{name: tg.index("orders"), alias: tg.index("orders"), schema: 1}}
				r, err := cqrs.NewRunner(store, s, p, cqrs.WithBatch(10, time.Millisecond),
					cqrs.WithRetry(2, time.Millisecond, time.Millisecond), cqrs.WithOnFailure(action), cqrs.WithRunnerLogger(discard()))
				if err != nil {
					t.Fatal(err)
				}
				head, _ := store.Head(ctx)
				runErr := r.RunUntil(ctx, func(context.Context) (es.Position, error) { return head, nil }, nil)
				var pe *cqrs.ParkedError
				if (action == cqrs.StopOnFailure) != errors.As(runErr, &pe) {
					t.Fatalf("RunUntil with %s: %v", action, runErr)
				}
				var badID es.ID
				for e, err := range store.ReadStream(ctx, "order-bad", 1, es.Forward, 0) {
					if err != nil {
						t.Fatal(err)
					}
					badID = e.ID
				}
				doc := getDoc(t, tg.client, tg.index("parked"), ParkedID(p.Name(), badID))
				if !doc.Found || doc.Source["stream_id"] != "order-bad" || doc.Source["error"] == "" ||
					doc.Source["skipped"] != (action == cqrs.SkipOnFailure) || doc.Source["position"] != bad.Position.String() {
					t.Fatalf("parked record: %+v", doc)
				}
				cp, err := s.Checkpoint(ctx, p.Name())
				if err != nil {
					t.Fatal(err)
				}
				if passed := !cp.Before(bad.Position); passed != (action == cqrs.SkipOnFailure) {
					t.Fatalf("checkpoint %s after parking the event at %s with %s", cp, bad.Position, action)
				}
			})
		})
	}
}

func TestInspect_CheckpointLagStateAndRebuild(t *testing.T) {
	eachTarget(t, func(t *testing.T, tg target) {
		ctx := t.Context()
		s := newSink(t, tg)
		store := memstore.New()
		alias := tg.index("orders")
		p := orderDocsV{name: tg.index("orders"), alias: alias, schema: 1}
		if _, err := s.Inspect(ctx, store, p.Name()); !errors.Is(err, ErrUnknownProjection) {
			t.Fatalf("Inspect before any run: %v, want ErrUnknownProjection", err)
		}
		appendOrders(t, store, 50)
		if err := s.Rebuild(ctx, store, p, rebuildOpts(alias)); err != nil {
			t.Fatal(err)
		}
		build(t, store, s, p) // a runner reports its status
		head, _ := store.Head(ctx)
		st, err := s.Inspect(ctx, store, p.Name(), alias)
		if err != nil {
			t.Fatal(err)
		}
		if st.State != string(cqrs.StateStopped) || st.Checkpoint != head.String() || st.Head != head.String() ||
			st.LagEvents != 0 || st.ReportedAt == nil || st.Owner == "" || len(st.EventTypes) != 4 {
			t.Fatalf("status at the head: %+v", st)
		}

		before := time.Now()
		appendTyped(t, store, "order-1", "OrderPaid", "Other", "OrderShipped")
		time.Sleep(10 * time.Millisecond)
		st, err = s.Inspect(ctx, store, p.Name(), alias)
		if err != nil {
			t.Fatal(err)
		}
		if st.LagEvents != 2 || st.LagSeconds <= 0 || st.LagSeconds > time.Since(before).Seconds()+1 {
			t.Fatalf("lag after 2 events of its types and 1 other: %d events, %.3fs", st.LagEvents, st.LagSeconds)
		}

		// A rebuild stopped before its swap shows.
		rctx, cancel := context.WithCancel(ctx)
		opts := rebuildOpts(alias)
		opts.Progress = func(es.Position, es.Position) { cancel() }
		if err := s.Rebuild(rctx, store, p, opts); !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled rebuild: %v", err)
		}
		st, err = s.Inspect(ctx, store, p.Name(), alias)
		if err != nil {
			t.Fatal(err)
		}
		if st.State != string(cqrs.StateRebuilding) || st.RebuildCheckpoint == "" {
			t.Fatalf("status during a rebuild: %+v", st)
		}
		if err := s.Rebuild(ctx, store, p, rebuildOpts(alias)); err != nil {
			t.Fatal(err)
		}
		if st, err = s.Inspect(ctx, store, p.Name(), alias); err != nil || st.State == string(cqrs.StateRebuilding) {
			t.Fatalf("status after the rebuild: %+v, %v", st, err)
		}
		// The rebuild's checkpoint and status report are gone with it.
		if next, err := s.Inspect(ctx, store, rebuildName(p.Name(), alias+"_v2")); !errors.Is(err, ErrUnknownProjection) {
			t.Fatalf("the rebuild into %s_v2 left %+v, %v", alias, next, err)
		}
	})
}

// lagStore counts the lag itself, as pgstore does.
type lagStore struct {
	es.Store
	asked int
}

func (l *lagStore) Lag(context.Context, es.Position, []string) (int64, time.Time, error) {
	l.asked++
	return 7, time.Now().Add(-time.Minute), nil
}

func TestInspect_UsesTheStoresOwnLagCount(t *testing.T) {
	tg := fakeTarget(t)
	s := newSink(t, tg)
	store := &lagStore{Store: memstore.New()}
	appendTyped(t, store, "order-1", "OrderPlaced")
	build(t, store, s, orderDocsV{name: "orders", alias: "orders"})
	st, err := s.Inspect(t.Context(), store, "orders")
	if err != nil {
		t.Fatal(err)
	}
	if store.asked != 1 || st.LagEvents != 7 || st.LagSeconds < 59 {
		t.Fatalf("Lag asked %d times; status %+v", store.asked, st)
	}
}
