package sqlitesink_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/esgen-dev/esgen/cqrs"
	"github.com/esgen-dev/esgen/cqrs/sqlitesink"
	"github.com/esgen-dev/esgen/es"
	"github.com/esgen-dev/esgen/es/estest"
	"github.com/esgen-dev/esgen/es/sqlitestore"
	"github.com/esgen-dev/esgen/internal/testagg"
	testaggv1 "github.com/esgen-dev/esgen/internal/testagg/v1"
)

// The read model of the tests: each account's balance and how many of its
// events were applied, per projection. Increments make a doubled or lost
// event show.
var balancesSchema = []sqlitestore.Migration{{Version: 1, Name: "balances", SQL: `CREATE TABLE balances (
    projection TEXT    NOT NULL,
    account    TEXT    NOT NULL,
    balance    INTEGER NOT NULL,
    events     INTEGER NOT NULL,
    PRIMARY KEY (projection, account)
) STRICT`}}

type balance struct{ Balance, Events int64 }

var accounts = testagg.New()

// change is what an account event does to the read model.
type change struct {
	account string
	opened  bool
	delta   int64
}

// changes caches decoded events by ID: decoding protobuf under the race
// detector would dominate the fault test's time.
var changes sync.Map

func decode(rec es.Event) (change, error) {
	if c, ok := changes.Load(rec.ID); ok {
		return c.(change), nil
	}
	id, ok := testaggv1.AccountIDFromStream(rec.StreamID)
	if !ok {
		return change{}, fmt.Errorf("stream %q is not an account's", rec.StreamID)
	}
	e, err := accounts.DecodeEvent(rec)
	if err != nil {
		return change{}, err
	}
	c := change{account: id}
	switch e := e.(type) {
	case *testaggv1.Opened:
		c.opened = true
	case *testaggv1.Deposited:
		c.delta = e.Amount
	case *testaggv1.Withdrawn:
		c.delta = -e.Amount
	}
	changes.Store(rec.ID, c)
	return c, nil
}

// project applies rec to projection's balances through the Apply's
// transaction.
func project(ctx context.Context, projection string, rec es.Event) error {
	tx := sqlitesink.Tx(ctx)
	if tx == nil {
		return errors.New("no transaction on the context")
	}
	c, err := decode(rec)
	if err != nil {
		return err
	}
	if c.opened {
		_, err = tx.ExecContext(ctx, `INSERT INTO balances VALUES (?, ?, 0, 1)`, projection, c.account)
	} else {
		_, err = tx.ExecContext(ctx, `UPDATE balances SET balance = balance + ?, events = events + 1 WHERE projection = ? AND account = ?`, c.delta, projection, c.account)
	}
	return err
}

// fold is what the read model must hold after events.
func fold(t testing.TB, events []es.Event) map[string]balance {
	t.Helper()
	out := map[string]balance{}
	for _, rec := range events {
		c, err := decode(rec)
		if err != nil {
			t.Fatal(err)
		}
		b := out[c.account]
		b.Events++
		b.Balance += c.delta
		out[c.account] = b
	}
	return out
}

