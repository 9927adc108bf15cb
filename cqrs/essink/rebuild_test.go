package essink

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/esgen-dev/esgen/cqrs"
	"github.com/esgen-dev/esgen/es"
	"github.com/esgen-dev/esgen/es/memstore"
)

// orderDocsV keeps one document per order behind alias, in the document
// shape of schema: a rebuild moves from one schema to the next.
type orderDocsV struct {
	name, alias string
	schema      int
}

func (p orderDocsV) Name() string { return p.name }
func (orderDocsV) EventTypes() []string {
	return []string{"OrderPlaced", "OrderPaid", "OrderShipped", "OrderCancelled"}
}
func (p orderDocsV) Handle(ctx context.Context, rec es.Event) error {
	ix := Name(ctx, p.alias)
	if rec.Type == "OrderCancelled" {
		return Delete(ctx, ix, rec.StreamID)
	}
	status := strings.ToLower(strings.TrimPrefix(rec.Type, "Order"))
	if p.schema > 1 {
		status = strings.ToUpper(status)
	}
	return Index(ctx, ix, rec.StreamID, map[string]any{"status": status, "events": rec.Version, "schema": p.schema})
}

var orderTypes = []string{"OrderPlaced", "OrderPaid", "OrderShipped", "OrderCancelled", "Other"}

// appendOrders appends n random events to streams order-0..order-9.
func appendOrders(t testing.TB, store es.Store, n int) {
	t.Helper()
	for range n {
		stream := fmt.Sprintf("order-%d", rand.N(10))
		typ := orderTypes[rand.N(len(orderTypes))]
		if _, err := store.Append(context.Background(), stream, es.Any, es.EventData{Type: typ, Data: []byte{}}); err != nil {
			t.Error(err)
			return
		}
	}
}

