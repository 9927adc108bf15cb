package sqlitestore_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/esgen-dev/esgen/es"
	"github.com/esgen-dev/esgen/es/sqlitestore"
	"github.com/esgen-dev/esgen/internal/testagg"
	testaggv1 "github.com/esgen-dev/esgen/internal/testagg/v1"
)

type accountRepo = es.Repository[*testaggv1.Account, testaggv1.AccountCommand, testaggv1.AccountEvent]

func newRepo(t testing.TB, s *sqlitestore.Store, opts ...es.RepositoryOption) *accountRepo {
	t.Helper()
	r, err := es.NewRepository(s, testagg.New(), append([]es.RepositoryOption{es.WithSnapshots(s)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func handle(t testing.TB, ctx context.Context, r *accountRepo, cmd testaggv1.AccountCommand) es.Result[testaggv1.AccountEvent] {
	t.Helper()
	res, err := r.Handle(ctx, cmd)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// The repository on SQLite snapshots by the aggregate's policy (every 50
// events), loads from the snapshot, and finds it again after a restart.
func TestRepository_SnapshotsInSQLiteSurviveARestart(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "events.db")
	s := open(t, path)
	r := newRepo(t, s)
	handle(t, ctx, r, &testaggv1.Open{AccountId: "a1"})
	for range 109 {
		handle(t, ctx, r, &testaggv1.Deposit{AccountId: "a1", Amount: 2})
	}
	snap, err := s.LoadSnapshot(ctx, "Account-a1")
	if err != nil || snap.Version != 100 || snap.Fingerprint != testaggv1.AccountStateFingerprint {
		t.Fatalf("snapshot at version %d, fingerprint %q (err %v); want version 100 under the current schema", snap.Version, snap.Fingerprint, err)
	}
	want := &testaggv1.Account{AccountId: "a1", Balance: 218, Deposits: 109}
	if state, version, err := r.Load(ctx, "a1"); err != nil || version != 110 || !proto.Equal(state, want) {
		t.Fatalf("Load = %v at %d (err %v); want %v at 110", state, version, err, want)
	}

	// Load starts from the snapshot: replace it by one that says something
	// the events do not, and the loaded state says it too.
	marked := &testaggv1.Account{AccountId: "a1", Owner: "from the snapshot", Balance: 198, Deposits: 99}
	data, err := proto.Marshal(marked)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SaveSnapshot(ctx, es.Snapshot{Stream: "Account-a1", Version: 100, Fingerprint: testaggv1.AccountStateFingerprint, Data: data}); err != nil {
		t.Fatal(err)
	}
	wantMarked := &testaggv1.Account{AccountId: "a1", Owner: "from the snapshot", Balance: 218, Deposits: 109}
	if state, _, err := r.Load(ctx, "a1"); err != nil || !proto.Equal(state, wantMarked) {
		t.Fatalf("Load = %v (err %v); want %v, built on the snapshot", state, err, wantMarked)
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, path)
	r = newRepo(t, s)
	if state, version, err := r.Load(ctx, "a1"); err != nil || version != 110 || !proto.Equal(state, wantMarked) {
		t.Fatalf("Load after a restart = %v at %d (err %v); want %v at 110, from the snapshot", state, version, err, wantMarked)
	}
	for range 40 {
		handle(t, ctx, r, &testaggv1.Deposit{AccountId: "a1", Amount: 1})
	}
	if v := snapVersion(t, s, "Account-a1"); v != 150 {
		t.Fatalf("snapshot at %d after reaching version 150; want 150", v)
	}
	if r.SnapshotFailures() != 0 {
		t.Fatalf("%d snapshot failures", r.SnapshotFailures())
	}
}

func TestRepository_CommandIDSurvivesARestartInSQLite(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "events.db")
	s := open(t, path)
	first := newRepo(t, s)
	handle(t, ctx, first, &testaggv1.Open{AccountId: "a1"})
	cmdCtx := es.ContextWithCommandID(ctx, "deposit-42")
	orig := handle(t, cmdCtx, first, &testaggv1.Deposit{AccountId: "a1", Amount: 5})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// A new process: a new store and repository on the same file.
	s = open(t, path)
	r := newRepo(t, s)
	again, err := r.Handle(cmdCtx, &testaggv1.Deposit{AccountId: "a1", Amount: 5})
	if err != nil || !again.Duplicate || again.Version != orig.Version || again.Position != orig.Position || len(again.Events) != 1 {
		t.Fatalf("re-sent command after a restart = %+v, %v; want the original %+v marked duplicate", again, err, orig)
	}
	if state, v, err := r.Load(ctx, "a1"); err != nil || v != 2 || state.Balance != 5 {
		t.Fatalf("Load = %v at %d (err %v); want balance 5 at version 2", state, v, err)
	}
}

func TestRepository_SnapshotDoesNotOutliveADeleteInSQLite(t *testing.T) {
	ctx := t.Context()
	s := open(t, filepath.Join(t.TempDir(), "events.db"))
	r := newRepo(t, s, es.WithSnapshotEvery(5))
	handle(t, ctx, r, &testaggv1.Open{AccountId: "a1"})
	for range 6 {
		handle(t, ctx, r, &testaggv1.Deposit{AccountId: "a1", Amount: 1})
	}
	if v := snapVersion(t, s, "Account-a1"); v != 5 {
		t.Fatalf("snapshot at %d; want 5", v)
	}
	if err := s.DeleteStream(ctx, "Account-a1", es.Any, es.AllowReuse()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LoadSnapshot(ctx, "Account-a1"); !errors.Is(err, es.ErrSnapshotNotFound) {
		t.Fatalf("snapshot of the deleted life: %v; want es.ErrSnapshotNotFound", err)
	}
	handle(t, ctx, r, &testaggv1.Open{AccountId: "a1", Owner: "Bo"})
	state, _, err := r.Load(ctx, "a1")
	if err != nil || state.Deposits != 0 || state.Owner != "Bo" {
		t.Fatalf("state after delete and re-open = %v (err %v); want only the new life", state, err)
	}
}

func TestRepository_ConcurrentClientsOnSQLiteLoseNothing(t *testing.T) {
	ctx := t.Context()
	s := open(t, filepath.Join(t.TempDir(), "events.db"), sqlitestore.WithRelaxedSync())
	r := newRepo(t, s, es.WithMaxAttempts(50), es.WithSnapshotEvery(4))
	handle(t, ctx, r, &testaggv1.Open{AccountId: "hot"})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var sum, ok int64
	for i := range 16 {
		wg.Go(func() {
			_, err := r.Handle(ctx, &testaggv1.Deposit{AccountId: "hot", Amount: int64(i + 1)})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				sum += int64(i + 1)
				ok++
			case !errors.Is(err, es.ErrConcurrency):
				t.Errorf("deposit %d: %v", i+1, err)
			}
		})
	}
	wg.Wait()
	state, version, err := r.Load(ctx, "hot")
	if err != nil || state.Balance != sum || state.Deposits != ok || version != ok+1 {
		t.Fatalf("state %v at %d (err %v); want the %d successful deposits summing to %d", state, version, err, ok, sum)
	}
	// The same from the events alone.
	plain, err := es.NewRepository(s, testagg.New())
	if err != nil {
		t.Fatal(err)
	}
	if replayed, _, err := plain.Load(ctx, "hot"); err != nil || !proto.Equal(replayed, state) {
		t.Fatalf("replayed state %v (err %v); want %v as loaded from snapshots", replayed, err, state)
	}
}
