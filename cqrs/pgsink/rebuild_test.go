package pgsink_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/esgen-dev/esgen/cqrs"
	"github.com/esgen-dev/esgen/cqrs/pgsink"
	"github.com/esgen-dev/esgen/es"
)

// TestRebuild_BlueGreenWhileLiveServesAndWrites rebuilds a read model whose
// live version is wrong, while its runner keeps running, events keep being
// appended and a reader keeps querying; the first rebuild is cancelled
// half-way and the second resumes it. Readers never see an error or an
// empty model, and the final model equals a clean run's.
func TestRebuild_BlueGreenWhileLiveServesAndWrites(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	appendEvents(t, e, 20, 50)
	m := newModel(t, e, "bg")
	live := runner(t, e, e.sink, m)
	liveCtx, stopLive := context.WithCancel(ctx)
	liveDone := make(chan error, 1)
	go func() { liveDone <- live.Run(liveCtx) }()
	waitFor(t, "live at the head", func() bool {
		h, _ := e.store.Head(ctx)
		return live.Status().Checkpoint == h
	})
	// The first rebuild is slow, so that it is surely cancelled half-way.
	var slow atomic.Bool
	slow.Store(true)
	m.hook = func(ctx context.Context, _ es.Event) error {
		if slow.Load() && pgsink.Name(ctx, "x") != "x" {
			time.Sleep(time.Millisecond)
		}
		return nil
	}
	// A bug had corrupted the live model.
	if _, err := e.pool.Exec(ctx, `UPDATE bg_counts SET n = 0 WHERE stream_id = 's-000'`); err != nil {
		t.Fatal(err)
	}

	var (
		stop    = make(chan struct{})
		wg      sync.WaitGroup
		reads   atomic.Int64
		readErr atomic.Pointer[error]
	)
	wg.Go(func() { // a reader of the live tables
		for {
			select {
			case <-stop:
				return
			default:
			}
			var rows int
			if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM bg_counts`).Scan(&rows); err != nil {
				readErr.Store(&err)
				return
			}
			if rows < 20 {
				err := fmt.Errorf("reader saw %d rows in bg_counts, want at least 20", rows)
				readErr.Store(&err)
				return
			}
			reads.Add(1)
		}
	})
	wg.Go(func() { // a writer
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			if _, err := e.store.Append(ctx, fmt.Sprintf("s-%03d", i%25), es.Any, es.EventData{Type: "test.Counted", Data: []byte{byte(i)}}); err != nil {
				readErr.Store(&err)
				return
			}
		}
	})

	opts := pgsink.RebuildOptions{
		Tables: []string{"bg_counts", "bg_latest"},
		Runner: []cqrs.RunnerOption{cqrs.WithRunnerLogger(quiet()), cqrs.WithBatch(20, time.Millisecond)},
	}
	c, cancel := context.WithTimeout(ctx, 400*time.Millisecond)
	err := e.sink.Rebuild(c, e.store, m, opts)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("first Rebuild = %v, want it cancelled half-way", err)
	}
	partial, err := e.sink.Checkpoint(ctx, "bg__next")
	if err != nil || partial.IsZero() {
		t.Fatalf("after the cancelled rebuild the copy's checkpoint is %s (%v), want progress", partial, err)
	}
	if info, err := e.sink.Inspect(ctx, "bg"); err != nil || info.State != string(cqrs.StateRebuilding) || info.RebuildCheckpoint != partial.String() {
		t.Fatalf("status during the paused rebuild: state %q, rebuild checkpoint %q (%v); want rebuilding at %s", info.State, info.RebuildCheckpoint, err, partial)
	}
	slow.Store(false)
	var progressed atomic.Bool
	opts.Runner = []cqrs.RunnerOption{cqrs.WithRunnerLogger(quiet())}
	opts.Progress = func(rebuild, live es.Position) { progressed.Store(true) }
	if err := e.sink.Rebuild(ctx, e.store, m, opts); err != nil {
		t.Fatal(err)
	}
	if !progressed.Load() {
		t.Error("Progress was never called")
	}
	if info, err := e.sink.Inspect(ctx, "bg"); err != nil || info.State == string(cqrs.StateRebuilding) || info.RebuildCheckpoint != "" {
		t.Fatalf("status after the swap: state %q, rebuild checkpoint %q (%v); want the rebuild gone", info.State, info.RebuildCheckpoint, err)
	}
	time.Sleep(50 * time.Millisecond) // the live runner writes into the new tables
	close(stop)
	wg.Wait()
	if p := readErr.Load(); p != nil {
		t.Fatal(*p)
	}
	if err := e.store.WaitVisible(ctx); err != nil {
		t.Fatal(err)
	}
	head, _ := e.store.Head(ctx)
	waitFor(t, "live at the final head", func() bool { return live.Status().Checkpoint == head })
	stopLive()
	if err := <-liveDone; err != nil {
		t.Fatal(err)
	}

	clean := newModel(t, e, "bgclean")
	runToHead(t, runner(t, e, e.sink, clean), head)
	if got, want := m.rows(t, e), clean.rows(t, e); !equal(got, want) {
		t.Fatalf("rebuilt model differs from a clean run:\n got %d rows %v\nwant %d rows %v", len(got), first(got), len(want), first(want))
	}
	var leftovers int
	if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE tablename LIKE 'bg\_%\_\_%'`).Scan(&leftovers); err != nil || leftovers != 0 {
		t.Fatalf("%d __next or __old tables left (%v)", leftovers, err)
	}
	t.Logf("%d reads during the rebuild", reads.Load())
}

func TestServeRebuilds_CarriesOutARebuildRequest(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	head := appendEvents(t, e, 5, 20)
	m := newModel(t, e, "rq")
	runToHead(t, runner(t, e, e.sink, m), head)
	if _, err := e.pool.Exec(ctx, `DELETE FROM rq_counts WHERE stream_id = 's-001'`); err != nil {
		t.Fatal(err)
	}
	serveCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 2)
	// Two copies of the app serve rebuilds; one carries the request out.
	for range 2 {
		go func() {
			done <- e.sink.ServeRebuilds(serveCtx, e.store, []pgsink.RebuildTarget{{
				Projection: m,
				Options:    pgsink.RebuildOptions{Tables: []string{"rq_counts", "rq_latest"}, Runner: []cqrs.RunnerOption{cqrs.WithRunnerLogger(quiet())}},
			}}, 20*time.Millisecond)
		}()
	}
	defer func() { stop(); <-done; <-done }()
	id, err := e.sink.Request(ctx, "rq", pgsink.ActionRebuild, es.Position{}, "test")
	if err != nil {
		t.Fatal(err)
	}
	var st pgsink.RequestState
	waitFor(t, "rebuild request", func() bool {
		st, err = e.sink.RequestStatus(ctx, id)
		return err == nil && (st.State == "done" || st.State == "failed")
	})
	if st.State != "done" {
		t.Fatalf("rebuild request: %+v", st)
	}
	clean := newModel(t, e, "rqclean")
	runToHead(t, runner(t, e, e.sink, clean), head)
	if got, want := m.rows(t, e), clean.rows(t, e); !equal(got, want) {
		t.Fatalf("rebuilt model differs from a clean run:\n got %v\nwant %v", first(got), first(want))
	}
}