// build runs p from its checkpoint to the head of store.
func build(t testing.TB, store es.Store, s *Sink, p cqrs.Projection) {
	t.Helper()
	head, err := store.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	r, err := cqrs.NewRunner(store, s, p, cqrs.WithRunnerConfig(cqrs.RunnerConfig{
		BatchSize: 50, MaxWait: 2 * time.Millisecond, ScanAll: true, CheckpointInterval: 5 * time.Millisecond, Logger: discard()}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := r.RunUntil(ctx, func(context.Context) (es.Position, error) { return head, nil }, nil); err != nil {
		t.Fatalf("build %s to %s: %v; status %+v", p.Name(), head, err, r.Status())
	}
}

// sameDocs fails unless the order documents behind index a and b are equal.
func sameDocs(t testing.TB, tg target, a, b string) {
	t.Helper()
	for i := range 10 {
		id := fmt.Sprintf("order-%d", i)
		da, db := getDoc(t, tg.client, a, id), getDoc(t, tg.client, b, id)
		if !reflect.DeepEqual(da, db) {
			t.Errorf("%s: %s has %+v, %s has %+v", id, a, da, b, db)
		}
	}
}

func rebuildOpts(alias string) RebuildOptions {
	return RebuildOptions{
		Indexes: []IndexSpec{{Alias: alias, Body: []byte(`{"mappings":{"properties":{"status":{"type":"keyword"}}}}`)}},
		Runner: []cqrs.RunnerOption{cqrs.WithRunnerConfig(cqrs.RunnerConfig{
			BatchSize: 50, MaxWait: 2 * time.Millisecond, CheckpointInterval: 5 * time.Millisecond, Logger: discard()})},
	}
}

func resolve(t testing.TB, s *Sink, alias string) []string {
	t.Helper()
	ix, err := s.ResolveAlias(context.Background(), alias)
	if err != nil {
		t.Fatal(err)
	}
	return ix
}

func TestRebuild_FirstBuildCreatesTheIndexAndTheAlias(t *testing.T) {
	eachTarget(t, func(t *testing.T, tg target) {
		ctx := t.Context()
		s := newSink(t, tg)
		store := memstore.New()
		appendOrders(t, store, 200)
		alias := tg.index("orders")
		p := orderDocsV{name: tg.index("orders"), alias: alias, schema: 1}
		if err := s.Rebuild(ctx, store, p, rebuildOpts(alias)); err != nil {
			t.Fatal(err)
		}
		if got := resolve(t, s, alias); !reflect.DeepEqual(got, []string{alias + "_v1"}) {
			t.Fatalf("alias %s points at %v, want %s_v1", alias, got, alias)
		}
		for _, mark := range []string{nextMark, oldMark} {
			if got := resolve(t, s, alias+mark); len(got) != 0 {
				t.Errorf("mark %s left on %v", alias+mark, got)
			}
		}
		head, _ := store.Head(ctx)
		if cp, err := s.Checkpoint(ctx, p.Name()); err != nil || cp != head {
			t.Fatalf("live checkpoint after the first build: %s, %v; want the head %s", cp, err, head)
		}
		if cp, err := s.Checkpoint(ctx, rebuildName(p.Name(), alias+"_v1")); err != nil || !cp.IsZero() {
			t.Fatalf("the rebuild's checkpoint is left: %s, %v", cp, err)
		}
		clean := orderDocsV{name: tg.index("clean"), alias: tg.index("clean"), schema: 1}
		build(t, store, s, clean)
		sameDocs(t, tg, alias, clean.alias)
	})
}

// The live projection keeps running and events keep coming during the
// rebuild; searches always find the alias; the result equals a clean build.
func TestRebuild_WhileTheLiveProjectionRunsAndEventsArrive(t *testing.T) {
	eachTarget(t, func(t *testing.T, tg target) {
		ctx := t.Context()
		s := newSink(t, tg)
		store := memstore.New()
		alias := tg.index("orders")
		name := tg.index("orders")
		appendOrders(t, store, 300)
		if err := s.Rebuild(ctx, store, orderDocsV{name: name, alias: alias, schema: 1}, rebuildOpts(alias)); err != nil {
			t.Fatal(err)
		}

		// The new release: its live projection writes schema 2 through the
		// alias, and the rebuild rewrites every document in schema 2.
		p2 := orderDocsV{name: name, alias: alias, schema: 2}
		live, err := cqrs.NewRunner(store, s, p2, cqrs.WithRunnerConfig(cqrs.RunnerConfig{
			BatchSize: 20, MaxWait: 2 * time.Millisecond, ScanAll: true, CheckpointInterval: 5 * time.Millisecond, Logger: discard()}))
		if err != nil {
			t.Fatal(err)
		}
		runCtx, stopLive := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Go(func() {
			if err := live.Run(runCtx); err != nil {
				t.Errorf("live runner: %v", err)
			}
		})
		writing := make(chan struct{})
		wg.Go(func() {
			for {
				select {
				case <-writing:
					return
				default:
				}
				appendOrders(t, store, 5)
				time.Sleep(time.Millisecond)
			}
		})
		searching := make(chan struct{})
		var searches int
		wg.Go(func() {
			for {
				select {
				case <-searching:
					return
				default:
				}
				if ix := resolve(t, s, alias); len(ix) != 1 {
					t.Errorf("alias %s points at %v during the rebuild", alias, ix)
					return
				}
				searches++
				time.Sleep(time.Millisecond)
			}
		})

		var progress []es.Position
		opts := rebuildOpts(alias)
		opts.Progress = func(rebuilt, _ es.Position) { progress = append(progress, rebuilt) }
		err = s.Rebuild(ctx, store, p2, opts)
		close(writing)
		close(searching)
		if err != nil {
			stopLive()
			wg.Wait()
			t.Fatal(err)
		}
		head, _ := store.Head(ctx)
		deadline := time.Now().Add(10 * time.Second)
		for live.Status().Checkpoint.Before(head) {
			if time.Now().After(deadline) {
				stopLive()
				wg.Wait()
				t.Fatalf("the live projection did not reach the head %s: %+v", head, live.Status())
			}
			time.Sleep(5 * time.Millisecond)
		}
		stopLive()
		wg.Wait()
		if got := resolve(t, s, alias); !reflect.DeepEqual(got, []string{alias + "_v2"}) {
			t.Fatalf("alias %s points at %v, want %s_v2", alias, got, alias)
		}
		if exists, _ := s.indexExists(ctx, alias+"_v1"); exists {
			t.Error("the replaced index is still there after a zero grace period")
		}
		if searches == 0 || len(progress) == 0 {
			t.Fatalf("%d searches, %d progress reports", searches, len(progress))
		}
		clean := orderDocsV{name: tg.index("clean"), alias: tg.index("clean"), schema: 2}
		build(t, store, s, clean)
		sameDocs(t, tg, alias, clean.alias)
	})
}

// A rebuild cancelled before the swap, or after it, resumes where it
// stopped; the result equals a clean build.
func TestRebuild_CancelledBeforeOrAfterTheSwapResumes(t *testing.T) {
	eachTarget(t, func(t *testing.T, tg target) {
		s := newSink(t, tg)
		store := memstore.New()
		alias := tg.index("orders")
		name := tg.index("orders")
		appendOrders(t, store, 500)
		if err := s.Rebuild(t.Context(), store, orderDocsV{name: name, alias: alias, schema: 1}, rebuildOpts(alias)); err != nil {
			t.Fatal(err)
		}
		appendOrders(t, store, 500)
		p2 := orderDocsV{name: name, alias: alias, schema: 2}
		v2 := alias + "_v2"

		// Before the swap: at the first progress report.
		ctx, cancel := context.WithCancel(t.Context())
		opts := rebuildOpts(alias)
		opts.Runner = append(opts.Runner, cqrs.WithBatch(10, time.Millisecond))
		opts.Progress = func(es.Position, es.Position) { cancel() }
		if err := s.Rebuild(ctx, store, p2, opts); !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled rebuild: %v", err)
		}
		if got := resolve(t, s, alias); !reflect.DeepEqual(got, []string{alias + "_v1"}) {
			t.Fatalf("after a cancel before the swap the alias points at %v", got)
		}
		if got := resolve(t, s, alias+nextMark); !reflect.DeepEqual(got, []string{v2}) {
			t.Fatalf("the index being built is %v, want %s", got, v2)
		}
		stopped, err := s.Checkpoint(t.Context(), rebuildName(name, v2))
		if err != nil {
			t.Fatal(err)
		}
		head, _ := store.Head(t.Context())
		if !stopped.Before(head) {
			t.Fatalf("the rebuild was not stopped early: at %s, head %s", stopped, head)
		}

		// After the swap: at the first progress report of the last catch-up.
		ctx, cancel = context.WithCancel(t.Context())
		var resumedFrom es.Position
		opts.Progress = func(rebuilt, _ es.Position) {
			if resumedFrom.IsZero() {
				resumedFrom = rebuilt
			}
			if got := resolve(t, s, alias); len(got) == 1 && got[0] == v2 {
				cancel()
			}
		}
		if err := s.Rebuild(ctx, store, p2, opts); !errors.Is(err, context.Canceled) {
			t.Fatalf("rebuild cancelled after the swap: %v", err)
		}
		if resumedFrom.Before(stopped) {
			t.Fatalf("the rebuild started again from %s, not from where it stopped (%s)", resumedFrom, stopped)
		}
		if got := resolve(t, s, alias+nextMark); !reflect.DeepEqual(got, []string{v2}) {
			t.Fatalf("after a cancel past the swap, the mark is on %v, want %s", got, v2)
		}
		appendOrders(t, store, 100) // the live projection is not running: the rebuild applies them

		opts.Progress = nil
		opts.Grace = -1
		if err := s.Rebuild(t.Context(), store, p2, opts); err != nil {
			t.Fatal(err)
		}
		if got := resolve(t, s, alias); !reflect.DeepEqual(got, []string{v2}) {
			t.Fatalf("alias %s points at %v, want %s", alias, got, v2)
		}
		if got := resolve(t, s, alias+oldMark); !reflect.DeepEqual(got, []string{alias + "_v1"}) {
			t.Fatalf("with a negative grace the old index should stay behind %s, got %v", alias+oldMark, got)
		}
		head, _ = store.Head(t.Context())
		if cp, err := s.Checkpoint(t.Context(), name); err != nil || cp != head {
			t.Fatalf("live checkpoint: %s, %v; want the head %s", cp, err, head)
		}
		clean := orderDocsV{name: tg.index("clean"), alias: tg.index("clean"), schema: 2}
		build(t, store, s, clean)
		sameDocs(t, tg, alias, clean.alias)

		// The next rebuild drops the old index first, and skips a version
		// taken by an index that is not its own.
		if err := s.CreateIndex(t.Context(), alias+"_v3", nil); err != nil {
			t.Fatal(err)
		}
		opts.Grace = 0
		if err := s.Rebuild(t.Context(), store, p2, opts); err != nil {
			t.Fatal(err)
		}
		if got := resolve(t, s, alias); !reflect.DeepEqual(got, []string{alias + "_v4"}) {
			t.Fatalf("alias %s points at %v, want %s_v4", alias, got, alias)
		}
		for ix, want := range map[string]bool{alias + "_v1": false, v2: false, alias + "_v3": true} {
			if got, _ := s.indexExists(t.Context(), ix); got != want {
				t.Errorf("index %s exists: %v, want %v", ix, got, want)
			}
		}
		sameDocs(t, tg, alias, clean.alias)
	})
}

// twoIndexes writes orders and, for paid orders, a payment document.
type twoIndexes struct{ orders, payments string }

func (twoIndexes) Name() string         { return "two" }
func (twoIndexes) EventTypes() []string { return []string{"OrderPlaced", "OrderPaid"} }
func (p twoIndexes) Handle(ctx context.Context, rec es.Event) error {
	if err := Index(ctx, Name(ctx, p.orders), rec.StreamID, map[string]any{"events": rec.Version}); err != nil {
		return err
	}
	if rec.Type == "OrderPaid" {
		return Index(ctx, Name(ctx, p.payments), rec.StreamID, map[string]any{"paid": true})
	}
	return nil
}

func TestRebuild_SwapsEveryAliasInOneRequest(t *testing.T) {
	tg := fakeTarget(t)
	s := newSink(t, tg)
	store := memstore.New()
	appendOrders(t, store, 100)
	p := twoIndexes{"orders", "payments"}
	opts := rebuildOpts("orders")
	opts.Indexes = append(opts.Indexes, IndexSpec{Alias: "payments"})
	if err := s.Rebuild(t.Context(), store, p, opts); err != nil {
		t.Fatal(err)
	}
	tg.fake.ResetLog()
	if err := s.Rebuild(t.Context(), store, p, opts); err != nil {
		t.Fatal(err)
	}
	var aliasReqs []string
	for _, r := range tg.fake.Log() {
		if r.Path == "/_aliases" {
			aliasReqs = append(aliasReqs, r.Body)
		}
	}
	if len(aliasReqs) != 2 {
		t.Fatalf("%d _aliases requests, want the swap and the removal of the marks: %v", len(aliasReqs), aliasReqs)
	}
	for _, want := range []string{
		`{"remove":{"index":"orders_v1","alias":"orders","must_exist":true}}`,
		`{"add":{"index":"orders_v2","alias":"orders","is_write_index":true}}`,
		`{"remove":{"index":"payments_v1","alias":"payments","must_exist":true}}`,
		`{"add":{"index":"payments_v2","alias":"payments","is_write_index":true}}`,
	} {
		if !strings.Contains(aliasReqs[0], want) {
			t.Errorf("the swap %s lacks %s", aliasReqs[0], want)
		}
	}
	for i := range 10 {
		id := fmt.Sprintf("order-%d", i)
		if a, b := getDoc(t, tg.client, "orders_v1", id), getDoc(t, tg.client, "orders", id); a.Found && !reflect.DeepEqual(a, b) {
			t.Errorf("%s: %+v before the rebuild, %+v after", id, a, b)
		}
	}
}

func TestRebuild_RefusesBadInputNamingIt(t *testing.T) {
	tg := fakeTarget(t)
	s := newSink(t, tg)
	store := memstore.New()
	if err := s.CreateIndex(t.Context(), "concrete", nil); err != nil {
		t.Fatal(err)
	}
	p := orderDocsV{name: "orders", alias: "orders"}
	for _, tc := range []struct {
		name    string
		indexes []IndexSpec
		want    string
	}{
		{"none", nil, "no indexes given"},
		{"no alias", []IndexSpec{{}}, "an index has no alias"},
		{"twice", []IndexSpec{{Alias: "a"}, {Alias: "a"}}, `alias "a" given twice`},
		{"bad body", []IndexSpec{{Alias: "a", Body: []byte(`[1]`)}}, `body of "a": want a JSON object`},
		{"self alias", []IndexSpec{{Alias: "a", Body: []byte(`{"aliases":{"a":{}}}`)}}, `aliases names "a" itself`},
		{"concrete index", []IndexSpec{{Alias: "concrete"}}, `"concrete" is an index, not an alias`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := s.Rebuild(t.Context(), store, p, RebuildOptions{Indexes: tc.indexes})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), `rebuild projection "orders"`) {
				t.Fatalf("error %v, want one naming the projection and %q", err, tc.want)
			}
		})
	}
}

