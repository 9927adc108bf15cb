package pgsink_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/esgen-dev/esgen/cqrs"
	"github.com/esgen-dev/esgen/cqrs/pgsink"
	"github.com/esgen-dev/esgen/es"
	"github.com/esgen-dev/esgen/internal/pgtest"
)

func waitRequest(t *testing.T, s *pgsink.Sink, id int64) pgsink.RequestState {
	t.Helper()
	var st pgsink.RequestState
	waitFor(t, fmt.Sprintf("request %d", id), func() bool {
		var err error
		st, err = s.RequestStatus(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		return st.State != "pending"
	})
	return st
}

func TestControl_RunnerCarriesOutResetAndReplayAndReportsStatus(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	head := appendEvents(t, e, 3, 20)
	m := newModel(t, e, "ctl")
	r := runner(t, e, e.sink, m, cqrs.WithRunnerConfig(cqrs.RunnerConfig{ControlInterval: 10 * time.Millisecond, Logger: quiet()}))
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- r.Run(runCtx) }()
	waitFor(t, "catch up", func() bool { return r.Status().Checkpoint == head })
	want := m.rows(t, e)

	waitFor(t, "a running report at the head", func() bool {
		info, err := e.sink.Inspect(ctx, "ctl")
		return err == nil && info.State == "running" && info.LagEvents == 0 && info.Checkpoint == head.String()
	})

	// Reset: the model is emptied with the checkpoint, then rebuilt.
	id, err := e.sink.Request(ctx, "ctl", cqrs.ActionReset, es.Position{}, "test")
	if err != nil {
		t.Fatal(err)
	}
	if st := waitRequest(t, e.sink, id); st.State != "done" {
		t.Fatalf("reset request: %+v", st)
	}
	// The runner's status may still show the old checkpoint for a moment
	// after the request is marked done: wait for the model.
	waitFor(t, "rebuild after reset", func() bool { return equal(m.rows(t, e), want) })

	// Replay keeps the model: this projection's counts are not idempotent,
	// so they double, which shows the events were applied again.
	id, err = e.sink.Request(ctx, "ctl", cqrs.ActionReplay, es.Position{}, "test")
	if err != nil {
		t.Fatal(err)
	}
	if st := waitRequest(t, e.sink, id); st.State != "done" {
		t.Fatalf("replay request: %+v", st)
	}
	waitFor(t, "replay", func() bool {
		got := fmt.Sprint(m.rows(t, e))
		return contains(got, "c s-000 40 20") && contains(got, "c s-002 40 20")
	})
	waitFor(t, "checkpoint at the head", func() bool { return r.Status().Checkpoint == head })

	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	appendEvents(t, e, 1, 7)
	info, err := e.sink.Inspect(ctx, "ctl")
	if err != nil {
		t.Fatal(err)
	}
	if info.State != "stopped" || info.LagEvents != 7 || info.LagSeconds <= 0 || info.Checkpoint != head.String() {
		t.Fatalf("inspect after stop and 7 more events: %+v", info)
	}
}

func TestControl_ResetOfAProjectionWithoutResetterFails(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	head := appendEvents(t, e, 1, 3)
	p := noReset{newModel(t, e, "nores")}
	r := runner(t, e, e.sink, p, cqrs.WithRunnerConfig(cqrs.RunnerConfig{ControlInterval: 10 * time.Millisecond, Logger: quiet()}))
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- r.Run(runCtx) }()
	waitFor(t, "catch up", func() bool { return r.Status().Checkpoint == head })
	id, err := e.sink.Request(ctx, "nores", cqrs.ActionReset, es.Position{}, "test")
	if err != nil {
		t.Fatal(err)
	}
	if st := waitRequest(t, e.sink, id); st.State != "failed" || !contains(st.Error, "cqrs.Resetter") {
		t.Fatalf("reset of a projection without Resetter: %+v", st)
	}
	cancel()
	<-done
}

// noReset hides model's Reset method.
type noReset struct{ m *model }

func (n noReset) Name() string                                   { return n.m.Name() }
func (n noReset) EventTypes() []string                           { return n.m.EventTypes() }
func (n noReset) Handle(ctx context.Context, rec es.Event) error { return n.m.Handle(ctx, rec) }

func TestInspect_UnknownNamesAndMissingTables(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	m := newModel(t, e, "known")
	head := appendEvents(t, e, 1, 1)
	runToHead(t, runner(t, e, e.sink, m), head)
	_, err := e.sink.Inspect(ctx, "nope")
	if !errors.Is(err, pgsink.ErrUnknownProjection) || !contains(err.Error(), `known: "known"`) {
		t.Fatalf("Inspect(nope) = %v", err)
	}
	if _, err := e.sink.Request(ctx, "nope", cqrs.ActionReset, es.Position{}, "t"); !errors.Is(err, pgsink.ErrUnknownProjection) {
		t.Fatalf("Request(nope) = %v", err)
	}
	// A projection that reported but never committed a batch: its lag is
	// every event of its types.
	if err := e.sink.RecordStatus(ctx, cqrs.RunnerStatus{Projection: "fresh", State: cqrs.StateRunning, EventTypes: []string{"test.Counted"}}); err != nil {
		t.Fatal(err)
	}
	info, err := e.sink.Inspect(ctx, "fresh")
	if err != nil || info.LagEvents != 1 || info.Checkpoint != "0/0" || info.State != "running" {
		t.Fatalf("Inspect(fresh) = %+v, %v", info, err)
	}
	empty, err := pgsink.New(pgtest.Pool(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := empty.Names(ctx); !errors.Is(err, pgsink.ErrNoTables) {
		t.Fatalf("Names on an empty database = %v", err)
	}
}
