package cqrs_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/esgen-dev/esgen/cqrs"
	"github.com/esgen-dev/esgen/es"
	"github.com/esgen-dev/esgen/es/memstore"
)

// memSink is a transactional in-memory Sink: a batch's writes go to a
// pending map on the context and are merged, with the checkpoint, only when
// every handler call succeeded.
type memSink struct {
	mu          sync.Mutex
	checkpoints map[string]es.Position
	model       map[string]int // stream -> count of events applied
	parked      []cqrs.OnParkParams
	batches     []int
	failCommit  int // fail this many commits before succeeding
}

type pendingKey struct{}

func newMemSink() *memSink {
	return &memSink{checkpoints: map[string]es.Position{}, model: map[string]int{}}
}

func (s *memSink) Checkpoint(_ context.Context, projection string) (es.Position, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.checkpoints[projection], nil
}

func (s *memSink) Apply(ctx context.Context, projection string, batch []es.Event, handle func(context.Context, es.Event) error) error {
	pending := map[string]int{}
	var parked []cqrs.OnParkParams
	ctx = context.WithValue(ctx, pendingKey{}, &txn{writes: pending, parked: &parked})
	for _, e := range batch {
		if err := handle(ctx, e); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failCommit > 0 {
		s.failCommit--
		return errors.New("commit failed")
	}
	if cp := s.checkpoints[projection]; !cp.Before(batch[0].Position) {
		return cqrs.ErrCheckpointMoved
	}
	for k, v := range pending {
		s.model[k] += v
	}
	s.parked = append(s.parked, parked...)
	s.checkpoints[projection] = batch[len(batch)-1].Position
	s.batches = append(s.batches, len(batch))
	return nil
}

func (s *memSink) Park(ctx context.Context, p cqrs.OnParkParams) error {
	if t, ok := ctx.Value(pendingKey{}).(*txn); ok {
		*t.parked = append(*t.parked, p)
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.parked = append(s.parked, p)
	return nil
}

func (s *memSink) snapshot() (map[string]int, es.Position, []cqrs.OnParkParams) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.model), s.checkpoints["counter"], append([]cqrs.OnParkParams(nil), s.parked...)
}

type txn struct {
	writes map[string]int
	parked *[]cqrs.OnParkParams
}

// counter counts "test.Counted" events per stream; fail decides whether
// handling an event fails.
type counter struct {
	fail func(e es.Event) error
}

func (counter) Name() string         { return "counter" }
func (counter) EventTypes() []string { return []string{"test.Counted"} }
func (c counter) Handle(ctx context.Context, e es.Event) error {
	if e.Type != "test.Counted" {
		return fmt.Errorf("handler got event type %s it does not consume", e.Type)
	}
	if c.fail != nil {
		if err := c.fail(e); err != nil {
			return err
		}
	}
	ctx.Value(pendingKey{}).(*txn).writes[e.StreamID]++
	return nil
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func appendN(t *testing.T, s es.Store, streams, perStream int, typ string) es.Position {
	t.Helper()
	var last es.Position
	for i := range streams {
		evs := make([]es.EventData, perStream)
		for j := range evs {
			evs[j] = es.EventData{Type: typ, Data: []byte{}}
		}
		res, err := s.Append(context.Background(), fmt.Sprintf("s-%d", i), es.Any, evs...)
		if err != nil {
			t.Fatal(err)
		}
		last = res.Position
	}
	return last
}

// runUntil runs r until cond holds (checked every few ms) and then stops it,
// returning Run's error.
func runUntil(t *testing.T, r *cqrs.Runner, cond func() bool) error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	deadline := time.After(10 * time.Second)
	for !cond() {
		select {
		case err := <-done:
			cancel()
			return err
		case <-deadline:
			cancel()
			<-done
			t.Fatalf("condition not met in time; status %+v", r.Status())
		case <-time.After(2 * time.Millisecond):
		}
	}
	cancel()
	return <-done
}