func TestName_IsTheAliasOutsideARebuild(t *testing.T) {
	if got := Name(context.Background(), "orders"); got != "orders" {
		t.Fatalf("Name = %q", got)
	}
	ctx := context.WithValue(context.Background(), rebuildKey{}, map[string]string{"orders": "orders_v2"})
	if got := Name(ctx, "orders"); got != "orders_v2" {
		t.Fatalf("Name while rebuilding = %q", got)
	}
	if got := Name(ctx, "customers"); got != "customers" {
		t.Fatalf("Name of another alias while rebuilding = %q", got)
	}
}

// The live projection's batch in flight during the swap went to the old
// index; the rebuild applies it to the new one after the swap.
func TestRebuild_AppliesTheLiveBatchInFlightDuringTheSwap(t *testing.T) {
	eachTarget(t, func(t *testing.T, tg target) {
		ctx := t.Context()
		s := newSink(t, tg)
		store := memstore.New()
		alias, name := tg.index("orders"), tg.index("orders")
		appendOrders(t, store, 100)
		p1 := orderDocsV{name: name, alias: alias, schema: 1}
		if err := s.Rebuild(ctx, store, p1, rebuildOpts(alias)); err != nil {
			t.Fatal(err)
		}
		p2 := orderDocsV{name: name, alias: alias, schema: 2}
		opts := rebuildOpts(alias)
		inFlight := false
		opts.Progress = func(es.Position, es.Position) {
			if inFlight {
				return
			}
			inFlight = true
			// New events, written by the live projection through the alias
			// (still the old index), whose checkpoint is not stored yet.
			head, _ := store.Head(ctx)
			for i := range 5 {
				if _, err := store.Append(ctx, fmt.Sprintf("late-%d", i), es.NoStream, es.EventData{Type: "OrderPlaced", Data: []byte{}}); err != nil {
					t.Error(err)
				}
			}
			var batch []es.Event
			for e, err := range store.ReadAll(ctx, head, 0) {
				if err != nil {
					t.Error(err)
					return
				}
				batch = append(batch, e)
			}
			if err := s.Apply(ctx, "in-flight", batch, p2.Handle); err != nil {
				t.Error(err)
			}
			if got := getDoc(t, tg.client, alias+"_v1", "late-0"); !got.Found {
				t.Errorf("the in-flight batch did not reach the old index: %+v", got)
			}
		}
		if err := s.Rebuild(ctx, store, p2, opts); err != nil {
			t.Fatal(err)
		}
		if !inFlight {
			t.Fatal("no progress report before the swap")
		}
		for i := range 5 {
			id := fmt.Sprintf("late-%d", i)
			if got := getDoc(t, tg.client, alias, id); !got.Found || got.Source["schema"] != float64(2) {
				t.Errorf("%s after the rebuild: %+v, want the schema 2 document", id, got)
			}
		}
	})
}
