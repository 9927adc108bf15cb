package pgsink_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/esgen-dev/esgen/cqrs"
	"github.com/esgen-dev/esgen/cqrs/pgsink"
	"github.com/esgen-dev/esgen/es"
	"github.com/esgen-dev/esgen/es/pgstore"
	"github.com/esgen-dev/esgen/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

type env struct {
	pool  *pgxpool.Pool
	store *pgstore.Store
	sink  *pgsink.Sink
}

func setup(t *testing.T) env {
	t.Helper()
	ctx := context.Background()
	pool := pgtest.Pool(t)
	if err := pgstore.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	store, err := pgstore.New(pool, pgstore.WithPageSize(500), pgstore.WithPollInterval(20*time.Millisecond), pgstore.WithLogger(quiet()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	sink, err := pgsink.Open(ctx, pool, pgsink.WithLogger(quiet()))
	if err != nil {
		t.Fatal(err)
	}
	return env{pool, store, sink}
}

// appendEvents appends perStream events to each of streams streams, from
// four writers at once in appends of ten, so that transactions interleave,
// and returns the head once every append is visible.
func appendEvents(t *testing.T, e env, streams, perStream int) es.Position {
	t.Helper()
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < streams; i += 4 {
				for v := 0; v < perStream; v += 10 {
					evs := make([]es.EventData, min(10, perStream-v))
					for j := range evs {
						evs[j] = es.EventData{Type: "test.Counted", Data: []byte{byte(v + j)}}
					}
					if _, err := e.store.Append(ctx, fmt.Sprintf("s-%03d", i), es.Any, evs...); err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := e.store.WaitVisible(ctx); err != nil {
		t.Fatal(err)
	}
	head, err := e.store.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return head
}

// model is a projection into two tables named after it: counts (one
// increment per event, so that an event applied twice shows) and latest (an
// upsert per event, deleted at versions 5, 15, 25...).
type model struct {
	name   string
	latest *pgsink.Table
	// hook, when set, runs in the handler after the event's writes.
	hook func(ctx context.Context, rec es.Event) error
}

func newModel(t *testing.T, e env, name string) *model {
	t.Helper()
	_, err := e.pool.Exec(context.Background(), fmt.Sprintf(`
CREATE TABLE %[1]s_counts (stream_id text PRIMARY KEY, n bigint NOT NULL, last_version bigint NOT NULL);
CREATE TABLE %[1]s_latest (stream_id text PRIMARY KEY, version bigint NOT NULL, data bytea NOT NULL)`, name))
	if err != nil {
		t.Fatal(err)
	}
	return &model{name: name, latest: pgsink.NewTable(name+"_latest", []string{"stream_id"}, "version", "data")}
}

func (m *model) Name() string         { return m.name }
func (m *model) EventTypes() []string { return []string{"test.Counted"} }
func (m *model) Handle(ctx context.Context, rec es.Event) error {
	err := pgsink.Exec(ctx, `INSERT INTO `+pgsink.Name(ctx, m.name+"_counts")+` AS c VALUES ($1, 1, $2)
ON CONFLICT (stream_id) DO UPDATE SET n = c.n + 1, last_version = EXCLUDED.last_version`, rec.StreamID, rec.Version)
	if err != nil {
		return err
	}
	if rec.Version%10 == 5 {
		err = m.latest.Delete(ctx, rec.StreamID)
	} else {
		err = m.latest.Upsert(ctx, rec.StreamID, rec.Version, rec.Data)
	}
	if err != nil {
		return err
	}
	if m.hook != nil {
		return m.hook(ctx, rec)
	}
	return nil
}

func (m *model) clear(ctx context.Context) error {
	_, err := pgsink.Tx(ctx).Exec(ctx, `TRUNCATE `+pgsink.Name(ctx, m.name+"_counts")+`, `+pgsink.Name(ctx, m.name+"_latest"))
	return err
}

// rows returns the model's rows as text, in a fixed order.
func (m *model) rows(t *testing.T, e env) []string {
	t.Helper()
	rows, err := e.pool.Query(context.Background(), fmt.Sprintf(`
SELECT 'c ' || stream_id || ' ' || n || ' ' || last_version FROM %[1]s_counts
UNION ALL SELECT 'l ' || stream_id || ' ' || version || ' ' || encode(data, 'hex') FROM %[1]s_latest
ORDER BY 1`, m.name))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func runner(t *testing.T, e env, sink cqrs.Sink, p cqrs.Projection, opts ...cqrs.RunnerOption) *cqrs.Runner {
	t.Helper()
	opts = append([]cqrs.RunnerOption{cqrs.WithRunnerLogger(quiet()), cqrs.WithRetry(3, time.Millisecond, 10*time.Millisecond), cqrs.WithBatch(200, 5*time.Millisecond)}, opts...)
	r, err := cqrs.NewRunner(e.store, sink, p, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// runToHead runs r until its checkpoint is head, then stops it.
func runToHead(t *testing.T, r *cqrs.Runner, head es.Position) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	deadline := time.Now().Add(60 * time.Second)
	for r.Status().Checkpoint != head {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("not at head %s in time: %+v", head, r.Status())
		}
		select {
		case err := <-done:
			t.Fatalf("Run returned early: %v", err)
		case <-time.After(2 * time.Millisecond):
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestApply_WritesAndCheckpointCommitTogether(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	m := newModel(t, e, "one")
	appendEvents(t, e, 1, 3)
	var batch []es.Event
	for ev, err := range e.store.ReadAll(ctx, es.Position{}, 0) {
		if err != nil {
			t.Fatal(err)
		}
		batch = append(batch, ev)
	}
	boom := errors.New("boom")
	err := e.sink.Apply(ctx, "one", batch, func(ctx context.Context, rec es.Event) error {
		if err := m.Handle(ctx, rec); err != nil {
			return err
		}
		if rec.Version == 3 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Apply = %v, want boom", err)
	}
	if rows := m.rows(t, e); len(rows) != 0 {
		t.Fatalf("a failed batch left rows %v", rows)
	}
	if cp, err := e.sink.Checkpoint(ctx, "one"); err != nil || !cp.IsZero() {
		t.Fatalf("checkpoint after a failed batch: %s, %v", cp, err)
	}
	if err := e.sink.Apply(ctx, "one", batch, m.Handle); err != nil {
		t.Fatal(err)
	}
	if cp, err := e.sink.Checkpoint(ctx, "one"); err != nil || cp != batch[2].Position {
		t.Fatalf("checkpoint %s, %v; want %s", cp, err, batch[2].Position)
	}
	// The same batch again is fenced off: another runner applied it.
	if err := e.sink.Apply(ctx, "one", batch, m.Handle); !errors.Is(err, cqrs.ErrCheckpointMoved) {
		t.Fatalf("second Apply of the same batch = %v, want ErrCheckpointMoved", err)
	}
	want := []string{"c s-000 3 3", "l s-000 3 02"}
	if rows := m.rows(t, e); !equal(rows, want) {
		t.Fatalf("rows %v, want %v", rows, want)
	}
}

func TestApply_WithoutTablesSaysToMigrate(t *testing.T) {
	pool := pgtest.Pool(t)
	sink, err := pgsink.New(pool)
	if err != nil {
		t.Fatal(err)
	}
	_, err = sink.Checkpoint(context.Background(), "x")
	if err == nil || !contains(err.Error(), "pgsink.Migrate") {
		t.Fatalf("Checkpoint on an empty database = %v, want a hint to migrate", err)
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// TestReplay_KilledAHundredTimesEqualsACleanRun stops the runner at random
// points of a 10,000-event replay, with the batch in flight rolled back at
// once: after the handler's writes and before the commit, in the middle of a
// handler, at a random moment, and by killing the transaction's connection
// on the server. After every stop the next run resumes from the checkpoint;
// the final read model must equal the one of a clean, uninterrupted run.
func TestReplay_KilledAHundredTimesEqualsACleanRun(t *testing.T) {
	e := setup(t)
	head := appendEvents(t, e, 100, 100)

	clean := newModel(t, e, "clean")
	runToHead(t, runner(t, e, e.sink, clean), head)
	want := clean.rows(t, e)
	if len(want) != 200 {
		t.Fatalf("clean run has %d rows, want 200", len(want))
	}

	killed := newModel(t, e, "killed")
	var (
		cancelRun atomic.Pointer[context.CancelFunc]
		armed     atomic.Bool // cancel after the checkpoint write, before the commit
		handled   atomic.Int64
		killAt    atomic.Int64 // cancel in the handler of this event number
		terminate atomic.Bool  // kill the transaction's backend in the next handler
	)
	killAt.Store(-1)
	killed.hook = func(ctx context.Context, rec es.Event) error {
		n := handled.Add(1)
		if n == killAt.Load() {
			_ = pgsink.Tx(ctx) // send this batch's writes so far, then die
			(*cancelRun.Load())()
		}
		if terminate.CompareAndSwap(true, false) {
			_, err := pgsink.Tx(ctx).Exec(ctx, `SELECT pg_terminate_backend(pg_backend_pid())`)
			return err
		}
		return nil
	}
	pgsink.SetBeforeCommit(e.sink, func() {
		if armed.CompareAndSwap(true, false) {
			(*cancelRun.Load())()
		}
	})
	defer pgsink.SetBeforeCommit(e.sink, nil)
	modes := map[string]int{}
	duringReplay := 0
	for kill := 0; kill < 100; kill++ {
		ctx, cancel := context.WithCancel(context.Background())
		cancelRun.Store(&cancel)
		r := runner(t, e, e.sink, killed, cqrs.WithStopGrace(-1), cqrs.WithBatch(1+rand.IntN(300), time.Millisecond))
		switch mode := rand.IntN(4); mode {
		case 0:
			modes["after the writes and the checkpoint, before the commit"]++
			armed.Store(true)
		case 1:
			modes["in a handler"]++
			killAt.Store(handled.Load() + 1 + rand.Int64N(150))
		case 2:
			modes["at a random time"]++
			time.AfterFunc(time.Duration(rand.IntN(5000))*time.Microsecond, cancel)
		case 3:
			modes["backend terminated, then at a random time"]++
			terminate.Store(true)
			time.AfterFunc(time.Duration(rand.IntN(20000))*time.Microsecond, cancel)
		}
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx) }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("kill %d: Run = %v", kill, err)
			}
		case <-time.After(30 * time.Second):
			cancel()
			<-done
			// The kill point was never reached: the replay is done.
		}
		cancel()
		armed.Store(false)
		killAt.Store(-1)
		terminate.Store(false)
		cp, err := e.sink.Checkpoint(context.Background(), "killed")
		if err != nil {
			t.Fatal(err)
		}
		if cp != head {
			duringReplay++
		}
	}
	t.Logf("kills: %v; %d of them before the replay reached the head", modes, duringReplay)
	if duringReplay < 90 {
		t.Fatalf("only %d of 100 kills happened during the replay", duringReplay)
	}
	runToHead(t, runner(t, e, e.sink, killed), head)
	if got := killed.rows(t, e); !equal(got, want) {
		t.Fatalf("read model after 100 kills differs from a clean run:\n got %d rows, first %v\nwant %d rows, first %v",
			len(got), first(got), len(want), first(want))
	}
}

func first(s []string) []string { return s[:min(5, len(s))] }

func TestReplay_TwiceGivesTheSameState(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	head := appendEvents(t, e, 20, 50)
	m := newModel(t, e, "twice")
	runToHead(t, runner(t, e, e.sink, m), head)
	once := m.rows(t, e)
	if err := e.sink.ResetFunc(ctx, "twice", m.clear); err != nil {
		t.Fatal(err)
	}
	if rows := m.rows(t, e); len(rows) != 0 {
		t.Fatalf("reset left %d rows", len(rows))
	}
	if cp, _ := e.sink.Checkpoint(ctx, "twice"); !cp.IsZero() {
		t.Fatalf("reset left checkpoint %s", cp)
	}
	runToHead(t, runner(t, e, e.sink, m, cqrs.WithBatch(7, time.Millisecond)), head)
	if twice := m.rows(t, e); !equal(once, twice) {
		t.Fatalf("second replay differs: %d rows vs %d", len(twice), len(once))
	}
	// A run at the head changes nothing.
	r := runner(t, e, e.sink, m)
	c, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if err := r.Run(c); err != nil {
		t.Fatal(err)
	}
	if again := m.rows(t, e); !equal(once, again) {
		t.Fatal("a run at the head changed the read model")
	}
}

func TestRunner_PoisonEventIsParkedInTheTableAndSkipped(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	head := appendEvents(t, e, 2, 10)
	m := newModel(t, e, "poison")
	// A queued write that fails on the server: the sink blames the event
	// that queued it.
	m.hook = func(ctx context.Context, rec es.Event) error {
		if rec.StreamID == "s-001" && rec.Version == 4 {
			return pgsink.Exec(ctx, `INSERT INTO poison_counts VALUES (NULL, 0, 0)`)
		}
		return nil
	}
	r := runner(t, e, e.sink, m, cqrs.WithOnFailure(cqrs.SkipOnFailure))
	runToHead(t, r, head)
	parked, err := e.sink.ListParked(ctx, "poison")
	if err != nil {
		t.Fatal(err)
	}
	if len(parked) != 1 || parked[0].StreamID != "s-001" || parked[0].Version != 4 || !parked[0].Skipped ||
		parked[0].Attempts != 3 || !contains(parked[0].Error, "null value") {
		t.Fatalf("parked %+v, want s-001@4 skipped after 3 attempts with the server's error", parked)
	}
	rows := m.rows(t, e)
	if !contains(fmt.Sprint(rows), "c s-001 9 10") || !contains(fmt.Sprint(rows), "c s-000 10 10") {
		t.Fatalf("rows %v, want every event of s-000 and all but one of s-001", rows)
	}

	// With StopOnFailure the projection stops before the event.
	m2 := newModel(t, e, "poison2")
	m2.hook = func(ctx context.Context, rec es.Event) error {
		if rec.StreamID == "s-001" && rec.Version == 4 {
			return errors.New("cannot project")
		}
		return nil
	}
	r2 := runner(t, e, e.sink, m2)
	err = r2.Run(ctx)
	var pe *cqrs.ParkedError
	if !errors.As(err, &pe) || pe.Event.Version != 4 {
		t.Fatalf("Run = %v, want a ParkedError at s-001@4", err)
	}
	cp, _ := e.sink.Checkpoint(ctx, "poison2")
	if !cp.Before(pe.Event.Position) {
		t.Fatalf("checkpoint %s not before the parked event %s", cp, pe.Event.Position)
	}
	if p, _ := e.sink.ListParked(ctx, "poison2"); len(p) != 1 || p[0].Skipped {
		t.Fatalf("parked %+v, want one record, not skipped", p)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not in time", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// Reset implements cqrs.Resetter.
func (m *model) Reset(ctx context.Context) error { return m.clear(ctx) }