func newRunner(t *testing.T, st es.Store, sink cqrs.Sink, p cqrs.Projection, opts ...cqrs.RunnerOption) *cqrs.Runner {
	t.Helper()
	opts = append([]cqrs.RunnerOption{cqrs.WithRunnerLogger(quiet()), cqrs.WithRetry(3, time.Millisecond, 5*time.Millisecond)}, opts...)
	r, err := cqrs.NewRunner(st, sink, p, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRunner_AppliesEveryEventOnceInBatchesAndResumes(t *testing.T) {
	st := memstore.New()
	sink := newMemSink()
	head := appendN(t, st, 10, 100, "test.Counted")
	r := newRunner(t, st, sink, counter{}, cqrs.WithBatch(64, 10*time.Millisecond))
	if err := runUntil(t, r, func() bool { return r.Status().Checkpoint == head }); err != nil {
		t.Fatal(err)
	}
	model, cp, _ := sink.snapshot()
	if cp != head {
		t.Fatalf("checkpoint %s, want head %s", cp, head)
	}
	for i := range 10 {
		if n := model[fmt.Sprintf("s-%d", i)]; n != 100 {
			t.Fatalf("stream s-%d counted %d times, want 100", i, n)
		}
	}
	for _, n := range sink.batches {
		if n > 64 {
			t.Fatalf("batch of %d events, want at most 64", n)
		}
	}
	if st := r.Status(); st.State != cqrs.StateStopped || st.Handled != 1000 {
		t.Fatalf("status %+v, want stopped with 1000 handled", st)
	}

	// A second run resumes from the checkpoint: only new events are applied.
	head = appendN(t, st, 1, 5, "test.Counted")
	r2 := newRunner(t, st, sink, counter{})
	if err := runUntil(t, r2, func() bool { return r2.Status().Checkpoint == head }); err != nil {
		t.Fatal(err)
	}
	model, _, _ = sink.snapshot()
	if model["s-0"] != 105 || model["s-1"] != 100 {
		t.Fatalf("after resume s-0=%d s-1=%d, want 105 and 100", model["s-0"], model["s-1"])
	}
}

func TestRunner_LiveEventsWaitAtMostMaxWait(t *testing.T) {
	st := memstore.New()
	sink := newMemSink()
	r := newRunner(t, st, sink, counter{}, cqrs.WithBatch(1000, 20*time.Millisecond))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	head := appendN(t, st, 1, 3, "test.Counted")
	start := time.Now()
	for r.Status().Checkpoint != head {
		if time.Since(start) > 2*time.Second {
			t.Fatalf("a part batch was not applied after MaxWait; status %+v", r.Status())
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestRunner_TransientErrorsAreRetried(t *testing.T) {
	st := memstore.New()
	sink := newMemSink()
	sink.failCommit = 2
	head := appendN(t, st, 3, 10, "test.Counted")
	var mu sync.Mutex
	fails := 2
	p := counter{fail: func(e es.Event) error {
		mu.Lock()
		defer mu.Unlock()
		if e.StreamID == "s-1" && e.Version == 5 && fails > 0 {
			fails--
			return errors.New("deadlock detected")
		}
		return nil
	}}
	r := newRunner(t, st, sink, p)
	if err := runUntil(t, r, func() bool { return r.Status().Checkpoint == head }); err != nil {
		t.Fatal(err)
	}
	model, _, parked := sink.snapshot()
	if model["s-0"] != 10 || model["s-1"] != 10 || model["s-2"] != 10 || len(parked) != 0 {
		t.Fatalf("model %v parked %v, want 10 each and none parked", model, parked)
	}
}

func poison(e es.Event) error {
	if e.StreamID == "s-1" && e.Version == 5 {
		return errors.New("cannot decode")
	}
	return nil
}

func TestRunner_PoisonEventStopsTheProjection(t *testing.T) {
	st := memstore.New()
	sink := newMemSink()
	appendN(t, st, 3, 10, "test.Counted")
	var onPark []cqrs.OnParkParams
	r := newRunner(t, st, sink, counter{fail: poison},
		cqrs.WithOnPark(func(_ context.Context, p cqrs.OnParkParams) { onPark = append(onPark, p) }))
	err := runUntil(t, r, func() bool { return false })
	var pe *cqrs.ParkedError
	if !errors.As(err, &pe) || pe.Event.StreamID != "s-1" || pe.Event.Version != 5 {
		t.Fatalf("Run returned %v, want a ParkedError for s-1@5", err)
	}
	model, cp, parked := sink.snapshot()
	// Everything before the poison event is applied, nothing after it.
	if model["s-0"] != 10 || model["s-1"] != 4 || model["s-2"] != 0 {
		t.Fatalf("model %v, want s-0=10 s-1=4 s-2=0", model)
	}
	if cp.Compare(pe.Event.Position) >= 0 {
		t.Fatalf("checkpoint %s is not before the parked event %s", cp, pe.Event.Position)
	}
	if len(parked) != 1 || parked[0].Skipped || parked[0].Attempts != 3 || len(onPark) != 1 {
		t.Fatalf("parked %+v onPark %d, want one record after 3 attempts, not skipped", parked, len(onPark))
	}
	if s := r.Status(); s.State != cqrs.StateParked || s.LastError == "" || s.Parked != 1 {
		t.Fatalf("status %+v, want parked with the error", s)
	}
}

func TestRunner_PoisonEventIsSkippedAndRecorded(t *testing.T) {
	st := memstore.New()
	sink := newMemSink()
	head := appendN(t, st, 3, 10, "test.Counted")
	r := newRunner(t, st, sink, counter{fail: poison}, cqrs.WithOnFailure(cqrs.SkipOnFailure), cqrs.WithBatch(7, time.Millisecond))
	if err := runUntil(t, r, func() bool { return r.Status().Checkpoint == head }); err != nil {
		t.Fatal(err)
	}
	model, _, parked := sink.snapshot()
	if model["s-0"] != 10 || model["s-1"] != 9 || model["s-2"] != 10 {
		t.Fatalf("model %v, want every event but s-1@5", model)
	}
	if len(parked) != 1 || !parked[0].Skipped || parked[0].Event.Version != 5 || parked[0].Err == nil {
		t.Fatalf("parked %+v, want s-1@5 skipped with its error", parked)
	}
}

func TestRunner_ScanAllMovesTheCheckpointPastOtherTypes(t *testing.T) {
	st := memstore.New()
	appendN(t, st, 1, 3, "test.Counted")
	head := appendN(t, st, 2, 50, "test.Other")
	for _, scanAll := range []bool{false, true} {
		sink := newMemSink()
		r := newRunner(t, st, sink, counter{}, cqrs.WithRunnerConfig(cqrs.RunnerConfig{CheckpointInterval: 20 * time.Millisecond, Logger: quiet()}),
			cqrs.WithScanAll(scanAll), cqrs.WithBatch(10, time.Millisecond))
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		if err := r.Run(ctx); err != nil {
			t.Fatal(err)
		}
		cancel()
		model, cp, _ := sink.snapshot()
		if model["s-0"] != 3 {
			t.Fatalf("scanAll=%v: model %v, want s-0=3", scanAll, model)
		}
		if (cp == head) != scanAll {
			t.Fatalf("scanAll=%v: checkpoint %s, head %s", scanAll, cp, head)
		}
	}
}

// blockingSink holds Apply until released, to test stopping mid-batch.
type blockingSink struct {
	*memSink
	entered chan struct{}
	release chan struct{}
}

func (s blockingSink) Apply(ctx context.Context, projection string, batch []es.Event, handle func(context.Context, es.Event) error) error {
	return s.memSink.Apply(ctx, projection, batch, func(ctx context.Context, e es.Event) error {
		if err := handle(ctx, e); err != nil {
			return err
		}
		select {
		case s.entered <- struct{}{}:
		default:
		}
		select {
		case <-s.release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
}

func TestRunner_StopFinishesOrRollsBackTheBatchInFlight(t *testing.T) {
	for _, tc := range []struct {
		name  string
		grace time.Duration
		want  int
	}{
		{"grace: the batch commits", time.Minute, 5},
		{"no grace: the batch rolls back", -1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := memstore.New()
			appendN(t, st, 1, 5, "test.Counted")
			sink := blockingSink{newMemSink(), make(chan struct{}, 1), make(chan struct{})}
			r := newRunner(t, st, sink, counter{}, cqrs.WithStopGrace(tc.grace))
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- r.Run(ctx) }()
			<-sink.entered
			cancel()
			time.Sleep(20 * time.Millisecond)
			close(sink.release)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			model, _, _ := sink.snapshot()
			if model["s-0"] != tc.want {
				t.Fatalf("model %v, want s-0=%d", model, tc.want)
			}
		})
	}
}

// testLocker is a Locker with one lease per projection in memory.
type testLocker struct {
	mu   sync.Mutex
	held map[string]context.CancelCauseFunc
}

func (l *testLocker) Lock(ctx context.Context, projection string) (context.Context, func(), error) {
	for {
		l.mu.Lock()
		if l.held[projection] == nil {
			held, cancel := context.WithCancelCause(ctx)
			l.held[projection] = cancel
			l.mu.Unlock()
			return held, func() {
				l.mu.Lock()
				delete(l.held, projection)
				l.mu.Unlock()
				cancel(nil)
			}, nil
		}
		l.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
}

func (l *testLocker) revoke(projection string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c := l.held[projection]; c != nil {
		c(cqrs.ErrLeaseLost)
		delete(l.held, projection)
	}
}

func TestRunner_WaitsForTheLeaseAndTakesItAgainAfterLosingIt(t *testing.T) {
	st := memstore.New()
	sink := newMemSink()
	locker := &testLocker{held: map[string]context.CancelCauseFunc{}}
	// Someone else holds the lease.
	_, releaseOther, _ := locker.Lock(context.Background(), "counter")
	head := appendN(t, st, 1, 5, "test.Counted")
	r := newRunner(t, st, sink, counter{}, cqrs.WithLocker(locker))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	time.Sleep(30 * time.Millisecond)
	if s := r.Status(); s.State != cqrs.StateWaiting || !s.Checkpoint.IsZero() {
		t.Fatalf("status %+v while another holds the lease, want waiting at zero", s)
	}
	releaseOther()
	waitFor(t, func() bool { return r.Status().Checkpoint == head })
	locker.revoke("counter")
	head = appendN(t, st, 1, 5, "test.Counted")
	waitFor(t, func() bool { return r.Status().Checkpoint == head })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if model, _, _ := sink.snapshot(); model["s-0"] != 10 {
		t.Fatalf("model %v, want s-0=10", model)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestNewRunner_RejectsBadConfigWithEveryProblem(t *testing.T) {
	_, err := cqrs.NewRunner(memstore.New(), newMemSink(), counter{},
		cqrs.WithBatch(-1, -time.Second), cqrs.WithRetry(-1, 0, 0))
	if err == nil {
		t.Fatal("no error for a negative batch size")
	}
	for _, want := range []string{"batch size", "durations", "max attempts"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestRunner_RunUntilStopsAtAMovingTarget(t *testing.T) {
	st := memstore.New()
	first := appendN(t, st, 3, 10, "test.Counted")
	sink := newMemSink()
	r := newRunner(t, st, sink, counter{}, cqrs.WithBatch(7, time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The target moves once it is reached the first time: RunUntil follows.
	var second es.Position
	asked := 0
	target := func(context.Context) (es.Position, error) {
		asked++
		if second.IsZero() && !r.Status().Checkpoint.Before(first) {
			second = appendN(t, st, 1, 5, "test.Counted")
		}
		if second.IsZero() {
			return first, nil
		}
		return second, nil
	}
	var progress []es.Position
	if err := r.RunUntil(ctx, target, func(cp, _ es.Position) { progress = append(progress, cp) }); err != nil {
		t.Fatal(err)
	}
	model, cp, _ := sink.snapshot()
	if cp != second || model["s-0"] != 15 || model["s-1"] != 10 || model["s-2"] != 10 {
		t.Fatalf("checkpoint %s (want %s), model %v", cp, second, model)
	}
	if asked < 2 || len(progress) == 0 {
		t.Fatalf("target asked %d times, progress called %d times", asked, len(progress))
	}
	if s := r.Status().State; s != cqrs.StateStopped {
		t.Fatalf("state after RunUntil: %s, want stopped", s)
	}
}

func TestRunner_RunUntilReturnsWhyItStopped(t *testing.T) {
	st := memstore.New()
	head := appendN(t, st, 1, 3, "test.Counted")
	to := func(context.Context) (es.Position, error) { return head, nil }
	poison := counter{fail: func(e es.Event) error {
		if e.Version == 2 {
			return errors.New("poison")
		}
		return nil
	}}
	r := newRunner(t, st, newMemSink(), poison)
	var pe *cqrs.ParkedError
	if err := r.RunUntil(context.Background(), to, nil); !errors.As(err, &pe) {
		t.Fatalf("RunUntil with a poison event: %v, want a *ParkedError", err)
	}

	r = newRunner(t, st, newMemSink(), counter{})
	broken := errors.New("no head")
	if err := r.RunUntil(context.Background(), func(context.Context) (es.Position, error) { return es.Position{}, broken }, nil); !errors.Is(err, broken) {
		t.Fatalf("RunUntil with a failing target: %v", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	never := func(context.Context) (es.Position, error) { return es.Position{Commit: 1 << 60}, nil }
	if err := newRunner(t, st, newMemSink(), counter{}).RunUntil(ctx, never, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("RunUntil past its context: %v", err)
	}
}