func table(t testing.TB, s *sqlitestore.Store, projection string) map[string]balance {
	t.Helper()
	rows, err := s.ReadDB().QueryContext(context.Background(), `SELECT account, balance, events FROM balances WHERE projection = ?`, projection)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]balance{}
	for rows.Next() {
		var id string
		var b balance
		if err := rows.Scan(&id, &b.Balance, &b.Events); err != nil {
			t.Fatal(err)
		}
		out[id] = b
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func wantTable(t testing.TB, s *sqlitestore.Store, projection string, want map[string]balance, when string) {
	t.Helper()
	if got := table(t, s, projection); !maps.Equal(got, want) {
		t.Fatalf("%s: read model of %q has %d accounts, want %d:\n got %v\nwant %v", when, projection, len(got), len(want), got, want)
	}
}

func openStore(t testing.TB, path string) *sqlitestore.Store {
	t.Helper()
	s, err := sqlitestore.Open(context.Background(), path, sqlitestore.WithRelaxedSync())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(context.Background(), "test-balances", balancesSchema); err != nil {
		t.Fatal(err)
	}
	return s
}

func newSink(t testing.TB, s *sqlitestore.Store) *sqlitesink.Sink {
	t.Helper()
	sink, err := sqlitesink.New(s)
	if err != nil {
		t.Fatal(err)
	}
	return sink
}

// seed appends n account events (20 accounts, opened first, then random
// deposits and withdrawals) and returns them as read from the log.
func seed(t testing.TB, s *sqlitestore.Store, n int) []es.Event {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	const numAccounts = 20
	pending := map[int][]es.EventData{}
	enc := func(e testaggv1.AccountEvent) es.EventData {
		d, err := accounts.EncodeEvent(e)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	for a := range numAccounts {
		pending[a] = append(pending[a], enc(&testaggv1.Opened{AccountId: fmt.Sprint("acc-", a)}))
	}
	for i := numAccounts; i < n; i++ {
		a := rng.IntN(numAccounts)
		if rng.IntN(3) == 0 {
			pending[a] = append(pending[a], enc(&testaggv1.Withdrawn{Amount: rng.Int64N(50) + 1}))
		} else {
			pending[a] = append(pending[a], enc(&testaggv1.Deposited{Amount: rng.Int64N(100) + 1}))
		}
		// Append in small chunks, interleaving the accounts in the log.
		if len(pending[a]) >= 8 || i == n-1 {
			for b := range numAccounts {
				if len(pending[b]) > 0 {
					if _, err := s.Append(context.Background(), testaggv1.AccountStreamName(fmt.Sprint("acc-", b)), es.Any, pending[b]...); err != nil {
						t.Fatal(err)
					}
					delete(pending, b)
				}
			}
		}
	}
	evs, err := estest.Collect(s.ReadAll(context.Background(), es.Position{}, 0))
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != n {
		t.Fatalf("seeded %d events; want %d", len(evs), n)
	}
	return evs
}

func handler(projection string) func(context.Context, es.Event) error {
	return func(ctx context.Context, rec es.Event) error { return project(ctx, projection, rec) }
}

func TestApply_EffectsAndCheckpointCommitTogether(t *testing.T) {
	ctx := t.Context()
	s := openStore(t, filepath.Join(t.TempDir(), "app.db"))
	sink := newSink(t, s)
	evs := seed(t, s, 200)
	if cp, err := sink.Checkpoint(ctx, "p"); err != nil || cp != (es.Position{}) {
		t.Fatalf("Checkpoint before any batch = %v, %v; want the zero Position", cp, err)
	}
	if err := sink.Apply(ctx, "p", evs[:100], handler("p")); err != nil {
		t.Fatal(err)
	}
	wantTable(t, s, "p", fold(t, evs[:100]), "after the first batch")
	if cp, err := sink.Checkpoint(ctx, "p"); err != nil || cp != evs[99].Position {
		t.Fatalf("Checkpoint = %v, %v; want %v, the batch's last event", cp, err, evs[99].Position)
	}

	// The handler fails midway through the next batch, after writing for
	// the events before: none of its writes, and no checkpoint, are kept.
	boom := errors.New("boom")
	calls := 0
	err := sink.Apply(ctx, "p", evs[100:], func(ctx context.Context, rec es.Event) error {
		if calls++; calls == 50 {
			return boom
		}
		return project(ctx, "p", rec)
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Apply with a failing handler = %v; want the handler's error", err)
	}
	wantTable(t, s, "p", fold(t, evs[:100]), "after a failed batch")
	if cp, _ := sink.Checkpoint(ctx, "p"); cp != evs[99].Position {
		t.Fatalf("Checkpoint after a failed batch = %v; want it unmoved at %v", cp, evs[99].Position)
	}

	// The same batch, retried, goes through; another projection is apart.
	if err := sink.Apply(ctx, "p", evs[100:], handler("p")); err != nil {
		t.Fatal(err)
	}
	wantTable(t, s, "p", fold(t, evs), "after the retry")
	if err := sink.Apply(ctx, "q", evs[:1], handler("q")); err != nil {
		t.Fatal(err)
	}
	if cp, _ := sink.Checkpoint(ctx, "q"); cp != evs[0].Position {
		t.Fatalf("Checkpoint of another projection = %v; want %v", cp, evs[0].Position)
	}
	if err := sink.Apply(ctx, "p", nil, handler("p")); err != nil {
		t.Fatalf("Apply of an empty batch = %v", err)
	}
	if sqlitesink.Tx(ctx) != nil {
		t.Fatal("Tx outside Apply is not nil")
	}
}

// After a crash a runner resumes from the checkpoint, which moved with the
// effects: each event is applied exactly once. The crash is real: a child
// process dies in the middle of a batch, its writes made and uncommitted. A
// batch applied again (a runner that did not see the checkpoint move) is
// refused before its handler runs.
func TestApply_ReplayAfterACrashIsExactlyOnce(t *testing.T) {
	if path := os.Getenv("SQLITESINK_CRASH_FILE"); path != "" {
		crashMidBatch(t, path)
		return
	}
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "app.db")
	s := openStore(t, path)
	evs := seed(t, s, 300)
	sink := newSink(t, s)
	if err := sink.Apply(ctx, "p", evs[:120], handler("p")); err != nil {
		t.Fatal(err)
	}
	called := false
	err := sink.Apply(ctx, "p", evs[:120], func(context.Context, es.Event) error { called = true; return nil })
	if !errors.Is(err, cqrs.ErrCheckpointMoved) || called {
		t.Fatalf("the same batch again = %v (handler called: %v); want cqrs.ErrCheckpointMoved before the handler", err, called)
	}
	if err := sink.Apply(ctx, "p", evs[119:200], handler("p")); !errors.Is(err, cqrs.ErrCheckpointMoved) {
		t.Fatalf("a batch overlapping the checkpoint = %v; want cqrs.ErrCheckpointMoved", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestApply_ReplayAfterACrashIsExactlyOnce$", "-test.count=1")
	cmd.Env = append(os.Environ(), "SQLITESINK_CRASH_FILE="+path)
	out, err := cmd.CombinedOutput()
	if ee := (*exec.ExitError)(nil); !errors.As(err, &ee) || ee.ExitCode() != crashCode {
		t.Fatalf("the child = %v; want it to die with exit code %d. Its output:\n%s", err, crashCode, out)
	}

	s = openStore(t, path)
	sink = newSink(t, s)
	cp, err := sink.Checkpoint(ctx, "p")
	if err != nil || cp != evs[119].Position {
		t.Fatalf("Checkpoint after the crash = %v, %v; want %v", cp, err, evs[119].Position)
	}
	wantTable(t, s, "p", fold(t, evs[:120]), "after the crash")
	rest, err := estest.Collect(s.ReadAll(ctx, cp, 0))
	if err != nil {
		t.Fatal(err)
	}
	if err := sink.Apply(ctx, "p", rest, handler("p")); err != nil {
		t.Fatal(err)
	}
	wantTable(t, s, "p", fold(t, evs), "after resuming")
}

const crashCode = 3

// crashMidBatch runs in the child process: it applies the batch after the
// checkpoint and exits, without cleanup, at its 31st event.
func crashMidBatch(t *testing.T, path string) {
	s, err := sqlitestore.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	sink := newSink(t, s)
	cp, err := sink.Checkpoint(context.Background(), "p")
	if err != nil {
		t.Fatal(err)
	}
	rest, err := estest.Collect(s.ReadAll(context.Background(), cp, 80))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	err = sink.Apply(context.Background(), "p", rest, func(ctx context.Context, rec es.Event) error {
		if n++; n == 31 {
			os.Exit(crashCode)
		}
		return project(ctx, "p", rec)
	})
	t.Fatalf("Apply returned (%v); the process should have died in it", err)
}

func TestCheckpoint_SurvivesReopen(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "app.db")
	s := openStore(t, path)
	evs := seed(t, s, 30)
	if err := newSink(t, s).Apply(ctx, "p", evs, handler("p")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := sqlitesink.New(s); !errors.Is(err, es.ErrClosed) {
		t.Fatalf("New on a closed store = %v; want es.ErrClosed", err)
	}
	if _, err := sqlitesink.New(nil); err == nil {
		t.Fatal("New(nil) succeeded")
	}
	s = openStore(t, path)
	sink := newSink(t, s) // the tables exist: New migrates nothing
	if cp, err := sink.Checkpoint(ctx, "p"); err != nil || cp != evs[29].Position {
		t.Fatalf("Checkpoint after reopening = %v, %v; want %v", cp, err, evs[29].Position)
	}
	if v, err := s.SchemaVersion(ctx, sqlitesink.Component); err != nil || v != len(sqlitesink.Migrations()) {
		t.Fatalf("SchemaVersion(%q) = %d, %v", sqlitesink.Component, v, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := sink.Checkpoint(ctx, "p"); !errors.Is(err, es.ErrClosed) {
		t.Fatalf("Checkpoint on a closed store = %v; want es.ErrClosed", err)
	}
	if err := sink.Apply(ctx, "p", evs, handler("p")); !errors.Is(err, es.ErrClosed) {
		t.Fatalf("Apply on a closed store = %v; want es.ErrClosed", err)
	}
}

// Fault injection: 50 runs each project 2,000 events in random batches
// while the context is cancelled at random points (in the handler, between
// statements, during the commit), resuming from Checkpoint after each
// failure. Before each resumption the read model must be exactly the
// checkpoint's, and at the end a clean run's.
func TestApply_CancelledAtRandomPointsEqualsACleanRun(t *testing.T) {
	const numEvents = 2000
	runs := 50
	if testing.Short() {
		runs = 10
	}
	s := openStore(t, filepath.Join(t.TempDir(), "app.db"))
	sink := newSink(t, s)
	evs := seed(t, s, numEvents)
	want := fold(t, evs)
	index := map[es.Position]int{}
	for i, e := range evs {
		index[e.Position] = i
	}
	if err := sink.Apply(context.Background(), "clean", evs, handler("clean")); err != nil {
		t.Fatal(err)
	}
	wantTable(t, s, "clean", want, "clean run")

	seed := rand.Uint64()
	if v := os.Getenv("SQLITESINK_SEED"); v != "" {
		seed, _ = strconv.ParseUint(v, 10, 64)
	}
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	faults := 0
	for run := range runs {
		proj := fmt.Sprint("run-", run)
		for attempt := 0; ; attempt++ {
			if attempt > 500 {
				t.Fatalf("%s: no progress after %d attempts", proj, attempt)
			}
			cp, err := sink.Checkpoint(context.Background(), proj)
			if err != nil {
				t.Fatal(err)
			}
			done := 0
			if cp != (es.Position{}) {
				done = index[cp] + 1
			}
			wantTable(t, s, proj, fold(t, evs[:done]), fmt.Sprintf("%s, attempt %d, at checkpoint %v", proj, attempt, cp))
			rest := evs[done:]
			if len(rest) == 0 {
				break
			}
			ctx, cancel := context.WithCancel(context.Background())
			handle := handler(proj)
			var timer *time.Timer
			switch rng.IntN(3) {
			case 0: // cancel inside the handler, after the k-th event
				k, n := rng.IntN(len(rest)+1), 0
				h := handle
				handle = func(ctx context.Context, rec es.Event) error {
					err := h(ctx, rec)
					if n++; n == k {
						cancel()
					}
					return err
				}
			case 1: // cancel from outside, at any moment
				timer = time.AfterFunc(time.Duration(rng.Int64N(3000))*time.Microsecond, cancel)
			}
			for len(rest) > 0 {
				n := min(len(rest), 1+rng.IntN(300))
				if err := sink.Apply(ctx, proj, rest[:n], handle); err != nil {
					if os.Getenv("SQLITESINK_DEBUG") != "" {
						t.Logf("%s attempt %d: %v", proj, attempt, err)
					}
					if !errors.Is(err, context.Canceled) {
						t.Fatalf("%s: Apply = %v; want success or context.Canceled", proj, err)
					}
					faults++
					break
				}
				rest = rest[n:]
			}
			if timer != nil {
				timer.Stop()
			}
			cancel()
		}
		wantTable(t, s, proj, want, proj+" at the end")
	}
	if faults < runs {
		t.Fatalf("only %d batches were cancelled in %d runs; the test injects too few faults", faults, runs)
	}
	t.Logf("%d batches cancelled", faults)
	// No cancellation left the store's writer connection unusable.
	if _, err := s.Append(context.Background(), "after-the-faults", es.Any, estest.Events("test.v1.E", 1)...); err != nil {
		t.Fatalf("Append after the faults: %v", err)
	}
}

// The Runner drives the sink: the read model catches up with the log, and
// a poison event is parked in the table and skipped, with the checkpoint
// past it.
func TestRunner_ProjectsIntoTheFileAndParksPoison(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	s := openStore(t, filepath.Join(t.TempDir(), "app.db"))
	sink := newSink(t, s)
	evs := seed(t, s, 400)
	poison := evs[123]
	p := &balances{name: "runner", poison: poison.ID}
	r, err := cqrs.NewRunner(s, sink, p, cqrs.WithBatch(50, 0), cqrs.WithRetry(2, 0, 0),
		cqrs.WithOnFailure(cqrs.SkipOnFailure))
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- r.Run(ctx) }()
	for {
		cp, err := sink.Checkpoint(ctx, "runner")
		if err != nil {
			t.Fatal(err)
		}
		if cp == evs[len(evs)-1].Position {
			break
		}
		if err := waitABit(ctx); err != nil {
			t.Fatalf("the runner did not catch up: checkpoint at %v", cp)
		}
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	without := append(append([]es.Event(nil), evs[:123]...), evs[124:]...)
	wantTable(t, s, "runner", fold(t, without), "after the runner")
	parked, err := sink.ListParked(context.Background(), "runner")
	if err != nil || len(parked) != 1 || parked[0].EventID != poison.ID || !parked[0].Skipped ||
		parked[0].Position != poison.Position || parked[0].Attempts != 2 {
		t.Fatalf("parked = %+v, %v; want the poison event, skipped after 2 attempts", parked, err)
	}
}

// balances is a cqrs.Projection of the test read model that fails on one
// event.
type balances struct {
	name   string
	poison es.ID
}

func (b *balances) Name() string { return b.name }

func (b *balances) EventTypes() []string { return accounts.EventTypes() }

func (b *balances) Handle(ctx context.Context, rec es.Event) error {
	if rec.ID == b.poison {
		return errors.New("poison")
	}
	return project(ctx, b.name, rec)
}

func TestReset_ClearsTheCheckpointAndTheReadModelTogether(t *testing.T) {
	ctx := t.Context()
	s := openStore(t, filepath.Join(t.TempDir(), "app.db"))
	sink := newSink(t, s)
	evs := seed(t, s, 50)
	if err := sink.Apply(ctx, "p", evs, handler("p")); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	if err := sink.ResetFunc(ctx, "p", func(ctx context.Context) error {
		if _, err := sqlitesink.Tx(ctx).ExecContext(ctx, `DELETE FROM balances WHERE projection = 'p'`); err != nil {
			return err
		}
		return boom
	}); !errors.Is(err, boom) {
		t.Fatalf("ResetFunc with a failing clear = %v; want its error", err)
	}
	if cp, _ := sink.Checkpoint(ctx, "p"); cp != evs[49].Position || len(table(t, s, "p")) == 0 {
		t.Fatal("a failed reset changed the checkpoint or the read model")
	}
	if err := sink.ResetFunc(ctx, "p", func(ctx context.Context) error {
		_, err := sqlitesink.Tx(ctx).ExecContext(ctx, `DELETE FROM balances WHERE projection = 'p'`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if cp, _ := sink.Checkpoint(ctx, "p"); cp != (es.Position{}) || len(table(t, s, "p")) != 0 {
		t.Fatal("reset left the checkpoint or the read model")
	}
	if err := sink.Apply(ctx, "p", evs, handler("p")); err != nil {
		t.Fatal(err)
	}
	wantTable(t, s, "p", fold(t, evs), "rebuilt after a reset")
}

// waitABit waits 10ms, or returns ctx's error when it ends first.
func waitABit(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(10 * time.Millisecond):
		return nil
	}
}

// Two Stores on one file (as two processes would have) apply the same
// batches at once: each batch is applied once, the other copy is refused
// with cqrs.ErrCheckpointMoved.
func TestApply_TwoStoresOnOneFileApplyEachBatchOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.db")
	a := openStore(t, path)
	evs := seed(t, a, 400)
	b := openStore(t, path)
	sinks := []*sqlitesink.Sink{newSink(t, a), newSink(t, b)}
	var wg sync.WaitGroup
	var mu sync.Mutex
	applied := map[int]int{}
	for _, sink := range sinks {
		wg.Go(func() {
			for i := 0; i < len(evs); i += 20 {
				err := sink.Apply(context.Background(), "p", evs[i:i+20], handler("p"))
				switch {
				case err == nil:
					mu.Lock()
					applied[i]++
					mu.Unlock()
				case !errors.Is(err, cqrs.ErrCheckpointMoved):
					t.Errorf("batch at %d: %v", i, err)
				}
			}
		})
	}
	wg.Wait()
	for i := 0; i < len(evs); i += 20 {
		if applied[i] > 1 {
			t.Errorf("batch at %d applied %d times", i, applied[i])
		}
	}
	// Each sink tries every batch in order, so a refusal means the other
	// applied that batch: each once, none lost.
	cp, err := sinks[1].Checkpoint(context.Background(), "p")
	if err != nil || cp != evs[len(evs)-1].Position {
		t.Fatalf("Checkpoint = %v, %v; want the last event's %v", cp, err, evs[len(evs)-1].Position)
	}
	applyAll := 0
	for _, n := range applied {
		applyAll += n
	}
	if applyAll != len(evs)/20 {
		t.Fatalf("%d batches applied in all; want each of the %d once", applyAll, len(evs)/20)
	}
	wantTable(t, b, "p", fold(t, evs), "after two writers")
}

// Parked outside a batch (the Runner stops at the event): the record is
// written on its own; parking the same event again adds the attempts.
func TestPark_OutsideABatchAddsAttempts(t *testing.T) {
	ctx := t.Context()
	s := openStore(t, filepath.Join(t.TempDir(), "app.db"))
	sink := newSink(t, s)
	evs := seed(t, s, 25)
	p := cqrs.OnParkParams{Projection: "p", Event: evs[3], Err: errors.New("bad"), Attempts: 5}
	for range 2 {
		if err := sink.Park(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	if err := sink.Park(ctx, cqrs.OnParkParams{Projection: "q", Event: evs[1], Err: errors.New("worse"), Attempts: 1, Skipped: true}); err != nil {
		t.Fatal(err)
	}
	parked, err := sink.ListParked(ctx, "p")
	if err != nil || len(parked) != 1 {
		t.Fatalf("ListParked(p) = %+v, %v; want one event", parked, err)
	}
	got := parked[0]
	if got.EventID != evs[3].ID || got.StreamID != evs[3].StreamID || got.Version != evs[3].Version || got.Type != evs[3].Type ||
		got.Position != evs[3].Position || got.Error != "bad" || got.Attempts != 10 || got.Skipped || got.ParkedAt.IsZero() {
		t.Fatalf("parked = %+v; want event %v with 10 attempts, not skipped", got, evs[3].Position)
	}
	if all, err := sink.ListParked(ctx, ""); err != nil || len(all) != 2 || all[0].Projection != "q" {
		t.Fatalf("ListParked(\"\") = %+v, %v; want both projections' events, oldest first", all, err)
	}
	if cp, _ := sink.Checkpoint(ctx, "p"); cp != (es.Position{}) {
		t.Fatalf("parking outside a batch moved the checkpoint to %v", cp)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := sink.Checkpoint(cancelled, "p"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Checkpoint with a cancelled context = %v; want context.Canceled", err)
	}
	if err := sink.Apply(cancelled, "p", evs, handler("p")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Apply with a cancelled context = %v; want context.Canceled", err)
	}
}
